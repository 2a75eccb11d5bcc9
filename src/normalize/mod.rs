//! Normalisation of lookup keys (SPEC §3). Import and lookup use the same functions, so a key
//! written one way at the till finds the contact stored from Engage another way.

mod phone;

pub use phone::{calling_code, normalize_phone, Country};

/// Contact ids are GUIDs compared case-insensitively: stored lower-case, without braces.
/// Returns `None` when the value is not a GUID (8-4-4-4-12 hex digits).
pub fn normalize_contact_id(raw: &str) -> Option<String> {
    guid(raw).map(str::to_ascii_lowercase)
}

/// [`normalize_contact_id`] of an owned value, reusing its allocation when it is a bare GUID
/// (as in export files, where the parser saves an allocation per contact this way).
pub fn normalize_contact_id_owned(mut raw: String) -> Option<String> {
    let inner = guid(&raw)?;
    if inner.len() == raw.len() {
        raw.make_ascii_lowercase();
        Some(raw)
    } else {
        Some(inner.to_ascii_lowercase())
    }
}

/// The GUID in `raw` (trimmed, without braces), if it is one.
fn guid(raw: &str) -> Option<&str> {
    let trimmed = raw.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(trimmed);
    let bytes = inner.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    for (i, b) in bytes.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        };
        if !ok {
            return None;
        }
    }
    Some(inner)
}

/// E-mail addresses are trimmed and lower-cased (Engage matches them case-insensitively).
/// An empty value means "no e-mail".
pub fn normalize_email(raw: &str) -> Option<String> {
    let t = raw.trim();
    if t.is_empty() {
        None
    } else {
        Some(t.to_lowercase())
    }
}

/// A plausibility check for an e-mail typed at the till: one `@`, something before it, a dot in
/// the domain, no spaces. Engage validates for real; this only catches typos early.
pub fn looks_like_email(normalized: &str) -> bool {
    let Some((local, domain)) = normalized.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !normalized.chars().any(char::is_whitespace)
}

/// Other keys (member number, external id, personal identity number) are compared as written,
/// trimmed; an empty value means "no key".
pub fn normalize_plain(raw: &str) -> Option<String> {
    let t = raw.trim();
    if t.is_empty() {
        None
    } else {
        Some(t.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_ids_are_lower_cased_and_validated() {
        assert_eq!(
            normalize_contact_id(" 1C277C0A-ABCD-4E6B-93DC-0123456789AB ").as_deref(),
            Some("1c277c0a-abcd-4e6b-93dc-0123456789ab")
        );
        assert_eq!(
            normalize_contact_id("{1c277c0a-abcd-4e6b-93dc-0123456789ab}").as_deref(),
            Some("1c277c0a-abcd-4e6b-93dc-0123456789ab")
        );
        assert_eq!(
            normalize_contact_id("1c277c0a-abcd-4e6b-93dc-0123456789a"),
            None
        );
        assert_eq!(
            normalize_contact_id("1c277c0a_abcd-4e6b-93dc-0123456789ab"),
            None
        );
        assert_eq!(
            normalize_contact_id("zc277c0a-abcd-4e6b-93dc-0123456789ab"),
            None
        );
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Anna.Ek@Example.COM ").as_deref(),
            Some("anna.ek@example.com")
        );
        assert_eq!(normalize_email("   "), None);
        assert!(looks_like_email("a@b.se"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_email("@b.se"));
        assert!(!looks_like_email("a b@c.se"));
    }
}
