//! W3C Trace Context (§14.3): the `traceparent` a backend receives. A valid incoming one keeps
//! its trace id and gets a new parent id for Aegis's hop; a missing or invalid one is replaced by
//! a fresh trace. The trace id goes to the access log.
//!
//! Pure functions over bytes: parsing never allocates, and the outgoing header is built in a
//! stack buffer and copied once into its `HeaderValue` (the only allocation).

use http::header::{GetAll, HeaderName, HeaderValue};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// `00-` + 32 + `-` + 16 + `-` + 2.
const LENGTH: usize = 55;

/// The parts of a valid `traceparent` that travel on: the trace id (32 lowercase hex digits)
/// and the sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming<'a> {
    pub trace_id: &'a [u8],
    pub sampled: bool,
}

/// The `traceparent` headers of a request, if exactly one is there and it is valid.
pub fn incoming<'a>(values: GetAll<'a, HeaderValue>) -> Option<Incoming<'a>> {
    let mut values = values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        // Several `traceparent` fields cannot be told apart: none is trusted.
        return None;
    };
    parse(value.as_bytes())
}

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    }
}

/// Parses a `traceparent` value by the W3C rules: version 00 is exactly 55 bytes; a later
/// version may be longer (after a `-`) and is read as version 00; version `ff`, upper-case hex
/// and all-zero ids are invalid.
pub fn parse(value: &[u8]) -> Option<Incoming<'_>> {
    if value.len() < LENGTH {
        return None;
    }
    let (version, trace_id, parent_id, flags) =
        (&value[0..2], &value[3..35], &value[36..52], &value[53..55]);
    let dashes = value[2] == b'-' && value[35] == b'-' && value[52] == b'-';
    let valid_version = is_lower_hex(version) && version != b"ff";
    let valid_length = match version {
        b"00" => value.len() == LENGTH,
        _ => value.len() == LENGTH || value[LENGTH] == b'-',
    };
    let valid_ids = is_lower_hex(trace_id)
        && is_lower_hex(parent_id)
        && is_lower_hex(flags)
        && trace_id.iter().any(|&b| b != b'0')
        && parent_id.iter().any(|&b| b != b'0');
    (dashes && valid_version && valid_length && valid_ids).then(|| Incoming {
        trace_id,
        sampled: hex_value(flags[1]) & 1 == 1,
    })
}

/// Writes `bytes` as lowercase hex into `out` (twice as long).
fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// The `traceparent` for the backend: the incoming trace continued with a new parent id for
/// Aegis's hop, or a new trace when there is none. Random ids come from UUIDv4s (the request
/// id's generator: thread-local, no lock); a v4 UUID's version and variant bits stay in a fresh
/// trace id, the parent id takes only random bytes.
pub fn outgoing(incoming: Option<Incoming<'_>>) -> HeaderValue {
    let parent = uuid::Uuid::new_v4();
    let b = parent.as_bytes();
    // Bytes 6 and 8 of a v4 UUID carry its version and variant bits.
    let parent = [b[0], b[1], b[2], b[3], b[4], b[5], b[7], b[9]];
    let fresh = match incoming {
        Some(_) => [0; 16],
        None => *uuid::Uuid::new_v4().as_bytes(),
    };
    build(incoming, fresh, parent)
}

/// [`outgoing`] with the random ids given: `fresh_trace_id` is used when there is no incoming
/// trace (sampled: the access log records it). Only the sampled flag is passed on; other flags
/// are reserved and set to zero (W3C level 1).
pub fn build(
    incoming: Option<Incoming<'_>>,
    fresh_trace_id: [u8; 16],
    parent_id: [u8; 8],
) -> HeaderValue {
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    match incoming {
        Some(incoming) => {
            out[3..35].copy_from_slice(incoming.trace_id);
            out[54] = if incoming.sampled { b'1' } else { b'0' };
        }
        None => {
            write_hex(&mut out[3..35], &fresh_trace_id);
            out[54] = b'1';
        }
    }
    write_hex(&mut out[36..52], &parent_id);
    HeaderValue::from_bytes(&out).expect("hex digits and dashes are a valid header value")
}

/// The trace id of a `traceparent` Aegis built (for the access log).
pub fn trace_id(traceparent: &HeaderValue) -> &str {
    traceparent
        .to_str()
        .ok()
        .and_then(|t| t.get(3..35))
        .unwrap_or("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_values_by_table() {
        let trace = Some("4bf92f3577b34da6a3ce929d0e0e4736");
        let table: [(&str, Option<&str>, bool); 14] = [
            (VALID, trace, true),
            (&VALID.replace("-01", "-00"), trace, false),
            // A later version may carry more fields; it is read as version 00.
            (&format!("01{}-extra", &VALID[2..]), trace, true),
            (&format!("01{}", &VALID[2..]), trace, true),
            (&format!("{VALID}-extra"), None, false),
            (&format!("ff{}", &VALID[2..]), None, false),
            (&VALID.to_uppercase(), None, false),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                None,
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                None,
                false,
            ),
            (&VALID[..54], None, false),
            (&VALID.replace('-', "_"), None, false),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-0001",
                None,
                false,
            ),
            (&VALID.replace("4bf9", "4bg9"), None, false),
            ("", None, false),
        ];
        for (value, trace_id, sampled) in table {
            let parsed = parse(value.as_bytes());
            assert_eq!(
                parsed.map(|p| std::str::from_utf8(p.trace_id).unwrap()),
                trace_id,
                "{value}"
            );
            if let Some(p) = parsed {
                assert_eq!(p.sampled, sampled, "{value}");
            }
        }
    }

    #[test]
    fn a_valid_trace_continues_with_a_new_parent_id() {
        let parent = [0xab, 0xcd, 0, 1, 2, 3, 4, 0xff];
        let out = build(parse(VALID.as_bytes()), [0; 16], parent);
        assert_eq!(
            out,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-abcd0001020304ff-01"
        );
        assert_eq!(trace_id(&out), "4bf92f3577b34da6a3ce929d0e0e4736");
        let unsampled = VALID.replace("-01", "-00");
        let out = build(parse(unsampled.as_bytes()), [0; 16], parent);
        assert!(out.to_str().unwrap().ends_with("-00"));
    }

    #[test]
    fn a_missing_trace_is_started_afresh() {
        let trace = [0x4b, 0xf9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xff];
        let out = build(None, trace, [1; 8]);
        assert_eq!(
            out,
            "00-4bf9000102030405060708090a0b0cff-0101010101010101-01"
        );
        let first = outgoing(None);
        let parsed = parse(first.as_bytes()).expect("what Aegis sends is valid");
        assert!(parsed.sampled);
        let second = outgoing(None);
        assert_ne!(trace_id(&first), trace_id(&second));
        assert_ne!(first.as_bytes()[36..52], second.as_bytes()[36..52]);
        // A continued trace keeps its id with a fresh parent id each time.
        let continued = outgoing(parse(VALID.as_bytes()));
        assert_eq!(trace_id(&continued), &VALID[3..35]);
        assert_ne!(continued.as_bytes()[36..52], VALID.as_bytes()[36..52]);
    }

    #[test]
    fn several_traceparent_fields_are_not_trusted() {
        let mut headers = http::HeaderMap::new();
        headers.append(TRACEPARENT, HeaderValue::from_static(VALID));
        assert!(incoming(headers.get_all(TRACEPARENT)).is_some());
        headers.append(TRACEPARENT, HeaderValue::from_static(VALID));
        assert!(incoming(headers.get_all(TRACEPARENT)).is_none());
    }
}
