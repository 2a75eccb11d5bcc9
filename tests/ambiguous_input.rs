//! Refuse, don't guess (issue 18, input at the till and in exports): duplicate JSON keys at any
//! depth, JSON values of the wrong type, input past its size limits, a field given twice on the
//! command line, a customer twice in one batch, and export members that give a single-valued
//! field twice. Each through the real binary: exit 65, a message naming what and where, and
//! nothing stored.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// Tables a refused till input must leave as they were.
const TILL_TABLES: [&str; 4] = [
    "contact_outbox",
    "receipt_outbox",
    "local_key_seq",
    "local_key_link",
];

/// A replica with three contacts from an export, a till contact and a buffered receipt.
fn seeded() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "[local]\nstore_external_id = \"0600\"\n",
    )
    .expect("config");
    let good = ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a"), member(2, "a"), member(3, "a")], &[], &[]),
    );
    let out = ws.cmd().arg("delta").arg(&good).output().expect("runs");
    assert!(out.status.success(), "seed delta: {}", stderr_of(&out));
    let out = ws
        .cmd()
        .args(["contact", "add", "--email", "till@example.com"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "seed contact: {}", stderr_of(&out));
    let out = ws
        .cmd()
        .args(["receipt", "add"])
        .write_stdin(good_receipt("SEED-1").to_string())
        .output()
        .expect("runs");
    assert!(out.status.success(), "seed receipt: {}", stderr_of(&out));
    ws
}

/// A valid receipt for contact 1.
fn good_receipt(id: &str) -> Value {
    receipt(
        id,
        json!({"matchKeyType": "contactId", "matchKey": guid(1)}),
    )
}

/// Every row of the replica's contacts and the till's tables, as text.
fn snapshot(ws: &Workspace) -> Vec<String> {
    let tables: Vec<&str> = std::iter::once("contacts").chain(TILL_TABLES).collect();
    table_rows(&ws.conn(), &tables)
}

/// Runs `args` with `stdin`, expects exit 65, every needle in the error, and nothing changed.
/// Returns the error text.
fn refused(ws: &Workspace, args: &[&str], stdin: &str, needles: &[&str]) -> String {
    let before = snapshot(ws);
    let out = ws
        .cmd()
        .args(args)
        .write_stdin(stdin.to_string())
        .output()
        .expect("runs");
    let err = stderr_of(&out);
    let what = format!("{args:?} < {}", &stdin[..stdin.len().min(300)]);
    assert_eq!(out.status.code(), Some(65), "{what}: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "{what}: the error says {needle:?}: {err}"
        );
    }
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(snapshot(ws), before, "{what}: nothing may change");
    err
}

/// The compact JSON of `v` with the text `from` (which must be there) replaced by `to`: how a
/// duplicate key is written, since no JSON library writes one.
fn edited(v: &Value, from: &str, to: &str) -> String {
    let text = v.to_string();
    assert!(text.contains(from), "{from} not in {text}");
    text.replacen(from, to, 1)
}

#[test]
fn duplicate_json_keys_are_refused_at_any_depth_naming_the_key_path() {
    let ws = seeded();
    let r = good_receipt("D-1");
    let id = "\"uniqueReceiptId\":\"D-1\"";
    let key = format!("\"matchKey\":\"{}\"", guid(1));
    let sku = "\"sku\":\"1\"";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            edited(&r, id, &format!("{id},\"uniqueReceiptId\":\"D-2\"")),
            vec!["uniqueReceiptId: the key is given twice", "line 1, column"],
        ),
        (
            edited(&r, &key, &format!("{key},\"matchKey\":\"{}\"", guid(2))),
            vec![
                "contact.matchKey: the key is given twice",
                "item 1 of stdin",
            ],
        ),
        (
            // Letter case and escapes do not make a key different.
            edited(&r, &key, &format!("{key},\"MatchKey\":\"{}\"", guid(2))),
            vec!["contact.MatchKey", "differs only in letter case"],
        ),
        (
            edited(
                &r,
                &key,
                &format!("{key},\"match\\u004bey\":\"{}\"", guid(2)),
            ),
            vec!["contact.matchKey: the key is given twice"],
        ),
        (
            edited(&r, sku, &format!("{sku},\"sku\":\"9\"")),
            vec!["items[0].sku: the key is given twice"],
        ),
        (
            // The same value twice is still refused: the input is not what the till meant.
            edited(&r, id, &format!("{id},\"uniqueReceiptId\":\"D-1\"")),
            vec!["uniqueReceiptId"],
        ),
        (
            // In a batch, the item is named by its position; the good one before it is not
            // stored either.
            format!(
                "[{},\n{}]",
                good_receipt("D-3"),
                edited(&r, &key, &format!("{key},\"matchKey\":\"x\""))
            ),
            vec!["item 2 of stdin (line 2, column", "contact.matchKey"],
        ),
        (
            format!(
                "{}\n{}\n",
                good_receipt("D-4"),
                edited(
                    &r,
                    "\"currency\":\"SEK\"",
                    "\"currency\":\"SEK\",\"currency\":\"NOK\""
                )
            ),
            vec!["item 2 of stdin (line 2, column", "currency"],
        ),
    ];
    for (stdin, needles) in &cases {
        refused(&ws, &["receipt", "add"], stdin, needles);
    }
    // The same at contact registration and change.
    refused(
        &ws,
        &["contact", "add", "--from", "-"],
        "{\"email\":\"new1@example.com\",\"firstName\":\"A\",\"firstName\":\"B\"}",
        &["firstName: the key is given twice"],
    );
    refused(
        &ws,
        &["contact", "add", "--from", "-"],
        "[{\"email\":\"new2@example.com\"},{\"email\":\"new3@example.com\",\"address\":{\"city\":\"U\",\"City\":\"V\"}}]",
        &["item 2 of stdin", "address.City"],
    );
    refused(
        &ws,
        &[
            "contact",
            "update",
            "--email",
            "till@example.com",
            "--from",
            "-",
        ],
        "{\"lastName\":\"A\",\"lastName\":\"B\"}",
        &["lastName: the key is given twice"],
    );
}

#[test]
fn wrong_json_types_are_refused_not_coerced() {
    let ws = seeded();
    let base = good_receipt("T-1");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/totalGrossPrice",
            json!("200"),
            "totalGrossPrice: must be a number",
        ),
        (
            "/totalGrossPrice",
            json!("200.00"),
            "totalGrossPrice: must be a number",
        ),
        (
            "/items/0/quantity",
            json!("2"),
            "items[0].quantity: must be a number",
        ),
        (
            "/items/0/taxPercent",
            json!(false),
            "items[0].taxPercent: must be a number",
        ),
        (
            "/paymentMethods/0/value",
            json!("200"),
            "paymentMethods[0].value: must be a number",
        ),
        (
            "/uniqueReceiptId",
            json!(20261125),
            "uniqueReceiptId: must be text",
        ),
        ("/receiptNumber", json!(1), "receiptNumber: must be text"),
        (
            "/storeExternalId",
            json!(600),
            "storeExternalId: must be text",
        ),
        ("/items/0/sku", json!(1), "items[0].sku: must be text"),
        (
            "/contact/matchKey",
            json!(12345),
            "contact.matchKey: must be text",
        ),
        (
            "/contact/matchKeyType",
            json!(true),
            "contact.matchKeyType: must be text",
        ),
    ];
    for (pointer, value, needle) in cases {
        let mut r = base.clone();
        *r.pointer_mut(pointer).expect(pointer) = value;
        refused(&ws, &["receipt", "add"], &r.to_string(), &[needle]);
    }
    // Contact data, in a receipt or at registration: keys and names are text.
    let mut r = base.clone();
    r["contact"] = json!({"mobilePhone": 46701234567_u64});
    refused(
        &ws,
        &["receipt", "add"],
        &r.to_string(),
        &["mobilePhone: must be text"],
    );
    for (doc, needle) in [
        (
            json!({"memberNumber": 1234567}),
            "memberNumber: must be text",
        ),
        (
            json!({"email": "t1@example.com", "firstName": {"given": "A"}}),
            "firstName: must be text",
        ),
        (json!({"email": ["t2@example.com"]}), "email: must be text"),
    ] {
        refused(
            &ws,
            &["contact", "add", "--from", "-"],
            &doc.to_string(),
            &[needle],
        );
    }
}

/// Input for [`run_measured`], written piece by piece so that the test itself never holds it
/// (a child's peak RSS as the kernel reports it includes what it was forked from): `head`,
/// then `body` `times` times, then `tail`.
#[cfg(target_os = "linux")]
struct Stream {
    head: String,
    body: String,
    times: usize,
    tail: String,
}

/// Runs `args` with `input` written from a thread (the binary may stop reading early); returns
/// the exit code, stderr and peak RSS in KiB (from `wait4`).
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's Child does not know about
fn run_measured(ws: &Workspace, args: &[&str], input: Stream) -> (Option<i32>, String, u64) {
    let stderr = tempfile::NamedTempFile::new().expect("temp");
    let mut cmd: Command = ws.std_cmd();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr.reopen().expect("reopen"));
    let mut child = cmd.spawn().expect("spawn");
    let mut pipe = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // A broken pipe is expected: the binary refuses before reading everything.
        let _ = (|| -> std::io::Result<()> {
            pipe.write_all(input.head.as_bytes())?;
            for _ in 0..input.times {
                pipe.write_all(input.body.as_bytes())?;
            }
            pipe.write_all(input.tail.as_bytes())
        })();
    });
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 reaps our own child by pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain FFI call with valid pointers.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    writer.join().expect("writer");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let err = std::fs::read_to_string(stderr.path()).expect("stderr");
    (code, err, usage.ru_maxrss as u64)
}

#[cfg(target_os = "linux")]
#[test]
fn a_50_mb_receipt_is_refused_while_reading_in_bounded_memory() {
    let ws = seeded();
    let before = snapshot(&ws);
    let small = Stream {
        head: good_receipt("SMALL-1").to_string(),
        body: String::new(),
        times: 0,
        tail: String::new(),
    };
    let (code, err, small_kib) = run_measured(&ws, &["receipt", "add", "--dry-run"], small);
    assert_eq!(code, Some(0), "{err}");
    // 50 MB in one string, and 50 MB of items: both refused once the first MiB is read.
    let text = good_receipt("BIG-1").to_string();
    let (head, tail) = text.split_at(text.find("Socks").expect("name"));
    let item = good_receipt("x")["items"][0].to_string();
    let big = [
        (
            Stream {
                head: head.to_string(),
                body: "x".repeat(1 << 20),
                times: 50,
                tail: tail.to_string(),
            },
            "item 1 of stdin is larger than 1048576 bytes (1 MiB)",
        ),
        // The list's limit comes first.
        (
            Stream {
                head: "{\"uniqueReceiptId\":\"BIG-2\",\"items\":[".to_string(),
                body: format!("{item},"),
                times: (50 << 20) / item.len(),
                tail: format!("{item}]}}"),
            },
            "items: the list has more than 1000 elements",
        ),
    ];
    for (input, needle) in big {
        let (code, err, peak_kib) = run_measured(&ws, &["receipt", "add"], input);
        println!(
            "50 MB receipt: exit {code:?}, peak RSS {peak_kib} KiB (a small one: {small_kib} KiB)"
        );
        assert_eq!(code, Some(65), "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
        assert!(
            peak_kib < small_kib + 16 * 1024,
            "peak RSS {peak_kib} KiB, a small receipt {small_kib} KiB"
        );
        assert_eq!(snapshot(&ws), before, "nothing stored");
    }
}

#[test]
fn strings_keys_and_lists_past_their_limits_are_refused() {
    let ws = seeded();
    let base = good_receipt("L-1");
    let long = |n: usize| "7".repeat(n);
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "/uniqueReceiptId",
            json!(long(1_000_000)),
            "uniqueReceiptId: the text is longer than 4096 characters".into(),
        ),
        (
            "/uniqueReceiptId",
            json!(long(101)),
            "uniqueReceiptId: is longer than 100 characters".into(),
        ),
        (
            "/contact/matchKey",
            json!(long(101)),
            "contact.matchKey: is longer than 100 characters".into(),
        ),
        (
            "/items/0/articleName",
            json!(long(257)),
            "items[0].articleName: is longer than 256 characters".into(),
        ),
        (
            "/items",
            Value::Array(vec![base["items"][0].clone(); 1001]),
            "items: the list has more than 1000 elements".into(),
        ),
    ];
    for (pointer, value, needle) in cases {
        let mut r = base.clone();
        *r.pointer_mut(pointer).expect(pointer) = value;
        refused(&ws, &["receipt", "add"], &r.to_string(), &[&needle]);
    }
    let mut r = base.clone();
    r[long(129)] = json!(1);
    refused(
        &ws,
        &["receipt", "add"],
        &r.to_string(),
        &["is longer than 128 characters, the limit for a field name"],
    );
    // At the limits, a receipt is taken.
    let mut r = good_receipt(&long(100));
    r["items"] = Value::Array(vec![base["items"][0].clone(); 1000]);
    r["items"][0]["articleName"] = json!(long(256));
    let out = ws
        .cmd()
        .args(["receipt", "add"])
        .write_stdin(r.to_string())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    // Contact fields, from flags as from JSON.
    let name = long(257);
    for args in [
        vec![
            "contact",
            "add",
            "--email",
            "l1@example.com",
            "--first-name",
            &name,
        ],
        vec![
            "contact",
            "add",
            "--mobile",
            "0701234599",
            "--member-number",
            &name[..101],
        ],
    ] {
        refused(&ws, &args, "", &["is longer than"]);
    }
    let city = format!("city={}", long(4097));
    refused(
        &ws,
        &[
            "contact",
            "add",
            "--email",
            "l2@example.com",
            "--field",
            &city,
        ],
        "",
        &["city: is longer than 4096 characters"],
    );
}

#[test]
fn a_field_given_twice_on_the_command_line_is_a_conflict() {
    let ws = seeded();
    let add = ["contact", "add"];
    let cases: Vec<(Vec<&str>, &str, [&str; 2])> = vec![
        (
            vec![
                "--email",
                "c1@example.com",
                "--field",
                "email=c2@example.com",
            ],
            "",
            ["--email", "--field email=…"],
        ),
        (
            vec![
                "--field",
                "Email=c2@example.com",
                "--email",
                "c1@example.com",
            ],
            "",
            ["--email", "--field Email=…"],
        ),
        (
            vec![
                "--mobile",
                "0701234560",
                "--field",
                "mobilePhone=0701234561",
            ],
            "",
            ["--mobile", "--field mobilePhone=…"],
        ),
        (
            vec![
                "--email",
                "c3@example.com",
                "--first-name",
                "A",
                "--field",
                "firstName=B",
            ],
            "",
            ["--first-name", "--field firstName=…"],
        ),
        (
            vec![
                "--ssn",
                "198001011234",
                "--field",
                "socialSecurityNumber=198001011235",
            ],
            "",
            ["--ssn", "--field socialSecurityNumber=…"],
        ),
        (
            vec![
                "--email",
                "c4@example.com",
                "--field",
                "city=A",
                "--field",
                "city=B",
            ],
            "",
            ["--field city=…", "both give the field city"],
        ),
        (
            vec![
                "--email",
                "c5@example.com",
                "--field",
                "city=A",
                "--field",
                "city=A",
            ],
            "",
            ["--field city=…", "both give the field city"],
        ),
        (
            vec!["--from", "-", "--email", "c6@example.com"],
            "{\"email\":\"c7@example.com\"}",
            ["--from - (stdin) (\"email\")", "--email"],
        ),
        (
            vec!["--from", "-", "--contact-type", "Member"],
            "{\"email\":\"c8@example.com\",\"contactType\":\"Member\"}",
            ["(\"contactType\")", "--contact-type"],
        ),
    ];
    for (flags, stdin, needles) in cases {
        let args: Vec<&str> = add.iter().copied().chain(flags).collect();
        refused(&ws, &args, stdin, &needles);
    }
    let update = ["contact", "update", "--email", "till@example.com"];
    for (flags, stdin, needles) in [
        (
            vec![
                "--new-email",
                "u1@example.com",
                "--field",
                "email=u2@example.com",
            ],
            "",
            ["--new-email", "--field email=…"],
        ),
        (
            vec!["--from", "-", "--last-name", "B"],
            "{\"lastName\":\"A\"}",
            ["(\"lastName\")", "--last-name"],
        ),
    ] {
        let args: Vec<&str> = update.iter().copied().chain(flags).collect();
        refused(&ws, &args, stdin, &needles);
    }
}

#[test]
fn a_duplicate_inside_one_batch_is_named_by_position_and_masked_key() {
    let ws = seeded();
    let batch = json!([
        {"email": "first@example.com"},
        {"email": "second@example.com", "mobilePhone": "0701234501"},
        {"email": "third@example.com"},
        {"email": "other@example.com", "mobilePhone": "+46 70 123 45 01"}
    ]);
    let err = refused(
        &ws,
        &["contact", "add", "--from", "-"],
        &batch.to_string(),
        &[
            "contact #4 has the same mobilePhone +4670*****01 as contact #2 of this input",
            "Nothing from this input was registered",
        ],
    );
    assert!(
        !err.contains("second@") && !err.contains("0701234501"),
        "{err}"
    );
    // No local key is named: the ones this input took were rolled back, and the next run
    // gives them to other people.
    let out = ws
        .cmd()
        .args([
            "--json",
            "contact",
            "add",
            "--email",
            "someone.else@example.com",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let added: Value = serde_json::from_str(&stdout_of(&out)).expect("json");
    let next_key = added["contacts"][0]["local_key"].as_str().expect("key");
    assert!(!err.contains(next_key), "{next_key} named in: {err}");
    assert!(!err.contains("--local-key"), "{err}");

    // The same e-mail address in another spelling is the same customer.
    refused(
        &ws,
        &["contact", "add", "--from", "-"],
        "{\"email\":\"x1@example.com\"}\n{\"email\":\" X1@Example.COM \"}\n",
        &["contact #2 has the same email x***@example.com as contact #1 of this input"],
    );
    // A key the replica already had is still named as the contact that has it.
    refused(
        &ws,
        &["contact", "add", "--from", "-"],
        "[{\"email\":\"x2@example.com\"},{\"email\":\"till@example.com\"}]",
        &["contact #2: refused: the replica already has a contact with email t***@example.com"],
    );
    // Receipts: the same id with different content in one input.
    let mut second = good_receipt("B-1");
    second["totalGrossPrice"] = json!(100.0);
    let stdin = format!("[{},{},{second}]", good_receipt("B-1"), good_receipt("B-2"));
    refused(
        &ws,
        &["receipt", "add"],
        &stdin,
        &["receipt #3 has the uniqueReceiptId B-1 of receipt #1 of this input"],
    );
}

/// `delta` on one export file: exit 65, quarantined, and the error located and saying `needle`.
fn quarantined(ws: &Workspace, name: &str, xml: &str, needles: &[&str]) {
    let before = ws.contacts();
    let path = ws.write_export(name, xml);
    let out = ws.cmd().arg("delta").arg(&path).output().expect("runs");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(65), "{name}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{name}: {needle:?} in {err}");
    }
    assert!(err.contains("quarantine"), "{err}");
    assert!(!path.exists(), "moved out of the inbox");
    assert!(ws.quarantined().contains(&name.to_string()), "{err}");
    assert_eq!(ws.contacts(), before, "{name}: replica unchanged");
}

#[test]
fn an_export_member_giving_a_field_twice_is_malformed() {
    let ws = Workspace::new();
    let good = ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    assert!(ws
        .cmd()
        .arg("delta")
        .arg(&good)
        .output()
        .expect("runs")
        .status
        .success());
    let (a, b) = (guid(5), guid(6));
    let doc = |section: &str, member: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<contacts xmlns=\"{NS}\">\n<{section}>\n\
             {member}\n</{section}>\n</contacts>\n"
        )
    };
    let cases = [
        (
            doc("new", &format!("<member>\n  <contactId>{a}</contactId>\n  <contactId>{b}</contactId>\n</member>")),
            "6:3:",
            "it has two contactId elements",
        ),
        (
            doc("deleted", &format!("<member contactId=\"{a}\">\n  <contactId>{b}</contactId>\n</member>")),
            "5:3:",
            "contactId element and contactId attribute disagree",
        ),
        (
            doc("updated", &format!("<member contactId=\"{a}\">\n <email>p@example.com</email>\n <email>q@example.com</email>\n</member>")),
            "6:2:",
            "it gives email twice, with different values",
        ),
        (
            doc("new", &format!("<member contactId=\"{a}\" memberNumber=\"11\">\n  <memberNumber>12</memberNumber>\n</member>")),
            "5:3:",
            "it gives memberNumber twice",
        ),
        (
            format!(
                "<contacts xmlns=\"{NS}\" xmlns:o=\"urn:pos:members\">\n<new>\n\
                 <member contactId=\"{a}\"/>\n  <o:member contactId=\"{b}\"/>\n</new>\n</contacts>\n"
            ),
            "4:3:",
            "<member> is in namespace \"urn:pos:members\", not the export's \"http://eClub.Schemas.ExportMember\"",
        ),
    ];
    for (i, (xml, at, needle)) in cases.iter().enumerate() {
        let name = format!("20260201100000_{i}_c.xml");
        quarantined(&ws, &name, xml, &[&format!("{name}:{at}"), needle]);
    }
}

/// `full --from-xml` given a folder with no export file in it is refused (exit 64), not read
/// as "no --from-xml" and turned into a build from Engage's API: the fake Engage the config
/// names sees no request, and no replica, build or lock file appears.
#[test]
fn full_from_an_empty_export_folder_is_refused_not_built_from_the_api() {
    let fake = fake_engage::FakeEngage::start(fake_engage::FakeConfig::default());
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        format!("[engage]\nbase_url = \"{}\"\n", fake.base_url()),
    )
    .expect("config");
    let empty = ws.path().join("empty-export");
    std::fs::create_dir(&empty).expect("folder");
    std::fs::write(empty.join("README.txt"), "not an export file").expect("other file");
    let before: Vec<_> = std::fs::read_dir(ws.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let out = ws
        .cmd()
        .env("ENGAGE_API_KEY", fake.api_key())
        .args(["full", "--from-xml"])
        .arg(&empty)
        .output()
        .expect("runs");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("no export files"), "{err}");
    assert!(err.contains(&empty.display().to_string()), "{err}");
    assert!(
        fake.requests().is_empty(),
        "asked Engage: {:?}",
        fake.requests().len()
    );
    let after: Vec<_> = std::fs::read_dir(ws.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(after, before, "files appeared: {err}");
    // A dry run says the same, not "give --from-xml PATH".
    let out = ws
        .cmd()
        .args(["full", "--dry-run", "--from-xml"])
        .arg(&empty)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr_of(&out).contains("no export files"),
        "{}",
        stderr_of(&out)
    );
}
