//! The SFTP login's credentials, read when a connection is made: the password (given by flag
//! or environment, else read from `[sftp] password_file`) and the private key, decrypted with
//! its passphrase. Resolving the settings is `config::sftp`'s job; reading the files is here,
//! so that a command that never connects never reads them.

use std::path::{Path, PathBuf};

use super::error::SftpError;
use crate::config::sftp::{SftpSettings, ENV_PASSPHRASE, ENV_PASSWORD};
use crate::secret::Secret;

/// The password and private key, read when a connection is made.
pub(crate) struct Credentials {
    /// The decoded private key and its file.
    pub(crate) key: Option<(std::sync::Arc<russh::keys::PrivateKey>, PathBuf)>,
    /// The password.
    pub(crate) password: Option<Secret>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key.as_ref().map(|(_, p)| p))
            .field("password", &self.password)
            .finish()
    }
}

impl Credentials {
    /// Reads the password (flag or environment, then `password_file`) and the private key
    /// (decrypted with the passphrase from flag or environment). Errors name the setting,
    /// never the secret.
    pub(crate) fn load(s: &SftpSettings) -> Result<Credentials, SftpError> {
        let password = match (&s.password, &s.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(path)) => Some(read_password_file(path)?),
            (None, None) => None,
        };
        let key = match &s.private_key_file {
            Some(path) => Some((
                std::sync::Arc::new(load_key(path, s.passphrase.as_ref())?),
                path.clone(),
            )),
            None => None,
        };
        if key.is_none() && password.is_none() {
            return Err(SftpError::Config(format!(
                "[sftp] has no credentials: set private_key_file (the public half registered \
                 with Voyado), or the password in {ENV_PASSWORD} or password_file"
            )));
        }
        Ok(Credentials { key, password })
    }
}

fn read_password_file(path: &Path) -> Result<Secret, SftpError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SftpError::Config(format!(
            "cannot read [sftp] password_file {}: {e}",
            path.display()
        ))
    })?;
    // Editors add a newline; a password may contain inner spaces, so only the line end goes.
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(SftpError::Config(format!(
            "[sftp] password_file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(password))
}

fn load_key(
    path: &Path,
    passphrase: Option<&Secret>,
) -> Result<russh::keys::PrivateKey, SftpError> {
    use russh::keys::Error as KeyError;
    russh::keys::load_secret_key(path, passphrase.map(Secret::expose)).map_err(|e| {
        let why = match (&e, passphrase) {
            (KeyError::IO(io), _) => io.to_string(),
            (KeyError::KeyIsEncrypted, None) => {
                format!("it is encrypted: put its passphrase in {ENV_PASSPHRASE}")
            }
            (_, Some(_)) => format!(
                "the passphrase in {ENV_PASSPHRASE} does not decrypt it, or it is not a \
                 private key ({e})"
            ),
            (_, None) => format!("not an OpenSSH, PEM or PuTTY private key ({e})"),
        };
        SftpError::Config(format!(
            "cannot use [sftp] private_key_file {}: {why}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sftp::{resolve, SftpFileConfig, SftpSecrets};

    #[test]
    fn secrets_never_print() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "hunter2 x\n").expect("write");
        let file_config: SftpFileConfig =
            toml::from_str("host = \"h\"\nuser = \"u\"").expect("valid toml");
        let mut s = resolve(
            &file_config,
            |p| p.clone(),
            Path::new("/db"),
            &SftpSecrets::default(),
        )
        .expect("ok")
        .expect("on");
        s.password_file = Some(file);
        let c = Credentials::load(&s).expect("loads");
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("hunter2 x"));
        let shown = format!("{c:?} {}", Secret::new("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        s.password = Some(Secret::new("from-env"));
        let c = Credentials::load(&s).expect("loads");
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("from-env"));
        s.password_file = None;
        s.password = None;
        let e = Credentials::load(&s).expect_err("none");
        assert!(e.to_string().contains(ENV_PASSWORD), "{e}");
    }
}
