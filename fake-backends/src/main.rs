//! `fake-backends`: runs N plain HTTP/1.1 fake backends until SIGINT/SIGTERM.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use anyhow::Context;
use fake_backends::FakeBackend;

const USAGE: &str = "\
Usage: fake-backends [--count N] [--base-port P] [--host H] [--grpc]

Starts backends named backend-1..backend-N on ports P..P+N-1 of host H and
runs until interrupted (SIGINT or SIGTERM). Each answers every request with
its name as the body and an X-Backend header; GET /health answers \"ok\".

Options:
  --count N       number of backends (default 3)
  --base-port P   port of the first backend (default 8081)
  --host H        address or host name to listen on (default 127.0.0.1)
  --grpc          speak h2c (HTTP/2, prior knowledge) with the gRPC-style service of
                  fake_backends::grpc (/echo.Echo/Unary echoes its messages) instead
  -h, --help      print this help";

/// Parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    count: u16,
    base_port: u16,
    host: String,
    grpc: bool,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Run(Options),
}

/// Parses the arguments (without the program name).
fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut options = Options {
        count: 3,
        base_port: 8081,
        host: "127.0.0.1".to_string(),
        grpc: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(Command::Help);
        }
        if flag == "--grpc" && inline.is_none() {
            options.grpc = true;
            continue;
        }
        if !matches!(flag.as_str(), "--count" | "--base-port" | "--host") {
            return Err(format!("unknown argument '{arg}'"));
        }
        let value = match inline {
            Some(value) => value.to_string(),
            None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--count" => {
                options.count = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--count must be a number from 1 to 65535, got '{value}'")
                })?;
            }
            "--base-port" => {
                options.base_port = value.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("--base-port must be a port from 1 to 65535, got '{value}'")
                })?;
            }
            _ => {
                if value.is_empty() {
                    return Err("--host must not be empty".to_string());
                }
                options.host = value;
            }
        }
    }
    let last = u32::from(options.base_port) + u32::from(options.count) - 1;
    if last > u32::from(u16::MAX) {
        return Err(format!(
            "{} backends starting at port {} would need port {last}, above 65535",
            options.count, options.base_port
        ));
    }
    Ok(Command::Run(options))
}

/// Prints a line to stdout, ignoring a closed pipe (e.g. `| head`).
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Resolves `host:port` to the first matching socket address.
fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve host '{host}'"))?
        .next()
        .with_context(|| format!("host '{host}' has no addresses"))
}

/// Completes on SIGINT or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

async fn run(options: Options) -> anyhow::Result<()> {
    let mut backends = Vec::with_capacity(usize::from(options.count));
    let mut grpc = Vec::new();
    for i in 0..options.count {
        let name = format!("backend-{}", i + 1);
        let addr = resolve(&options.host, options.base_port + i)?;
        if options.grpc {
            let backend = fake_backends::grpc::GrpcBackend::start_h2c_on(addr)?;
            say(&format!(
                "{name} listening on {} (h2c, gRPC)",
                backend.url()
            ));
            grpc.push(backend);
            continue;
        }
        let backend = FakeBackend::start_on(&name, addr)?;
        say(&format!("{name} listening on {}", backend.url()));
        backends.push(backend);
    }
    wait_for_signal().await?;
    say("shutting down");
    drop(backends);
    drop(grpc);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            say(USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(options)) => options,
        Err(message) => {
            let synopsis = USAGE.lines().next().unwrap_or_default();
            eprintln!(
                "fake-backends: {message}\n{synopsis}\nRun 'fake-backends --help' for details."
            );
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fake-backends: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        let expected = Options {
            count: 3,
            base_port: 8081,
            host: "127.0.0.1".to_string(),
            grpc: false,
        };
        assert_eq!(parse(&[]), Ok(Command::Run(expected)));
        assert!(matches!(parse(&["--grpc"]), Ok(Command::Run(o)) if o.grpc));
    }

    #[test]
    fn all_options_in_both_forms() {
        let expected = Options {
            count: 5,
            base_port: 9000,
            host: "0.0.0.0".to_string(),
            grpc: false,
        };
        let spaced = parse(&["--count", "5", "--base-port", "9000", "--host", "0.0.0.0"]);
        assert_eq!(spaced, Ok(Command::Run(expected)));
        let inline = parse(&["--count=5", "--base-port=9000", "--host=0.0.0.0"]);
        assert!(matches!(inline, Ok(Command::Run(o)) if o.count == 5 && o.base_port == 9000));
    }

    #[test]
    fn help() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["--count", "2", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn bad_arguments() {
        for args in [
            &["--count"][..],
            &["--count", "zero"],
            &["--count", "0"],
            &["--base-port", "70000"],
            &["--base-port", "65535", "--count", "2"],
            &["--host", ""],
            &["--verbose"],
            &["extra"],
        ] {
            assert!(parse(args).is_err(), "expected an error for {args:?}");
        }
    }
}
