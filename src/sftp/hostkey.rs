//! Checking the SFTP server's host key: against an OpenSSH `known_hosts` file or one pinned
//! SHA-256 fingerprint. An unknown, changed or mismatching key is refused with a message that
//! names the key the server presented; the user trusts it explicitly by passing exactly that
//! fingerprint with `--trust-host-key`, which (with `known_hosts`) records it in the file: an
//! unknown key is appended, a changed one replaces the old entry, which is kept commented out
//! with the date, so the file shows when a key was replaced.
//!
//! Matching (plain and hashed `|1|…` host names, `[host]:port` for ports other than 22) is
//! russh's `known_hosts` reader; like OpenSSH, a host with keys of other types only is
//! "unknown", one with another key of the same type "changed".

use std::path::{Path, PathBuf};

use russh::keys::{known_hosts, Algorithm, HashAlg, PublicKey};

use super::error::SftpError;
use crate::config::sftp::HostKeyPolicy;

/// What to do with a key the server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Trusted by `known_hosts` or the pinned fingerprint.
    Known,
    /// Not trusted by the configuration, but the user passed its fingerprint with
    /// `--trust-host-key`: accept it and record it. `replaces` are the `known_hosts` line numbers
    /// (1-based) of the entries it replaces.
    TrustedNow {
        /// Lines holding the host's old key of the same type.
        replaces: Vec<usize>,
    },
    /// Refused; the message says why and what to do.
    Refused(String),
}

/// The host key check of one server.
#[derive(Debug, Clone)]
pub struct HostKeyCheck {
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    trust: Option<String>,
}

/// `SHA256:…` of a key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl HostKeyCheck {
    /// A check of `host:port` under `policy`; `trust` is the fingerprint from
    /// `--trust-host-key`, already validated.
    pub fn new(host: &str, port: u16, policy: HostKeyPolicy, trust: Option<String>) -> Self {
        HostKeyCheck {
            host: host.to_string(),
            port,
            policy,
            trust,
        }
    }

    /// Decides about the key the server presented.
    pub fn verify(&self, key: &PublicKey) -> Verdict {
        let fp = fingerprint(key);
        let alg = key.algorithm();
        let server = format!("{}:{}", self.host, self.port);
        let trusted_by_flag = self.trust.as_deref() == Some(fp.as_str());
        let flag_note = match &self.trust {
            Some(t) if !trusted_by_flag => {
                format!(" (--trust-host-key {t} was given, but the server presented another key)")
            }
            _ => String::new(),
        };
        match &self.policy {
            HostKeyPolicy::Fingerprint(pin) if *pin == fp => Verdict::Known,
            HostKeyPolicy::Fingerprint(_) if trusted_by_flag => {
                Verdict::TrustedNow { replaces: vec![] }
            }
            HostKeyPolicy::Fingerprint(pin) => Verdict::Refused(format!(
                "the SFTP server {server} presented the host key {alg} {fp}, not the one pinned \
                 in [sftp] host_key_fingerprint ({pin}){flag_note}. Someone may be intercepting \
                 the connection, or Voyado replaced the key: confirm the new fingerprint with \
                 the Voyado team, then set host_key_fingerprint to it"
            )),
            HostKeyPolicy::KnownHosts(path) => {
                let recorded = match known_hosts::known_host_keys_path(&self.host, self.port, path)
                {
                    Ok(r) => r,
                    Err(e) => {
                        return Verdict::Refused(format!(
                            "cannot read the known_hosts file {} ({e}); fix or remove the \
                             broken entry for {server}",
                            path.display()
                        ))
                    }
                };
                if recorded.iter().any(|(_, k)| k.key_data() == key.key_data()) {
                    return Verdict::Known;
                }
                let changed: Vec<usize> = recorded
                    .iter()
                    .filter(|(_, k)| k.algorithm() == alg)
                    .map(|(n, _)| file_line(path, *n))
                    .collect();
                if trusted_by_flag {
                    return Verdict::TrustedNow { replaces: changed };
                }
                let lines = join(&changed);
                Verdict::Refused(if changed.is_empty() {
                    format!(
                        "the SFTP server {server} is not known: its host key ({alg} {fp}) is not \
                         in {}{flag_note}. engage-sync only talks to a server whose identity it \
                         can check, so that nobody in between can pose as Engage's server. \
                         Check the fingerprint with the Voyado team, then run once with \
                         --trust-host-key {fp} to record it (or set host_key_fingerprint = \
                         \"{fp}\" in [sftp])",
                        path.display()
                    )
                } else {
                    format!(
                        "the host key of the SFTP server {server} has CHANGED: {} line {lines} \
                         holds another {alg} key, and the server now presents {fp}{flag_note}. \
                         Someone may be intercepting the connection, or Voyado replaced the key: \
                         confirm the new fingerprint with the Voyado team, then run once with \
                         --trust-host-key {fp} to replace the recorded key",
                        path.display()
                    )
                })
            }
        }
    }

    /// Host key algorithms in the order to offer them: those of keys already recorded for
    /// the host first (as OpenSSH does), so a server with several keys presents the known one.
    pub fn preferred_algorithms(&self) -> Vec<Algorithm> {
        let default = russh::Preferred::DEFAULT.key.to_vec();
        let HostKeyPolicy::KnownHosts(path) = &self.policy else {
            return default;
        };
        let recorded: Vec<Algorithm> =
            known_hosts::known_host_keys_path(&self.host, self.port, path)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, k)| k.algorithm())
                .collect();
        let known = |a: &Algorithm| recorded.iter().any(|r| r == a || (is_rsa(r) && is_rsa(a)));
        let (mut first, rest): (Vec<_>, Vec<_>) = default.into_iter().partition(known);
        first.extend(rest);
        first
    }

    /// Records a key accepted with `--trust-host-key` in `known_hosts` (nothing to record for
    /// a pinned fingerprint: the caller tells the user to update the pin).
    pub fn record(
        &self,
        key: &PublicKey,
        replaces: &[usize],
    ) -> Result<Option<PathBuf>, SftpError> {
        let HostKeyPolicy::KnownHosts(path) = &self.policy else {
            return Ok(None);
        };
        let entry = key
            .to_openssh()
            .map_err(|e| SftpError::Setup(format!("cannot encode the host key: {e}")))?;
        let host = if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        };
        let old = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(SftpError::local(
                    format!("cannot read the known_hosts file {}", path.display()),
                    e,
                ))
            }
        };
        let today = chrono::Utc::now().format("%Y-%m-%d");
        let mut text = String::with_capacity(old.len() + entry.len() + 64);
        for (i, line) in old.lines().enumerate() {
            if replaces.contains(&(i + 1)) {
                text.push_str(&format!(
                    "# replaced by engage-sync --trust-host-key on {today}: "
                ));
            }
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("{host} {}\n", entry.trim()));
        write_atomically(path, &text)?;
        Ok(Some(path.clone()))
    }
}

/// russh numbers `known_hosts` entries skipping comment lines; this turns its number back into
/// the line number in the file, for messages and for [`HostKeyCheck::record`].
fn file_line(path: &Path, entry: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return entry;
    };
    let mut seen = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.starts_with('#') {
            seen += 1;
            if seen == entry {
                return i + 1;
            }
        }
    }
    entry
}

fn is_rsa(a: &Algorithm) -> bool {
    matches!(a, Algorithm::Rsa { .. })
}

fn join(lines: &[usize]) -> String {
    lines
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `path` through a temporary file and a rename, so a crash never leaves a half file.
fn write_atomically(path: &Path, text: &str) -> Result<(), SftpError> {
    use std::io::Write;
    let fail = |e| {
        SftpError::local(
            format!("cannot write the known_hosts file {}", path.display()),
            e,
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".engage-sync-tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover (or planted) temporary file or link is removed, never written through.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    crate::fsutil::no_follow_private(&mut options);
    let mut f = options.open(&tmp).map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).expect("key")
    }

    fn check(path: &Path, trust: Option<String>) -> HostKeyCheck {
        HostKeyCheck::new(
            "127.0.0.1",
            2222,
            HostKeyPolicy::KnownHosts(path.to_path_buf()),
            trust,
        )
    }

    #[test]
    fn unknown_then_trusted_explicitly_then_known() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        let a = key(KEY_A);
        let Verdict::Refused(msg) = check(&path, None).verify(&a) else {
            panic!("unknown key accepted");
        };
        assert!(
            msg.contains("not known") && msg.contains(&fingerprint(&a)),
            "{msg}"
        );
        let wrong = check(&path, Some(fingerprint(&key(KEY_B))));
        assert!(matches!(wrong.verify(&a), Verdict::Refused(m) if m.contains("another key")));
        let c = check(&path, Some(fingerprint(&a)));
        let Verdict::TrustedNow { replaces } = c.verify(&a) else {
            panic!("not trusted");
        };
        assert!(replaces.is_empty());
        c.record(&a, &replaces).expect("records");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with(&format!("[127.0.0.1]:2222 ssh-ed25519 {KEY_A}")),
            "{text}"
        );
        assert_eq!(check(&path, None).verify(&a), Verdict::Known);
    }

    #[test]
    fn a_changed_key_is_refused_and_replaced_only_when_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        let old = format!(
            "# comment\nother.host ssh-ed25519 {KEY_B}\n# another comment\n\
             [127.0.0.1]:2222 ssh-ed25519 {KEY_A}\n"
        );
        std::fs::write(&path, &old).expect("write");
        let b = key(KEY_B);
        let Verdict::Refused(msg) = check(&path, None).verify(&b) else {
            panic!("changed key accepted");
        };
        assert!(msg.contains("CHANGED") && msg.contains("line 4"), "{msg}");
        let c = check(&path, Some(fingerprint(&b)));
        let Verdict::TrustedNow { replaces } = c.verify(&b) else {
            panic!("not trusted");
        };
        assert_eq!(replaces, vec![4]);
        c.record(&b, &replaces).expect("records");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], format!("other.host ssh-ed25519 {KEY_B}"));
        assert!(lines[3].starts_with("# replaced by engage-sync"), "{text}");
        assert_eq!(lines[4], format!("[127.0.0.1]:2222 ssh-ed25519 {KEY_B}"));
        assert_eq!(check(&path, None).verify(&b), Verdict::Known);
        assert!(matches!(
            check(&path, None).verify(&key(KEY_A)),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn a_pinned_fingerprint_decides_alone() {
        let a = key(KEY_A);
        let b = key(KEY_B);
        let pinned =
            |trust| HostKeyCheck::new("h", 22, HostKeyPolicy::Fingerprint(fingerprint(&a)), trust);
        assert_eq!(pinned(None).verify(&a), Verdict::Known);
        assert!(matches!(pinned(None).verify(&b), Verdict::Refused(m) if m.contains("pinned")));
        assert_eq!(
            pinned(Some(fingerprint(&b))).verify(&b),
            Verdict::TrustedNow { replaces: vec![] }
        );
    }
}
