//! Helpers shared by the integration tests: a temp workspace, the real binary, export files
//! written on the fly, and a raw look into the replica.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rusqlite::Connection;
use serde_json::{json, Value};

pub const NS: &str = "http://eClub.Schemas.ExportMember";

/// The public read interface's view, exactly as the binary and the README use it.
pub const CONTACTS_VIEW: &str = include_str!("../../src/till_store/contacts_view.sql");

/// `[engage]` keys with test-sized waits and timeouts, for a workspace pointed at a fake.
pub const FAKE_ENGAGE_WAITS: &str = "retry_base = \"10ms\"\nretry_cap = \"100ms\"\n\
     request_timeout = \"3s\"\nconnect_timeout = \"1s\"\nrate_limit = 200\n";

/// `[local]` keys that make `push-local`'s waits test-sized: a store id, short bulk polls, and
/// a lookup again at once after a lost answer.
pub const FAST_PUSH: &str = "store_external_id = \"0600\"\nbulk_poll_interval = \"10ms\"\n\
     bulk_poll_timeout = \"5s\"\nrecheck_after = \"0s\"\n";

/// A temp folder with a replica path and an inbox.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("inbox")).expect("inbox");
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("replica.db")
    }

    pub fn inbox(&self) -> PathBuf {
        self.path().join("inbox")
    }

    /// The binary with `--db` set, run in the workspace, with no config from the environment.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same as a plain `std::process::Command`, for spawning.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("engage-sync"));
        cmd.current_dir(self.path())
            .env_remove("ENGAGE_SYNC_DB")
            .env_remove("ENGAGE_SYNC_CONFIG")
            .env_remove("ENGAGE_SYNC_DEFAULT_COUNTRY")
            .env_remove("ENGAGE_SYNC_LOG_FORMAT")
            // Tests start from an empty folder, where a sync job may create the replica when
            // asked (tests/no_stray_replica.rs checks the refusal without this).
            .env("ENGAGE_SYNC_CREATE_REPLICA", "true")
            // Tests write export files and import them at once (tests/files_and_databases.rs
            // checks the minimum age itself).
            .env("ENGAGE_SYNC_INBOX_MIN_AGE", "0s")
            // No config from the user's XDG folder (the workspace has no engage-sync/ in it).
            .env("XDG_CONFIG_HOME", self.path())
            .arg("--db")
            .arg(self.db());
        cmd
    }

    /// A workspace whose config points at `fake`, its replica made by `init`: `engage` holds
    /// the `[engage]` keys besides `base_url` (usually [`FAKE_ENGAGE_WAITS`] and more),
    /// `local` the `[local]` keys (usually [`FAST_PUSH`] and more).
    pub fn pointed_at(fake: &fake_engage::FakeEngage, engage: &str, local: &str) -> Workspace {
        let ws = Workspace::new();
        let config = format!(
            "[engage]\nbase_url = \"{}\"\n{engage}[local]\n{local}",
            fake.base_url()
        );
        std::fs::write(ws.path().join("engage-sync.toml"), config).expect("config");
        ws.init();
        ws
    }

    /// [`Workspace::cmd`] with `fake`'s API key in the environment and no `ENGAGE_BASE_URL`:
    /// the base URL comes from the workspace's config.
    pub fn engage_cmd(&self, fake: &fake_engage::FakeEngage) -> Command {
        let mut cmd = self.cmd();
        cmd.env("ENGAGE_API_KEY", fake.api_key())
            .env_remove("ENGAGE_BASE_URL");
        cmd
    }

    /// Creates the replica with `init` (with the workspace's config, if written), as an
    /// operator does before a till is used: till commands never create one.
    pub fn init(&self) {
        let out = self.std_cmd().args(["-q", "init"]).output().expect("init");
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates the replica in `mode` (`keys` or `full`).
    pub fn init_mode(&self, mode: &str) {
        let out = self
            .std_cmd()
            .args(["-q", "init", "--mode", mode])
            .output()
            .expect("init");
        assert!(
            out.status.success(),
            "init --mode {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes an export file into the inbox; returns its path.
    pub fn write_export(&self, name: &str, content: &str) -> PathBuf {
        let path = self.inbox().join(name);
        std::fs::write(&path, content).expect("write export");
        path
    }

    pub fn write_export_bytes(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.inbox().join(name);
        std::fs::write(&path, content).expect("write export");
        path
    }

    /// The till store beside the replica (`<db>.till`).
    pub fn till(&self) -> PathBuf {
        self.path().join("replica.db.till")
    }

    /// The replica with its till store attached as `till` and the public `contacts` view
    /// (interface version 2) created, as a POS reads them. Unqualified outbox tables resolve
    /// to the till store, `contact`, `tombstone`, `run` and `meta` to the replica.
    pub fn conn(&self) -> Connection {
        pos_connection(&self.db())
    }

    /// The replica alone (nothing attached).
    pub fn replica_conn(&self) -> Connection {
        Connection::open(self.db()).expect("open replica")
    }

    /// The till store alone (nothing attached).
    pub fn till_conn(&self) -> Connection {
        Connection::open(self.till()).expect("open the till store")
    }

    /// The `contacts` view without `updated_at` (which records when, not what), sorted.
    pub fn contacts(&self) -> Vec<Vec<Option<String>>> {
        if !self.db().exists() {
            return Vec::new();
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT contact_id, local_key, member_number, email, mobile_phone, external_id, \
                 social_security_number, contact_type, first_name, last_name, attributes \
                 FROM contacts ORDER BY contact_id",
            )
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| {
                (0..11)
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.conn().query_row(sql, [], |r| r.get(0)).expect("count")
    }

    pub fn quarantined(&self) -> Vec<String> {
        let dir = self.path().join("quarantine");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// A connection to the replica at `db` as a POS opens it (README "Reading the replica",
/// interface version 2): its till store `<db>.till` attached as `till` (when it exists) and
/// the `contacts` view created.
pub fn pos_connection(db: &Path) -> Connection {
    with_till(Connection::open(db).expect("open replica"), db)
}

/// The same, read-only (the till store is attached read-only with it), as a POS should open
/// them.
pub fn pos_reader(db: &Path) -> Connection {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open replica read-only");
    with_till(conn, db)
}

fn with_till(conn: Connection, db: &Path) -> Connection {
    let mut till = db.as_os_str().to_os_string();
    till.push(".till");
    if Path::new(&till).exists() {
        conn.execute(
            "ATTACH DATABASE ?1 AS till",
            [till.to_string_lossy().as_ref()],
        )
        .expect("attach the till store");
        // Fails only on a replica a kill left without tables; queries then find no view.
        let _ = conn.execute_batch(CONTACTS_VIEW);
    }
    conn
}

/// Every file under `dir`, in every subfolder.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The files under the workspace whose bytes hold `secret`.
pub fn holding(ws: &Workspace, secret: &str) -> Vec<String> {
    files_under(ws.path())
        .into_iter()
        .filter(|p| {
            let bytes = std::fs::read(p).expect("read");
            bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// A deterministic contact GUID.
pub fn guid(n: u32) -> String {
    format!("6f1c2e4a-3b1d-4c8e-9a0b-{n:012x}")
}

/// One `<member>` with the usual fields for contact `n`; `tag` varies the data between versions.
pub fn member(n: u32, tag: &str) -> String {
    format!(
        "<member source=\"POS\"><contactId>{}</contactId><memberNumber>M{n}</memberNumber>\
         <firstName>Åsa{tag}</firstName><lastName>Öberg{n}</lastName>\
         <email>User{n}@Example.com</email><mobilePhone>+4670{n:07}</mobilePhone>\
         <city>Umeå {tag}</city></member>",
        guid(n)
    )
}

pub fn deleted(n: u32) -> String {
    format!("<member><contactId>{}</contactId></member>", guid(n))
}

/// An export document with the given section contents.
pub fn export(new: &[String], updated: &[String], deleted: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<contacts xmlns=\"{NS}\">\n<new>{}</new>\n\
         <updated>{}</updated>\n<deleted>{}</deleted>\n</contacts>\n",
        new.concat(),
        updated.concat(),
        deleted.concat()
    )
}

pub fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A valid Engage receipt (store 0600, one item) for `contact` (a match key or contact data).
pub fn receipt(id: &str, contact: Value) -> Value {
    json!({
        "contact": contact,
        "uniqueReceiptId": id, "receiptNumber": "1",
        "createdDate": "2026-11-25T15:55:54+01:00", "storeExternalId": "0600",
        "currency": "SEK", "totalGrossPrice": 200.0,
        "paymentMethods": [{"type": "Card", "value": 200.0}],
        "items": [{"type": "PURCHASE", "quantity": 2, "grossPaidPrice": 200.0, "taxAmount": 40.0,
                   "taxPercent": 25.0, "sku": "1", "articleNumber": "2", "articleName": "Socks"}]
    })
}

/// A fake Engage whose uniqueness check is off, so a second create of the same person is
/// stored and counted instead of being refused: a test of exactly-once can then see it.
pub fn lenient_fake() -> fake_engage::FakeEngage {
    fake_engage::FakeEngage::start(fake_engage::FakeConfig {
        unique_keys: Vec::new(),
        ..fake_engage::FakeConfig::default()
    })
}

/// The receipts a killed `push-local` left in flight (claimed or sent, no answer recorded), by
/// `uniqueReceiptId`: the only ones it may post again after Engage's answer had gone out.
pub fn receipts_in_flight(ws: &Workspace) -> Vec<String> {
    let conn = ws.till_conn();
    let mut stmt = conn
        .prepare("SELECT unique_receipt_id FROM receipt_outbox WHERE state = 'in_flight'")
        .expect("prepare");
    let ids = stmt.query_map([], |r| r.get(0)).expect("query");
    ids.collect::<Result<_, _>>().expect("rows")
}

/// No receipt was posted again after Engage's answer had gone out, except those a kill left
/// unsettled (`unsettled`, from [`receipts_in_flight`]), and those once.
pub fn assert_reposts_only_unsettled(
    fake: &fake_engage::FakeEngage,
    unsettled: &[String],
    what: &str,
) {
    for (id, reposts) in fake.receipt_reposts() {
        assert!(
            unsettled.contains(&id) && reposts == 1,
            "{what}: {id} posted {reposts} more time(s) after Engage's answer had gone out \
             (unsettled by a kill: {unsettled:?})"
        );
    }
}

/// Every row of `tables` (through `conn`, which sees the `contacts` view), as text, sorted per
/// table: a snapshot to compare before and after a refused command.
pub fn table_rows(conn: &Connection, tables: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table}"))
            .expect("prepare");
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..columns)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .expect("query");
        let mut rows: Vec<String> = rows
            .map(|r| format!("{table}: {:?}", r.expect("row")))
            .collect();
        rows.sort();
        out.extend(rows);
    }
    out
}

/// The process state letter from /proc (`T` when stopped), or None once it is gone.
fn state(child: &std::process::Child) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A job frozen at a failpoint, killed when dropped unless let go first.
pub struct Frozen(Option<std::process::Child>);

impl Frozen {
    pub fn start(mut job: std::process::Command, failpoint: &str) -> Frozen {
        job.env("ENGAGE_SYNC_FAILPOINT", failpoint)
            .env("ENGAGE_SYNC_FAILPOINT_ACTION", "stop")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut frozen = Frozen(Some(job.spawn().expect("spawn job")));
        let child = frozen.0.as_mut().expect("job");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("the job ended before {failpoint}: {status:?}");
            }
            if state(child) == Some('T') {
                return frozen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the job never reached {failpoint}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Lets the job go on and requires it to succeed.
    pub fn finish(self, what: &str) {
        let out = self.go_on();
        assert!(
            out.status.success(),
            "{what}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Lets the job go on and returns how it ended.
    pub fn go_on(mut self) -> std::process::Output {
        let child = self.0.take().expect("job");
        let status = std::process::Command::new("kill")
            .args(["-CONT", &child.id().to_string()])
            .status()
            .expect("kill -CONT");
        assert!(status.success());
        child.wait_with_output().expect("wait")
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Takes a replica of this version back to schema 6, as a test of an upgrade needs it:
/// removes what migration 7 (change tracking for `publish`) added.
pub const UNDO_SCHEMA_7: &str = "DROP INDEX tombstone_by_change_seq; \
     ALTER TABLE contact DROP COLUMN change_seq; ALTER TABLE contact DROP COLUMN created_seq; \
     ALTER TABLE tombstone DROP COLUMN change_seq; \
     DROP TABLE change_counter; DROP TABLE change_log; DROP TABLE publication; \
     PRAGMA user_version = 6;";

/// The `values` whose bytes are still in the SQLite database `db` or its WAL, after a
/// checkpoint that moves every committed page into the main file and empties the WAL (the
/// WAL keeps old page images until then). `db` may be a symlink to a generation file: the
/// file it points at and that file's `-wal` are read.
pub fn sqlite_bytes_holding(db: &Path, values: &[&str]) -> Vec<String> {
    let conn = Connection::open(db).expect("open the database to checkpoint it");
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .expect("checkpoint");
    assert_eq!(busy, 0, "the checkpoint of {} was blocked", db.display());
    drop(conn);
    let main = std::fs::canonicalize(db).expect("canonical database path");
    let mut wal = main.clone().into_os_string();
    wal.push("-wal");
    let mut bytes = std::fs::read(&main).expect("read the database");
    if let Ok(more) = std::fs::read(&wal) {
        bytes.extend(more);
    }
    values
        .iter()
        .filter(|v| bytes.windows(v.len()).any(|w| w == v.as_bytes()))
        .map(|v| v.to_string())
        .collect()
}

/// Waits until `child` sleeps in the system call `nr` (from `/proc/PID/syscall`, e.g.
/// `libc::SYS_flock` while it waits for a lock): a point the test can then rely on, where a
/// fixed sleep would only guess. Panics if the child ends first or after two minutes.
pub fn wait_until_blocked_in(child: &mut std::process::Child, nr: i64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what}: the process ended ({status:?}) instead of blocking");
        }
        let call =
            std::fs::read_to_string(format!("/proc/{}/syscall", child.id())).unwrap_or_default();
        if call.split_whitespace().next() == Some(nr.to_string().as_str()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: never blocked"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Contacts Engage has and the replica knows (one export file, one delta), each with a queued
/// update of its first name; returns their ids.
pub fn replica_contacts_with_updates(
    fake: &fake_engage::FakeEngage,
    ws: &Workspace,
    n: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut members = Vec::new();
    for i in 0..n {
        let email = format!("known{i}@example.com");
        let id = fake.add_contact(json!({"email": email, "firstName": "Old"}));
        members.push(format!(
            "<member><contactId>{id}</contactId><email>{email}</email><firstName>Old</firstName></member>"
        ));
        ids.push(id);
    }
    ws.write_export("20260101100000_0_c.xml", &export(&members, &[], &[]));
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    for id in &ids {
        let out = ws
            .cmd()
            .args([
                "contact",
                "update",
                "--contact-id",
                id,
                "--first-name",
                "New",
            ])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    ids
}

/// The replica learns, from an export applied by `delta` (after the one
/// [`replica_contacts_with_updates`] writes), that Engage deleted the contacts `ids`.
pub fn replica_learns_deleted(ws: &Workspace, ids: &[String]) {
    let gone: Vec<String> = ids
        .iter()
        .map(|id| format!("<member><contactId>{id}</contactId></member>"))
        .collect();
    ws.write_export("20260102100000_0_c.xml", &export(&[], &[], &gone));
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// Each contact outbox item's (state, reason) in queue order, for the items `filter` (an SQL
/// condition, e.g. `state != 'delivered'`) selects.
pub fn contact_states(ws: &Workspace, filter: &str) -> Vec<(String, Option<String>)> {
    let conn = ws.till_conn();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT state, reason FROM contact_outbox WHERE {filter} ORDER BY id"
        ))
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    rows
}

/// `n` receipts (`{prefix}-0`, …) tagged with `contact_id`, one JSON object per line, as
/// `receipt add -` reads them.
pub fn receipt_lines(prefix: &str, n: usize, contact_id: &str) -> String {
    (0..n)
        .map(|i| {
            let r = receipt(
                &format!("{prefix}-{i}"),
                json!({"matchKeyType": "contactId", "matchKey": contact_id}),
            );
            format!("{r}\n")
        })
        .collect()
}
