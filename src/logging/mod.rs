//! Logging (§7.1) on `log` + `env_logger`: one JSON object per line, or readable text lines, to
//! stdout or to `logging.file`. Structured fields travel as `log` key-values. Access lines take
//! their own, batched path ([`access`]).

pub mod access;

pub use access::{AccessEntry, ACCESS_TARGET};

use crate::config::{LogFormat, LoggingSettings};
use log::kv::{Key, Value, VisitSource};
use log::Log as _;
use std::fmt::Display;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// `logging.format` in force: 0 JSON, 1 text (a reload may change it).
static FORMAT: AtomicU8 = AtomicU8::new(0);
/// `logging.level` in force, as a `log::LevelFilter` (a reload may change it).
static LEVEL: AtomicUsize = AtomicUsize::new(log::LevelFilter::Info as usize);
/// `--log-level` or `RUST_LOG` decide the level: `logging.level` does not apply.
static LEVEL_OVERRIDDEN: AtomicBool = AtomicBool::new(false);

/// The format lines are written in now.
fn format() -> LogFormat {
    match FORMAT.load(Ordering::Relaxed) {
        0 => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

fn set_format(format: LogFormat) {
    FORMAT.store(u8::from(format == LogFormat::Text), Ordering::Relaxed);
}

fn level() -> log::LevelFilter {
    match LEVEL.load(Ordering::Relaxed) {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Applies reloaded `logging` settings (§12.1): the format at once, the level unless
/// `--log-level` or `RUST_LOG` set it. Returns false when the level was kept for that reason.
/// (`logging.file` is opened once; a reload cannot move it.)
pub fn apply(settings: &LoggingSettings) -> bool {
    set_format(settings.format);
    if LEVEL_OVERRIDDEN.load(Ordering::Relaxed) {
        return false;
    }
    LEVEL.store(settings.level as usize, Ordering::Relaxed);
    log::set_max_level(settings.level);
    access::set_enabled(settings.level >= log::LevelFilter::Info);
    true
}

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
    let rust_log = std::env::var("RUST_LOG").ok();
    if rust_log.is_none() && cli_level.is_none() {
        // `logging.level` is applied by `Logger` (a reload may change it); env_logger passes all.
        builder.filter_level(log::LevelFilter::Trace);
        LEVEL.store(settings.level as usize, Ordering::Relaxed);
    } else {
        builder.filter_level(settings.level);
        if let Some(spec) = &rust_log {
            builder.parse_filters(spec);
        }
        if let Some(level) = cli_level {
            builder.filter_level(level);
        }
        LEVEL_OVERRIDDEN.store(true, Ordering::Relaxed);
        LEVEL.store(log::LevelFilter::Trace as usize, Ordering::Relaxed);
    }
    set_format(settings.format);
    let out: Box<dyn Write + Send> = match destination {
        // A pipe target: env_logger's Stdout target asks isatty(3) (an ioctl) on every line.
        Destination::Stdout => Box::new(std::io::stdout()),
        Destination::File(path) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("logging.file: cannot open {}: {e}", path.display()))?,
        ),
    };
    let output = access::SharedOutput::new(out);
    if let Destination::File(path) = destination {
        let _ = LOG_FILE.set((output.clone(), path.to_path_buf()));
    }
    builder.target(env_logger::Target::Pipe(Box::new(output.clone())));
    // Aegis's formatter escapes (JSON) or replaces (text) every control byte itself, so the
    // output never holds an escape sequence: pass it through instead of having anstream scan
    // every byte of every line to strip styles.
    builder.write_style(env_logger::WriteStyle::Always);
    builder.format(move |buf, record| {
        let ts = buf.timestamp_millis();
        write_record(buf, &ts, record, format())
    });
    let logger = Logger {
        inner: builder.build(),
    };
    let access_enabled = logger.enabled(
        &log::Metadata::builder()
            .target(ACCESS_TARGET)
            .level(log::Level::Info)
            .build(),
    );
    let max_level = logger.inner.filter().min(level());
    log::set_boxed_logger(Box::new(logger))
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    log::set_max_level(max_level);
    access::start(output, access_enabled);
    Ok(())
}

/// The log output and the file it writes to, when logs go to a file (for [`reopen`]).
static LOG_FILE: std::sync::OnceLock<(access::SharedOutput, std::path::PathBuf)> =
    std::sync::OnceLock::new();

/// Reopens `logging.file` (SIGUSR1, as nginx does), so that logrotate can move the file away:
/// the lines buffered so far go to the file that was open, every later line to a new file at
/// the configured path. With `stderr` (a daemon, whose standard error is the log file) the
/// process's standard error moves to the new file too. Returns the path, or `None` when logs go
/// to stdout.
pub fn reopen(stderr: bool) -> Result<Option<std::path::PathBuf>, String> {
    let Some((output, path)) = LOG_FILE.get() else {
        return Ok(None);
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            format!(
                "logging.file: cannot reopen {}: {e}; logging goes on to the file already open",
                path.display()
            )
        })?;
    if stderr {
        nix::unistd::dup2_stderr(&file)
            .map_err(|e| format!("cannot point standard error at {}: {e}", path.display()))?;
    }
    access::flush();
    output.replace(Box::new(file));
    Ok(Some(path.clone()))
}

/// env_logger, plus the access log's buffers on `flush`.
struct Logger {
    inner: env_logger::Logger,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= level() && self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= level() {
            self.inner.log(record)
        }
    }

    fn flush(&self) {
        access::flush();
        self.inner.flush()
    }
}

fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "error",
        log::Level::Warn => "warn",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

/// One log line: a JSON object, or `ts LEVEL target message key=value…`.
fn write_record(
    out: &mut impl Write,
    ts: &dyn Display,
    record: &log::Record<'_>,
    format: LogFormat,
) -> std::io::Result<()> {
    match format {
        LogFormat::Json => {
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
        }
        LogFormat::Text => write!(
            out,
            "{ts} {:<5} {} {}",
            record.level(),
            record.target(),
            sanitize(&record.args().to_string())
        )?,
    }
    write_fields(out, record, format)?;
    let end: &[u8] = match format {
        LogFormat::Json => b"}\n",
        LogFormat::Text => b"\n",
    };
    out.write_all(end)
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

/// Writes a record's key-value fields in `format`, stopping at the first write error.
fn write_fields(
    out: &mut impl Write,
    record: &log::Record<'_>,
    format: LogFormat,
) -> std::io::Result<()> {
    let mut fields = Fields {
        out,
        format,
        error: None,
    };
    let _ = record.key_values().visit(&mut fields);
    fields.error.map_or(Ok(()), Err)
}

/// The visitor of [`write_fields`]: keeps the write error the `log` crate's visitor API cannot
/// carry.
struct Fields<'a, W: Write> {
    out: &'a mut W,
    format: LogFormat,
    error: Option<std::io::Error>,
}

impl<'kvs, W: Write> VisitSource<'kvs> for Fields<'_, W> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let written = match self.format {
            LogFormat::Json => json_pair(self.out, key, value),
            LogFormat::Text => text_pair(self.out, key, value),
        };
        written.map_err(|e| {
            self.error = Some(e);
            log::kv::Error::msg("write failed")
        })
    }
}

/// `,"key":value`, numbers and booleans bare, everything else a JSON string.
fn json_pair(out: &mut impl Write, key: Key<'_>, value: Value<'_>) -> std::io::Result<()> {
    out.write_all(b",")?;
    json_string(out, key.as_str())?;
    out.write_all(b":")?;
    if let Some(n) = value.to_i64() {
        write!(out, "{n}")
    } else if let Some(n) = value.to_u64() {
        write!(out, "{n}")
    } else if let Some(f) = value.to_f64() {
        write_millis(out, f)
    } else if let Some(b) = value.to_bool() {
        write!(out, "{b}")
    } else if let Some(s) = value.to_borrowed_str() {
        json_string(out, s)
    } else {
        json_string(out, &value.to_string())
    }
}

/// ` key=value`, fractions with three decimals, text sanitized.
fn text_pair(out: &mut impl Write, key: Key<'_>, value: Value<'_>) -> std::io::Result<()> {
    match value
        .to_f64()
        .filter(|_| value.to_i64().is_none() && value.to_u64().is_none())
    {
        Some(f) => write!(out, " {key}={f:.3}"),
        None => write!(out, " {key}={}", sanitize(&value.to_string())),
    }
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
        write_record(
            &mut out,
            &"2026-01-01T00:00:00.000Z",
            &record,
            LogFormat::Json,
        )
        .unwrap();
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
    fn text_lines_stay_one_line() {
        let mut out = Vec::new();
        let record = log::Record::builder()
            .args(format_args!("evil\r\n\x1b[31m"))
            .level(log::Level::Warn)
            .target("t")
            .build();
        write_record(&mut out, &"ts", &record, LogFormat::Text).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line, "ts WARN  t evil???[31m\n");
    }
}
