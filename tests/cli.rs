//! The command line and config loading as an operator meets them (SPEC §1, §2).

mod common;

use common::{run_aegis, scratch_dir};

fn write(text: &str) -> String {
    let path = scratch_dir().join("aegis.yml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn the_go_example_config_validates() {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/aegis-go.yml");
    let path = if shared.exists() {
        shared.display().to_string()
    } else {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/aegis-go.yml").to_string()
    };
    let (code, out, err) = run_aegis(&["-t", "-c", &path]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is valid (3 backends"), "{out}");
}

#[test]
fn the_shipped_config_validates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/aegis.yml");
    let (code, out, err) = run_aegis(&["--test", "--config", path]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn every_config_error_is_reported_with_its_key_and_exit_2() {
    let path = write(
        r#"
server:
  port: 65536
  read_timout: 5s
backends:
  - url: http://127.0.0.1:1
  - url: ftp://example.com
  - url: http://u:p@example.com
rate_limit:
  burst: many
"#,
    );
    let (code, out, err) = run_aegis(&["-t", "-c", &path]);
    assert_eq!(code, 2, "{out}{err}");
    for expected in [
        "server.port: must be between 0 and 65535, got 65536",
        "server.read_timout: unknown key",
        "backends[1].url: scheme \"ftp\" is not allowed (use http or https)",
        "backends[2].url: must not contain user info",
        "rate_limit.burst: expected an integer, got \"many\"",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn an_invalid_config_opens_no_port() {
    let port = common::free_port();
    let path = write(&format!(
        r#"
server:
  port: {port}
  threads: -1
backends:
  - url: http://127.0.0.1:9
"#
    ));
    let (code, _, err) = run_aegis(&["-c", &path, "--headless"]);
    assert_eq!(code, 2);
    assert!(err.contains("server.threads"), "{err}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn loopback_and_metadata_backends_are_refused_without_the_flag() {
    let path = write(
        r#"
backends:
  - url: http://127.0.0.1:8081
  - url: http://169.254.169.254
  - url: http://10.0.0.5
"#,
    );
    let (code, _, err) = run_aegis(&["-t", "-c", &path]);
    assert_eq!(code, 2);
    assert!(err.contains("backends[0].url: 127.0.0.1 resolves to a refused address: 127.0.0.1 is a loopback address"), "{err}");
    assert!(
        err.contains("backends[1].url") && err.contains("link-local"),
        "{err}"
    );
    assert!(
        err.contains("backends[2].url") && err.contains("private"),
        "{err}"
    );
    let path = write(
        r#"
backends:
  - url: http://127.0.0.1:8081
  - url: http://169.254.169.254
development:
  allow_loopback_backends: true
"#,
    );
    let (code, _, err) = run_aegis(&["-t", "-c", &path]);
    assert_eq!(code, 2);
    assert!(!err.contains("backends[0]"), "{err}");
    assert!(err.contains("backends[1].url"), "{err}");
}

#[test]
fn version_and_help() {
    let (code, out, _) = run_aegis(&["-V"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("aegis "), "{out}");
    // §14.4: the Go Aegis's spelling prints the same line.
    let (code, short, _) = run_aegis(&["-v"]);
    assert_eq!((code, short.as_str()), (0, out.as_str()));
    let (code, out, _) = run_aegis(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--conf",
        "--test",
        "--daemon",
        "--upgrade",
        "--headless",
        "--log-level",
    ] {
        assert!(out.contains(flag), "{flag} missing from help");
    }
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let (code, _, err) = run_aegis(&["-t", "-c", "/nonexistent/aegis.yml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/aegis.yml: cannot read the config file"),
        "{err}"
    );
}
