//! Path check (§3.3): refuses traversal, malformed escapes and NULs in the request target, in
//! its raw form and percent-decoded once and twice.
//!
//! Just over 400 lines with its unit tests (the code is ~220): the adversarial path table
//! belongs beside the check it pins.

use super::{find_byte, Violation};

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

fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::request::{check_framing, host_allowed};

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
