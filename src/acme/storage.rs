//! The ACME storage directory (§18): per ACME directory (so that switching from a staging to a
//! production CA starts afresh), the account credentials and each certificate's chain and key.
//!
//! ```text
//! <storage>/                                    0700
//!   acme-v02.api.letsencrypt.org_directory/     0700  one per directory URL
//!     account.json                              0600  account URL and private key
//!     example.com.crt                           0600  chain, leaf first (named by the first domain)
//!     example.com.key                           0600  the certificate's private key
//! ```
//!
//! Files are written to a temporary name and renamed, so a crash never leaves half a file.
//! Certificates are read back with the same code that reads `tls.certificates` files.

use crate::config::{load_certificate, LoadedCertificate};
use instant_acme::AccountCredentials;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One directory URL's part of a storage directory.
#[derive(Debug, Clone)]
pub struct Storage {
    dir: PathBuf,
}

impl Storage {
    /// `<storage>/<directory as a file name>`, created 0700 if missing.
    pub fn open(storage: &Path, directory: &str) -> Result<Self, String> {
        let dir = storage.join(directory_folder(directory));
        // SECURITY: the account key and certificate keys live here; no other user may list or
        // read them (0700), from the first moment the directories exist.
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for path in [storage, dir.as_path()] {
            let mode = std::fs::metadata(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} is open to other users (mode {:o}); run chmod 700 on it",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        Ok(Storage { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The stored account, if there is one.
    pub fn account(&self) -> Result<Option<AccountCredentials>, String> {
        let path = self.dir.join("account.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} cannot be read as an ACME account: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn save_account(&self, credentials: &AccountCredentials) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(credentials)
            .map_err(|e| format!("cannot encode the ACME account: {e}"))?;
        write_private(&self.dir.join("account.json"), &json)
    }

    /// The stored certificate for `domains`, if its files exist and can be read; whether it
    /// is still valid and covers every domain is the caller's judgement.
    pub fn certificate(&self, domains: &[String]) -> Result<Option<LoadedCertificate>, String> {
        let (cert, key) = self.certificate_paths(domains);
        if !cert.exists() && !key.exists() {
            return Ok(None);
        }
        load_certificate(&cert, &key)
            .map(Some)
            .map_err(|(field, message)| format!("stored certificate ({field}): {message}"))
    }

    /// Writes a certificate (chain and key, PEM) and reads it back as it will be served.
    pub fn save_certificate(
        &self,
        domains: &[String],
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<LoadedCertificate, String> {
        let (cert, key) = self.certificate_paths(domains);
        // The key first: a chain without its key on disk would be unusable after a crash, a key
        // without its new chain only means one more order.
        write_private(&key, key_pem.as_bytes())?;
        write_private(&cert, chain_pem.as_bytes())?;
        load_certificate(&cert, &key)
            .map_err(|(field, message)| format!("issued certificate ({field}): {message}"))
    }

    fn certificate_paths(&self, domains: &[String]) -> (PathBuf, PathBuf) {
        let name = domains.first().map_or("certificate", String::as_str);
        (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        )
    }
}

/// A directory URL as one file name: `https://127.0.0.1:14000/dir` → `127.0.0.1_14000_dir`.
fn directory_folder(directory: &str) -> String {
    let without_scheme = directory
        .split_once("://")
        .map_or(directory, |(_, rest)| rest);
    let name: String = without_scheme
        .trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    // Never `.` or `..` (the URL's host makes that impossible, but the name is a path).
    if name.trim_matches('.').is_empty() {
        "directory".into()
    } else {
        name
    }
}

/// Writes `bytes` to `path` with mode 0600, through a temporary file renamed into place.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let temporary = path.with_extension("tmp");
    let written = (|| {
        // SECURITY: created 0600 (not chmod-ed after the fact): the key is never readable by
        // others, not even for an instant.
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    written.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_folders_are_plain_names() {
        assert_eq!(
            directory_folder("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org_directory"
        );
        assert_eq!(
            directory_folder("https://127.0.0.1:14000/dir"),
            "127.0.0.1_14000_dir"
        );
        assert_eq!(directory_folder("https://../"), "directory");
    }

    #[test]
    fn files_are_private_and_replaced_whole() {
        let base = std::env::temp_dir().join(format!("aegis-acme-files-{}", std::process::id()));
        let storage = Storage::open(&base.join("acme"), "https://ca.test/dir").expect("open");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&base.join("acme")), 0o700);
        assert_eq!(mode(storage.path()), 0o700);
        let file = storage.path().join("x.key");
        write_private(&file, b"one").expect("write");
        write_private(&file, b"two").expect("write again");
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert_eq!(mode(&file), 0o600);
        assert!(!storage.path().join("x.tmp").exists());
        assert!(storage.account().expect("none yet").is_none());
        assert!(storage
            .certificate(&["a.test".into()])
            .expect("none yet")
            .is_none());
        std::fs::set_permissions(base.join("acme"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let open = Storage::open(&base.join("acme"), "https://ca.test/dir").expect_err("0755");
        assert!(open.contains("open to other users"), "{open}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
