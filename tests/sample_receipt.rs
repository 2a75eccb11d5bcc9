//! `fixtures/receipt.json`, the sample the README's outbox section points to, is a receipt
//! `receipt add` accepts, for the member the bundled export files hold.

use crate::common;

use std::path::PathBuf;

use common::*;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn the_sample_receipt_is_accepted_and_buffered_once() {
    let ws = Workspace::new();
    let out = ws
        .cmd()
        .args(["-q", "delta"])
        .arg(fixture("fixtures/exports"))
        .output()
        .expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let sample: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("fixtures/receipt.json")).expect("read"))
            .expect("the sample is JSON");
    let id = sample["uniqueReceiptId"].as_str().expect("uniqueReceiptId");
    let add = |extra: &[&str]| {
        let out = ws
            .cmd()
            .args(["--json", "receipt", "add"])
            .args(extra)
            .arg(fixture("fixtures/receipt.json"))
            .output()
            .expect("receipt add");
        assert!(out.status.success(), "{}", stderr_of(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(doc["receipts"][0]["unique_receipt_id"], id, "{doc}");
        doc
    };
    add(&["--dry-run"]);
    assert_eq!(
        ws.count("SELECT count(*) FROM receipt_outbox"),
        0,
        "dry run"
    );
    assert_eq!(add(&[])["buffered"], 1);
    assert_eq!(add(&[])["already_buffered"], 1, "idempotent");
    let (ref_type, ref_value): (String, String) = ws
        .conn()
        .query_row("SELECT ref_type, ref_value FROM receipt_outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("buffered receipt");
    assert_eq!(
        ref_type,
        sample["contact"]["matchKeyType"].as_str().unwrap()
    );
    assert_eq!(ref_value, sample["contact"]["matchKey"].as_str().unwrap());
    // The member it names is in the bundled export files (the quick start's member).
    let members: i64 = ws
        .conn()
        .query_row(
            "SELECT count(*) FROM contacts WHERE mobile_phone = ?1",
            [&ref_value],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(members, 1, "{ref_value}");
}
