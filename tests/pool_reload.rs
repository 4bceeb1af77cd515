//! Adding and removing pools by reload (SPEC §17 with §12.1), black-box: the running binary's
//! config file gains or loses a pool and its route, applied by `SIGHUP` while clients keep
//! sending requests. A new pool serves at once and is health-checked; a removed pool's route is
//! gone, its requests under way finish, its health loop stops and its series leave `/metrics`.

mod common;

use common::http::{assert_refused, Connection, Response};
use common::load::Load;
use common::{free_port, wait_until, Aegis};
use fake_backends::FakeBackend;
use serde_yaml::Value;
use std::time::Duration;

fn backend(name: &str) -> FakeBackend {
    FakeBackend::start(name).expect("backend starts")
}

/// `GET path` with this Host on a connection of its own.
fn get_once(aegis: &Aegis, host: &str, path: &str) -> Response {
    let mut conn = Connection::open(aegis.addr()).expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    conn.exchange(request.as_bytes()).expect("a response")
}

/// Which backend answered (`X-Backend`), or the status when Aegis answered itself.
fn who(resp: &Response) -> String {
    resp.header("x-backend")
        .map_or_else(|| resp.status.to_string(), str::to_string)
}

/// `pools:` with one pool per `(name, backend URLs)` and `routes:` sending `NAME.example.com`
/// to pool `NAME`, as YAML values.
fn pools_and_routes(pools: &[(&str, &[String])]) -> (Value, Value) {
    let mut yaml = String::from("pools:\n");
    for (name, urls) in pools {
        let list: Vec<String> = urls.iter().map(|u| format!("{{url: \"{u}\"}}")).collect();
        yaml.push_str(&format!("  {name}:\n    backends: [{}]\n", list.join(", ")));
    }
    yaml.push_str("routes:\n");
    for (name, _) in pools {
        yaml.push_str(&format!("  - host: {name}.example.com\n    pool: {name}\n"));
    }
    let value: Value = serde_yaml::from_str(&yaml).expect("YAML");
    (value["pools"].clone(), value["routes"].clone())
}

/// Starts Aegis without a default pool, with these pools behind their routes.
fn start(pools: &[(&str, &[String])]) -> Aegis {
    let (pools, routes) = pools_and_routes(pools);
    let mut extra = serde_yaml::Mapping::new();
    extra.insert("pools".into(), pools);
    extra.insert("routes".into(), routes);
    Aegis::start(&[], &serde_yaml::to_string(&extra).unwrap())
}

/// Rewrites the running instance's pools and routes, then `SIGHUP`, and waits for `/status` to
/// report the reload applied.
fn reload_with(aegis: &Aegis, pools: &[(&str, &[String])]) {
    let text = std::fs::read_to_string(&aegis.config_path).expect("config readable");
    let mut config: Value = serde_yaml::from_str(&text).expect("config is YAML");
    let (p, r) = pools_and_routes(pools);
    config["pools"] = p;
    config["routes"] = r;
    std::fs::write(&aegis.config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let last = aegis.sighup();
    assert_eq!(last["result"], "applied", "{last}\n{}", aegis.output());
}

/// The `/status` entry of the backend `url` in pool `pool`.
fn status_of(aegis: &Aegis, pool: &str, url: &str) -> Option<serde_json::Value> {
    aegis.status()["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["pool"] == pool && b["url"] == url)
        .cloned()
}

fn pool_names(aegis: &Aegis) -> Vec<String> {
    aegis.status()["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_reload_adds_a_pool_whose_route_serves_at_once_and_whose_backends_are_health_checked() {
    let www = backend("www");
    let api = backend("api");
    // Nothing listens there: the new pool's second backend is dead.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let aegis = start(&[("www", &[www.url()])]);
    let load = Load::start(aegis.addr(), &[("www.example.com", "www")]);
    load.wait_for(50);
    assert_refused(&get_once(&aegis, "api.example.com", "/"), 404, "no route");

    reload_with(
        &aegis,
        &[("api", &[api.url(), dead.clone()]), ("www", &[www.url()])],
    );
    load.wait_for(50);
    // The new route is served by the new pool: the live backend takes requests at once (the
    // pool had nothing else to serve with), and the dead one is marked down by the pool's own
    // health checks, after which every request goes to the live one.
    assert!(
        wait_until(Duration::from_secs(10), || status_of(&aegis, "api", &dead)
            .is_some_and(|b| b["healthy"] == false)),
        "{}",
        aegis.status()
    );
    assert!(api.health_probes() > 0, "the new pool is probed");
    for _ in 0..10 {
        assert_eq!(who(&get_once(&aegis, "api.example.com", "/")), "api");
    }
    assert_eq!(pool_names(&aegis), ["default", "api", "www"]);
    let events = aegis.status()["events"].to_string();
    assert!(events.contains("added pool api"), "{events}");
    let (sent, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {failures:?}",
        failures.len()
    );
}

#[test]
fn a_reload_removes_a_pool_whose_requests_under_way_finish_while_the_others_keep_serving() {
    let (www, api, old) = (backend("www"), backend("api"), backend("old"));
    let aegis = start(&[
        ("api", &[api.url()]),
        ("old", &[old.url()]),
        ("www", &[www.url()]),
    ]);
    let load = Load::start(
        aegis.addr(),
        &[
            ("www.example.com", "www"),
            ("api.example.com", "api"),
            ("www.example.com", "www"),
        ],
    );
    load.wait_for(100);
    let old_series = format!(
        "aegis_backend_requests_total{{backend=\"{}\",pool=\"old\"}}",
        old.url()
    );
    // A slow request to the pool about to go.
    old.set_latency(Duration::from_millis(1500));
    let addr = aegis.addr();
    let slow = std::thread::spawn(move || {
        let mut conn = Connection::open(addr).expect("connect");
        conn.exchange(b"GET /slow HTTP/1.1\r\nHost: old.example.com\r\n\r\n")
    });
    assert!(wait_until(Duration::from_secs(5), || old.in_flight() == 1));
    assert!(aegis.admin_get("/metrics").text().contains(&old_series));

    reload_with(&aegis, &[("api", &[api.url()]), ("www", &[www.url()])]);
    // Its route is gone: no default pool, so 404.
    assert_refused(&get_once(&aegis, "old.example.com", "/"), 404, "no route");
    // The request under way finishes with the pool it chose.
    let resp = slow.join().unwrap().expect("the slow request is answered");
    assert_eq!((resp.status, who(&resp)), (200, "old".to_string()));
    load.wait_for(100);
    let (sent, failures) = load.stop();
    assert!(sent >= 200, "only {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {failures:?}",
        failures.len()
    );
    assert_eq!(pool_names(&aegis), ["default", "api", "www"]);
    // The removed pool's state is gone (its series left /metrics), and its health loop
    // stopped: while the kept pool is probed several times, it is probed at most once more
    // (a probe under way when the loop stopped).
    assert!(!aegis.admin_get("/metrics").text().contains(&old_series));
    old.reset_stats();
    api.reset_stats();
    assert!(wait_until(Duration::from_secs(10), || api.health_probes() >= 6));
    assert!(old.health_probes() <= 1, "{} probes", old.health_probes());
    let events = aegis.status()["events"].to_string();
    assert!(events.contains("removed pool old"), "{events}");
}

#[test]
fn reload_cycles_keep_one_health_loop_per_pool() {
    // `shared` is in the kept pool `keep` and in `extra`, which every other reload removes and
    // the next adds back; `alone` is only in `keep`. One loop per pool in force: `shared` is
    // probed by two loops, `alone` by one. A leaked loop of `extra` would multiply `shared`'s
    // probes.
    let (shared, alone) = (backend("shared"), backend("alone"));
    let keep: &[String] = &[shared.url(), alone.url()];
    let extra: &[String] = &[shared.url()];
    let aegis = start(&[("keep", keep)]);
    let load = Load::start(aegis.addr(), &[("keep.example.com", "*")]);
    for _ in 0..8 {
        reload_with(&aegis, &[("extra", extra), ("keep", keep)]);
        assert_eq!(who(&get_once(&aegis, "extra.example.com", "/")), "shared");
        reload_with(&aegis, &[("keep", keep)]);
        assert_refused(&get_once(&aegis, "extra.example.com", "/"), 404, "no route");
    }
    reload_with(&aegis, &[("extra", extra), ("keep", keep)]);
    shared.reset_stats();
    alone.reset_stats();
    assert!(wait_until(Duration::from_secs(10), || alone
        .health_probes()
        >= 10));
    let (shared_probes, alone_probes) = (shared.health_probes(), alone.health_probes());
    assert!(
        shared_probes <= 2 * alone_probes + 4,
        "{shared_probes} probes of the shared backend against {alone_probes} of the other"
    );
    assert_eq!(pool_names(&aegis), ["default", "extra", "keep"]);
    let (sent, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {failures:?}",
        failures.len()
    );
}
