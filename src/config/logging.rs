//! The `logging` section (§7.1): level, format and destination of the logs.

use super::checker::Checker;
use super::raw::RawLogging;
use std::path::PathBuf;

/// The shape of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// `time LEVEL message key=value…`, for people.
    Text,
}

/// `logging`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingSettings {
    /// `logging.level`, default `info` (debug, info, warn, error): the least severe line kept;
    /// `--log-level` overrides it.
    pub level: log::LevelFilter,
    /// `logging.format`, default `json` (json or text).
    pub format: LogFormat,
    /// `logging.file`, default none: where logs go instead of stdout; while the dashboard runs,
    /// `aegis.log` when unset. SIGUSR1 reopens it (logrotate).
    pub file: Option<PathBuf>,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            level: log::LevelFilter::Info,
            format: LogFormat::Json,
            file: None,
        }
    }
}

/// Parses a log level name as `logging.level` and `--log-level` accept it.
pub fn parse_level(text: &str) -> Option<log::LevelFilter> {
    match text.trim().to_ascii_lowercase().as_str() {
        "debug" => Some(log::LevelFilter::Debug),
        "info" => Some(log::LevelFilter::Info),
        "warn" | "warning" => Some(log::LevelFilter::Warn),
        "error" => Some(log::LevelFilter::Error),
        _ => None,
    }
}

impl Checker {
    pub(super) fn logging(&mut self, raw: RawLogging) -> LoggingSettings {
        self.unknown("logging", &raw.unknown);
        let default = LoggingSettings::default();
        let level = match self.typed(raw.level, "logging.level", "debug, info, warn or error") {
            None => default.level,
            Some(text) => parse_level(&text).unwrap_or_else(|| {
                self.error(
                    "logging.level",
                    format!("expected debug, info, warn or error, got {text:?}"),
                );
                default.level
            }),
        };
        let format = match self
            .typed(raw.format, "logging.format", "json or text")
            .as_deref()
        {
            None => default.format,
            Some(text) => match text.trim().to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => {
                    self.error(
                        "logging.format",
                        format!("expected json or text, got {text:?}"),
                    );
                    default.format
                }
            },
        };
        LoggingSettings {
            level,
            format,
            file: self.path(raw.file, "logging.file"),
        }
    }
}
