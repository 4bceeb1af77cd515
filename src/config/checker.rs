//! The field checker behind validation: converts one raw YAML field at a time into its domain
//! type, recording a problem with its key path and falling back to the default when it is wrong.

use super::raw::{Field, Unknown};
use super::ConfigError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Shows a YAML value briefly, for an error message.
pub(super) fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
    }
}

/// Collects problems while converting fields; each method returns a usable value (the default
/// when the field is wrong) so that checking goes on.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) errors: Vec<ConfigError>,
}

impl Checker {
    pub(super) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn unknown(&mut self, section: &str, unknown: &Unknown) {
        for key in unknown.keys() {
            let path = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            self.error(&path, "unknown key (is it misspelt?)");
        }
    }

    pub(super) fn section<T: Default>(&mut self, field: Field<T>, path: &str) -> T {
        match field {
            Field::Missing => T::default(),
            Field::Value(v) => v,
            Field::Invalid(v) => {
                self.error(path, format!("expected a mapping, got {}", show(&v)));
                T::default()
            }
        }
    }

    pub(super) fn typed<T>(&mut self, field: Field<T>, path: &str, expected: &str) -> Option<T> {
        match field {
            Field::Missing => None,
            Field::Value(v) => Some(v),
            Field::Invalid(v) => {
                self.error(path, format!("expected {expected}, got {}", show(&v)));
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn int(
        &mut self,
        field: Field<i64>,
        path: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> i64 {
        match self.typed(field, path, "an integer") {
            None => default,
            Some(v) if v < min || v > max => {
                if max == i64::MAX {
                    self.error(path, format!("must be at least {min}, got {v}"));
                } else {
                    self.error(path, format!("must be between {min} and {max}, got {v}"));
                }
                default
            }
            Some(v) => v,
        }
    }

    /// A number checked by `valid`, which describes the range.
    pub(super) fn number(
        &mut self,
        field: Field<f64>,
        path: &str,
        default: f64,
        range: &str,
        valid: impl Fn(f64) -> bool,
    ) -> f64 {
        match self.typed(field, path, "a number") {
            None => default,
            Some(v) if !v.is_finite() || !valid(v) => {
                self.error(path, format!("must be {range}, got {v}"));
                default
            }
            Some(v) => v,
        }
    }

    pub(super) fn boolean(&mut self, field: Field<bool>, path: &str, default: bool) -> bool {
        self.typed(field, path, "true or false").unwrap_or(default)
    }

    /// A positive duration written with units (`250ms`, `5s`, `1m30s`).
    pub(super) fn duration(
        &mut self,
        field: Field<String>,
        path: &str,
        default: Duration,
    ) -> Duration {
        let expected = "a duration with a unit, such as 250ms, 5s or 1m30s";
        let Some(text) = self.typed(field, path, expected) else {
            return default;
        };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => {
                self.error(path, "must be greater than zero");
                default
            }
            Ok(d) => d,
            Err(_) => {
                self.error(path, format!("expected {expected}, got {text:?}"));
                default
            }
        }
    }

    /// Reads a CA file (`key` names it) and checks that it holds at least one PEM
    /// certificate; the PEM text, or `None` with the problem reported.
    pub(super) fn ca_file(&mut self, path: &Path, key: &str) -> Option<Vec<u8>> {
        let shown = path.display();
        let pem = match std::fs::read(path) {
            Ok(pem) => pem,
            Err(e) => {
                self.error(key, format!("cannot read {shown}: {e}"));
                return None;
            }
        };
        let certificates = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
        match certificates {
            Ok(list) if !list.is_empty() => Some(pem),
            Ok(_) => {
                self.error(key, format!("{shown} holds no PEM certificate"));
                None
            }
            Err(e) => {
                self.error(key, format!("{shown} is not valid PEM ({e})"));
                None
            }
        }
    }

    pub(super) fn path(&mut self, field: Field<String>, path: &str) -> Option<PathBuf> {
        let text = self.typed(field, path, "a file path")?;
        if text.trim().is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        Some(PathBuf::from(text))
    }
}
