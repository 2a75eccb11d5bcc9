//! `publish` on a hub (issue 21): the hub's changes as export files, imported by stores with
//! `delta` (or `full --from-xml` for a snapshot). Stores are compared with the hub through
//! the public `contacts` view (`common::Workspace::contacts`), not the product's code.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{deleted, export, guid, member, stdout_of, Workspace};
use serde_json::Value;

/// A hub replica in `mode`, with the files of `exports` applied by `delta`.
fn hub(mode: &str) -> Workspace {
    let ws = Workspace::new();
    ws.init_mode(mode);
    ws
}

/// Applies one export file (name, content) to the workspace's replica.
fn apply(ws: &Workspace, name: &str, content: &str) {
    ws.write_export(name, content);
    ws.cmd()
        .args(["-q", "delta"])
        .arg(ws.inbox())
        .assert()
        .success();
}

/// Runs `publish --json` into `dir` with extra arguments; returns the JSON summary.
fn publish(ws: &Workspace, dir: &Path, extra: &[&str]) -> Value {
    let out = ws
        .cmd()
        .args(["--json", "publish", "--to"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("publish");
    assert!(
        out.status.success(),
        "publish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout_of(&out)).expect("publish --json")
}

/// A store in `mode` that imports `dir` with `delta` (files left in place).
/// A new store of `mode` that has imported what `dir` holds.
fn store_following(dir: &Path, mode: &str) -> Workspace {
    let store = Workspace::new();
    store.init_mode(mode);
    store_delta(&store, dir);
    store
}

fn store_delta(store: &Workspace, dir: &Path) {
    let out = store
        .cmd()
        .args(["-q", "delta"])
        .arg(dir)
        .output()
        .expect("delta");
    assert!(
        out.status.success(),
        "store delta: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `contacts` rows reduced to what a store of `mode` keeps: everything (full), or the
/// keys and contact type (keys: names and attributes are NULL there).
fn as_kept_by(rows: Vec<Vec<Option<String>>>, mode: &str) -> Vec<Vec<Option<String>>> {
    rows.into_iter()
        .map(|mut r| {
            if mode == "keys" {
                for v in &mut r[8..] {
                    *v = None;
                }
            }
            r
        })
        .collect()
}

/// Published `*.xml` files in `dir`, sorted by name; and hidden temporary files.
fn published(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut xml = Vec::new();
    let mut hidden = Vec::new();
    for e in std::fs::read_dir(dir).expect("list") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            hidden.push(name);
        } else {
            xml.push(name);
        }
    }
    xml.sort();
    hidden.sort();
    (xml, hidden)
}

/// Every `<member>`'s contact id in the published files, with the section it stood in,
/// counted: read with a plain text scan, independent of the product's parser.
fn members_in(dir: &Path) -> BTreeMap<(String, String), u32> {
    let mut seen = BTreeMap::new();
    for name in published(dir).0 {
        let text = std::fs::read_to_string(dir.join(&name)).expect("read");
        let mut section = String::new();
        for part in text.split('<').skip(1) {
            for s in ["new>", "updated>", "deleted>"] {
                if part.starts_with(s) {
                    section = s.trim_end_matches('>').to_string();
                }
            }
            if let Some(id) = part.strip_prefix("contactId>") {
                *seen.entry((section.clone(), id.to_string())).or_insert(0) += 1;
            }
        }
    }
    seen
}

fn ids(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(guid).collect()
}

/// Round trip: a full hub's creates, updates and deletes published over three rounds; an
/// empty full store and an empty keys store import the folder after each; both equal the hub
/// (the keys store in the columns it keeps). Files hold at most --per-file members, names
/// and timestamps rise strictly (three publications within a second or two), and each
/// contact appears once per publication, under new, updated or deleted as it changed.
#[test]
fn stores_importing_the_published_files_equal_the_hub() {
    let hub = hub("full");
    let dir = hub.path().join("published");
    let stores = [("full", Workspace::new()), ("keys", Workspace::new())];
    for (mode, s) in &stores {
        s.init_mode(mode);
    }
    let members =
        |r: std::ops::Range<u32>, tag: &str| r.map(|n| member(n, tag)).collect::<Vec<_>>();
    let rounds: Vec<(Vec<String>, Vec<String>, Vec<String>)> = vec![
        (members(0..7, "a"), vec![], vec![]),
        (
            members(7..9, "b"),
            members(0..3, "b"),
            vec![deleted(3), deleted(4)],
        ),
        // Deleted then created again; a contact never seen deleted.
        (members(3..4, "c"), members(5..6, "c"), vec![deleted(100)]),
    ];
    // An empty hub publishes nothing, and keeps its change log from now on: the first
    // import (a bulk load) logs one "whole table" row, later imports a row per contact.
    let empty = publish(&hub, &dir, &[]);
    assert_eq!(empty["files"].as_array().map(Vec::len), Some(0));
    let log = |sql: &str| hub.count(&format!("SELECT count(*) FROM change_log {sql}"));
    let mut all_names = Vec::new();
    for (i, (new, updated, gone)) in rounds.iter().enumerate() {
        let name = format!("2026010{}000000_0_members.xml", i + 1);
        apply(&hub, &name, &export(new, updated, gone));
        if i == 0 {
            assert_eq!(log("WHERE row IS NULL"), 1, "a bulk load");
        } else {
            assert_eq!(
                log("WHERE row IS NOT NULL"),
                (new.len() + updated.len()) as i64
            );
        }
        let before: Vec<String> = published_names(&dir);
        let summary = publish(&hub, &dir, &["--per-file", "3"]);
        assert_eq!(summary["schema"], 1);
        assert_eq!(summary["kind"], "delta");
        assert_eq!(summary["delta_number"], i as i64 + 1);
        let files: Vec<String> = summary["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f.as_str().expect("name").to_string())
            .collect();
        let changed = new.len() + updated.len() + gone.len();
        assert_eq!(files.len(), changed.div_ceil(3), "round {i}: {files:?}");
        for f in &files {
            let text = std::fs::read_to_string(dir.join(f)).expect("read");
            assert!(text.matches("</member>").count() <= 3, "{f}");
            assert!(text.contains("xmlns=\"http://eClub.Schemas.ExportMember\""));
        }
        let after = published_names(&dir);
        assert_eq!(after.len(), before.len() + files.len());
        // Every new name sorts after every earlier one, and its timestamp is later.
        let last_before = before.last().cloned().unwrap_or_default();
        assert!(
            files.iter().all(|f| *f > last_before),
            "{files:?} after {last_before}"
        );
        if let Some(prev) = before.last() {
            assert!(
                files[0][..14] > prev[..14],
                "timestamps rise: {} after {prev}",
                files[0]
            );
        }
        all_names.extend(files);
        assert_eq!(log(""), 0, "the log is emptied up to what was published");
        for (mode, s) in &stores {
            store_delta(s, &dir);
            assert_eq!(
                s.contacts(),
                as_kept_by(hub.contacts(), mode),
                "round {i}, {mode} store"
            );
        }
    }
    assert_eq!(all_names, published_names(&dir));
    for (_, s) in &stores {
        let logged = s.count("SELECT count(*) FROM change_log");
        assert_eq!(logged, 0, "a replica that never published keeps no log");
    }
    // Each change published once, in its section: round 2 updated 0..3 and deleted 3 and 4;
    // round 3 brought 3 back (new again: its row was made anew) and updated 5.
    let seen = members_in(&dir);
    let count = |section: &str, n: u32| seen.get(&(section.to_string(), guid(n))).copied();
    assert_eq!(count("new", 0), Some(1));
    assert_eq!(count("updated", 0), Some(1));
    assert_eq!(count("deleted", 3), Some(1));
    assert_eq!(count("new", 3), Some(2));
    assert_eq!(count("deleted", 100), Some(1));
    assert_eq!(seen.values().sum::<u32>(), 7 + 7 + 3);
    assert!(hub.contacts().len() > 5);
    // Nothing changed since: no file.
    let summary = publish(&hub, &dir, &[]);
    assert_eq!(summary["files"].as_array().map(Vec::len), Some(0));
    assert_eq!(summary["stamp"], Value::Null);
    assert_eq!(published_names(&dir), all_names);
    assert!(published(&dir).1.is_empty(), "no temporary file left");
}

fn published_names(dir: &Path) -> Vec<String> {
    if dir.exists() {
        published(dir).0
    } else {
        Vec::new()
    }
}

/// A keys-only hub publishes the keys and nothing else of the person; a keys store equals it.
#[test]
fn a_keys_hub_publishes_keys_only() {
    let hub = hub("keys");
    let dir = hub.path().join("published");
    apply(
        &hub,
        "20260101000000_0_members.xml",
        &export(&[member(1, "a"), member(2, "a")], &[], &[]),
    );
    publish(&hub, &dir, &[]);
    let (files, _) = published(&dir);
    let text = std::fs::read_to_string(dir.join(&files[0])).expect("read");
    assert!(text.contains("<email>user1@example.com</email>"), "{text}");
    assert!(
        !text.contains("Åsa") && !text.contains("Umeå") && !text.contains("Öberg"),
        "{text}"
    );
    let store = store_following(&dir, "keys");
    assert_eq!(store.contacts(), hub.contacts());
}

/// A hub killed at every point of `publish`, then changed again and published again: the
/// published files hold every change exactly once (the two rounds change different
/// contacts, so a contact seen twice was published twice), no temporary file is left, and a
/// store importing them equals the hub.
#[test]
fn publish_killed_anywhere_publishes_nothing_twice_and_misses_nothing() {
    let kills = [
        ("publish.files_written", 1),
        ("publish.recorded", 1),
        ("publish.renamed", 1),
        ("publish.renamed", 2),
    ];
    for (name, hit) in kills {
        let kill = format!("{name}:{hit}");
        let hub = hub("full");
        let dir = hub.path().join("published");
        let first: Vec<String> = (0..5).map(|n| member(n, "a")).collect();
        apply(
            &hub,
            "20260101000000_0_members.xml",
            &export(&first, &[], &[deleted(50)]),
        );
        let out = hub
            .cmd()
            .args(["publish", "--per-file", "2", "--to"])
            .arg(&dir)
            .env("ENGAGE_SYNC_FAILPOINT", &kill)
            .output()
            .expect("publish");
        assert!(!out.status.success(), "{kill}: the run was killed");
        let second: Vec<String> = (10..13).map(|n| member(n, "b")).collect();
        apply(
            &hub,
            "20260102000000_0_members.xml",
            &export(&second, &[], &[deleted(51)]),
        );
        publish(&hub, &dir, &["--per-file", "2"]);
        let (_, hidden) = published(&dir);
        assert!(
            hidden.is_empty(),
            "{kill}: temporary files left: {hidden:?}"
        );
        let seen = members_in(&dir);
        let mut expected: Vec<String> = ids(0..5).into_iter().chain(ids(10..13)).collect();
        expected.extend([guid(50), guid(51)]);
        expected.sort();
        let mut found: Vec<String> = seen.keys().map(|(_, id)| id.clone()).collect();
        found.sort();
        assert_eq!(found, expected, "{kill}: every change published");
        assert!(
            seen.values().all(|&n| n == 1),
            "{kill}: published twice: {seen:?}"
        );
        let store = store_following(&dir, "full");
        assert_eq!(store.contacts(), hub.contacts(), "{kill}");
        // The run log records the publications (the killed one stays `running`).
        let ok = hub.count("SELECT count(*) FROM run WHERE command = 'publish' AND outcome = 'ok'");
        assert_eq!(ok, 1, "{kill}");
    }
}

/// `publish --snapshot`: the whole replica (contacts and deletes) as a file set that a new
/// store loads with `full --from-xml`, equal to the hub; refused in the folder of the
/// changes; the delta publications go on after it without repeating its number.
#[test]
fn a_snapshot_loads_with_full_from_xml() {
    let hub = hub("full");
    let dir = hub.path().join("published");
    let snap: PathBuf = hub.path().join("snapshot");
    let first: Vec<String> = (0..6).map(|n| member(n, "a")).collect();
    apply(
        &hub,
        "20260101000000_0_members.xml",
        &export(&first, &[], &[deleted(2)]),
    );
    publish(&hub, &dir, &[]);
    let out = hub
        .cmd()
        .args(["publish", "--snapshot", "--to"])
        .arg(&dir)
        .output()
        .expect("publish");
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = publish(&hub, &snap, &["--snapshot", "--per-file", "4"]);
    assert_eq!(summary["kind"], "snapshot");
    assert_eq!(summary["new"], 5);
    assert_eq!(summary["deleted"], 1);
    let files: Vec<String> = published(&snap).0;
    assert_eq!(files.len(), 2);
    assert!(
        files.iter().all(|f| f.ends_with("_hub-snapshot-d1.xml")),
        "{files:?}"
    );
    let store = Workspace::new();
    let mut full = store.cmd();
    full.args(["-q", "full", "--mode", "full", "--from-xml"]);
    for f in &files {
        full.arg(snap.join(f));
    }
    full.assert().success();
    assert_eq!(store.contacts(), hub.contacts());
    assert_eq!(store.count("SELECT count(*) FROM tombstone"), 1);
    // Later changes come as delta 2, after the snapshot's time.
    apply(
        &hub,
        "20260102000000_0_members.xml",
        &export(&[member(7, "b")], &[], &[]),
    );
    let next = publish(&hub, &dir, &[]);
    assert_eq!(next["delta_number"], 2);
    assert!(next["stamp"].as_str() > Some(&files[0][..14]));
    store_delta(&store, &dir);
    assert_eq!(store.contacts(), hub.contacts());
}

/// A `full` on a hub may change any contact: the next publication holds the whole replica
/// once, a contact the full export no longer holds as a delete, and names keep rising; a
/// store that followed the deltas equals the hub again.
#[test]
fn after_a_full_the_hub_republishes_everything_and_the_vanished_as_deletes() {
    let hub = hub("full");
    let dir = hub.path().join("published");
    let first: Vec<String> = (0..4).map(|n| member(n, "a")).collect();
    apply(
        &hub,
        "20260101000000_0_members.xml",
        &export(&first, &[], &[]),
    );
    let one = publish(&hub, &dir, &[]);
    let store = store_following(&dir, "full");
    // The full export lacks contact 3 and changes contact 0.
    let full_dir = hub.path().join("full");
    std::fs::create_dir(&full_dir).expect("mkdir");
    let all: Vec<String> = [member(0, "f"), member(1, "a"), member(2, "a")].to_vec();
    std::fs::write(
        full_dir.join("20260103000000_0_members.xml"),
        export(&all, &[], &[]),
    )
    .expect("write");
    hub.cmd()
        .args(["-q", "full", "--from-xml"])
        .arg(full_dir.join("20260103000000_0_members.xml"))
        .assert()
        .success();
    let two = publish(&hub, &dir, &[]);
    assert_eq!(two["delta_number"], 2);
    assert_eq!(
        two["new"].as_u64().unwrap_or(0) + two["updated"].as_u64().unwrap_or(0),
        3
    );
    assert_eq!(two["deleted"], 1);
    assert!(two["stamp"].as_str() > one["stamp"].as_str());
    store_delta(&store, &dir);
    assert_eq!(store.contacts(), hub.contacts());
    assert_eq!(store.contacts().len(), 3);
}

/// A replica made before change tracking (schema 6) is migrated by the first writer; every
/// contact and tombstone it held counts as changed once, so its first publication holds all
/// of them (README "Hub and stores").
#[test]
fn a_migrated_replica_publishes_everything_once() {
    let hub = hub("full");
    let dir = hub.path().join("published");
    let first: Vec<String> = (0..4).map(|n| member(n, "a")).collect();
    apply(
        &hub,
        "20260101000000_0_members.xml",
        &export(&first, &[], &[deleted(9)]),
    );
    // Back to schema 6, as an earlier engage-sync left it.
    hub.replica_conn()
        .execute_batch(common::UNDO_SCHEMA_7)
        .expect("downgrade");
    let one = publish(&hub, &dir, &[]);
    assert_eq!(one["new"], 4);
    assert_eq!(one["deleted"], 1);
    let again = publish(&hub, &dir, &[]);
    assert_eq!(again["stamp"], Value::Null);
    let store = store_following(&dir, "full");
    assert_eq!(store.contacts(), hub.contacts());
}

/// Sets a file's modification time `days` back.
fn age(path: &Path, days: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400))
        .expect("set mtime");
}

/// GDPR on the hub: `purge` deletes published files older than the age (`--dry-run` lists
/// them), keeps newer ones. A store that missed a publication the hub purged is told so by
/// `status` (and `--check` fails with 65), and is whole again after loading a snapshot.
#[test]
fn purged_publications_are_reported_missed_until_a_snapshot_resyncs() {
    let hub = hub("full");
    let dir = hub.path().join("published");
    let mut names: Vec<Vec<String>> = Vec::new();
    for (i, range) in [0..3u32, 3..5, 5..7].into_iter().enumerate() {
        let new: Vec<String> = range.map(|n| member(n, "a")).collect();
        apply(
            &hub,
            &format!("2026010{}000000_0_members.xml", i + 1),
            &export(&new, &[], &[]),
        );
        let s = publish(&hub, &dir, &[]);
        names.push(
            s["files"]
                .as_array()
                .expect("files")
                .iter()
                .map(|f| f.as_str().expect("name").to_string())
                .collect(),
        );
    }
    // The store fetched the first publication only, then went offline.
    let store = Workspace::new();
    store.init_mode("full");
    for f in &names[0] {
        std::fs::copy(dir.join(f), store.inbox().join(f)).expect("copy");
    }
    store_delta(&store, &store.inbox());
    for f in names[0].iter().chain(&names[1]) {
        age(&dir.join(f), 40);
    }
    let dry = hub
        .cmd()
        .args(["--json", "purge", "--older-than", "30d", "--dry-run"])
        .output()
        .expect("purge");
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let dry: Value = serde_json::from_slice(&dry.stdout).expect("json");
    assert_eq!(dry["published_files"]["files"], 2, "{dry}");
    assert_eq!(published(&dir).0.len(), 3, "a dry run deletes nothing");
    hub.cmd()
        .args(["-q", "purge", "--older-than", "30d"])
        .assert()
        .success();
    assert_eq!(
        published(&dir).0,
        names[2],
        "only the newest publication is left"
    );
    // Back online: the store applies what is left and is told what it missed.
    store_delta(&store, &dir);
    let out = store
        .cmd()
        .args(["status", "--check", "--max-age", "1h"])
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(65), "{}", stdout_of(&out));
    assert!(
        stdout_of(&out).contains("missed 1 publication(s) of hub `hub` (d2"),
        "{}",
        stdout_of(&out)
    );
    let json = store
        .cmd()
        .args(["--json", "status"])
        .output()
        .expect("status");
    let json: Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(
        json["missed_publications"][0]["first_missing"],
        serde_json::json!([2])
    );
    assert_ne!(
        store.contacts(),
        hub.contacts(),
        "contacts 3 and 4 are missing"
    );
    // Re-sync from a snapshot.
    let snap = hub.path().join("snapshot");
    publish(&hub, &snap, &["--snapshot"]);
    let mut full = store.cmd();
    full.args(["-q", "full", "--from-xml"]);
    for f in published(&snap).0 {
        full.arg(snap.join(f));
    }
    full.assert().success();
    assert_eq!(store.contacts(), hub.contacts());
    let out = store
        .cmd()
        .args(["status", "--check", "--max-age", "1h"])
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(0), "{}", stdout_of(&out));
}

/// `publish --dry-run` names the files and counts the members it would write, and writes
/// nothing: no folder, no file, no record; the real run then publishes the same changes.
#[test]
fn a_dry_run_writes_nothing() {
    let hub = hub("full");
    let dir = hub.path().join("published");
    let first: Vec<String> = (0..5).map(|n| member(n, "a")).collect();
    apply(
        &hub,
        "20260101000000_0_members.xml",
        &export(&first, &[], &[deleted(9)]),
    );
    let dry = publish(&hub, &dir, &["--dry-run", "--per-file", "2"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        (dry["new"].clone(), dry["deleted"].clone()),
        (5.into(), 1.into())
    );
    assert_eq!(dry["files"].as_array().map(Vec::len), Some(3));
    assert!(!dir.exists(), "no folder made");
    assert_eq!(hub.count("SELECT count(*) FROM publication"), 0);
    let real = publish(&hub, &dir, &["--per-file", "2"]);
    assert_eq!(
        (real["new"].clone(), real["deleted"].clone()),
        (5.into(), 1.into())
    );
    assert_eq!(published(&dir).0.len(), 3);
}
