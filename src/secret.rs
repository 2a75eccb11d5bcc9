//! The one type for secrets: Engage's API key, the SFTP password and the SFTP key's passphrase.
//!
//! `Debug` and `Display` print `***`, so a secret cannot leak through `{:?}` of any struct that
//! holds it (the parsed command line, the settings, a client); it is not `Serialize`, so it
//! cannot reach JSON output; [`Secret::expose`] is the only way to the value, used where it is
//! sent (the `apikey` header, the SSH login). The value is wiped from memory when dropped
//! (`zeroize`, already in the build through rustls and russh), so it does not linger in freed
//! heap pages.

use zeroize::Zeroizing;

/// A secret string. See the module documentation.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret itself, only where it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Lets clap parse a flag or environment variable straight into a `Secret`, so the parsed
/// command line never holds the value in a printable field.
impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_but_can_be_exposed() {
        let s = Secret::new("hunter2-Key");
        assert_eq!(format!("{s:?} {s} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "hunter2-Key");
        let from: Secret = String::from("hunter2-Key").into();
        assert_eq!(from, s);
    }
}
