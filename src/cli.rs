//! The command line (§1).

use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Aegis: a hardened reverse proxy for small HTTP services, built on Pingora.
#[derive(Debug, Parser)]
#[command(name = "aegis", version, about, disable_version_flag = true)]
pub struct Cli {
    /// Config file.
    #[arg(
        short = 'c',
        long = "conf",
        visible_alias = "config",
        default_value = "conf/aegis.yml",
        global = true
    )]
    pub conf: PathBuf,
    /// Load and validate the config (including DNS and SSRF checks), print the result and exit:
    /// 0 if valid, 2 if not. Opens no port.
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// Detach and run in the background (implies --headless).
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// Take over the listening sockets of a running instance (graceful upgrade).
    #[arg(short = 'u', long = "upgrade")]
    pub upgrade: bool,
    /// No dashboard; logs go to stdout.
    #[arg(long)]
    pub headless: bool,
    /// debug|info|warn|error; overrides logging.level (and RUST_LOG).
    #[arg(long = "log-level", value_name = "LEVEL", value_parser = parse_level)]
    pub log_level: Option<log::LevelFilter>,
    /// Print the version (`-v` too, as the Go Aegis spelled it).
    #[arg(short = 'V', short_alias = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Reload the configuration of the running daemon (§12.1): checks the file (-c) as at
    /// startup, sends SIGHUP to the pid in its `server.pid_file` and prints the result from the
    /// admin listener. Exit 0 applied, 2 refused (every problem listed), 1 could not tell.
    Reload,
    /// Show the live dashboard of a running (e.g. daemonized) instance, read from its /status.
    Dashboard {
        /// The instance's admin listener.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
        admin: std::net::SocketAddr,
        /// Refresh interval.
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
        refresh: std::time::Duration,
        /// The instance's admin token (`admin.token_file`), for `d`/`e` and a non-loopback admin
        /// address; the file must not be readable by group or others.
        #[arg(long = "token-file", value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (expected e.g. 500ms or 2s)"))
}

fn parse_level(text: &str) -> Result<log::LevelFilter, String> {
    crate::config::parse_level(text)
        .ok_or_else(|| format!("expected debug, info, warn or error, got {text:?}"))
}

/// Exit status for an invalid config or command line (§1).
pub const EXIT_INVALID: i32 = 2;

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Dashboard {
            admin,
            refresh,
            token_file,
        }) => return remote_dashboard(admin, refresh, token_file),
        Some(Command::Reload) => return reload(&cli.conf),
        None => {}
    }
    let (config, sha256) = match crate::config::load_file(&cli.conf) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("aegis: invalid configuration {}:", cli.conf.display());
            for error in &errors.0 {
                eprintln!("  {error}");
            }
            return EXIT_INVALID;
        }
    };
    if cli.test {
        for warning in &config.warnings {
            eprintln!("aegis: warning: {warning}");
        }
        let backends: usize = config.all_pools().map(|p| p.backends.len()).sum();
        let pools = match config.routes {
            Some(_) => format!(
                " in {} pools",
                config
                    .all_pools()
                    .filter(|p| !p.backends.is_empty())
                    .count()
            ),
            None => String::new(),
        };
        println!(
            "aegis: configuration {} is valid ({} backend{}{pools}, listening on {})",
            cli.conf.display(),
            backends,
            if backends == 1 { "" } else { "s" },
            crate::server::listeners_label(&config)
        );
        return 0;
    }
    // §1: the dashboard needs a terminal and is off with --headless or --daemon.
    let dashboard =
        config.tui.enabled && !cli.headless && !cli.daemon && std::io::stdout().is_terminal();
    // While the dashboard owns the screen, and in a daemon (which lets go of its caller's
    // stdout, §8), logs go to a file: `logging.file`, or `aegis.log` in the working directory.
    let log_file = (dashboard || cli.daemon).then(|| {
        config
            .logging
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from("aegis.log"))
    });
    let destination = match &log_file {
        Some(path) => crate::logging::Destination::File(path),
        None => crate::logging::Destination::Stdout,
    };
    if let Err(e) = crate::logging::init(&config.logging, cli.log_level, destination) {
        eprintln!("aegis: {e}");
        return EXIT_INVALID;
    }
    let options = crate::server::RunOptions {
        daemon: cli.daemon,
        upgrade: cli.upgrade,
        dashboard,
        log_file,
        config_path: std::path::absolute(&cli.conf).unwrap_or(cli.conf.clone()),
        config_sha256: sha256,
    };
    match crate::server::run(config, options) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("aegis failed: {e:#}");
            eprintln!("aegis: {e:#}");
            1
        }
    }
}

/// How long `aegis reload` waits for the running instance to report the reload.
const RELOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `aegis reload`: check, signal, report.
fn reload(conf: &std::path::Path) -> i32 {
    let config = match crate::config::load(conf) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!(
                "aegis reload: {} is invalid; nothing was sent, the running configuration is unchanged:",
                conf.display()
            );
            for error in &errors.0 {
                eprintln!("  {error}");
            }
            return EXIT_INVALID;
        }
    };
    let pid_file = &config.server.pid_file;
    let pid = match std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
    {
        Some(pid) if pid > 0 => pid,
        _ => {
            eprintln!(
                "aegis reload: no pid in {} (server.pid_file): is Aegis running as a daemon (-d)?",
                pid_file.display()
            );
            return 1;
        }
    };
    let admin = config
        .admin
        .enabled
        .then(|| crate::tui::RemoteSource::new(config.admin.address, config.admin.token.clone()));
    let before = admin.as_ref().and_then(|a| a.fetch().ok());
    let signal = nix::sys::signal::Signal::SIGHUP;
    if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
        eprintln!("aegis reload: cannot signal pid {pid}: {e}");
        return 1;
    }
    let (Some(admin), Some(before)) = (admin, before) else {
        println!("aegis reload: SIGHUP sent to pid {pid}; the result is in the log");
        return 0;
    };
    let deadline = std::time::Instant::now() + RELOAD_WAIT;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let Ok(now) = admin.fetch() else { continue };
        if now.config.reloads <= before.config.reloads {
            continue;
        }
        let Some(last) = now.config.last_reload else {
            continue;
        };
        if now.config.path != before.config.path || now.config.path != absolute(conf) {
            println!(
                "aegis reload: the running instance reads {}",
                now.config.path
            );
        }
        if last.result == "applied" {
            println!(
                "aegis reload: applied; configuration generation {}",
                now.config.generation
            );
            return 0;
        }
        eprintln!("aegis reload: refused; the running configuration is unchanged:");
        for error in &last.errors {
            eprintln!("  {error}");
        }
        return EXIT_INVALID;
    }
    eprintln!(
        "aegis reload: SIGHUP sent to pid {pid}, but {} did not report a reload within {}s",
        config.admin.address,
        RELOAD_WAIT.as_secs()
    );
    1
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// `aegis dashboard`: the dashboard of another instance, polled from its admin `/status`.
fn remote_dashboard(
    admin: std::net::SocketAddr,
    refresh: std::time::Duration,
    token_file: Option<PathBuf>,
) -> i32 {
    let token = match token_file.as_deref().map(crate::config::read_secret_file) {
        None => None,
        Some(Ok(token)) => Some(token),
        Some(Err(problem)) => {
            eprintln!("aegis dashboard: --token-file: {problem}");
            return EXIT_INVALID;
        }
    };
    if !std::io::stdout().is_terminal() {
        eprintln!("aegis dashboard: stdout is not a terminal");
        return EXIT_INVALID;
    }
    let source = crate::tui::RemoteSource::new(admin, token);
    let control = std::sync::Arc::new(source.clone());
    let label = format!("remote {admin}");
    match crate::tui::run(
        Box::new(source),
        control,
        label,
        refresh,
        Box::new(|| false),
    ) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("aegis dashboard: {e}");
            1
        }
    }
}
