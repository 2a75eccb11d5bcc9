//! `-q` from cron: a job that succeeded prints nothing (cron mails whatever is printed), a
//! failure still says what went wrong, a lock skip is a warning, `--json` is always printed.

use crate::common;

use std::fs::File;

use common::*;

/// An inbox with one good export file of two contacts.
fn workspace_with_good_file() -> Workspace {
    let ws = Workspace::new();
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a"), member(2, "a")], &[], &[]),
    );
    ws
}

fn assert_silent(out: &std::process::Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", stderr_of(out));
    assert_eq!(stdout_of(out), "", "{what}: stdout");
    assert_eq!(stderr_of(out), "", "{what}: stderr");
}

#[test]
fn quiet_jobs_that_succeed_print_nothing() {
    let ws = workspace_with_good_file();
    for q in ["-q", "-qq"] {
        let out = ws.cmd().args([q, "init"]).output().expect("init");
        assert_silent(&out, &format!("{q} init"));
    }
    let out = ws
        .cmd()
        .args(["-q", "delta", "inbox"])
        .output()
        .expect("delta");
    assert_silent(&out, "-q delta");
    assert_eq!(ws.contacts().len(), 2, "the run did its work");
    let out = ws
        .cmd()
        .args(["-q", "purge", "--older-than", "30d"])
        .output()
        .expect("purge");
    assert_silent(&out, "-q purge");
}

#[test]
fn without_quiet_the_same_runs_print_their_summaries() {
    let ws = workspace_with_good_file();
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("delta: 1 files applied"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn quiet_json_and_dry_run_are_still_printed() {
    let ws = workspace_with_good_file();
    let out = ws
        .cmd()
        .args(["-q", "--json", "delta", "inbox"])
        .output()
        .expect("delta");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["files_applied"], 1, "{doc}");
    ws.write_export(
        "20260101110000_0_c.xml",
        &export(&[member(3, "b")], &[], &[]),
    );
    let out = ws
        .cmd()
        .args(["-q", "delta", "--dry-run", "inbox"])
        .output()
        .expect("dry run");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("dry run, nothing written"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn quiet_failed_run_still_reports_the_error_and_its_summary() {
    let ws = Workspace::new();
    ws.write_export("20260101100000_0_c.xml", "<contacts><new>");
    let out = ws
        .cmd()
        .args(["-q", "delta", "inbox"])
        .output()
        .expect("delta");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("engage-sync: error:"),
        "{}",
        stderr_of(&out)
    );
    assert!(stdout_of(&out).contains("1 refused"), "{}", stdout_of(&out));
}

#[test]
fn quiet_lock_skip_is_a_warning_with_exit_75() {
    let ws = workspace_with_good_file();
    ws.init();
    let lock = File::create(ws.path().join("replica.db.lock")).expect("lock file");
    lock.try_lock().expect("test holds the lock");
    let out = ws
        .cmd()
        .args(["-q", "delta", "inbox"])
        .output()
        .expect("delta");
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(
        stderr.starts_with("engage-sync: warning: skipped: another engage-sync run holds the lock"),
        "{stderr}"
    );
    assert!(!stderr.contains("error:"), "{stderr}");
    assert_eq!(stdout_of(&out), "");
    assert!(ws.contacts().is_empty(), "the skipped run changed nothing");
}

#[test]
fn quiet_api_jobs_that_succeed_print_nothing() {
    use fake_engage::{FakeConfig, FakeEngage};
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = Workspace::new();
    let config = format!(
        "[engage]\nbase_url = \"{}\"\nretry_base = \"10ms\"\nretry_cap = \"100ms\"\n\
         request_timeout = \"3s\"\nconnect_timeout = \"1s\"\nrate_limit = 200\n\
         [local]\nstore_external_id = \"0600\"\nbulk_poll_interval = \"10ms\"\n\
         bulk_poll_timeout = \"5s\"\nrecheck_after = \"0s\"\n",
        fake.base_url()
    );
    std::fs::write(ws.path().join("engage-sync.toml"), config).expect("config");
    ws.init();
    let run = |args: &[&str]| {
        ws.cmd()
            .env("ENGAGE_API_KEY", fake.api_key())
            .env_remove("ENGAGE_BASE_URL")
            .args(args)
            .output()
            .expect("runs")
    };
    assert_silent(&run(&["-q", "full"]), "-q full");
    assert_silent(&run(&["-q", "changes"]), "-q changes");
    let out = run(&["-q", "contact", "add", "--email", "quiet@example.com"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_silent(&run(&["-q", "push-local"]), "-q push-local");
    assert_eq!(fake.creates_for("email", "quiet@example.com"), 1, "pushed");
}
