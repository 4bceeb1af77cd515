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

/// Three named pools of two backends behind host routes (`db`'s backends failing their health
/// checks), beside the default pool's one backend: eleven lines for a table that shows seven at
/// 80×24. The pools are listed by name (as `/status` lists them after `default`).
struct FourPools {
    default: FakeBackend,
    pools: Vec<(&'static str, [FakeBackend; 2])>,
}

impl FourPools {
    fn start() -> FourPools {
        let pair = |name: &str| {
            [
                FakeBackend::start(&format!("{name}1")).unwrap(),
                FakeBackend::start(&format!("{name}2")).unwrap(),
            ]
        };
        let pools = vec![
            ("api", pair("api")),
            ("db", pair("db")),
            ("www", pair("www")),
        ];
        for backend in &pools[1].1 {
            backend.set_health_status(500);
        }
        FourPools {
            default: FakeBackend::start("default").unwrap(),
            pools,
        }
    }

    fn extra(&self) -> String {
        let mut text = String::from("pools:\n");
        for (name, [a, b]) in &self.pools {
            text += &format!(
                "  {name}:\n    backends: [{{url: \"{}\"}}, {{url: \"{}\"}}]\n",
                a.url(),
                b.url()
            );
        }
        text += "routes:\n";
        for (name, _) in &self.pools {
            text += &format!("  - {{host: {name}.example.com, pool: {name}}}\n");
        }
        text
    }

    fn url(&self, pool: usize, i: usize) -> String {
        self.pools[pool].1[i].url()
    }
}

/// The screen line containing `needle` (empty if none).
fn line_of(screen: &str, needle: &str) -> String {
    let found = screen.lines().find(|l| l.contains(needle));
    found.unwrap_or_default().to_string()
}

/// Pool headings at 80×24: the table scrolls with ↓, `C` collapses every pool to its summary
/// line (`db` all down), `c` expands one again.
fn pools_fit_eighty_by_twenty_four(terminal: &Terminal, pools: &FourPools) {
    let shown = wait_until(Duration::from_secs(20), || {
        let s = terminal.screen();
        s.contains("▾ default") && s.contains("▾ api") && s.contains(&pools.url(0, 1))
    });
    let screen = terminal.screen();
    assert!(shown, "no pool headings:\n{screen}");
    assert!(
        screen.contains("lines 1-7 of 11") && screen.contains("c/C collapse"),
        "{screen}"
    );
    assert!(!screen.contains(&pools.url(2, 1)), "{screen}");
    // ↓ to the last line: the table scrolls to www's backends; db's above are down.
    for _ in 0..10 {
        terminal.keys("Down");
    }
    let scrolled = wait_until(Duration::from_secs(10), || {
        let s = terminal.screen();
        s.contains("lines 5-11 of 11") && line_of(&s, "▾ db").contains("0/2 down")
    });
    let screen = terminal.screen();
    assert!(scrolled, "{screen}");
    assert!(
        line_of(&screen, &pools.url(1, 1)).contains("unhealthy"),
        "{screen}"
    );
    assert!(
        line_of(&screen, &pools.url(2, 1)).contains(" healthy "),
        "{screen}"
    );
    assert!(!screen.contains("▾ default"), "{screen}");
    // C: one summary line per pool, everything in view.
    terminal.keys("C");
    let collapsed = wait_until(Duration::from_secs(10), || {
        let s = terminal.screen();
        line_of(&s, "▸ db").contains("0/2 down")
            && line_of(&s, "▸ api").contains("2/2 up")
            && line_of(&s, "▸ www").contains("2/2 up")
            && line_of(&s, "▸ default").contains("1/1 up")
    });
    let screen = terminal.screen();
    assert!(collapsed, "{screen}");
    assert!(!screen.contains(&pools.url(0, 0)), "{screen}");
    assert!(!screen.contains("lines "), "{screen}");
    // The selection moved to www's heading; ↑ c expands db alone.
    terminal.keys("Up");
    terminal.keys("c");
    let expanded = wait_until(Duration::from_secs(10), || {
        let s = terminal.screen();
        s.contains("▾ db") && s.contains(&pools.url(1, 1)) && s.contains("▸ www")
    });
    assert!(expanded, "{}", terminal.screen());
    assert!(!terminal.screen().contains(&pools.url(0, 0)));
    assert!(!terminal.screen().contains(&pools.default.url()));
}

#[test]
fn local_dashboard_groups_pools_and_collapses_them_at_80x24() {
    let pools = FourPools::start();
    let dir = scratch_dir();
    let mut config = common::config::with_extra(&[(pools.default.url(), 1)], &pools.extra(), &dir);
    config["tui"]["enabled"] = serde_yaml::Value::Bool(true);
    config["tui"]["refresh_interval"] = serde_yaml::Value::String("200ms".into());
    let conf = common::config::write(&config, &dir);
    let command = format!("{} -c {}", env!("CARGO_BIN_EXE_aegis"), conf.display());
    let terminal = Terminal::run("pools", 80, 24, &command);
    pools_fit_eighty_by_twenty_four(&terminal, &pools);
    terminal.keys("q");
    assert_eq!(
        terminal.exit_status(Duration::from_secs(15)).as_deref(),
        Some("0")
    );
}

#[test]
fn remote_dashboard_groups_pools_and_collapses_them_at_80x24() {
    let pools = FourPools::start();
    let aegis = common::Aegis::start(&[(pools.default.url(), 1)], &pools.extra());
    let command = format!(
        "{} dashboard --admin {} --refresh 200ms",
        env!("CARGO_BIN_EXE_aegis"),
        aegis.admin_addr()
    );
    let terminal = Terminal::run("remote-pools", 80, 24, &command);
    pools_fit_eighty_by_twenty_four(&terminal, &pools);
    terminal.keys("q");
    assert_eq!(
        terminal.exit_status(Duration::from_secs(10)).as_deref(),
        Some("0")
    );
}
