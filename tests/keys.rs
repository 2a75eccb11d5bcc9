//! The same person is always the same key: phone numbers and e-mail addresses as Engage and
//! people write them, through the real binary — `lookup` finds the contact Engage exported,
//! `contact add` stores the same key or refuses with the reason (exit 65), an export keeps what
//! it cannot read and counts it, and an upgraded replica's stored keys are re-normalised once.

use crate::common;

use common::*;
use serde_json::Value;

/// What the till does with a number.
enum Till {
    /// Registers it under this key.
    Stores(&'static str),
    /// Refuses it (exit 65); the message says this.
    Refuses(&'static str),
}
use Till::{Refuses, Stores};

/// What `lookup --mobile` does with a number.
enum Lookup {
    /// Finds Engage's contact with this key.
    Finds(&'static str),
    /// Searches a key no contact has (exit 1): a national number with a trunk 0 is turned
    /// into a key without loading the numbering plans, so an invalid one is not refused.
    Misses,
    /// Refuses it (exit 64).
    Refused,
}
use Lookup::{Finds, Misses, Refused};

/// Default country, input, what `lookup` does, and what the till does.
/// The expected keys are written out by hand from the numbering plans, not computed by the
/// product.
#[rustfmt::skip]
const CASES: &[(&str, &str, Lookup, Till)] = &[
    // Sweden: every way a till or a system writes one mobile number.
    ("SE", "+46701234567", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "46701234567", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "0046 70-123 45 67", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "+46 (0)70 123 45 67", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "+46 070 123 45 67", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "070.123.45.67", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "(070) 123 45 67", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "070/123 45 67", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "\u{202A}070-123 45 67\u{202C}", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "\u{2067}+46\u{A0}70\u{200B}123 45 67\u{2069}", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "\u{FF10}\u{FF17}\u{FF10}\u{FF11}\u{FF12}\u{FF13}\u{FF14}\u{FF15}\u{FF16}\u{FF17}", Finds("+46701234567"), Stores("+46701234567")),
    ("SE", "4741234567", Finds("+4741234567"), Stores("+4741234567")),
    ("SE", "+47 412 34 567", Finds("+4741234567"), Stores("+4741234567")),
    ("SE", "1234567", Refused, Refuses("not a valid phone number in SE")),
    ("SE", "070 123", Misses, Refuses("not a valid phone number in SE")),
    ("SE", "+46 70 123 45 67 89 01 23", Refused, Refuses("not a valid phone number in SE")),
    ("SE", "08 123 456 78", Finds("+46812345678"), Refuses("landline")),
    ("SE", "020 123 456", Finds("+4620123456"), Refuses("toll-free")),
    ("SE", "+46 70 123 45 67 abc", Refused, Refuses("not part of a phone number")),
    // Norway and Denmark: no trunk prefix.
    ("NO", "412 34 567", Finds("+4741234567"), Stores("+4741234567")),
    ("NO", "0047 41234567", Finds("+4741234567"), Stores("+4741234567")),
    ("NO", "4741234567", Finds("+4741234567"), Stores("+4741234567")),
    // Valid in Romania too (+40 235956), but a Norwegian till types eight digits.
    ("NO", "402 35 956", Finds("+4740235956"), Stores("+4740235956")),
    ("DK", "20 12 34 56", Finds("+4520123456"), Stores("+4520123456")),
    ("DK", "+45 20-12-34-56", Finds("+4520123456"), Stores("+4520123456")),
    // Finland.
    ("FI", "040 123 4567", Finds("+358401234567"), Stores("+358401234567")),
    ("FI", "+358 (0)40 123 4567", Finds("+358401234567"), Stores("+358401234567")),
    ("FI", "00358401234567", Finds("+358401234567"), Stores("+358401234567")),
    // Germany.
    ("DE", "0151 12345678", Finds("+4915112345678"), Stores("+4915112345678")),
    ("DE", "+49 (0)151 1234 5678", Finds("+4915112345678"), Stores("+4915112345678")),
    ("DE", "4915112345678", Finds("+4915112345678"), Stores("+4915112345678")),
    ("DE", "030 1234567", Finds("+49301234567"), Refuses("landline")),
    // United Kingdom.
    ("GB", "07400 123456", Finds("+447400123456"), Stores("+447400123456")),
    ("GB", "+44 (0)7400 123456", Finds("+447400123456"), Stores("+447400123456")),
    ("GB", "0800 123 4567", Finds("+448001234567"), Refuses("toll-free")),
    // United States: the plan cannot tell mobile from fixed line, so both are accepted.
    ("US", "(202) 555-0123", Finds("+12025550123"), Stores("+12025550123")),
    ("US", "1-202-555-0123", Finds("+12025550123"), Stores("+12025550123")),
    ("US", "+1 202 555 0123", Finds("+12025550123"), Stores("+12025550123")),
    // Hungary (trunk prefix 06) and the Czech Republic (none): not in the old 23-country table.
    ("HU", "06 20 123 4567", Finds("+36201234567"), Stores("+36201234567")),
    ("HU", "+36 20 123 4567", Finds("+36201234567"), Stores("+36201234567")),
    ("CZ", "601 123 456", Finds("+420601123456"), Stores("+420601123456")),
    ("CZ", "00420 601 123 456", Finds("+420601123456"), Stores("+420601123456")),
    // Italy: the leading 0 of a landline is dialled after the country code.
    ("IT", "312 345 6789", Finds("+393123456789"), Stores("+393123456789")),
    ("IT", "+39 06 1234 5678", Finds("+390612345678"), Refuses("landline")),
    // Italy's code first and valid both ways, in a country without a trunk prefix.
    ("IT", "390935896", Refused, Refuses("can be read two ways")),
    // France, the Netherlands, Poland.
    ("FR", "06 12 34 56 78", Finds("+33612345678"), Stores("+33612345678")),
    ("FR", "+33 (0)6 12 34 56 78", Finds("+33612345678"), Stores("+33612345678")),
    ("NL", "06 12345678", Finds("+31612345678"), Stores("+31612345678")),
    ("PL", "512 345 678", Finds("+48512345678"), Stores("+48512345678")),
];

/// Engage's contacts: one per distinct key of the table, with the key as Engage exports it.
fn engage_replica() -> (Workspace, Vec<&'static str>) {
    let mut keys: Vec<&str> = CASES
        .iter()
        .filter_map(|c| match c.2 {
            Finds(key) => Some(key),
            Misses | Refused => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let ws = Workspace::new();
    let members: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            format!(
                "<member><contactId>{}</contactId><mobilePhone>{key}</mobilePhone></member>",
                guid(i as u32)
            )
        })
        .collect();
    ws.write_export("20260101000000_1_keys.xml", &export(&members, &[], &[]));
    let out = ws.cmd().args(["-q", "delta"]).output().expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    (ws, keys)
}

/// The digits of `raw` in ASCII, for checking that a message does not show the number.
fn digits(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

#[test]
fn the_table_covers_forty_inputs_in_ten_countries() {
    let mut countries: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    countries.sort_unstable();
    countries.dedup();
    assert!(CASES.len() >= 40 && countries.len() >= 10, "{countries:?}");
}

#[test]
fn lookup_finds_the_contact_however_the_number_is_written() {
    let (ws, keys) = engage_replica();
    for (iso, raw, key, _) in CASES {
        let out = ws
            .cmd()
            .args([
                "--default-country",
                iso,
                "--json",
                "lookup",
                "--mobile",
                raw,
            ])
            .output()
            .expect("lookup");
        let what = format!("{iso} {raw:?}");
        match key {
            Finds(key) => {
                assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr_of(&out));
                let found: Value = serde_json::from_slice(&out.stdout).expect("json");
                let n = keys.iter().position(|k| k == key).expect("imported");
                assert_eq!(found["contact"]["contact_id"], guid(n as u32), "{what}");
                assert_eq!(found["contact"]["mobile_phone"], *key, "{what}");
            }
            Misses => assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr_of(&out)),
            Refused => {
                let err = stderr_of(&out);
                assert_eq!(out.status.code(), Some(64), "{what}: {err}");
                assert!(err.contains("--mobile"), "{what}: {err}");
                assert!(!err.contains(&digits(raw)), "{what}: unmasked: {err}");
            }
        }
    }
}

#[test]
fn the_till_stores_the_same_key_or_refuses_with_the_reason() {
    for (iso, raw, _, till) in CASES {
        let ws = Workspace::new();
        ws.init();
        let out = ws
            .cmd()
            .args(["--default-country", iso, "contact", "add", "--mobile", raw])
            .output()
            .expect("contact add");
        let what = format!("{iso} {raw:?}");
        let stored: Vec<String> = {
            let conn = ws.till_conn();
            let mut stmt = conn
                .prepare("SELECT mobile_phone FROM till_contact")
                .expect("prepare");
            let rows = stmt.query_map([], |r| r.get(0)).expect("query");
            rows.collect::<Result<_, _>>().expect("rows")
        };
        match till {
            Stores(key) => {
                assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr_of(&out));
                assert_eq!(stored, vec![key.to_string()], "{what}");
            }
            Refuses(needle) => {
                let err = stderr_of(&out);
                assert_eq!(out.status.code(), Some(65), "{what}: {err}");
                assert!(err.contains(needle), "{what}: says {needle:?}: {err}");
                assert!(
                    err.contains("mobilePhone"),
                    "{what}: names the field: {err}"
                );
                assert!(!err.contains(&digits(raw)), "{what}: unmasked: {err}");
                assert!(stored.is_empty(), "{what}: nothing registered");
            }
        }
    }
}

#[test]
fn the_till_checks_email_addresses_against_rfc_5321() {
    let ws = Workspace::new();
    ws.init();
    let local64 = "a".repeat(64);
    let cases: Vec<(String, Option<&str>)> = vec![
        (
            " \u{202A}Anna.Ek@Example.COM\u{200B} ".into(),
            Some("anna.ek@example.com"),
        ),
        (format!("{local64}@example.se"), Some("")),
        (format!("b{local64}@example.se"), None),
        (format!("ab@{}.se", "d".repeat(250)), None),
        ("anna@example".into(), None),
    ];
    for (raw, wanted) in cases {
        let out = ws
            .cmd()
            .args(["--json", "contact", "add", "--email", &raw])
            .output()
            .expect("contact add");
        match wanted {
            Some(key) => {
                assert_eq!(out.status.code(), Some(0), "{raw}: {}", stderr_of(&out));
                let key = if key.is_empty() {
                    format!("{local64}@example.se")
                } else {
                    key.to_string()
                };
                let found = ws
                    .cmd()
                    .args(["--json", "lookup", "--email", &key.to_uppercase()])
                    .output()
                    .expect("lookup");
                assert_eq!(found.status.code(), Some(0), "{raw}: found by {key}");
            }
            None => {
                assert_eq!(out.status.code(), Some(65), "{raw}: {}", stderr_of(&out));
                assert!(stderr_of(&out).contains("email"), "{}", stderr_of(&out));
            }
        }
    }
}

#[test]
fn an_export_keeps_what_it_cannot_read_as_sent_and_counts_it() {
    let ws = Workspace::new();
    let numbers = [
        "call the shop",
        "46701234567",
        "\u{202B}070-123 45 68\u{202C}",
        "12",
    ];
    let members: Vec<String> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "<member><contactId>{}</contactId><mobilePhone>{n}</mobilePhone></member>",
                guid(i as u32)
            )
        })
        .collect();
    ws.write_export("20260101000000_1_odd.xml", &export(&members, &[], &[]));
    let out = ws.cmd().args(["--json", "delta"]).output().expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["inserted"], 4);
    assert_eq!(summary["phones_as_sent"], 2, "{summary}");
    let stored: Vec<Option<String>> = (0..4)
        .map(|i| {
            ws.replica_conn()
                .query_row(
                    "SELECT mobile_phone FROM contact WHERE contact_id = ?1",
                    [guid(i)],
                    |r| r.get(0),
                )
                .expect("row")
        })
        .collect();
    assert_eq!(
        stored,
        vec![
            Some("call the shop".to_string()),
            Some("+46701234567".to_string()),
            Some("+46701234568".to_string()),
            Some("12".to_string()),
        ]
    );
    // The human summary says it too.
    ws.write_export(
        "20260102000000_1_odd.xml",
        &export(
            &[format!(
                "<member><contactId>{}</contactId><mobilePhone>ring me</mobilePhone></member>",
                guid(9)
            )],
            &[],
            &[],
        ),
    );
    let human = ws.cmd().arg("delta").output().expect("delta again");
    assert!(human.status.success(), "{}", stderr_of(&human));
    assert!(
        stdout_of(&human)
            .contains("mobile numbers kept as Engage sent them (not readable as phone numbers): 1"),
        "{}",
        stdout_of(&human)
    );
}

/// A replica written by the build before schemas 5 and 6: the keys it stored for numbers Engage sent
/// without `+`, with a trunk 0 after the country code, or wrapped in bidi marks; and an
/// e-mail address with a zero-width space.
#[test]
fn an_upgraded_replica_is_re_keyed_once_and_the_summary_counts_it() {
    upgraded_replica_is_re_keyed("full");
}

/// Keys mode kept no number as Engage sent it: the old `+46` + `46701234567` is undone.
#[test]
fn an_upgraded_keys_only_replica_is_re_keyed_too() {
    upgraded_replica_is_re_keyed("keys");
}

fn upgraded_replica_is_re_keyed(mode: &str) {
    let ws = Workspace::new();
    let out = ws
        .cmd()
        .args(["-q", "init", "--mode", mode])
        .output()
        .expect("init");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let sent = [
        ("46701234567", "+4646701234567"),
        ("+46 070 123 45 68", "+460701234568"),
        ("\u{202A}0701234569\u{202C}", "\u{202A}0701234569\u{202C}"),
        ("+46701234570", "+46701234570"),
    ];
    let members: Vec<String> = sent
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            format!(
                "<member><contactId>{}</contactId><email>u{i}@example.com</email>\
                 <mobilePhone>{n}</mobilePhone></member>",
                guid(i as u32)
            )
        })
        .collect();
    ws.write_export("20260101000000_1_old.xml", &export(&members, &[], &[]));
    assert!(ws
        .cmd()
        .args(["-q", "delta"])
        .output()
        .expect("delta")
        .status
        .success());
    {
        let conn = ws.replica_conn();
        for (i, (_, old)) in sent.iter().enumerate() {
            conn.execute(
                "UPDATE contact SET mobile_phone = ?1 WHERE contact_id = ?2",
                rusqlite::params![old, guid(i as u32)],
            )
            .expect("old key");
        }
        conn.execute(
            "UPDATE contact SET email = 'u3@example.com\u{200B}' WHERE contact_id = ?1",
            [guid(3)],
        )
        .expect("old e-mail");
        conn.execute_batch(UNDO_SCHEMA_7).expect("schema 6");
        conn.execute_batch("DROP TABLE used_folder; PRAGMA user_version = 4;")
            .expect("schema 4");
    }
    // Before: the lookups miss.
    let lookup = |mobile: &str| {
        ws.cmd()
            .args(["lookup", "--mobile", mobile])
            .output()
            .expect("lookup")
            .status
            .code()
    };
    assert_eq!(lookup("070 123 45 67"), Some(1));
    let out = ws.cmd().args(["--json", "delta"]).output().expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        summary["rekey"],
        serde_json::json!({"rows": 4, "changed_rows": 4, "phones_changed": 3,
            "emails_changed": 1, "other_keys_changed": 0, "phones_as_sent": 0}),
        "{summary}"
    );
    for (i, mobile) in [
        "070 123 45 67",
        "070 123 45 68",
        "070 123 45 69",
        "070 123 45 70",
    ]
    .iter()
    .enumerate()
    {
        let out = ws
            .cmd()
            .args(["--json", "lookup", "--mobile", mobile])
            .output()
            .expect("lookup");
        assert_eq!(out.status.code(), Some(0), "{mobile}");
        let found: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(found["contact"]["contact_id"], guid(i as u32));
    }
    // Once: the next run has nothing to re-key and says nothing about it.
    let out = ws.cmd().arg("delta").output().expect("delta");
    assert!(out.status.success());
    assert!(
        !stdout_of(&out).contains("re-normalised"),
        "{}",
        stdout_of(&out)
    );
}

/// Receipts name their customer by a match key (Voyado's integration guide writes
/// `"matchKey": "46707234567"`) or carry contact data: the key is normalised like a lookup's,
/// the contact data like `contact add`'s.
#[test]
fn receipts_match_keys_and_contact_data_use_the_same_rules() {
    let ws = Workspace::new();
    ws.init();
    let add = |id: &str, contact: Value| {
        ws.cmd()
            .args(["receipt", "add", "-"])
            .write_stdin(receipt(id, contact).to_string())
            .output()
            .expect("receipt add")
    };
    let stored = |id: &str| -> Option<(String, String)> {
        ws.till_conn()
            .query_row(
                "SELECT ref_type, ref_value FROM receipt_outbox WHERE unique_receipt_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
    };
    let out = add(
        "r1",
        serde_json::json!({"matchKeyType": "mobilePhone", "matchKey": "46707234567"}),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stored("r1"),
        Some(("mobilePhone".into(), "+46707234567".into()))
    );
    let out = add(
        "r2",
        serde_json::json!({"matchKeyType": "mobilePhone", "matchKey": "\u{202A}+46 070-723 45 67\u{202C}"}),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stored("r2"),
        Some(("mobilePhone".into(), "+46707234567".into()))
    );
    for (id, contact, needle) in [
        (
            "r3",
            serde_json::json!({"matchKeyType": "mobilePhone", "matchKey": "1234567"}),
            "not a valid phone number in SE",
        ),
        (
            "r4",
            serde_json::json!({"mobilePhone": "08 123 456 78", "firstName": "Ann"}),
            "landline",
        ),
        (
            "r5",
            serde_json::json!({"email": format!("{}@example.se", "a".repeat(65))}),
            "at most 64",
        ),
    ] {
        let out = add(id, contact);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(65), "{id}: {err}");
        assert!(err.contains(needle), "{id}: {err}");
        assert_eq!(stored(id), None, "{id}: nothing queued");
    }
}
