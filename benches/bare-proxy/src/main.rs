//! `bare-proxy`: a Pingora proxy with no filters at all, the floor Aegis builds on (SPEC §9).
//!
//! Built from the same Pingora version as Aegis, it sends every request to one upstream and
//! keeps upstream connections alive in Pingora's default connection pool. The load benchmark
//! (`benches/load/run.sh`) runs it side by side with Aegis, nginx and HAProxy.
//!
//! ```text
//! bare-proxy --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT [--threads N]
//!            [--no-work-stealing] [--no-upstream-keepalive]
//! ```
//!
//! The last two flags exist to measure the Pingora settings Aegis chooses defaults for:
//! `--no-work-stealing` sets `ServerConf::work_stealing = false` (one single-threaded runtime per
//! worker thread), and `--no-upstream-keepalive` asks the upstream to close every connection
//! (`Connection: close`), so each request pays a fresh TCP connect.

use async_trait::async_trait;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_http::RequestHeader;
use pingora_proxy::{ProxyHttp, Session};
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "\
Usage: bare-proxy --listen ADDR:PORT --upstream ADDR:PORT [--threads N]
                  [--no-work-stealing] [--no-upstream-keepalive] [--tls CERT KEY]";

/// What the command line asks for.
#[derive(Debug)]
struct Options {
    listen: SocketAddr,
    upstream: SocketAddr,
    threads: usize,
    work_stealing: bool,
    upstream_keepalive: bool,
    /// Terminate TLS with Pingora's own listener (`add_tls`): PEM certificate and key files.
    tls: Option<(String, String)>,
}

/// Parses the arguments (without the program name) by hand, to keep the example dependency-free.
fn parse_args(args: impl IntoIterator<Item = String>) -> std::result::Result<Options, String> {
    let (mut listen, mut upstream, mut threads) = (None, None, 1);
    let (mut work_stealing, mut upstream_keepalive) = (true, true);
    let mut tls = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => listen = Some(address(&value("--listen")?)?),
            "--upstream" => upstream = Some(address(&value("--upstream")?)?),
            "--threads" => {
                threads = value("--threads")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--threads needs a positive number")?
            }
            "--no-work-stealing" => work_stealing = false,
            "--no-upstream-keepalive" => upstream_keepalive = false,
            "--tls" => tls = Some((value("--tls")?, value("--tls")?)),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(Options {
        listen: listen.ok_or("--listen is required")?,
        upstream: upstream.ok_or("--upstream is required")?,
        threads,
        work_stealing,
        upstream_keepalive,
        tls,
    })
}

fn address(text: &str) -> std::result::Result<SocketAddr, String> {
    text.parse()
        .map_err(|e| format!("'{text}' is not an ADDR:PORT: {e}"))
}

/// The proxy: no per-request state, no filters, one upstream.
struct BareProxy {
    upstream: SocketAddr,
    upstream_keepalive: bool,
}

#[async_trait]
impl ProxyHttp for BareProxy {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        _ctx: &mut (),
    ) -> Result<()> {
        if !self.upstream_keepalive {
            upstream.insert_header("Connection", "close")?;
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bare-proxy: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let conf = ServerConf {
        threads: options.threads,
        work_stealing: options.work_stealing,
        // The benchmark stops the proxy with SIGTERM; there is nothing to drain.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(
        &server.configuration,
        BareProxy {
            upstream: options.upstream,
            upstream_keepalive: options.upstream_keepalive,
        },
    );
    match &options.tls {
        None => service.add_tcp(&options.listen.to_string()),
        Some((cert, key)) => {
            // Pingora's Mozilla-intermediate settings, offering h2 by ALPN as Aegis's TLS
            // listeners do, so the HTTP/2 bench compares like with like.
            match TlsSettings::intermediate(cert, key) {
                Ok(mut settings) => {
                    settings.enable_h2();
                    service.add_tls_with_settings(&options.listen.to_string(), None, settings);
                }
                Err(e) => {
                    eprintln!("bare-proxy: cannot use {cert} / {key}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    server.add_service(service);
    eprintln!(
        "bare-proxy: {} -> {} ({} thread(s), work stealing {}, upstream keep-alive {})",
        options.listen,
        options.upstream,
        options.threads,
        options.work_stealing,
        options.upstream_keepalive
    );
    server.run_forever()
}
