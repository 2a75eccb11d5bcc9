//! E-mail addresses: one key per mailbox as Engage matches them (without case).

use super::text::strip_format;

/// RFC 5321 §4.5.3.1.1: at most 64 octets before the `@`.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.3 (a 256-octet path less its angle brackets): at most 254 octets.
pub const MAX_ADDRESS: usize = 254;

/// The key of an e-mail address that already exists (export files, API pulls, lookups, match
/// keys): format characters dropped, spaces around trimmed, lower-cased. `None` when nothing
/// is left. Export files are ASCII almost always, so that case costs no scan for format
/// characters.
pub fn normalize_email(raw: &str) -> Option<String> {
    let t = if raw.is_ascii() {
        std::borrow::Cow::Borrowed(raw.trim())
    } else {
        std::borrow::Cow::Owned(strip_format(raw).trim().to_string())
    };
    if t.is_empty() {
        None
    } else if t.is_ascii() {
        Some(t.to_ascii_lowercase())
    } else {
        Some(t.to_lowercase())
    }
}

/// Why an address typed at the till is refused. The messages never contain the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing but spaces or format characters.
    #[error("is empty")]
    Empty,
    /// Not of the form name@domain.tld.
    #[error("is not an e-mail address (expected name@domain.tld, without spaces)")]
    Malformed,
    /// Longer than RFC 5321 allows before the `@`.
    #[error("has {0} characters before the @; an address may have at most 64 (RFC 5321)")]
    LocalPartTooLong(usize),
    /// Longer than RFC 5321 allows.
    #[error("has {0} characters; an address may have at most 254 (RFC 5321)")]
    TooLong(usize),
}

/// An address typed at the till: [`normalize_email`], then a plausibility check (one `@`,
/// something before it, a dot inside the domain, no spaces) and RFC 5321's length limits
/// (counted in bytes, as mail servers count them). Engage validates for real; this catches
/// typos before a customer leaves the counter.
pub fn till_email(raw: &str) -> Result<String, EmailError> {
    let e = normalize_email(raw).ok_or(EmailError::Empty)?;
    let Some((local, domain)) = e.split_once('@') else {
        return Err(EmailError::Malformed);
    };
    let plausible = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        return Err(EmailError::Malformed);
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(EmailError::LocalPartTooLong(local.len()));
    }
    if e.len() > MAX_ADDRESS {
        return Err(EmailError::TooLong(e.len()));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_lower_cased_and_cleaned() {
        assert_eq!(
            normalize_email("  Anna.Ek@Example.COM ").as_deref(),
            Some("anna.ek@example.com")
        );
        assert_eq!(
            normalize_email("\u{202A}ÅSA@Example.se\u{200B}\u{A0}").as_deref(),
            Some("åsa@example.se")
        );
        assert_eq!(normalize_email("   "), None);
        assert_eq!(normalize_email("\u{FEFF}"), None);
    }

    #[test]
    fn the_till_checks_form_and_rfc_5321_lengths() {
        assert_eq!(till_email(" A@B.se ").as_deref(), Ok("a@b.se"));
        assert_eq!(till_email(""), Err(EmailError::Empty));
        for bad in [
            "a@b", "@b.se", "a b@c.se", "a@b@c.se", "a@.se", "a@se.", "nobody",
        ] {
            assert_eq!(till_email(bad), Err(EmailError::Malformed), "{bad}");
        }
        let local64 = "a".repeat(64);
        assert!(till_email(&format!("{local64}@b.se")).is_ok());
        assert_eq!(
            till_email(&format!("a{local64}@b.se")),
            Err(EmailError::LocalPartTooLong(65))
        );
        let domain = format!("{}.se", "d".repeat(247));
        assert!(till_email(&format!("abc@{domain}")).is_ok(), "254 octets");
        assert_eq!(
            till_email(&format!("abcd@{domain}")),
            Err(EmailError::TooLong(255))
        );
    }
}
