//! Developer tasks that must work on a fresh machine with only the Rust toolchain: `cargo demo`
//! (fake backends + Aegis in front of them) and `cargo test-all` (the whole test suite). Both check
//! for the system packages Pingora's build needs and install them where possible.
//!
//! Lives in the fake-backends crate because that crate builds without any system package.

use fake_backends::FakeBackend;
use std::process::{Command, ExitCode};

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

/// The README's test command: every test of the workspace, then the benchmarks built (not run).
fn test() -> Result<ExitCode, String> {
    ensure_packages(&["cmake", "tmux", "openssl"])?;
    let root = workspace_root();
    run(cargo()
        .current_dir(&root)
        .args(["test", "--workspace", "--release"]))?;
    run(cargo()
        .current_dir(&root)
        .args(["bench", "--workspace", "--no-run"]))?;
    Ok(ExitCode::SUCCESS)
}

/// Three fake backends on 8081–8083 and Aegis (release build) in front of them with
/// `conf/aegis.yml`, until Aegis exits.
fn demo(aegis_args: &[String]) -> Result<ExitCode, String> {
    ensure_packages(&["cmake"])?;
    let root = workspace_root();
    run(cargo()
        .current_dir(&root)
        .args(["build", "--release", "--bin", "aegis"]))?;
    let mut backends = Vec::new();
    for i in 1..=3u16 {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 8080 + i));
        let backend = FakeBackend::start_on(&format!("backend-{i}"), addr)
            .map_err(|e| format!("cannot start backend-{i} on {addr}: {e}"))?;
        eprintln!(
            "aegis-dev: {} listening on {}",
            backend.name(),
            backend.url()
        );
        backends.push(backend);
    }
    let status = Command::new(root.join("target/release/aegis"))
        .current_dir(&root)
        .args(["-c", "conf/aegis.yml"])
        .args(aegis_args)
        .status()
        .map_err(|e| format!("cannot start aegis: {e}"))?;
    drop(backends);
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}
