use super::*;

fn country(iso: &str) -> Country {
    Country::from_iso(iso).expect("a country libphonenumber knows")
}

/// `phone_key` without its fast path: libphonenumber's reading only.
fn slow_key(raw: &str, default: Country) -> Result<String, PhoneError> {
    let reading = read(&clean(raw)?, default)?;
    if reading.valid {
        Ok(reading.e164)
    } else if reading.international {
        plausible_length(reading.e164)
    } else {
        Err(PhoneError::Invalid {
            region: reading.region,
        })
    }
}

#[test]
fn regions_are_libphonenumbers() {
    let mut known: Vec<String> = PHONE_NUMBER_UTIL
        .get_supported_regions()
        .map(|r| r.as_region_str().to_string())
        .collect();
    known.sort_unstable();
    assert_eq!(known, REGIONS.map(String::from).to_vec());
}

#[test]
fn calling_codes_are_libphonenumbers() {
    let mut known: Vec<u16> = PHONE_NUMBER_UTIL
        .get_supported_calling_codes()
        .map(|c| u16::try_from(c).expect("calling codes have at most three digits"))
        .collect();
    known.sort_unstable();
    assert_eq!(known, CALLING_CODES.to_vec());
}

/// The fast path must give exactly what the full parse gives, for every country code: random
/// numbers of every length it accepts, for each code (a fixed seed, so a failure repeats).
#[test]
fn fast_path_agrees_with_libphonenumber() {
    let se = country("SE");
    let mut rng = fastrand::Rng::with_seed(0x5eed_0016);
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for code in CALLING_CODES {
        let code = code.to_string();
        for _ in 0..400 {
            let len = rng.usize(7..=15);
            if len <= code.len() {
                continue;
            }
            let national: String = (0..len - code.len())
                .map(|_| char::from(b'0' + rng.u8(0..10)))
                .collect();
            let raw = format!("+{code}{national}");
            if fast_e164(&raw).is_none() {
                continue;
            }
            checked += 1;
            if slow_key(&raw, se).as_deref() != Ok(raw.as_str()) {
                mismatches.push(format!("{raw} -> {:?}", slow_key(&raw, se)));
            }
        }
    }
    assert!(
        checked > 40_000,
        "only {checked} numbers took the fast path"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn fast_path_leaves_trunk_prefixes_and_rewriting_plans_to_libphonenumber() {
    assert_eq!(fast_e164("+46701234567"), Some("+46701234567"));
    assert_eq!(fast_e164("+460701234567"), None);
    assert_eq!(fast_e164("+12025550123"), None);
    assert_eq!(fast_e164("+447400123456"), None);
    assert_eq!(fast_e164("+46 701234567"), None);
    assert_eq!(fast_e164("+4670123"), Some("+4670123"));
    assert_eq!(fast_e164("+467012"), None);
    assert_eq!(fast_e164("+4670123456789012"), None);
    assert_eq!(fast_e164("+2901234"), Some("+2901234"));
    assert_eq!(fast_e164("+2891234567"), None, "289 is no country code");
}

#[test]
fn every_country_of_the_plan_is_a_default_country() {
    for iso in ["SE", "se", " HU ", "CZ", "BR", "JP", "ZA", "NZ", "AE"] {
        assert!(Country::from_iso(iso).is_some(), "{iso}");
    }
    for iso in ["", "S", "SWE", "XX", "ZZ", "00", "U1"] {
        assert!(Country::from_iso(iso).is_none(), "{iso}");
    }
    assert_eq!(country("cz").iso(), "CZ");
}

#[test]
fn existing_numbers_become_one_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("SE", "+46701234567", "+46701234567"),
        ("SE", "46701234567", "+46701234567"),
        ("SE", "0046 70-123 45 67", "+46701234567"),
        ("SE", "+46 070 123 45 67", "+46701234567"),
        ("SE", "+46 (0)70 123 45 67", "+46701234567"),
        ("SE", "+460701234567", "+46701234567"),
        ("SE", "\u{202A}070-123 45 67\u{202C}", "+46701234567"),
        (
            "SE",
            "\u{2067}+46\u{A0}70\u{200B}123 45 67\u{2069}",
            "+46701234567",
        ),
        (
            "SE",
            "\u{FF10}\u{FF17}\u{FF10}\u{FF11}\u{FF12}\u{FF13}\u{FF14}\u{FF15}\u{FF16}\u{FF17}",
            "+46701234567",
        ),
        ("SE", "4741234567", "+4741234567"),
        ("NO", "412 34 567", "+4741234567"),
        ("HU", "06 20 123 4567", "+36201234567"),
        ("CZ", "601 123 456", "+420601123456"),
        ("DE", "0151 12345678", "+4915112345678"),
        ("IT", "+39 06 1234 5678", "+390612345678"),
        ("US", "(202) 555-0123", "+12025550123"),
        // A + number the plan does not know keeps its digits: it is what Engage has.
        ("SE", "+46 1234567", "+461234567"),
    ];
    for (iso, raw, key) in cases {
        assert_eq!(
            phone_key(raw, country(iso)).as_deref(),
            Ok(*key),
            "{iso} {raw:?}"
        );
    }
}

#[test]
fn what_is_not_a_number_is_refused_with_the_reason() {
    let se = country("SE");
    assert_eq!(phone_key("", se), Err(PhoneError::Empty));
    assert_eq!(phone_key(" \u{200B} ", se), Err(PhoneError::Empty));
    assert_eq!(
        phone_key("+46 70 123 45 67 abc", se),
        Err(PhoneError::BadChar('a'))
    );
    assert_eq!(
        phone_key("070 123 45 67 ext 12", se),
        Err(PhoneError::BadChar('e'))
    );
    assert_eq!(phone_key("46+701234567", se), Err(PhoneError::BadChar('+')));
    assert!(matches!(
        phone_key("1234567", se),
        Err(PhoneError::Invalid { region }) if region == "SE"
    ));
    assert!(matches!(
        phone_key("+4612", se),
        Err(PhoneError::Unreadable(_))
    ));
    assert!(matches!(
        phone_key("+4670123456789012345", se),
        Err(PhoneError::Unreadable(_))
    ));
}

#[test]
fn the_till_takes_valid_mobile_numbers_only() {
    let se = country("SE");
    assert_eq!(
        till_mobile("070-123 45 67", se).as_deref(),
        Ok("+46701234567")
    );
    assert_eq!(
        till_mobile("46701234567", se).as_deref(),
        Ok("+46701234567")
    );
    assert!(matches!(
        till_mobile("08 123 456 78", se),
        Err(PhoneError::NotMobile {
            kind: "landline",
            ..
        })
    ));
    assert!(matches!(
        till_mobile("020 123 456", se),
        Err(PhoneError::NotMobile {
            kind: "toll-free",
            ..
        })
    ));
    assert!(matches!(
        till_mobile("1234567", se),
        Err(PhoneError::Invalid { .. })
    ));
    assert!(matches!(
        till_mobile("+46 1234567", se),
        Err(PhoneError::Invalid { .. })
    ));
    assert_eq!(
        till_mobile("(202) 555-0123", country("US")).as_deref(),
        Ok("+12025550123")
    );
}

/// The lookup's national fast path gives exactly the full parse's key for every valid number
/// it takes: the example number of every type of each country, and numbers around them.
#[test]
fn national_fast_path_agrees_with_libphonenumber() {
    use rlibphonenumber::enums::PhoneNumberType as T;
    let mut rng = fastrand::Rng::with_seed(0x5eed_1016);
    let mut checked = 0;
    for (iso, _) in TRUNK_ZERO {
        let c = country(iso);
        for kind in [
            T::Mobile,
            T::FixedLine,
            T::TollFree,
            T::PremiumRate,
            T::SharedCost,
            T::VoIP,
            T::PersonalNumber,
            T::Pager,
            T::UAN,
            T::VoiceMail,
        ] {
            let Ok(example) =
                PHONE_NUMBER_UTIL.get_example_number_for_type_and_region(c.region, kind)
            else {
                continue;
            };
            let national = example.format_as(PhoneNumberFormat::National).into_owned();
            let digits: String = national.chars().filter(char::is_ascii_digit).collect();
            for round in 0..60 {
                let mut candidate = digits.clone().into_bytes();
                if round > 0 {
                    for _ in 0..rng.usize(1..=3) {
                        let at = rng.usize(2..candidate.len());
                        candidate[at] = b'0' + rng.u8(0..10);
                    }
                }
                let candidate = String::from_utf8(candidate).expect("ascii");
                let Some(fast) = national_with_trunk_zero(&candidate, c) else {
                    continue;
                };
                let full = read(&candidate, c).expect("reads");
                if full.valid {
                    checked += 1;
                    assert_eq!(fast, full.e164, "{iso} {candidate} ({kind:?})");
                    assert_eq!(
                        lookup_phone_key(&candidate, c).as_deref(),
                        Ok(full.e164.as_str())
                    );
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} valid numbers checked");
}

#[test]
fn a_doubled_country_code_is_undone_only_when_the_evidence_is_clear() {
    let se = country("SE");
    assert_eq!(
        undo_doubled_country_code("+4646701234567", se).as_deref(),
        Some("+46701234567")
    );
    assert_eq!(
        undo_doubled_country_code("+464741234567", se).as_deref(),
        Some("+4741234567")
    );
    // Valid as stored, another country's code, or no valid number inside: left alone.
    assert_eq!(undo_doubled_country_code("+46701234567", se), None);
    // Valid as stored although +490711975 is valid in Germany: left alone.
    assert_eq!(undo_doubled_country_code("+46490711975", se), None);
    assert_eq!(undo_doubled_country_code("+4746701234567", se), None);
    assert_eq!(undo_doubled_country_code("+461234567", se), None);
    assert_eq!(undo_doubled_country_code("call me", se), None);
}

/// Digits valid both as a national number and as an international one (see `both_valid`).
#[test]
fn digits_valid_two_ways_are_read_as_a_till_or_engage_writes_them() {
    // A Norwegian till types eight digits; +40 235956 (Romania) is valid too.
    assert_eq!(
        phone_key("40235956", country("NO")).as_deref(),
        Ok("+4740235956")
    );
    assert_eq!(
        till_mobile("402 35 956", country("NO")).as_deref(),
        Ok("+4740235956")
    );
    // Germany's own code first, as Engage writes match keys; +49 4915112345678 is valid too.
    assert_eq!(
        phone_key("4915112345678", country("DE")).as_deref(),
        Ok("+4915112345678")
    );
    // Sweden: not Sweden's code first, so national (+49 0711975 is valid in Germany too).
    assert_eq!(
        phone_key("490711975", country("SE")).as_deref(),
        Ok("+46490711975")
    );
    // Only international is valid: read so, in a country without a trunk prefix too.
    assert_eq!(
        phone_key("4741234567", country("NO")).as_deref(),
        Ok("+4741234567")
    );
    // Italy's code first, and Italian numbers have no trunk prefix: refused.
    assert!(matches!(
        phone_key("390935896", country("IT")),
        Err(PhoneError::Ambiguous { .. })
    ));
}

#[test]
fn national_fast_path_takes_only_plain_trunk_zero_numbers() {
    let se = country("SE");
    assert_eq!(
        national_with_trunk_zero("0701234567", se).as_deref(),
        Some("+46701234567")
    );
    assert_eq!(
        national_with_trunk_zero("00701234567", se),
        None,
        "a second 0"
    );
    assert_eq!(national_with_trunk_zero("07012", se), None, "too short");
    assert_eq!(
        national_with_trunk_zero("0701234567890123", se),
        None,
        "too long"
    );
    assert_eq!(
        national_with_trunk_zero("+46701234567", se),
        None,
        "international"
    );
    assert_eq!(
        national_with_trunk_zero("701234567", se),
        None,
        "no trunk 0"
    );
    assert_eq!(
        national_with_trunk_zero("041234567", country("NO")),
        None,
        "no trunk 0 in NO"
    );
    assert_eq!(format!("{se:?}"), "SE");
}

#[test]
fn unknown_international_numbers_need_the_length_of_one() {
    let se = country("SE");
    assert_eq!(phone_key("+", se), Err(PhoneError::Unreadable("no digits")));
    assert_eq!(
        phone_key("+46 1234", se),
        Err(PhoneError::Unreadable("too few digits"))
    );
    assert_eq!(phone_key("+46 12345", se).as_deref(), Ok("+4612345"));
    assert_eq!(
        phone_key("+46 1234 5678 9012 34", se),
        Err(PhoneError::Unreadable("more than 15 digits"))
    );
}
