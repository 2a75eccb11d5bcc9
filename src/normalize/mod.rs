//! Normalisation of lookup keys (docs/contract.md §3). Import, API pulls, lookup, the till and
//! receipts' match keys use the same functions, so a key written one way at the till finds the
//! contact stored from Engage another way: the same person is always the same key.

mod email;
mod phone;
mod text;

pub use email::{normalize_email, till_email, EmailError};
pub use phone::{
    lookup_phone_key, phone_key, till_mobile, undo_doubled_country_code, Country, PhoneError,
};
pub use text::strip_format;

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

/// Other keys (member number, external id, personal identity number) are compared as written,
/// trimmed and without format characters (an invisible bidi mark copied along would make a
/// second key no one can type); an empty value means "no key".
pub fn normalize_plain(raw: &str) -> Option<String> {
    let t = strip_format(raw);
    let t = t.trim();
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
    fn owned_contact_ids_are_normalised_like_borrowed_ones() {
        for raw in [
            "1C277C0A-ABCD-4E6B-93DC-0123456789AB",
            " 1c277c0a-abcd-4e6b-93dc-0123456789ab ",
            "{1C277C0A-abcd-4E6B-93DC-0123456789AB}",
            "not a guid",
        ] {
            assert_eq!(
                normalize_contact_id_owned(raw.to_string()),
                normalize_contact_id(raw),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn plain_keys_lose_format_characters_and_spaces_around() {
        assert_eq!(
            normalize_plain(" \u{202A}M-1001\u{202C} ").as_deref(),
            Some("M-1001")
        );
        assert_eq!(normalize_plain("\u{200B}"), None);
    }
}
