//! The crash matrix: the real binary is killed with SIGKILL at many points of `delta`,
//! `full --from-xml`, `full` from the API, `changes` and `push-local`, then run again, and the
//! result must equal an uninterrupted run's.
//!
//! Kill points come two ways: every failpoint of the command (`src/failpoint.rs`,
//! `ENGAGE_SYNC_FAILPOINT=NAME:N` makes the process SIGKILL itself at the N-th hit), and
//! SIGKILL from outside after a random delay within an uninterrupted run's duration. After each
//! kill, before the rerun, the state left behind is checked:
//! - imports: the ledger holds a prefix of the files in order, and the contacts are exactly
//!   those of that prefix (each file all-or-nothing with its ledger row); no file is lost,
//!   none is archived before it is committed;
//! - `full`: the replica in service is the old one or the complete new one, nothing between;
//! - `changes`: the cursor is the old one, or the new one with all the window's data;
//! - `push-local`: nothing to check until the reruns finish (items may be in flight).
//!
//! After the reruns: the same `contacts` rows, ledger, outboxes and history as the
//! uninterrupted run; for `full`, no stray generation, build or link files; for `push-local`,
//! every contact created exactly once (the fake's uniqueness check is off, so a second create
//! would be stored and counted) and linked to the right Engage contact, every receipt stored
//! exactly once and tagged to the right customer, the update delivered, the outboxes empty.
//!
//! The short form runs in `cargo test`. The long form (many more random kills, larger data) is
//! `#[ignore]`d: `bash bench/crash_matrix.sh`, or
//! `CRASH_KILLS=200 cargo test --release --test integration -- --ignored --nocapture crash_matrix_long`.
//! `CRASH_SEED` replays a run's random kill delays (each run prints its seed).

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::*;
use fake_engage::{FakeConfig, FakeEngage};
use serde_json::{json, Value};

// ---- the plan ------------------------------------------------------------------------------

/// How much to do: the short form in `cargo test`, the long form explicitly.
#[derive(Clone, Copy)]
struct Plan {
    /// Contacts per export file.
    per_file: u32,
    /// Contacts in Engage for the API scenarios (more than a fetch page of 500).
    api_contacts: usize,
    /// Random-delay kills per scenario.
    timed_kills: usize,
    /// Trials run at once (most of an API trial is waiting on the rate limit).
    parallel: usize,
    seed: u64,
}

impl Plan {
    fn short() -> Plan {
        Plan {
            per_file: 150,
            api_contacts: 520,
            timed_kills: env_num("CRASH_KILLS", 4),
            parallel: 3,
            seed: seed(),
        }
    }

    fn long() -> Plan {
        Plan {
            per_file: env_num("CRASH_PER_FILE", 2000) as u32,
            api_contacts: env_num("CRASH_API_CONTACTS", 1200),
            timed_kills: env_num("CRASH_KILLS", 60),
            parallel: env_num("CRASH_PARALLEL", 3),
            seed: seed(),
        }
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("crash matrix: seed {seed} (CRASH_SEED={seed} replays the random kill delays)");
    seed
}

/// Where a run is killed.
#[derive(Clone, Debug)]
enum Kill {
    /// At the N-th hit of a failpoint.
    At(&'static str, u64),
    /// From outside, after this long.
    After(Duration),
}

impl std::fmt::Display for Kill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kill::At(name, n) => write!(f, "{name}:{n}"),
            Kill::After(d) => write!(f, "after {} ms", d.as_millis()),
        }
    }
}

/// How a run under a kill ended.
#[derive(Debug)]
enum Ended {
    Killed,
    /// It finished before the kill came (possible for timed kills only).
    Finished,
}

/// Runs `cmd` and kills it as `kill` says.
fn run_killed(mut cmd: Command, kill: &Kill) -> Ended {
    match kill {
        Kill::At(name, n) => {
            let out = cmd
                .env("ENGAGE_SYNC_FAILPOINT", format!("{name}:{n}"))
                .output()
                .expect("runs");
            assert_eq!(
                out.status.signal(),
                Some(9),
                "failpoint {name}:{n} was never reached (exit {:?}): {}",
                out.status.code(),
                stderr_of(&out)
            );
            Ended::Killed
        }
        Kill::After(delay) => {
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            std::thread::sleep(*delay);
            if child.try_wait().expect("wait").is_some() {
                return Ended::Finished;
            }
            child.kill().expect("SIGKILL");
            let status = child.wait().expect("wait");
            if status.signal() == Some(9) {
                Ended::Killed
            } else {
                Ended::Finished
            }
        }
    }
}

/// Failpoint kills `name:1..=n`.
fn at(name: &'static str, hits: &[u64]) -> Vec<Kill> {
    hits.iter().map(|&n| Kill::At(name, n)).collect()
}

/// `n` kills at random delays below `within`.
fn timed(rng: &mut fastrand::Rng, n: usize, within: Duration) -> Vec<Kill> {
    let ms = within.as_millis().max(2) as u64;
    (0..n)
        .map(|_| Kill::After(Duration::from_millis(rng.u64(1..ms))))
        .collect()
}

/// What a scenario did, for the report.
#[derive(Default)]
struct Tally {
    failpoint_kills: usize,
    timed_kills: usize,
    timed_finished_first: usize,
}

impl Tally {
    fn count(&mut self, kill: &Kill, ended: &Ended) {
        match (kill, ended) {
            (Kill::At(..), _) => self.failpoint_kills += 1,
            (Kill::After(_), Ended::Killed) => self.timed_kills += 1,
            (Kill::After(_), Ended::Finished) => self.timed_finished_first += 1,
        }
    }

    fn report(&self, what: &str, seed: u64) {
        println!(
            "crash matrix: {what}: {} failpoint kills, {} timed kills ({} more timed runs finished \
             before their kill), nothing lost or duplicated (seed {seed})",
            self.failpoint_kills, self.timed_kills, self.timed_finished_first
        );
    }
}

/// Runs `trial` for each kill, `parallel` at a time; tallies the endings.
fn run_trials(kills: Vec<Kill>, parallel: usize, trial: impl Fn(&Kill) -> Ended + Sync) -> Tally {
    let queue = Mutex::new(kills);
    let tally = Mutex::new(Tally::default());
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            s.spawn(|| loop {
                let Some(kill) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let ended = trial(&kill);
                tally.lock().expect("tally").count(&kill, &ended);
            });
        }
    });
    tally.into_inner().expect("tally")
}

// ---- helpers -------------------------------------------------------------------------------

fn write_config(ws: &Workspace, body: &str) {
    std::fs::write(ws.path().join("engage-sync.toml"), body).expect("config");
}

/// The binary in `ws`, with the fake's key when one is given.
fn cmd(ws: &Workspace, fake: Option<&FakeEngage>, args: &[&str]) -> Command {
    let mut c = ws.std_cmd();
    c.env_remove("ENGAGE_BASE_URL")
        .env_remove("ENGAGE_SYNC_FAILPOINT");
    match fake {
        Some(f) => c.env("ENGAGE_API_KEY", f.api_key()),
        None => c.env_remove("ENGAGE_API_KEY"),
    };
    c.args(args);
    c
}

fn output(mut c: Command) -> Output {
    c.output().expect("runs")
}

fn ok(c: Command) -> Output {
    let out = output(c);
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        stdout_of(&out),
        stderr_of(&out)
    );
    out
}

fn timed_ok(c: Command) -> Duration {
    let t = Instant::now();
    ok(c);
    t.elapsed()
}

/// Copies a folder, keeping symbolic links as links.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().expect("type");
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).expect("link"), &dst)
                .expect("symlink");
        } else if kind.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// A new workspace holding a copy of `template`'s files.
fn clone_ws(template: &Workspace) -> Workspace {
    let ws = Workspace::new();
    std::fs::remove_dir(ws.inbox()).expect("empty inbox");
    copy_dir(template.path(), ws.path());
    ws
}

/// The `contacts` rows without `updated_at`, as `Workspace::contacts`, but also for a replica
/// a kill left without tables.
fn contacts(ws: &Workspace) -> Vec<Vec<Option<String>>> {
    rows(
        ws,
        "SELECT contact_id, local_key, member_number, email, mobile_phone, external_id, \
         social_security_number, contact_type, first_name, last_name, attributes \
         FROM contacts ORDER BY contact_id",
    )
}

/// The rows of a query as text; none when the replica or the table does not exist yet (a
/// kill at the start can leave an empty database file).
fn rows(ws: &Workspace, sql: &str) -> Vec<Vec<Option<String>>> {
    if !ws.db().exists() {
        return Vec::new();
    }
    let conn = ws.conn();
    let mut stmt = match conn.prepare(sql) {
        Ok(stmt) => stmt,
        Err(e) if e.to_string().contains("no such table") => return Vec::new(),
        Err(e) => panic!("{sql}: {e}"),
    };
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                        rusqlite::types::Value::Null => None,
                        rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                        rusqlite::types::Value::Real(f) => Some(f.to_string()),
                        rusqlite::types::Value::Text(t) => Some(t),
                        rusqlite::types::Value::Blob(b) => Some(format!("{b:?}")),
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .expect("query");
    rows.map(|r| r.expect("row")).collect()
}

/// The file ledger without the time of application.
fn ledger(ws: &Workspace) -> Vec<Vec<Option<String>>> {
    rows(
        ws,
        "SELECT name, export_timestamp, file_number, size, sha256, members, inserted, updated, \
         deleted, stale FROM applied_file ORDER BY export_timestamp, file_number",
    )
}

fn ledger_names(ws: &Workspace) -> Vec<String> {
    ledger(ws)
        .into_iter()
        .map(|r| r[0].clone().expect("name"))
        .collect()
}

/// The outboxes without times and attempt counts (a crash may cost an attempt).
fn outboxes(ws: &Workspace) -> Vec<Vec<Option<String>>> {
    let mut all = rows(
        ws,
        "SELECT 'c', op, local_key, contact_id, fields, state FROM contact_outbox ORDER BY id",
    );
    all.extend(rows(
        ws,
        "SELECT 'r', unique_receipt_id, state FROM receipt_outbox ORDER BY id",
    ));
    all.extend(rows(ws, "SELECT 'k', prefix, last FROM local_key_seq"));
    all
}

/// The run history: command and outcome of finished runs.
fn history(ws: &Workspace) -> Vec<Vec<Option<String>>> {
    rows(
        ws,
        "SELECT command, outcome FROM run WHERE finished_at IS NOT NULL ORDER BY id",
    )
}

fn xml_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    names
}

type Rows = Vec<Vec<Option<String>>>;

/// Asserts two row sets are equal; on a difference, names the first differing rows instead of
/// printing thousands of them.
fn same(found: &[Rows], expected: &[Rows], what: &str) {
    for (part, (f, e)) in found.iter().zip(expected).enumerate() {
        if f == e {
            continue;
        }
        let first = f.iter().zip(e).position(|(a, b)| a != b);
        let show = |rows: &Rows, i: Option<usize>| {
            i.and_then(|i| rows.get(i))
                .map(|r| format!("{r:?}"))
                .unwrap_or_else(|| "-".into())
        };
        let extra = |a: &Rows, b: &Rows| {
            a.iter()
                .filter(|r| !b.contains(r))
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
        };
        panic!(
            "{what}: part {part} differs: {} rows found, {} expected; first difference at {first:?}: \
             found {} expected {}; only found: {:?}; only expected: {:?}",
            f.len(),
            e.len(),
            show(f, first),
            show(e, first),
            extra(f, e),
            extra(e, f),
        );
    }
    assert_eq!(found.len(), expected.len(), "{what}: parts");
}

// ---- export files --------------------------------------------------------------------------

/// An export file set: (name, content) in import order; `bad` is the index of a malformed one.
struct ExportSet {
    files: Vec<(String, String)>,
    bad: Option<usize>,
    /// What each file says, in document order, for the model (`model_states`).
    ops: Vec<Vec<Op>>,
}

/// One change an export file makes: contact `n` with the data of `member(n, tag)`, or its
/// deletion.
#[derive(Clone)]
enum Op {
    Upsert(u32, &'static str),
    Delete(u32),
}

fn upserts(range: std::ops::Range<u32>, tag: &'static str) -> Vec<Op> {
    range.map(|n| Op::Upsert(n, tag)).collect()
}

fn deletes(range: std::ops::Range<u32>) -> Vec<Op> {
    range.map(Op::Delete).collect()
}

/// The contacts after the first 0, 1, … good files of `set`, computed by the test itself from
/// what the files say (files in name order, which is version order here; in a file new, then
/// updated, then deleted; a later change wins, a delete removes), not by the product: each
/// contact as [`projected`] shows it.
fn model_states(set: &ExportSet) -> Vec<Rows> {
    let mut live: std::collections::BTreeMap<String, Vec<Option<String>>> = Default::default();
    let mut states = vec![Vec::new()];
    for (i, ops) in set.ops.iter().enumerate() {
        if Some(i) == set.bad {
            continue;
        }
        for op in ops {
            match *op {
                Op::Upsert(n, tag) => {
                    let row = [
                        guid(n),
                        format!("M{n}"),
                        format!("user{n}@example.com"),
                        format!("+4670{n:07}"),
                        format!("Åsa{tag}"),
                        format!("Öberg{n}"),
                        format!("Umeå {tag}"),
                    ];
                    live.insert(guid(n), row.into_iter().map(Some).collect());
                }
                Op::Delete(n) => {
                    live.remove(&guid(n));
                }
            }
        }
        states.push(live.values().cloned().collect());
    }
    states
}

/// A contact row (the 11 columns of [`contacts`]) as the model knows it: id, member number,
/// e-mail, mobile, first and last name, and the city kept in `attributes`.
fn project(rows: Rows) -> Rows {
    rows.into_iter()
        .map(|r| {
            let city = r[10]
                .as_deref()
                .and_then(|a| serde_json::from_str::<Value>(a).ok())
                .and_then(|a| a["city"].as_str().map(str::to_string));
            vec![
                r[0].clone(),
                r[2].clone(),
                r[3].clone(),
                r[4].clone(),
                r[8].clone(),
                r[9].clone(),
                city,
            ]
        })
        .collect()
}

fn projected(ws: &Workspace) -> Rows {
    project(contacts(ws))
}

impl ExportSet {
    fn good(&self) -> Vec<&(String, String)> {
        self.files
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.bad)
            .map(|(_, f)| f)
            .collect()
    }

    fn write_to(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for (name, content) in &self.files {
            std::fs::write(dir.join(name), content).expect("write");
        }
    }
}

fn members(range: std::ops::Range<u32>, tag: &str) -> Vec<String> {
    range.map(|n| member(n, tag)).collect()
}

fn deletions(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(deleted).collect()
}

/// Deltas: new, updated and deleted contacts over three exports, with a truncated file in the
/// middle (so a `--keep-going` run commits twice: at the bad file and at the end).
fn delta_set(s: u32) -> ExportSet {
    let mut bad = export(&members(s..s + 10, "x"), &[], &[]);
    let mut cut = bad.len() / 2;
    while !bad.is_char_boundary(cut) {
        cut -= 1;
    }
    bad.truncate(cut);
    ExportSet {
        files: vec![
            (
                "20260101000000_0_m.xml".into(),
                export(&members(0..s, "a"), &[], &[]),
            ),
            (
                "20260101000000_1_m.xml".into(),
                export(&members(s..2 * s, "a"), &[], &[]),
            ),
            (
                "20260102000000_0_m.xml".into(),
                export(&[], &members(0..s / 2, "b"), &deletions(2 * s - 10..2 * s)),
            ),
            ("20260102000000_1_m.xml".into(), bad),
            (
                "20260103000000_0_m.xml".into(),
                export(
                    &members(2 * s..2 * s + s / 2, "c"),
                    &members(s / 2..s, "c"),
                    &[],
                ),
            ),
            (
                "20260103000000_1_m.xml".into(),
                export(&[], &members(10..20, "d"), &deletions(0..5)),
            ),
        ],
        bad: Some(3),
        ops: vec![
            upserts(0..s, "a"),
            upserts(s..2 * s, "a"),
            [upserts(0..s / 2, "b"), deletes(2 * s - 10..2 * s)].concat(),
            Vec::new(),
            [upserts(2 * s..2 * s + s / 2, "c"), upserts(s / 2..s, "c")].concat(),
            [upserts(10..20, "d"), deletes(0..5)].concat(),
        ],
    }
}

/// A full export set of four files.
fn full_set(s: u32, timestamp: &str, tag: &'static str) -> ExportSet {
    ExportSet {
        files: (0..4)
            .map(|i| {
                (
                    format!("{timestamp}_{i}_full.xml"),
                    export(&members(i * s..(i + 1) * s, tag), &[], &[]),
                )
            })
            .collect(),
        bad: None,
        ops: (0..4).map(|i| upserts(i * s..(i + 1) * s, tag)).collect(),
    }
}

const XML_CONFIG: &str = "inbox = \"inbox\"\narchive = \"archive\"\nquarantine = \"quarantine\"\n\
    [local]\nstore_external_id = \"0600\"\n";

// ---- delta ---------------------------------------------------------------------------------

/// `delta --keep-going` over six files (one malformed), killed at every import failpoint and
/// at random moments.
fn delta_matrix(plan: Plan) {
    let set = delta_set(plan.per_file);
    let states = model_states(&set);
    let good: Vec<String> = set.good().iter().map(|(n, _)| n.clone()).collect();
    let bad_name = set.files[set.bad.expect("bad")].0.clone();
    let world = || {
        let ws = Workspace::new();
        write_config(&ws, XML_CONFIG);
        set.write_to(&ws.inbox());
        ws
    };
    let delta = |ws: &Workspace| cmd(ws, None, &["delta", "--keep-going"]);

    // The uninterrupted run.
    let reference = world();
    let began = Instant::now();
    let out = output(delta(&reference));
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    same(
        &[projected(&reference)],
        &[states[good.len()].clone()],
        "uninterrupted",
    );
    let ref_ledger = ledger(&reference);

    let mut kills = at("import.file_applied", &[1, 2, 3, 4, 5]);
    kills.extend(at("import.before_commit", &[1, 2]));
    kills.extend(at("import.after_commit", &[1, 2]));
    kills.extend(at("import.after_archive", &[2, 4]));
    kills.extend(at("delta.quarantined", &[1]));
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    kills.extend(timed(&mut rng, plan.timed_kills, took));

    let tally = run_trials(kills, plan.parallel, |kill| {
        let ws = world();
        let ended = run_killed(delta(&ws), kill);
        // Each file is all or nothing with its ledger row, in order.
        let applied = ledger_names(&ws);
        let k = applied.len();
        assert_eq!(applied, good[..k], "{kill}: ledger is not a prefix");
        same(
            &[projected(&ws)],
            &[states[k].clone()],
            &format!("{kill}: contacts of {k} whole files"),
        );
        // No file lost; only committed files archived.
        let (inbox, archive) = (
            xml_names(&ws.inbox()),
            xml_names(&ws.path().join("archive")),
        );
        for name in &good {
            let places = usize::from(inbox.contains(name)) + usize::from(archive.contains(name));
            assert_eq!(places, 1, "{kill}: {name} is in the inbox or the archive");
        }
        assert!(
            archive.iter().all(|n| applied.contains(n)),
            "{kill}: archived before committed"
        );
        // Run again: the same result as one uninterrupted run.
        let out = output(delta(&ws));
        assert!(
            matches!(out.status.code(), Some(0 | 65)),
            "{kill}: rerun: {}",
            stderr_of(&out)
        );
        same(
            &[projected(&ws), ledger(&ws)],
            &[states[good.len()].clone(), ref_ledger.clone()],
            &format!("{kill}: after the rerun"),
        );
        assert_eq!(
            xml_names(&ws.path().join("archive")),
            good,
            "{kill}: archive"
        );
        assert!(xml_names(&ws.inbox()).is_empty(), "{kill}: inbox empty");
        // The refused file is in quarantine and on record (status lists it).
        assert_eq!(
            xml_names(&ws.path().join("quarantine")),
            vec![bad_name.clone()],
            "{kill}: quarantine"
        );
        assert!(
            ws.count(&format!(
                "SELECT count(*) FROM quarantined_file WHERE name = '{bad_name}'"
            )) >= 1,
            "{kill}: the quarantined file has no record: status would not show it"
        );
        ended
    });
    tally.report("delta", plan.seed);
}

// ---- full --from-xml -----------------------------------------------------------------------

/// A live replica (plain file, or already a generation from an earlier `full`) with a local
/// contact and a receipt in the outboxes, and a full export set to build from.
fn full_xml_world(per_file: u32, linked: bool) -> Workspace {
    let ws = Workspace::new();
    write_config(&ws, XML_CONFIG);
    ws.write_export(
        "20250101000000_0_m.xml",
        &export(&members(0..per_file, "old"), &[], &[]),
    );
    ok(cmd(&ws, None, &["-q", "delta"]));
    if linked {
        let old = full_set(per_file / 2, "20250601000000", "older-full");
        old.write_to(&ws.path().join("oldset"));
        ok(cmd(&ws, None, &["-q", "full", "--from-xml", "oldset"]));
    }
    ok(cmd(
        &ws,
        None,
        &[
            "-q",
            "contact",
            "add",
            "--email",
            "till@example.com",
            "--mobile",
            "070-999 99 99",
        ],
    ));
    let receipt = json!({
        "contact": {"matchKeyType": "localKey", "matchKey": "L0600-000001"},
        "uniqueReceiptId": "R-1", "createdDate": "2026-11-25T15:55:54+01:00",
        "currency": "SEK", "totalGrossPrice": 10.0,
        "paymentMethods": [{"type": "Card", "value": 10.0}],
        "items": [{"type": "PURCHASE", "quantity": 1, "grossPaidPrice": 10.0, "taxAmount": 2.0,
                   "taxPercent": 25.0, "sku": "1", "articleNumber": "2", "articleName": "Sock"}]
    });
    let path = ws.path().join("receipt.json");
    std::fs::write(&path, receipt.to_string()).expect("receipt");
    ok(cmd(&ws, None, &["-q", "receipt", "add", "receipt.json"]));
    full_set(per_file, "20260201000000", "full").write_to(&ws.path().join("fullset"));
    ws
}

/// Everything `full` must carry over or produce, to compare with the uninterrupted run.
fn replica_state(ws: &Workspace) -> Vec<Rows> {
    vec![contacts(ws), ledger(ws), outboxes(ws), history(ws)]
}

/// What a rerun of `full` must leave: the uninterrupted run's state, with one more `full` in
/// the history when the killed run had already finished everything (killed on its way out).
fn after_rerun(killed: &[Rows], new_state: &[Rows]) -> Vec<Rows> {
    after_rerun_of("full", killed, new_state)
}

/// The same for `command`.
fn after_rerun_of(command: &str, killed: &[Rows], new_state: &[Rows]) -> Vec<Rows> {
    let mut expected = new_state.to_vec();
    if killed == new_state {
        expected[3].push(vec![Some(command.into()), Some("ok".into())]);
    }
    expected
}

/// After a `full` finished: `<db>` links to the one generation there is, and nothing else of
/// a build, an earlier generation or a half-made link is left (they hold personal data).
fn assert_no_leftovers(ws: &Workspace, what: &str) {
    let db = ws.db();
    let link = std::fs::read_link(&db).unwrap_or_else(|e| panic!("{what}: {db:?} link: {e}"));
    let current = link
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let dir = ws.path().join("replica.db.d");
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(&current),
            "{what}: stray file {name} in {} (current {current})",
            dir.display()
        );
    }
    for stray in ["replica.db.swap", "replica.db-wal", "replica.db-shm"] {
        assert!(
            std::fs::symlink_metadata(ws.path().join(stray)).is_err(),
            "{what}: stray {stray}"
        );
    }
}

/// The Engage contacts of [`full_xml_world`] before its `full` (the delta's file, or when
/// `linked` the earlier full set, which replaced it: the delta's contacts are older than that
/// set's snapshot, so none is merged over), from the model.
fn full_xml_old_model(per_file: u32, linked: bool) -> Rows {
    let set = if linked {
        full_set(per_file / 2, "20250601000000", "older-full")
    } else {
        ExportSet {
            files: Vec::new(),
            bad: None,
            ops: vec![upserts(0..per_file, "old")],
        }
    };
    model_states(&set).pop().expect("a state")
}

/// Checks the contacts in service against the model's Engage contacts, plus the till's one
/// local contact (no contact id), which every `full` keeps.
fn assert_models(state: &[Rows], engage: &Rows, what: &str) {
    let (local, from_engage): (Rows, Rows) = project(state[0].clone())
        .into_iter()
        .partition(|r| r[0].is_none());
    same(&[from_engage], std::slice::from_ref(engage), what);
    let till_contact = [
        None,
        None,
        Some("till@example.com".to_string()),
        Some("+46709999999".to_string()),
        None,
        None,
        None,
    ];
    assert_eq!(local, [till_contact], "{what}: the till's local contact");
}

fn full_xml_matrix(plan: Plan) {
    let per_file = plan.per_file;
    let build_states = model_states(&full_set(per_file, "20260201000000", "full"));
    let full = |ws: &Workspace| cmd(ws, None, &["full", "--from-xml", "fullset"]);
    let mut tally = Tally::default();
    for linked in [false, true] {
        let reference = full_xml_world(per_file, linked);
        let old_state = replica_state(&reference);
        let took = timed_ok(full(&reference));
        let new_state = replica_state(&reference);
        // The uninterrupted run the trials are compared with is itself checked against the
        // model: the old replica holds what its files said, the new one the full set (its
        // snapshot is newer than every live change, so nothing is merged over).
        let new_model = build_states.last().expect("a state");
        assert_models(
            &old_state,
            &full_xml_old_model(per_file, linked),
            "old replica",
        );
        assert_models(&new_state, new_model, "uninterrupted full");
        assert_no_leftovers(&reference, "uninterrupted");

        let mut kills = Vec::new();
        if !linked {
            kills.extend(at("import.file_applied", &[1, 2, 3, 4]));
            kills.extend(at("import.before_commit", &[1]));
            kills.extend(at("import.after_commit", &[1]));
            kills.extend(at("full.indexed", &[1]));
            kills.extend(at("full.built", &[1]));
            kills.extend(at("full.merged", &[1]));
        }
        for name in [
            "full.before_fsync",
            "full.generation_moved",
            "full.link_made",
            "full.swapped",
        ] {
            kills.extend(at(name, &[1]));
        }
        let mut rng = fastrand::Rng::with_seed(plan.seed ^ u64::from(linked));
        kills.extend(timed(&mut rng, plan.timed_kills, took));
        let t = run_trials(kills, plan.parallel, |kill| {
            let ws = full_xml_world(per_file, linked);
            let ended = run_killed(full(&ws), kill);
            // Readers see the old replica or the whole new one.
            let now = replica_state(&ws);
            assert!(
                now == old_state || now[..3] == new_state[..3],
                "{kill}: the replica in service is neither the old nor the new one"
            );
            if now == old_state {
                check_build_prefix(&ws, &build_states, kill);
            }
            ok(full(&ws));
            same(
                &replica_state(&ws),
                &after_rerun(&now, &new_state),
                &format!("{kill}: after the rerun"),
            );
            assert_no_leftovers(&ws, &kill.to_string());
            ended
        });
        tally.failpoint_kills += t.failpoint_kills;
        tally.timed_kills += t.timed_kills;
        tally.timed_finished_first += t.timed_finished_first;
    }
    tally.report("full --from-xml", plan.seed);
}

/// An unfinished build holds whole files only (before the merge adds the live replica's).
fn check_build_prefix(ws: &Workspace, states: &[Rows], kill: &Kill) {
    let build = ws.path().join("replica.db.d/building.db");
    if !build.exists() {
        return;
    }
    let conn = rusqlite::Connection::open(&build).expect("build");
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("schema");
    if tables == 0 {
        return; // killed before the build's schema was made
    }
    let merged: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM meta WHERE key = 'full_snapshot_version'",
            [],
            |r| r.get(0),
        )
        .expect("meta");
    let files: i64 = conn
        .query_row("SELECT count(*) FROM applied_file", [], |r| r.get(0))
        .expect("ledger");
    if merged {
        return;
    }
    let mut stmt = conn
        .prepare(
            "SELECT contact_id, local_key, member_number, email, mobile_phone, external_id, \
             social_security_number, contact_type, first_name, last_name, attributes \
             FROM contact ORDER BY contact_id",
        )
        .expect("prepare");
    let contacts: Vec<Vec<Option<String>>> = stmt
        .query_map([], |r| (0..11).map(|i| r.get(i)).collect())
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    same(
        &[project(contacts)],
        &[states[files as usize].clone()],
        &format!("{kill}: the build holds whole files only"),
    );
}

// ---- full from the API, then changes -------------------------------------------------------

/// A fake Engage with `n` contacts created a minute apart until an hour ago, ids from a fixed
/// seed (so every trial sees the same data).
fn api_fake(n: usize) -> FakeEngage {
    let fake = FakeEngage::start(FakeConfig {
        id_seed: Some(20261125),
        ..FakeConfig::default()
    });
    let start = Utc::now() - TimeDelta::minutes(n as i64 + 60);
    fake.seed_contacts_spaced(n, start, Duration::from_secs(60));
    fake
}

fn api_config(fake: &FakeEngage) -> String {
    format!(
        "[engage]\nbase_url = \"{}\"\nrate_limit = 200\nmax_concurrency = 8\nretry_base = \"10ms\"\n\
         retry_cap = \"100ms\"\nrequest_timeout = \"5s\"\n[local]\nstore_external_id = \"0600\"\n",
        fake.base_url()
    )
}

/// `full` from the API (into a replica holding a local contact), killed at every failpoint
/// and at random; then, on the same Engage after changes there, `changes`.
fn api_matrix(plan: Plan) {
    let fake = api_fake(plan.api_contacts);
    let template = Workspace::new();
    write_config(&template, &api_config(&fake));
    ok(cmd(&template, None, &["-q", "init"]));
    ok(cmd(
        &template,
        None,
        &["-q", "contact", "add", "--email", "till@example.com"],
    ));
    let full = |ws: &Workspace| cmd(ws, Some(&fake), &["full"]);

    let reference = clone_ws(&template);
    let old_state = replica_state(&reference);
    let took = timed_ok(full(&reference));
    let new_state = replica_state(&reference);
    assert_eq!(new_state[0].len(), plan.api_contacts + 1);

    let mut kills = at("full.api_listed", &[1]);
    kills.extend(at("fetch.page_committed", &[1]));
    kills.extend(at("full.api_batch", &[1]));
    kills.extend(at("full.built", &[1]));
    kills.extend(at("full.merged", &[1]));
    kills.extend(at("full.swapped", &[1]));
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 2);
    kills.extend(timed(&mut rng, plan.timed_kills, took));
    let tally = run_trials(kills, plan.parallel, |kill| {
        let ws = clone_ws(&template);
        let ended = run_killed(full(&ws), kill);
        let now = replica_state(&ws);
        assert!(
            now == old_state || now[..3] == new_state[..3],
            "{kill}: the replica in service is neither the old nor the new one"
        );
        ok(full(&ws));
        same(
            &replica_state(&ws),
            &after_rerun(&now, &new_state),
            &format!("{kill}: after the rerun"),
        );
        assert_no_leftovers(&ws, &kill.to_string());
        ended
    });
    tally.report("full from the API", plan.seed);

    // Changes in Engage after the reference's full: most contacts updated (more than a page),
    // some deleted, some created.
    let ids = fake.contact_ids();
    for id in ids.iter().take(plan.api_contacts - 10) {
        assert!(fake.update_contact(id, json!({"city": "Changed"})));
    }
    for id in ids.iter().rev().take(5) {
        assert!(fake.delete_contact(id));
    }
    for i in 0..5 {
        fake.add_contact(json!({"email": format!("new{i}@example.com"), "firstName": "Ny"}));
    }
    let changes_template = reference;
    let before = (
        contacts(&changes_template),
        cursor(&changes_template).expect("cursor after full"),
    );
    let changes = |ws: &Workspace| cmd(ws, Some(&fake), &["changes"]);
    let reference = clone_ws(&changes_template);
    let took = timed_ok(changes(&reference));
    let after = contacts(&reference);
    assert_eq!(after.len(), plan.api_contacts + 1, "5 deleted, 5 created");
    assert_ne!(after, before.0);

    let mut kills = at("changes.listed", &[1]);
    kills.extend(at("fetch.page_committed", &[1]));
    kills.extend(at("changes.before_cursor_commit", &[1]));
    kills.extend(at("changes.after_cursor_commit", &[1]));
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 3);
    kills.extend(timed(&mut rng, plan.timed_kills, took));
    let tally = run_trials(kills, plan.parallel, |kill| {
        let ws = clone_ws(&changes_template);
        let ended = run_killed(changes(&ws), kill);
        // The cursor is never ahead of the data.
        let c = cursor(&ws).expect("cursor");
        if c != before.1 {
            assert!(c > before.1, "{kill}: cursor moved back");
            same(
                &[contacts(&ws)],
                std::slice::from_ref(&after),
                &format!("{kill}: cursor advanced without its data"),
            );
        }
        ok(changes(&ws));
        same(
            &[contacts(&ws)],
            std::slice::from_ref(&after),
            &format!("{kill}: after the rerun"),
        );
        assert!(cursor(&ws).expect("cursor") > before.1, "{kill}: cursor");
        ended
    });
    tally.report("changes", plan.seed);
}

fn cursor(ws: &Workspace) -> Option<String> {
    rows(
        ws,
        "SELECT position FROM sync_cursor WHERE name = 'changes'",
    )
    .into_iter()
    .next()
    .and_then(|r| r[0].clone())
}

// ---- push-local ----------------------------------------------------------------------------

const MEMBERS: usize = 6;
const CONTACTS: usize = 3;

fn push_world(fake: &FakeEngage) -> Workspace {
    let ws = Workspace::new();
    write_config(
        &ws,
        &format!(
            "[engage]\nbase_url = \"{}\"\nrate_limit = 200\nretry_base = \"10ms\"\n\
             retry_cap = \"100ms\"\nrequest_timeout = \"3s\"\nmax_retries = 3\n\
             [local]\nstore_external_id = \"0600\"\nbulk_poll_interval = \"10ms\"\n\
             bulk_poll_timeout = \"5s\"\nrecheck_after = \"0s\"\n",
            fake.base_url()
        ),
    );
    // A contact Engage and the replica both know, changed at the till: a bulk update.
    let known = fake.add_contact(json!({"email": "known@example.com", "firstName": "Known"}));
    ws.write_export(
        "20260101000000_0_m.xml",
        &format!(
            "<?xml version=\"1.0\"?><contacts xmlns=\"{NS}\"><new><member source=\"POS\">\
             <contactId>{known}</contactId><email>known@example.com</email>\
             <firstName>Known</firstName></member></new></contacts>"
        ),
    );
    ok(cmd(&ws, None, &["-q", "delta"]));
    ok(cmd(
        &ws,
        None,
        &[
            "-q",
            "contact",
            "update",
            "--contact-id",
            &known,
            "--first-name",
            "Changed",
        ],
    ));
    // Local contacts of two types (two bulk creates) and receipts for them.
    let mut lines = String::new();
    for i in 0..MEMBERS + CONTACTS {
        let t = if i < MEMBERS { "Member" } else { "Contact" };
        lines.push_str(&format!(
            "{{\"email\":\"local{i}@example.com\",\"mobilePhone\":\"+4673000{i:04}\",\
             \"firstName\":\"Local\",\"contactType\":\"{t}\"}}\n"
        ));
    }
    std::fs::write(ws.path().join("contacts.jsonl"), lines).expect("contacts");
    ok(cmd(
        &ws,
        None,
        &["-q", "contact", "add", "--from", "contacts.jsonl"],
    ));
    let mut receipts = String::new();
    for (id, contact) in push_receipts(&known) {
        receipts.push_str(&receipt_json(&id, contact).to_string());
        receipts.push('\n');
    }
    std::fs::write(ws.path().join("receipts.jsonl"), receipts).expect("receipts");
    ok(cmd(&ws, None, &["-q", "receipt", "add", "receipts.jsonl"]));
    ws
}

/// (uniqueReceiptId, contact reference) of the till's receipts; customer e-mails in
/// [`push_customers`].
fn push_receipts(known: &str) -> Vec<(String, Value)> {
    let mut r: Vec<(String, Value)> = (0..MEMBERS + CONTACTS)
        .map(|i| {
            (
                format!("R-{i}"),
                json!({"matchKeyType": "localKey", "matchKey": format!("L0600-{:06}", i + 1)}),
            )
        })
        .collect();
    r.push((
        "R-known".into(),
        json!({"matchKeyType": "contactId", "matchKey": known}),
    ));
    r.push((
        "R-phone".into(),
        json!({"matchKeyType": "mobilePhone", "matchKey": "+46730000001"}),
    ));
    r.push((
        "R-walkin".into(),
        json!({"email": "walkin@example.com", "firstName": "Walk"}),
    ));
    r
}

/// uniqueReceiptId → the e-mail of the customer it must be tagged to.
fn push_customers() -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = (0..MEMBERS + CONTACTS)
        .map(|i| (format!("R-{i}"), format!("local{i}@example.com")))
        .collect();
    m.insert("R-known".into(), "known@example.com".into());
    m.insert("R-phone".into(), "local1@example.com".into());
    m.insert("R-walkin".into(), "walkin@example.com".into());
    m
}

fn receipt_json(id: &str, contact: Value) -> Value {
    json!({
        "contact": contact, "uniqueReceiptId": id, "receiptNumber": id,
        "createdDate": "2026-11-25T15:55:54+01:00", "currency": "SEK", "totalGrossPrice": 20.0,
        "paymentMethods": [{"type": "Card", "value": 20.0}],
        "items": [{"type": "PURCHASE", "quantity": 1, "grossPaidPrice": 20.0, "taxAmount": 4.0,
                   "taxPercent": 25.0, "sku": "1", "articleNumber": "2", "articleName": "Sock"}]
    })
}

/// Runs push-local until it exits 0.
fn push_until_done(ws: &Workspace, fake: &FakeEngage, what: &str) {
    for _ in 0..6 {
        let out = output(cmd(ws, Some(fake), &["push-local"]));
        if out.status.success() {
            return;
        }
        assert_eq!(out.status.code(), Some(75), "{what}: {}", stderr_of(&out));
    }
    panic!("{what}: push-local did not finish in 6 runs");
}

/// Engage's side of a finished push: contacts by e-mail (without the ids and member numbers
/// Engage assigns in arrival order) and receipts by id with their customer's e-mail.
fn engage_state(fake: &FakeEngage) -> (BTreeMap<String, Value>, BTreeMap<String, String>) {
    let email_of = |id: &str| {
        fake.contact(id).expect("customer")["email"]
            .as_str()
            .expect("email")
            .to_string()
    };
    let contacts = fake
        .contacts()
        .into_iter()
        .map(|(_, mut attrs)| {
            attrs
                .as_object_mut()
                .expect("object")
                .remove("memberNumber");
            (attrs["email"].as_str().expect("email").to_string(), attrs)
        })
        .collect();
    let receipts = fake
        .receipts()
        .into_iter()
        .map(|r| (r.unique_receipt_id.clone(), email_of(&r.contact_id)))
        .collect();
    (contacts, receipts)
}

/// Exactly once: every contact created once and linked to the right Engage contact, every
/// receipt stored once for the right customer and posted again after Engage's answer only if
/// the kill left it `in_flight` (answered, not yet recorded: `unsettled`), and then once; the
/// update delivered, nothing left queued.
fn assert_exactly_once(ws: &Workspace, fake: &FakeEngage, unsettled: &[String], what: &str) {
    let mut emails: Vec<String> = (0..MEMBERS + CONTACTS)
        .map(|i| format!("local{i}@example.com"))
        .collect();
    emails.push("walkin@example.com".into());
    for email in &emails {
        assert_eq!(
            fake.creates_for("email", email),
            1,
            "{what}: {email} created once"
        );
    }
    assert_eq!(
        fake.contact_count(),
        emails.len() + 1,
        "{what}: no other contact"
    );
    let stored = fake.receipts();
    assert_eq!(
        stored.len(),
        push_customers().len(),
        "{what}: receipts stored once each"
    );
    assert_reposts_only_unsettled(fake, unsettled, what);
    let (_, receipts) = engage_state(fake);
    assert_eq!(receipts, push_customers(), "{what}: receipts' customers");
    for row in contacts(ws) {
        let (Some(id), Some(email)) = (&row[0], &row[3]) else {
            panic!("{what}: a contact without a contactId or e-mail: {row:?}");
        };
        let engage = fake
            .contact(id)
            .unwrap_or_else(|| panic!("{what}: {id} unknown"));
        assert_eq!(
            engage["email"].as_str(),
            Some(email.as_str()),
            "{what}: {id} linked to the wrong Engage contact"
        );
    }
    let known = fake.find_contacts("email", "known@example.com");
    assert_eq!(
        fake.contact(&known[0]).expect("known")["firstName"],
        "Changed",
        "{what}: the update was delivered"
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state != 'delivered'")
            + ws.count("SELECT count(*) FROM receipt_outbox WHERE state != 'delivered'"),
        0,
        "{what}: everything delivered"
    );
}

fn push_matrix(plan: Plan) {
    let fake = lenient_fake();
    let reference = push_world(&fake);
    let took = timed_ok(cmd(&reference, Some(&fake), &["push-local"]));
    assert_exactly_once(&reference, &fake, &[], "uninterrupted");
    let expected = engage_state(&fake);
    drop(fake);

    let mut kills = at("push.claimed", &[1, 2, 3]);
    kills.extend(at("push.bulk_sent", &[1, 2, 3]));
    kills.extend(at("push.batch_stored", &[1, 3]));
    kills.extend(at("push.polled", &[1, 3]));
    kills.extend(at("push.batch_recorded", &[1, 2, 3]));
    kills.extend(at("push.receipts_claimed", &[1]));
    kills.extend(at("push.receipt_posted", &[1, 6]));
    kills.extend(at("push.receipt_recorded", &[1, 11]));
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 4);
    kills.extend(timed(&mut rng, plan.timed_kills, took));
    let tally = run_trials(kills, plan.parallel, |kill| {
        let fake = lenient_fake();
        let ws = push_world(&fake);
        let ended = run_killed(cmd(&ws, Some(&fake), &["push-local"]), kill);
        let unsettled = receipts_in_flight(&ws);
        push_until_done(&ws, &fake, &kill.to_string());
        assert_exactly_once(&ws, &fake, &unsettled, &kill.to_string());
        assert_eq!(engage_state(&fake), expected, "{kill}: Engage's state");
        ended
    });
    tally.report("push-local", plan.seed);
}

// ---- purge ---------------------------------------------------------------------------------

/// A replica with contacts and runs aged 40 days, and a till store with 20 receipts delivered
/// 40 days ago (their ids start with `Quokka-`, the marker that must leave every file) and 5
/// pending ones (never purged).
fn purge_world(per_file: u32) -> Workspace {
    let ws = Workspace::new();
    write_config(&ws, XML_CONFIG);
    ws.write_export(
        "20250101000000_0_m.xml",
        &export(&members(0..per_file, "p"), &[], &[]),
    );
    ok(cmd(&ws, None, &["-q", "delta"]));
    let mut receipts = String::new();
    for (i, id) in (0..20)
        .map(|i| format!("Quokka-{i:03}"))
        .chain((0..5).map(|i| format!("Keep-{i}")))
        .enumerate()
    {
        let contact = json!({"matchKeyType": "contactId", "matchKey": guid(i as u32)});
        receipts.push_str(&receipt_json(&id, contact).to_string());
        receipts.push('\n');
    }
    std::fs::write(ws.path().join("receipts.jsonl"), receipts).expect("receipts");
    ok(cmd(&ws, None, &["-q", "receipt", "add", "receipts.jsonl"]));
    std::fs::remove_file(ws.path().join("receipts.jsonl")).expect("the till's input is gone");
    let past =
        (Utc::now() - TimeDelta::days(40)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    ws.till_conn()
        .execute(
            "UPDATE receipt_outbox SET state = 'delivered', finished_at = ?1 \
             WHERE unique_receipt_id LIKE 'Quokka-%'",
            [&past],
        )
        .expect("deliver");
    ws.replica_conn()
        .execute("UPDATE run SET started_at = ?1, finished_at = ?1", [&past])
        .expect("age runs");
    ws
}

/// `purge` killed inside its replica transaction and at random: the rerun ends where an
/// uninterrupted purge ends, the pending receipts are never lost, and the purged ones are in
/// no file.
fn purge_matrix(plan: Plan) {
    let purge = |ws: &Workspace| cmd(ws, None, &["purge", "--older-than", "30d"]);
    let reference = purge_world(plan.per_file);
    let took = timed_ok(purge(&reference));
    let new_state = replica_state(&reference);
    let pending: Vec<Rows> = vec![rows(
        &reference,
        "SELECT unique_receipt_id FROM receipt_outbox WHERE state = 'pending' ORDER BY id",
    )];
    assert_eq!(pending[0].len(), 5);
    assert!(holding(&reference, "Quokka-").is_empty(), "uninterrupted");

    let mut kills = at("purge.rows_deleted", &[1]);
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 5);
    kills.extend(timed(&mut rng, plan.timed_kills, took));
    let tally = run_trials(kills, plan.parallel, |kill| {
        let ws = purge_world(plan.per_file);
        let ended = run_killed(purge(&ws), kill);
        let left = vec![rows(
            &ws,
            "SELECT unique_receipt_id FROM receipt_outbox WHERE state = 'pending' ORDER BY id",
        )];
        same(
            &left,
            &pending,
            &format!("{kill}: pending receipts after the kill"),
        );
        let now = replica_state(&ws);
        ok(purge(&ws));
        same(
            &replica_state(&ws),
            &after_rerun_of("purge", &now, &new_state),
            &format!("{kill}: after the rerun"),
        );
        let left = holding(&ws, "Quokka-");
        assert!(left.is_empty(), "{kill}: purged receipts left in {left:?}");
        ended
    });
    tally.report("purge", plan.seed);
}

// ---- the replica's move to schema 4: the till's data into the till store -------------------

/// The replica schema before the till store (schema 3), as an earlier engage-sync made it.
const SCHEMA_3: [&str; 3] = [
    include_str!("../src/replica/migrations/0001_init.sql"),
    include_str!("../src/replica/migrations/0002_sync_state.sql"),
    include_str!("../src/replica/migrations/0003_outbox.sql"),
];

/// The till's data of the schema-3 world, as the test wrote it: the outbox items (kind, key,
/// state), the key sequence, the links.
fn till_data_written() -> Vec<Rows> {
    let t = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    vec![
        vec![
            t(&["c", "create", "L0600-000001", "pending"]),
            t(&["c", "create", "L0600-000002", "delivered"]),
            t(&["c", "update", &guid(3), "pending"]),
            t(&["r", "R-1", "pending"]),
            t(&["r", "R-2", "delivered"]),
        ],
        vec![t(&["L0600-", "2"])],
        vec![t(&["L0600-000002", &guid(100)])],
    ]
}

/// The same, read back (from the till store after the move, or the replica before it).
fn till_data(ws: &Workspace, from_replica: bool) -> Vec<Rows> {
    let conn = if from_replica {
        ws.replica_conn()
    } else {
        ws.till_conn()
    };
    let read = |sql: &str| -> Rows {
        let mut stmt = conn.prepare(sql).expect(sql);
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n).map(|i| r.get::<_, Option<String>>(i)).collect()
        })
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
    };
    vec![
        {
            let mut items = read(
                "SELECT 'c', op, coalesce(local_key, contact_id), state FROM contact_outbox \
                 ORDER BY id",
            );
            items.extend(read(
                "SELECT 'r', unique_receipt_id, state FROM receipt_outbox ORDER BY id",
            ));
            items
        },
        read("SELECT prefix, CAST(last AS TEXT) FROM local_key_seq"),
        read("SELECT local_key, contact_id FROM local_key_link ORDER BY local_key"),
    ]
}

/// A replica of schema 3 holding 20 Engage contacts, a contact registered at the till and not
/// yet pushed (`L0600-000001`), one pushed and linked (`L0600-000002` → contact 100), a
/// queued change of contact 3, receipts pending and delivered, and the key sequence at 2.
fn schema_3_world() -> Workspace {
    let ws = Workspace::new();
    write_config(&ws, XML_CONFIG);
    let conn = rusqlite::Connection::open(ws.db()).expect("create");
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("wal");
    for sql in SCHEMA_3 {
        conn.execute_batch(sql).expect("schema 3");
    }
    conn.execute_batch("INSERT INTO meta VALUES ('mode', 'full'); PRAGMA user_version = 3;")
        .expect("meta");
    let insert = "INSERT INTO contact (contact_id, local_key, email, first_name, attributes, \
                  version, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 't')";
    for n in 0..20 {
        let email = format!("user{n}@example.com");
        let attrs = json!({"contactId": guid(n), "email": email, "firstName": "Engage"});
        conn.execute(
            insert,
            rusqlite::params![
                guid(n),
                None::<String>,
                email,
                "Engage",
                attrs.to_string(),
                100
            ],
        )
        .expect("contact");
    }
    let local = json!({"email": "walkin@example.com", "firstName": "Walkin"});
    conn.execute(
        insert,
        rusqlite::params![
            None::<String>,
            "L0600-000001",
            "walkin@example.com",
            "Walkin",
            local.to_string(),
            200
        ],
    )
    .expect("local contact");
    let linked = json!({"contactId": guid(100), "email": "linked@example.com"});
    conn.execute(
        insert,
        rusqlite::params![
            guid(100),
            "L0600-000002",
            "linked@example.com",
            "Linked",
            linked.to_string(),
            200
        ],
    )
    .expect("linked contact");
    conn.execute_batch(&format!(
        "INSERT INTO local_key_seq VALUES ('L0600-', 2);
         INSERT INTO local_key_link VALUES ('L0600-000002', '{g100}', 't');
         INSERT INTO contact_outbox (op, local_key, contact_id, fields, state, created_at,
             updated_at) VALUES ('create', 'L0600-000001', NULL,
             '{{\"email\":\"walkin@example.com\"}}', 'pending', 't', 't');
         INSERT INTO contact_outbox (op, local_key, contact_id, fields, state, created_at,
             updated_at, finished_at) VALUES ('create', 'L0600-000002', '{g100}',
             '{{\"email\":\"linked@example.com\"}}', 'delivered', 't', 't', 't');
         INSERT INTO contact_outbox (op, local_key, contact_id, fields, state, created_at,
             updated_at) VALUES ('update', NULL, '{g3}', '{{\"firstName\":\"Till\"}}',
             'pending', 't', 't');
         INSERT INTO outbox_batch VALUES ('b-1', 'create', 1, 'completed', 1, 't', 't');
         INSERT INTO receipt_outbox (unique_receipt_id, body, ref_type, ref_value, state,
             created_at, updated_at) VALUES ('R-1', '{{}}', 'localKey', 'L0600-000001',
             'pending', 't', 't');
         INSERT INTO receipt_outbox (unique_receipt_id, body, ref_type, ref_value, state,
             created_at, updated_at, finished_at) VALUES ('R-2', '{{}}', 'contactId', '{g3}',
             'delivered', 't', 't', 't');",
        g100 = guid(100),
        g3 = guid(3),
    ))
    .expect("till data");
    drop(conn);
    assert_eq!(till_data(&ws, true), till_data_written());
    ws
}

fn user_version(ws: &Workspace) -> i64 {
    ws.replica_conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version")
}

/// After the move: the till store holds exactly what the replica held, the replica holds
/// none of it, readers see every contact with its local key, and the key sequence goes on.
fn assert_moved(ws: &Workspace, what: &str) {
    // 4 moves the till's data; 5 (the folders purge covers), 6 (keys by libphonenumber's
    // plans) and 7 (change numbers) may not be applied yet after a kill.
    assert!(matches!(user_version(ws), 4..=7), "{what}");
    assert_eq!(
        till_data(ws, false),
        till_data_written(),
        "{what}: the till store"
    );
    let left = ws.count(
        "SELECT count(*) FROM main.sqlite_master WHERE name IN ('contact_outbox', \
         'receipt_outbox', 'outbox_batch', 'local_key_seq', 'local_key_link')",
    );
    assert_eq!(left, 0, "{what}: outbox tables left in the replica");
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM main.contact WHERE local_key IS NOT NULL OR contact_id IS NULL"
        ),
        0,
        "{what}: till rows left in the replica"
    );
    assert_eq!(ws.count("SELECT count(*) FROM contacts"), 22, "{what}");
    assert_found_by_local_keys(ws, what);
}

/// `lookup` finds both contacts registered at the till by their local keys (on a replica
/// moved to the till store, and on one of schema 3 not moved yet).
fn assert_found_by_local_keys(ws: &Workspace, what: &str) {
    for (key, email) in [
        ("L0600-000001", "walkin@example.com"),
        ("L0600-000002", "linked@example.com"),
    ] {
        let out = output(cmd(ws, None, &["--json", "lookup", "--local-key", key]));
        assert!(
            out.status.success() && stdout_of(&out).contains(email),
            "{what}: lookup --local-key {key}: {}{}",
            stdout_of(&out),
            stderr_of(&out)
        );
    }
}

/// The move to schema 4, killed between its two steps and at random: run again, the till's
/// data is in the till store once, nothing lost or duplicated.
fn migrate_matrix(plan: Plan) {
    let migrate = |ws: &Workspace| cmd(ws, None, &["-q", "init"]);
    let reference = schema_3_world();
    // Before the move, lookups read the older replica as it is.
    assert_found_by_local_keys(&reference, "schema 3, not moved yet");
    assert_eq!(user_version(&reference), 3, "a lookup does not migrate");
    let took = timed_ok(migrate(&reference));
    assert_moved(&reference, "uninterrupted");
    let out = ok(cmd(
        &reference,
        None,
        &["--json", "contact", "add", "--email", "after@example.com"],
    ));
    assert!(
        stdout_of(&out).contains("L0600-000003"),
        "the key sequence goes on: {}",
        stdout_of(&out)
    );

    let mut kills = at("migrate.copied", &[1]);
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 6);
    kills.extend(timed(&mut rng, plan.timed_kills, took));
    let tally = run_trials(kills, plan.parallel, |kill| {
        let ws = schema_3_world();
        let ended = run_killed(migrate(&ws), kill);
        // Either still schema 3 with everything in the replica, or moved completely.
        if user_version(&ws) == 3 {
            assert_eq!(
                till_data(&ws, true),
                till_data_written(),
                "{kill}: the replica"
            );
            assert_found_by_local_keys(&ws, &format!("{kill}: not moved yet"));
        } else {
            assert_moved(&ws, &format!("{kill}: after the kill"));
        }
        ok(migrate(&ws));
        assert_moved(&ws, &format!("{kill}: after the rerun"));
        assert_eq!(
            user_version(&ws),
            7,
            "{kill}: migrated to the current schema"
        );
        ended
    });
    tally.report("migration to the till store", plan.seed);
}

// ---- re-normalising keys after the upgrade to schema 6 ---------------------------------------

/// Contacts of the rekey world: Engage sent their numbers with the country code but no `+`
/// (as its integration guide writes them), which the builds before schema 6 stored as
/// `+46` + the digits.
const REKEY_CONTACTS: u32 = 300;

/// What that build stored for contact `n`, and what the current rules store.
fn old_and_new_key(n: u32) -> (String, String) {
    (format!("+464670{n:07}"), format!("+4670{n:07}"))
}

/// A full-mode replica at schema 4 holding what the builds before schema 6 wrote.
fn rekey_world() -> Workspace {
    let ws = Workspace::new();
    write_config(&ws, XML_CONFIG);
    let members: Vec<String> = (0..REKEY_CONTACTS)
        .map(|n| {
            format!(
                "<member><contactId>{}</contactId><email>u{n}@example.com</email>\
                 <mobilePhone>4670{n:07}</mobilePhone></member>",
                guid(n)
            )
        })
        .collect();
    ws.write_export("20260101000000_1_export.xml", &export(&members, &[], &[]));
    ok(cmd(&ws, None, &["-q", "delta"]));
    let conn = ws.replica_conn();
    for n in 0..REKEY_CONTACTS {
        let (old, _) = old_and_new_key(n);
        conn.execute(
            "UPDATE contact SET mobile_phone = ?1 WHERE contact_id = ?2",
            rusqlite::params![old, guid(n)],
        )
        .expect("old key");
    }
    conn.execute_batch(UNDO_SCHEMA_7).expect("schema 6");
    conn.execute_batch(
        "DELETE FROM meta WHERE key = 'rekey'; DROP TABLE used_folder; PRAGMA user_version = 4;",
    )
    .expect("schema 4");
    drop(conn);
    ws
}

/// The stored keys by contact number; whether the mark is still there.
fn stored_keys(ws: &Workspace) -> (Vec<String>, bool) {
    let conn = ws.replica_conn();
    let mut stmt = conn
        .prepare("SELECT mobile_phone FROM contact ORDER BY contact_id")
        .expect("prepare");
    let keys = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<Vec<String>, _>>()
        .expect("rows");
    let marked = conn
        .query_row("SELECT count(*) FROM meta WHERE key = 'rekey'", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect("meta")
        == 1;
    (keys, marked)
}

fn rekey_matrix(plan: Plan) {
    let (old, new): (Vec<String>, Vec<String>) = (0..REKEY_CONTACTS).map(old_and_new_key).unzip();
    let rekey = |ws: &Workspace| cmd(ws, None, &["-q", "delta"]);
    let reference = rekey_world();
    assert_eq!(stored_keys(&reference), (old.clone(), false));
    let took = timed_ok(rekey(&reference));
    assert_eq!(
        stored_keys(&reference),
        (new.clone(), false),
        "uninterrupted"
    );

    let mut kills = at("rekey.updated", &[1]);
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 7);
    kills.extend(timed(&mut rng, plan.timed_kills, took));
    let tally = run_trials(kills, plan.parallel, |kill| {
        let ws = rekey_world();
        let ended = run_killed(rekey(&ws), kill);
        // All old keys (marked, or not migrated yet), or all new keys and no mark.
        let (keys, marked) = stored_keys(&ws);
        if keys == old {
            assert!(
                marked || user_version(&ws) < 6,
                "{kill}: old keys but no mark"
            );
        } else {
            assert_eq!((keys, marked), (new.clone(), false), "{kill}: half done");
        }
        ok(rekey(&ws));
        assert_eq!(
            stored_keys(&ws),
            (new.clone(), false),
            "{kill}: after the rerun"
        );
        ended
    });
    tally.report("re-normalising keys after the upgrade", plan.seed);
}

// ---- the tests -----------------------------------------------------------------------------

#[test]
fn delta_killed_anywhere_applies_whole_files_once() {
    delta_matrix(Plan::short());
}

#[test]
fn full_from_xml_killed_anywhere_swaps_in_once_and_leaves_nothing_behind() {
    full_xml_matrix(Plan::short());
}

#[test]
fn full_from_the_api_and_changes_killed_anywhere_converge() {
    api_matrix(Plan::short());
}

#[test]
fn push_local_killed_anywhere_delivers_exactly_once() {
    push_matrix(Plan::short());
}

#[test]
fn purge_killed_anywhere_loses_no_pending_item_and_leaves_no_purged_byte() {
    purge_matrix(Plan::short());
}

#[test]
fn the_move_to_the_till_store_killed_anywhere_moves_everything_once() {
    migrate_matrix(Plan::short());
}

#[test]
#[ignore = "long form: minutes; run with bash bench/crash_matrix.sh"]
fn crash_matrix_long() {
    let plan = Plan::long();
    println!(
        "crash matrix (long): {} contacts per export file, {} in Engage, {} timed kills per \
         scenario, seed {}",
        plan.per_file, plan.api_contacts, plan.timed_kills, plan.seed
    );
    delta_matrix(plan);
    full_xml_matrix(plan);
    api_matrix(plan);
    push_matrix(plan);
    purge_matrix(plan);
    migrate_matrix(plan);
    rekey_matrix(plan);
}

#[test]
fn rekey_killed_anywhere_leaves_old_keys_or_new_keys() {
    rekey_matrix(Plan::short());
}

#[test]
fn every_failpoint_is_in_the_matrix() {
    // publish's kill points are in tests/publish.rs (`publish_killed_anywhere_…`).
    let source = [include_str!("crash_matrix.rs"), include_str!("publish.rs")].concat();
    for name in engage_sync::failpoint::NAMES {
        assert!(
            source.contains(&format!("\"{name}\",")) || source.contains(&format!("at(\"{name}\"")),
            "failpoint {name} is never killed at"
        );
    }
}
