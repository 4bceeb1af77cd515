//! `redirect_to_https` (§11.1): where a plain listener sends its clients.

/// The `Location` of the 308 answer: the configured origin, then the request's path and query.
///
/// SECURITY: open redirect — the scheme, host and port come only from the operator's
/// `redirect_to_https`; the client contributes the path and query of its request target, which
/// always begin with `/` here (an absolute-form target's own authority is dropped, and anything
/// else becomes `/`), so `Location` can never point at another host.
pub fn location(origin: &str, uri: &http::Uri) -> String {
    let path = uri.path();
    let path = if path.starts_with('/') { path } else { "/" };
    let mut location = String::with_capacity(origin.len() + path.len() + 16);
    location.push_str(origin);
    location.push_str(path);
    if let Some(query) = uri.query() {
        location.push('?');
        location.push_str(query);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_follow_the_origin_and_nothing_else() {
        let origin = "https://example.com:8443";
        let cases = [
            ("/", "https://example.com:8443/"),
            ("/a/b?x=1&y=2", "https://example.com:8443/a/b?x=1&y=2"),
            (
                "http://evil.test/steal?q",
                "https://example.com:8443/steal?q",
            ),
            ("http://evil.test", "https://example.com:8443/"),
            ("//evil.test/x", "https://example.com:8443//evil.test/x"),
            ("*", "https://example.com:8443/"),
        ];
        for (target, expected) in cases {
            let uri: http::Uri = target.parse().expect("a valid request target");
            assert_eq!(location(origin, &uri), expected, "{target}");
        }
    }
}
