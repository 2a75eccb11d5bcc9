//! `lookup` by every key, with the normalisation of SPEC §3.

mod common;

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
    assert_eq!(out.status.code(), Some(1), "SE by default: +46412…");
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
