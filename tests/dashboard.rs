//! The dashboard as an operator sees it: the real binary in a terminal (tmux), first screen, `q`.

mod common;

use common::{scratch_dir, wait_until};
use fake_backends::FakeBackend;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command running in a detached tmux session of a given size; the session is killed on drop.
/// The command's exit status is written to `exit_file`. Each terminal has its own tmux server
/// (`-L`): tests run in parallel, and a shared server that exits when one test kills the last
/// session races another test's `new-session`.
struct Terminal {
    session: String,
    exit_file: PathBuf,
}

impl Terminal {
    fn run(name: &str, width: u16, height: u16, command: &str) -> Terminal {
        let session = format!("aegis-{name}-{}", std::process::id());
        let exit_file = scratch_dir().join("exit");
        let command = format!("{command}; echo $? > {}", exit_file.display());
        let (w, h) = (width.to_string(), height.to_string());
        tmux(&[
            "-L",
            &session,
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            &w,
            "-y",
            &h,
            &command,
        ]);
        Terminal { session, exit_file }
    }

    fn screen(&self) -> String {
        tmux(&[
            "-L",
            &self.session,
            "capture-pane",
            "-t",
            &self.session,
            "-p",
        ])
    }

    fn keys(&self, keys: &str) {
        tmux(&["-L", &self.session, "send-keys", "-t", &self.session, keys]);
    }

    /// The command's exit status once it has exited (waits at most `timeout`).
    fn exit_status(&self, timeout: Duration) -> Option<String> {
        // The shell creates the file before `echo` writes into it: wait for a whole line.
        let read = || std::fs::read_to_string(&self.exit_file).unwrap_or_default();
        wait_until(timeout, || read().ends_with('\n')).then(|| read().trim().to_string())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        tmux(&["-L", &self.session, "kill-server"]);
    }
}

#[test]
fn dashboard_shows_backends_and_q_exits_cleanly() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    let dir = scratch_dir();
    // Port 0: the kernel picks free ports (this test reads the screen, not the ports).
    let mut config = common::base_config(0, 0, &[(a.url(), 1), (b.url(), 2)], &dir);
    config["tui"]["enabled"] = serde_yaml::Value::Bool(true);
    config["tui"]["refresh_interval"] = serde_yaml::Value::String("200ms".into());
    let log = dir.join("aegis.log");
    config["logging"]["file"] = serde_yaml::Value::String(log.display().to_string());
    let conf = dir.join("aegis.yml");
    std::fs::write(&conf, serde_yaml::to_string(&config).unwrap()).unwrap();

    let command = format!("{} -c {}", env!("CARGO_BIN_EXE_aegis"), conf.display());
    let terminal = Terminal::run("tui", 80, 24, &command);
    let shown = wait_until(Duration::from_secs(20), || {
        let s = terminal.screen();
        s.contains(&a.url())
            && s.contains(&b.url())
            && s.contains("healthy")
            && s.contains("closed")
    });
    let screen = terminal.screen();
    assert!(shown, "dashboard did not show the backends:\n{screen}");
    assert!(screen.contains("Aegis"), "{screen}");
    assert!(screen.contains("q quit"), "{screen}");
    terminal.keys("q");
    let status = terminal.exit_status(Duration::from_secs(15));
    assert_eq!(
        status.as_deref(),
        Some("0"),
        "aegis did not exit cleanly after q"
    );
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("Aegis shutdown complete"), "{log}");
}

#[test]
fn remote_dashboard_follows_a_running_instance_and_says_when_it_cannot_reach_it() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = common::Aegis::start(&[(a.url(), 1)], "");
    let command = format!(
        "{} dashboard --admin {} --refresh 200ms",
        env!("CARGO_BIN_EXE_aegis"),
        aegis.admin_addr()
    );
    let terminal = Terminal::run("remote", 100, 30, &command);
    let shown = wait_until(Duration::from_secs(20), || {
        terminal.screen().contains(&a.url())
    });
    let first = terminal.screen();
    assert!(shown, "remote dashboard did not show the backend:\n{first}");
    // The instance goes away: the dashboard keeps the last data and says it cannot reach it.
    drop(aegis);
    let noticed = wait_until(Duration::from_secs(10), || {
        terminal.screen().contains("cannot reach")
    });
    let second = terminal.screen();
    assert!(noticed, "no 'cannot reach' message:\n{second}");
    assert!(
        second.contains(&a.url()),
        "last data was dropped:\n{second}"
    );
    terminal.keys("q");
    let status = terminal.exit_status(Duration::from_secs(10));
    assert_eq!(
        status.as_deref(),
        Some("0"),
        "aegis dashboard did not exit on q"
    );
}

/// `(admin_state of backend 0, of backend 1)` from the instance's `/status`.
fn admin_states(admin: std::net::SocketAddr) -> (String, String) {
    let status = common::http::get(admin, "/status").json();
    let state = |i: usize| {
        status["backends"][i]["admin_state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    (state(0), state(1))
}

fn states(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn dashboard_keys_drain_and_enable_the_selected_backend() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    let dir = scratch_dir();
    let mut config = common::base_config(0, 0, &[(a.url(), 1), (b.url(), 1)], &dir);
    config["tui"]["enabled"] = serde_yaml::Value::Bool(true);
    config["tui"]["refresh_interval"] = serde_yaml::Value::String("200ms".into());
    let log = dir.join("aegis.log");
    config["logging"]["file"] = serde_yaml::Value::String(log.display().to_string());
    let conf = dir.join("aegis.yml");
    std::fs::write(&conf, serde_yaml::to_string(&config).unwrap()).unwrap();

    let command = format!("{} -c {}", env!("CARGO_BIN_EXE_aegis"), conf.display());
    let terminal = Terminal::run("keys", 100, 30, &command);
    assert!(
        wait_until(Duration::from_secs(20), || terminal
            .screen()
            .contains(&b.url())),
        "{}",
        terminal.screen()
    );
    // The admin listener's port 0, as bound (the log file names it).
    let mut admin = None;
    assert!(wait_until(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        admin = common::bound::bound_in(&text).admin;
        admin.is_some()
    }));
    let admin = common::bound::connectable(admin.expect("set by the wait above"));
    // ↓ selects the second backend, d drains it, e enables it again (the local dashboard acts
    // on the pool directly).
    terminal.keys("Down");
    terminal.keys("d");
    assert!(
        wait_until(Duration::from_secs(5), || admin_states(admin)
            == states("enabled", "drained")),
        "{}",
        terminal.screen()
    );
    assert!(
        wait_until(Duration::from_secs(5), || terminal
            .screen()
            .contains("drained")),
        "{}",
        terminal.screen()
    );
    terminal.keys("e");
    assert!(
        wait_until(Duration::from_secs(5), || admin_states(admin)
            == states("enabled", "enabled")),
        "{}",
        terminal.screen()
    );
    terminal.keys("Up");
    terminal.keys("d");
    assert!(wait_until(Duration::from_secs(5), || admin_states(admin)
        == states("drained", "enabled")));
    terminal.keys("q");
    assert_eq!(
        terminal.exit_status(Duration::from_secs(15)).as_deref(),
        Some("0")
    );
}

#[test]
fn remote_dashboard_drains_with_the_token_file_and_says_401_without_it() {
    use std::os::unix::fs::PermissionsExt;
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    let token = scratch_dir().join("admin.token");
    std::fs::write(&token, "r3mote\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let aegis = common::Aegis::start(
        &[(a.url(), 1), (b.url(), 1)],
        &format!(
            r#"
admin:
  token_file: {}
"#,
            token.display()
        ),
    );
    let admin = aegis.admin_addr();
    let bin = env!("CARGO_BIN_EXE_aegis");

    // Without the token the instance refuses, and the dashboard says so.
    let command = format!("{bin} dashboard --admin {admin} --refresh 200ms");
    let terminal = Terminal::run("remote-no-token", 100, 30, &command);
    assert!(wait_until(Duration::from_secs(20), || terminal
        .screen()
        .contains(&b.url())));
    terminal.keys("d");
    assert!(
        wait_until(Duration::from_secs(5), || terminal
            .screen()
            .contains("answered 401")),
        "{}",
        terminal.screen()
    );
    assert_eq!(admin_states(admin), states("enabled", "enabled"));
    terminal.keys("q");
    assert_eq!(
        terminal.exit_status(Duration::from_secs(10)).as_deref(),
        Some("0")
    );
    drop(terminal);

    let command = format!(
        "{bin} dashboard --admin {admin} --refresh 200ms --token-file {}",
        token.display()
    );
    let terminal = Terminal::run("remote-token", 100, 30, &command);
    assert!(wait_until(Duration::from_secs(20), || terminal
        .screen()
        .contains(&b.url())));
    terminal.keys("Down");
    terminal.keys("d");
    assert!(
        wait_until(Duration::from_secs(5), || admin_states(admin)
            == states("enabled", "drained")),
        "{}",
        terminal.screen()
    );
    assert!(wait_until(Duration::from_secs(5), || terminal
        .screen()
        .contains("drained")));
    terminal.keys("e");
    assert!(wait_until(Duration::from_secs(5), || admin_states(admin)
        == states("enabled", "enabled")));
    terminal.keys("q");
    assert_eq!(
        terminal.exit_status(Duration::from_secs(10)).as_deref(),
        Some("0")
    );
}
