//! Logging (§7.1) on `log` + `env_logger`: one JSON object per line, or readable text lines, to
//! stdout or to `logging.file`. Structured fields travel as `log` key-values.

use crate::config::{LogFormat, LoggingSettings};
use log::kv::{Key, Value, VisitSource};
use std::fmt::Display;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;

/// Where logs go.
pub enum Destination<'a> {
    Stdout,
    File(&'a std::path::Path),
}

/// Installs the global logger. The level is, by precedence: `--log-level`, `RUST_LOG`, then
/// `logging.level`. Returns an error naming the file when it cannot be opened.
pub fn init(
    settings: &LoggingSettings,
    cli_level: Option<log::LevelFilter>,
    destination: Destination<'_>,
) -> Result<(), String> {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(settings.level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    if let Some(level) = cli_level {
        builder.filter_level(level);
    }
    match destination {
        Destination::Stdout => {
            // A pipe target: env_logger's Stdout target asks isatty(3) (an ioctl) on every line.
            builder.target(env_logger::Target::Pipe(Box::new(std::io::stdout())));
        }
        Destination::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("logging.file: cannot open {}: {e}", path.display()))?;
            builder.target(env_logger::Target::Pipe(Box::new(file)));
        }
    }
    // Aegis's formatter escapes (JSON) or replaces (text) every control byte itself, so the
    // output never holds an escape sequence: pass it through instead of having anstream scan
    // every byte of every line to strip styles.
    builder.write_style(env_logger::WriteStyle::Always);
    let format = settings.format;
    builder.format(move |buf, record| {
        let ts = buf.timestamp_millis();
        match (format, record.target() == ACCESS_TARGET) {
            (LogFormat::Json, true) => write_json_access(buf, &ts, record),
            (LogFormat::Text, true) => write_text_access(buf, &ts, record),
            (LogFormat::Json, false) => write_json(buf, &ts, record),
            (LogFormat::Text, false) => write_text(buf, &ts, record),
        }
    });
    builder
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))
}

/// The target of access-log lines, whose fields arrive preformatted (see [`AccessEntry`]).
pub const ACCESS_TARGET: &str = "aegis::access";

fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "error",
        log::Level::Warn => "warn",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

fn write_json(
    out: &mut impl Write,
    ts: &dyn Display,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    write!(
        out,
        "{{\"ts\":\"{ts}\",\"level\":\"{}\",\"target\":",
        level_name(record.level())
    )?;
    json_string(out, record.target())?;
    out.write_all(b",\"msg\":")?;
    match record.args().as_str() {
        Some(msg) => json_string(out, msg)?,
        None => json_string(out, &record.args().to_string())?,
    }
    let mut fields = JsonFields { out, error: None };
    let _ = record.key_values().visit(&mut fields);
    if let Some(e) = fields.error {
        return Err(e);
    }
    out.write_all(b"}\n")
}

fn write_text(
    out: &mut impl Write,
    ts: &dyn Display,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    write!(
        out,
        "{ts} {:<5} {} {}",
        record.level(),
        record.target(),
        sanitize(&record.args().to_string())
    )?;
    let mut fields = TextFields { out, error: None };
    let _ = record.key_values().visit(&mut fields);
    if let Some(e) = fields.error {
        return Err(e);
    }
    out.write_all(b"\n")
}

/// SECURITY: log lines must stay one line each; control characters from request data could
/// forge lines or drive a terminal that displays the log.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn json_string(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, text).map_err(std::io::Error::other)
}

/// `{f:.3}` without the float formatter: three decimals by integer arithmetic.
fn write_millis(out: &mut impl Write, f: f64) -> std::io::Result<()> {
    if !f.is_finite() || f.abs() >= 1e15 {
        return write!(out, "{f:.3}");
    }
    let thousandths = (f * 1000.0).round() as i64;
    let sign = if thousandths < 0 { "-" } else { "" };
    let n = thousandths.unsigned_abs();
    write!(out, "{sign}{}.{:03}", n / 1000, n % 1000)
}

struct JsonFields<'a, W: Write> {
    out: &'a mut W,
    error: Option<std::io::Error>,
}

impl<'kvs, W: Write> VisitSource<'kvs> for JsonFields<'_, W> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let result = (|| {
            self.out.write_all(b",")?;
            json_string(self.out, key.as_str())?;
            self.out.write_all(b":")?;
            if let Some(n) = value.to_i64() {
                write!(self.out, "{n}")
            } else if let Some(n) = value.to_u64() {
                write!(self.out, "{n}")
            } else if let Some(f) = value.to_f64() {
                write_millis(self.out, f)
            } else if let Some(b) = value.to_bool() {
                write!(self.out, "{b}")
            } else if let Some(s) = value.to_borrowed_str() {
                json_string(self.out, s)
            } else {
                json_string(self.out, &value.to_string())
            }
        })();
        if let Err(e) = result {
            self.error = Some(e);
            return Err(log::kv::Error::msg("write failed"));
        }
        Ok(())
    }
}

struct TextFields<'a, W: Write> {
    out: &'a mut W,
    error: Option<std::io::Error>,
}

impl<'kvs, W: Write> VisitSource<'kvs> for TextFields<'_, W> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let result = match value
            .to_f64()
            .filter(|_| value.to_i64().is_none() && value.to_u64().is_none())
        {
            Some(f) => write!(self.out, " {key}={f:.3}"),
            None => write!(self.out, " {key}={}", sanitize(&value.to_string())),
        };
        if let Err(e) = result {
            self.error = Some(e);
            return Err(log::kv::Error::msg("write failed"));
        }
        Ok(())
    }
}

/// One access-log line (§7.1). The proxy formats it into a reused buffer with
/// [`AccessEntry::write`] and logs the result under [`ACCESS_TARGET`]; the logger adds the
/// timestamp and level. Formatting here, once, instead of through `log`'s key-value visitor
/// saves most of the per-request logging cost (docs/performance.md).
pub struct AccessEntry<'a> {
    pub client: Option<IpAddr>,
    pub method: &'a str,
    /// The path without its query string.
    pub path: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub backend: &'a str,
    pub upstream: Option<std::time::Duration>,
    pub total: std::time::Duration,
    pub request_id: &'a str,
    pub refusal: &'a str,
}

impl AccessEntry<'_> {
    /// The fields as a JSON object body (`"client":"…",…`) or as text (`client=… …`).
    pub fn write(&self, format: LogFormat, out: &mut String) {
        use std::fmt::Write as _;
        let client = crate::security::mask::MaskedIp(
            self.client
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        );
        let upstream_micros = self.upstream.map_or(-1_000, |d| d.as_micros() as i64);
        let total_micros = self.total.as_micros() as i64;
        match format {
            LogFormat::Json => {
                let _ = write!(out, "\"client\":\"{client}\",\"method\":");
                push_json_str(out, self.method);
                out.push_str(",\"path\":");
                push_json_str(out, self.path);
                let _ = write!(
                    out,
                    ",\"status\":{},\"bytes\":{},\"backend\":",
                    self.status, self.bytes
                );
                push_json_str(out, self.backend);
                out.push_str(",\"upstream_ms\":");
                push_millis(out, upstream_micros);
                out.push_str(",\"total_ms\":");
                push_millis(out, total_micros);
                out.push_str(",\"request_id\":");
                push_json_str(out, self.request_id);
                out.push_str(",\"refusal\":");
                push_json_str(out, self.refusal);
            }
            LogFormat::Text => {
                let _ = write!(out, "client={client} method={} path=", self.method);
                out.extend(
                    self.path
                        .chars()
                        .map(|c| if c.is_control() || c == ' ' { '?' } else { c }),
                );
                let _ = write!(
                    out,
                    " status={} bytes={} backend={} upstream_ms=",
                    self.status, self.bytes, self.backend
                );
                push_millis(out, upstream_micros);
                out.push_str(" total_ms=");
                push_millis(out, total_micros);
                let _ = write!(
                    out,
                    " request_id={} refusal={}",
                    self.request_id, self.refusal
                );
            }
        }
    }
}

/// Microseconds as milliseconds with three decimals, by integer arithmetic.
fn push_millis(out: &mut String, micros: i64) {
    use std::fmt::Write as _;
    let sign = if micros < 0 { "-" } else { "" };
    let n = micros.unsigned_abs();
    let _ = write!(out, "{sign}{}.{:03}", n / 1000, n % 1000);
}

/// A JSON string literal; the common case (nothing to escape) is a plain copy.
fn push_json_str(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else if let Ok(quoted) = serde_json::to_string(text) {
        out.push_str(&quoted);
    }
}

fn write_json_access(
    out: &mut impl Write,
    ts: &dyn Display,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{{\"ts\":\"{ts}\",\"level\":\"{}\",\"target\":\"{ACCESS_TARGET}\",\"msg\":\"request\",{}}}",
        level_name(record.level()),
        record.args()
    )
}

fn write_text_access(
    out: &mut impl Write,
    ts: &dyn Display,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{ts} {:<5} {ACCESS_TARGET} request {}",
        record.level(),
        record.args()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_fields_and_escape_text() {
        let mut out = Vec::new();
        let kvs: &[(&str, log::kv::Value)] = &[
            ("status", log::kv::Value::from(200u64)),
            ("path", log::kv::Value::from("/a\"b")),
            ("total_ms", log::kv::Value::from(1.5f64)),
        ];
        let record = log::Record::builder()
            .args(format_args!("line\nbreak"))
            .level(log::Level::Info)
            .target("aegis::access")
            .key_values(&kvs)
            .build();
        write_json(&mut out, &"2026-01-01T00:00:00.000Z", &record).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.ends_with("}\n") && line.matches('\n').count() == 1,
            "{line}"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["msg"], "line\nbreak");
        assert_eq!(value["status"], 200);
        assert_eq!(value["path"], "/a\"b");
        assert_eq!(value["total_ms"], 1.5);
        assert_eq!(value["level"], "info");
    }

    #[test]
    fn access_lines_are_json_objects_with_masked_clients() {
        let entry = AccessEntry {
            client: Some("203.0.113.9".parse().unwrap()),
            method: "GET",
            path: "/a\"b\n",
            status: 200,
            bytes: 12,
            backend: "http://a.example",
            upstream: Some(std::time::Duration::from_micros(1_234)),
            total: std::time::Duration::from_micros(5_000_001),
            request_id: "id-1",
            refusal: "-",
        };
        let mut fields = String::new();
        entry.write(LogFormat::Json, &mut fields);
        let mut out = Vec::new();
        write_json_access(
            &mut out,
            &"ts",
            &log::Record::builder()
                .args(format_args!("{fields}"))
                .level(log::Level::Info)
                .target(ACCESS_TARGET)
                .build(),
        )
        .unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["client"], "203.0.x.x");
        assert_eq!(value["path"], "/a\"b\n");
        assert_eq!(value["status"], 200);
        assert_eq!(value["upstream_ms"], 1.234);
        assert_eq!(value["total_ms"], 5000.001);
        assert_eq!(value["msg"], "request");
        let mut text = String::new();
        AccessEntry {
            upstream: None,
            ..entry
        }
        .write(LogFormat::Text, &mut text);
        assert!(
            text.starts_with("client=203.0.x.x method=GET path=/a\"b? status=200"),
            "{text}"
        );
        assert!(text.contains("upstream_ms=-1.000"), "{text}");
    }

    #[test]
    fn text_lines_stay_one_line() {
        let mut out = Vec::new();
        let record = log::Record::builder()
            .args(format_args!("evil\r\n\x1b[31m"))
            .level(log::Level::Warn)
            .target("t")
            .build();
        write_text(&mut out, &"ts", &record).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line, "ts WARN  t evil???[31m\n");
    }
}
