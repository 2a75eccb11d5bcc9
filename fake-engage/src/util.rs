//! Small helpers: GUIDs, a deterministic PRNG, query decoding, date parsing and
//! the format checks Engage applies to keys. Kept dependency-free so the fake
//! builds quickly next to the main crate.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use std::hash::Hasher;

/// SplitMix64: tiny, fast and deterministic, which is all the fake needs for
/// ids and fault storms (reproducible from a seed, no `rand` dependency).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random version-4 GUID as a u128 (stored as a number: 16 bytes instead
    /// of a 36-byte string per contact, which matters at a million contacts).
    pub(crate) fn next_guid(&mut self) -> u128 {
        let hi = self.next_u64() as u128;
        let lo = self.next_u64() as u128;
        let mut g = (hi << 64) | lo;
        // version 4 in the 13th hex digit, variant 10xx in the 17th.
        g &= !(0xF_u128 << 76);
        g |= 0x4_u128 << 76;
        g &= !(0xC_u128 << 60);
        g |= 0x8_u128 << 60;
        g
    }
}

/// Formats a GUID the way Engage prints contact ids: 8-4-4-4-12 hex digits.
pub(crate) fn format_guid(g: u128, upper: bool) -> String {
    let s = format!("{g:032x}");
    let s = format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    );
    if upper {
        s.to_ascii_uppercase()
    } else {
        s
    }
}

/// Parses a GUID in any case, hyphenated ("D" format), bare ("N") or braced
/// ("B"), as .NET's Guid binder does. Engage compares ids case-insensitively.
pub(crate) fn parse_guid(s: &str) -> Option<u128> {
    let s = s.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(s);
    let hex: String = if s.len() == 36 {
        let b = s.as_bytes();
        if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        s.chars().filter(|c| *c != '-').collect()
    } else if s.len() == 32 {
        s.to_string()
    } else {
        return None;
    };
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

/// Decodes one `application/x-www-form-urlencoded` component the way ASP.NET
/// does: `%XX` escapes and `+` as a space. That is why Engage's docs insist on
/// `%2B` for the `+` of a phone number; the fake reproduces the trap.
pub(crate) fn url_decode(s: &str) -> String {
    percent_decode(s, true)
}

/// Percent-decoding; `+` means a space only in a query, not in a path.
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let h = (b[i + 1] as char).to_digit(16);
                let l = (b[i + 2] as char).to_digit(16);
                match (h, l) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits and decodes a query string into ordered pairs.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (url_decode(k), url_decode(v)),
            None => (url_decode(p), String::new()),
        })
        .collect()
}

/// Looks a query parameter up case-insensitively, as ASP.NET model binding does.
pub(crate) fn query_get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses the date-times the changes feed accepts. Engage's own example is
/// `2023-05-04 11:05:00.000` with no offset; the fake reads a missing offset
/// as UTC (the real zone is unconfirmed, see README).
pub(crate) fn parse_feed_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let t = if s.len() > 10 && s.as_bytes()[10] == b' ' {
        format!("{}T{}", &s[..10], &s[11..])
    } else {
        s.to_string()
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(&t) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&t, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    // An offset without a colon, e.g. +0200.
    if let Ok(dt) = DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(&t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
    }
    None
}

/// Receipts need `createdDate` as ISO 8601 local time *with* an offset.
pub(crate) fn parse_offset_datetime(s: &str) -> bool {
    DateTime::parse_from_rfc3339(s.trim()).is_ok()
}

pub(crate) fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn millis_to_dt(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// RFC 7231 IMF-fixdate, for `Date` and `Retry-After`.
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// A loose but useful e-mail check: one `@`, something before it, a dot in the
/// domain, no whitespace. Enough to give `InvalidEmailAddress` for garbage.
pub(crate) fn valid_email(s: &str) -> bool {
    let s = s.trim();
    if s.chars().any(char::is_whitespace) {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

/// E.164 only (`+` then 7–15 digits, no leading zero). The fake is strict on
/// purpose: engage-sync normalises phone numbers before sending them.
pub(crate) fn valid_e164(s: &str) -> bool {
    match s.strip_prefix('+') {
        Some(d) => {
            (7..=15).contains(&d.len())
                && d.bytes().all(|c| c.is_ascii_digit())
                && !d.starts_with('0')
        }
        None => false,
    }
}

/// Swedish personnummer/samordningsnummer shape (10 or 12 digits, optional
/// `-`/`+` separator) or a Finnish identity code (DDMMYY, century sign, 3
/// digits, check char). No checksum: the fake only rejects obvious garbage.
pub(crate) fn valid_ssn(s: &str) -> bool {
    let s = s.trim();
    let digits: String = s.chars().filter(|c| *c != '-' && *c != '+').collect();
    if (digits.len() == 10 || digits.len() == 12) && digits.bytes().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let b = s.as_bytes();
    b.len() == 11
        && b[..6].iter().all(u8::is_ascii_digit)
        && matches!(
            b[6],
            b'-' | b'+'
                | b'A'
                | b'B'
                | b'C'
                | b'D'
                | b'E'
                | b'F'
                | b'U'
                | b'V'
                | b'W'
                | b'X'
                | b'Y'
        )
        && b[7..10].iter().all(u8::is_ascii_digit)
        && b[10].is_ascii_alphanumeric()
}

/// The normalised form a key is indexed and compared under.
pub(crate) fn normalize_key(attr: KeyAttr, v: &str) -> String {
    match attr {
        KeyAttr::Email => v.trim().to_lowercase(),
        KeyAttr::SocialSecurityNumber => v
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '+' && !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase(),
        _ => v.trim().to_string(),
    }
}

/// The attributes the fake indexes for look-ups, uniqueness and receipt
/// matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum KeyAttr {
    Email,
    MobilePhone,
    ExternalId,
    SocialSecurityNumber,
    MemberNumber,
}

impl KeyAttr {
    pub(crate) const ALL: [KeyAttr; 5] = [
        KeyAttr::Email,
        KeyAttr::MobilePhone,
        KeyAttr::ExternalId,
        KeyAttr::SocialSecurityNumber,
        KeyAttr::MemberNumber,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyAttr::Email => "email",
            KeyAttr::MobilePhone => "mobilePhone",
            KeyAttr::ExternalId => "externalId",
            KeyAttr::SocialSecurityNumber => "socialSecurityNumber",
            KeyAttr::MemberNumber => "memberNumber",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<KeyAttr> {
        KeyAttr::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }
}

/// Hash of (attribute, normalised value). The key index stores only these
/// 8-byte hashes, not the strings, to stay small at a million contacts;
/// candidates are verified against the real value on look-up, so collisions
/// cost a comparison, never a wrong answer. FxHash-style rather than SipHash
/// because seeding hashes millions of keys and nothing here is adversarial.
pub(crate) fn key_hash(attr: KeyAttr, normalized: &str) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h = (attr as u64 + 1).wrapping_mul(K);
    let b = normalized.as_bytes();
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    for &c in chunks.remainder() {
        h = (h.rotate_left(5) ^ c as u64).wrapping_mul(K);
    }
    h = (h.rotate_left(5) ^ b.len() as u64).wrapping_mul(K);
    // Final avalanche (splitmix64's), so the low bits hashbrown uses are mixed.
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// A `Hasher` that passes through keys that are already uniformly random:
/// key hashes and random v4 GUIDs. Saves re-hashing them with SipHash.
#[derive(Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }

    fn write_u128(&mut self, v: u128) {
        self.0 ^= (v as u64) ^ ((v >> 64) as u64);
    }
}

/// A HashMap keyed by random-looking integers.
pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<PassThrough>>;

/// A JSON value as a key string: strings as-is, numbers printed (member
/// numbers sometimes arrive as numbers), anything else is no key.
pub(crate) fn value_as_key(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_roundtrip_and_case() {
        let mut r = SplitMix64::new(7);
        let g = r.next_guid();
        let s = format_guid(g, false);
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert_eq!(parse_guid(&s), Some(g));
        assert_eq!(parse_guid(&s.to_uppercase()), Some(g));
        assert_eq!(parse_guid(&format!("{{{s}}}")), Some(g));
        assert_eq!(parse_guid(&s.replace('-', "")), Some(g));
        assert_eq!(parse_guid("count"), None);
        assert_eq!(parse_guid("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"), None);
    }

    #[test]
    fn url_decoding_follows_forms() {
        assert_eq!(url_decode("%2B4670"), "+4670");
        assert_eq!(url_decode("+4670"), " 4670");
        assert_eq!(url_decode("a%20b%"), "a b%");
        assert_eq!(url_decode("%zz"), "%zz");
        assert_eq!(url_decode("%C3%A5"), "å");
    }

    #[test]
    fn feed_dates() {
        let want = Utc.with_ymd_and_hms(2023, 5, 4, 11, 5, 0).unwrap();
        for s in [
            "2023-05-04 11:05:00.000",
            "2023-05-04T11:05:00",
            "2023-05-04T11:05:00Z",
            "2023-05-04T13:05:00+02:00",
            "2023-05-04T13:05:00.000+0200",
            "2023-05-04 11:05",
        ] {
            assert_eq!(parse_feed_datetime(s), Some(want), "{s}");
        }
        assert!(parse_feed_datetime("2023-05-04").is_some());
        assert_eq!(parse_feed_datetime("yesterday"), None);
        assert!(parse_offset_datetime("2018-09-06T15:55:54+01:00"));
        assert!(!parse_offset_datetime("2018-09-06T15:55:54"));
    }

    #[test]
    fn key_checks() {
        assert!(valid_email("Anna@Example.com"));
        assert!(!valid_email("anna@example"));
        assert!(!valid_email("an na@example.com"));
        assert!(valid_e164("+46701234567"));
        assert!(!valid_e164("0701234567"));
        assert!(!valid_e164(" 46701234567"));
        assert!(valid_ssn("19121212-1212"));
        assert!(valid_ssn("121212-1212"));
        assert!(valid_ssn("131052-308T"));
        assert!(!valid_ssn("12-12"));
        assert_eq!(
            normalize_key(KeyAttr::SocialSecurityNumber, "19121212-1212"),
            "191212121212"
        );
    }
}
