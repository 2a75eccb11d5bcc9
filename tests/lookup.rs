//! `lookup` by every key, with the normalisation of docs/contract.md §3.

use crate::common;

use common::*;
use serde_json::Value;

fn replica_with_one_contact() -> Workspace {
    let ws = Workspace::new();
    let content = format!(
        "<contacts xmlns=\"{NS}\"><new><member source=\"POS\"><contactId>{}</contactId>\
         <memberNumber>100001</memberNumber><firstName>Åsa</firstName>\
         <email> Asa.Oberg@Example.COM </email><mobilePhone>+46 70 123 45 67</mobilePhone>\
         <externalId>EXT-1</externalId><socialSecurityNumber>198001011234</socialSecurityNumber>\
         </member></new></contacts>",
        guid(0xabc).to_uppercase()
    );
    let f = ws.write_export("20260101100000_0_c.xml", &content);
    let out = ws.cmd().arg("delta").arg(&f).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    ws
}

#[test]
fn every_key_and_every_phone_format_finds_the_contact() {
    let ws = replica_with_one_contact();
    let id = guid(0xabc);
    let cases: Vec<(&str, String)> = vec![
        ("--mobile", "0046 70-123 45 67".into()),
        ("--mobile", "+46 70 123 45 67".into()),
        ("--mobile", "070-123 45 67".into()),
        ("--mobile", "+46701234567".into()),
        ("--email", "asa.oberg@example.com".into()),
        ("--email", "ASA.OBERG@EXAMPLE.COM".into()),
        ("--member-number", "100001".into()),
        ("--contact-id", id.clone()),
        ("--contact-id", id.to_uppercase()),
        ("--external-id", "EXT-1".into()),
        ("--ssn", "198001011234".into()),
    ];
    for (flag, value) in cases {
        let out = ws
            .cmd()
            .args(["lookup", "--json", flag, &value])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flag} {value}: {}",
            stderr_of(&out)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["found"], true);
        assert_eq!(v["match_key_type"], "contactId");
        assert_eq!(v["match_key"], id.as_str());
        assert_eq!(v["contact"]["first_name"], "Åsa");
        assert_eq!(v["contact"]["mobile_phone"], "+46701234567");
    }
}

#[test]
fn not_found_exits_1_and_bad_values_are_usage_errors() {
    let ws = replica_with_one_contact();
    let out = ws
        .cmd()
        .args(["lookup", "--email", "nobody@example.com"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout_of(&out).is_empty());
    let out = ws
        .cmd()
        .args(["lookup", "--json", "--mobile", "0709999999"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["found"], false);

    let out = ws
        .cmd()
        .args(["lookup", "--mobile", "call me"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64), "{}", stderr_of(&out));
    let out = ws
        .cmd()
        .args(["lookup", "--contact-id", "123"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    let out = ws.cmd().args(["lookup"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(64), "a key is required");
    let out = ws
        .cmd()
        .args(["lookup", "--email", "a@b.se", "--mobile", "070"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64), "only one key");
}

#[test]
fn the_default_country_applies_to_national_numbers() {
    let ws = Workspace::new();
    let content = format!(
        "<contacts xmlns=\"{NS}\"><new><member><contactId>{}</contactId>\
         <mobilePhone>+4741234567</mobilePhone></member></new></contacts>",
        guid(5)
    );
    let f = ws.write_export("20260101100000_0_c.xml", &content);
    assert!(ws
        .cmd()
        .arg("delta")
        .arg(&f)
        .output()
        .expect("runs")
        .status
        .success());
    let out = ws
        .cmd()
        .args(["lookup", "--mobile", "412 34 567"])
        .output()
        .expect("runs");
    // Not a Swedish number at all: refused with the reason, not "not found".
    assert_eq!(out.status.code(), Some(64), "SE by default");
    assert!(
        stderr_of(&out).contains("not a valid phone number in SE"),
        "{}",
        stderr_of(&out)
    );
    let out = ws
        .cmd()
        .args([
            "--default-country",
            "NO",
            "lookup",
            "--mobile",
            "412 34 567",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "default_country = \"NO\"\n",
    )
    .expect("cfg");
    let out = ws
        .cmd()
        .args(["lookup", "--mobile", "412 34 567"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "from the config file");
}

#[test]
fn lookup_without_a_replica_says_how_to_make_one() {
    let ws = Workspace::new();
    let out = ws
        .cmd()
        .args(["lookup", "--email", "a@b.se"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr_of(&out).contains("engage-sync init"),
        "{}",
        stderr_of(&out)
    );
    assert!(!ws.db().exists(), "a reader never creates the replica");
}

/// The README gives a POS the exact SQL of the public read interface (version 2): the
/// statements the binary itself runs, verbatim.
#[test]
fn the_readme_shows_the_read_interface_the_binary_uses() {
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(CONTACTS_VIEW.trim_end()),
        "README \"Reading the replica\" must show src/till_store/contacts_view.sql verbatim"
    );
    assert!(readme.contains("## Reading the replica (public interface, version 2)"));
}

/// A POS that opens the replica read-only, attaches the till store and creates the view as the
/// README says sees the till's contacts and Engage's, by every key.
#[test]
fn a_pos_reading_as_the_readme_says_sees_the_tills_contacts() {
    let ws = Workspace::new();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a"), member(2, "a")], &[], &[]),
    );
    assert!(ws
        .cmd()
        .args(["delta", "inbox"])
        .output()
        .expect("runs")
        .status
        .success());
    let out = ws
        .cmd()
        .args([
            "contact",
            "add",
            "--email",
            "pos@example.com",
            "--member-number",
            "M77",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let conn = pos_reader(&ws.db());
    let by = |sql: &str| -> Vec<(Option<String>, Option<String>)> {
        conn.prepare(sql)
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let local = by("SELECT contact_id, local_key FROM contacts WHERE member_number = 'M77'");
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].0, None);
    let key = local[0].1.clone().expect("a local key");
    assert_eq!(
        by(&format!(
            "SELECT contact_id, local_key FROM contacts WHERE local_key = '{key}'"
        )),
        local
    );
    assert_eq!(
        by("SELECT contact_id, local_key FROM contacts WHERE email = 'user2@example.com'"),
        vec![(Some(guid(2)), None)]
    );
    let total: i64 = conn
        .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
        .expect("count");
    assert_eq!(total, 3);
}

/// A till store removed by hand: lookups of Engage's contacts keep working (the till's
/// contacts are gone with the file), with a warning that says what is missing.
#[test]
fn a_missing_till_store_reads_as_empty_with_a_warning() {
    let ws = replica_with_one_contact();
    std::fs::remove_file(ws.till()).expect("remove the till store");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", ws.till().display()));
    }
    let out = ws
        .cmd()
        .args(["--json", "lookup", "--member-number", "100001"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("the till store is missing"),
        "{}",
        stderr_of(&out)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["matches"], 1, "{doc}");
    // Monitoring is told, with what to do.
    let out = ws.cmd().arg("status").output().expect("runs");
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("is missing") && stderr_of(&out).contains("engage-sync init"),
        "{}",
        stderr_of(&out)
    );
}

/// A till store of another schema version than this binary's is refused by readers with
/// exit 78 and what to do (migrate it, or upgrade engage-sync), never read as if it fitted.
#[test]
fn a_till_store_of_another_schema_is_refused_by_readers() {
    let ws = replica_with_one_contact();
    for (version, says) in [(99, "newer than"), (0, "older than")] {
        ws.till_conn()
            .pragma_update(None, "user_version", version)
            .expect("set the version");
        let out = ws
            .cmd()
            .args(["lookup", "--member-number", "100001"])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(78),
            "{version}: {}",
            stderr_of(&out)
        );
        assert!(
            stderr_of(&out).contains(says),
            "{version}: {}",
            stderr_of(&out)
        );
    }
}
