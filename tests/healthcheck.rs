//! The healthcheck ping: success pings the URL, failure pings `URL/fail`, a run skipped for the
//! lock and a dry run ping nothing.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;

/// A loopback HTTP server that records request lines and answers 200.
fn ping_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/ping", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_ok() {
                log.lock().expect("lock").push(line.trim().to_string());
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK");
        }
    });
    (url, seen)
}

#[test]
fn success_failure_skip_and_dry_run() {
    let (url, seen) = ping_server();
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        format!("healthcheck_url = \"{url}\"\n"),
    )
    .expect("cfg");
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    assert!(ws
        .cmd()
        .args(["delta", "inbox"])
        .output()
        .expect("runs")
        .status
        .success());
    assert!(ws
        .cmd()
        .args(["delta", "inbox", "--dry-run"])
        .output()
        .expect("runs")
        .status
        .success());
    ws.write_export("20260102100000_0_c.xml", "not xml");
    assert_eq!(
        ws.cmd()
            .args(["delta", "inbox"])
            .output()
            .expect("runs")
            .status
            .code(),
        Some(65)
    );
    let lock = std::fs::File::create(ws.path().join("replica.db.lock")).expect("lock");
    lock.try_lock().expect("held");
    assert_eq!(
        ws.cmd()
            .args(["delta", "inbox"])
            .output()
            .expect("runs")
            .status
            .code(),
        Some(75)
    );
    drop(lock);
    assert!(ws
        .cmd()
        .args(["lookup", "--email", "user1@example.com"])
        .output()
        .expect("runs")
        .status
        .success());
    let lines = seen.lock().expect("lock").clone();
    assert_eq!(
        lines,
        vec!["GET /ping HTTP/1.1", "GET /ping/fail HTTP/1.1"],
        "{lines:?}"
    );
}

#[test]
fn an_unreachable_healthcheck_does_not_fail_the_run() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "healthcheck_url = \"http://127.0.0.1:9/ping\"\n",
    )
    .expect("cfg");
    ws.write_export(
        "20260101100000_0_c.xml",
        &export(&[member(1, "a")], &[], &[]),
    );
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("healthcheck ping after delta failed"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        !stderr_of(&out).contains("127.0.0.1:9"),
        "the URL is not logged"
    );
}
