//! The path half of a route (§17): segment-aware prefixes, the percent-decoded form a path is
//! matched in, and `strip_prefix`'s rewrite. Pure, no allocation.

/// Longest path decoded for matching; a longer one with `%` is matched raw (and a path that
/// could mislead routing that way is one `check_path` refuses before any pool sees it, or one
/// the backend reads as the raw bytes do).
pub const DECODE_BUFFER: usize = 1024;

/// Whether `path` is under `prefix` (stored without a trailing slash; `""` is `/`): equal, or
/// followed by `/`. `/v1` matches `/v1`, `/v1/` and `/v1/x`, never `/v1x`.
pub fn under(path: &[u8], prefix: &[u8]) -> bool {
    path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

/// A prefix as written (`/v1/`) in its stored form (`/v1`); `/` is `""`.
pub fn normalise(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// The escape `%XY` at the start of `rest`, if it is one.
fn escape(rest: &[u8]) -> Option<u8> {
    match rest {
        [b'%', high, low, ..] => Some(hex(*high)? << 4 | hex(*low)?),
        _ => None,
    }
}

/// `path` percent-decoded once into `buffer`, or `None` when it has no `%`, a malformed escape
/// or does not fit: the caller matches the raw path then.
///
/// SECURITY: routing happens before validation (the rate limit comes first, §3), so it must see
/// a path as the backend will: `/%761/x` is `/v1/x` and meets the `/v1` route's pool and limit.
pub fn decoded<'b>(path: &[u8], buffer: &'b mut [u8; DECODE_BUFFER]) -> Option<&'b [u8]> {
    if !path.contains(&b'%') || path.len() > DECODE_BUFFER {
        return None;
    }
    let (mut read, mut written) = (0, 0);
    while read < path.len() {
        if path[read] == b'%' {
            buffer[written] = escape(&path[read..])?;
            read += 3;
        } else {
            buffer[written] = path[read];
            read += 1;
        }
        written += 1;
    }
    Some(&buffer[..written])
}

/// The rest of `path` once the first `prefix_len` decoded bytes are cut off, for `strip_prefix`:
/// the raw bytes after the prefix, whether the prefix was written plainly or with escapes
/// (`/%761/x` less `/v1` is `/x`). Always starts with `/`.
pub fn strip(path: &str, prefix_len: usize) -> &str {
    let bytes = path.as_bytes();
    let (mut read, mut decoded) = (0, 0);
    while decoded < prefix_len && read < bytes.len() {
        read += if escape(&bytes[read..]).is_some() {
            3
        } else {
            1
        };
        decoded += 1;
    }
    match path.get(read..) {
        Some(rest) if rest.starts_with('/') => rest,
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_segment_aware() {
        let cases: [(&str, &str, bool); 10] = [
            ("/v1", "/v1", true),
            ("/v1/", "/v1", true),
            ("/v1/x", "/v1", true),
            ("/v1x", "/v1", false),
            ("/v", "/v1", false),
            ("/V1/x", "/v1", false),
            ("/anything", "", true),
            ("/", "", true),
            ("/a/b/c", "/a/b", true),
            ("/a/bc", "/a/b", false),
        ];
        for (path, prefix, expected) in cases {
            assert_eq!(
                under(path.as_bytes(), prefix.as_bytes()),
                expected,
                "{path} {prefix}"
            );
        }
        assert_eq!(normalise("/v1/"), "/v1");
        assert_eq!(normalise("/"), "");
    }

    #[test]
    fn escapes_are_decoded_once_and_bad_ones_left_raw() {
        let mut buffer = [0; DECODE_BUFFER];
        assert_eq!(decoded(b"/%761/x", &mut buffer), Some(&b"/v1/x"[..]));
        assert_eq!(decoded(b"/%2576", &mut buffer), Some(&b"/%76"[..]));
        assert_eq!(decoded(b"/plain", &mut buffer), None);
        assert_eq!(decoded(b"/%zz", &mut buffer), None);
        assert_eq!(decoded(b"/%7", &mut buffer), None);
        let long = format!("/{}%41", "a".repeat(DECODE_BUFFER));
        assert_eq!(decoded(long.as_bytes(), &mut buffer), None);
    }

    #[test]
    fn strip_cuts_the_prefix_in_raw_bytes() {
        assert_eq!(strip("/v1/x", 3), "/x");
        assert_eq!(strip("/v1", 3), "/");
        assert_eq!(strip("/v1/", 3), "/");
        assert_eq!(strip("/%761/x/%41", 3), "/x/%41");
        assert_eq!(strip("/anything", 0), "/anything");
    }
}
