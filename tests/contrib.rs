//! What ships in `contrib/` (SPEC §14.2, §14.4) checked by the tools that read it: promtool
//! accepts the alert rules and their unit tests pass, systemd-analyze accepts the unit, every
//! metric the rules and the Grafana dashboard query is one Aegis exports, and logrotate's run of
//! `contrib/logrotate/aegis` (move, then SIGUSR1) loses no log line. The tools come from Debian's
//! `prometheus`, `systemd` and `logrotate` packages (`.ci/run` installs them).

mod common;

use common::daemon::{kill, Daemon};
use common::redis::Redis;
use common::tls::TestCa;
use common::{scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path)
}

/// Runs a tool; its success and everything it printed.
fn run(command: &mut Command) -> (bool, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} runs: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn promtool_accepts_the_alert_rules_and_their_tests_pass() {
    let (ok, said) = run(Command::new("promtool")
        .args(["check", "rules"])
        .arg(contrib("prometheus/aegis-alerts.yml")));
    assert!(ok && said.contains("SUCCESS"), "{said}");
    let (ok, said) = run(Command::new("promtool")
        .args(["test", "rules", "aegis-alerts.test.yml"])
        .current_dir(contrib("prometheus")));
    assert!(ok && said.contains("SUCCESS"), "{said}");
}

#[test]
fn systemd_analyze_accepts_the_unit() {
    // `verify` checks that ExecStart's binary exists: the unit is checked with the path of the
    // binary under test in place of /usr/local/bin/aegis, everything else as shipped.
    let unit = std::fs::read_to_string(contrib("systemd/aegis.service")).unwrap();
    for directive in [
        "ExecStart=/usr/local/bin/aegis -c /etc/aegis/aegis.yml --headless",
        "ExecReload=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "LimitNOFILE=",
    ] {
        assert!(unit.contains(directive), "{directive} missing");
    }
    let dir = scratch_dir();
    let path = dir.join("aegis.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/aegis", env!("CARGO_BIN_EXE_aegis")),
    )
    .unwrap();
    let (ok, said) = run(Command::new("systemd-analyze").arg("verify").arg(&path));
    // An unknown or misspelt directive is only a warning: nothing may be printed at all.
    assert!(ok && said.trim().is_empty(), "systemd-analyze: {said}");
}

/// Metric names in PromQL text: `aegis_` words, with histogram suffixes removed.
fn queried_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("aegis_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| word.strip_suffix(s))
            .unwrap_or(&word);
        names.insert(name.to_string());
    }
    names
}

#[test]
fn every_metric_the_rules_and_the_grafana_dashboard_query_is_exported() {
    let dir = scratch_dir();
    let cert = TestCa::new().issue(&dir, "a", &["a.test"], 30);
    let redis = Redis::start(None);
    let backend = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        &format!(
            r#"
listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.2:0
    tls:
      certificates: [{}]
adaptive:
  enabled: true
  evaluation_interval: 200ms
cluster:
  redis_url: "{}"
  sync_interval: 100ms
"#,
            cert.yaml(),
            redis.url()
        ),
    );
    let mut exported = BTreeSet::new();
    // The adaptive P95 appears once an evaluation saw traffic, the sync lag after a sync.
    assert!(wait_until(Duration::from_secs(10), || {
        common::http::get(aegis.listener(0), "/");
        let text = aegis.admin_get("/metrics").text();
        exported = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        exported.contains("aegis_cluster_sync_lag_seconds")
            && exported.contains("aegis_adaptive_p95_seconds")
    }));
    let alerts = std::fs::read_to_string(contrib("prometheus/aegis-alerts.yml")).unwrap();
    let grafana = std::fs::read_to_string(contrib("grafana/aegis.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&grafana).expect("valid JSON");
    assert!(dashboard["panels"].as_array().unwrap().len() > 10);
    for (file, text) in [("aegis-alerts.yml", &alerts), ("aegis.json", &grafana)] {
        let queried = queried_metrics(text);
        assert!(queried.len() > 5, "{file}: {queried:?}");
        let missing: Vec<_> = queried.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} queries {missing:?}, not exported"
        );
    }
}

/// Requests `/line-{i}` until stopped; the number sent (all answered 200).
fn client(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            let resp = common::http::get(addr, &format!("/line-{sent}"));
            assert_eq!(resp.status, 200);
            sent += 1;
        }
        sent
    })
}

/// The `/line-N` paths logged in `file`.
fn logged_lines(file: &Path) -> Vec<usize> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split("\"path\":\"/line-").nth(1))
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

#[test]
fn logrotate_moves_the_log_and_sigusr1_reopens_it_without_losing_a_line() {
    let backend = FakeBackend::start("a").unwrap();
    // A daemon logs to logging.file (a headless foreground Aegis logs to stdout).
    let daemon = Daemon::configure(&[(backend.url(), 1)], "");
    assert!(daemon.launch(false).wait().unwrap().success());
    let pid = daemon.wait_pid();
    let addr = daemon.addr();
    let (dir, log, pid_file) = (&daemon.dir, &daemon.log, &daemon.pid_file);

    let stop = Arc::new(AtomicBool::new(false));
    let load = client(addr, stop.clone());
    assert!(wait_until(Duration::from_secs(10), || logged_lines(log)
        .len()
        >= 50));
    // contrib/logrotate/aegis as shipped, for this test's log and pid file.
    let rotate = std::fs::read_to_string(contrib("logrotate/aegis"))
        .unwrap()
        .replace("/var/log/aegis/aegis.log", &log.display().to_string())
        .replace("/run/aegis/aegis.pid", &pid_file.display().to_string());
    let rotate_conf = dir.join("logrotate.conf");
    std::fs::write(&rotate_conf, rotate).unwrap();
    let (ok, said) = run(Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&rotate_conf));
    assert!(ok, "logrotate: {said}");
    let moved = dir.join("aegis.log.1");
    assert!(moved.exists(), "logrotate moved the file");
    // Aegis opens a new file at the configured path and goes on writing there.
    assert!(
        wait_until(Duration::from_secs(10), || logged_lines(log).len() >= 50),
        "no new lines in the new file"
    );
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().unwrap();

    // Every request's line is in exactly one of the two files.
    let mut all = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        all = [logged_lines(&moved), logged_lines(log)].concat();
        all.len() >= sent
    }));
    all.sort_unstable();
    assert_eq!(all, (0..sent).collect::<Vec<_>>(), "lines lost or doubled");
    let new_file = std::fs::read_to_string(log).unwrap();
    assert!(new_file.contains("SIGUSR1: log file"), "{new_file}");

    // SIGHUP (systemctl reload) does not end the process.
    kill(pid, "HUP");
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(log).unwrap().contains("SIGHUP")
    }));
    assert_eq!(common::http::get(addr, "/after-hup").status, 200);
}
