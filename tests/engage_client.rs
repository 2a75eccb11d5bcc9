//! The Engage client against the fake Engage server, over real loopback HTTP: headers, each
//! operation, each fault kind, retry limits, unsafe writes, the deadline and the rate limit.

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use engage_sync::commands::exit::exit_code_for;
use engage_sync::engage::{
    ApiVersion, BatchState, BulkOptions, ChangeType, ChangesPage, CreateOptions, CreateOutcome,
    EngageClient, EngageConfig, EngageError, KeyType, ReceiptOutcome,
};
use engage_sync::error::{Coded, ExitCode};
use engage_sync::secret::Secret;
use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind, Matcher, RetryAfter};
use serde_json::{json, Value};

/// A config for `fake` with test-sized waits: fast retries, a high rate limit.
fn config(fake: &FakeEngage) -> EngageConfig {
    let key = Secret::new(fake.api_key());
    let mut cfg = EngageConfig::new(&fake.base_url(), key).expect("valid key, loopback URL");
    cfg.rate_limit_per_sec = 1000.0;
    cfg.retry_base = Duration::from_millis(10);
    cfg.retry_cap = Duration::from_secs(3);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

fn client_with(fake: &FakeEngage, tweak: impl FnOnce(&mut EngageConfig)) -> EngageClient {
    let mut cfg = config(fake);
    tweak(&mut cfg);
    EngageClient::new(&cfg).expect("client builds")
}

fn client(fake: &FakeEngage) -> EngageClient {
    client_with(fake, |_| {})
}

fn fake() -> FakeEngage {
    FakeEngage::start(FakeConfig::default())
}

fn receipt(unique: &str, contact_id: &str) -> Value {
    json!({
        "contact": {"matchKey": contact_id, "matchKeyType": "contactId"},
        "uniqueReceiptId": unique, "receiptNumber": "1",
        "createdDate": "2018-09-06T15:55:54+01:00", "storeExternalId": "321",
        "currency": "SEK", "totalGrossPrice": 200.0,
        "paymentMethods": [{"type": "Card", "value": 200.0}],
        "items": [{"type": "PURCHASE", "quantity": 2, "grossPaidPrice": 200.0,
                   "taxAmount": 40.0, "taxPercent": 25.0, "sku": "1",
                   "articleNumber": "2", "articleName": "Socks"}]
    })
}

fn anna(fake: &FakeEngage) -> String {
    fake.add_contact(
        json!({"email": "anna@example.com", "mobilePhone": "+46701234567",
                            "firstName": "Anna"}),
    )
}

// ---- headers, key, happy paths -----------------------------------------------------------

#[test]
fn every_request_carries_the_required_headers() {
    let fake = fake();
    anna(&fake);
    // The fake answers 401 without `apikey`, 400 without User-Agent, 500 without
    // Content-Type: application/json, so a 200 proves all three were sent.
    assert_eq!(client(&fake).count().expect("count"), 1);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].apikey_present);
    let ua = reqs[0].user_agent.clone().unwrap_or_default();
    assert_eq!(ua, format!("engage-sync/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(reqs[0].path, "/api/v2/contacts/count");
}

#[test]
fn a_wrong_key_is_an_auth_error_that_never_shows_the_key() {
    let fake = fake();
    let secret = "wrong-Secret-4711";
    let mut cfg = config(&fake);
    cfg.api_key = Secret::new(secret);
    let c = EngageClient::new(&cfg).expect("builds");
    let err = c.count().expect_err("401");
    assert!(
        matches!(err, EngageError::Auth { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::NoPerm);
    let text = format!("{err} {err:?} {c:?} {cfg:?}");
    assert!(!text.contains(secret), "{text}");
    assert!(
        text.contains("ENGAGE_API_KEY") && text.contains("allow-list"),
        "{text}"
    );
    assert_eq!(fake.requests().len(), 1, "401 is not retried");
    let chained = anyhow::Error::new(err).context("smoke test");
    assert_eq!(exit_code_for(&chained), ExitCode::NoPerm);
}

#[test]
fn get_contact_reads_both_contact_type_placements_and_lowers_ids() {
    for top_level in [false, true] {
        let fake = FakeEngage::start(FakeConfig {
            contact_type_top_level: top_level,
            uppercase_ids: true,
            ..FakeConfig::default()
        });
        let id = anna(&fake);
        let c = client(&fake);
        let got = c
            .get_contact(&id.to_uppercase())
            .expect("get")
            .expect("found");
        assert_eq!(got.id, id);
        assert_eq!(got.contact_type.as_deref(), Some("Member"));
        assert_eq!(got.attributes["email"], "anna@example.com");
        assert_eq!(got.preferences["acceptsEmail"], false);
        fake.delete_contact(&id);
        assert_eq!(c.get_contact(&id).expect("404 is no error"), None);
    }
}

#[test]
fn find_contact_id_handles_found_missing_and_multiple() {
    let fake = fake();
    let id = anna(&fake);
    let c = client(&fake);
    assert_eq!(
        c.find_contact_id(KeyType::Email, "ANNA@example.com")
            .expect("find"),
        Some(id.clone())
    );
    assert_eq!(
        c.find_contact_id(KeyType::MobilePhone, "+46701234567")
            .expect("find"),
        Some(id)
    );
    assert!(fake.requests()[1]
        .path
        .contains("mobilePhone=%2B46701234567"));
    assert_eq!(
        c.find_contact_id(KeyType::Email, "bo@example.com")
            .expect("find"),
        None
    );
    fake.add_contact(json!({"email": "twin@example.com"}));
    fake.add_contact(json!({"email": "twin@example.com"}));
    let err = c
        .find_contact_id(KeyType::Email, "twin@example.com")
        .expect_err("409");
    assert!(
        matches!(err, EngageError::MultipleMatches { .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::DataErr);
    assert!(!err.to_string().contains("twin@"), "{err}");
    let err = c
        .find_contact_id(KeyType::Email, "not-an-address")
        .expect_err("400");
    assert!(err.to_string().contains("InvalidEmailAddress"), "{err}");
}

#[test]
fn changes_returns_ids_and_reports_too_many() {
    let fake = fake();
    let t0 = Utc::now() - TimeDelta::hours(2);
    fake.seed_contacts(5, t0);
    let c = client(&fake);
    let (from, to) = (t0 - TimeDelta::seconds(1), t0 + TimeDelta::seconds(1));
    let page = c.changes(ChangeType::Created, from, to).expect("changes");
    assert_eq!(page, ChangesPage::Ids(fake.contact_ids()));
    assert_eq!(
        c.changes(ChangeType::Deleted, from, to).expect("changes"),
        ChangesPage::Ids(Vec::new())
    );
    fake.set_changes_cap(3);
    let page = c
        .changes(ChangeType::Created, from, to)
        .expect("400 is a page");
    assert!(
        matches!(page, ChangesPage::TooMany { ref detail } if detail.starts_with("JSON body of"))
    );
}

#[test]
fn changes_all_splits_the_window_until_each_part_fits() {
    let fake = fake();
    let t0 = Utc::now() - TimeDelta::hours(2);
    fake.seed_contacts_spaced(60, t0, Duration::from_millis(100));
    fake.set_changes_cap(15);
    let c = client(&fake);
    let (from, to) = (t0 - TimeDelta::seconds(1), t0 + TimeDelta::seconds(6));
    let ids = c.changes_all(ChangeType::Created, from, to).expect("split");
    assert_eq!(ids, fake.contact_ids(), "all ids, once each, in time order");
    assert!(fake.requests().len() > 4);
}

#[test]
fn changes_all_gives_up_at_the_minimum_window_with_few_calls() {
    let fake = fake();
    let t0 = Utc::now() - TimeDelta::hours(2);
    fake.seed_contacts(20, t0);
    fake.set_changes_cap(5);
    let c = client(&fake);
    let from = t0 - TimeDelta::hours(1);
    let err = c
        .changes_all(ChangeType::Created, from, t0 + TimeDelta::hours(1))
        .expect_err("20 changes in 20 ms never fit under 5");
    assert!(
        matches!(err, EngageError::ChangesWindowTooSmall { .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::Unavailable);
    // Depth first: about log2(7200 s / 1 s) calls, not a whole tree.
    assert!(fake.requests().len() <= 16, "{}", fake.requests().len());
}

#[test]
fn bulk_create_update_and_status() {
    let fake = fake();
    fake.set_bulk_processing_polls(1);
    let c = client(&fake);
    let rows = [
        json!({"email": "a@example.com", "firstName": "A"}),
        json!({"email": "b@example.com"}),
        json!({"firstName": "no key"}),
    ];
    let batch = c.bulk_create(&rows, &BulkOptions::default()).expect("bulk");
    let first = c.bulk_status(&batch).expect("status");
    assert_eq!(first.state, BatchState::Processing);
    let done = c.bulk_status(&batch).expect("status");
    assert_eq!(done.state, BatchState::Completed);
    assert_eq!(done.results.len(), 3);
    assert_eq!(done.results[2].status, "Failed");
    let a = done.results[0].contact_id.clone().expect("created");
    assert_eq!(done.raw["batchId"], batch.as_str());
    let opts = BulkOptions {
        avoid_triggering_export: true,
        ..BulkOptions::default()
    };
    let upd = c
        .bulk_update(&[json!({"contactId": a, "firstName": "Ada"})], &opts)
        .expect("bulk update");
    assert_ne!(upd, batch);
    assert_eq!(fake.contact(&a).expect("exists")["firstName"], "Ada");
    let last = fake.bulk_requests().pop().expect("recorded");
    assert!(
        last.path.contains("avoidTriggeringExport=true"),
        "{}",
        last.path
    );
    let err = c
        .bulk_create(&[], &BulkOptions::default())
        .expect_err("empty");
    assert!(matches!(err, EngageError::BulkSize { len: 0, .. }));
    let many = vec![json!({"email": "x@example.com"}); 4001];
    let err = c
        .bulk_create(&many, &BulkOptions::default())
        .expect_err("too many");
    assert_eq!(err.exit_code(), ExitCode::DataErr);
    assert_eq!(fake.bulk_requests().len(), 2, "refused client-side");
}

#[test]
fn receipts_are_created_then_duplicate_and_unknown_contacts_rejected() {
    for dup_status in [204, 200] {
        let fake = FakeEngage::start(FakeConfig {
            duplicate_receipt_status: dup_status,
            ..FakeConfig::default()
        });
        let id = anna(&fake);
        let c = client(&fake);
        let r = receipt("R-1", &id);
        assert_eq!(c.post_receipt(&r).expect("post"), ReceiptOutcome::Created);
        assert_eq!(c.post_receipt(&r).expect("post"), ReceiptOutcome::Duplicate);
        assert_eq!(fake.receipts().len(), 1);
        let stranger = receipt("R-2", "00000000-0000-0000-0000-00000000abcd");
        let err = c.post_receipt(&stranger).expect_err("404");
        assert!(
            matches!(err, EngageError::ContactNotFound { .. }),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), ExitCode::DataErr);
    }
}

#[test]
fn single_create_and_update_by_id() {
    let fake = fake();
    let c = client(&fake);
    let opts = CreateOptions {
        source: Some("POS".into()),
        store_external_id: Some("600".into()),
        ..CreateOptions::default()
    };
    let attrs = json!({"email": "new@example.com", "firstName": "Nils"});
    let CreateOutcome::Created {
        contact_id,
        contact,
    } = c.create_contact(&attrs, &opts).expect("create")
    else {
        panic!("expected a create");
    };
    assert_eq!(contact.expect("object").meta["source"], "POS");
    let again = c.create_contact(&attrs, &opts).expect("409 is an outcome");
    assert_eq!(
        again,
        CreateOutcome::AlreadyExists {
            contact_id: Some(contact_id.clone())
        }
    );
    let updated = c
        .update_contact(&contact_id, &json!({"firstName": "Nisse"}))
        .expect("update")
        .expect("found");
    assert_eq!(updated.attributes["firstName"], "Nisse");
    let gone = "00000000-0000-0000-0000-00000000abcd";
    assert_eq!(
        c.update_contact(gone, &json!({"city": "X"})).expect("404"),
        None
    );
}

#[test]
fn api_v2_uses_v2_paths_and_headers() {
    let fake = fake();
    let c = client_with(&fake, |cfg| cfg.api_version = ApiVersion::V2);
    let opts = CreateOptions {
        source: Some("POS".into()),
        ..CreateOptions::default()
    };
    let out = c
        .create_contact(&json!({"email": "v2@example.com"}), &opts)
        .expect("create");
    let CreateOutcome::Created {
        contact_id,
        contact,
    } = out
    else {
        panic!("expected a create");
    };
    assert_eq!(contact.expect("object").meta["source"], "POS");
    c.update_contact(&contact_id, &json!({"city": "Umeå"}))
        .expect("update");
    let reqs = fake.requests();
    assert_eq!(reqs[0].path, "/api/v2/contacts");
    assert_eq!(reqs[1].method, "POST");
}

// ---- faults: retried until success ------------------------------------------------------

/// Injects `kind` once on GETs of the contact and checks the GET still succeeds, retried.
fn survives(kind: FaultKind, tweak: impl FnOnce(&mut EngageConfig)) -> Duration {
    let fake = fake();
    let id = anna(&fake);
    let c = client_with(&fake, tweak);
    fake.inject(Fault::on("GET", "/api/v3/contacts/", kind.clone()));
    let t = Instant::now();
    let got = c
        .get_contact(&id)
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let took = t.elapsed();
    assert_eq!(got.map(|g| g.id), Some(id), "{kind:?}");
    // A delayed request is logged when the fake finally answers it, after the retry.
    let until = Instant::now() + Duration::from_secs(3);
    while fake.requests().len() < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "{kind:?}: one fault, one retry");
    assert_eq!(
        reqs.iter()
            .filter(|r| r.fault == Some(kind.clone()))
            .count(),
        1
    );
    took
}

#[test]
fn status_faults_are_retried() {
    for code in [500, 502, 503, 504] {
        survives(FaultKind::Status(code), |_| {});
    }
    survives(FaultKind::Status429 { retry_after: None }, |_| {});
}

#[test]
fn retry_after_is_honoured_in_seconds_and_as_a_date() {
    let secs = FaultKind::Status429 {
        retry_after: Some(RetryAfter::Seconds(1)),
    };
    assert!(survives(secs, |_| {}) >= Duration::from_millis(950));
    // An HTTP date has whole seconds: 2 s ahead is at least 1 s ahead.
    let date = FaultKind::Status429 {
        retry_after: Some(RetryAfter::DateIn(Duration::from_secs(2))),
    };
    assert!(survives(date, |_| {}) >= Duration::from_millis(950));
    // Capped at retry_cap.
    let long = FaultKind::Status429 {
        retry_after: Some(RetryAfter::Seconds(3600)),
    };
    let took = survives(long, |c| c.retry_cap = Duration::from_millis(100));
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn broken_connections_and_slow_answers_are_retried() {
    survives(FaultKind::DropBeforeResponse, |_| {});
    survives(FaultKind::TruncatedBody, |_| {});
    survives(FaultKind::Delay(Duration::from_millis(900)), |c| {
        c.request_timeout = Duration::from_millis(300)
    });
}

#[test]
fn refused_connections_are_retried_until_engage_is_back() {
    let fake = Arc::new(fake());
    anna(&fake);
    let c = client_with(&fake, |cfg| {
        cfg.retry_base = Duration::from_millis(100);
        cfg.max_retries = 10;
    });
    fake.refuse_connections(true).expect("refuse");
    let f2 = fake.clone();
    let reopen = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        f2.refuse_connections(false).expect("reopen");
    });
    assert_eq!(c.count().expect("count once back"), 1);
    reopen.join().expect("thread");
}

// ---- retries exhausted ------------------------------------------------------------------

#[test]
fn exhausted_retries_give_typed_temporary_errors() {
    let fake = fake();
    let c = client_with(&fake, |cfg| cfg.max_retries = 2);
    fake.inject(Fault::new(FaultKind::Status(503)).times(3));
    let err = c.count().expect_err("503 throughout");
    assert!(
        matches!(err, EngageError::Transient { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::TempFail);
    assert!(
        err.to_string().contains("GET /api/v2/contacts/count"),
        "{err}"
    );
    fake.inject(Fault::new(FaultKind::Status429 { retry_after: None }).times(3));
    let err = c.count().expect_err("429 throughout");
    assert!(
        matches!(err, EngageError::RateLimited { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::TempFail);
    assert_eq!(fake.requests().len(), 6);
}

#[test]
fn engage_unreachable_throughout_is_unavailable() {
    let fake = fake();
    let c = client_with(&fake, |cfg| cfg.max_retries = 2);
    fake.refuse_connections(true).expect("refuse");
    let err = c.count().expect_err("refused");
    assert!(
        matches!(err, EngageError::Unavailable { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::Unavailable);
    let err = c
        .find_contact_id(KeyType::Email, "anna@example.com")
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        !text.contains("anna@") && !text.contains("http://"),
        "{text}"
    );
}

// ---- unsafe writes ------------------------------------------------------------------------

#[test]
fn a_receipt_that_may_have_arrived_is_not_reposted() {
    let fake = fake();
    let id = anna(&fake);
    let c = client(&fake);
    fake.inject(Fault::on(
        "POST",
        "/api/v3/receipts",
        FaultKind::ApplyThenDrop,
    ));
    let r = receipt("R-7", &id);
    let err = c.post_receipt(&r).expect_err("answer lost");
    assert!(matches!(err, EngageError::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::TempFail);
    assert_eq!(fake.receipt_post_count("R-7"), 1, "not retried blindly");
    // The caller's check: posting again is safe and reports the duplicate.
    assert_eq!(
        c.post_receipt(&r).expect("repost"),
        ReceiptOutcome::Duplicate
    );
    assert_eq!(fake.receipts().len(), 1);
}

#[test]
fn unsafe_writes_stop_on_5xx_and_timeouts_but_retry_429_and_refused_connects() {
    let fake = Arc::new(fake());
    let id = anna(&fake);
    let c = client_with(&fake, |cfg| {
        cfg.request_timeout = Duration::from_millis(300);
        cfg.retry_base = Duration::from_millis(100);
    });
    let rows = [json!({"email": "c@example.com"})];
    fake.inject(Fault::on(
        "POST",
        "/api/v3/contacts/bulk",
        FaultKind::Status(503),
    ));
    let err = c
        .bulk_create(&rows, &BulkOptions::default())
        .expect_err("503");
    assert!(matches!(err, EngageError::OutcomeUnknown { .. }), "{err:?}");
    let slow = FaultKind::Delay(Duration::from_millis(800));
    fake.inject(Fault::on("POST", "/api/v3/receipts", slow));
    let err = c.post_receipt(&receipt("R-8", &id)).expect_err("timeout");
    assert!(matches!(err, EngageError::OutcomeUnknown { .. }), "{err:?}");
    let limited = FaultKind::Status429 { retry_after: None };
    fake.inject(Fault::on("POST", "/api/v3/receipts", limited));
    let r9 = receipt("R-9", &id);
    assert_eq!(
        c.post_receipt(&r9).expect("429 retried"),
        ReceiptOutcome::Created
    );
    assert_eq!(fake.receipt_post_count("R-9"), 1);
    fake.refuse_connections(true).expect("refuse");
    let f2 = fake.clone();
    let reopen = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        f2.refuse_connections(false).expect("reopen");
    });
    let r10 = receipt("R-10", &id);
    assert_eq!(
        c.post_receipt(&r10).expect("connect retried"),
        ReceiptOutcome::Created
    );
    reopen.join().expect("thread");
    assert_eq!(fake.receipt_post_count("R-10"), 1);
}

// ---- deadline -------------------------------------------------------------------------------

#[test]
fn the_deadline_ends_retries_in_time() {
    let fake = fake();
    fake.inject(Fault::new(FaultKind::Status(503)).times(100_000));
    let start = Instant::now();
    let c = client_with(&fake, |cfg| {
        cfg.max_retries = 1000;
        cfg.retry_base = Duration::from_millis(50);
        cfg.deadline = Some(start + Duration::from_secs(1));
    });
    let err = c.count().expect_err("never succeeds");
    let took = start.elapsed();
    assert!(matches!(err, EngageError::Deadline { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::TempFail);
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn get_contacts_stops_at_the_deadline() {
    let fake = fake();
    fake.inject(Fault::new(FaultKind::Status(503)).times(100_000));
    let start = Instant::now();
    let c = client_with(&fake, |cfg| {
        cfg.max_retries = 1000;
        cfg.retry_base = Duration::from_millis(50);
        cfg.deadline = Some(start + Duration::from_secs(1));
    });
    let ids = (0..500).map(|i| format!("00000000-0000-0000-0000-{i:012}"));
    let mut delivered = 0;
    let err = c
        .get_contacts(ids, |_, _| {
            delivered += 1;
            ControlFlow::Continue(())
        })
        .expect_err("deadline");
    assert!(matches!(err, EngageError::Deadline { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_millis(1500));
    assert_eq!(delivered, 0);
}

// ---- get_contacts and the rate limit ----------------------------------------------------------

#[test]
fn get_contacts_delivers_each_id_once_and_can_stop_early() {
    let fake = fake();
    fake.seed_contacts(40, Utc::now() - TimeDelta::hours(1));
    let mut ids = fake.contact_ids();
    fake.delete_contact(&ids[3]);
    ids.push("00000000-0000-0000-0000-00000000abcd".into());
    let c = client(&fake);
    let mut seen = Vec::new();
    c.get_contacts(ids.clone(), |id, r| {
        let found = r.expect("no error").map(|c| c.id);
        assert!(found.is_none() || found.as_deref() == Some(id.as_str()));
        seen.push((id, found.is_some()));
        ControlFlow::Continue(())
    })
    .expect("all");
    assert_eq!(seen.len(), 41);
    assert_eq!(seen.iter().filter(|(_, found)| !found).count(), 2);
    let mut n = 0;
    c.get_contacts(ids, |_, _| {
        n += 1;
        ControlFlow::Break(())
    })
    .expect("stopped");
    assert_eq!(n, 1);
}

/// `n` GETs with 100 ms latency at `rate`/s, `concurrency` in flight (enough to reach the rate
/// only if `concurrency / 0.1 s > rate`): returns the time taken and the most requests the
/// fake saw in any one-second window.
fn rate_run(n: usize, rate: f64, concurrency: usize) -> (Duration, usize) {
    let fake = fake();
    fake.seed_contacts(n, Utc::now() - TimeDelta::hours(1));
    fake.set_latency(
        Matcher::method("GET", "/api/v3/contacts/"),
        Duration::from_millis(100),
    );
    let c = client_with(&fake, |cfg| {
        cfg.rate_limit_per_sec = rate;
        cfg.max_concurrency = concurrency;
    });
    let start = Instant::now();
    let mut ok = 0;
    c.get_contacts(fake.contact_ids(), |_, r| {
        ok += usize::from(matches!(r, Ok(Some(_))));
        ControlFlow::Continue(())
    })
    .expect("all fetched");
    assert_eq!(ok, n);
    (
        start.elapsed(),
        fake.max_requests_in_any_window(Duration::from_secs(1)),
    )
}

#[test]
fn rate_limit_is_reached_but_never_exceeded_at_50_per_second() {
    let (took, max) = rate_run(300, 50.0, 8);
    assert!(max <= 50, "{max} requests in one second");
    assert!(max >= 40, "the limit should be reached: {max}");
    let secs = took.as_secs_f64();
    eprintln!("300 GETs at 50/s: {secs:.2} s, at most {max} in one second");
    assert!(
        (5.8..8.5).contains(&secs),
        "300 GETs at 50/s took {secs:.2} s"
    );
}

#[test]
fn rate_limit_holds_at_100_per_second() {
    let (took, max) = rate_run(100, 100.0, 16);
    assert!(max <= 100, "{max} requests in one second");
    let secs = took.as_secs_f64();
    eprintln!("100 GETs at 100/s: {secs:.2} s, at most {max} in one second");
    assert!(
        (0.95..3.0).contains(&secs),
        "100 GETs at 100/s took {secs:.2} s"
    );
}

// ---- logging ---------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn debug_logs_name_requests_without_key_or_personal_data() {
    let fake = fake();
    anna(&fake);
    let c = client(&fake);
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        c.find_contact_id(KeyType::Email, "anna@example.com")
            .expect("find");
        c.find_contact_id(KeyType::MobilePhone, "+46701234567")
            .expect("find");
    });
    let logs = String::from_utf8(out.0.lock().expect("not poisoned").clone()).expect("utf-8");
    assert!(
        logs.contains("GET /api/v3/contacts/id?email=a***@example.com"),
        "{logs}"
    );
    assert!(
        logs.contains("status=200") && logs.contains("attempt=1"),
        "{logs}"
    );
    for secret in [fake.api_key().as_str(), "anna@", "701234"] {
        assert!(!logs.contains(secret), "{secret} in {logs}");
    }
}
