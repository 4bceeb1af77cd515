//! The dashboard as an operator sees it: the real binary in a terminal (tmux), first screen, `q`.

mod common;

use common::{scratch_dir, wait_until};
use fake_backends::FakeBackend;
use std::process::Command;
use std::time::Duration;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dashboard_shows_backends_and_q_exits_cleanly() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    let dir = scratch_dir();
    let port = common::free_port();
    let admin = common::free_port();
    let mut config = common::base_config(port, admin, &[(a.url(), 1), (b.url(), 2)], &dir);
    config["tui"]["enabled"] = serde_yaml::Value::Bool(true);
    config["tui"]["refresh_interval"] = serde_yaml::Value::String("200ms".into());
    config["logging"]["file"] =
        serde_yaml::Value::String(dir.join("aegis.log").display().to_string());
    let conf = dir.join("aegis.yml");
    std::fs::write(&conf, serde_yaml::to_string(&config).unwrap()).unwrap();
    let exit_file = dir.join("exit");
    let session = format!("aegis-test-{}", std::process::id());
    let command = format!(
        "{} -c {}; echo $? > {}",
        env!("CARGO_BIN_EXE_aegis"),
        conf.display(),
        exit_file.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "80",
        "-y",
        "24",
        &command,
    ]);
    let screen = || tmux(&["capture-pane", "-t", &session, "-p"]);
    let shown = wait_until(Duration::from_secs(20), || {
        let s = screen();
        s.contains(&a.url())
            && s.contains(&b.url())
            && s.contains("healthy")
            && s.contains("closed")
    });
    let last = screen();
    if !shown {
        tmux(&["kill-session", "-t", &session]);
        panic!("dashboard did not show the backends:\n{last}");
    }
    assert!(last.contains("Aegis"), "{last}");
    assert!(last.contains("q quit"), "{last}");
    tmux(&["send-keys", "-t", &session, "q"]);
    let exited = wait_until(Duration::from_secs(15), || exit_file.exists());
    let code = std::fs::read_to_string(&exit_file).unwrap_or_default();
    tmux(&["kill-session", "-t", &session]);
    assert!(exited, "aegis did not exit after q");
    assert_eq!(code.trim(), "0");
    let log = std::fs::read_to_string(dir.join("aegis.log")).unwrap();
    assert!(log.contains("Aegis shutdown complete"), "{log}");
}

#[test]
fn remote_dashboard_follows_a_running_instance_and_says_when_it_cannot_reach_it() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = common::Aegis::start(&[(a.url(), 1)], "");
    let session = format!("aegis-remote-{}", std::process::id());
    let dir = scratch_dir();
    let exit_file = dir.join("exit");
    let command = format!(
        "{} dashboard --admin {} --refresh 200ms; echo $? > {}",
        env!("CARGO_BIN_EXE_aegis"),
        aegis.admin_addr(),
        exit_file.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    let screen = || tmux(&["capture-pane", "-t", &session, "-p"]);
    let shown = wait_until(Duration::from_secs(20), || screen().contains(&a.url()));
    let first = screen();
    // The instance goes away: the dashboard keeps the last data and says it cannot reach it.
    drop(aegis);
    let noticed = wait_until(Duration::from_secs(10), || {
        screen().contains("cannot reach")
    });
    let second = screen();
    tmux(&["send-keys", "-t", &session, "q"]);
    let exited = wait_until(Duration::from_secs(10), || exit_file.exists());
    tmux(&["kill-session", "-t", &session]);
    assert!(shown, "remote dashboard did not show the backend:\n{first}");
    assert!(noticed, "no 'cannot reach' message:\n{second}");
    assert!(
        second.contains(&a.url()),
        "last data was dropped:\n{second}"
    );
    assert!(exited, "aegis dashboard did not exit on q");
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "0");
}
