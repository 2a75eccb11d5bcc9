//! What `changes` and `full` from the API tell while they run: a retry is a warning (even
//! under `-q`), and off a terminal a line at least every 10 seconds says where the run is, in
//! contacts.

use crate::common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind, Matcher};
use serde_json::json;

/// A fake with `n` contacts a minute apart, and a workspace pointed at it with a full replica.
fn synced(n: usize) -> (FakeEngage, Workspace) {
    let fake = FakeEngage::start(FakeConfig::default());
    let start = Utc::now() - TimeDelta::minutes(n as i64 + 60);
    fake.seed_contacts_spaced(n, start, Duration::from_secs(60));
    let ws = Workspace::new();
    let config = format!(
        "[engage]\nbase_url = \"{}\"\nretry_base = \"10ms\"\nretry_cap = \"200ms\"\n\
         request_timeout = \"30s\"\nconnect_timeout = \"1s\"\nrate_limit = 200\n",
        fake.base_url()
    );
    std::fs::write(ws.path().join("engage-sync.toml"), config).expect("config");
    let out = run(&ws, &fake, &["-q", "full"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    (fake, ws)
}

fn run(ws: &Workspace, fake: &FakeEngage, args: &[&str]) -> std::process::Output {
    ws.cmd()
        .env("ENGAGE_API_KEY", fake.api_key())
        .env_remove("ENGAGE_BASE_URL")
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn a_retry_is_a_warning_even_under_quiet() {
    let (fake, ws) = synced(5);
    fake.inject(Fault::new(FaultKind::Status(503)));
    let out = run(&ws, &fake, &["-q", "changes"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    let warning = stderr
        .lines()
        .find(|l| l.contains("WARN"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(
        warning.contains("failed (HTTP 503); retry 1 of 6 in"),
        "{warning}"
    );
    assert_eq!(
        stdout_of(&out),
        "",
        "the run succeeded: no summary under -q"
    );
}

#[test]
fn changes_off_a_terminal_says_every_10_s_how_many_contacts_it_has_fetched() {
    let (fake, ws) = synced(5);
    let ids = fake.contact_ids();
    for id in &ids[..2] {
        assert!(fake.update_contact(id, json!({"firstName": "Changed"})));
    }
    // One of the two GETs takes 11 s: the run waits, and must say so.
    fake.inject(Fault {
        matcher: Matcher::method("GET", &format!("/api/v3/contacts/{}", ids[0])),
        count: 1,
        kind: FaultKind::Delay(Duration::from_secs(11)),
    });
    let out = run(&ws, &fake, &["changes"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    let line = stderr
        .lines()
        .find(|l| l.contains("changes: fetching contacts: "))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(line.contains(" of 2 contacts ("), "{line}");
    assert!(!stderr.contains("bytes"), "{stderr}");
}
