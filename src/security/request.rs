//! Pure request validators run by the proxy's `request_filter`: framing (§3.2), path (§3.3),
//! Host allowlist (§3.4) and header size (§3.5). No Pingora types, no I/O, no allocation.

/// Why a request is refused. The proxy maps these to its JSON answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// Content-Length and Transfer-Encoding together, differing or invalid Content-Lengths, a
    /// Transfer-Encoding other than exactly `chunked`, obs-fold, a bare LF or bare CR, a control
    /// byte (other than HTAB) in the head, whitespace in a header name, or a header line with no
    /// colon → 400 "ambiguous request".
    Ambiguous,
    /// Traversal or malformed path → 400 "invalid path".
    Path,
}

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

/// The index of the first byte matching `matches`. Scans 16 bytes at a time without an early
/// exit inside a block, which the compiler turns into SIMD compares.
fn find_byte(bytes: &[u8], matches: impl Fn(u8) -> bool) -> Option<usize> {
    let mut start = 0;
    for block in bytes.chunks_exact(16) {
        if block.iter().fold(false, |found, &b| found | matches(b)) {
            break;
        }
        start += 16;
    }
    let rest = bytes.get(start..)?;
    rest.iter().position(|&b| matches(b)).map(|i| start + i)
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

fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
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

/// Checks the request target's path (§3.3).
///
/// `target` is the raw request target: origin-form (`/a/b?q`) or absolute-form with an `http`
/// or `https` scheme (`http://host/a/b?q`, whose path is checked; an empty path there means `/`).
/// The query is ignored. The path is checked in three forms: raw, percent-decoded once and
/// decoded twice; a `/`- or `\`-separated segment `..` in any of them is refused, as are a
/// malformed escape in the raw path (`%ZZ`, `%4`, `%`), a NUL in any form (`%00`, `%2500`), raw
/// control bytes, an empty target and `*`. The second decoding is lenient: a `%` that does not
/// start a valid escape after the first decoding (`/100%25off` → `/100%off`) stays a literal `%`,
/// since it cannot decode to anything a backend would read as a dot or a separator.
/// Runs over the bytes once, without allocating.
pub fn check_path(target: &[u8]) -> Result<(), Violation> {
    // SECURITY: path traversal / request splitting: raw control bytes (CR, LF, NUL) in the
    // target are never legitimate and are read differently by different servers.
    if find_byte(target, is_control).is_some() {
        return Err(Violation::Path);
    }
    let path = path_of(target)?;
    let path = find_byte(path, |b| b == b'?').map_or(path, |query| &path[..query]);
    if find_byte(path, |b| b == b'%').is_none() {
        // Without escapes all three forms are the raw path (and it holds no NUL).
        return SegmentCheck::default().scan(path);
    }

    let mut raw = SegmentCheck::default();
    let mut once = SegmentCheck::default();
    let mut twice = SegmentCheck::default();
    let mut first_decoding = Decoder::new(true);
    let mut second_decoding = Decoder::new(false);
    let mut after_first = |byte: u8| -> Result<(), Violation> {
        once.feed(byte)?;
        second_decoding.feed(byte, &mut |decoded| twice.feed(decoded))
    };
    for &byte in path {
        raw.feed(byte)?;
        first_decoding.feed(byte, &mut after_first)?;
    }
    first_decoding.finish(&mut after_first)?;
    second_decoding.finish(&mut |decoded| twice.feed(decoded))?;
    raw.finish()?;
    once.finish()?;
    twice.finish()
}

/// The path part of an origin-form or absolute-form target (query not yet removed).
fn path_of(target: &[u8]) -> Result<&[u8], Violation> {
    if target.first() == Some(&b'/') {
        return Ok(target);
    }
    // SECURITY: path traversal: only http(s) absolute-form is accepted, so that no other
    // scheme's idea of a path (or `*`, or an empty target) reaches a backend.
    let after_scheme = strip_prefix_ignore_case(target, b"http://")
        .or_else(|| strip_prefix_ignore_case(target, b"https://"))
        .ok_or(Violation::Path)?;
    let authority_end = after_scheme
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    // SECURITY: path traversal: WHATWG URL parsers treat `\` as `/` in http(s) URLs, so a
    // backslash in the authority could start a path this check never saw.
    if authority.is_empty() || authority.iter().any(|&b| b == b'\\' || b == b'#') {
        return Err(Violation::Path);
    }
    Ok(&after_scheme[authority_end..])
}

fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    match bytes.split_at_checked(prefix.len()) {
        Some((head, tail)) if head.eq_ignore_ascii_case(prefix) => Some(tail),
        _ => None,
    }
}

/// Where a segment scan is: what the current segment holds so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Segment {
    #[default]
    Empty,
    OneDot,
    TwoDots,
    Other,
}

/// Streams one form of the path and refuses a `..` segment or a NUL.
#[derive(Debug, Default)]
struct SegmentCheck {
    segment: Segment,
}

impl SegmentCheck {
    fn feed(&mut self, byte: u8) -> Result<(), Violation> {
        self.segment = match (byte, self.segment) {
            // SECURITY: NUL truncation: a decoded NUL ends the path early in C-based backends.
            (0, _) => return Err(Violation::Path),
            (b'/' | b'\\', segment) => {
                Self::refuse_parent(segment)?;
                Segment::Empty
            }
            (b'.', Segment::Empty) => Segment::OneDot,
            (b'.', Segment::OneDot) => Segment::TwoDots,
            _ => Segment::Other,
        };
        Ok(())
    }

    fn finish(&self) -> Result<(), Violation> {
        Self::refuse_parent(self.segment)
    }

    /// Checks a whole path that needs no decoding.
    fn scan(mut self, path: &[u8]) -> Result<(), Violation> {
        for &byte in path {
            self.feed(byte)?;
        }
        self.finish()
    }

    fn refuse_parent(segment: Segment) -> Result<(), Violation> {
        // SECURITY: path traversal: a `..` segment (raw, `%2e%2e`, `%252e%252e`, with `/` or
        // the Windows separator `\`) climbs out of the directory the backend serves.
        match segment {
            Segment::TwoDots => Err(Violation::Path),
            _ => Ok(()),
        }
    }
}

/// Where a percent-decoder is inside an escape; `Hex` keeps the first digit as received.
#[derive(Debug, Clone, Copy)]
enum Escape {
    None,
    Percent,
    Hex(u8),
}

/// A streaming percent-decoder that pushes decoded bytes into a sink.
///
/// A strict decoder refuses a malformed escape; a lenient one passes it through literally.
struct Decoder {
    strict: bool,
    escape: Escape,
}

impl Decoder {
    fn new(strict: bool) -> Self {
        Decoder {
            strict,
            escape: Escape::None,
        }
    }

    fn feed(
        &mut self,
        byte: u8,
        sink: &mut impl FnMut(u8) -> Result<(), Violation>,
    ) -> Result<(), Violation> {
        match self.escape {
            Escape::Percent if byte.is_ascii_hexdigit() => {
                self.escape = Escape::Hex(byte);
                return Ok(());
            }
            Escape::Hex(high) if byte.is_ascii_hexdigit() => {
                self.escape = Escape::None;
                return sink((hex_value(high) << 4) | hex_value(byte));
            }
            // A malformed escape: refused, or passed on before `byte` is read afresh.
            Escape::Percent | Escape::Hex(_) => self.flush(sink)?,
            Escape::None => {}
        }
        if byte == b'%' {
            self.escape = Escape::Percent;
            Ok(())
        } else {
            sink(byte)
        }
    }

    fn finish(
        &mut self,
        sink: &mut impl FnMut(u8) -> Result<(), Violation>,
    ) -> Result<(), Violation> {
        self.flush(sink)
    }

    /// Ends an unfinished escape: refused when strict, passed on literally when lenient.
    fn flush(
        &mut self,
        sink: &mut impl FnMut(u8) -> Result<(), Violation>,
    ) -> Result<(), Violation> {
        let pending = std::mem::replace(&mut self.escape, Escape::None);
        match pending {
            Escape::None => Ok(()),
            // SECURITY: path traversal / parser confusion: servers decode malformed escapes
            // (`%ZZ`, `%u002e`, a trailing `%4`) in different ways, so they are refused.
            _ if self.strict => Err(Violation::Path),
            Escape::Percent => sink(b'%'),
            Escape::Hex(high) => {
                sink(b'%')?;
                sink(high)
            }
        }
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Host allowlist (§3.4): true when the request may go on.
///
/// `host` is the Host header value. It is compared case-insensitively, without its port and
/// without one trailing dot (`Example.COM.:8080` is `example.com`). `allowed` holds lower-case
/// patterns: exact names, or `*.example.com`, which matches any subdomain of example.com
/// (`a.example.com`, `a.b.example.com`) but not `example.com` itself. An empty `allowed`
/// allows every host, including a missing or empty one. An IPv6 literal `[::1]:8080` is
/// `[::1]` and matches an allowed entry written `[::1]` or `::1`. A host that is not a
/// well-formed name (characters other than letters, digits, `-`, `_` and `.`; empty labels; a
/// non-numeric port) never matches.
#[must_use]
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    // SECURITY: host header injection / cache poisoning: only a well-formed host is compared,
    // so `evil.com/x.example.com` or `a..example.com` cannot satisfy a wildcard.
    let Some(name) = host_name(host.trim_matches([' ', '\t'])) else {
        return false;
    };
    allowed.iter().any(|pattern| host_matches(name, pattern))
}

/// The host part of a Host value without its port and trailing dot, or None if malformed.
fn host_name(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        let close = host.find(']')?;
        let literal = &host[1..close];
        let valid = !literal.is_empty()
            && literal
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return (valid && is_port_suffix(&host[close + 1..])).then_some(&host[..=close]);
    }
    let name_end = host.find(':').unwrap_or(host.len());
    if !is_port_suffix(&host[name_end..]) {
        return None;
    }
    let name = &host[..name_end];
    let name = name.strip_suffix('.').unwrap_or(name);
    let well_formed = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    well_formed.then_some(name)
}

/// Empty, or `:` followed by ASCII digits only.
fn is_port_suffix(suffix: &str) -> bool {
    suffix.is_empty()
        || suffix
            .strip_prefix(':')
            .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()))
}

fn host_matches(name: &str, pattern: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    if let Some(parent) = pattern.strip_prefix("*.") {
        // `name` is well formed, so whatever stands before `.parent` is one or more whole labels.
        let name = name.as_bytes();
        return name.len() > parent.len() + 1
            && name[name.len() - parent.len() - 1] == b'.'
            && name[name.len() - parent.len()..].eq_ignore_ascii_case(parent.as_bytes());
    }
    if name.eq_ignore_ascii_case(pattern) {
        return true;
    }
    // An IPv6 literal also matches an entry written without brackets.
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .is_some_and(|literal| literal.eq_ignore_ascii_case(pattern))
}

/// Size of the request head in bytes — request line, header lines and their line ends, as
/// received — which the proxy compares to `server.max_header_bytes` (431 above it, §3.5).
#[must_use]
pub fn head_size(raw_head: &[u8]) -> usize {
    raw_head.len()
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

    #[test]
    fn long_paths_are_checked_past_the_first_block() {
        let prefix = "/0123456789abcdef/0123456789abcdef";
        for (suffix, expected) in [
            ("/x", Ok(())),
            ("/../x", Err(Violation::Path)),
            ("/%2e%2e/x", Err(Violation::Path)),
            ("/%zz", Err(Violation::Path)),
            ("/x?/../%zz", Ok(())),
            ("/x\0", Err(Violation::Path)),
        ] {
            let path = format!("{prefix}{suffix}");
            assert_eq!(check_path(path.as_bytes()), expected, "{path:?}");
        }
    }

    #[test]
    fn paths_that_pass() {
        let cases: [&[u8]; 17] = [
            b"/",
            b"/a/b",
            b"/a/b?x=../..",
            b"/a/b?%ZZ%00",
            b"/.../x",
            b"/a..b",
            b"/..a/b..",
            b"/%2e/x",
            b"/./a/.",
            b"/a%20b/%41%2F",
            b"/100%25off",
            b"/%252",
            b"/caf\xc3\xa9",
            b"//double//slash",
            b"http://h/a/b?q=1",
            b"HTTPS://h:8443",
            b"http://h?x=/../",
        ];
        for path in cases {
            assert_eq!(
                check_path(path),
                Ok(()),
                "{:?}",
                String::from_utf8_lossy(path)
            );
        }
    }

    #[test]
    fn traversal_and_malformed_paths_are_refused() {
        let cases: [&[u8]; 31] = [
            b"/a/../b",
            b"/..",
            b"/a/..",
            b"/a/%2e%2e/b",
            b"/a/%2E%2e/b",
            b"/a/.%2e/b",
            b"/%252e%252e/x",
            b"/%25%32%65%25%32%65/x",
            b"/..%5cwindows",
            b"/..%255cwindows",
            b"/a\\..\\b",
            b"/a%2f..%2fb",
            b"/%ZZ",
            b"/a%4",
            b"/a%",
            b"/a%u002e",
            b"/a%00b",
            b"/a%2500",
            b"/a\0b",
            b"/a\rb",
            b"/a\nb",
            b"/a\x7fb",
            b"http://h/a/../b",
            b"http://h/%2e%2e",
            b"http:///a",
            b"http://h\\..\\b",
            b"ftp://h/a",
            b"a/b",
            b"*",
            b"",
            b"?x",
        ];
        for path in cases {
            assert_eq!(
                check_path(path),
                Err(Violation::Path),
                "{:?}",
                String::from_utf8_lossy(path)
            );
        }
    }

    fn list(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn host_allowlist_decisions() {
        let allowed = list(&["example.com", "*.example.org", "[::1]", "10.0.0.1"]);
        let cases = [
            ("example.com", true),
            ("EXAMPLE.Com", true),
            ("example.com:8080", true),
            ("example.com.", true),
            ("example.com.:80", true),
            (" example.com ", true),
            ("example.com:", true),
            ("a.example.org", true),
            ("A.B.Example.Org:443", true),
            ("example.org", false),
            (".example.org", false),
            ("a..example.org", false),
            ("evil-example.org", false),
            ("evilexample.org", false),
            ("evil.com/x.example.org", false),
            ("evil.com@a.example.org", false),
            ("a.example.org.evil.com", false),
            ("www.example.com", false),
            ("example.com:http", false),
            ("example.com:80:80", false),
            ("example.com..", false),
            ("[::1]:8080", true),
            ("[::1]", true),
            ("[::1]evil", false),
            ("[::2]", false),
            ("[", false),
            ("::1", false),
            ("10.0.0.1:80", true),
            ("", false),
            (":80", false),
        ];
        for (host, expected) in cases {
            assert_eq!(host_allowed(host, &allowed), expected, "{host:?}");
        }
    }

    #[test]
    fn ipv6_entry_without_brackets_also_matches() {
        assert!(host_allowed("[::1]:8080", &list(&["::1"])));
        assert!(host_allowed("[2001:DB8::1]", &list(&["2001:db8::1"])));
    }

    #[test]
    fn empty_allowlist_allows_every_host() {
        for host in ["", "anything", "[::1]:1", "weird host/../"] {
            assert!(host_allowed(host, &[]), "{host:?}");
        }
    }

    #[test]
    fn head_size_counts_every_byte_received() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(head_size(head), head.len());
    }

    /// Tiny xorshift generator, so the property test below needs no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Decodes `%XX` escapes once, leaving anything else as is (independent of the code above).
    fn decode_once(path: &[u8]) -> Vec<u8> {
        let hex = |b: u8| (b as char).to_digit(16);
        let mut out = Vec::new();
        let mut i = 0;
        while i < path.len() {
            match (
                path[i],
                path.get(i + 1).and_then(|&b| hex(b)),
                path.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (b'%', Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }

    fn has_parent_segment(path: &[u8]) -> bool {
        path.split(|&b| b == b'/' || b == b'\\').any(|s| s == b"..")
    }

    #[test]
    fn random_inputs_never_panic_and_accepted_paths_have_no_parent_segment() {
        const ALPHABET: &[u8] = b"/\\.%25e2E5cf0aZ?:\r\n\t ,-";
        const PIECES: [&[u8]; 8] = [
            b"\r\n",
            b"Content-Length: 5",
            b"Transfer-Encoding: chunked",
            b"%2e",
            b"%252e",
            b"..",
            b"GET / HTTP/1.1",
            b"*.example.org",
        ];
        let allowed = list(&["example.com", "*.example.org"]);
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut input = Vec::with_capacity(64);
        for _ in 0..200_000 {
            input.clear();
            let len = rng.next() % 40;
            while (input.len() as u64) < len {
                let roll = rng.next();
                match roll % 4 {
                    0 => input.extend_from_slice(PIECES[(roll >> 8) as usize % PIECES.len()]),
                    1 => input.push((roll >> 8) as u8),
                    _ => input.push(ALPHABET[(roll >> 8) as usize % ALPHABET.len()]),
                }
            }
            let _ = check_framing(&input);
            let _ = host_allowed(&String::from_utf8_lossy(&input), &allowed);
            let mut target = b"/".to_vec();
            target.extend_from_slice(&input);
            if check_path(&target).is_ok() {
                let path = target.split(|&b| b == b'?').next().unwrap_or_default();
                assert!(!has_parent_segment(path), "{target:?}");
                assert!(!has_parent_segment(&decode_once(path)), "{target:?}");
            }
        }
    }
}
