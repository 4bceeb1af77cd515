//! The access log (§7.1): one line per request, written in batches. (Just over 400 lines: the
//! line formatter and the batching writer share the per-thread buffer and stay together.)
//!
//! An access line is formatted once, straight into a per-thread buffer, without going through
//! `log`'s macros, key-value visiting or env_logger's formatter, and reaches the output in
//! batches: a worker writes its buffer itself when it holds [`BATCH_BYTES`], and a flusher
//! thread writes every buffer every [`FLUSH_EVERY`]. So a busy worker makes one `write` per few
//! hundred requests instead of one per request, and a quiet one shows its lines within
//! `FLUSH_EVERY`. Each buffer's lock is shared only by its worker and the flusher, never between
//! workers. Other log lines keep going through env_logger, to the same [`SharedOutput`], so
//! lines never interleave mid-line. `finish` (lifecycle) flushes before the process exits.

use crate::config::LogFormat;
use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The target of access-log lines (for `RUST_LOG` filters such as `aegis::access=off`).
pub const ACCESS_TARGET: &str = "aegis::access";

/// A worker writes its buffer once it holds this much.
const BATCH_BYTES: usize = 64 * 1024;

/// The longest an access line waits in a buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// One access-log line (§7.1).
pub struct AccessEntry<'a> {
    pub client: Option<IpAddr>,
    pub method: &'a str,
    /// `http/1.0`, `http/1.1` or `h2`.
    pub protocol: &'static str,
    /// The path without its query string.
    pub path: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub backend: &'a str,
    pub upstream: Option<Duration>,
    pub total: Duration,
    pub request_id: &'a str,
    /// The W3C trace id (32 hex digits) of the request's `traceparent`, or `-`.
    pub trace_id: &'a str,
    pub refusal: &'a str,
    /// `TLSv1.2`, `TLSv1.3`, or `-` for plain HTTP.
    pub tls: &'static str,
    /// With `routes` only (§17): the route's name (`-` when none matched) and the pool's (`-`
    /// when none took the request); both are names from the config, never from the request.
    pub routing: Option<(&'a str, &'a str)>,
}

/// The log output, shared by env_logger and the access log. Each `write` puts the whole slice
/// out under the lock, so a line is never split by another writer's.
#[derive(Clone)]
pub struct SharedOutput(Arc<Mutex<Box<dyn Write + Send>>>);

impl SharedOutput {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        SharedOutput(Arc::new(Mutex::new(out)))
    }

    /// Writes the next lines to `out` (after flushing the current output, which is closed).
    pub fn replace(&self, out: Box<dyn Write + Send>) {
        let mut current = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = current.flush();
        *current = out;
    }
}

impl Write for &SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&*self).flush()
    }
}

struct Sink {
    output: SharedOutput,
    buffers: Mutex<Vec<Arc<Mutex<Vec<u8>>>>>,
    /// The flusher's side of the buffer swap.
    spare: Mutex<Vec<u8>>,
    /// The process whose flusher thread runs (a forked daemon needs its own).
    flusher_pid: Mutex<Option<u32>>,
}

static SINK: OnceLock<Sink> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Per thread: its registered buffer, the line being built, and the formatted current second.
struct Local {
    buffer: Arc<Mutex<Vec<u8>>>,
    line: String,
    second: u64,
    second_text: String,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Starts the access log on `output` (called once by `logging::init`, with `enabled` from the
/// log filter). The flusher thread starts with the first buffer, in the process that writes:
/// `-d` forks after logging is set up, and a thread started before the fork would not exist in
/// the daemon.
pub(super) fn start(output: SharedOutput, enabled: bool) {
    let sink = Sink {
        output,
        buffers: Mutex::new(Vec::new()),
        spare: Mutex::new(Vec::new()),
        flusher_pid: Mutex::new(None),
    };
    if SINK.set(sink).is_ok() {
        ENABLED.store(enabled, Ordering::Relaxed);
    }
}

/// Registers a worker thread's buffer, starting the flusher thread if this process has none.
fn register(sink: &Sink, buffer: Arc<Mutex<Vec<u8>>>) {
    sink.buffers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(buffer);
    let mut flusher_pid = sink.flusher_pid.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if *flusher_pid == Some(pid) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("aegis-access-log".into())
        .spawn(|| loop {
            std::thread::park_timeout(FLUSH_EVERY);
            flush();
        });
    match spawned {
        Ok(_) => *flusher_pid = Some(pid),
        Err(e) => log::warn!(
            "access log: cannot start the flusher thread ({e}); lines are written as each buffer fills"
        ),
    }
}

/// Whether access lines are written at all (from the log filter; a reload may change it).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns access lines on or off (a reload that changed `logging.level`).
pub(super) fn set_enabled(enabled: bool) {
    if SINK.get().is_some() {
        ENABLED.store(enabled, Ordering::Relaxed);
    }
}

/// Writes every buffered access line to the output.
pub fn flush() {
    let Some(sink) = SINK.get() else { return };
    let buffers: Vec<_> = sink
        .buffers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // One spare buffer is swapped with each full one, so buffers keep their capacity (no
    // regrowing, no large frees) and a worker waits only for the swap, never for the write.
    let mut spare = sink.spare.lock().unwrap_or_else(|e| e.into_inner());
    for buffer in buffers {
        {
            let mut pending = buffer.lock().unwrap_or_else(|e| e.into_inner());
            if pending.is_empty() {
                continue;
            }
            if spare.capacity() < BATCH_BYTES {
                spare.reserve(BATCH_BYTES);
            }
            std::mem::swap(&mut *pending, &mut *spare);
        }
        let _ = (&sink.output).write_all(&spare);
        spare.clear();
    }
    let _ = (&sink.output).flush();
}

/// Appends one access line to this thread's buffer.
pub fn write(entry: &AccessEntry<'_>) {
    let Some(sink) = SINK.get() else { return };
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        let local = local.get_or_insert_with(|| {
            let buffer = Arc::new(Mutex::new(Vec::with_capacity(BATCH_BYTES)));
            register(sink, buffer.clone());
            Local {
                buffer,
                line: String::with_capacity(512),
                second: u64::MAX,
                second_text: String::new(),
            }
        });
        let now = SystemTime::now();
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        if since_epoch.as_secs() != local.second {
            local.second = since_epoch.as_secs();
            // "2026-11-30T08:30:01Z" without the Z: the milliseconds follow.
            let mut text = humantime::format_rfc3339_seconds(now).to_string();
            text.pop();
            local.second_text = text;
        }
        let line = &mut local.line;
        line.clear();
        let millis = since_epoch.subsec_millis();
        // The fixed parts of a line around the timestamp, the target and the entry's fields.
        let format = super::format();
        let (open, after_time, after_target, close) = match format {
            LogFormat::Json => (
                "{\"ts\":\"",
                "Z\",\"level\":\"info\",\"target\":\"",
                "\",\"msg\":\"request\",",
                "}\n",
            ),
            LogFormat::Text => ("", "Z INFO  ", " request ", "\n"),
        };
        line.push_str(open);
        line.push_str(&local.second_text);
        push_three_digits(line, millis);
        line.push_str(after_time);
        line.push_str(ACCESS_TARGET);
        line.push_str(after_target);
        entry.write(format, line);
        line.push_str(close);
        let mut buffer = local.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.extend_from_slice(line.as_bytes());
        if buffer.len() >= BATCH_BYTES {
            let _ = (&sink.output).write_all(&buffer);
            buffer.clear();
        }
    });
}

/// `.123`: the fraction of a timestamp.
fn push_three_digits(out: &mut String, millis: u32) {
    out.push('.');
    out.push(char::from(b'0' + (millis / 100 % 10) as u8));
    out.push(char::from(b'0' + (millis / 10 % 10) as u8));
    out.push(char::from(b'0' + (millis % 10) as u8));
}

impl AccessEntry<'_> {
    /// The fields as a JSON object body (`"client":"…",…`) or as text (`client=… …`).
    pub fn write(&self, format: LogFormat, out: &mut String) {
        let client = crate::security::mask::MaskedIp(
            self.client
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        );
        let upstream_micros = self.upstream.map_or(-1_000, |d| d.as_micros() as i64);
        let total_micros = self.total.as_micros() as i64;
        match format {
            LogFormat::Json => {
                out.push_str("\"client\":\"");
                client.push_to(out);
                // The method is an HTTP token (httparse refuses anything else), the request id a
                // UUID, the trace id hex digits (validated) and the refusal a fixed name: nothing
                // in them needs escaping.
                out.push_str("\",\"method\":\"");
                out.push_str(self.method);
                out.push_str("\",\"protocol\":\"");
                out.push_str(self.protocol);
                out.push('"');
                out.push_str(",\"path\":");
                push_json_str(out, self.path);
                out.push_str(",\"status\":");
                push_decimal(out, u64::from(self.status));
                out.push_str(",\"bytes\":");
                push_decimal(out, self.bytes as u64);
                out.push_str(",\"backend\":");
                push_json_str(out, self.backend);
                out.push_str(",\"upstream_ms\":");
                push_millis(out, upstream_micros);
                out.push_str(",\"total_ms\":");
                push_millis(out, total_micros);
                out.push_str(",\"request_id\":\"");
                out.push_str(self.request_id);
                out.push_str("\",\"trace_id\":\"");
                out.push_str(self.trace_id);
                out.push_str("\",\"refusal\":\"");
                out.push_str(self.refusal);
                out.push_str("\",\"tls\":\"");
                out.push_str(self.tls);
                out.push('"');
                // Route and pool names are letters, digits, `-` and `_` (validated).
                if let Some((route, pool)) = self.routing {
                    out.push_str(",\"route\":\"");
                    out.push_str(route);
                    out.push_str("\",\"pool\":\"");
                    out.push_str(pool);
                    out.push('"');
                }
            }
            LogFormat::Text => {
                out.push_str("client=");
                client.push_to(out);
                out.push_str(" method=");
                out.push_str(self.method);
                out.push_str(" protocol=");
                out.push_str(self.protocol);
                out.push_str(" path=");
                out.extend(
                    self.path
                        .chars()
                        .map(|c| if c.is_control() || c == ' ' { '?' } else { c }),
                );
                out.push_str(" status=");
                push_decimal(out, u64::from(self.status));
                out.push_str(" bytes=");
                push_decimal(out, self.bytes as u64);
                out.push_str(" backend=");
                out.push_str(self.backend);
                out.push_str(" upstream_ms=");
                push_millis(out, upstream_micros);
                out.push_str(" total_ms=");
                push_millis(out, total_micros);
                out.push_str(" request_id=");
                out.push_str(self.request_id);
                out.push_str(" trace_id=");
                out.push_str(self.trace_id);
                out.push_str(" refusal=");
                out.push_str(self.refusal);
                out.push_str(" tls=");
                out.push_str(self.tls);
                if let Some((route, pool)) = self.routing {
                    out.push_str(" route=");
                    out.push_str(route);
                    out.push_str(" pool=");
                    out.push_str(pool);
                }
            }
        }
    }
}

/// A non-negative integer in decimal, without the formatting machinery.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or("0"));
}

/// Microseconds as milliseconds with three decimals, by integer arithmetic.
fn push_millis(out: &mut String, micros: i64) {
    if micros < 0 {
        out.push('-');
    }
    let n = micros.unsigned_abs();
    push_decimal(out, n / 1000);
    push_three_digits(out, (n % 1000) as u32);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AccessEntry<'static> {
        AccessEntry {
            client: Some("203.0.113.9".parse().unwrap()),
            method: "GET",
            protocol: "h2",
            path: "/a\"b\n",
            status: 200,
            bytes: 12,
            backend: "http://a.example",
            upstream: Some(Duration::from_micros(1_234)),
            total: Duration::from_micros(5_000_001),
            request_id: "id-1",
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            refusal: "-",
            routing: None,
            tls: "TLSv1.3",
        }
    }

    #[test]
    fn json_fields_escape_and_mask() {
        let mut fields = String::from("{");
        entry().write(LogFormat::Json, &mut fields);
        fields.push('}');
        let value: serde_json::Value = serde_json::from_str(&fields).unwrap();
        assert_eq!(value["client"], "203.0.x.x");
        assert_eq!(value["protocol"], "h2");
        assert_eq!(value["path"], "/a\"b\n");
        assert_eq!(value["status"], 200);
        assert_eq!(value["upstream_ms"], 1.234);
        assert_eq!(value["total_ms"], 5000.001);
        assert_eq!(value["request_id"], "id-1");
        assert_eq!(value["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn route_and_pool_are_written_only_with_routes() {
        let (mut json, mut text) = (String::new(), String::new());
        let routed = AccessEntry {
            routing: Some(("api-v1", "api")),
            ..entry()
        };
        routed.write(LogFormat::Json, &mut json);
        routed.write(LogFormat::Text, &mut text);
        assert!(
            json.ends_with(",\"route\":\"api-v1\",\"pool\":\"api\""),
            "{json}"
        );
        assert!(text.ends_with(" route=api-v1 pool=api"), "{text}");
        let mut plain = String::new();
        entry().write(LogFormat::Json, &mut plain);
        assert!(!plain.contains("route"), "{plain}");
    }

    #[test]
    fn text_fields_stay_one_line() {
        let mut text = String::new();
        AccessEntry {
            upstream: None,
            ..entry()
        }
        .write(LogFormat::Text, &mut text);
        assert!(
            text.starts_with("client=203.0.x.x method=GET protocol=h2 path=/a\"b? status=200"),
            "{text}"
        );
        assert!(text.contains("upstream_ms=-1.000"), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = String::new();
        for n in [0, 7, 10, 200, 18_446_744_073_709_551_615] {
            push_decimal(&mut out, n);
            out.push(' ');
        }
        push_millis(&mut out, -1_000);
        out.push(' ');
        push_millis(&mut out, 5_000_001);
        assert_eq!(out, "0 7 10 200 18446744073709551615 -1.000 5000.001");
    }

    #[test]
    fn fractions_have_three_digits() {
        let mut out = String::new();
        push_three_digits(&mut out, 7);
        push_three_digits(&mut out, 999);
        assert_eq!(out, ".007.999");
    }
}
