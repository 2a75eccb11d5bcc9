//! No log line, error message or `--json` output of any command shows an unmasked e-mail,
//! phone number or personal identity number (SPEC §8). `lookup`'s stdout is the one place that
//! shows a contact's data: that is what the till asked for.

mod common;

use common::*;

const EMAIL: &str = "secret.person@example.com";
const PHONE: &str = "+46701112233";
const PHONE_NATIONAL: &str = "070-111 22 33";
const SSN: &str = "197001019876";

fn personal_member(n: u32) -> String {
    format!(
        "<member><contactId>{}</contactId><email>{EMAIL}</email><mobilePhone>{PHONE}</mobilePhone>\
         <socialSecurityNumber>{SSN}</socialSecurityNumber></member>",
        guid(n)
    )
}

fn assert_clean(what: &str, out: &std::process::Output, check_stdout: bool) {
    let mut text = stderr_of(out);
    if check_stdout {
        text.push_str(&stdout_of(out));
    }
    for secret in [EMAIL, PHONE, SSN, "secret.person"] {
        assert!(!text.contains(secret), "{what} printed {secret}:\n{text}");
    }
}

#[test]
fn no_command_prints_personal_data_unmasked() {
    let ws = Workspace::new();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[personal_member(1)], &[], &[]),
    );
    // A malformed file full of personal data, and one with a bad contact id.
    ws.write_export(
        "20260101100000_1_c.xml",
        &format!(
            "<contacts xmlns=\"{NS}\"><new>{}<member><email>{EMAIL}</email>",
            personal_member(2)
        ),
    );
    ws.write_export(
        "20260101100000_2_c.xml",
        &format!(
            "<contacts xmlns=\"{NS}\"><new><member contactId=\"{EMAIL}\"><mobilePhone>{PHONE}</mobilePhone></member></new></contacts>"
        ),
    );
    let runs: Vec<(&str, Vec<&str>, bool)> = vec![
        ("init", vec!["init", "--json"], true),
        (
            "delta dry run",
            vec!["-vv", "delta", "inbox", "--dry-run", "--keep-going"],
            true,
        ),
        (
            "delta",
            vec!["-vv", "delta", "inbox", "--keep-going", "--json"],
            true,
        ),
        (
            "delta again",
            vec!["-vv", "--log-format", "json", "delta", "inbox"],
            true,
        ),
        ("status", vec!["status"], true),
        ("status json", vec!["status", "--json"], true),
        ("status check", vec!["status", "--check"], true),
        (
            "purge",
            vec!["-vv", "purge", "--older-than", "0s", "--json"],
            true,
        ),
        (
            "lookup miss e-mail",
            vec![
                "-vv",
                "lookup",
                "--email",
                "other.secret.person@example.com",
            ],
            true,
        ),
        (
            "lookup miss phone",
            vec!["-vv", "lookup", "--mobile", "070-999 99 99"],
            true,
        ),
        (
            "lookup bad phone",
            vec!["lookup", "--mobile", "secret.person"],
            true,
        ),
        (
            "lookup hit",
            vec!["-vv", "lookup", "--mobile", PHONE_NATIONAL],
            false,
        ),
        (
            "lookup hit json",
            vec!["-vv", "lookup", "--json", "--ssn", SSN],
            false,
        ),
    ];
    for (what, args, check_stdout) in runs {
        let out = ws.cmd().args(&args).output().expect("runs");
        assert_clean(what, &out, check_stdout);
    }
    // The lookup did find the contact (so the hits above really printed a contact).
    let out = ws
        .cmd()
        .args(["lookup", "--email", EMAIL])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(stdout_of(&out).contains(EMAIL));
}

#[test]
fn till_commands_print_no_personal_data_unmasked() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "[local]\nkey_prefix = \"L0600-\"\n",
    )
    .unwrap_or(());
    ws.init();
    let receipt = format!(
        r#"{{"contact":{{"email":"{EMAIL}","mobilePhone":"{PHONE}","firstName":"Zed"}},
        "uniqueReceiptId":"R-1","receiptNumber":"1","createdDate":"2026-11-25T15:55:54+01:00",
        "storeExternalId":"600","currency":"SEK","totalGrossPrice":100.0,
        "paymentMethods":[{{"type":"Card","value":100.0}}],
        "items":[{{"type":"PURCHASE","quantity":1,"grossPaidPrice":100.0,"taxAmount":20.0,
        "taxPercent":25,"sku":"1","articleNumber":"1","articleName":"Socks"}}]}}"#
    );
    std::fs::write(ws.path().join("receipt.json"), &receipt).expect("receipt");
    let bad_receipt = receipt.replace("\"currency\":\"SEK\",", "");
    std::fs::write(ws.path().join("bad.json"), bad_receipt).expect("bad receipt");
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "contact add",
            vec![
                "-vv",
                "contact",
                "add",
                "--email",
                EMAIL,
                "--mobile",
                PHONE_NATIONAL,
                "--ssn",
                SSN,
            ],
        ),
        (
            "contact add again",
            vec!["-vv", "contact", "add", "--email", EMAIL],
        ),
        (
            "contact add json",
            vec![
                "-vv",
                "--json",
                "contact",
                "add",
                "--mobile",
                "070-222 33 44",
                "--first-name",
                "Ann",
            ],
        ),
        (
            "contact update",
            vec![
                "-vv",
                "contact",
                "update",
                "--email",
                EMAIL,
                "--new-mobile",
                "070-555 66 77",
            ],
        ),
        ("receipt add", vec!["-vv", "receipt", "add", "receipt.json"]),
        ("receipt add bad", vec!["-vv", "receipt", "add", "bad.json"]),
        ("push-local dry run", vec!["-vv", "push-local", "--dry-run"]),
        (
            "push-local dry run json",
            vec!["-vv", "--json", "push-local", "--dry-run"],
        ),
        ("status", vec!["status", "--json"]),
    ];
    for (what, args) in runs {
        let out = ws.cmd().args(&args).output().expect("runs");
        let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
        for secret in [
            EMAIL,
            PHONE,
            SSN,
            "+46702223344",
            "+46705556677",
            "secret.person",
        ] {
            assert!(!text.contains(secret), "{what} printed {secret}:\n{text}");
        }
    }
    // The contact is really there (the runs above did something).
    let out = ws
        .cmd()
        .args(["lookup", "--email", EMAIL])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
}
