//! Framing check (§3.2): refuses request heads whose framing two HTTP parsers could read
//! differently (request smuggling), working on the raw bytes as received.

use super::{find_byte, Violation};

/// Checks the raw request head exactly as received on the wire: the request line and header
/// lines, with or without the final empty line.
///
/// Pingora's parser normalises the head (and drops Content-Length when Transfer-Encoding is
/// present) before any hook runs, so smuggling must be detected from these raw bytes. Empty
/// lines before the request line are skipped, as HTTP/1.1 parsers do; the first empty line after
/// it ends the head and anything after it is not looked at. An empty input has no framing
/// headers and passes. Single pass, no allocation.
pub fn check_framing(raw_head: &[u8]) -> Result<(), Violation> {
    let mut content_length: Option<&[u8]> = None;
    let mut transfer_encoding = false;
    let mut seen_request_line = false;
    let mut rest = raw_head;
    while !rest.is_empty() {
        let (line, next) = split_line(rest)?;
        rest = next;
        if !seen_request_line {
            // Leading empty lines are tolerated before the request line (RFC 9112 §2.2).
            seen_request_line = !line.is_empty();
            continue;
        }
        if line.is_empty() {
            break;
        }
        let (name, value) = split_header(line)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            // SECURITY: request smuggling (CL.CL): two lengths let the proxy and the backend
            // disagree on where the body ends; only repeats of one exact value are tolerated.
            for item in value.split(|&b| b == b',') {
                let item = trim_whitespace(item);
                if !is_content_length(item) || content_length.is_some_and(|first| first != item) {
                    return Err(Violation::Ambiguous);
                }
                content_length = Some(item);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // SECURITY: request smuggling (TE.TE): a coding list, an unknown coding or a second
            // Transfer-Encoding header is where parsers disagree about chunking.
            if transfer_encoding || !value.eq_ignore_ascii_case(b"chunked") {
                return Err(Violation::Ambiguous);
            }
            transfer_encoding = true;
        }
    }
    // SECURITY: request smuggling (CL.TE / TE.CL): with both headers the proxy and the backend
    // may each pick a different one, whatever the values.
    if transfer_encoding && content_length.is_some() {
        return Err(Violation::Ambiguous);
    }
    Ok(())
}

/// Splits off the first line of `bytes`, without its CRLF, and refuses any control byte in it
/// other than HTAB. A last line without a line end is returned as is.
fn split_line(bytes: &[u8]) -> Result<(&[u8], &[u8]), Violation> {
    let mut from = 0;
    loop {
        let Some(at) = find_byte(&bytes[from..], is_control_or_tab).map(|i| from + i) else {
            return Ok((bytes, &[]));
        };
        match (bytes[at], bytes.get(at + 1)) {
            (b'\t', _) => from = at + 1,
            (b'\r', Some(b'\n')) => return Ok((&bytes[..at], &bytes[at + 2..])),
            // SECURITY: request smuggling / header injection: a bare LF or bare CR ends a line
            // for some parsers only, and a NUL or other control byte is read differently by
            // different parsers, so one of them may see a header the other does not.
            _ => return Err(Violation::Ambiguous),
        }
    }
}

/// Splits a header line into its name and its value, trimmed of SP and HTAB.
fn split_header(line: &[u8]) -> Result<(&[u8], &[u8]), Violation> {
    // SECURITY: request smuggling: an obs-fold continuation line glues itself to the previous
    // header for some parsers and is a header of its own for others.
    if line.first().is_some_and(|&b| is_whitespace(b)) {
        return Err(Violation::Ambiguous);
    }
    // SECURITY: request smuggling: `Transfer-Encoding : chunked` is ignored by strict parsers
    // and honoured by lenient ones, so whitespace in a name (or an empty name) is refused.
    let mut colon = None;
    for (i, &b) in line.iter().enumerate() {
        if b == b':' {
            colon = Some(i);
            break;
        }
        if is_whitespace(b) {
            return Err(Violation::Ambiguous);
        }
    }
    let colon = match colon {
        Some(0) | None => return Err(Violation::Ambiguous),
        Some(colon) => colon,
    };
    let name = &line[..colon];
    Ok((name, trim_whitespace(&line[colon + 1..])))
}

/// A Content-Length value: ASCII digits only, and small enough for a `u64` (parsers that
/// overflow differently would disagree on the length).
fn is_content_length(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit)
}

fn is_control_or_tab(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7f
}

fn is_whitespace(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn trim_whitespace(mut bytes: &[u8]) -> &[u8] {
    while let Some((&first, tail)) = bytes.split_first() {
        if !is_whitespace(first) {
            break;
        }
        bytes = tail;
    }
    while let Some((&last, head)) = bytes.split_last() {
        if !is_whitespace(last) {
            break;
        }
        bytes = head;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(head: &str) -> Result<(), Violation> {
        check_framing(head.as_bytes())
    }

    #[test]
    fn legitimate_heads_pass_framing() {
        let cases = [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n",
            "GET / HTTP/1.1\r\nHost: a",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1",
            "",
            "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            "POST /x HTTP/1.1\r\nHost: a\r\ncontent-length:5\r\n\r\n",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /x HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING:  Chunked  \r\n\r\n",
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n",
            "POST /x HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
            "POST /x HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n",
            "GET / HTTP/1.1\r\nX-Tab:\ta\tb\t\r\nX-Empty:\r\nX-Obs: caf\u{e9}\r\n\r\n",
            // The head ends at the first empty line; what follows is the body.
            "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n\0\n\r",
        ];
        for head in cases {
            assert_eq!(framing(head), Ok(()), "{head:?}");
        }
    }

    #[test]
    fn ambiguous_heads_are_refused() {
        let cases = [
            // CL + TE, whatever the values and spelling.
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-LENGTH: 5\r\ntransfer-encoding: CHUNKED\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\n",
            "\r\nPOST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            // Differing or invalid Content-Lengths.
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            // Transfer-Encoding other than exactly `chunked`.
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            // Line ends and obs-fold.
            "POST / HTTP/1.1\r\nHost: a\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n\n",
            "\nGET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n\r",
            "GET / HTTP/1.1\r\nHost: a\r\n chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n\tchunked\r\n\r\n",
            "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            // Control bytes, in a header line or the request line.
            "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n",
            "GET / HTTP/1.1\r\nX: \x0b\r\n\r\n",
            "GET / HTTP/1.1\r\nX: \x7f\r\n\r\n",
            "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n",
            // Malformed names.
            "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\n: a\r\n\r\n",
            "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        ];
        for head in cases {
            assert_eq!(framing(head), Err(Violation::Ambiguous), "{head:?}");
        }
    }

    #[test]
    fn control_bytes_are_found_at_every_offset_of_a_long_line() {
        let value = "v".repeat(40);
        for at in 0..value.len() {
            for (byte, expected) in [
                ('\0', Err(Violation::Ambiguous)),
                ('\n', Err(Violation::Ambiguous)),
                ('\r', Err(Violation::Ambiguous)),
                ('\x1b', Err(Violation::Ambiguous)),
                ('\t', Ok(())),
            ] {
                let mut line = value.clone();
                line.insert(at, byte);
                let head = format!("GET / HTTP/1.1\r\nX-Long-Header-Name: {line}\r\n\r\n");
                assert_eq!(framing(&head), expected, "{head:?}");
            }
        }
    }
}
