//! Mobile numbers to E.164 (`+46701234567`).
//!
//! Engage requires a country code on `mobilePhone`, so exported numbers are usually E.164
//! already; the national forms come from tills (`070-123 45 67`). A full libphonenumber port
//! would validate number ranges too, but costs microseconds per number on the import hot path;
//! this table-driven normaliser handles the formats seen in practice: `+CC…`, `00CC…`,
//! `+CC (0)…`, and national numbers with or without the country's trunk prefix.

/// A default country for national-format numbers: its calling code and trunk prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2 code, upper case.
    pub iso: &'static str,
    /// The international calling code, digits only.
    pub calling_code: &'static str,
    /// The national trunk prefix dropped when adding the calling code ("" where none).
    pub trunk_prefix: &'static str,
}

/// Countries engage-sync knows as a default country. Extend the table when a market needs it.
const COUNTRIES: &[Country] = &[
    c("SE", "46", "0"),
    c("NO", "47", ""),
    c("DK", "45", ""),
    c("FI", "358", "0"),
    c("IS", "354", ""),
    c("EE", "372", ""),
    c("LV", "371", ""),
    c("LT", "370", "8"),
    c("PL", "48", ""),
    c("DE", "49", "0"),
    c("AT", "43", "0"),
    c("CH", "41", "0"),
    c("NL", "31", "0"),
    c("BE", "32", "0"),
    c("LU", "352", ""),
    c("FR", "33", "0"),
    c("GB", "44", "0"),
    c("IE", "353", "0"),
    c("ES", "34", ""),
    c("PT", "351", ""),
    c("IT", "39", ""),
    c("US", "1", "1"),
    c("CA", "1", "1"),
];

const fn c(iso: &'static str, calling_code: &'static str, trunk_prefix: &'static str) -> Country {
    Country {
        iso,
        calling_code,
        trunk_prefix,
    }
}

/// The country for an ISO alpha-2 code (any case), if engage-sync knows it.
pub fn calling_code(iso: &str) -> Option<Country> {
    COUNTRIES
        .iter()
        .copied()
        .find(|c| c.iso.eq_ignore_ascii_case(iso.trim()))
}

/// Normalises a phone number to E.164 with `default` for national formats.
/// Returns `None` for an empty value or one that cannot be a phone number (letters, too few or
/// too many digits).
pub fn normalize_phone(raw: &str, default: Country) -> Option<String> {
    let raw = raw.trim();
    // Fast path: already E.164, as Engage exports it.
    if let Some(rest) = raw.strip_prefix('+') {
        if (7..=15).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_digit()) {
            return Some(raw.to_string());
        }
    }
    let (international, digits) = split_digits(raw)?;
    let e164 = if international {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else {
        let national = digits
            .strip_prefix(default.trunk_prefix)
            .filter(|_| !default.trunk_prefix.is_empty())
            .unwrap_or(&digits);
        format!("{}{}", default.calling_code, national)
    };
    if (7..=15).contains(&e164.len()) && !e164.starts_with('0') {
        Some(format!("+{e164}"))
    } else {
        None
    }
}

/// Strips separators; returns whether the number had a leading `+` and its digits.
/// `+46 (0)70…` drops the parenthesised trunk prefix.
fn split_digits(raw: &str) -> Option<(bool, String)> {
    let mut international = false;
    let mut digits = String::with_capacity(raw.len());
    let cleaned = raw.replace("(0)", "");
    for (i, ch) in cleaned.chars().enumerate() {
        match ch {
            '+' if i == 0 => international = true,
            '0'..='9' => digits.push(ch),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => return None,
        }
    }
    if digits.is_empty() {
        None
    } else {
        Some((international, digits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn se() -> Country {
        calling_code("se").expect("SE is known")
    }

    #[test]
    fn spec_examples_all_normalise_to_the_same_number() {
        for raw in [
            "0046 70-123 45 67",
            "+46 70 123 45 67",
            "070-123 45 67",
            "+46701234567",
            "+46 (0)70 123 45 67",
            "+46-70-123.45.67",
        ] {
            assert_eq!(
                normalize_phone(raw, se()).as_deref(),
                Some("+46701234567"),
                "{raw}"
            );
        }
    }

    #[test]
    fn countries_without_trunk_prefix_keep_all_digits() {
        let no = calling_code("NO").expect("NO is known");
        assert_eq!(
            normalize_phone("412 34 567", no).as_deref(),
            Some("+4741234567")
        );
        let fi = calling_code("FI").expect("FI is known");
        assert_eq!(
            normalize_phone("040 123 4567", fi).as_deref(),
            Some("+358401234567")
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(normalize_phone("", se()), None);
        assert_eq!(normalize_phone("call me", se()), None);
        assert_eq!(normalize_phone("070-12x", se()), None);
        assert_eq!(normalize_phone("12", se()), None);
        assert_eq!(normalize_phone("+1234567890123456789", se()), None);
        assert_eq!(normalize_phone("0", se()), None);
    }
}
