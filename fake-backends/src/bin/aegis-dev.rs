//! Developer tasks that must work on a fresh machine with only the Rust toolchain: `cargo demo`
//! (fake backends + Aegis in front of them) and `cargo test-all` (the whole test suite). Both check
//! for the system packages Pingora's build needs and install them where possible.
//!
//! Lives in the fake-backends crate because that crate builds without any system package.

use fake_backends::FakeBackend;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: aegis-dev demo [AEGIS ARGS...] | aegis-dev test";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        // `cargo demo -- --headless` passes the separator through; Aegis needs the flags only.
        Some("demo") => demo(
            args[1..]
                .strip_prefix(&["--".to_string()])
                .unwrap_or(&args[1..]),
        ),
        Some("test") => test(),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("aegis-dev: {message}");
            ExitCode::from(2)
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fake-backends lives inside the workspace")
        .to_path_buf()
}

/// Pingora's build compiles zlib-ng with cmake; the dashboard test drives a terminal with tmux.
/// Installs what is missing with apt-get when running as root on a Debian-like machine;
/// otherwise says exactly what to run.
fn ensure_packages(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| Command::new(p).arg("-V").output().is_err())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let has_apt = Command::new("apt-get").arg("--version").output().is_ok();
    let list = missing.join(" ");
    if !(is_root && has_apt) {
        return Err(format!(
            "{list} required; install first (Debian/Ubuntu: sudo apt-get install -y {list})"
        ));
    }
    eprintln!("aegis-dev: {list} missing; installing with apt-get");
    let mut install = vec!["install", "-y", "-qq"];
    install.extend(&missing);
    for args in [&["update", "-qq"][..], &install[..]] {
        let ok = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!("apt-get {} failed", args.join(" ")));
        }
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// The rustfmt and clippy components, added with rustup when the toolchain lacks them.
fn ensure_components() -> Result<(), String> {
    for (subcommand, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        let present = cargo()
            .args([subcommand, "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !present {
            eprintln!("aegis-dev: {component} missing; adding it with rustup");
            run(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

/// The README's test command: formatting and lints (what STYLE asks of every commit), every test
/// of the workspace, then the benchmarks built (not run), then the fuzz targets for a bounded
/// time where a nightly toolchain allows.
fn test() -> Result<ExitCode, String> {
    ensure_packages(&["cmake", "tmux", "openssl", "curl"])?;
    ensure_components()?;
    let root = workspace_root();
    run(cargo()
        .current_dir(&root)
        .args(["fmt", "--all", "--", "--check"]))?;
    // The tests' profile (`ci`: `release` without its whole-program link, see Cargo.toml), so
    // that clippy shares their dependency builds.
    run(cargo().current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--profile",
        "ci",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .current_dir(&root)
        .args(["test", "--workspace", "--profile", "ci"]))?;
    // The benchmarks compile with the same profile, sharing the tests' dependency builds (the
    // `bench` profile has the same settings but a directory of its own: a second full build).
    run(cargo()
        .current_dir(&root)
        .args(["bench", "--workspace", "--no-run", "--profile", "ci"]))?;
    fuzz_if_nightly(&root)?;
    Ok(ExitCode::SUCCESS)
}

/// The fuzz targets (`fuzz/`), each for a bounded time, when a nightly toolchain with cargo-fuzz
/// is installed (cargo-fuzz needs nightly's sanitizer flags). Without one, nothing is lost: the
/// same properties (`fuzz/properties.rs`) ran above as the bounded property test
/// `tests/fuzz_properties.rs`. `AEGIS_FUZZ_SECONDS` sets the time per target (default 60).
fn fuzz_if_nightly(root: &std::path::Path) -> Result<(), String> {
    // rustup's `cargo` proxy (not `$CARGO`, the current toolchain's binary) understands `+nightly`.
    let nightly = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        eprintln!(
            "aegis-dev: no nightly toolchain with cargo-fuzz; the fuzz properties ran as \
             tests/fuzz_properties.rs instead"
        );
        return Ok(());
    }
    let seconds = std::env::var("AEGIS_FUZZ_SECONDS").unwrap_or_else(|_| "60".into());
    for target in ["request_validators", "raw_header"] {
        run(Command::new("cargo")
            .current_dir(root.join("fuzz"))
            .args(["+nightly", "fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}")))?;
    }
    Ok(())
}

/// Overrides for the runner's own test (ephemeral ports, a prebuilt binary); a demo needs none.
/// `AEGIS_DEV_BACKENDS`: comma-separated addresses of the fake backends (default 8081–8083).
const BACKENDS_ENV: &str = "AEGIS_DEV_BACKENDS";
/// `AEGIS_DEV_AEGIS`: the aegis binary to run instead of building `target/ci/aegis`.
const AEGIS_ENV: &str = "AEGIS_DEV_AEGIS";

/// Three fake backends on 8081–8083 and Aegis (built with the test suite's `ci` profile: optimised
/// like `release`, without its minutes-long whole-program link) in front of them with
/// `conf/aegis.yml` (or the `-c` given), until Aegis exits. SIGINT and SIGTERM sent to the runner
/// alone (a process manager, `kill`) are passed on to Aegis, which drains and exits; the runner
/// then exits with Aegis's status, so no Aegis is left holding the demo's ports.
fn demo(aegis_args: &[String]) -> Result<ExitCode, String> {
    let root = workspace_root();
    let aegis = match std::env::var_os(AEGIS_ENV) {
        Some(path) => std::path::PathBuf::from(path),
        None => {
            ensure_packages(&["cmake"])?;
            run(cargo()
                .current_dir(&root)
                .args(["build", "--profile", "ci", "--bin", "aegis"]))?;
            root.join("target/ci/aegis")
        }
    };
    let addresses = backend_addresses()?;
    let mut backends = Vec::new();
    for (i, addr) in addresses.into_iter().enumerate() {
        let name = format!("backend-{}", i + 1);
        let backend = FakeBackend::start_on(&name, addr)
            .map_err(|e| format!("cannot start {name} on {addr}: {e}"))?;
        eprintln!(
            "aegis-dev: {} listening on {}",
            backend.name(),
            backend.url()
        );
        backends.push(backend);
    }
    let mut command = tokio::process::Command::new(aegis);
    command.current_dir(&root);
    if !names_a_config(aegis_args) {
        command.args(["-c", "conf/aegis.yml"]);
    }
    command.args(aegis_args);
    let status = run_forwarding_signals(command)?;
    drop(backends);
    // A shell's convention: 128 + the signal number when Aegis was killed by a signal.
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn backend_addresses() -> Result<Vec<std::net::SocketAddr>, String> {
    match std::env::var(BACKENDS_ENV) {
        Ok(list) => list
            .split(',')
            .map(|addr| {
                addr.trim()
                    .parse()
                    .map_err(|e| format!("{BACKENDS_ENV}: {addr:?} is not an address: {e}"))
            })
            .collect(),
        Err(_) => Ok((1..=3u16)
            .map(|i| std::net::SocketAddr::from(([127, 0, 0, 1], 8080 + i)))
            .collect()),
    }
}

/// Whether Aegis's arguments already name a config file (`-c PATH`, `--conf=PATH`, ...).
fn names_a_config(args: &[String]) -> bool {
    args.iter().any(|arg| {
        ["-c", "--conf", "--config"].contains(&arg.as_str())
            || arg.starts_with("--conf=")
            || arg.starts_with("--config=")
            || (arg.starts_with("-c") && !arg.starts_with("--"))
    })
}

/// Runs Aegis and waits for it, passing SIGINT and SIGTERM on to it meanwhile. A terminal's
/// Ctrl-C reaches the whole process group, so Aegis may see SIGINT twice; its first one starts
/// the drain and a second is harmless.
fn run_forwarding_signals(
    mut command: tokio::process::Command,
) -> Result<std::process::ExitStatus, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    runtime.block_on(async move {
        // The handlers are in place before Aegis starts: a signal can never find the runner
        // defenceless (ended by the default action) with its child still running.
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start aegis: {e}"))?;
        let pid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(Pid::from_raw);
        loop {
            let forward = tokio::select! {
                status = child.wait() => {
                    return status.map_err(|e| format!("cannot wait for aegis: {e}"));
                }
                _ = term.recv() => Signal::SIGTERM,
                _ = int.recv() => Signal::SIGINT,
            };
            if let Some(pid) = pid {
                eprintln!("aegis-dev: {forward}: passing it on to aegis (pid {pid})");
                if let Err(e) = kill(pid, forward) {
                    eprintln!("aegis-dev: cannot signal aegis: {e}");
                }
            }
        }
    })
}
