//! `delta` end to end: the real binary on real files and a real SQLite replica.

use crate::common;

use common::*;
use serde_json::Value;

fn run_delta(ws: &Workspace, paths: &[&std::path::Path]) -> std::process::Output {
    let mut cmd = ws.cmd();
    cmd.arg("delta");
    for p in paths {
        cmd.arg(p);
    }
    cmd.output().expect("runs")
}

/// Three files: creates, then updates and a delete, in two exports.
fn three_files(ws: &Workspace) -> Vec<std::path::PathBuf> {
    vec![
        ws.write_export(
            "20260101100000_0_customers.xml",
            &export(&[member(1, "a"), member(2, "a")], &[], &[]),
        ),
        ws.write_export(
            "20260101100000_1_customers.xml",
            &export(&[member(3, "a")], &[], &[]),
        ),
        ws.write_export(
            "20260102100000_0_customers.xml",
            &export(&[member(4, "b")], &[member(1, "b")], &[deleted(2)]),
        ),
    ]
}

#[test]
fn new_updated_deleted_across_files() {
    let ws = Workspace::new();
    three_files(&ws);
    let out = ws
        .cmd()
        .args(["delta", "inbox", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(summary["files_applied"], 3);
    assert_eq!(summary["inserted"], 4);
    assert_eq!(summary["updated"], 1);
    assert_eq!(summary["deleted"], 1);
    let contacts = ws.contacts();
    let ids: Vec<_> = contacts.iter().map(|c| c[0].clone().expect("id")).collect();
    assert_eq!(ids, vec![guid(1), guid(3), guid(4)]);
    assert_eq!(contacts[0][8].as_deref(), Some("Åsab"), "update applied");
    assert_eq!(
        contacts[0][3].as_deref(),
        Some("user1@example.com"),
        "email normalised"
    );
    assert_eq!(ws.count("SELECT count(*) FROM tombstone"), 1);
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 3);
    assert_no_personal_bytes_of_deleted(&ws, 2, 3);
}

/// Contact `n`'s personal values from `member(n, _)` that no other contact shares, as
/// imported and as normalised (the member number `M{n}` is too short to look for in bytes).
fn personal_values(n: u32) -> Vec<String> {
    vec![
        format!("Öberg{n}"),
        format!("User{n}@Example.com"),
        format!("user{n}@example.com"),
        format!("+4670{n:07}"),
    ]
}

/// The deleted contact `gone` left no byte of its personal data in the replica or its WAL
/// (its tombstone keeps the id only), while the live contact `kept` is found by the same scan.
fn assert_no_personal_bytes_of_deleted(ws: &Workspace, gone: u32, kept: u32) {
    let tombstones: Vec<String> = ws
        .replica_conn()
        .prepare("SELECT contact_id FROM tombstone")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(tombstones, vec![guid(gone)]);
    let gone_values = personal_values(gone);
    let gone_values: Vec<&str> = gone_values.iter().map(String::as_str).collect();
    let left = sqlite_bytes_holding(&ws.db(), &gone_values);
    assert!(
        left.is_empty(),
        "deleted contact's data in the replica: {left:?}"
    );
    let kept_values = [format!("Öberg{kept}"), format!("user{kept}@example.com")];
    let kept_values: Vec<&str> = kept_values.iter().map(String::as_str).collect();
    assert_eq!(
        sqlite_bytes_holding(&ws.db(), &kept_values),
        kept_values,
        "the scan finds a live contact's data"
    );
}

#[test]
fn a_delete_in_a_later_run_leaves_no_personal_bytes() {
    let ws = Workspace::new();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(5, "a"), member(6, "a")], &[], &[]),
    );
    let out = run_delta(&ws, &[&ws.inbox()]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let values = personal_values(5);
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    assert!(
        !sqlite_bytes_holding(&ws.db(), &values).is_empty(),
        "the contact was stored before its delete"
    );
    ws.write_export("20260102100000_0_c.xml", &export(&[], &[], &[deleted(5)]));
    let out = run_delta(&ws, &[&ws.inbox()]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_no_personal_bytes_of_deleted(&ws, 5, 6);
}

#[test]
fn out_of_order_and_repeated_delivery_converge() {
    let in_order = Workspace::new();
    let files = three_files(&in_order);
    assert!(run_delta(&in_order, &[&files[0], &files[1], &files[2]])
        .status
        .success());

    let shuffled = Workspace::new();
    let files = three_files(&shuffled);
    for f in [&files[2], &files[0], &files[2], &files[1], &files[0]] {
        let out = run_delta(&shuffled, &[f]);
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    assert_eq!(in_order.contacts(), shuffled.contacts());
    assert_eq!(shuffled.count("SELECT count(*) FROM applied_file"), 3);
}

#[test]
fn an_older_file_does_not_resurrect_a_deleted_contact() {
    let ws = Workspace::new();
    let old = ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(7, "old")], &[], &[]),
    );
    let del = ws.write_export("20260105100000_0_c.xml", &export(&[], &[], &[deleted(7)]));
    assert!(run_delta(&ws, &[&del]).status.success());
    let out = ws
        .cmd()
        .args(["delta", "--json"])
        .arg(&old)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["stale"], 1);
    assert!(ws.contacts().is_empty());
    // A newer file brings it back (Engage restored it) and drops the tombstone.
    let newer = ws.write_export(
        "20260106100000_0_c.xml",
        &export(&[], &[member(7, "new")], &[]),
    );
    assert!(run_delta(&ws, &[&newer]).status.success());
    assert_eq!(ws.contacts().len(), 1);
    assert_eq!(ws.count("SELECT count(*) FROM tombstone"), 0);
}

#[test]
fn the_later_entry_in_one_file_wins() {
    let ws = Workspace::new();
    let f = ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "first")], &[member(1, "second")], &[]),
    );
    assert!(run_delta(&ws, &[&f]).status.success());
    assert_eq!(ws.contacts()[0][8].as_deref(), Some("Åsasecond"));
    let g = ws.write_export(
        "20260102100000_0_c.xml",
        &export(&[member(2, "x")], &[], &[deleted(2)]),
    );
    assert!(run_delta(&ws, &[&g]).status.success());
    assert_eq!(
        ws.contacts().len(),
        1,
        "delete after create in the same file wins"
    );
}

#[test]
fn same_name_with_other_content_is_refused_and_changes_nothing() {
    let ws = Workspace::new();
    let f = ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    assert!(run_delta(&ws, &[&f]).status.success());
    let before = ws.contacts();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "changed")], &[], &[]),
    );
    let out = run_delta(&ws, &[&f]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("different content"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(ws.contacts(), before);
    assert_eq!(ws.quarantined(), vec!["20260101100000_0_c.xml"]);
}

#[test]
fn dry_run_reports_per_contact_and_writes_nothing() {
    let ws = Workspace::new();
    let files = three_files(&ws);
    let out = ws
        .cmd()
        .args(["delta", "--dry-run", "inbox"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(
        text.contains(&format!("would insert {}", guid(1))),
        "{text}"
    );
    assert!(
        text.contains(&format!("would update {}", guid(1))),
        "{text}"
    );
    assert!(
        text.contains(&format!("would delete {}", guid(2))),
        "{text}"
    );
    assert!(text.contains("dry run, nothing written"), "{text}");
    assert!(ws.contacts().is_empty());
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 0);
    assert_eq!(ws.count("SELECT count(*) FROM run"), 0);
    assert!(files.iter().all(|f| f.exists()));
}

#[test]
fn archive_moves_applied_files_and_default_inbox_comes_from_config() {
    let ws = Workspace::new();
    three_files(&ws);
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "inbox = \"inbox\"\narchive = \"archive\"\n",
    )
    .expect("config");
    let out = ws.cmd().arg("delta").output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(std::fs::read_dir(ws.inbox()).expect("inbox").count(), 0);
    assert_eq!(
        std::fs::read_dir(ws.path().join("archive"))
            .expect("archive")
            .count(),
        3
    );
    assert_eq!(ws.contacts().len(), 3);
}

#[test]
fn a_gap_in_file_numbers_is_warned_about() {
    let ws = Workspace::new();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    ws.write_export(
        "20260101100000_2_c.xml",
        &export(&[member(2, "a")], &[], &[]),
    );
    let out = ws
        .cmd()
        .args(["delta", "inbox", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    let warnings = summary["warnings"].to_string();
    assert!(
        warnings.contains("20260101100000: file number(s) 1 missing"),
        "{warnings}"
    );
    assert!(stderr_of(&out).contains("missing"), "warning logged too");
}

#[test]
fn keep_going_applies_the_good_files_and_still_fails() {
    let ws = Workspace::new();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    ws.write_export(
        "20260101100000_1_c.xml",
        "<contacts xmlns=\"http://eClub.Schemas.ExportMember\"><new>",
    );
    ws.write_export(
        "20260101100000_2_c.xml",
        &export(&[member(3, "a")], &[], &[]),
    );
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(ws.contacts().len(), 1, "stops at the first bad file");
    assert!(
        stdout_of(&out).contains("1 not tried"),
        "{}",
        stdout_of(&out)
    );

    let ws = Workspace::new();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    ws.write_export(
        "20260101100000_1_c.xml",
        "<contacts xmlns=\"http://eClub.Schemas.ExportMember\"><new>",
    );
    ws.write_export(
        "20260101100000_2_c.xml",
        &export(&[member(3, "a")], &[], &[]),
    );
    let out = ws
        .cmd()
        .args(["delta", "inbox", "--keep-going"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(ws.contacts().len(), 2, "the good files are applied");
    assert!(
        stderr_of(&out).contains("1 of 3 files failed"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(ws.quarantined(), vec!["20260101100000_1_c.xml"]);
}

#[test]
fn run_log_records_success_and_failure() {
    let ws = Workspace::new();
    let good = ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    assert!(run_delta(&ws, &[&good]).status.success());
    let bad = ws.write_export("20260102100000_0_c.xml", "not xml");
    assert_eq!(run_delta(&ws, &[&bad]).status.code(), Some(65));
    let conn = ws.conn();
    let rows: Vec<(String, i64, Option<String>)> = conn
        .prepare("SELECT outcome, exit_code, error FROM run ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("ok", 0));
    assert_eq!((rows[1].0.as_str(), rows[1].1), ("failed", 65));
    assert!(rows[1]
        .2
        .as_deref()
        .unwrap_or("")
        .contains("20260102100000_0_c.xml"));
}

/// Archived and quarantined export files hold personal data: the folders engage-sync creates
/// for them are the owner's alone (0700), whatever the umask.
#[test]
fn archive_and_quarantine_folders_are_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    three_files(&ws);
    ws.write_export("20260101100000_7_bad.xml", "<contacts><new>");
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "inbox = \"inbox\"\narchive = \"data/archive\"\nquarantine = \"data/quarantine\"\n",
    )
    .expect("config");
    let out = ws
        .cmd()
        .arg("delta")
        .arg("--keep-going")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    for dir in ["data/archive", "data/quarantine"] {
        let path = ws.path().join(dir);
        let entries = std::fs::read_dir(&path).expect(dir).count();
        assert!(entries > 0, "{dir} holds the files");
        let mode = std::fs::metadata(&path).expect(dir).permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{dir}: {mode:o}");
    }
}
