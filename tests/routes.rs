//! Several sites behind one Aegis (SPEC §17), black-box: pools behind host and path routes on
//! the real binary with fake backends. Each pool keeps its own share, health and 503s; a request
//! no route takes is refused 404; the config's routing mistakes are named by key path.

mod common;

use common::http::{assert_hardened, assert_refused, Connection, Response};
use common::{run_aegis, scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use std::time::Duration;

/// `GET path` with this Host on a keep-alive connection.
fn get(conn: &mut Connection, host: &str, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    conn.exchange(request.as_bytes()).expect("a response")
}

/// `GET path` with this Host on a connection of its own (Aegis closes a connection after a 5xx
/// it writes itself).
fn get_once(aegis: &Aegis, host: &str, path: &str) -> Response {
    let mut conn = Connection::open(aegis.addr()).expect("connect");
    get(&mut conn, host, path)
}

/// Which backend answered (`X-Backend`), or the status when Aegis answered itself.
fn who(resp: &Response) -> String {
    resp.header("x-backend")
        .map_or_else(|| resp.status.to_string(), str::to_string)
}

/// The two-site config: `v1` behind a path route (stripped), `api` and `www` behind host
/// routes, no default pool.
fn two_sites(v1: &FakeBackend, api: &[&FakeBackend], www: &[&FakeBackend]) -> String {
    let list = |backends: &[&FakeBackend]| {
        backends
            .iter()
            .map(|b| format!("{{url: \"{}\"}}", b.url()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"
pools:
  v1:
    backends: [{v1}]
  api:
    backends: [{api}]
  www:
    backends: [{www}]
routes:
  - host: api.example.com
    path_prefix: /v1/
    pool: v1
    strip_prefix: true
    name: api-v1
  - host: api.example.com
    pool: api
  - host: "*.example.com"
    pool: www
"#,
        v1 = list(&[v1]),
        api = list(api),
        www = list(www),
    )
}

#[test]
fn hosts_and_paths_choose_the_pool_and_a_miss_is_404() {
    let v1 = FakeBackend::start("v1").unwrap();
    let api = FakeBackend::start("api").unwrap();
    let www = FakeBackend::start("www").unwrap();
    let aegis = Aegis::start(&[], &two_sites(&v1, &[&api], &[&www]));
    let mut conn = Connection::open(aegis.addr()).unwrap();
    let cases = [
        ("api.example.com", "/v1/users?page=2", "v1"),
        ("api.example.com", "/v1", "v1"),
        ("api.example.com", "/v1x", "api"),
        ("API.Example.com:443", "/v1/x", "v1"),
        ("api.example.com.", "/other", "api"),
        ("www.example.com", "/v1/x", "www"),
        ("a.b.example.com", "/", "www"),
        // `*.example.com` is every subdomain, not the parent itself.
        ("example.com", "/", "404"),
        ("example.org", "/v1/x", "404"),
    ];
    for (host, path, expected) in cases {
        let resp = get(&mut conn, host, path);
        assert_eq!(who(&resp), expected, "{host} {path}: {resp:?}");
        if expected == "404" {
            assert_refused(&resp, 404, "no route");
        } else {
            assert_hardened(&resp);
        }
    }
    // strip_prefix: the backend sees the rest of the path, the query kept.
    let targets: Vec<String> = v1.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/users?page=2", "/", "/x"]);
    assert_eq!(api.requests()[0].target, "/v1x");
    // The refusal is counted (under no route) and logged like every other (once the request
    // has ended, which may be just after the client read its answer).
    let mut metrics = String::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            metrics = aegis.admin_get("/metrics").text();
            metrics
                .lines()
                .any(|l| l.starts_with("aegis_refusals_total{reason=\"no_route\",route=\"\"} 2"))
        }),
        "{metrics}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || aegis.output().contains(
            "\"refusal\":\"no_route\",\"tls\":\"-\",\"route\":\"-\",\"pool\":\"-\""
        )),
        "{}",
        aegis.output()
    );
    // Visibility: the access line names the route and pool, backend series carry the pool,
    // /status groups backends by pool.
    assert!(
        wait_until(Duration::from_secs(5), || aegis
            .output()
            .contains("\"route\":\"api-v1\",\"pool\":\"v1\"")),
        "{}",
        aegis.output()
    );
    assert!(aegis
        .output()
        .contains("\"route\":\"routes[2]\",\"pool\":\"www\""));
    let requests = format!(
        "aegis_backend_requests_total{{backend=\"{}\",pool=\"v1\"}} 3",
        v1.url()
    );
    assert!(
        wait_until(Duration::from_secs(5), || aegis
            .admin_get("/metrics")
            .text()
            .contains(&requests)),
        "{}",
        aegis.admin_get("/metrics").text()
    );
    let status = aegis.status();
    let pools: Vec<(String, Vec<String>)> = status["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let ids = p["backends"].as_array().unwrap();
            (
                p["name"].as_str().unwrap().to_string(),
                ids.iter()
                    .map(|i| i.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let id = |b: &FakeBackend| b.url().replacen("://", "-", 1);
    assert_eq!(
        pools,
        [
            ("default".to_string(), vec![]),
            ("api".to_string(), vec![id(&api)]),
            ("v1".to_string(), vec![id(&v1)]),
            ("www".to_string(), vec![id(&www)]),
        ]
    );
    assert_eq!(status["backends"][0]["pool"], "api");
}

#[test]
fn a_dead_pool_answers_503_while_the_other_site_keeps_full_service() {
    let v1 = FakeBackend::start("v1").unwrap();
    let api = [
        FakeBackend::start("api-1").unwrap(),
        FakeBackend::start("api-2").unwrap(),
    ];
    let www = [
        FakeBackend::start("www-1").unwrap(),
        FakeBackend::start("www-2").unwrap(),
    ];
    let aegis = Aegis::start(
        &[],
        &two_sites(&v1, &[&api[0], &api[1]], &[&www[0], &www[1]]),
    );
    let mut conn = Connection::open(aegis.addr()).unwrap();
    // Each pool shares its own requests by weight: 2 × 10 over two backends each.
    for _ in 0..10 {
        assert_eq!(get(&mut conn, "api.example.com", "/").status, 200);
        assert_eq!(get(&mut conn, "www.example.com", "/").status, 200);
    }
    for backend in api.iter().chain(&www) {
        assert_eq!(backend.request_count(), 5, "{}", backend.name());
    }
    // Every api backend goes away.
    for backend in &api {
        backend.set_refuse_connections(true);
    }
    let mut www_statuses = Vec::new();
    let mut api_answer = None;
    let down = wait_until(Duration::from_secs(10), || {
        www_statuses.push(get(&mut conn, "www.example.com", "/").status);
        let resp = get_once(&aegis, "api.example.com", "/");
        let unavailable = resp.status == 503;
        api_answer = Some(resp);
        unavailable
    });
    let api_answer = api_answer.expect("asked at least once");
    assert!(down, "api never answered 503: {api_answer:?}");
    assert_refused(&api_answer, 503, "no healthy backend");
    assert!(
        api_answer
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)),
        "{api_answer:?}"
    );
    for _ in 0..20 {
        www_statuses.push(get(&mut conn, "www.example.com", "/").status);
        assert_eq!(get_once(&aegis, "api.example.com", "/").status, 503);
    }
    assert!(
        www_statuses.iter().all(|s| *s == 200),
        "www must stay at 100 %: {www_statuses:?}"
    );
    // The other pools' backends are untouched: still healthy in /status.
    let status = aegis.status();
    let healthy: Vec<(String, bool)> = status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["url"].as_str().unwrap().to_string(),
                b["healthy"].as_bool().unwrap(),
            )
        })
        .collect();
    for backend in &www {
        assert!(healthy.contains(&(backend.url(), true)), "{healthy:?}");
    }
    for backend in &api {
        assert!(healthy.contains(&(backend.url(), false)), "{healthy:?}");
    }
    // The path route of the same host is its own pool, still served.
    assert_eq!(who(&get_once(&aegis, "api.example.com", "/v1/x")), "v1");
}

#[test]
fn unmatched_requests_go_to_the_default_pool_when_there_is_one() {
    let default = FakeBackend::start("default").unwrap();
    let api = FakeBackend::start("api").unwrap();
    let aegis = Aegis::start(
        &[(default.url(), 1)],
        &format!(
            "pools:\n  api:\n    backends: [{{url: \"{}\"}}]\nroutes:\n  - {{host: api.example.com, pool: api}}\n",
            api.url()
        ),
    );
    let mut conn = Connection::open(aegis.addr()).unwrap();
    assert_eq!(who(&get(&mut conn, "api.example.com", "/")), "api");
    assert_eq!(who(&get(&mut conn, "example.com", "/")), "default");
    assert_eq!(who(&get(&mut conn, "test.local", "/x")), "default");
}

#[test]
fn routing_mistakes_are_named_by_key_path() {
    let dir = scratch_dir();
    let path = dir.join("aegis.yml");
    std::fs::write(
        &path,
        r#"
development: {allow_loopback_backends: true}
pools:
  api:
    backends: [{url: "http://127.0.0.1:1"}]
  web:
    backends: []
routes:
  - {host: api.example.com, pool: apii}
  - {host: "api.example.com:443", pool: api}
  - {path_prefix: /v1, pool: api}
  - {path_prefix: /v1/, pool: api}
  - {path_prefix: /v1/x, pool: api}
  - {pool: api, strip_prefix: true}
"#,
    )
    .unwrap();
    let (code, out, err) = run_aegis(&["-t", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    let all = format!("{out}{err}");
    for expected in [
        "routes[0].pool: no pool named \"apii\" (pools: api, web)",
        "routes[1].host: expected a name or *.name (no port, no path), got \"api.example.com:443\"",
        "routes[3]: same host and path_prefix as routes[2]",
        "routes[5].strip_prefix: needs path_prefix",
        "pools.web.backends: at least one backend is required",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
}

#[test]
fn the_two_site_example_validates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/routes.yml");
    let (code, out, err) = run_aegis(&["-t", "-c", path]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is valid"), "{out}");
}

#[test]
fn a_reload_applies_routes_and_pool_members() {
    let v1 = FakeBackend::start("v1").unwrap();
    let (api, api_2) = (
        FakeBackend::start("api").unwrap(),
        FakeBackend::start("api-2").unwrap(),
    );
    let www = FakeBackend::start("www").unwrap();
    let aegis = Aegis::start(&[], &two_sites(&v1, &[&api], &[&www]));
    let text = std::fs::read_to_string(&aegis.config_path).unwrap();
    let mut config: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let pools =
        two_sites(&v1, &[&api, &api_2], &[&www]).replace("\"*.example.com\"", "web.example.com");
    let over: serde_yaml::Value = serde_yaml::from_str(&pools).unwrap();
    config["pools"] = over["pools"].clone();
    config["routes"] = over["routes"].clone();
    std::fs::write(&aegis.config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
    assert_eq!(aegis.sighup()["result"], "applied");
    assert_eq!(who(&get_once(&aegis, "web.example.com", "/")), "www");
    assert_eq!(who(&get_once(&aegis, "a.example.com", "/")), "404");
    // The added backend joins the api pool at its first passing probe.
    assert!(wait_until(Duration::from_secs(10), || {
        get_once(&aegis, "api.example.com", "/");
        api_2.request_count() > 0
    }));
    assert_eq!(v1.request_count(), 0);
    // Adding and removing pools: tests/pool_reload.rs.
}

#[test]
fn a_route_limit_holds_a_client_on_its_route_only_and_body_limits_are_per_route() {
    let api = FakeBackend::start("api").unwrap();
    let www = FakeBackend::start("www").unwrap();
    let aegis = Aegis::start(
        &[],
        &format!(
            r#"
pools:
  api:
    backends: [{{url: "{}"}}]
  www:
    backends: [{{url: "{}"}}]
routes:
  - host: api.example.com
    pool: api
    rate_limit: {{requests_per_second: 1, burst: 5}}
  - host: upload.example.com
    pool: www
    max_body_bytes: 10
  - host: www.example.com
    pool: www
"#,
            api.url(),
            www.url()
        ),
    );
    let mut conn = Connection::open(aegis.addr()).unwrap();
    let api_statuses: Vec<u16> = (0..8)
        .map(|_| get(&mut conn, "api.example.com", "/").status)
        .collect();
    assert_eq!(api_statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let limited = get(&mut conn, "api.example.com", "/");
    assert_refused(&limited, 429, "rate limit exceeded");
    assert!(limited.header("retry-after").is_some());
    // The same client is free on the other route (the top-level limit, per route).
    for _ in 0..20 {
        assert_eq!(get(&mut conn, "www.example.com", "/").status, 200);
    }
    // max_body_bytes: 10 on the upload route, the server's 10 MiB elsewhere; declared or
    // chunked.
    let post = |host: &str, body: &str, chunked: bool| {
        let framing = if chunked {
            format!(
                "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
        } else {
            format!("Content-Length: {}\r\n\r\n{body}", body.len())
        };
        let request = format!("POST /upload HTTP/1.1\r\nHost: {host}\r\n{framing}");
        let mut conn = Connection::open(aegis.addr()).unwrap();
        conn.exchange(request.as_bytes()).unwrap()
    };
    let body = "twenty bytes of body";
    assert_eq!(post("www.example.com", body, false).status, 200);
    assert_eq!(post("upload.example.com", "small", false).status, 200);
    assert_refused(
        &post("upload.example.com", body, false),
        413,
        "request body too large",
    );
    assert_eq!(post("upload.example.com", body, true).status, 413);
    assert_eq!(post("www.example.com", body, true).status, 200);
}

#[test]
fn the_top_level_limit_counts_a_client_per_route() {
    let (api, www) = (
        FakeBackend::start("api").unwrap(),
        FakeBackend::start("www").unwrap(),
    );
    let extra = two_sites(&www, &[&api], &[&www])
        + "rate_limit: {requests_per_second: 1, burst: 3}\nadaptive: {min_rate: 0.5}\n";
    let aegis = Aegis::start(&[], &extra);
    let mut conn = Connection::open(aegis.addr()).unwrap();
    for host in ["api.example.com", "www.example.com"] {
        let statuses: Vec<u16> = (0..5).map(|_| get(&mut conn, host, "/").status).collect();
        assert_eq!(statuses, [200, 200, 200, 429, 429], "{host}");
    }
}
