//! Bulk loads: `full --from-xml` and the first `delta` into an empty replica load without
//! indexes and resolve repeated contacts and deletes at the end. Both must end exactly where
//! applying the same files change by change ends, with the same indexes, across failures,
//! resumes and restarts.

use crate::common;

use common::{deleted, export, guid, member, stderr_of, Workspace};
use rusqlite::Connection;

type Rows = Vec<Vec<Option<String>>>;
/// Contacts and tombstones.
type State = (Rows, Vec<(String, i64)>);
/// Names and SQL of the schema's objects.
type Schema = Vec<(String, String)>;

/// An export set in which contacts come back in later files, are updated twice in one file,
/// deleted and re-created, deleted before they were ever seen, and deleted in the same file
/// that creates them.
fn tangled_set(seed: u64, files: u32) -> Vec<(String, String)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut set = Vec::new();
    for f in 0..files {
        let mut new = Vec::new();
        let mut updated = Vec::new();
        let mut gone = Vec::new();
        for _ in 0..rng.u32(20..60) {
            let n = rng.u32(0..80);
            match rng.u8(0..10) {
                0..=4 => new.push(member(n, &format!("f{f}"))),
                5..=7 => updated.push(member(n, &format!("u{f}-{}", rng.u8(..)))),
                _ => gone.push(deleted(n)),
            }
        }
        // Timestamps repeat (two files per export), so versions tie across files too.
        let name = format!("2026010{}000000_{}_full.xml", 1 + f / 2, f % 2);
        set.push((name, export(&new, &updated, &gone)));
    }
    set
}

fn write_set(ws: &Workspace, folder: &str, set: &[(String, String)]) {
    let dir = ws.path().join(folder);
    std::fs::create_dir_all(&dir).expect("folder");
    for (name, content) in set {
        std::fs::write(dir.join(name), content).expect("write");
    }
}

/// Contacts (without updated_at) and tombstones (id, version).
fn state(db: &std::path::Path) -> State {
    let conn = Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT contact_id, member_number, email, mobile_phone, first_name, last_name, \
             attributes, CAST(version AS TEXT) FROM contact ORDER BY contact_id",
        )
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            (0..8)
                .map(|i| r.get::<_, Option<String>>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let mut stmt = conn
        .prepare("SELECT contact_id, version FROM tombstone ORDER BY contact_id")
        .expect("prepare");
    let tombstones = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    (rows, tombstones)
}

/// Names and SQL of every index and table in the replica.
fn schema(db: &std::path::Path) -> Schema {
    let conn = Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type IN ('index', 'table') \
             ORDER BY name",
        )
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// A contact deleted before any test set, so that the reference replica is never empty and
/// applies every change one by one (an empty replica's first import is a bulk load).
const SEED: u32 = 0xfff_fff;

/// What applying the set change by change gives (`delta` into a replica that is not empty).
fn reference(set: &[(String, String)]) -> (State, Schema) {
    let ws = Workspace::new();
    init_full(&ws);
    write_set(
        &ws,
        "seed",
        &[(
            "20250101000000_0_seed.xml".into(),
            export(&[], &[], &[deleted(SEED)]),
        )],
    );
    let out = ws.cmd().args(["delta", "seed"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    write_set(&ws, "set", set);
    let out = ws
        .cmd()
        .args(["delta", "set", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(summary["updated"].as_u64().expect("n") > 0);
    let (rows, mut tombstones) = state(&ws.db());
    tombstones.retain(|(id, _)| *id != guid(SEED));
    ((rows, tombstones), schema(&ws.db()))
}

/// `init --mode full`, which must succeed.
fn init_full(ws: &Workspace) {
    let out = ws
        .cmd()
        .args(["init", "--mode", "full"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
}

fn full(ws: &Workspace, folder: &str) -> std::process::Output {
    ws.cmd()
        .args(["full", "--mode", "full", "--from-xml", folder, "--json"])
        .output()
        .expect("runs")
}

#[test]
fn bulk_build_equals_delta_of_the_same_files() {
    for seed in 1..=6 {
        let set = tangled_set(seed, 8);
        let (expected, expected_schema) = reference(&set);
        assert!(
            !expected.0.is_empty() && !expected.1.is_empty(),
            "seed {seed}"
        );
        let ws = Workspace::new();
        write_set(&ws, "set", &set);
        let out = full(&ws, "set");
        assert!(out.status.success(), "seed {seed}: {}", stderr_of(&out));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(summary["files_applied"], 8);
        assert!(summary["resolved"]["superseded"].as_u64().expect("n") > 0);
        assert!(summary["resolved"]["deleted"].as_u64().expect("n") > 0);
        assert_eq!(state(&ws.db()), expected, "seed {seed}");
        assert_eq!(
            schema(&ws.db()),
            expected_schema,
            "seed {seed}: the indexes"
        );
        let conn = Connection::open(ws.db()).expect("open");
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal");
        assert_eq!(journal, "wal", "the new replica is in WAL mode again");
        let meta: i64 = conn
            .query_row(
                "SELECT count(*) FROM meta WHERE key LIKE 'bulk%'",
                [],
                |r| r.get(0),
            )
            .expect("meta");
        assert_eq!(meta, 0, "no load state left in the new replica");
    }
}

#[test]
fn a_bad_file_stops_the_load_and_the_rerun_finishes_it() {
    let set = tangled_set(11, 6);
    let (expected, expected_schema) = reference(&set);
    let ws = Workspace::new();
    let mut broken = set.clone();
    let half = broken[3].1.len() / 2;
    broken[3].1.truncate(half);
    write_set(&ws, "set", &broken);
    let out = full(&ws, "set");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(&broken[3].0),
        "{}",
        stderr_of(&out)
    );
    assert!(
        !ws.db().exists(),
        "nothing in service before the build is whole"
    );
    // The build holds the three good files before the bad one, nothing of it, no indexes.
    let build = ws.path().join("replica.db.d/building.db");
    let conn = Connection::open(&build).expect("build");
    let files: i64 = conn
        .query_row("SELECT count(*) FROM applied_file", [], |r| r.get(0))
        .expect("files");
    assert_eq!(files, 3);
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'contact'",
            [],
            |r| r.get(0),
        )
        .expect("indexes");
    assert_eq!(indexes, 0, "indexes are built when the load is complete");
    drop(conn);
    write_set(&ws, "set", &set);
    let out = full(&ws, "set");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["files_already_applied"], 3);
    assert_eq!(summary["files_applied"], 3);
    assert_eq!(state(&ws.db()), expected);
    assert_eq!(schema(&ws.db()), expected_schema);
}

#[test]
fn a_build_written_before_a_reboot_starts_over() {
    let set = tangled_set(21, 4);
    let (expected, _) = reference(&set);
    let ws = Workspace::new();
    let mut broken = set.clone();
    broken[2].1.truncate(10);
    write_set(&ws, "set", &broken);
    assert_eq!(full(&ws, "set").status.code(), Some(65));
    let build = ws.path().join("replica.db.d/building.db");
    let conn = Connection::open(&build).expect("build");
    let recorded: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'bulk_boot_id'",
            [],
            |r| r.get(0),
        )
        .expect("the build records the boot it was written in");
    let this_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    assert_eq!(recorded, this_boot.trim(), "the machine's own boot id");
    let changed = conn
        .execute(
            "UPDATE meta SET value = 'an-earlier-boot' WHERE key = 'bulk_boot_id'",
            [],
        )
        .expect("meta");
    assert_eq!(changed, 1);
    drop(conn);
    write_set(&ws, "set", &set);
    let out = full(&ws, "set");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("before the machine last started"),
        "{}",
        stderr_of(&out)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["files_already_applied"], 0, "started over");
    assert_eq!(summary["files_applied"], 4);
    assert_eq!(state(&ws.db()), expected);
}

#[test]
fn contacts_of_a_bulk_build_are_found_by_every_key() {
    let ws = Workspace::new();
    let set = vec![
        (
            "20260101000000_0_full.xml".to_string(),
            export(&[member(1, "a"), member(2, "a")], &[], &[]),
        ),
        (
            "20260101000000_1_full.xml".to_string(),
            export(&[], &[member(1, "b")], &[deleted(2)]),
        ),
    ];
    write_set(&ws, "set", &set);
    assert!(full(&ws, "set").status.success());
    let out = ws
        .cmd()
        .args(["lookup", "--email", "user1@example.com", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(found["contact"]["contact_id"], guid(1));
    assert_eq!(found["contact"]["first_name"], "Åsab");
    for (key, value) in [
        ("--member-number", "M1".to_string()),
        ("--mobile", "+46700000001".to_string()),
        ("--contact-id", guid(1).to_uppercase()),
    ] {
        let out = ws
            .cmd()
            .args(["lookup", key, &value])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{key}: {}", stderr_of(&out));
    }
    let out = ws
        .cmd()
        .args(["lookup", "--contact-id", &guid(2)])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "deleted in the second file");
}

#[test]
fn a_first_delta_into_an_empty_replica_equals_change_by_change() {
    for seed in 31..=34 {
        let set = tangled_set(seed, 6);
        let (expected, expected_schema) = reference(&set);
        let ws = Workspace::new();
        init_full(&ws);
        write_set(&ws, "set", &set);
        let out = ws
            .cmd()
            .args(["delta", "set", "--json"])
            .output()
            .expect("runs");
        assert!(out.status.success(), "seed {seed}: {}", stderr_of(&out));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(summary["files_applied"], 6);
        assert_eq!(state(&ws.db()), expected, "seed {seed}");
        assert_eq!(
            schema(&ws.db()),
            expected_schema,
            "seed {seed}: the indexes"
        );
        let left: i64 = ws.count("SELECT count(*) FROM meta WHERE key LIKE 'bulk%'");
        assert_eq!(left, 0, "no load state left");
        // The next import is an ordinary one, through the indexes.
        let more = vec![(
            "20260201000000_0_more.xml".to_string(),
            export(&[member(500, "x")], &[member(1, "later")], &[deleted(2)]),
        )];
        write_set(&ws, "more", &more);
        let out = ws.cmd().args(["delta", "more"]).output().expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
        let email: String = ws
            .conn()
            .query_row(
                "SELECT email FROM contact WHERE contact_id = ?1",
                [guid(500)],
                |r| r.get(0),
            )
            .expect("the new contact");
        assert_eq!(email, "user500@example.com");
    }
}

#[test]
fn a_bad_file_in_a_first_delta_keeps_the_files_before_it() {
    let set = tangled_set(41, 5);
    let ws = Workspace::new();
    let mut broken = set.clone();
    broken[3].1 = "<contacts".into();
    write_set(&ws, "set", &broken);
    let out = ws.cmd().args(["delta", "set"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    let (expected, expected_schema) = reference(&set[..3]);
    assert_eq!(state(&ws.db()), expected);
    assert_eq!(schema(&ws.db()), expected_schema);
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 3);
    // With --keep-going the good file after it goes in too, as an ordinary import.
    let ws = Workspace::new();
    write_set(&ws, "set", &broken);
    let out = ws
        .cmd()
        .args(["delta", "set", "--keep-going"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    let mut good = set[..3].to_vec();
    good.push(set[4].clone());
    let (expected, _) = reference(&good);
    assert_eq!(state(&ws.db()), expected);
}

/// Contact ids with a row, and contact ids with a tombstone.
fn ids(db: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let (rows, tombstones) = state(db);
    (
        rows.into_iter()
            .map(|r| r[0].clone().expect("contact id"))
            .collect(),
        tombstones.into_iter().map(|(id, _)| id).collect(),
    )
}

/// A delete that ties with an upsert (one export timestamp, so one version) at the very
/// start of a bulk load: the later of the two in file order wins, as change by change. Here
/// the delete comes first (file `_0`), so the contact it deletes before it exists stays,
/// in a `full` and in a first `delta` alike.
#[test]
fn a_tied_delete_at_the_start_of_a_load_loses_to_the_upsert_after_it() {
    let set = vec![
        (
            "20260101000000_0_full.xml".to_string(),
            export(&[], &[], &[deleted(1)]),
        ),
        (
            "20260101000000_1_full.xml".to_string(),
            export(&[member(1, "a"), member(2, "a")], &[], &[]),
        ),
    ];
    let kept = (vec![guid(1), guid(2)], vec![]);
    let ws = Workspace::new();
    write_set(&ws, "set", &set);
    let out = full(&ws, "set");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(ids(&ws.db()), kept, "full");
    let ws = Workspace::new();
    init_full(&ws);
    write_set(&ws, "set", &set);
    let out = ws.cmd().args(["delta", "set"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(ids(&ws.db()), kept, "first delta");
}

/// The same tie at the start of a resumed build: the file that creates the contact was
/// committed by the run that stopped, and the first change the rerun loads is its delete,
/// later in file order, so it wins.
#[test]
fn a_tied_delete_first_in_a_resumed_build_wins_over_the_rows_before_it() {
    let set = vec![
        (
            "20260101000000_0_full.xml".to_string(),
            export(&[member(1, "a"), member(2, "a")], &[], &[]),
        ),
        (
            "20260101000000_1_full.xml".to_string(),
            export(&[], &[], &[deleted(2)]),
        ),
    ];
    let ws = Workspace::new();
    let mut broken = set.clone();
    broken[1].1.truncate(30);
    write_set(&ws, "set", &broken);
    assert_eq!(full(&ws, "set").status.code(), Some(65));
    write_set(&ws, "set", &set);
    let out = full(&ws, "set");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["files_already_applied"], 1, "resumed");
    assert_eq!(ids(&ws.db()), (vec![guid(1)], vec![guid(2)]));
}

/// An old generation holds personal data: when the swap cannot remove one, the run names it
/// (purge takes it later); a file that is simply not there (no `-wal` beside the old replica)
/// is no cause for a warning.
#[test]
fn a_generation_the_swap_cannot_remove_is_named_in_a_warning() {
    let ws = Workspace::new();
    let set = vec![(
        "20260101000000_0_full.xml".to_string(),
        export(&[member(1, "a")], &[], &[]),
    )];
    write_set(&ws, "set", &set);
    let out = full(&ws, "set");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stuck = ws.path().join("replica.db.d/gen-00000000.db");
    std::fs::create_dir(&stuck).expect("a folder where a generation would be");
    let out = full(&ws, "set");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("cannot remove the old replica file"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("gen-00000000.db"), "{err}");
    assert_eq!(ids(&ws.db()), (vec![guid(1)], vec![]));
}
