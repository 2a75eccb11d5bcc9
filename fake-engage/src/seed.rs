//! Synthetic contacts for benchmarks. A seeded contact is stored as just its
//! sequence number; its attributes are a pure function of that number and are
//! generated on demand. That keeps a million seeded contacts at roughly 150 MB
//! instead of the gigabyte a `serde_json::Map` per contact would cost.

use serde_json::{Map, Value};

/// First names with Nordic letters, so the client's UTF-8 handling is tested.
const FIRST: [&str; 20] = [
    "Åsa", "Björn", "Märta", "Sören", "Zoë", "Jörgen", "Ängla", "Øystein", "Anna", "Erik", "Karin",
    "Lars", "Sofia", "Johan", "Maja", "Oskar", "Elin", "Nils", "Inés", "Mikael",
];

const LAST: [&str; 17] = [
    "Öberg",
    "Åström",
    "Lindqvist",
    "Bäckström",
    "Nyström",
    "Ekström",
    "Söderberg",
    "Håkansson",
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Müller",
    "Ødegård",
    "Lövgren",
    "Wåhlin",
];

const CITIES: [&str; 8] = [
    "Göteborg",
    "Malmö",
    "Umeå",
    "Västerås",
    "Örebro",
    "Linköping",
    "Jönköping",
    "Stockholm",
];

/// Swedish mobile prefixes after +46 7: ten million numbers each.
const MOBILE_PREFIX: [u8; 5] = [0, 2, 3, 6, 9];

/// Member numbers of seeded contacts start here; those the fake assigns to
/// contacts created over the API start at [`API_MEMBER_NUMBER_START`], so the
/// two never collide.
const SEED_MEMBER_NUMBER_START: u64 = 10_000_000;
pub(crate) const API_MEMBER_NUMBER_START: u64 = 900_000_000;

/// ASCII e-mail spelling of a name (å→a, ö→o, …), lower case.
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'å' | 'ä' | 'Å' | 'Ä' => 'a',
            'ö' | 'ø' | 'Ö' | 'Ø' => 'o',
            'é' | 'ë' => 'e',
            'ü' => 'u',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

fn names(n: u64) -> (&'static str, &'static str) {
    let f = FIRST[(n % FIRST.len() as u64) as usize];
    let l = LAST[((n / FIRST.len() as u64 + n.wrapping_mul(7)) % LAST.len() as u64) as usize];
    (f, l)
}

pub(crate) fn email(n: u64) -> String {
    let (f, l) = names(n);
    let mut s = String::with_capacity(48);
    s.push_str(&fold(f));
    s.push('.');
    s.push_str(&fold(l));
    s.push('.');
    s.push_str(&n.to_string());
    s.push_str("@example.com");
    s
}

pub(crate) fn mobile(n: u64) -> String {
    let p = MOBILE_PREFIX[((n / 10_000_000) % MOBILE_PREFIX.len() as u64) as usize];
    format!("+467{p}{:07}", n % 10_000_000)
}

pub(crate) fn member_number(n: u64) -> String {
    (SEED_MEMBER_NUMBER_START + n).to_string()
}

/// The full flat attribute set of seeded contact number `n`.
pub(crate) fn attrs(n: u64) -> Map<String, Value> {
    let (f, l) = names(n);
    let mut m = Map::new();
    m.insert("contactType".into(), "Member".into());
    m.insert("firstName".into(), f.into());
    m.insert("lastName".into(), l.into());
    m.insert("email".into(), email(n).into());
    m.insert("mobilePhone".into(), mobile(n).into());
    m.insert("memberNumber".into(), member_number(n).into());
    m.insert("countryCode".into(), "SE".into());
    m.insert(
        "city".into(),
        CITIES[(n % CITIES.len() as u64) as usize].into(),
    );
    m.insert("acceptsEmail".into(), (!n.is_multiple_of(3)).into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::{valid_e164, valid_email};

    #[test]
    fn seeded_attributes_are_valid_and_distinct() {
        let a = attrs(12345);
        assert!(valid_email(a["email"].as_str().unwrap()));
        assert!(valid_e164(a["mobilePhone"].as_str().unwrap()));
        assert_ne!(email(1), email(2));
        assert_ne!(mobile(1), mobile(10_000_001));
        assert!(FIRST.iter().any(|f| !f.is_ascii()));
        assert_eq!(attrs(7), attrs(7));
    }
}
