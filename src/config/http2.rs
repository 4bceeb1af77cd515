//! The `http2` section: the limits every HTTP/2 client connection gets (§11.2), whichever
//! listener it came in on (`listeners[].http2` and `listeners[].h2c` say where HTTP/2 is
//! spoken). How each maps onto the `h2` crate and which flood it bounds is in
//! `http2::Http2Config::options` and docs/tls.md.

use super::checker::Checker;
use super::raw::RawHttp2;

/// `http2`: per-connection HTTP/2 limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http2Settings {
    /// `http2.max_concurrent_streams`, default 100, 1–1000: streams one connection may have open
    /// at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with REFUSED_STREAM.
    pub max_concurrent_streams: u32,
    /// `http2.initial_stream_window`, default 65535 bytes, 1 KiB–16 MiB: how much request body
    /// a client may send on one stream before Aegis has forwarded it.
    pub initial_stream_window: u32,
    /// `http2.initial_connection_window`, default 1 MiB, 64 KiB–64 MiB: the same for all the
    /// streams of a connection together; the most request body one connection can make Aegis
    /// hold.
    pub initial_connection_window: u32,
    /// `http2.max_send_buffer`, default 64 KiB, 16 KiB–16 MiB: response bytes buffered per stream
    /// while the client's flow-control window is closed.
    pub max_send_buffer: usize,
    /// `http2.max_control_frames_per_second`, default 100, 10–100000: PING, SETTINGS,
    /// RST_STREAM, PRIORITY and unknown frames one connection may send in a second; past it the
    /// connection is closed with GOAWAY (ENHANCE_YOUR_CALM).
    pub max_control_frames_per_second: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            max_concurrent_streams: 100,
            initial_stream_window: 65_535,
            initial_connection_window: 1024 * 1024,
            max_send_buffer: 64 * 1024,
            max_control_frames_per_second: 100,
        }
    }
}

const KIB: i64 = 1024;
const MIB: i64 = 1024 * 1024;

impl Checker {
    pub(super) fn http2(&mut self, raw: RawHttp2) -> Http2Settings {
        self.unknown("http2", &raw.unknown);
        let default = Http2Settings::default();
        Http2Settings {
            max_concurrent_streams: self.int(
                raw.max_concurrent_streams,
                "http2.max_concurrent_streams",
                default.max_concurrent_streams.into(),
                1,
                1000,
            ) as u32,
            initial_stream_window: self.int(
                raw.initial_stream_window,
                "http2.initial_stream_window",
                default.initial_stream_window.into(),
                KIB,
                16 * MIB,
            ) as u32,
            initial_connection_window: self.int(
                raw.initial_connection_window,
                "http2.initial_connection_window",
                default.initial_connection_window.into(),
                64 * KIB,
                64 * MIB,
            ) as u32,
            max_send_buffer: self.int(
                raw.max_send_buffer,
                "http2.max_send_buffer",
                default.max_send_buffer as i64,
                16 * KIB,
                16 * MIB,
            ) as usize,
            max_control_frames_per_second: self.int(
                raw.max_control_frames_per_second,
                "http2.max_control_frames_per_second",
                default.max_control_frames_per_second.into(),
                10,
                100_000,
            ) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    use crate::config::problems as errors;

    #[test]
    fn defaults_apply_without_the_section() {
        let config = parse("backends:\n  - url: http://a.example\n").expect("valid");
        assert_eq!(config.http2, Http2Settings::default());
    }

    #[test]
    fn values_are_read_and_checked_with_their_key_path() {
        let config = parse(
            "http2:\n  max_concurrent_streams: 10\n  max_send_buffer: 32768\nbackends:\n  - url: http://a.example\n",
        )
        .expect("valid");
        assert_eq!(config.http2.max_concurrent_streams, 10);
        assert_eq!(config.http2.max_send_buffer, 32768);
        assert_eq!(
            errors("http2:\n  max_concurrent_streams: 0\n  initial_stream_window: big\n  streams: 3\nbackends:\n  - url: http://a.example\n"),
            vec![
                "http2.streams: unknown key (is it misspelt?)".to_string(),
                "http2.max_concurrent_streams: must be between 1 and 1000, got 0".to_string(),
                "http2.initial_stream_window: expected an integer, got \"big\"".to_string(),
            ]
        );
    }
}
