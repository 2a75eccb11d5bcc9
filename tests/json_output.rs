//! `--json` is a versioned interface (docs/json.md): every command's document is snapshot
//! here, driven through the real binary on the bundled fixtures (and the fake Engage for the
//! API commands). A field that disappears, is renamed or changes type fails its snapshot;
//! volatile values (times, durations, paths, run ids, ids the fake makes up) are redacted by
//! insta's selectors, never removed from the output. `docs_name_every_key_of_every_snapshot`
//! keeps docs/json.md from going stale. After an intended change: `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test --test integration json_output::`), then update docs/json.md.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{TimeDelta, Utc};
use common::*;
use fake_engage::{FakeConfig, FakeEngage};
use insta::{assert_json_snapshot, dynamic_redaction};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Runs `--json ARGS` and returns the one document on stdout; `code` is the expected exit.
fn json(ws: &Workspace, args: &[&str], code: i32) -> Value {
    json_of(
        ws.cmd().arg("--json").args(args).output().expect("runs"),
        code,
    )
}

fn json_of(out: Output, code: i32) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", stderr_of(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", stdout_of(&out)))
}

/// A workspace with the replica made by `init` and the fixtures' export files imported.
fn imported() -> Workspace {
    let ws = Workspace::new();
    ws.init();
    let exports = fixtures().join("exports");
    let out = ws
        .cmd()
        .args(["-q", "delta"])
        .arg(&exports)
        .output()
        .expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    ws
}

/// A redaction replacing the workspace's folder in a path by `[ws]`, so paths keep their
/// shape (which file, in which folder) but not the temp folder's random name.
macro_rules! ws_path {
    ($ws:expr) => {{
        let root = $ws.path().display().to_string();
        dynamic_redaction(move |value, _| match value.as_str() {
            Some(s) => s.replace(&root, "[ws]").into(),
            None => value,
        })
    }};
}

#[test]
fn init() {
    let ws = Workspace::new();
    let doc = json(&ws, &["init"], 0);
    assert_json_snapshot!("init", doc, { ".db" => ws_path!(ws) });
}

#[test]
fn delta() {
    let ws = Workspace::new();
    ws.init();
    for f in std::fs::read_dir(fixtures().join("exports")).expect("fixtures") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, ws.inbox().join(f.file_name().expect("name"))).expect("copy");
    }
    let doc = json(&ws, &["delta", "--archive", "archive"], 0);
    assert_json_snapshot!("delta", doc, {
        ".elapsed_seconds" => "[seconds]",
        ".contacts_per_second" => "[rate]",
    });
    // A malformed file: the failure, where it was quarantined, and the file not tried.
    ws.write_export("20261103080000_0_customers.xml", "<contacts><new><member>");
    let doc = json(&ws, &["delta", "--keep-going"], 65);
    assert_json_snapshot!("delta_failed", doc, {
        ".elapsed_seconds" => "[seconds]",
        ".contacts_per_second" => "[rate]",
        ".failures[].quarantined_to" => ws_path!(ws),
        ".failures[].file" => ws_path!(ws),
    });
}

#[test]
fn full_from_xml() {
    let ws = imported();
    let doc = json_of(
        ws.cmd()
            .args(["--json", "full", "--from-xml"])
            .arg(fixtures().join("exports"))
            .output()
            .expect("runs"),
        0,
    );
    assert_json_snapshot!("full_from_xml", doc, {
        ".elapsed_seconds" => "[seconds]",
        ".contacts_per_second" => "[rate]",
        ".replica" => ws_path!(ws),
    });
}

#[test]
fn lookup() {
    let ws = imported();
    let doc = json(&ws, &["lookup", "--mobile", "070-123 45 67"], 0);
    assert_json_snapshot!("lookup_found", doc, { ".contact.updated_at" => "[time]" });
    let doc = json(&ws, &["lookup", "--email", "nobody@example.com"], 1);
    assert_json_snapshot!("lookup_not_found", doc);
}

#[test]
fn status() {
    let ws = imported();
    let mut add = ws.cmd();
    add.args(["-q", "contact", "add", "--email", "new@example.com"]);
    assert!(add.output().expect("runs").status.success());
    let times = insta::Settings::clone_current();
    let doc = json(&ws, &["status"], 0);
    let check = json(&ws, &["status", "--check", "--max-pending-age", "1h"], 0);
    times.bind(|| {
        let volatile = |name: &str, doc: &Value| {
            assert_json_snapshot!(name, doc, {
                ".db" => ws_path!(ws),
                ".till_store" => ws_path!(ws),
                ".**.started_at" => "[time]",
                ".**.finished_at" => "[time]",
                ".**.applied_at" => "[time]",
                ".**.queued_at" => "[time]",
                ".**.oldest_queued_at" => "[time]",
                ".outbox.oldest_undelivered_queued_at" => "[time]",
                ".last_sync_age_seconds" => "[seconds]",
                ".check.reason" => "[reason with ages]",
            });
        };
        volatile("status", &doc);
        volatile("status_check", &check);
    });
}

#[test]
fn purge() {
    let ws = imported();
    let doc = json(&ws, &["purge", "--older-than", "30d"], 0);
    assert_json_snapshot!("purge", doc, {
        ".cutoff" => "[time]",
        ".locations[].path" => ws_path!(ws),
    });
}

#[test]
fn publish() {
    let ws = imported();
    let to = ws.path().join("published");
    let to = to.to_str().expect("utf-8 path");
    let changes = json(&ws, &["publish", "--to", to], 0);
    let snapshot = json(
        &ws,
        &["publish", "--to", &format!("{to}-snapshot"), "--snapshot"],
        0,
    );
    let nothing = json(&ws, &["publish", "--to", to], 0);
    for (name, doc) in [
        ("publish", changes),
        ("publish_snapshot", snapshot),
        ("publish_nothing", nothing),
    ] {
        assert_json_snapshot!(name, doc, {
            ".stamp" => insta::dynamic_redaction(|value, _| match value.as_str() {
                Some(_) => "[stamp]".into(),
                None => value, // null: nothing was published
            }),
            ".files[]" => insta::dynamic_redaction(|value, _| {
                // STAMP_N_hub-dK.xml: the stamp is the run's time; the rest is content.
                let name = value.as_str().expect("a file name");
                format!("[stamp]{}", &name[14..])
            }),
            ".dir" => ws_path!(ws),
            ".elapsed_seconds" => "[seconds]",
        });
    }
}

#[test]
fn till_commands() {
    let ws = imported();
    let doc = json(
        &ws,
        &[
            "contact",
            "add",
            "--email",
            "Kim@Example.com",
            "--mobile",
            "070-999 88 77",
            "--first-name",
            "Kim",
        ],
        0,
    );
    assert_json_snapshot!("contact_add", doc);
    let doc = json(
        &ws,
        &[
            "contact",
            "update",
            "--email",
            "kim@example.com",
            "--last-name",
            "Berg",
        ],
        0,
    );
    assert_json_snapshot!("contact_update", doc);
    let receipt = fixtures().join("receipt.json");
    let receipt = receipt.to_str().expect("utf-8 path");
    let doc = json(&ws, &["receipt", "add", receipt], 0);
    assert_json_snapshot!("receipt_add", doc);
    let doc = json(&ws, &["push-local", "--dry-run"], 0);
    assert_json_snapshot!("push_local_dry_run", doc, { ".elapsed_seconds" => "[seconds]" });
}

#[test]
fn dry_runs() {
    let ws = Workspace::new();
    let doc = json(&ws, &["init", "--dry-run"], 0);
    assert_json_snapshot!("init_dry_run", doc, { ".db" => ws_path!(ws) });
    ws.init();
    let exports = fixtures().join("exports");
    let out = ws
        .cmd()
        .args(["--json", "delta", "--dry-run"])
        .arg(&exports)
        .output()
        .expect("runs");
    assert_json_snapshot!("delta_dry_run", json_of(out, 0), {
        ".elapsed_seconds" => "[seconds]",
        ".contacts_per_second" => "[rate]",
    });
    let out = ws
        .cmd()
        .args(["--json", "full", "--dry-run", "--from-xml"])
        .arg(&exports)
        .output()
        .expect("runs");
    assert_json_snapshot!("full_dry_run", json_of(out, 0), {
        ".elapsed_seconds" => "[seconds]",
        ".contacts_per_second" => "[rate]",
    });
}

/// Optional parts of the documents: a gap and a quarantined file in `status`, several
/// contacts under one key in `lookup`, a receipt that registers its customer.
#[test]
fn optional_parts() {
    let ws = imported();
    // Two contacts Engage holds with one e-mail address; file 1 of the set is missing.
    let same = |n: u32| {
        format!(
            "<member><contactId>{}</contactId><email>shared@example.com</email>\
             <firstName>Twin{n}</firstName></member>",
            guid(100 + n)
        )
    };
    ws.write_export(
        "20261201080000_0_customers.xml",
        &export(&[same(1), same(2)], &[], &[]),
    );
    ws.write_export("20261201080000_2_customers.xml", &export(&[], &[], &[]));
    ws.write_export("20261201080000_3_customers.xml", "<contacts>");
    let out = ws
        .cmd()
        .args(["-q", "delta", "--keep-going"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    let doc = json(&ws, &["lookup", "--email", "Shared@Example.com"], 0);
    assert_json_snapshot!("lookup_several", doc, {
        ".contact.updated_at" => "[time]",
        ".other_matches[].contact.updated_at" => "[time]",
    });
    let mut receipt = receipt(
        "0600-20261201-7",
        serde_json::json!({"email": "walkin@example.com", "firstName": "Walk"}),
    );
    receipt["storeExternalId"] = "0600".into();
    let path = ws.path().join("walkin.json");
    std::fs::write(&path, receipt.to_string()).expect("receipt");
    let doc = json(&ws, &["receipt", "add", path.to_str().expect("utf-8")], 0);
    assert_json_snapshot!("receipt_add_registers", doc);
    let doc = json(&ws, &["status"], 0);
    assert_json_snapshot!("status_gaps_quarantine", doc, {
        ".db" => ws_path!(ws),
        ".till_store" => ws_path!(ws),
        ".**.started_at" => "[time]",
        ".**.finished_at" => "[time]",
        ".**.applied_at" => "[time]",
        ".**.quarantined_at" => "[time]",
        ".**.oldest_queued_at" => "[time]",
        ".quarantined[].moved_to" => ws_path!(ws),
        ".outbox.oldest_undelivered_queued_at" => "[time]",
        ".last_sync_age_seconds" => "[seconds]",
        ".**.error" => ws_path!(ws),
    });
}

/// A workspace whose config points at `fake`, with test-sized waits, its replica made by
/// `init`.
fn workspace_for(fake: &FakeEngage) -> Workspace {
    Workspace::pointed_at(fake, FAKE_ENGAGE_WAITS, FAST_PUSH)
}

fn api_json(ws: &Workspace, fake: &FakeEngage, args: &[&str], code: i32) -> Value {
    let out = ws
        .engage_cmd(fake)
        .arg("--json")
        .args(args)
        .output()
        .expect("runs");
    json_of(out, code)
}

#[test]
fn api_commands() {
    let fake = FakeEngage::start(FakeConfig::default());
    fake.seed_contacts_spaced(
        3,
        Utc::now() - TimeDelta::hours(2),
        std::time::Duration::from_secs(60),
    );
    // The member the sample receipt is keyed to (by mobile phone).
    fake.add_contact(serde_json::json!({"mobilePhone": "+46701234567", "firstName": "Åsa"}));
    let ws = workspace_for(&fake);
    let doc = api_json(&ws, &fake, &["full"], 0);
    assert_json_snapshot!("full_from_api", doc, {
        ".elapsed_seconds" => "[seconds]",
        ".contacts_per_second" => "[rate]",
        ".replica" => ws_path!(ws),
    });
    fake.add_contact(serde_json::json!({"email": "new@example.com", "firstName": "Ny"}));
    let doc = api_json(&ws, &fake, &["changes", "--dry-run"], 0);
    assert_json_snapshot!("changes_dry_run", doc, {
        ".elapsed_seconds" => "[seconds]",
        ".from" => "[time]",
        ".to" => "[time]",
        // Fetched concurrently: applied in the order the answers came.
        ".actions" => insta::sorted_redaction(),
        ".actions[].contact_id" => "[engage id]",
    });
    let doc = api_json(&ws, &fake, &["changes"], 0);
    assert_json_snapshot!("changes", doc, {
        ".elapsed_seconds" => "[seconds]",
        ".from" => "[time]",
        ".to" => "[time]",
    });
    let mut add = ws.cmd();
    add.args(["-q", "contact", "add", "--email", "till@example.com"]);
    assert!(add.output().expect("runs").status.success());
    let receipt = fixtures().join("receipt.json");
    let receipt = receipt.to_str().expect("utf-8 path");
    assert!(ws
        .cmd()
        .args(["-q", "receipt", "add", receipt])
        .output()
        .expect("runs")
        .status
        .success());
    let doc = api_json(&ws, &fake, &["push-local"], 0);
    assert_json_snapshot!("push_local", doc, {
        ".elapsed_seconds" => "[seconds]",
    });
}

/// Every object key in `v`, at any depth, except inside a contact's `attributes` (Engage's
/// own attribute names: its data, not this interface).
fn keys(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                if k != "attributes" {
                    keys(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// The JSON body of a `.snap` file (after insta's header).
fn snapshot_body(text: &str) -> Value {
    let body = text
        .splitn(3, "---\n")
        .nth(2)
        .unwrap_or_else(|| panic!("no insta header in {text}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn docs_name_every_key_of_every_snapshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/json.md")).expect("docs/json.md");
    let mut snapshots = 0;
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("tests/snapshots")).expect("snapshots") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if !name.starts_with("integration__json_output__") || !name.ends_with(".snap") {
            continue;
        }
        snapshots += 1;
        let doc = snapshot_body(&std::fs::read_to_string(&path).expect("read"));
        assert_eq!(
            doc["schema"], 1,
            "{name}: every document carries \"schema\": 1"
        );
        let mut found = std::collections::BTreeSet::new();
        keys(&doc, &mut found);
        for key in found {
            if !docs.contains(&format!("`{key}`")) {
                missing.push(format!("{key} (in {name})"));
            }
        }
    }
    assert!(snapshots >= 15, "only {snapshots} snapshots found");
    assert!(
        missing.is_empty(),
        "docs/json.md does not name these keys (as `key`): {missing:#?}"
    );
}
