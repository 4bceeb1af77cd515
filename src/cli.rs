//! The command line (§1).

use clap::Parser;
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
        default_value = "conf/aegis.yml"
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
    /// Print the version.
    #[arg(short = 'V', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
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
    let config = match crate::config::load(&cli.conf) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("aegis: invalid configuration {}:", cli.conf.display());
            for error in &errors.0 {
                eprintln!("  {error}");
            }
            return EXIT_INVALID;
        }
    };
    if cli.test {
        println!(
            "aegis: configuration {} is valid ({} backend{}, listening on {})",
            cli.conf.display(),
            config.backends.len(),
            if config.backends.len() == 1 { "" } else { "s" },
            config.server.listen_addr()
        );
        return 0;
    }
    let destination = match &config.logging.file {
        Some(path) if cli.daemon => crate::logging::Destination::File(path),
        _ => crate::logging::Destination::Stdout,
    };
    if let Err(e) = crate::logging::init(&config.logging, cli.log_level, destination) {
        eprintln!("aegis: {e}");
        return EXIT_INVALID;
    }
    let options = crate::server::RunOptions {
        daemon: cli.daemon,
        upgrade: cli.upgrade,
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
