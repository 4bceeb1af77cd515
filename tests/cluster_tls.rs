//! Cluster mode over `rediss://` (SPEC §13): two Aegis instances share their counts through a
//! TLS-only redis-server whose certificate a private CA signed (`cluster.redis_ca_file`), and an
//! instance that does not trust that CA stays on local limits while it serves every request.

mod common;

use common::redis::{Redis, RedisTls};
use common::tls::TestCa;
use common::{scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use std::time::Duration;

fn config(redis_url: &str, ca_line: &str) -> String {
    format!(
        r#"
cluster:
  redis_url: "{redis_url}"
  sync_interval: 100ms
{ca_line}
"#
    )
}

#[test]
fn instances_share_through_a_tls_redis_they_verify_with_a_private_ca() {
    let dir = scratch_dir();
    let ca = TestCa::new();
    let ca_file = dir.join("ca.crt");
    ca.write_pem(&ca_file);
    let leaf = ca.issue(&dir, "redis", &["127.0.0.1"], 30);
    let redis = Redis::start_tls(RedisTls {
        cert: leaf.cert,
        key: leaf.key,
        ca: ca_file.clone(),
    });
    let backend = FakeBackend::start("b").expect("a backend");
    let with_ca = config(
        &redis.url(),
        &format!("  redis_ca_file: \"{}\"", ca_file.display()),
    );
    let instances: Vec<Aegis> = (0..2)
        .map(|_| Aegis::start(&[(backend.url(), 1)], &with_ca))
        .collect();

    let joined = wait_until(Duration::from_secs(10), || {
        instances.iter().all(|a| {
            let cluster = &a.status()["cluster"];
            cluster["redis_up"] == true && cluster["instances"].as_array().map_or(0, Vec::len) == 2
        })
    });
    assert!(
        joined,
        "both instances share over TLS: {}",
        instances[0].status()["cluster"]
    );
    assert!(redis.dbsize() > 0, "the instances wrote their keys");

    // Without the CA the server's certificate is not trusted: no connection, yet no failed request.
    let untrusting = Aegis::start(&[(backend.url(), 1)], &config(&redis.url(), ""));
    let refused = wait_until(Duration::from_secs(10), || {
        untrusting.status()["cluster"]["sync_errors"].as_u64() >= Some(3)
    });
    assert!(refused, "{}", untrusting.status()["cluster"]);
    for _ in 0..20 {
        assert_eq!(untrusting.get("/").status, 200);
    }
    let cluster = &untrusting.status()["cluster"];
    assert_eq!(cluster["redis_up"], false, "{cluster}");
    assert!(cluster["sync_lag_ms"].is_null(), "never synced: {cluster}");
    let members = instances[0].status()["cluster"]["instances"].clone();
    assert_eq!(
        members.as_array().map_or(0, Vec::len),
        2,
        "the untrusting instance never joined: {members}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
