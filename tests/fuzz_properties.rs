//! The fuzz targets' properties (`fuzz/properties.rs`) as a bounded property test, so that CI
//! checks them without the nightly toolchain cargo-fuzz needs: proptest feeds them request
//! heads assembled from the pieces smuggling is made of (framing header names and values,
//! separators, line ends, control bytes), and plain random bytes. A failure is shrunk to a
//! minimal head and saved under `proptest-regressions/`.

#[path = "../fuzz/properties.rs"]
mod properties;

use proptest::prelude::*;

const LINES: &[&str] = &[
    "GET / HTTP/1.1",
    "POST /a HTTP/1.1",
    "POST / HTTP/1.0",
    "",
    "GET http://a/ HTTP/1.1",
];
const NAMES: &[&str] = &[
    "Content-Length",
    "content-length",
    "CONTENT-LENGTH",
    "Transfer-Encoding",
    "transfer-encoding",
    "Transfer-Encoding ",
    " Transfer-Encoding",
    "Content-Length\t",
    "Host",
    "X-A",
    "Transfer_Encoding",
    "",
];
const SEPARATORS: &[&str] = &[": ", ":", " : ", ":\t", ": \t", "::", " "];
const VALUES: &[&str] = &[
    "5",
    "05",
    "+5",
    "-5",
    "5, 5",
    "5,6",
    "5 ",
    " 5",
    "",
    "99999999999999999999",
    "0x5",
    "chunked",
    "Chunked",
    " chunked",
    "chunked ",
    "chunked, identity",
    "identity",
    "gzip, chunked",
    "chunked\x0b",
    "chu\x00nked",
    "a.test",
    "x",
];
const ENDS: &[&str] = &["\r\n", "\r\n", "\r\n", "\n", "\r", "\r\n ", "\r\n\t"];

/// One header line: mostly well-formed (a known name, `: `, CRLF) with any value, sometimes
/// assembled from any of the pieces above.
fn line() -> impl Strategy<Value = String> {
    let well_formed = (
        prop::sample::select(
            &[
                "Content-Length",
                "transfer-encoding",
                "Host",
                "X-A",
                "Accept",
            ][..],
        ),
        prop::sample::select(VALUES),
    )
        .prop_map(|(n, v)| format!("{n}: {v}\r\n"));
    let any = (
        prop::sample::select(NAMES),
        prop::sample::select(SEPARATORS),
        prop::sample::select(VALUES),
        prop::sample::select(ENDS),
    )
        .prop_map(|(n, s, v, e)| format!("{n}{s}{v}{e}"));
    prop_oneof![4 => well_formed, 1 => any]
}

/// A request head made of a request line and up to four such header lines, one time in five
/// with one byte overwritten.
fn head() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(LINES),
        prop::collection::vec(line(), 0..5),
        prop::option::weighted(0.2, (any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|(first, lines, flip)| {
            let mut bytes = format!("{first}\r\n{}\r\n", lines.concat()).into_bytes();
            if let Some((at, byte)) = flip {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn raw_header_check_and_httparse_never_both_accept_an_ambiguous_head(bytes in head()) {
        properties::raw_header(&bytes);
    }

    #[test]
    fn request_validators_hold_their_invariants_on_heads(bytes in head()) {
        properties::request_validators(&bytes);
    }

    #[test]
    fn request_validators_hold_their_invariants_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        properties::request_validators(&bytes);
        properties::raw_header(&bytes);
    }
}

/// The generator does reach the interesting inputs: heads both parsers accept with a framing
/// header, and heads the raw-header check refuses (so the property above is not vacuous).
#[test]
fn the_generator_reaches_accepted_and_refused_framing() {
    use aegis::security::request::check_framing;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..2000 {
        let bytes = head().new_tree(&mut runner).unwrap().current();
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let parsed = matches!(
            httparse::Request::new(&mut fields).parse(&bytes),
            Ok(httparse::Status::Complete(_))
        );
        let framing = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        let has_framing =
            framing.contains("content-length") || framing.contains("transfer-encoding");
        match check_framing(&bytes) {
            Ok(()) if parsed && has_framing => accepted += 1,
            Err(_) => refused += 1,
            _ => {}
        }
    }
    assert!(
        accepted > 50 && refused > 50,
        "accepted {accepted}, refused {refused}"
    );
}
