//! A till write that comes while `full` swaps a new generation in is not lost: `full` is
//! frozen (SIGSTOP at a failpoint) between its merge and its swap, a till registers a contact
//! and buffers a receipt, and once `full` goes on both are in the replica in service.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{export, guid, member, Workspace};

const CONFIG: &str = "inbox = \"inbox\"\n[local]\nstore_external_id = \"0600\"\n";

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ok(mut cmd: Command, what: &str) {
    assert_ok(&cmd.output().expect("run"), what);
}

fn cmd(ws: &Workspace, args: &[&str]) -> Command {
    let mut c = ws.std_cmd();
    c.env_remove("ENGAGE_SYNC_FAILPOINT")
        .env_remove("ENGAGE_SYNC_FAILPOINT_ACTION")
        .args(args);
    c
}

/// The process state letter from /proc (`T` when stopped), or None once it is gone.
fn state(child: &Child) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn wait_stopped(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("full ended before its failpoint: {status:?}");
        }
        if state(child) == Some('T') {
            return;
        }
        assert!(Instant::now() < deadline, "full never reached full.merged");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped unless taken out first.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn resume(child: &Child) {
    let status = Command::new("kill")
        .args(["-CONT", &child.id().to_string()])
        .status()
        .expect("kill -CONT");
    assert!(status.success());
}

/// A workspace whose replica is a plain file, filled by one `delta`.
fn live_replica() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(ws.path().join("engage-sync.toml"), CONFIG).expect("config");
    let first: Vec<String> = (0..5).map(|n| member(n, "delta")).collect();
    ws.write_export("20250101000000_0_m.xml", &export(&first, &[], &[]));
    ok(cmd(&ws, &["-q", "delta"]), "delta");
    ws
}

/// Whether the replica path is a link to a generation (a `full` swapped one in).
fn is_generation(ws: &Workspace) -> bool {
    std::fs::symlink_metadata(ws.db())
        .expect("replica")
        .file_type()
        .is_symlink()
}

/// A full export set of two files, with contacts `first..first + 2 * per_file`.
fn write_full_set(ws: &Workspace, folder: &str, timestamp: &str, first: u32, per_file: u32) {
    let dir = ws.path().join(folder);
    std::fs::create_dir_all(&dir).expect("set folder");
    for i in 0..2 {
        let from = first + i * per_file;
        let members: Vec<String> = (from..from + per_file).map(|n| member(n, "full")).collect();
        std::fs::write(
            dir.join(format!("{timestamp}_{i}_full.xml")),
            export(&members, &[], &[]),
        )
        .expect("write set");
    }
}

const RECEIPT: &str = r#"{"contact": {"matchKeyType": "email", "matchKey": "swap@example.com"},
  "uniqueReceiptId": "R-SWAP", "createdDate": "2026-11-25T15:55:54+01:00", "currency": "SEK",
  "totalGrossPrice": 10.0, "paymentMethods": [{"type": "Card", "value": 10.0}],
  "items": [{"type": "PURCHASE", "quantity": 1, "grossPaidPrice": 10.0, "taxAmount": 2.0,
  "taxPercent": 25.0, "sku": "1", "articleNumber": "2", "articleName": "Sock"}]}"#;

/// One round: `full` frozen after its merge, till writes started, `full` let go.
fn till_writes_during_swap(ws: &Workspace, set: &str, email: &str, receipt_id: &str) {
    let mut full = cmd(ws, &["-q", "full", "--from-xml", set]);
    full.env("ENGAGE_SYNC_FAILPOINT", "full.merged")
        .env("ENGAGE_SYNC_FAILPOINT_ACTION", "stop")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Killed if the test fails while it is frozen, so no stopped process is left behind.
    let mut frozen = KillOnDrop(Some(full.spawn().expect("spawn full")));
    let full = frozen.0.as_mut().expect("full");
    wait_stopped(full);

    let receipt = ws.path().join(format!("{receipt_id}.json"));
    std::fs::write(
        &receipt,
        RECEIPT
            .replace("swap@example.com", email)
            .replace("R-SWAP", receipt_id),
    )
    .expect("receipt");
    let spawn = |args: &[&str]| {
        let mut c = cmd(ws, args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().expect("spawn till")
    };
    let add = spawn(&["-q", "contact", "add", "--email", email]);
    let receipt_add = spawn(&["-q", "receipt", "add", &receipt.to_string_lossy()]);
    // The till writes wait (busy timeout 10 s) while `full` holds the live replica.
    std::thread::sleep(Duration::from_millis(700));
    let mut add = add;
    let mut receipt_add = receipt_add;
    assert!(
        add.try_wait().expect("try_wait").is_none(),
        "contact add did not wait for the swap"
    );
    assert!(
        receipt_add.try_wait().expect("try_wait").is_none(),
        "receipt add did not wait for the swap"
    );

    resume(full);
    let full = frozen.0.take().expect("full");
    for (name, child) in [
        ("full", full),
        ("contact add", add),
        ("receipt add", receipt_add),
    ] {
        assert_ok(&child.wait_with_output().expect("wait"), name);
    }
}

#[test]
fn till_writes_while_full_swaps_land_in_the_new_generation() {
    let ws = live_replica();

    // The first swap replaces a plain file, the second one a generation.
    write_full_set(&ws, "set1", "20260101000000", 0, 20);
    write_full_set(&ws, "set2", "20260201000000", 10, 20);
    till_writes_during_swap(&ws, "set1", "first.swap@example.com", "R-1");
    till_writes_during_swap(&ws, "set2", "second.swap@example.com", "R-2");

    assert!(is_generation(&ws), "the replica is a generation now");
    for email in ["first.swap@example.com", "second.swap@example.com"] {
        let out = cmd(&ws, &["--json", "lookup", "--email", email])
            .output()
            .expect("lookup");
        assert!(
            out.status.success(),
            "the contact registered during a swap is gone: {email}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let queued =
        ws.count("SELECT count(*) FROM contact_outbox WHERE op = 'create' AND state = 'pending'");
    assert_eq!(queued, 2, "both till registrations wait to be pushed");
    let conn = ws.conn();
    let receipts: Vec<String> = conn
        .prepare("SELECT unique_receipt_id FROM receipt_outbox ORDER BY 1")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(receipts, ["R-1", "R-2"]);
    // The export's contacts are there too (both sets), the delta-only ones were replaced.
    let found = ws.count(&format!(
        "SELECT count(*) FROM contacts WHERE contact_id = '{}'",
        guid(25)
    ));
    assert_eq!(found, 1);
}

/// While a `push-local` runs (here: its lock is held), `full` builds but does not merge or
/// swap: a push recording outcomes in the generation being replaced would lose them. It goes
/// on once the push ends.
#[test]
fn full_waits_for_a_running_push_before_it_merges() {
    let ws = live_replica();
    write_full_set(&ws, "set", "20260101000000", 0, 20);

    let push =
        engage_sync::lock::acquire_push(&ws.db(), "push-local (test)", false).expect("push lock");
    let mut full = cmd(&ws, &["-q", "full", "--from-xml", "set"]);
    full.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut full = full.spawn().expect("spawn full");
    // The build itself goes ahead; the swap waits.
    let build = ws.path().join("replica.db.d").join("building.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !build.exists() {
        assert!(Instant::now() < deadline, "full never started its build");
        assert!(
            full.try_wait().expect("try_wait").is_none(),
            "full ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        full.try_wait().expect("try_wait").is_none(),
        "full swapped while push-local held its lock"
    );
    assert!(
        !is_generation(&ws),
        "the replica was replaced while push-local ran"
    );
    drop(push);
    assert_ok(&full.wait_with_output().expect("wait"), "full");
    assert!(is_generation(&ws));
}
