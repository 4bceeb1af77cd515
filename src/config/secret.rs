//! Secrets read from files (`cluster.redis_password_file`, `admin.token_file`): refused when the
//! file may be read by group or others, never shown in logs or `Debug` output.

use super::checker::Checker;
use std::fmt;
use std::path::Path;

/// A secret read from a file; `Debug` shows `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads the secret in `path` without its final line break; refuses a file that group or
/// others may read, or an empty one. The error says why, naming the file.
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    // SECURITY: a secret file others can read is a leaked secret; refuse it as ssh refuses a
    // private key with loose permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{shown} may be read by group or others (mode {mode:o}); chmod 600 it"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    Ok(Secret(secret.to_string()))
}

impl Checker {
    /// [`read_secret_file`] for the config key `key`, the problem recorded under that key.
    pub(super) fn secret_file(&mut self, path: &Path, key: &str) -> Option<Secret> {
        read_secret_file(path)
            .map_err(|problem| self.error(key, problem))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn admin_token_file_must_be_private_and_not_empty() {
        let dir = std::env::temp_dir().join(format!("aegis-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("token");
        let yaml = format!(
            "backends:\n  - url: http://a.example\nadmin:\n  token_file: {}\n",
            file.display()
        );
        let problems = |yaml: &str| -> Vec<String> {
            parse(yaml)
                .expect_err("refused")
                .0
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let missing = problems(&yaml);
        assert!(
            missing[0].starts_with("admin.token_file: cannot read"),
            "{missing:?}"
        );
        for (contents, mode, expected) in [
            (
                "t0ken\n",
                0o640,
                "may be read by group or others (mode 640)",
            ),
            (
                "t0ken\n",
                0o604,
                "may be read by group or others (mode 604)",
            ),
            ("\n", 0o600, "is empty"),
        ] {
            std::fs::write(&file, contents).expect("write");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let found = problems(&yaml);
            assert!(
                found.len() == 1
                    && found[0].starts_with("admin.token_file: ")
                    && found[0].contains(expected),
                "{found:?}"
            );
        }
        std::fs::write(&file, "t0ken\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let config = parse(&yaml).expect("valid");
        let token = config.admin.token.expect("read");
        assert_eq!(token.expose(), "t0ken");
        assert_eq!(format!("{token:?}"), "Secret(***)");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
