//! `delta` from Engage's SFTP server, end to end: the real binary against a real OpenSSH
//! server (tests/sshd) on loopback, a real SQLite replica, real files.

use crate::common;
use crate::sshd;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;
use sshd::{keygen, names_in, CutProxy, Sshd};

const A0: &str = "20260101100000_0_customers.xml";
const A1: &str = "20260101100000_1_customers.xml";
const B0: &str = "20260102100000_0_customers.xml";

/// What goes into the test's engage-sync.toml.
struct Cfg<'a> {
    port: u16,
    key: Option<PathBuf>,
    /// Top-level keys (before `[sftp]`).
    top: &'a str,
    /// More `[sftp]` keys.
    sftp: &'a str,
    /// `[sftp] min_age`.
    min_age: &'a str,
}

impl Cfg<'_> {
    fn new(sshd: &Sshd) -> Cfg<'static> {
        Cfg {
            port: sshd.port,
            key: Some(sshd.user_key()),
            top: "",
            sftp: "",
            min_age: "0s",
        }
    }
}

/// Writes the config (and, unless `trusted` is false, a known_hosts trusting the server).
fn configure(ws: &Workspace, sshd: &Sshd, cfg: &Cfg, trusted: bool) {
    let key = cfg
        .key
        .as_ref()
        .map(|k| format!("private_key_file = \"{}\"\n", k.display()))
        .unwrap_or_default();
    let text = format!(
        "inbox = \"inbox\"\n{top}\n[sftp]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{user}\"\n\
         {key}remote_dir = \"{remote}\"\nknown_hosts = \"known_hosts\"\nmin_age = \"{min_age}\"\n\
         connect_timeout = \"5s\"\nrequest_timeout = \"5s\"\nmax_retries = 2\n\
         retry_base = \"50ms\"\nretry_cap = \"200ms\"\n{extra}\n",
        top = cfg.top,
        port = cfg.port,
        user = sshd::user(),
        remote = sshd.remote_dir().display(),
        extra = cfg.sftp,
        min_age = cfg.min_age,
    );
    std::fs::write(ws.path().join("engage-sync.toml"), text).expect("config");
    if trusted {
        std::fs::write(known_hosts(ws), sshd.known_hosts_line(cfg.port)).expect("known_hosts");
    }
}

fn known_hosts(ws: &Workspace) -> PathBuf {
    ws.path().join("known_hosts")
}

fn delta(ws: &Workspace, args: &[&str]) -> Output {
    ws.cmd()
        .arg("delta")
        .arg("--json")
        .args(args)
        .output()
        .expect("runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stdout: {} stderr: {}",
            stdout_of(out),
            stderr_of(out)
        )
    })
}

/// `sftp.files[].name → action`, in report order.
fn actions(summary: &Value) -> Vec<(String, String)> {
    summary["sftp"]["files"]
        .as_array()
        .expect("sftp files")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().expect("name").to_string(),
                f["action"].as_str().expect("action").to_string(),
            )
        })
        .collect()
}

fn applied_names(summary: &Value) -> Vec<String> {
    summary["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["status"] == "applied")
        .map(|f| f["name"].as_str().expect("name").to_string())
        .collect()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

/// Three export files: creates, then an update and a delete in a later export.
fn put_three(sshd: &Sshd) {
    sshd.put(
        B0,
        export(&[member(4, "b")], &[member(1, "b")], &[deleted(2)]).as_bytes(),
    );
    sshd.put(A1, export(&[member(3, "a")], &[], &[]).as_bytes());
    sshd.put(
        A0,
        export(&[member(1, "a"), member(2, "a")], &[], &[]).as_bytes(),
    );
}

fn ids(ws: &Workspace) -> Vec<String> {
    ws.contacts()
        .iter()
        .map(|c| c[0].clone().expect("id"))
        .collect()
}

fn inbox_names(ws: &Workspace) -> Vec<String> {
    names_in(&ws.inbox())
}

#[test]
fn new_files_are_downloaded_and_applied_in_order() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    configure(&ws, &sshd, &Cfg::new(&sshd), true);
    put_three(&sshd);
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 0, "{}\n{}", stderr_of(&out), sshd.log());
    let s = json(&out);
    let order = vec![A0.to_string(), A1.to_string(), B0.to_string()];
    assert_eq!(applied_names(&s), order, "applied in export order");
    assert_eq!(
        actions(&s),
        order
            .iter()
            .map(|n| (n.clone(), "downloaded".to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(s["sftp"]["files_downloaded"], 3);
    assert_eq!(ids(&ws), vec![guid(1), guid(3), guid(4)]);
    assert_eq!(
        ws.contacts()[0][8].as_deref(),
        Some("Åsab"),
        "the later update won"
    );
    // Complete files under their names, no temporary file left, the server untouched.
    assert_eq!(inbox_names(&ws), order);
    assert_eq!(sshd.remote_names(), order);
    assert_eq!(
        std::fs::read(ws.inbox().join(A0)).expect("inbox copy"),
        std::fs::read(sshd.remote_dir().join(A0)).expect("server copy")
    );
}

#[test]
fn files_in_the_ledger_are_not_downloaded_again() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    let cfg = Cfg {
        top: "archive = \"archive\"",
        ..Cfg::new(&sshd)
    };
    configure(&ws, &sshd, &cfg, true);
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    sshd.put(A1, export(&[member(2, "a")], &[], &[]).as_bytes());
    let first = delta(&ws, &[]);
    assert_eq!(code(&first), 0, "{}", stderr_of(&first));
    assert!(
        inbox_names(&ws).is_empty(),
        "applied files went to the archive"
    );

    let again = delta(&ws, &[]);
    assert_eq!(code(&again), 0, "{}", stderr_of(&again));
    let s = json(&again);
    assert_eq!(s["sftp"]["files_downloaded"], 0);
    assert_eq!(
        actions(&s),
        vec![
            (A0.to_string(), "already_applied".to_string()),
            (A1.to_string(), "already_applied".to_string())
        ]
    );
    assert!(inbox_names(&ws).is_empty(), "nothing downloaded");

    sshd.put(B0, export(&[member(3, "b")], &[], &[]).as_bytes());
    let third = delta(&ws, &[]);
    assert_eq!(code(&third), 0, "{}", stderr_of(&third));
    let s = json(&third);
    assert_eq!(s["sftp"]["files_downloaded"], 1);
    assert_eq!(applied_names(&s), vec![B0.to_string()]);
    assert_eq!(ids(&ws), vec![guid(1), guid(2), guid(3)]);
}

#[test]
fn a_connection_dropped_mid_download_leaves_no_partial_import_and_the_next_run_completes() {
    let mut sshd = Sshd::start();
    let ws = Workspace::new();
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    let members: Vec<String> = (10..20_010).map(|n| member(n, "big")).collect();
    let big = export(&members, &[], &[]);
    assert!(big.len() > 5_000_000, "{} bytes", big.len());
    sshd.put(B0, big.as_bytes());
    // The relay stops the server once 1 MB went to the client: A0 is complete by then, B0 is
    // cut in the middle.
    let pid = sshd.pid().expect("running");
    let proxy = CutProxy::start(sshd.port, 1_000_000, move || sshd::kill_tree(pid));
    let cfg = Cfg {
        port: proxy.port,
        ..Cfg::new(&sshd)
    };
    configure(&ws, &sshd, &cfg, true);

    let cut = delta(&ws, &[]);
    assert!(proxy.cut_done.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(code(&cut), 69, "server gone: {}", stderr_of(&cut));
    assert!(
        stderr_of(&cut).contains("cannot connect"),
        "{}",
        stderr_of(&cut)
    );
    let s = json(&cut);
    assert_eq!(
        applied_names(&s),
        vec![A0.to_string()],
        "the complete file is imported"
    );
    assert_eq!(
        actions(&s),
        vec![
            (A0.to_string(), "downloaded".to_string()),
            (B0.to_string(), "failed".to_string())
        ]
    );
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 1);
    assert_eq!(
        ws.count("SELECT count(*) FROM contacts"),
        1,
        "nothing of B0"
    );
    assert!(
        !ws.inbox().join(B0).exists(),
        "no partial file under its name"
    );
    assert!(ws.quarantined().is_empty());

    sshd.restart();
    let next = delta(&ws, &[]);
    assert_eq!(code(&next), 0, "{}", stderr_of(&next));
    let s = json(&next);
    assert_eq!(applied_names(&s), vec![B0.to_string()]);
    assert_eq!(ws.count("SELECT count(*) FROM contacts"), 20_001);
    assert_eq!(
        std::fs::read(ws.inbox().join(B0))
            .expect("inbox copy")
            .len(),
        big.len()
    );
    assert_eq!(
        inbox_names(&ws),
        vec![A0.to_string(), B0.to_string()],
        "no temp file left"
    );
}

#[test]
fn an_unknown_host_key_is_refused_until_trusted_explicitly() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    configure(&ws, &sshd, &Cfg::new(&sshd), false);
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    let fp = sshd.host_fingerprint();

    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 77, "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("is not known") && err.contains(&fp), "{err}");
    assert!(err.contains(&format!("--trust-host-key {fp}")), "{err}");
    assert!(inbox_names(&ws).is_empty() && !known_hosts(&ws).exists());

    // Another fingerprint than the server's is no trust.
    let other = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
    let out = delta(&ws, &["--trust-host-key", other]);
    assert_eq!(code(&out), 77, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("another key"),
        "{}",
        stderr_of(&out)
    );

    // A dry run trusts for itself only.
    let out = delta(&ws, &["--dry-run", "--trust-host-key", &fp]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    assert!(!known_hosts(&ws).exists());

    let out = delta(&ws, &["--trust-host-key", &fp]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    assert_eq!(applied_names(&json(&out)), vec![A0.to_string()]);
    let recorded = std::fs::read_to_string(known_hosts(&ws)).expect("recorded");
    assert_eq!(recorded, sshd.known_hosts_line(sshd.port));
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 0, "known from now on: {}", stderr_of(&out));
}

#[test]
fn a_changed_or_mismatching_host_key_is_refused() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    configure(&ws, &sshd, &Cfg::new(&sshd), false);
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    // known_hosts holds another ed25519 key for the server.
    let other = ws.path().join("other_host");
    keygen(&other, "");
    let key = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let mut parts = key.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port,
        parts.next().expect("alg"),
        parts.next().expect("b64")
    );
    std::fs::write(known_hosts(&ws), &line).expect("known_hosts");
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 77, "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("CHANGED") && err.contains(&sshd.host_fingerprint()),
        "{err}"
    );
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 0);

    // A pinned fingerprint that is not the server's.
    let pinned = Cfg {
        sftp: "host_key_fingerprint = \"SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\"",
        ..Cfg::new(&sshd)
    };
    configure(&ws, &sshd, &pinned, false);
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 77, "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("pinned"), "{}", stderr_of(&out));
    // The right pin is enough, without known_hosts.
    std::fs::remove_file(known_hosts(&ws)).expect("rm");
    let sftp = format!("host_key_fingerprint = \"{}\"", sshd.host_fingerprint());
    let pinned = Cfg {
        sftp: &sftp,
        ..Cfg::new(&sshd)
    };
    configure(&ws, &sshd, &pinned, false);
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
}

#[test]
fn wrong_credentials_are_refused_with_77_and_secrets_stay_hidden() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    // A key the server does not know.
    let stranger = ws.path().join("stranger");
    keygen(&stranger, "");
    configure(
        &ws,
        &sshd,
        &Cfg {
            key: Some(stranger),
            ..Cfg::new(&sshd)
        },
        true,
    );
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 77, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("refused the login"),
        "{}",
        stderr_of(&out)
    );

    // A wrong password (sshd accepts none for this user).
    configure(
        &ws,
        &sshd,
        &Cfg {
            key: None,
            ..Cfg::new(&sshd)
        },
        true,
    );
    let out = ws
        .cmd()
        .args(["delta", "--json"])
        .env("ENGAGE_SYNC_SFTP_PASSWORD", "Tr0ub4dor&3-secret")
        .output()
        .expect("runs");
    assert_eq!(code(&out), 77, "{}", stderr_of(&out));
    let all = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(
        all.contains("password") && !all.contains("Tr0ub4dor"),
        "{all}"
    );
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 0);

    // No credentials at all is a configuration error.
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 78, "{}", stderr_of(&out));
}

#[test]
fn an_encrypted_key_needs_its_passphrase_from_the_environment() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    let key = ws.path().join("locked");
    keygen(&key, "correct horse");
    sshd.authorize(&key.with_extension("pub"));
    configure(
        &ws,
        &sshd,
        &Cfg {
            key: Some(key),
            ..Cfg::new(&sshd)
        },
        true,
    );
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 78, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("ENGAGE_SYNC_SFTP_PASSPHRASE"),
        "{}",
        stderr_of(&out)
    );
    let with = |p: &str| {
        ws.cmd()
            .args(["delta", "--json"])
            .env("ENGAGE_SYNC_SFTP_PASSPHRASE", p)
            .output()
            .expect("runs")
    };
    let out = with("wrong horse");
    assert_eq!(code(&out), 78, "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("wrong horse"));
    let out = with("correct horse");
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    assert_eq!(applied_names(&json(&out)), vec![A0.to_string()]);
}

/// A good file, a malformed one, a good one after it.
fn put_good_bad_good(sshd: &Sshd) {
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    sshd.put(A1, b"<?xml version=\"1.0\"?><contacts xmlns=\"http://eClub.Schemas.ExportMember\"><new><member>");
    sshd.put(B0, export(&[member(2, "b")], &[], &[]).as_bytes());
}

#[test]
fn applied_files_are_deleted_remotely_and_a_malformed_one_is_quarantined_and_kept() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    let cfg = Cfg {
        sftp: "after_import = \"delete\"",
        ..Cfg::new(&sshd)
    };
    configure(&ws, &sshd, &cfg, true);
    put_good_bad_good(&sshd);

    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 65, "{}", stderr_of(&out));
    let s = json(&out);
    assert_eq!(applied_names(&s), vec![A0.to_string()]);
    assert_eq!(ws.quarantined(), vec![A1.to_string()]);
    // Only the applied file left the server; the bad one and the one not tried stay.
    assert_eq!(sshd.remote_names(), vec![A1.to_string(), B0.to_string()]);
    assert_eq!(s["sftp"]["files_removed"], 1);

    // The next run takes B0 (already downloaded), leaves the quarantined file alone.
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let s = json(&out);
    assert_eq!(applied_names(&s), vec![B0.to_string()]);
    assert!(actions(&s).contains(&(A1.to_string(), "quarantined_before".to_string())));
    assert!(
        stderr_of(&out).contains("quarantined earlier"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(sshd.remote_names(), vec![A1.to_string()]);
    assert_eq!(ids(&ws), vec![guid(1), guid(2)]);
    assert_eq!(
        ws.quarantined(),
        vec![A1.to_string()],
        "not downloaded again"
    );
}

#[test]
fn applied_files_are_moved_to_the_remote_archive_and_a_dry_run_touches_nothing() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    let archive = sshd.path().join("home/integration/processed");
    let sftp = format!("remote_archive_dir = \"{}\"", archive.display());
    let cfg = Cfg {
        sftp: &sftp,
        ..Cfg::new(&sshd)
    };
    configure(&ws, &sshd, &cfg, true);
    put_three(&sshd);

    let dry = delta(&ws, &["--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", stderr_of(&dry));
    let s = json(&dry);
    assert_eq!(s["sftp"]["files_downloaded"], 0);
    for (name, action) in actions(&s) {
        assert_eq!(action, "would_download", "{name}");
    }
    assert!(s["sftp"]["files"][0]["after_import"]
        .as_str()
        .expect("after_import")
        .contains("would be moved"));
    assert!(inbox_names(&ws).is_empty());
    assert_eq!(sshd.remote_names().len(), 3);
    assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 0);
    let text = ws
        .cmd()
        .args(["delta", "--dry-run"])
        .output()
        .expect("runs");
    let text = stdout_of(&text);
    assert!(
        text.contains(&format!("sftp {A0}")) && text.contains("would_download"),
        "{text}"
    );

    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    assert_eq!(json(&out)["sftp"]["files_removed"], 3);
    assert!(sshd.remote_names().is_empty());
    assert_eq!(names_in(&archive), vec![A0, A1, B0]);
}

#[test]
fn an_unreachable_server_exits_69_and_a_silent_one_stops_at_the_deadline() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    // Nothing listens on this port.
    let closed = sshd::free_port();
    configure(
        &ws,
        &sshd,
        &Cfg {
            port: closed,
            ..Cfg::new(&sshd)
        },
        true,
    );
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 69, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("3 attempts"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        json(&out)["sftp"]["error"]
            .as_str()
            .map(|e| e.contains("cannot connect")),
        Some(true)
    );

    // A port that accepts but never speaks SSH: the deadline ends the run.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    configure(
        &ws,
        &sshd,
        &Cfg {
            port,
            ..Cfg::new(&sshd)
        },
        true,
    );
    let started = std::time::Instant::now();
    let out = delta(&ws, &["--deadline", "1s"]);
    assert_eq!(code(&out), 75, "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("deadline"), "{}", stderr_of(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[test]
fn from_sftp_without_an_sftp_section_is_a_configuration_error() {
    let ws = Workspace::new();
    let out = delta(&ws, &["--from", "sftp"]);
    assert_eq!(code(&out), 78, "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("[sftp]"), "{}", stderr_of(&out));
    let out = delta(&ws, &["--from", "sftp", "inbox"]);
    assert_eq!(
        code(&out),
        64,
        "--from sftp with paths: {}",
        stderr_of(&out)
    );
}

#[test]
fn local_paths_and_from_local_bypass_the_server() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    // A server that is not there: neither run may try it.
    configure(
        &ws,
        &sshd,
        &Cfg {
            port: sshd::free_port(),
            ..Cfg::new(&sshd)
        },
        true,
    );
    ws.write_export(A0, &export(&[member(1, "a")], &[], &[]));
    let out = delta(&ws, &["--from", "local"]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    assert!(json(&out).get("sftp").is_none());
    let path: &Path = &ws.inbox().join(A0);
    let out = delta(&ws, &[path.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
}

#[test]
fn a_file_engage_may_still_be_writing_waits_for_the_next_run() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    let cfg = Cfg {
        min_age: "1h",
        ..Cfg::new(&sshd)
    };
    configure(&ws, &sshd, &cfg, true);
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    let out = delta(&ws, &[]);
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    let s = json(&out);
    assert_eq!(actions(&s), vec![(A0.to_string(), "too_new".to_string())]);
    assert!(inbox_names(&ws).is_empty());
    configure(&ws, &sshd, &Cfg::new(&sshd), true);
    let out = delta(&ws, &[]);
    assert_eq!(applied_names(&json(&out)), vec![A0.to_string()]);
}

/// The SFTP staging leftovers: a download cut off mid-file stays in the inbox as `.NAME.part`
/// (to resume), and applied downloads stay in the inbox without an archive. Once older than the
/// age, `purge` deletes both (the inbox was recorded when the fetch used it) and no byte of the
/// partial download is left; a file not imported is never touched.
#[test]
fn purge_deletes_sftp_staging_leftovers_and_applied_downloads() {
    let sshd = Sshd::start();
    let ws = Workspace::new();
    sshd.put(A0, export(&[member(1, "a")], &[], &[]).as_bytes());
    let members: Vec<String> = (10..20_010).map(|n| member(n, "Stagington")).collect();
    sshd.put(B0, export(&members, &[], &[]).as_bytes());
    let pid = sshd.pid().expect("running");
    let proxy = CutProxy::start(sshd.port, 1_000_000, move || sshd::kill_tree(pid));
    let cfg = Cfg {
        port: proxy.port,
        ..Cfg::new(&sshd)
    };
    configure(&ws, &sshd, &cfg, true);
    let cut = delta(&ws, &[]);
    assert_eq!(code(&cut), 69, "server gone: {}", stderr_of(&cut));
    let partial = ws.inbox().join(format!(".{B0}.part"));
    assert!(
        !holding(&ws, "Stagington").is_empty() && partial.exists(),
        "the cut download is staged: {:?}",
        inbox_names(&ws)
    );
    assert!(ws.inbox().join(A0).exists(), "applied, left in the inbox");
    let waiting = ws.inbox().join("20260109100000_0_customers.xml");
    std::fs::write(&waiting, "not imported yet").expect("waiting");
    let forty_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86_400);
    for f in files_under(&ws.inbox()) {
        std::fs::File::options()
            .write(true)
            .open(&f)
            .and_then(|file| file.set_modified(forty_days_ago))
            .expect("age");
    }
    let out = ws
        .cmd()
        .args(["purge", "--older-than", "30d", "--json"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0, "{}", stderr_of(&out));
    assert_eq!(json(&out)["inbox_files"]["files"], 2, "{}", stdout_of(&out));
    assert!(!partial.exists() && !ws.inbox().join(A0).exists());
    assert!(waiting.exists(), "a file not imported stays");
    assert!(
        holding(&ws, "Stagington").is_empty(),
        "{:?}",
        holding(&ws, "Stagington")
    );
}

/// A file the ledger holds, rewritten on the server under its name (same size, other content),
/// must be downloaded and compared, never deleted unseen: with the applied copy still in the
/// inbox (no local archive) and with it archived.
#[test]
fn a_rewritten_server_file_under_an_applied_name_is_compared_and_kept() {
    for top in ["", "archive = \"archive\""] {
        let sshd = Sshd::start();
        let ws = Workspace::new();
        let cfg = Cfg {
            top,
            sftp: "after_import = \"delete\"",
            ..Cfg::new(&sshd)
        };
        configure(&ws, &sshd, &cfg, true);
        let original = export(&[member(1, "a")], &[], &[]);
        sshd.put(A0, original.as_bytes());
        let out = delta(&ws, &[]);
        assert_eq!(code(&out), 0, "{top}: {}", stderr_of(&out));
        assert!(sshd.remote_names().is_empty(), "{top}: applied and deleted");

        // The same file again: downloaded, compared, equal, deleted.
        sshd.put(A0, original.as_bytes());
        let out = delta(&ws, &[]);
        assert_eq!(code(&out), 0, "{top}: {}", stderr_of(&out));
        assert!(
            sshd.remote_names().is_empty(),
            "{top}: same content deleted"
        );

        // Rewritten: same name and size, other content.
        let rewritten = export(&[member(1, "z")], &[], &[]);
        assert_eq!(rewritten.len(), original.len());
        sshd.put(A0, rewritten.as_bytes());
        let out = delta(&ws, &[]);
        let err = stderr_of(&out);
        assert_eq!(code(&out), 65, "{top}: {err}");
        assert_eq!(sshd.remote_names(), vec![A0.to_string()], "{top}: kept");
        assert!(err.contains(A0), "{top}: {err}");
        assert_eq!(json(&out)["sftp"]["files_removed"], 0, "{top}");
        // Nothing of it was applied.
        assert_eq!(ws.count("SELECT count(*) FROM applied_file"), 1, "{top}");
        let first: String = ws
            .conn()
            .query_row("SELECT first_name FROM contacts", [], |r| r.get(0))
            .expect("contact");
        assert_eq!(first, "Åsaa", "{top}");
        assert!(!ws.inbox().join(".verify").join(A0).exists());
    }
}
