//! The route table's decisions, as a table.

use super::*;
use crate::security::request::host_allowed;

fn route(host: Option<&str>, prefix: &str) -> RouteMatch {
    RouteMatch {
        host: host.map(|h| HostPattern::parse(h).expect("a valid pattern")),
        prefix: path::normalise(prefix).to_string(),
    }
}

fn table() -> RouteTable {
    RouteTable::new(&[
        route(Some("api.example.com"), "/v1/"),  // 0
        route(Some("api.example.com"), "/"),     // 1
        route(Some("*.example.com"), "/static"), // 2
        route(Some("www.example.com"), "/"),     // 3
        route(Some("*.example.com"), "/"),       // 4
        route(None, "/health"),                  // 5
        route(Some("example.com"), "/"),         // 6
        route(Some("*.b.example.org"), "/"),     // 7
        route(Some("*.example.org"), "/"),       // 8
        route(Some("10.0.0.1"), "/"),            // 9
        route(Some("[::1]"), "/"),               // 10
    ])
}

#[test]
fn first_match_wins_by_host_and_path() {
    let table = table();
    let cases: [(Option<&str>, &str, Option<RouteId>); 24] = [
        (Some("api.example.com"), "/v1/users", Some(0)),
        (Some("api.example.com"), "/v1", Some(0)),
        (Some("api.example.com"), "/v1x", Some(1)),
        (Some("API.Example.com:443"), "/v1/x", Some(0)),
        (Some("api.example.com."), "/v1/x", Some(0)),
        (Some("api.example.com"), "/static/x", Some(1)),
        (Some("www.example.com"), "/static/app.js", Some(2)),
        (Some("www.example.com"), "/index.html", Some(3)),
        (Some("a.example.com"), "/x", Some(4)),
        (Some("a.b.example.com"), "/x", Some(4)),
        (Some("example.com"), "/x", Some(6)),
        (Some("example.com"), "/health", Some(5)),
        (Some("api.example.com"), "/health", Some(1)),
        (Some("evil.com"), "/health/x", Some(5)),
        (Some("evil.com"), "/healthz", None),
        (None, "/x", None),
        (None, "/health", Some(5)),
        (Some("x.b.example.org"), "/", Some(7)),
        (Some("b.example.org"), "/", Some(8)),
        (Some("10.0.0.1:8080"), "/", Some(9)),
        (Some("[::1]:8080"), "/", Some(10)),
        (Some("api.example.com/x"), "/v1", None),
        (Some("a..example.com"), "/", None),
        (Some("api.example.com"), "/%761/x", Some(0)),
    ];
    for (host, path, expected) in cases {
        assert_eq!(table.find(host, path), expected, "{host:?} {path}");
    }
}

#[test]
fn wildcards_follow_the_allowlist_rule() {
    let table = RouteTable::new(&[route(Some("*.example.com"), "/")]);
    for host in [
        "a.example.com",
        "A.B.EXAMPLE.com:1",
        "example.com",
        "xexample.com",
        "a.example.com.evil",
        ".example.com",
        "a.example.com:http",
    ] {
        let allowed = host_allowed(host, &["*.example.com".to_string()]);
        assert_eq!(table.find(Some(host), "/").is_some(), allowed, "{host}");
    }
}

#[test]
fn patterns_take_names_and_wildcards_only() {
    let parse = |s: &str| HostPattern::parse(s).map(|p| p.to_string());
    assert_eq!(parse("API.Example.com").as_deref(), Some("api.example.com"));
    assert_eq!(parse("*.Example.com").as_deref(), Some("*.example.com"));
    assert_eq!(parse("example.com.").as_deref(), Some("example.com"));
    assert_eq!(parse("[::1]").as_deref(), Some("[::1]"));
    for bad in [
        "a.*.example.com",
        "*example.com",
        "example.com:443",
        "example.com/x",
        "*.[::1]",
        "[::1]:80",
        "",
        "*.",
        "a b",
    ] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}

#[test]
fn shadowing_needs_the_host_and_the_prefix_covered() {
    let shadowed = |later: RouteMatch, earlier: RouteMatch| later.shadowed_by(&earlier);
    assert!(shadowed(route(None, "/v1/x"), route(None, "/v1")));
    assert!(!shadowed(route(None, "/v1x"), route(None, "/v1")));
    assert!(shadowed(
        route(Some("a.example.com"), "/"),
        route(None, "/")
    ));
    assert!(!shadowed(
        route(None, "/"),
        route(Some("a.example.com"), "/")
    ));
    assert!(shadowed(
        route(Some("a.example.com"), "/x"),
        route(Some("*.example.com"), "/")
    ));
    assert!(!shadowed(
        route(Some("example.com"), "/"),
        route(Some("*.example.com"), "/")
    ));
    assert!(shadowed(
        route(Some("*.a.example.com"), "/"),
        route(Some("*.example.com"), "/")
    ));
    assert!(!shadowed(
        route(Some("*.example.com"), "/"),
        route(Some("*.a.example.com"), "/")
    ));
    assert!(!shadowed(
        route(Some("*.example.com"), "/"),
        route(Some("a.example.com"), "/")
    ));
}

#[test]
fn a_table_without_host_routes_ignores_the_host() {
    let table = RouteTable::new(&[route(None, "/api"), route(None, "/")]);
    assert_eq!(table.find(Some("whatever"), "/api/x"), Some(0));
    assert_eq!(table.find(Some("bad host/"), "/x"), Some(1));
    assert_eq!(RouteTable::new(&[]).find(Some("a"), "/"), None);
}
