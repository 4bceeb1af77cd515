//! Counting the frames an HTTP/2 client sends, from the raw bytes, before the `h2` crate decodes
//! them: the defence against PING, SETTINGS, RST_STREAM and PRIORITY floods, which the `h2`
//! crate answers one by one without limit.
//!
//! Only the 9-byte frame headers are read; payloads are skipped. Pure logic: the caller passes
//! the bytes read and the time.

use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113 §3.4), which precedes the first frame.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const FRAME_HEADER: usize = 9;
const WINDOW: Duration = Duration::from_secs(1);

/// The kind of frame that made up most of a flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    Ping,
    Settings,
    Reset,
    /// PRIORITY, and frame types HTTP/2 does not define (the `h2` crate ignores them).
    Other,
}

impl Flood {
    const ALL: [Flood; 4] = [Flood::Ping, Flood::Settings, Flood::Reset, Flood::Other];

    pub fn name(self) -> &'static str {
        match self {
            Flood::Ping => "PING",
            Flood::Settings => "SETTINGS",
            Flood::Reset => "RST_STREAM (rapid reset)",
            Flood::Other => "PRIORITY/unknown-frame",
        }
    }

    /// The control frame kind of a frame type, or `None` for the frames that carry requests
    /// (DATA, HEADERS, CONTINUATION, PUSH_PROMISE) and WINDOW_UPDATE, which the `h2` crate
    /// bounds itself.
    fn of(frame_type: u8) -> Option<Flood> {
        match frame_type {
            0x0 | 0x1 | 0x5 | 0x8 | 0x9 => None,
            0x3 => Some(Flood::Reset),
            0x4 => Some(Flood::Settings),
            0x6 => Some(Flood::Ping),
            _ => Some(Flood::Other),
        }
    }
}

/// Reads frame headers out of the client's byte stream and counts control frames per second.
#[derive(Debug)]
pub struct FrameCounter {
    /// Preface bytes still to skip.
    preface_left: usize,
    header: [u8; FRAME_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to skip.
    payload_left: usize,
    limit: u32,
    window_start: Option<Instant>,
    counts: [u32; 4],
}

impl FrameCounter {
    /// A counter for a new connection whose first bytes are the preface, allowing `limit`
    /// control frames per second.
    pub fn new(limit: u32) -> Self {
        FrameCounter {
            preface_left: PREFACE.len(),
            header: [0; FRAME_HEADER],
            header_len: 0,
            payload_left: 0,
            limit,
            window_start: None,
            counts: [0; 4],
        }
    }

    /// Feeds the next bytes read from the client. `Err` with the kind of frame most sent once
    /// more than `limit` control frames arrived within one second.
    pub fn feed(&mut self, mut bytes: &[u8], now: Instant) -> Result<(), Flood> {
        let skip = self.preface_left.min(bytes.len());
        self.preface_left -= skip;
        bytes = &bytes[skip..];
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(bytes.len());
                self.payload_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (FRAME_HEADER - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len < FRAME_HEADER {
                break;
            }
            self.header_len = 0;
            let h = self.header;
            self.payload_left =
                usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
            if let Some(kind) = Flood::of(h[3]) {
                self.count(kind, now)?;
            }
        }
        Ok(())
    }

    fn count(&mut self, kind: Flood, now: Instant) -> Result<(), Flood> {
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= WINDOW {
            self.window_start = Some(now);
            self.counts = [0; 4];
        }
        self.counts[kind as usize] += 1;
        let total: u32 = self.counts.iter().sum();
        if total <= self.limit {
            return Ok(());
        }
        let most = Flood::ALL
            .into_iter()
            .max_by_key(|k| self.counts[*k as usize])
            .unwrap_or(kind);
        Err(most)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![
            (payload >> 16) as u8,
            (payload >> 8) as u8,
            payload as u8,
            kind,
            0,
            0,
            0,
            0,
            1,
        ];
        f.resize(FRAME_HEADER + payload, 0xAB);
        f
    }

    #[test]
    fn pings_past_the_limit_within_a_second_are_a_flood() {
        let t0 = Instant::now();
        let mut counter = FrameCounter::new(10);
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x4, 6)); // the client's SETTINGS
        for _ in 0..9 {
            bytes.extend(frame(0x6, 8));
        }
        assert_eq!(counter.feed(&bytes, t0), Ok(()));
        assert_eq!(counter.feed(&frame(0x6, 8), t0), Err(Flood::Ping));
    }

    #[test]
    fn the_budget_renews_every_second() {
        let t0 = Instant::now();
        let mut counter = FrameCounter::new(10);
        counter.feed(PREFACE, t0).unwrap();
        for second in 0..5 {
            let now = t0 + Duration::from_millis(1000 * second + 10);
            for _ in 0..10 {
                assert_eq!(counter.feed(&frame(0x4, 0), now), Ok(()));
            }
        }
    }

    #[test]
    fn requests_and_payload_bytes_are_not_counted_even_split_across_reads() {
        let t0 = Instant::now();
        let mut counter = FrameCounter::new(10);
        let mut bytes = PREFACE.to_vec();
        for _ in 0..100 {
            bytes.extend(frame(0x1, 40)); // HEADERS
                                          // DATA whose payload looks like PING frame headers.
            bytes.extend(frame(0x0, 0));
            let mut data = frame(0x0, 18);
            data[FRAME_HEADER..].copy_from_slice(&[frame(0x6, 0), frame(0x6, 0)].concat());
            bytes.extend(data);
            bytes.extend(frame(0x8, 4)); // WINDOW_UPDATE
        }
        for chunk in bytes.chunks(7) {
            assert_eq!(counter.feed(chunk, t0), Ok(()));
        }
    }

    #[test]
    fn resets_and_unknown_frames_count_and_the_most_sent_kind_is_named() {
        let t0 = Instant::now();
        let mut counter = FrameCounter::new(10);
        counter.feed(PREFACE, t0).unwrap();
        let mut bytes = Vec::new();
        for i in 0..5 {
            bytes.extend(frame(0x1, 10));
            bytes.extend(frame(0x3, 4));
            bytes.extend(frame(if i % 2 == 0 { 0xEE } else { 0x2 }, 5));
        }
        bytes.extend(frame(0x3, 4));
        assert_eq!(counter.feed(&bytes, t0), Err(Flood::Reset));
    }
}
