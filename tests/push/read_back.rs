//! Updates no answer settled (the batch's status left their rows out) are read back from
//! Engage before anything else happens to them: delivered when Engage shows every sent field,
//! sent again when it does not, dropped when the contact is gone, left in flight (and read
//! back by a later run) when the read fails, and a refused key stops the reading at once.

use super::*;

const CONTACT: &str = "/api/v3/contacts/";

/// A fake whose completed batches name no row of the first `n` contacts, and a workspace
/// whose replica knows `n + 1` contacts of it, each with a queued first-name change ("New").
/// The last contact's row is named: a status with no rows at all says nothing per contact,
/// and a completed update batch is then taken as applied (Engage's per-contact reporting is
/// unconfirmed). Returns the `n` unsettled ids.
fn unsettled_updates(n: usize, engage_extra: &str) -> (FakeEngage, Workspace, Vec<String>) {
    let fake = FakeEngage::start(FakeConfig {
        bulk_status_rows_left_out: (0..n).collect(),
        ..FakeConfig::default()
    });
    let engage = format!("{FAKE_ENGAGE_WAITS}max_retries = 2\n{engage_extra}");
    let ws = Workspace::pointed_at(&fake, &engage, FAST_PUSH);
    let mut ids = replica_contacts_with_updates(&fake, &ws, n + 1);
    ids.pop();
    (fake, ws, ids)
}

fn gets(fake: &FakeEngage) -> usize {
    fake.requests_per_endpoint()
        .get("GET /contacts/{id}")
        .copied()
        .unwrap_or(0)
}

/// The batch stays open at the end of the first run (one poll per run), and before it
/// completes Engage loses one change (someone else set the name back) and the other contact
/// is deleted. Reading back: the first is sent again (its second batch, of one row whose
/// status names none, is taken as applied), the second is dropped.
#[test]
fn an_update_engage_does_not_show_is_sent_again_and_one_whose_contact_is_gone_is_dropped() {
    let (fake, ws, ids) = unsettled_updates(2, "");
    let config = ws.path().join("engage-sync.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("bulk_poll_timeout = \"5s\"", "bulk_poll_timeout = \"1ms\""),
    )
    .expect("config");
    let first = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    assert!(fake.update_contact(&ids[0], json!({"firstName": "Other"})));
    assert!(fake.delete_contact(&ids[1]));
    let mut dropped = 0;
    for _ in 0..8 {
        let out = sync(&ws, &fake, &["--json", "push-local"]);
        dropped += json_of(&out)["contacts_dropped"].as_u64().expect("count");
        if out.status.success() {
            break;
        }
        assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    }
    assert_eq!(dropped, 1);
    let contact = fake.contact(&ids[0]).expect("in Engage");
    assert_eq!(contact["firstName"], "New", "sent again: {contact}");
    let sent = fake.requests_per_endpoint();
    assert_eq!(sent.get("PATCH /contacts/bulk"), Some(&2), "{sent:?}");
    assert_eq!(gets(&fake), 2, "each read back once: {sent:?}");
    let states = contact_states(&ws, "1");
    assert_eq!(states[0], ("delivered".to_string(), None));
    assert_eq!(
        states[2],
        ("delivered".to_string(), None),
        "named by its row"
    );
    assert_eq!(
        states[1],
        (
            "dropped".to_string(),
            Some("the contact no longer exists in Engage".to_string())
        )
    );
}

/// Engage answers 503 to every read: each update stays in flight saying it could not be read
/// back (all of them are tried, one at a time: a failed read does not stop the others, and
/// none is taken as done), and the next run reads them back and delivers them without
/// sending them again.
#[test]
fn updates_that_cannot_be_read_back_wait_in_flight_for_a_later_run() {
    let (fake, ws, ids) = unsettled_updates(2, "max_concurrency = 1\n");
    fake.inject(Fault::on("GET", CONTACT, FaultKind::Status(503)).times(1000));
    let first = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(first.status.code(), Some(75), "{}", stderr_of(&first));
    assert_eq!(
        gets(&fake),
        ids.len() * 3,
        "each read tried (max_retries = 2)"
    );
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM contact_outbox WHERE state = 'in_flight' \
             AND reason LIKE 'could not be read back from Engage%'"
        ),
        ids.len() as i64
    );
    fake.clear_faults();
    fake.clear_requests();
    let second = sync(&ws, &fake, &["--json", "push-local"]);
    assert!(second.status.success(), "{}", stderr_of(&second));
    assert_eq!(json_of(&second)["contacts_updated"], ids.len());
    let sent = fake.requests_per_endpoint();
    assert_eq!(
        sent.get("PATCH /contacts/bulk"),
        None,
        "not sent again: {sent:?}"
    );
    assert_eq!(gets(&fake), ids.len());
}

/// A refused key (401) to the first read stops the reading: no further read starts (one at a
/// time, `max_concurrency = 1`), the run ends 77, and the updates stay in flight for a later
/// run, which reads them back and delivers each without sending it again.
#[test]
fn a_refused_key_stops_reading_back() {
    let (fake, ws, ids) = unsettled_updates(3, "max_concurrency = 1\n");
    fake.inject(Fault::on("GET", CONTACT, FaultKind::Status(401)));
    let first = sync(&ws, &fake, &["--json", "push-local"]);
    assert_eq!(first.status.code(), Some(77), "{}", stderr_of(&first));
    assert_eq!(gets(&fake), 1, "no read after the refusal");
    assert_eq!(
        ws.count("SELECT count(*) FROM contact_outbox WHERE state = 'in_flight'"),
        ids.len() as i64
    );
    fake.clear_requests();
    let second = sync(&ws, &fake, &["--json", "push-local"]);
    assert!(second.status.success(), "{}", stderr_of(&second));
    assert_eq!(json_of(&second)["contacts_updated"], ids.len());
    assert_eq!(gets(&fake), ids.len());
    assert_eq!(
        fake.requests_per_endpoint().get("PATCH /contacts/bulk"),
        None
    );
}
