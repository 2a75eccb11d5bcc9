//! Mobile numbers to E.164 (`+46701234567`), read with libphonenumber's numbering plans for
//! every region (the `rlibphonenumber` crate, a port of Google's library that tracks its
//! metadata releases).
//!
//! Two entry points share one reading of a number, so the same person always gets the same key:
//! - [`phone_key`] for data that already exists: export files and API pulls (Engage accepted
//!   them), lookups and receipts' match keys. A valid number becomes E.164; a number written
//!   with `+` or an international prefix that the plan does not know keeps its digits; anything
//!   else is an error, and the importer then keeps the value as Engage sent it.
//! - [`till_mobile`] for numbers typed at the till: only a valid mobile number is accepted.
//!
//! Reading rules, in order: format characters (bidi marks, zero-width spaces) are dropped and
//! digits of other scripts read as ASCII; only digits, spaces, `- . / ( )` and one leading `+`
//! may remain (letters are refused, never read as a keypad word); a `+` or the default
//! country's international prefix (`00`) makes the number international, and a trunk prefix
//! after the country code (`+46 (0)70…`, `+46 070…`) is dropped where the plan says it is not
//! dialled; digits without either are read as a national number of the default country *and*
//! as digits that start with a country code (`46701234567`, as Engage's integration guide
//! writes match keys): the valid reading wins. If both are valid and differ, digits that do
//! not start with the default country's own code are national; digits that do are
//! international where national numbers start with a trunk prefix (they were not written
//! nationally), and ambiguous, so refused, elsewhere (see [`both_valid`]).

use std::str::FromStr;

use rlibphonenumber::enums::{PhoneNumberType, Region};
use rlibphonenumber::{PhoneNumber, PhoneNumberFormat, PHONE_NUMBER_UTIL};

use super::text::{ascii_digit, is_format_char};
use crate::mask;

/// The default country for national-format numbers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Country {
    region: Region,
}

impl Country {
    /// The country of an ISO 3166-1 alpha-2 code (any case) that libphonenumber has a
    /// numbering plan for.
    pub fn from_iso(iso: &str) -> Option<Country> {
        let code = iso.trim().to_ascii_uppercase();
        if !REGIONS.contains(&code.as_str()) {
            return None;
        }
        let region = Region::from_str(&code).ok()?;
        Some(Country { region })
    }

    /// The ISO code, upper case.
    pub fn iso(&self) -> String {
        self.region.as_region_str().to_string()
    }
}

impl std::fmt::Debug for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.iso())
    }
}

/// Why a value is not a phone number engage-sync can use. The messages never contain the
/// number itself: callers show it masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but spaces or format characters.
    #[error("is empty")]
    Empty,
    /// A character that is not part of a phone number.
    #[error(
        "contains {0:?}, which is not part of a phone number (only digits, spaces, - . / ( ) \
         and one leading + are)"
    )]
    BadChar(char),
    /// Not a number libphonenumber can read at all (too short, too long, unknown country code).
    #[error("cannot be read as a phone number ({0})")]
    Unreadable(&'static str),
    /// Read, but not a valid number in its country's numbering plan.
    #[error(
        "is not a valid phone number in {region} (wrong length or range): check the digits, or \
         write it with + and the country code"
    )]
    Invalid {
        /// The country it was read as (ISO code or `+CC`).
        region: String,
    },
    /// Valid, but not a mobile number (a landline, toll-free or premium-rate number, say).
    #[error("is a {kind} number in {region}, not a mobile number")]
    NotMobile {
        /// The kind libphonenumber gives it.
        kind: &'static str,
        /// The country.
        region: String,
    },
    /// Valid both as a national number of the default country and as an international number.
    #[error(
        "can be read two ways, as {national} (a national number of {iso}) or as \
         {international}: write it with + and the country code"
    )]
    Ambiguous {
        /// The national reading, masked.
        national: String,
        /// The international reading, masked.
        international: String,
        /// The default country.
        iso: String,
    },
}

/// The key of a phone number that already exists (export files, API pulls, lookups, match
/// keys): E.164 for a valid number, the digits of an international number the plan does not
/// know, or an error. The same input always gives the same key.
pub fn phone_key(raw: &str, default: Country) -> Result<String, PhoneError> {
    if let Some(e164) = fast_e164(raw) {
        return Ok(e164.to_string());
    }
    let cleaned = clean(raw)?;
    if let Some(e164) = fast_e164(&cleaned) {
        return Ok(e164.to_string());
    }
    let reading = read(&cleaned, default)?;
    if reading.valid {
        return Ok(reading.e164);
    }
    if reading.international {
        return plausible_length(reading.e164);
    }
    Err(PhoneError::Invalid {
        region: reading.region,
    })
}

/// The key `lookup --mobile` searches: [`phone_key`], except that a national number with the
/// trunk prefix 0 of a country in `TRUNK_ZERO` (`070-123 45 67` in Sweden, as a till types
/// it) becomes `+46` and the rest without loading the numbering plans, which would cost a POS
/// lookup several milliseconds. For a valid number that is exactly [`phone_key`]'s answer (a
/// test checks every type of number of each of those countries); an invalid one is then not
/// found instead of refused. Nothing is stored under such a key: it is only searched for.
pub fn lookup_phone_key(raw: &str, default: Country) -> Result<String, PhoneError> {
    let cleaned = clean(raw)?;
    match national_with_trunk_zero(&cleaned, default) {
        Some(key) => Ok(key),
        None => phone_key(raw, default),
    }
}

/// Countries whose national numbers start with the trunk prefix 0, which their plans drop and
/// nothing else, and their calling codes.
const TRUNK_ZERO: [(&str, &str); 9] = [
    ("SE", "46"),
    ("FI", "358"),
    ("DE", "49"),
    ("AT", "43"),
    ("CH", "41"),
    ("NL", "31"),
    ("BE", "32"),
    ("FR", "33"),
    ("IE", "353"),
];

/// `+CC` and the digits after the trunk 0, for ASCII digits `0[1-9]…` (6 to 13 of them) in a
/// `TRUNK_ZERO` country; `None` for anything else.
fn national_with_trunk_zero(cleaned: &str, default: Country) -> Option<String> {
    let code = TRUNK_ZERO
        .iter()
        .find(|(iso, _)| *iso == default.region.as_region_str().as_ref())?
        .1;
    let rest = cleaned.strip_prefix('0')?;
    let plain = (5..=12).contains(&rest.len())
        && !rest.starts_with('0')
        && rest.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| format!("+{code}{rest}"))
}

/// Undoes what the normaliser before libphonenumber (engage-sync before replica schema 6) did to
/// digits that began with a country code but had no `+`: it put the default country's code in
/// front (`46701234567` became `+4646701234567`). `stored` is such a key when it starts with
/// the default country's code, is not a valid number, and its digits after that code are a
/// valid international number; then that number is returned. Only the re-keying of a keys-only
/// replica, which did not keep the number as Engage sent it, needs this.
pub fn undo_doubled_country_code(stored: &str, default: Country) -> Option<String> {
    let code = PHONE_NUMBER_UTIL.get_country_code_for_region(default.region)?;
    let rest = stored.strip_prefix(&format!("+{code}"))?;
    if !rest.bytes().all(|b| b.is_ascii_digit()) || read(stored, default).ok()?.valid {
        return None;
    }
    let candidate = format!("+{rest}");
    let reading = read(&candidate, default).ok()?;
    reading.valid.then_some(reading.e164)
}

/// A mobile number typed at the till: E.164 of a valid mobile number (or a number of a country
/// whose plan cannot tell mobile from fixed line, as in North America), else what is wrong.
pub fn till_mobile(raw: &str, default: Country) -> Result<String, PhoneError> {
    let reading = read(&clean(raw)?, default)?;
    if !reading.valid {
        return Err(PhoneError::Invalid {
            region: reading.region,
        });
    }
    match reading.kind {
        PhoneNumberType::Mobile | PhoneNumberType::FixedLineOrMobile => Ok(reading.e164),
        kind => Err(PhoneError::NotMobile {
            kind: kind_name(kind),
            region: reading.region,
        }),
    }
}

/// One reading of a number.
struct Reading {
    e164: String,
    valid: bool,
    kind: PhoneNumberType,
    /// Written with `+` or an international prefix (or read as starting with a country code).
    international: bool,
    /// The ISO code of the number's country, or `+CC` when the plan names none.
    region: String,
}

impl Reading {
    fn of(number: &PhoneNumber, international: bool) -> Reading {
        let region = match number.get_region_code() {
            Some(r) => r.as_region_str().to_string(),
            None => format!("+{}", number.country_code),
        };
        let valid = number.is_valid();
        Reading {
            e164: number.format_as(PhoneNumberFormat::E164).into_owned(),
            valid,
            kind: if valid {
                number.get_type()
            } else {
                PhoneNumberType::Unknown
            },
            international,
            region,
        }
    }
}

/// Reads a cleaned number (see [`clean`]) as the module documentation says.
fn read(cleaned: &str, default: Country) -> Result<Reading, PhoneError> {
    let national = PHONE_NUMBER_UTIL
        .parse(cleaned, Some(default.region))
        .map_err(unreadable);
    if cleaned.starts_with('+') {
        return national.map(|n| Reading::of(&n, true));
    }
    let default_code = PHONE_NUMBER_UTIL.get_country_code_for_region(default.region);
    let national = national.map(|n| {
        // A different country code means the digits began with an international prefix.
        let international = Some(n.country_code) != default_code;
        Reading::of(&n, international)
    });
    if matches!(&national, Ok(r) if r.international) {
        return national;
    }
    let international = PHONE_NUMBER_UTIL
        .parse(format!("+{cleaned}"), None)
        .ok()
        .map(|n| Reading::of(&n, true))
        .filter(|r| r.valid);
    match (national, international) {
        (Ok(n), Some(i)) if n.valid && n.e164 != i.e164 => match both_valid(cleaned, default) {
            Prefer::National => Ok(n),
            Prefer::International => Ok(i),
            Prefer::Neither => Err(PhoneError::Ambiguous {
                national: mask::phone(&n.e164),
                international: mask::phone(&i.e164),
                iso: default.iso(),
            }),
        },
        (Ok(n), _) if n.valid => Ok(n),
        (_, Some(i)) => Ok(i),
        (national, None) => national,
    }
}

/// Which reading of digits without `+` wins when both are valid numbers.
enum Prefer {
    National,
    International,
    Neither,
}

/// Digits that do not start with the default country's calling code are what a till in that
/// country types: `402 35 956` in Norway is +47 40235956, though +40 235956 is valid in
/// Romania, and `2025550123` in North America is not a number in Egypt (+20). Digits that do
/// start with it are the country code without `+`, as Engage's integration guide writes match
/// keys, where national numbers are written with a trunk prefix (`0151…` in Germany), so
/// `4915112345678` is +49 151… though `+49 4915112345678` is valid too. Where national numbers
/// have no trunk prefix (Italy: `390935896`), both readings are as likely: refuse.
fn both_valid(digits: &str, default: Country) -> Prefer {
    let code = PHONE_NUMBER_UTIL
        .get_country_code_for_region(default.region)
        .map(|c| c.to_string())
        .unwrap_or_default();
    if code.is_empty() || !digits.starts_with(&code) {
        Prefer::National
    } else if writes_trunk_prefix(default.region) {
        Prefer::International
    } else {
        Prefer::Neither
    }
}

/// Whether the region's national format puts a trunk prefix before the number (read off its
/// example number: the national format has more digits than the national number).
fn writes_trunk_prefix(region: Region) -> bool {
    PHONE_NUMBER_UTIL
        .get_example_number(region)
        .ok()
        .is_some_and(|n| {
            let national = n.format_as(PhoneNumberFormat::National);
            let written = national.chars().filter(char::is_ascii_digit).count();
            written > n.get_national_significant_number().len()
        })
}

/// The number's digits as ASCII, with a leading `+` if it had one; separators and format
/// characters dropped. Refuses anything else, so that letters are never read as a keypad word
/// (`+46 70 123 45 67 abc` is not `+46701234567222`) and an extension never slips in.
fn clean(raw: &str) -> Result<String, PhoneError> {
    let mut out = String::with_capacity(raw.len() + 1);
    let mut plus = false;
    for c in raw.chars() {
        if let Some(d) = ascii_digit(c) {
            out.push(d);
            continue;
        }
        match c {
            '+' | '\u{FF0B}' if out.is_empty() && !plus => {
                plus = true;
                out.push('+');
            }
            '-' | '.' | '/' | '(' | ')' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' => {}
            c if c.is_whitespace() || is_format_char(c) => {}
            c => return Err(PhoneError::BadChar(c)),
        }
    }
    match out.trim_start_matches('+') {
        "" if plus => Err(PhoneError::Unreadable("no digits")),
        "" => Err(PhoneError::Empty),
        _ => Ok(out),
    }
}

/// An international number the plan does not know is kept only when it has the length of one
/// (E.164: 7 to 15 digits with the country code).
fn plausible_length(e164: String) -> Result<String, PhoneError> {
    match e164.len() - 1 {
        0..=6 => Err(PhoneError::Unreadable("too few digits")),
        7..=15 => Ok(e164),
        _ => Err(PhoneError::Unreadable("more than 15 digits")),
    }
}

fn unreadable(e: rlibphonenumber::ParseError) -> PhoneError {
    use rlibphonenumber::ParseError as P;
    PhoneError::Unreadable(match e {
        P::InvalidCountryCode => "unknown country code",
        P::NotANumber(_) => "not a number",
        P::TooShortAfterIdd | P::TooShortNsn => "too few digits",
        P::TooLongNsn => "too many digits",
    })
}

fn kind_name(kind: PhoneNumberType) -> &'static str {
    match kind {
        PhoneNumberType::FixedLine => "landline",
        PhoneNumberType::Mobile => "mobile",
        PhoneNumberType::FixedLineOrMobile => "landline or mobile",
        PhoneNumberType::TollFree => "toll-free",
        PhoneNumberType::PremiumRate => "premium-rate",
        PhoneNumberType::SharedCost => "shared-cost",
        PhoneNumberType::VoIP => "VoIP",
        PhoneNumberType::PersonalNumber => "personal",
        PhoneNumberType::Pager => "pager",
        PhoneNumberType::UAN => "company (UAN)",
        PhoneNumberType::VoiceMail => "voicemail",
        PhoneNumberType::Unknown => "unknown",
    }
}

/// The regions libphonenumber has a numbering plan for (a test checks this list against it).
/// Checking a default country against it, not against the plans themselves, keeps their
/// loading (several milliseconds) off every command that never reads a national number.
const REGIONS: [&str; 245] = [
    "AC", "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO",
    "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG",
    "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG",
    "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GT", "GU", "GW", "GY", "HK", "HN", "HR", "HT",
    "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE",
    "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR",
    "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN",
    "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF",
    "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL",
    "PM", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD",
    "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY",
    "SZ", "TA", "TC", "TD", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "XK",
    "YE", "YT", "ZA", "ZM", "ZW",
];

/// The country calling codes libphonenumber knows (a test checks this list against it). They
/// are prefix-free, so the first 1, 2 or 3 digits of an E.164 number name exactly one.
const CALLING_CODES: [u16; 215] = [
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54,
    55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211,
    212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234,
    235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253,
    254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298,
    299, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377,
    378, 380, 381, 382, 383, 385, 386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505, 506,
    507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599, 670, 672, 673, 674, 675, 676,
    677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692, 800, 808, 850, 852,
    853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888, 960, 961, 962, 963, 964, 965, 966, 967,
    968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 992, 993, 994, 995, 996, 998,
];

/// Calling codes whose plans rewrite the digits after the country code in ways a byte check
/// cannot see (a national prefix other than 0, or carrier and mobile tokens, as in North
/// America, Argentina, Brazil, Colombia, the Marshall Islands, the United Kingdom): numbers of these always
/// take libphonenumber's full parse. The test `fast_path_agrees_with_libphonenumber` finds any
/// code missing here.
const REWRITING_CODES: [u16; 22] = [
    1, 7, 44, 54, 55, 57, 61, 81, 82, 86, 241, 261, 298, 352, 370, 375, 378, 423, 506, 591, 672,
    692,
];

/// The fast path for what export files hold: `+` and 7 to 15 ASCII digits of a known country
/// code, whose next digit is not 0 or 8 (a trunk prefix some plans drop). libphonenumber would
/// return such a number unchanged; skipping it keeps its metadata (about 8 ms to load) off
/// imports and lookups, and a parse off every contact.
fn fast_e164(raw: &str) -> Option<&str> {
    let digits = raw.strip_prefix('+')?.as_bytes();
    if !(7..=15).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (code_len, code) = (1..=3).find_map(|len| {
        let code = digits[..len]
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        CALLING_CODES.contains(&code).then_some((len, code))
    })?;
    let next = digits[code_len];
    let plain = !REWRITING_CODES.contains(&code) && next != b'0' && next != b'8';
    plain.then_some(raw)
}

#[cfg(test)]
mod tests;
