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
