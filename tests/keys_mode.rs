//! Keys-only mode stores no names or other personal fields: checked in the database file's
//! bytes, not just the view.

use crate::common;

use common::*;

#[test]
fn keys_mode_keeps_no_personal_fields_in_the_file() {
    let ws = Workspace::new();
    let out = ws
        .cmd()
        .args(["init", "--mode", "keys"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let content = format!(
        "<contacts xmlns=\"{NS}\"><new><member source=\"POS\"><contactId>{}</contactId>\
         <memberNumber>M1</memberNumber><firstName>Zebulon</firstName><lastName>Quixotic</lastName>\
         <street>Xylophone Street 9</street><email>a@example.com</email></member></new></contacts>",
        guid(1)
    );
    let f = ws.write_export("20260101100000_0_c.xml", &content);
    let out = ws.cmd().arg("delta").arg(&f).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let row = &ws.contacts()[0];
    assert_eq!(row[2].as_deref(), Some("M1"));
    assert_eq!(row[3].as_deref(), Some("a@example.com"));
    assert_eq!(row[8], None);
    assert_eq!(row[10], None, "no attributes JSON");
    // Raw bytes of the database and any WAL: the names never reached the file.
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", ws.db().display());
        if let Ok(bytes) = std::fs::read(&path) {
            for secret in ["Zebulon", "Quixotic", "Xylophone"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} found in {path}"
                );
            }
        }
    }
}

#[test]
fn the_mode_cannot_change_silently() {
    let ws = Workspace::new();
    assert!(ws
        .cmd()
        .args(["init", "--mode", "keys"])
        .output()
        .expect("runs")
        .status
        .success());
    let out = ws
        .cmd()
        .args(["init", "--mode", "full"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr_of(&out).contains("keys mode"), "{}", stderr_of(&out));
    // Without an explicit mode the replica keeps its own.
    let out = ws.cmd().args(["init", "--json"]).output().expect("runs");
    assert!(out.status.success());
    assert!(stdout_of(&out).contains("\"keys\""), "{}", stdout_of(&out));
}

#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    assert!(ws
        .cmd()
        .arg("init")
        .output()
        .expect("runs")
        .status
        .success());
    let mode = std::fs::metadata(ws.db()).expect("db").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let journal: String = ws
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(journal, "wal");
}

/// `email, first_name, last_name, attributes` of a till store contact row.
type TillRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Keys-only holds for what the till writes too: a contact registered at the till and an
/// Engage contact changed at the till keep their keys only in the till store's contact rows
/// and in what readers see (the outbox keeps the fields Engage must be sent until purge).
#[test]
fn keys_mode_keeps_no_personal_fields_of_the_tills_contacts() {
    let ws = Workspace::new();
    let out = ws
        .cmd()
        .args(["init", "--mode", "keys"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    for args in [
        vec![
            "contact",
            "add",
            "--email",
            "walkin@example.com",
            "--first-name",
            "Zorro",
        ],
        vec![
            "contact",
            "update",
            "--contact-id",
            &guid(1),
            "--last-name",
            "Quasimodo",
        ],
    ] {
        let out = ws.cmd().args(&args).output().expect("runs");
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    }
    let till = ws.till_conn();
    let rows: Vec<TillRow> = till
        .prepare("SELECT email, first_name, last_name, attributes FROM till_contact ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        rows,
        vec![
            (Some("walkin@example.com".into()), None, None, None),
            (Some("user1@example.com".into()), None, None, None),
        ]
    );
    for row in ws.contacts() {
        assert_eq!(
            (&row[8], &row[9], &row[10]),
            (&None, &None, &None),
            "{row:?}"
        );
    }
}
