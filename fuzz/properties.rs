//! The properties the fuzz targets check, shared with the bounded property test that runs in
//! the normal suite (`tests/fuzz_properties.rs`, proptest): the same functions, fed by
//! libFuzzer when a nightly toolchain is there and by proptest otherwise.
//!
//! - [`request_validators`]: arbitrary bytes never make `check_framing`, `check_path`,
//!   `host_allowed` or `head_size` panic, and what they accept holds no bare LF/CR or NUL, no
//!   `..` segment, no host outside the allowlist.
//! - [`raw_header`]: the raw-header check against httparse, the parser Pingora uses: a head
//!   both accept is never ambiguous as httparse reads it (one Content-Length value at most, a
//!   lone `Transfer-Encoding: chunked` at most, never both).
#![allow(dead_code)]

use aegis::security::request::{check_framing, check_path, head_size, host_allowed, Violation};

/// The request validators on arbitrary bytes.
pub fn request_validators(data: &[u8]) {
    let allowed = ["example.com".to_string(), "*.example.org".to_string()];
    let framing = check_framing(data);
    assert!(matches!(framing, Ok(()) | Err(Violation::Ambiguous)));
    assert_eq!(head_size(data), data.len());
    if framing.is_ok() {
        assert_framing_invariants(data);
    }

    let path = check_path(data);
    assert!(matches!(path, Ok(()) | Err(Violation::Path)));
    if path.is_ok() {
        assert_path_invariants(data);
    }

    let host = String::from_utf8_lossy(data);
    if host_allowed(&host, &allowed) {
        assert_host_invariants(&host);
    }
    assert!(host_allowed(&host, &[]));
}

/// `check_framing` and httparse on the same bytes: what both accept has one framing.
pub fn raw_header(data: &[u8]) {
    let framing = check_framing(data);
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut fields);
    let Ok(httparse::Status::Complete(_)) = request.parse(data) else {
        return;
    };
    if framing.is_err() {
        return;
    }
    let values = |name: &str| -> Vec<&[u8]> {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect()
    };
    let lengths: Vec<&[u8]> = values("content-length")
        .into_iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim)
        .collect();
    let codings = values("transfer-encoding");
    assert!(
        lengths.is_empty() || codings.is_empty(),
        "Content-Length and Transfer-Encoding both accepted: {data:?}"
    );
    assert!(
        lengths.iter().all(|l| *l == lengths[0] && is_digits(l)),
        "ambiguous Content-Length accepted: {data:?}"
    );
    assert!(
        codings.len() <= 1
            && codings
                .iter()
                .all(|c| trim(c).eq_ignore_ascii_case(b"chunked")),
        "a Transfer-Encoding other than one `chunked` accepted: {data:?}"
    );
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

fn is_digits(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

/// An accepted head has CRLF line ends only, before its first empty line.
fn assert_framing_invariants(head: &[u8]) {
    let head = match find(head, b"\r\n\r\n") {
        Some(end) => &head[..end],
        None => head,
    };
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\n' => assert!(i > 0 && head[i - 1] == b'\r', "bare LF accepted: {head:?}"),
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR accepted: {head:?}"),
            0 => panic!("NUL accepted: {head:?}"),
            _ => {}
        }
    }
}

/// An accepted target's path (raw and decoded once) has no `..` segment and no NUL, and the
/// target is origin-form or http(s) absolute-form.
fn assert_path_invariants(target: &[u8]) {
    let path = if target.first() == Some(&b'/') {
        target
    } else {
        let lower = target.to_ascii_lowercase();
        assert!(
            lower.starts_with(b"http://") || lower.starts_with(b"https://"),
            "accepted a target that is neither origin- nor absolute-form: {target:?}"
        );
        let after_scheme = &target[find(target, b"://").unwrap_or(0) + 3..];
        let start = after_scheme
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(after_scheme.len());
        &after_scheme[start..]
    };
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let decoded = decode_once(path);
    for form in [path, &decoded[..]] {
        assert!(!form.contains(&0), "NUL accepted: {target:?}");
        assert!(
            !form.split(|&b| b == b'/' || b == b'\\').any(|s| s == b".."),
            "`..` segment accepted: {target:?}"
        );
    }
}

/// An accepted Host is a name under one of the allowed patterns.
fn assert_host_invariants(host: &str) {
    let lower = host.trim_matches([' ', '\t']).to_ascii_lowercase();
    let name = lower.split(':').next().unwrap_or_default();
    let name = name.strip_suffix('.').unwrap_or(name);
    assert!(
        name == "example.com" || name.ends_with(".example.org"),
        "host accepted outside the allowlist: {host:?}"
    );
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "malformed host accepted: {host:?}"
    );
}

/// Decodes valid `%XX` escapes once, leaving anything else as is; written independently of the
/// code under test.
fn decode_once(path: &[u8]) -> Vec<u8> {
    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        match (path[i], hex(path.get(i + 1)), hex(path.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
