//! Unit tests of the admin listener's pure parts: action paths and request heads by table.
use super::*;

/// A head reduced to what the table checks: `None` incomplete, `Some(None)` malformed.
type Seen<'a> = Option<Option<(&'a str, &'a str, Option<&'a [u8]>, usize)>>;

fn seen(head: Head<'_>) -> Seen<'_> {
    match head {
        Head::Incomplete => None,
        Head::Malformed => Some(None),
        Head::Request {
            method,
            path,
            authorization,
            body,
            ..
        } => Some(Some((method, path, authorization, body))),
    }
}

#[test]
fn action_paths_by_table() {
    let cases = [
        (
            "/backends/http-a:1/drain",
            Some(Action::Backend("http-a:1", AdminState::Drained)),
        ),
        (
            "/backends/http-a:1/enable",
            Some(Action::Backend("http-a:1", AdminState::Enabled)),
        ),
        ("/backends/http-a:1/other", None),
        ("/backends/drain", None),
        ("/status", None),
        ("/reload", Some(Action::Reload)),
        ("/reload/", None),
    ];
    for (path, expected) in cases {
        assert_eq!(parse_action(path), expected, "{path}");
    }
}

#[test]
fn heads_are_parsed_by_table() {
    let long = format!("GET /status HTTP/1.1\r\nX-Long: {}", "a".repeat(MAX_HEAD));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
    let many = format!("GET /status HTTP/1.1\r\n{many}\r\n");
    let table: [(&[u8], bool, Seen); 13] = [
        (b"", false, None),
        (b"GET /sta", false, None),
        (b"GET /status HTTP/1.1\r\nHost: a\r\n", false, None),
        (
            b"GET /status HTTP/1.1\r\n\r\n",
            false,
            Some(Some(("GET", "/status", None, 0))),
        ),
        (
            b"HEAD /healthz?x=1 HTTP/1.0\r\n\r\n",
            false,
            Some(Some(("HEAD", "/healthz?x=1", None, 0))),
        ),
        (
            b"POST /backends/x/drain HTTP/1.1\r\nauthorization: Bearer t\r\nContent-Length: 2\r\n\r\n",
            false,
            Some(Some(("POST", "/backends/x/drain", Some(b"Bearer t"), 2))),
        ),
        (
            b"POST /a HTTP/1.1\r\nContent-Length: two\r\n\r\n",
            false,
            Some(None),
        ),
        // A head cut at the size limit is answered by its request line.
        (
            long.as_bytes(),
            true,
            Some(Some(("GET", "/status", None, 0))),
        ),
        (b"GET http://a/ HTTP/1.1\r\n\r\n", false, Some(None)),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", false, Some(None)),
        (many.as_bytes(), false, Some(None)),
        (b"\xff\xfe", false, Some(None)),
        (
            b"PUT / HTTP/1.1\r\n\r\n",
            false,
            Some(Some(("PUT", "/", None, 0))),
        ),
    ];
    for (received, full, expected) in table {
        assert_eq!(
            seen(parse_head(received, full)),
            expected,
            "{:?}",
            String::from_utf8_lossy(&received[..received.len().min(60)])
        );
    }
}
