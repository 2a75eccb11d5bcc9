//! No log line, error message or `--json` output of any command shows an unmasked e-mail, phone
//! number or personal identity number (docs/contract.md §8). `lookup`'s stdout is the one place
//! that shows a contact's data: that is what the till asked for.

use crate::common;

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

mod engage_leaks {
    //! Each leak of issue 17 through the real binary against the fake Engage: request names
    //! in logs at every verbosity, Engage error bodies that echo the request (values, headers
    //! with the API key), and what of them is stored in the till store.

    use super::*;
    use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind};

    const NAME: &str = "Zebedeus";

    /// A workspace pointed at `fake` with test-sized waits.
    fn workspace_for(fake: &FakeEngage) -> Workspace {
        let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 2\n");
        Workspace::pointed_at(fake, &engage, FAST_PUSH)
    }

    /// Every verbosity and format a run can log at.
    const MODES: [&[&str]; 4] = [
        &["-v"],
        &["-vv"],
        &["-vv", "--log-format", "json"],
        &["--json"],
    ];

    fn push(ws: &Workspace, fake: &FakeEngage, mode: &[&str]) -> std::process::Output {
        ws.cmd()
            .env("ENGAGE_API_KEY", fake.api_key())
            .args(mode)
            .arg("push-local")
            .output()
            .expect("runs")
    }

    /// The secrets of this test: the values sent, in every encoding a URL or body has them,
    /// and the API key.
    fn secrets(fake: &FakeEngage) -> Vec<String> {
        vec![
            EMAIL.into(),
            "secret.person%40example.com".into(),
            "46701112233".into(),
            NAME.into(),
            fake.api_key(),
        ]
    }

    fn assert_output_clean(what: &str, out: &std::process::Output, fake: &FakeEngage) {
        let text = format!("{}{}", stdout_of(out), stderr_of(out));
        for s in secrets(fake) {
            assert!(!text.contains(&s), "{what} printed {s}:\n{text}");
        }
    }

    /// A failed lookup by e-mail is logged (at -v and up) with its query masked.
    #[test]
    fn failed_requests_are_logged_with_personal_query_values_masked() {
        let fake = FakeEngage::start(FakeConfig::default());
        let ws = workspace_for(&fake);
        // A receipt with contact data: the push looks the contact up by key first.
        let r = receipt(
            "R-lookup",
            serde_json::json!({"email": EMAIL, "mobilePhone": PHONE, "firstName": NAME}),
        );
        let out = ws
            .cmd()
            .args(["receipt", "add", "-"])
            .write_stdin(r.to_string())
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
        for mode in MODES {
            fake.clear_faults();
            fake.inject(Fault::new(FaultKind::Status(503)).times(1000));
            let out = push(&ws, &fake, mode);
            assert!(!out.status.success(), "Engage down: the push fails");
            assert_output_clean(&format!("push-local {mode:?}"), &out, &fake);
            if mode != ["--json"] {
                let log = stderr_of(&out);
                assert!(
                    log.contains("/api/v3/contacts"),
                    "{mode:?}: the failing request is named:\n{log}"
                );
            }
        }
        let lookups: Vec<String> = fake
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/api/v3/contacts/id?"))
            .map(|r| r.path)
            .collect();
        assert!(
            lookups
                .iter()
                .any(|p| p.contains("mobilePhone=%2B46701112233")),
            "the phone number really was in a URL: {lookups:?}"
        );
    }

    /// Engage rejects a receipt and a bulk create with a body that echoes the request (values,
    /// the API key among the headers): the reason stored, shown by `status` (human and JSON) and
    /// logged holds Engage's error code, the field names and the correlation id, and none of
    /// the echoed values; the till store's bytes hold no API key and no echo.
    #[test]
    fn echoed_error_bodies_are_reduced_to_code_fields_and_correlation_id() {
        let fake = FakeEngage::start(FakeConfig::default());
        let ws = workspace_for(&fake);
        let known = fake.add_contact(fake_engage::attrs([("email", "known@example.com")]));
        let out = ws
            .cmd()
            .args(["contact", "add", "--email", EMAIL, "--first-name", NAME])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
        fake.inject(Fault::on(
            "POST",
            "/api/v3/contacts/bulk",
            FaultKind::EchoRequest(400),
        ));
        fake.inject(Fault::on(
            "POST",
            "/api/v3/contacts",
            FaultKind::EchoRequest(400),
        ));
        // One receipt rejected with an echo per verbosity and format.
        for (i, mode) in MODES.iter().enumerate() {
            let mut r = receipt(
                &format!("R-echo-{i}"),
                serde_json::json!({"matchKeyType": "contactId", "matchKey": known}),
            );
            r["items"][0]["articleName"] = format!("Socks for {NAME} {EMAIL}").into();
            let out = ws
                .cmd()
                .args(["receipt", "add", "-"])
                .write_stdin(r.to_string())
                .output()
                .expect("runs");
            assert!(out.status.success(), "{}", stderr_of(&out));
            fake.inject(Fault::on(
                "POST",
                "/api/v3/receipts",
                FaultKind::EchoRequest(400),
            ));
            let out = push(&ws, &fake, mode);
            assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
            assert_output_clean(&format!("push-local {mode:?}"), &out, &fake);
            if *mode != ["--json"] {
                assert!(
                    stderr_of(&out).contains("correlation id corr-4711"),
                    "{mode:?}: the log keeps what an operator needs:\n{}",
                    stderr_of(&out)
                );
            }
        }
        for mode in MODES {
            let out = ws.cmd().args(mode).arg("status").output().expect("runs");
            assert_output_clean(&format!("status {mode:?}"), &out, &fake);
        }
        let out = ws.cmd().args(["status", "--json"]).output().expect("runs");
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let reasons: Vec<String> = status["outbox"]["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .map(|p| p["reason"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(!reasons.is_empty(), "rejections recorded: {status}");
        for reason in &reasons {
            assert!(reason.contains("errorCode InvalidData"), "{reason}");
            assert!(reason.contains("correlation id corr-4711"), "{reason}");
            assert!(
                !reason.contains("is not valid") && !reason.contains("apikey"),
                "{reason}"
            );
            assert!(reason.chars().count() < 600, "capped: {reason}");
        }
        let receipt_reason = reasons
            .iter()
            .find(|r| r.contains("/api/v3/receipts"))
            .unwrap_or_else(|| panic!("a receipt rejection: {reasons:?}"));
        assert!(receipt_reason.contains("fields "), "{receipt_reason}");
        let receipt_rejections = reasons
            .iter()
            .filter(|r| r.contains("/api/v3/receipts"))
            .count();
        assert_eq!(receipt_rejections, MODES.len(), "{reasons:?}");
        for path in files_under(ws.path()) {
            let bytes = std::fs::read(&path).expect("read");
            for needle in [
                fake.api_key().as_str(),
                "requestHeaders",
                "is not valid",
                "rejected: ",
            ] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} stored in {}",
                    path.display()
                );
            }
        }
    }
}

/// Control characters and bidi overrides from file names and XML values are escaped in human
/// output (`status`, `lookup`, errors): a value cannot forge a line or reach the terminal raw.
/// JSON output keeps the values as they are (JSON escapes them itself).
#[test]
fn control_characters_from_outside_are_escaped_in_human_output() {
    let ws = Workspace::new();
    let forged = "20260101100000_0_x\nOK: all good.xml";
    let member = format!(
        "<member><contactId>{}</contactId><memberNumber>M-ctl</memberNumber>\
         <firstName>Eve&#13;\nOK: found</firstName><lastName>\u{202e}reveR</lastName></member>",
        guid(1)
    );
    ws.write_export(forged, &export(&[member], &[], &[]));
    ws.write_export("20260101100000_1_x\u{1b}[2J.xml", "<contacts><new>");
    let out = ws
        .cmd()
        .args(["delta", "--keep-going"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    let raw = |s: &str| {
        s.contains(['\r', '\u{1b}', '\u{202e}']) || s.lines().any(|l| l.starts_with("OK: "))
    };
    let err = stderr_of(&out);
    assert!(
        !raw(&err),
        "delta's log or error printed a raw control character:\n{err}"
    );
    assert!(err.contains("\\x1b[2J"), "{err}");

    let status = stdout_of(&ws.cmd().arg("status").output().expect("runs"));
    assert!(!raw(&status), "status:\n{status}");
    assert!(status.contains("x\\nOK: all good.xml"), "{status}");
    assert!(status.contains("x\\x1b[2J.xml"), "{status}");

    let out = ws
        .cmd()
        .args(["lookup", "--member-number", "M-ctl"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let lookup = stdout_of(&out);
    assert!(!raw(&lookup), "lookup:\n{lookup}");
    assert!(lookup.contains("Eve\\r\\nOK: found"), "{lookup}");
    assert!(lookup.contains("\\u{202e}reveR"), "{lookup}");

    let out = ws
        .cmd()
        .args(["lookup", "--json", "--member-number", "M-ctl"])
        .output()
        .expect("runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["contact"]["first_name"], "Eve\r\nOK: found", "{json}");
}

/// A password in ENGAGE_BASE_URL is refused without being echoed, at every verbosity.
#[test]
fn a_password_in_the_base_url_is_never_echoed() {
    let ws = Workspace::new();
    ws.init();
    for mode in [
        &["-v"][..],
        &["-vv"],
        &["-vv", "--log-format", "json"],
        &["--json"],
    ] {
        let out = ws
            .cmd()
            .env(
                "ENGAGE_BASE_URL",
                "https://svc-user:Hunter2-Secret@t.voyado.com",
            )
            .env("ENGAGE_API_KEY", "k")
            .args(mode)
            .arg("push-local")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
        let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
        assert!(
            !text.contains("Hunter2") && !text.contains("svc-user"),
            "{text}"
        );
        assert!(text.contains("https://***@t.voyado.com"), "{text}");
    }
}

/// A secret (or base URL) that is not text is refused naming its flag and variable, never
/// showing the value, and nothing is touched: clap's own message would name neither.
#[test]
fn a_value_that_is_not_text_is_refused_naming_its_variable_but_not_its_value() {
    use std::os::unix::ffi::OsStrExt;
    let ws = Workspace::new();
    let bad = std::ffi::OsStr::from_bytes(b"Hunter2-\xff");
    for (command, variable, flag) in [
        ("push-local", "ENGAGE_API_KEY", "--engage-api-key"),
        ("changes", "ENGAGE_BASE_URL", "--engage-base-url"),
        ("delta", "ENGAGE_SYNC_SFTP_PASSWORD", "--sftp-password"),
        ("delta", "ENGAGE_SYNC_SFTP_PASSPHRASE", "--sftp-passphrase"),
    ] {
        let out = ws
            .cmd()
            .env(variable, bad)
            .arg(command)
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(64),
            "{command}: {}",
            stderr_of(&out)
        );
        let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
        assert!(
            text.contains(&format!("{flag} / {variable} is not valid UTF-8")),
            "{command}: {text}"
        );
        assert!(!text.contains("Hunter2"), "{command}: {text}");
        assert!(!ws.db().exists(), "{command} made a replica");
    }
}

/// Clap reads the secrets' variables (ENGAGE_API_KEY, ENGAGE_BASE_URL, the SFTP password and
/// passphrase) and `--help` names them, but never shows their values.
#[test]
fn help_names_the_secret_variables_but_never_their_values() {
    let ws = Workspace::new();
    let engage = ["ENGAGE_BASE_URL", "ENGAGE_API_KEY"];
    let sftp = ["ENGAGE_SYNC_SFTP_PASSWORD", "ENGAGE_SYNC_SFTP_PASSPHRASE"];
    for (command, names) in [
        ("push-local", &engage),
        ("changes", &engage),
        ("full", &engage),
        ("delta", &sftp),
    ] {
        let out = ws
            .cmd()
            .env(
                "ENGAGE_BASE_URL",
                "https://svc-user:Url-Hunter2@t.voyado.com",
            )
            .env("ENGAGE_API_KEY", "Key-Hunter2")
            .env("ENGAGE_SYNC_SFTP_PASSWORD", "Password-Hunter2")
            .env("ENGAGE_SYNC_SFTP_PASSPHRASE", "Passphrase-Hunter2")
            .args([command, "--help"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
        assert!(
            !text.contains("Hunter2") && !text.contains("svc-user"),
            "{command}: {text}"
        );
        for name in names {
            assert!(
                text.contains(&format!("[env: {name}]")),
                "{command}: {text}"
            );
        }
    }
}

/// Engage's base URL: `--engage-base-url` wins over ENGAGE_BASE_URL, which wins over
/// `[engage] base_url` (docs/contract.md §8). Each refused URL is one with a password, so which
/// source was used shows in the exit code (78 names the redacted URL; 0 is the fake).
#[test]
fn the_base_url_flag_wins_over_the_environment_which_wins_over_the_file() {
    let fake = fake_engage::FakeEngage::start(fake_engage::FakeConfig::default());
    let ws = Workspace::new();
    let bad = "https://svc-user:Hunter2-Secret@t.voyado.com";
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        format!("[engage]\nbase_url = \"{bad}\"\n"),
    )
    .expect("config");
    ws.init();
    let push = |env: Option<&str>, flag: Option<&str>| {
        let mut cmd = ws.cmd();
        cmd.env("ENGAGE_API_KEY", fake.api_key())
            .env_remove("ENGAGE_BASE_URL");
        if let Some(url) = env {
            cmd.env("ENGAGE_BASE_URL", url);
        }
        cmd.arg("push-local");
        if let Some(url) = flag {
            cmd.args(["--engage-base-url", url]);
        }
        cmd.output().expect("runs")
    };
    let base = fake.base_url();
    for (env, flag, code) in [
        (None, None, 78),
        (Some(base.as_str()), None, 0),
        (Some(bad), Some(base.as_str()), 0),
        (Some(base.as_str()), Some(bad), 78),
    ] {
        let out = push(env, flag);
        let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
        assert_eq!(
            out.status.code(),
            Some(code),
            "env {env:?}, flag {flag:?}: {text}"
        );
        assert!(!text.contains("Hunter2"), "{text}");
        if code == 78 {
            assert!(text.contains("https://***@t.voyado.com"), "{text}");
        }
    }
}
