//! Pure request validators run by the proxy's `request_filter`: framing (§3.2), path (§3.3),
//! Host allowlist (§3.4) and header size (§3.5). No Pingora types, no I/O, no allocation.
//!
//! One file per check: `framing` (smuggling-prone heads), `path` (traversal and malformed
//! escapes) and `host` (the allowlist). This file holds what they share.

mod framing;
mod host;
mod path;

pub use framing::check_framing;
pub use host::{host_allowed, host_matches, host_name};
pub use path::check_path;

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

/// Size of the request head in bytes — request line, header lines and their line ends, as
/// received — which the proxy compares to `server.max_header_bytes` (431 above it, §3.5).
#[must_use]
pub fn head_size(raw_head: &[u8]) -> usize {
    raw_head.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_size_counts_every_byte_received() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(head_size(head), head.len());
    }
}
