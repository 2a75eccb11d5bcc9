//! `status` and `status --check` for fresh, stale and never-synced replicas.

use crate::common;

use common::*;
use serde_json::Value;

#[test]
fn check_is_ok_when_fresh_and_75_when_stale() {
    let ws = Workspace::new();
    assert!(ws
        .cmd()
        .arg("init")
        .output()
        .expect("runs")
        .status
        .success());
    let out = ws.cmd().args(["status", "--check"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(75), "never synced");
    assert!(
        stdout_of(&out).starts_with("STALE: no successful sync yet"),
        "{}",
        stdout_of(&out)
    );

    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
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
        .args(["status", "--check", "--max-age", "1h"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stdout_of(&out));
    assert!(stdout_of(&out).starts_with("OK: last successful delta"));

    // Age the last success by three hours, then fail a run: stale, and the reason says why.
    ws.conn()
        .execute(
            "UPDATE run SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3 hours')",
            [],
        )
        .expect("age");
    ws.write_export("20260102100000_0_c.xml", "garbage");
    assert_eq!(
        ws.cmd()
            .args(["delta", "inbox"])
            .output()
            .expect("runs")
            .status
            .code(),
        Some(65)
    );
    let out = ws
        .cmd()
        .args(["status", "--check", "--max-age", "2h"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(75));
    let line = stdout_of(&out);
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(line.contains("STALE: last successful delta 3h"), "{line}");
    assert!(line.contains("last failure: delta"), "{line}");
    assert!(line.contains("20260102100000_0_c.xml"), "{line}");
}

#[test]
fn status_reports_counts_files_gaps_and_quarantine() {
    let ws = Workspace::new();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    ws.write_export(
        "20260101100000_2_c.xml",
        &export(&[member(2, "a")], &[], &[deleted(1)]),
    );
    ws.write_export("20260101100000_3_c.xml", "<oops/>");
    let _ = ws
        .cmd()
        .args(["delta", "inbox", "--keep-going"])
        .output()
        .expect("runs");
    let out = ws.cmd().args(["status", "--json"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["mode"], "full");
    assert_eq!(v["contacts"], 1);
    assert_eq!(v["tombstones"], 1);
    assert_eq!(v["applied_files"], 2);
    assert_eq!(v["gaps"][0]["missing_file_numbers"], serde_json::json!([1]));
    assert_eq!(v["quarantined"][0]["name"], "20260101100000_3_c.xml");
    assert_eq!(v["last_failure"]["command"], "delta");
    let out = ws.cmd().arg("status").output().expect("runs");
    let text = stdout_of(&out);
    assert!(text.contains("gap:"), "{text}");
    assert!(text.contains("quarantined:"), "{text}");
}

#[test]
fn status_without_a_replica_is_a_config_error() {
    let ws = Workspace::new();
    let out = ws.cmd().arg("status").output().expect("runs");
    assert_eq!(out.status.code(), Some(78));
}
