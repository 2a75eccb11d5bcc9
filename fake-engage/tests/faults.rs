//! Fault injection, latency, refusing connections, the request log.

mod common;

use chrono::{TimeZone, Utc};
use common::{raw, receipt, start, start_with, Client};
use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind, Matcher, RetryAfter};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn status_429_with_retry_after_is_not_applied() {
    let (fake, c) = start();
    fake.inject(
        Fault::on(
            "POST",
            "/api/v3/contacts",
            FaultKind::Status429 {
                retry_after: Some(RetryAfter::Seconds(7)),
            },
        )
        .times(2),
    );
    let when = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
    fake.inject(Fault::on(
        "GET",
        "/api/v2/contacts/count",
        FaultKind::Status429 {
            retry_after: Some(RetryAfter::Date(when)),
        },
    ));
    // Not matched by the POST fault: a GET passes.
    let g = c.get("/api/v2/contacts/count");
    assert_eq!(g.status, 429);
    assert_eq!(
        g.retry_after.as_deref(),
        Some("Wed, 02 Jan 2030 03:04:05 GMT")
    );
    for _ in 0..2 {
        let a = c.post("/api/v3/contacts", &json!({"email": "a@example.com"}));
        assert_eq!(a.status, 429);
        assert_eq!(a.retry_after.as_deref(), Some("7"));
    }
    assert_eq!(fake.contact_count(), 0);
    assert!(fake.pending_faults().is_empty());
    assert_eq!(
        c.post("/api/v3/contacts", &json!({"email": "a@example.com"}))
            .status,
        201
    );
    fake.inject(Fault::new(FaultKind::Status429 {
        retry_after: Some(RetryAfter::DateIn(Duration::from_secs(60))),
    }));
    let d = c.get("/api/v2/contacts/count");
    assert!(d.retry_after.unwrap().ends_with(" GMT"));
    fake.inject(Fault::new(FaultKind::Status429 { retry_after: None }));
    assert_eq!(c.get("/api/v2/contacts/count").retry_after, None);
    let recs = fake.requests();
    assert_eq!(
        recs[0].fault,
        Some(FaultKind::Status429 {
            retry_after: Some(RetryAfter::Date(when))
        })
    );
    assert_eq!(recs[3].fault, None);
}

#[test]
fn status_5xx_faults() {
    let (fake, c) = start();
    fake.inject(Fault::new(FaultKind::Status(500)));
    fake.inject(Fault::new(FaultKind::Status(503)));
    fake.inject(Fault::new(FaultKind::Status(502)).matching(Matcher::Any));
    let a = c.post("/api/v3/contacts", &json!({"email": "a@example.com"}));
    assert_eq!(a.status, 500);
    assert_eq!(a.json()["message"], "An error has occurred.");
    let b = c.get("/api/v2/contacts/count");
    assert_eq!(b.status, 503);
    assert!(b.body.contains("<html>"));
    assert_eq!(c.get("/api/v2/contacts/count").status, 502);
    assert_eq!(c.get("/api/v2/contacts/count").status, 200);
    assert_eq!(fake.contact_count(), 0);
}

#[test]
fn delay_then_answer() {
    let (fake, c) = start();
    fake.inject(Fault::new(FaultKind::Delay(Duration::from_millis(300))));
    let t = Instant::now();
    assert_eq!(
        c.post("/api/v3/contacts", &json!({"email": "a@example.com"}))
            .status,
        201
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(fake.contact_count(), 1);
}

#[test]
fn delay_applies_even_when_client_gives_up() {
    let (fake, c) = start();
    fake.inject(Fault::new(FaultKind::Delay(Duration::from_millis(400))));
    let impatient = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(100))
        .build();
    let res = impatient
        .post(&format!("{}/api/v3/contacts", c.base))
        .set("apikey", &c.key)
        .set("Content-Type", "application/json")
        .send_string(r#"{"email":"slow@example.com"}"#);
    assert!(matches!(res, Err(ureq::Error::Transport(_))));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(fake.contact_count(), 1);
}

#[test]
fn drop_before_response_applies_nothing() {
    let (fake, c) = start();
    fake.inject(Fault::on(
        "POST",
        "/api/v3/contacts",
        FaultKind::DropBeforeResponse,
    ));
    let r = c.try_send(
        "POST",
        "/api/v3/contacts",
        Some(&json!({"email": "a@example.com"})),
    );
    assert!(r.is_err(), "{r:?}");
    assert_eq!(fake.contact_count(), 0);
    assert_eq!(fake.creates_for("email", "a@example.com"), 0);
    let rec = fake.requests();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].status, None);
    assert_eq!(rec[0].fault, Some(FaultKind::DropBeforeResponse));
}

#[test]
fn apply_then_drop_applies() {
    let (fake, c) = start();
    let id = fake.add_contact(json!({"email": "k@example.com"}));
    fake.inject(Fault::on(
        "POST",
        "/api/v3/contacts",
        FaultKind::ApplyThenDrop,
    ));
    fake.inject(Fault::on(
        "POST",
        "/api/v3/receipts",
        FaultKind::ApplyThenDrop,
    ));
    fake.inject(Fault::on(
        "POST",
        "/api/v3/contacts/bulk",
        FaultKind::ApplyThenDrop,
    ));
    assert!(c
        .try_send(
            "POST",
            "/api/v3/contacts",
            Some(&json!({"email": "lost@example.com"}))
        )
        .is_err());
    assert_eq!(fake.find_contacts("email", "lost@example.com").len(), 1);
    // The client's check-then-retry finds it; a blind retry gets 409.
    assert_eq!(
        c.get("/api/v3/contacts/id?email=lost@example.com").status,
        200
    );
    assert_eq!(
        c.post("/api/v3/contacts", &json!({"email": "lost@example.com"}))
            .status,
        409
    );
    assert_eq!(fake.creates_for("email", "lost@example.com"), 1);

    assert!(c
        .try_send(
            "POST",
            "/api/v3/receipts",
            Some(&receipt("R1", &id, "contactId"))
        )
        .is_err());
    assert_eq!(fake.receipts().len(), 1);
    assert_eq!(
        c.post("/api/v3/receipts", &receipt("R1", &id, "contactId"))
            .status,
        204
    );
    assert_eq!(fake.receipt_post_count("R1"), 2);
    assert_eq!(fake.receipts().len(), 1);

    // "/api/v3/contacts" also prefixes the bulk path, but that fault was used up.
    assert!(c
        .try_send(
            "POST",
            "/api/v3/contacts/bulk",
            Some(&json!([{"email": "b1@example.com"}]))
        )
        .is_err());
    assert_eq!(fake.find_contacts("email", "b1@example.com").len(), 1);
    assert_eq!(fake.bulk_requests().len(), 1);
}

#[test]
fn truncated_body() {
    let (fake, _) = start();
    let id = fake.add_contact(json!({"email": "t@example.com", "firstName": "Trunkerad"}));
    fake.inject(Fault::new(FaultKind::TruncatedBody));
    let req = format!(
        "GET /api/v3/contacts/{id} HTTP/1.1\r\nHost: x\r\napikey: fake-engage-test-key\r\n\
         User-Agent: t\r\nContent-Type: application/json\r\n\r\n"
    );
    let out = raw(fake.port(), req.as_bytes());
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"));
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        body.len() < len && !body.is_empty(),
        "{} of {len}",
        body.len()
    );
    // A real client sees an error, not a short body.
    fake.inject(Fault::new(FaultKind::TruncatedBody));
    let c = Client::new(&fake);
    assert!(c
        .try_send("GET", &format!("/api/v3/contacts/{id}"), None)
        .is_err());
    assert_eq!(fake.requests()[0].status, Some(200));
}

#[test]
fn random_fault_storm_is_deterministic() {
    let run = |seed: u64| -> Vec<u16> {
        let (fake, c) = start();
        fake.set_random_faults(
            seed,
            0.5,
            vec![
                FaultKind::Status(503),
                FaultKind::Status429 { retry_after: None },
            ],
        );
        (0..40)
            .map(|_| c.get("/api/v2/contacts/count").status)
            .collect()
    };
    let a = run(9);
    assert_eq!(a, run(9));
    assert_ne!(a, run(10));
    let faulted = a.iter().filter(|s| **s != 200).count();
    assert!((8..=32).contains(&faulted), "{faulted} of 40");
    assert!(a.contains(&503) && a.contains(&429));

    let (fake, c) = start();
    fake.set_random_faults(1, 1.0, vec![FaultKind::Status(500)]);
    fake.inject(Fault::new(FaultKind::Status(502)));
    assert_eq!(c.get("/api/v2/contacts/count").status, 502);
    assert_eq!(c.get("/api/v2/contacts/count").status, 500);
    fake.clear_random_faults();
    assert_eq!(c.get("/api/v2/contacts/count").status, 200);
}

#[test]
fn latency_per_prefix() {
    let (fake, c) = start();
    let id = fake.add_contact(json!({"email": "l@example.com"}));
    fake.set_latency(
        Matcher::method("GET", "/api/v3/contacts/"),
        Duration::from_millis(150),
    );
    let t = Instant::now();
    c.get(&format!("/api/v3/contacts/{id}"));
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    c.get("/api/v2/contacts/count");
    assert!(t.elapsed() < Duration::from_millis(150));
    fake.set_latency(Matcher::method("GET", "/api/v3/contacts/"), Duration::ZERO);
    let t = Instant::now();
    c.get(&format!("/api/v3/contacts/{id}"));
    assert!(t.elapsed() < Duration::from_millis(150));
}

#[test]
fn refuse_connections_keeps_port_and_state() {
    let (fake, c) = start();
    let port = fake.port();
    let id = fake.add_contact(json!({"email": "r@example.com"}));
    // A pooled keep-alive connection that the outage must also kill.
    let mut held = TcpStream::connect(("127.0.0.1", port)).unwrap();
    held.write_all(
        b"GET /api/v2/contacts/count HTTP/1.1\r\nHost: x\r\napikey: fake-engage-test-key\r\nUser-Agent: t\r\nContent-Type: application/json\r\n\r\n",
    )
    .unwrap();
    let mut first = [0u8; 512];
    assert!(held.read(&mut first).unwrap() > 0);

    fake.refuse_connections(true).unwrap();
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(c.try_send("GET", "/api/v2/contacts/count", None).is_err());
    held.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut rest = Vec::new();
    assert_eq!(held.read_to_end(&mut rest).unwrap_or(0), 0);
    fake.refuse_connections(true).unwrap();

    fake.refuse_connections(false).unwrap();
    assert_eq!(fake.port(), port);
    let c2 = Client::new(&fake);
    assert_eq!(c2.get(&format!("/api/v3/contacts/{id}")).status, 200);
    fake.refuse_connections(false).unwrap();
    assert_eq!(c2.get("/api/v2/contacts/count").body, "1");
}

#[test]
fn request_log_and_window() {
    let (fake, c) = start();
    for _ in 0..5 {
        c.get("/api/v2/contacts/count");
    }
    std::thread::sleep(Duration::from_millis(250));
    for _ in 0..3 {
        c.get("/api/v3/contacts/id?email=a%40example.com");
    }
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 8);
    assert_eq!(reqs[5].path, "/api/v3/contacts/id?email=a%40example.com");
    assert_eq!(reqs[5].status, Some(404));
    assert_eq!(reqs[5].method, "GET");
    assert!(reqs.iter().all(|r| r.apikey_present));
    assert_eq!(fake.max_requests_in_any_window(Duration::from_secs(10)), 8);
    assert_eq!(
        fake.max_requests_in_any_window(Duration::from_millis(200)),
        5
    );
    assert_eq!(fake.max_requests_in_any_window(Duration::ZERO), 0);
    fake.clear_requests();
    assert!(fake.requests().is_empty());
    assert_eq!(fake.max_requests_in_any_window(Duration::from_secs(1)), 0);
}

#[test]
fn server_side_rate_limit() {
    let (fake, c) = start_with(FakeConfig {
        rate_limit_per_sec: Some(3),
        ..FakeConfig::default()
    });
    let statuses: Vec<u16> = (0..5)
        .map(|_| c.get("/api/v2/contacts/count").status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    std::thread::sleep(Duration::from_millis(1050));
    assert_eq!(c.get("/api/v2/contacts/count").status, 200);
    assert_eq!(fake.requests().len(), 6);
}

#[test]
fn drop_stops_server_and_frees_port() {
    let fake = FakeEngage::start(FakeConfig::default());
    let port = fake.port();
    drop(fake);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let again = FakeEngage::start(FakeConfig {
        port,
        ..FakeConfig::default()
    });
    assert_eq!(again.port(), port);
    assert_eq!(again.base_url(), format!("http://127.0.0.1:{port}"));
    assert!(
        FakeEngage::try_start(FakeConfig {
            port,
            ..FakeConfig::default()
        })
        .is_err()
            || cfg!(not(target_os = "linux"))
    );
}

#[test]
fn handle_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FakeEngage>();
    let fake = std::sync::Arc::new(FakeEngage::start(FakeConfig::default()));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let fake = fake.clone();
            std::thread::spawn(move || {
                let c = Client::new(&fake);
                for j in 0..10 {
                    let email = format!("w{i}-{j}@example.com");
                    assert_eq!(
                        c.post("/api/v3/contacts", &json!({ "email": email }))
                            .status,
                        201
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(fake.contact_count(), 40);
    assert!(fake.creates_per_key().values().all(|n| *n == 1));
}
