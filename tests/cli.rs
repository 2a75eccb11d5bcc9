//! The command line as a user meets it: help, configuration errors, the quick start.

use crate::common;

use common::*;

#[test]
fn help_documents_commands_and_exit_codes() {
    let ws = Workspace::new();
    let out = ws.cmd().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let text = stdout_of(&out);
    for needle in ["delta", "lookup", "init", "Exit codes", "75", "78"] {
        assert!(text.contains(needle), "--help lacks {needle}: {text}");
    }
    let out = ws.cmd().args(["help", "delta"]).output().expect("runs");
    assert!(out.status.success());
    assert!(stdout_of(&out).contains("--keep-going"));
}

#[test]
fn configuration_errors_exit_78_and_name_the_problem() {
    let ws = Workspace::new();
    std::fs::write(ws.path().join("engage-sync.toml"), "dbb = \"x.db\"\n").expect("cfg");
    let out = ws.cmd().arg("init").output().expect("runs");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr_of(&out).contains("unknown field"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains("engage-sync.toml"),
        "{}",
        stderr_of(&out)
    );

    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "default_country = \"XX\"\n",
    )
    .expect("cfg");
    let out = ws.cmd().arg("init").output().expect("runs");
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr_of(&out).contains("XX"), "{}", stderr_of(&out));

    let out = ws
        .cmd()
        .args(["--config", "missing.toml", "init"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78));

    std::fs::remove_file(ws.path().join("engage-sync.toml")).expect("rm");
    let out = ws.cmd().arg("delta").output().expect("runs");
    std::fs::remove_dir(ws.inbox()).ok();
    let out2 = ws.cmd().arg("delta").output().expect("runs");
    assert!(
        out.status.success(),
        "an empty inbox is fine: {}",
        stderr_of(&out)
    );
    assert_eq!(
        out2.status.code(),
        Some(78),
        "a missing inbox is a config error"
    );
}

#[test]
fn the_bundled_fixtures_import_as_the_readme_shows() {
    let ws = Workspace::new();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/exports");
    // As the README's command: `init`, then `delta` (which does not create a replica
    // unasked); --min-age 0s takes files however recently checked out.
    let out = ws
        .cmd()
        .env_remove("ENGAGE_SYNC_CREATE_REPLICA")
        .arg("init")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("created (mode full)"));
    let out = ws
        .cmd()
        .env_remove("ENGAGE_SYNC_INBOX_MIN_AGE")
        .env_remove("ENGAGE_SYNC_CREATE_REPLICA")
        .args(["delta", "--min-age", "0s"])
        .arg(&fixtures)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(text.contains("3 files applied"), "{text}");
    assert!(text.contains("6 new, 1 updated, 1 deleted"), "{text}");
    let out = ws
        .cmd()
        .args(["lookup", "--mobile", "070-123 45 67"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(stdout_of(&out).contains("contactId 6f1c2e4a-3b1d-4c8e-9a0b-000000000001"));
    // Fixture files are left in place (no --archive).
    assert_eq!(std::fs::read_dir(&fixtures).expect("fixtures").count(), 3);
}

#[test]
fn a_closed_stdout_is_a_clean_exit() {
    let ws = Workspace::new();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/exports");
    let mut child = ws
        .std_cmd()
        .args(["delta", "--dry-run"])
        .arg(&fixtures)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waits");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("error"), "{}", stderr_of(&out));
}
