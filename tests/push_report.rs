//! What `push-local` reports and what it spends, against the fake Engage over loopback HTTP,
//! driving the real binary: per contact, whether Engage created it, already had it (linked)
//! or applied a queued update, decided from Engage's answers; and exactly the requests a push
//! needs, counted per endpoint from the fake's request log against a count the test works
//! out from what it set up. Also the answers Engage may not give (a batch status without
//! per-contact rows), a bulk create whose answer was lost, and a push killed between Engage
//! creating the contacts and the push recording them.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use common::*;
use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind};
use serde_json::{json, Value};

/// Status polls a batch takes with the fake's default `bulk_processing_polls = 1`: one
/// "Processing", then "Completed".
const POLLS_PER_BATCH: usize = 2;

/// A workspace pointed at `fake`, with test-sized waits; `local` adds `[local]` keys.
fn workspace_for(fake: &FakeEngage, local: &str) -> Workspace {
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 2\n");
    Workspace::pointed_at(fake, &engage, &format!("{FAST_PUSH}{local}"))
}

fn push(ws: &Workspace, fake: &FakeEngage, env: &[(&str, &str)]) -> Output {
    ws.engage_cmd(fake)
        .envs(env.iter().copied())
        .args(["--json", "push-local"])
        .output()
        .expect("runs")
}

/// What `push-local --dry-run` says it would do with each item, in its order.
fn dry_run_actions(ws: &Workspace, fake: &FakeEngage) -> Vec<String> {
    let out = ws
        .engage_cmd(fake)
        .args(["--json", "push-local", "--dry-run"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    json_of(&out)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["action"].as_str().expect("action").to_string())
        .collect()
}

/// `push-local`'s human summary; fails the test unless the push succeeds.
fn push_human(ws: &Workspace, fake: &FakeEngage) -> String {
    let out = ws
        .cmd()
        .env("ENGAGE_API_KEY", fake.api_key())
        .env_remove("ENGAGE_BASE_URL")
        .arg("push-local")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    stdout_of(&out)
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout_of(out)))
}

/// Registers a contact at the till (queues its create).
fn till_contact(ws: &Workspace, email: &str) {
    let out = ws
        .cmd()
        .args(["contact", "add", "--email", email, "--first-name", "Till"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// The per-endpoint counts a test expects, without the endpoints it expects no request at.
fn expected(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), *n))
        .collect()
}

/// The stored outcome of each create item, by the contact's e-mail.
fn create_outcomes(ws: &Workspace) -> BTreeMap<String, String> {
    let conn = ws.till_conn();
    let mut stmt = conn
        .prepare(
            "SELECT json_extract(fields, '$.email'), outcome FROM contact_outbox \
             WHERE op = 'create' ORDER BY id",
        )
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .expect("query");
    rows.map(|r| {
        let (email, outcome) = r.expect("row");
        (email, outcome.unwrap_or_default())
    })
    .collect()
}

/// One setup: how Engage answers, how engage-sync is configured, what it must report.
struct Case {
    name: &'static str,
    rows: bool,
    lookup_first: bool,
}

#[test]
fn a_push_reports_created_linked_and_updated_from_engages_answers_and_spends_only_the_requests_needed(
) {
    const NEW: usize = 5;
    const EXISTING: usize = 3;
    const UPDATES: usize = 2;
    for case in [
        Case {
            name: "per-contact rows, lookup before create (the defaults)",
            rows: true,
            lookup_first: true,
        },
        Case {
            name: "per-contact rows, no lookup before create",
            rows: true,
            lookup_first: false,
        },
        Case {
            name: "no per-contact rows, lookup before create",
            rows: false,
            lookup_first: true,
        },
        Case {
            name: "no per-contact rows, no lookup before create",
            rows: false,
            lookup_first: false,
        },
    ] {
        let fake = FakeEngage::start(FakeConfig {
            bulk_status_results: case.rows,
            ..FakeConfig::default()
        });
        let ws = workspace_for(
            &fake,
            &format!("lookup_before_create = {}\n", case.lookup_first),
        );
        let updated = replica_contacts_with_updates(&fake, &ws, UPDATES);
        for i in 0..EXISTING {
            // Customers Engage has but the replica does not know yet, registered at the till.
            let email = format!("existing{i}@example.com");
            fake.add_contact(json!({"email": email, "firstName": "Engage"}));
            till_contact(&ws, &email);
        }
        for i in 0..NEW {
            till_contact(&ws, &format!("new{i}@example.com"));
        }
        fake.clear_requests();
        let out = push(&ws, &fake, &[]);
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            case.name,
            stdout_of(&out),
            stderr_of(&out)
        );
        let summary = json_of(&out);

        // What each create became, decided from Engage's answers.
        let (created, linked, unclear) = match (case.rows, case.lookup_first) {
            // A row says Created or AlreadyExists; or the lookup before the create found the
            // existing ones and, after it, the new ones (absent before: created by us).
            (true, _) | (false, true) => (NEW, EXISTING, 0),
            // Found by key after a create sent without a lookup first, and no row saying
            // whether Engage created it or had it: neither claim would be honest.
            (false, false) => (0, 0, NEW + EXISTING),
        };
        assert_eq!(
            summary["contacts_created"], created,
            "{}: {summary}",
            case.name
        );
        assert_eq!(
            summary["contacts_linked_existing"], linked,
            "{}: {summary}",
            case.name
        );
        assert_eq!(
            summary["contacts_created_or_linked"], unclear,
            "{}: {summary}",
            case.name
        );
        assert_eq!(summary["contacts_updated"], UPDATES, "{}", case.name);
        assert_eq!(summary["contacts_left"], 0, "{}", case.name);

        // Exactly the requests needed, per endpoint.
        let sent_in_bulk = if case.lookup_first {
            NEW
        } else {
            NEW + EXISTING
        };
        let lookups_before = if case.lookup_first { NEW + EXISTING } else { 0 };
        // Without rows, the only way to learn a created contact's id is a lookup by key.
        let lookups_after = if case.rows { 0 } else { sent_in_bulk };
        let want = expected(&[
            ("GET /contacts/id", lookups_before + lookups_after),
            ("POST /contacts/bulk", 1),
            ("PATCH /contacts/bulk", 1),
            ("GET /contacts/bulk/status", 2 * POLLS_PER_BATCH),
        ]);
        assert_eq!(fake.requests_per_endpoint(), want, "{}", case.name);
        let sizes: Vec<(String, usize)> = fake
            .bulk_requests()
            .iter()
            .map(|b| (b.method.clone(), b.size))
            .collect();
        assert_eq!(
            sizes,
            [
                ("POST".to_string(), sent_in_bulk),
                ("PATCH".to_string(), UPDATES)
            ],
            "{}",
            case.name
        );
        // The summary's own request counts agree with the fake's log.
        let r = &summary["requests"];
        assert_eq!(
            r["lookups"],
            lookups_before + lookups_after,
            "{}",
            case.name
        );
        assert_eq!(r["bulk_creates"], 1, "{}", case.name);
        assert_eq!(r["bulk_updates"], 1, "{}", case.name);
        assert_eq!(r["status_polls"], 2 * POLLS_PER_BATCH, "{}", case.name);
        assert_eq!(r["contact_gets"], 0, "{}", case.name);
        // The till store records each batch's polls too: both batches, polled as often.
        assert_eq!(
            ws.count(&format!(
                "SELECT count(*) FROM outbox_batch WHERE polls = {POLLS_PER_BATCH}"
            )),
            2,
            "{}",
            case.name
        );

        // Per contact: the stored outcome says what happened to each.
        let outcomes = create_outcomes(&ws);
        for i in 0..NEW {
            let word = &outcomes[&format!("new{i}@example.com")];
            let want = match (case.rows, case.lookup_first) {
                (true, _) => "Created",
                (false, true) => "FoundAfterCreate",
                (false, false) => "FoundAfterSend",
            };
            assert_eq!(word, want, "{}: new{i}", case.name);
        }
        for i in 0..EXISTING {
            let word = &outcomes[&format!("existing{i}@example.com")];
            let want = match (case.rows, case.lookup_first) {
                (_, true) => "Found",
                (true, false) => "AlreadyExists",
                (false, false) => "FoundAfterSend",
            };
            assert_eq!(word, want, "{}: existing{i}", case.name);
        }
        for i in 0..NEW {
            assert_eq!(fake.creates_for("email", &format!("new{i}@example.com")), 1);
        }
        for i in 0..EXISTING {
            let email = format!("existing{i}@example.com");
            assert_eq!(fake.creates_for("email", &email), 0, "{}", case.name);
        }
        for id in &updated {
            assert_eq!(fake.contact(id).expect("live")["firstName"], "New");
        }
    }
}

#[test]
fn the_human_summary_names_each_kind_of_outcome() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    replica_contacts_with_updates(&fake, &ws, 1);
    fake.add_contact(json!({"email": "old@example.com"}));
    till_contact(&ws, "old@example.com");
    till_contact(&ws, "a@example.com");
    till_contact(&ws, "b@example.com");
    let text = push_human(&ws, &fake);
    assert!(
        text.contains("contacts: 2 created, 1 linked to existing, 1 updated, 0 rejected"),
        "{text}"
    );
    assert!(
        !text.contains("created or linked"),
        "said only when some are unclear: {text}"
    );
    assert!(text.contains("3 lookups"), "{text}");

    let fake = FakeEngage::start(FakeConfig {
        bulk_status_results: false,
        ..FakeConfig::default()
    });
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    till_contact(&ws, "a@example.com");
    let text = push_human(&ws, &fake);
    assert!(
        text.contains("0 created, 0 linked to existing, 1 created or linked"),
        "{text}"
    );
}

#[test]
fn a_bulk_create_whose_answer_was_lost_is_looked_up_once_before_it_is_sent_again() {
    const N: usize = 4;
    // The request never reaches Engage's handler: nothing is created, the push cannot know.
    let fake = FakeEngage::start(FakeConfig {
        unique_keys: Vec::new(),
        ..FakeConfig::default()
    });
    let ws = workspace_for(&fake, "");
    for i in 0..N {
        till_contact(&ws, &format!("lost{i}@example.com"));
    }
    fake.inject(Fault::on(
        "POST",
        "/api/v3/contacts/bulk",
        FaultKind::DropBeforeResponse,
    ));
    let out = push(&ws, &fake, &[]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert_eq!(json_of(&out)["sent_without_answer"], N);
    assert_eq!(fake.contact_count(), 0);
    assert!(fake.pending_faults().is_empty());

    fake.clear_requests();
    let out = push(&ws, &fake, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    // One lookup each (the check of the unanswered send, which found nothing), then the
    // create: the check just made stands for the lookup before sending again.
    let want = expected(&[
        ("GET /contacts/id", N),
        ("POST /contacts/bulk", 1),
        ("GET /contacts/bulk/status", POLLS_PER_BATCH),
    ]);
    assert_eq!(fake.requests_per_endpoint(), want);
    let summary = json_of(&out);
    assert_eq!(summary["contacts_created"], N, "{summary}");
    assert_eq!(summary["contacts_linked_existing"], 0);
    for i in 0..N {
        assert_eq!(
            fake.creates_for("email", &format!("lost{i}@example.com")),
            1
        );
    }
}

#[test]
fn a_push_killed_between_engage_creating_the_contacts_and_recording_them_creates_each_once() {
    const N: usize = 3;
    // push.bulk_sent: Engage answered the bulk create, its batch id not yet stored (the next
    // run can only look the contacts up). push.batch_stored: the batch id stored, not yet
    // polled (the next run polls it).
    for failpoint in ["push.bulk_sent", "push.batch_stored"] {
        for rows in [true, false] {
            let what = format!("{failpoint}, rows {rows}");
            // Uniqueness off: a second create of the same person would be stored and counted.
            let fake = FakeEngage::start(FakeConfig {
                unique_keys: Vec::new(),
                bulk_status_results: rows,
                ..FakeConfig::default()
            });
            let ws = workspace_for(&fake, "");
            for i in 0..N {
                till_contact(&ws, &format!("crash{i}@example.com"));
            }
            let out = push(&ws, &fake, &[("ENGAGE_SYNC_FAILPOINT", failpoint)]);
            assert_eq!(
                out.status.code(),
                None,
                "{what}: killed: {}",
                stderr_of(&out)
            );
            assert_eq!(fake.contact_count(), N, "{what}: created before the kill");

            fake.clear_requests();
            let out = push(&ws, &fake, &[]);
            assert!(out.status.success(), "{what}: {}", stderr_of(&out));
            // Nothing is sent again: the contacts are found by key, or the stored batch is
            // polled (and, without rows, its contacts found by key).
            let (polls, lookups, word) = match (failpoint, rows) {
                ("push.bulk_sent", _) => (0, N, "FoundAfterCreate"),
                (_, true) => (POLLS_PER_BATCH, 0, "Created"),
                (_, false) => (POLLS_PER_BATCH, N, "FoundAfterCreate"),
            };
            let want = expected(&[
                ("GET /contacts/id", lookups),
                ("GET /contacts/bulk/status", polls),
            ]);
            assert_eq!(fake.requests_per_endpoint(), want, "{what}");
            let summary = json_of(&out);
            assert_eq!(summary["contacts_created"], N, "{what}: {summary}");
            assert_eq!(summary["contacts_linked_existing"], 0, "{what}: {summary}");
            assert_eq!(
                summary["contacts_created_or_linked"], 0,
                "{what}: {summary}"
            );
            let outcomes = create_outcomes(&ws);
            for i in 0..N {
                let email = format!("crash{i}@example.com");
                assert_eq!(fake.creates_for("email", &email), 1, "{what}: {email}");
                assert_eq!(outcomes[&email], word, "{what}: {email}");
            }
            assert_eq!(
                ws.count("SELECT count(*) FROM contacts WHERE contact_id IS NULL"),
                0,
                "{what}: all linked"
            );
            // A further run has nothing to do.
            fake.clear_requests();
            assert!(push(&ws, &fake, &[]).status.success());
            assert!(fake.requests().is_empty(), "{what}");
        }
    }
}

/// The report's receipt counts, worked out from the setup: four receipts posted one at a time
/// (`max_concurrency = 1`), and Engage stores the first one but its answer is lost (a post
/// that may have reached Engage is not repeated in the same run). The first run delivers
/// three and reports the first as sent without an answer; the next run posts it again, and
/// Engage answers that it already has it (a duplicate, delivered too).
#[test]
fn the_report_counts_each_receipt_as_engage_answered_it() {
    const RECEIPTS: &str = "/api/v3/receipts";
    let fake = FakeEngage::start(FakeConfig::default());
    let id = fake.add_contact(json!({"email": "regular@example.com"}));
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 2\nmax_concurrency = 1\n");
    let ws = Workspace::pointed_at(&fake, &engage, FAST_PUSH);
    let ids: Vec<String> = (0..4).map(|i| format!("RC-{i}")).collect();
    let out = ws
        .cmd()
        .args(["receipt", "add", "-"])
        .write_stdin(receipt_lines("RC", ids.len(), &id))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    fake.inject(Fault::on("POST", RECEIPTS, FaultKind::ApplyThenDrop));
    let first = push(&ws, &fake, &[]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    assert_eq!(
        fake.receipts().len(),
        ids.len(),
        "the first was stored, its answer lost"
    );
    let s = json_of(&first);
    assert_eq!(s["receipts_delivered"], ids.len() - 1);
    assert_eq!(s["receipts_duplicate"], 0);
    assert_eq!(s["sent_without_answer"], 1);
    assert_eq!(s["receipts_left"], 1);
    assert_eq!(s["requests"]["receipt_posts"], ids.len());
    assert_eq!(
        fake.requests_per_endpoint(),
        expected(&[("POST /receipts", ids.len())])
    );

    fake.clear_requests();
    let second = push(&ws, &fake, &[]);
    assert!(second.status.success(), "{}", stderr_of(&second));
    let s = json_of(&second);
    assert_eq!(s["receipts_delivered"], 0);
    assert_eq!(s["receipts_duplicate"], 1, "Engage already had {}", ids[0]);
    assert_eq!(s["sent_without_answer"], 0);
    assert_eq!(s["receipts_left"], 0);
    assert_eq!(s["requests"]["receipt_posts"], 1);
    assert_eq!(
        fake.requests_per_endpoint(),
        expected(&[("POST /receipts", 1)])
    );
    assert_eq!(fake.receipts().len(), ids.len(), "each stored once");
}

/// `requests.sent` counts every HTTP request, retries included, as Engage saw them; the
/// counts by kind are calls (a receipt refused with 429 twice, then taken, is one post).
#[test]
fn the_report_counts_every_request_sent_and_each_call_once() {
    let fake = FakeEngage::start(FakeConfig::default());
    let id = fake.add_contact(json!({"email": "regular@example.com"}));
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 3\nmax_concurrency = 1\n");
    let ws = Workspace::pointed_at(&fake, &engage, FAST_PUSH);
    let receipts = 3;
    let out = ws
        .cmd()
        .args(["receipt", "add", "-"])
        .write_stdin(receipt_lines("RS", receipts, &id))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let retries = 2;
    fake.inject(
        Fault::on(
            "POST",
            "/api/v3/receipts",
            FaultKind::Status429 { retry_after: None },
        )
        .times(retries),
    );
    let out = push(&ws, &fake, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let s = json_of(&out);
    assert_eq!(s["receipts_delivered"], receipts);
    assert_eq!(s["requests"]["receipt_posts"], receipts);
    assert_eq!(s["requests"]["sent"], receipts + retries);
    assert_eq!(s["requests"]["sent"], fake.requests().len());
}

/// A completed update batch whose status names only some of its rows: the updates it names
/// count as applied, and the one it leaves out is read back from Engage (one `GET
/// /contacts/{id}`) before it counts, never taken as done unseen.
#[test]
fn an_update_the_batch_answer_does_not_name_is_read_back_before_it_counts() {
    let fake = FakeEngage::start(FakeConfig {
        bulk_status_rows_left_out: vec![1],
        ..FakeConfig::default()
    });
    let ws = workspace_for(&fake, "");
    let ids = replica_contacts_with_updates(&fake, &ws, 3);
    let out = push(&ws, &fake, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let s = json_of(&out);
    assert_eq!(s["contacts_updated"], ids.len());
    assert_eq!(s["requests"]["contact_gets"], 1, "the row left out");
    assert_eq!(
        fake.requests_per_endpoint(),
        expected(&[
            ("PATCH /contacts/bulk", 1),
            ("GET /contacts/bulk/status", POLLS_PER_BATCH),
            ("GET /contacts/{id}", 1),
        ])
    );
    for id in &ids {
        let contact = fake.contact(id).expect("in Engage");
        assert_eq!(contact["firstName"], "New", "{id}");
    }
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'delivered'"),
        ids.len() as i64
    );
}

/// Engage refuses a whole bulk create as invalid (400): each of its contacts is rejected
/// with Engage's answer as its reason (not sent again by later runs), the run ends 65, and
/// the report and `status` name them.
#[test]
fn contacts_of_a_bulk_create_engage_refuses_are_rejected_with_its_reason() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let emails = ["refused0@example.com", "refused1@example.com"];
    for email in emails {
        till_contact(&ws, email);
    }
    fake.inject(Fault::on(
        "POST",
        "/api/v3/contacts/bulk",
        FaultKind::Status(400),
    ));
    let out = push(&ws, &fake, &[]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    let s = json_of(&out);
    assert_eq!(s["contacts_rejected"], emails.len());
    assert_eq!(s["rejected"].as_array().expect("notes").len(), emails.len());
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM contact_outbox WHERE state = 'rejected' \
             AND reason LIKE 'Engage refused the whole bulk request%400%'"
        ),
        emails.len() as i64
    );
    let again = push(&ws, &fake, &[]);
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert_eq!(
        fake.requests_per_endpoint(),
        expected(&[("POST /contacts/bulk", 1)]),
        "refused contacts are not sent again"
    );
    assert_eq!(fake.contact_count(), 0);
}

/// An update sent while the replica still had its contact, whose contact Engage had deleted:
/// the batch's row fails, and by the time the batch completes the replica has learnt of the
/// deletion (an export applied between two runs), so the update is dropped (there is nothing
/// left to update), not rejected as if the data were wrong.
#[test]
fn an_update_of_a_contact_deleted_in_engage_meanwhile_is_dropped_not_rejected() {
    let fake = FakeEngage::start(FakeConfig::default());
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 2\n");
    // Polls only once per run: the batch is still processing at the first run's end.
    let local = FAST_PUSH.replace("bulk_poll_timeout = \"5s\"", "bulk_poll_timeout = \"1ms\"");
    let ws = Workspace::pointed_at(&fake, &engage, &local);
    let ids = replica_contacts_with_updates(&fake, &ws, 1);
    let id = &ids[0];
    assert!(fake.delete_contact(id));
    let first = push(&ws, &fake, &[]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox_batch WHERE state = 'sent'"),
        1,
        "the batch is still open"
    );
    replica_learns_deleted(&ws, std::slice::from_ref(id));
    let mut dropped = 0;
    for _ in 0..4 {
        let out = push(&ws, &fake, &[]);
        let s = json_of(&out);
        assert_eq!(s["contacts_rejected"], 0, "{s}");
        dropped += s["contacts_dropped"].as_u64().expect("count");
        if out.status.success() {
            break;
        }
        assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    }
    assert_eq!(dropped, 1);
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM contact_outbox WHERE state = 'dropped' \
             AND reason LIKE 'the contact was deleted in Engage%'"
        ),
        1
    );
}

/// Polls of a batch still processing wait `bulk_poll_interval` after the bulk write, then
/// after each "Processing" answer, growing by half each time: Engage sees them at least that
/// far apart. The bounds are lower bounds, which a slow machine only widens.
#[test]
fn status_polls_of_a_processing_batch_wait_the_growing_interval() {
    let fake = FakeEngage::start(FakeConfig {
        bulk_processing_polls: 2,
        ..FakeConfig::default()
    });
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 2\n");
    let local = FAST_PUSH.replace(
        "bulk_poll_interval = \"10ms\"",
        "bulk_poll_interval = \"200ms\"",
    );
    let ws = Workspace::pointed_at(&fake, &engage, &local);
    till_contact(&ws, "polled@example.com");
    let out = push(&ws, &fake, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let arrivals: Vec<(String, std::time::Instant)> = fake
        .requests()
        .into_iter()
        .map(|r| (fake_engage::endpoint(&r.method, &r.path), r.at))
        .filter(|(e, _)| e.contains("/contacts/bulk"))
        .collect();
    let names: Vec<&str> = arrivals.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "POST /contacts/bulk",
            "GET /contacts/bulk/status",
            "GET /contacts/bulk/status",
            "GET /contacts/bulk/status"
        ]
    );
    let gaps: Vec<u128> = arrivals
        .windows(2)
        .map(|w| w[1].1.duration_since(w[0].1).as_millis())
        .collect();
    for (gap, least) in gaps.iter().zip([200, 200, 300]) {
        assert!(*gap >= least, "gaps {gaps:?} ms, each at least {least}");
    }
}

/// Creates go in one bulk request per contact type, the type named by the request's
/// `contactType` query parameter (ENGAGE-API.md: the documented way to set a bulk create's
/// type; whether Engage reads a row's own `contactType` is unconfirmed). A contact
/// registered at the till without a type is a Member, named as such. A dry run numbers the
/// requests as the push then sends them.
#[test]
fn a_bulk_create_per_contact_type_names_its_type_in_the_query() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    till_contact(&ws, "member@example.com");
    let out = ws
        .cmd()
        .args([
            "contact",
            "add",
            "--email",
            "prospect@example.com",
            "--contact-type",
            "Contact",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let planned: BTreeSet<String> = dry_run_actions(&ws, &fake).into_iter().collect();
    let out = push(&ws, &fake, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let creates: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/api/v3/contacts/bulk"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        creates,
        [
            "/api/v3/contacts/bulk?contactType=Contact",
            "/api/v3/contacts/bulk?contactType=Member"
        ]
    );
    // Request n of the plan is the n-th request sent, with the same type.
    let sent: BTreeSet<String> = creates
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let t = path.rsplit('=').next().expect("type");
            format!("created in bulk create request {} (contactType {t})", i + 1)
        })
        .collect();
    assert_eq!(planned, sent);
}

/// A queued update of a contact the replica has since seen deleted in Engage is dropped
/// without a request: when every update of a push is dropped (or waits), no update request
/// goes out at all, not even an empty one.
#[test]
fn updates_that_are_all_dropped_send_no_request() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    let ids = replica_contacts_with_updates(&fake, &ws, 2);
    replica_learns_deleted(&ws, &ids);
    let out = push(&ws, &fake, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let s = json_of(&out);
    assert_eq!(s["contacts_dropped"], ids.len());
    assert_eq!(fake.requests_per_endpoint(), BTreeMap::new(), "no request");
    assert_eq!(
        s["requests"]["bulk_updates"], 0,
        "and the report counts none"
    );
}

/// The summary lists at most 50 waiting items (the counts stay complete): a push in which 51
/// receipts wait lists 50 of them and counts all 51 as left.
#[test]
fn the_summary_lists_fifty_waiting_items_and_counts_them_all() {
    const N: usize = 51;
    let fake = FakeEngage::start(FakeConfig::default());
    let id = fake.add_contact(json!({"email": "regular@example.com"}));
    let ws = workspace_for(&fake, "");
    let lines = receipt_lines("L", N, &id);
    let out = ws
        .cmd()
        .args(["receipt", "add", "-"])
        .write_stdin(lines)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    fake.inject(Fault::on("POST", "/api/v3/receipts", FaultKind::Status(503)).times(10_000));
    let out = push(&ws, &fake, &[]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    let s = json_of(&out);
    assert_eq!(s["receipts_left"], N);
    assert_eq!(s["waiting"].as_array().expect("notes").len(), 50);
}

/// A dry run names each queued update's fate: a bulk update of the fields changed, or dropped
/// when the replica has seen the contact deleted in Engage.
#[test]
fn a_dry_run_names_each_updates_fields_or_its_drop() {
    let fake = FakeEngage::start(FakeConfig::default());
    let ws = workspace_for(&fake, "");
    let ids = replica_contacts_with_updates(&fake, &ws, 2);
    replica_learns_deleted(&ws, &ids[1..]);
    let actions = dry_run_actions(&ws, &fake);
    assert_eq!(
        actions,
        [
            format!("bulk update of contactId {}: firstName", ids[0]),
            format!("dropped: the contact {} was deleted in Engage", ids[1]),
        ]
    );
    assert!(fake.requests().is_empty());
}

/// A create sent again after a run in which it could not go (429 to every try) was looked up
/// before this send (every re-send is), found absent, and found after it: Engage made it on
/// our request, so the report counts it created, not "created or linked", even with
/// `lookup_before_create = false` and a batch status that names no contact.
#[test]
fn a_resent_create_found_after_the_send_counts_as_created() {
    let fake = FakeEngage::start(FakeConfig {
        bulk_status_results: false,
        ..FakeConfig::default()
    });
    let ws = workspace_for(&fake, "lookup_before_create = false\n");
    let emails = ["again0@example.com", "again1@example.com"];
    for email in emails {
        till_contact(&ws, email);
    }
    let limited = FaultKind::Status429 { retry_after: None };
    fake.inject(Fault::on("POST", "/api/v3/contacts/bulk", limited).times(3));
    let first = push(&ws, &fake, &[]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    fake.clear_requests();
    let second = push(&ws, &fake, &[]);
    assert!(second.status.success(), "{}", stderr_of(&second));
    let s = json_of(&second);
    assert_eq!(s["contacts_created"], emails.len(), "{s}");
    assert_eq!(s["contacts_created_or_linked"], 0, "{s}");
    // Looked up before the send (absent) and after it (found).
    assert_eq!(
        fake.requests_per_endpoint().get("GET /contacts/id"),
        Some(&(2 * emails.len()))
    );
    assert_eq!(
        create_outcomes(&ws)["again0@example.com"],
        "FoundAfterCreate"
    );
}
