//! Every endpoint over real HTTP.

mod common;

use chrono::{Duration as CDuration, TimeZone, Utc};
use common::{raw, raw_get, receipt, start, start_with};
use fake_engage::{ChangeType, FakeConfig};
use serde_json::{json, Value};

const KEY_HEADERS: [&str; 3] = [
    "apikey: fake-engage-test-key",
    "User-Agent: t/1",
    "Content-Type: application/json",
];

#[test]
fn header_rules() {
    let (fake, _) = start();
    let ok = raw_get(&fake, "/api/v2/contacts/count", &KEY_HEADERS);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with("\r\n\r\n0"), "{ok}");

    let no_key = raw_get(&fake, "/api/v2/contacts/count", &KEY_HEADERS[1..]);
    assert!(no_key.starts_with("HTTP/1.1 401"), "{no_key}");
    assert!(no_key.contains("\"message\""));
    let wrong_key = raw_get(
        &fake,
        "/api/v2/contacts/count",
        &["apikey: nope", KEY_HEADERS[1], KEY_HEADERS[2]],
    );
    assert!(wrong_key.starts_with("HTTP/1.1 401"), "{wrong_key}");

    let no_ua = raw_get(
        &fake,
        "/api/v2/contacts/count",
        &[KEY_HEADERS[0], KEY_HEADERS[2]],
    );
    assert!(no_ua.starts_with("HTTP/1.1 400"), "{no_ua}");

    let no_ct = raw_get(&fake, "/api/v2/contacts/count", &KEY_HEADERS[..2]);
    assert!(no_ct.starts_with("HTTP/1.1 500"), "{no_ct}");
    assert!(
        no_ct.ends_with(r#"{"message":"An error has occurred."}"#),
        "{no_ct}"
    );

    let text_ct = raw_get(
        &fake,
        "/api/v2/contacts/count",
        &[KEY_HEADERS[0], KEY_HEADERS[1], "Content-Type: text/plain"],
    );
    assert!(text_ct.starts_with("HTTP/1.1 500"), "{text_ct}");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 6);
    assert!(reqs[0].apikey_present && !reqs[1].apikey_present);
    assert_eq!(reqs[1].status, Some(401));
    assert_eq!(reqs[3].user_agent, None);
    assert_eq!(reqs[0].path, "/api/v2/contacts/count");
}

#[test]
fn count_and_unknown_routes() {
    let (fake, c) = start();
    fake.add_contact(json!({"email": "a@example.com"}));
    fake.add_contact(json!({"email": "b@example.com", "contactType": "Contact"}));
    assert_eq!(c.get("/api/v2/contacts/count").body, "2");
    assert_eq!(c.get("/api/v2/contacts/Member/count").body, "1");
    assert_eq!(c.get("/api/v2/contacts/nosuchtype/count").status, 400);
    assert_eq!(c.get("/api/v3/contacts/count").status, 404);
    assert_eq!(c.get("/api/v4/contacts/count").status, 404);
    assert_eq!(c.get("/nothing").status, 404);
    assert_eq!(
        c.send("PUT", "/api/v3/receipts", Some(&json!({}))).status,
        404
    );
    assert_eq!(c.get("/api/v3/contacts/not-a-guid").status, 404);
}

#[test]
fn find_contact_id() {
    let (fake, c) = start();
    let anna = fake.add_contact(json!({"email": "Anna@Example.com", "mobilePhone": "+46701234567", "memberNumber": "1001", "socialSecurityNumber": "19121212-1212"}));
    fake.add_contact(json!({"email": "twin1@example.com", "mobilePhone": "+46709999999"}));
    fake.add_contact(json!({"email": "twin2@example.com", "mobilePhone": "+46709999999"}));
    for v in [2, 3] {
        let a = c.get(&format!("/api/v{v}/contacts/id?email=anna@example.COM"));
        assert_eq!(a.status, 200);
        assert_eq!(a.json(), json!(anna));
    }
    assert_eq!(
        c.get("/api/v3/contacts/id?mobilePhone=%2B46701234567")
            .json(),
        json!(anna)
    );
    // An unencoded + is a space in a query string: not a valid phone number.
    let plus = c.get("/api/v3/contacts/id?mobilePhone=+46701234567");
    assert_eq!(plus.status, 400);
    assert_eq!(plus.json()["errorCode"], "InvalidPhoneNumber");
    let nf = c.get("/api/v3/contacts/id?email=nobody@example.com");
    assert_eq!(nf.status, 404);
    assert_eq!(nf.json()["errorCode"], "ContactNotFound");
    let multi = c.get("/api/v3/contacts/id?mobilePhone=%2B46709999999");
    assert_eq!(multi.status, 409);
    assert_eq!(multi.json()["errorCode"], "MultipleMatches");
    assert_eq!(
        c.get("/api/v3/contacts/id?email=not-an-email").json()["errorCode"],
        "InvalidEmailAddress"
    );
    assert_eq!(
        c.get("/api/v3/contacts/id?customKey=1001").json(),
        json!(anna)
    );
    assert_eq!(
        c.get("/api/v3/contacts/id?socialSecurityNumber=191212121212")
            .json(),
        json!(anna)
    );
    assert_eq!(
        c.get("/api/v3/contacts/id?any=ANNA@example.com").json(),
        json!(anna)
    );
    assert_eq!(
        c.get("/api/v3/contacts/id?any=%2B46701234567").json(),
        json!(anna)
    );
    assert_eq!(c.get("/api/v3/contacts/id?any=1001").json(), json!(anna));
    assert_eq!(
        c.get("/api/v3/contacts/id?email=anna@example.com&contactType=Contact")
            .status,
        404
    );
    assert_eq!(c.get("/api/v3/contacts/id").status, 400);
    assert_eq!(
        c.get("/api/v3/contacts/id?email=a@b.se&mobilePhone=%2B4670")
            .status,
        400
    );
}

#[test]
fn get_contact_shape() {
    let (fake, c) = start();
    let id = fake
        .add_contact(json!({"firstName": "Åsa", "email": "asa@example.com", "acceptsEmail": true}));
    let a = c.get(&format!("/api/v3/contacts/{}", id.to_uppercase()));
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["id"], json!(id));
    assert_eq!(v["attributes"]["firstName"], "Åsa");
    assert_eq!(v["attributes"]["contactType"], "Member");
    assert!(v.get("contactType").is_none());
    assert_eq!(v["preferences"]["acceptsEmail"], true);
    assert_eq!(v["preferences"]["acceptsSms"], false);
    assert_eq!(v["consents"], json!([]));
    assert!(v["meta"]["createdOn"].is_string());
    assert_eq!(c.get(&format!("/api/v2/contacts/{id}")).json(), v);
    assert_eq!(fake.contact_json(&id), Some(v));
    assert!(fake.delete_contact(&id));
    assert_eq!(c.get(&format!("/api/v3/contacts/{id}")).status, 404);

    let (fake2, c2) = start_with(FakeConfig {
        contact_type_top_level: true,
        uppercase_ids: true,
        ..FakeConfig::default()
    });
    let id2 = fake2.add_contact(json!({"email": "x@example.com"}));
    let v2 = c2.get(&format!("/api/v3/contacts/{id2}")).json();
    assert_eq!(v2["contactType"], "Member");
    assert!(v2["attributes"].get("contactType").is_none());
    assert_eq!(v2["id"], json!(id2.to_uppercase()));
}

#[test]
fn create_contact() {
    let (fake, c) = start();
    let a = c.post(
        "/api/v3/contacts?source=POS&storeExternalId=600&createAsUnapproved=true",
        &json!({"firstName": "Björn", "email": "Bjorn@Example.com", "countryCode": "SE", "favouriteColour": "red", "age": 40}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let v = a.json();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["attributes"]["email"], "Bjorn@Example.com");
    assert_eq!(v["attributes"]["contactType"], "Member");
    assert_eq!(v["attributes"]["createdInStore"], "600");
    assert!(v["attributes"]["memberNumber"].is_string());
    assert!(v["attributes"].get("favouriteColour").is_none());
    assert!(v["attributes"].get("age").is_none());
    assert_eq!(v["meta"]["source"], "POS");
    assert_eq!(v["meta"]["isApproved"], false);
    assert_eq!(fake.contact(&id).unwrap()["firstName"], "Björn");
    assert_eq!(fake.creates_for("email", "bjorn@example.com"), 1);

    let dup = c.post("/api/v3/contacts", &json!({"email": "bjorn@example.com"}));
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["errorCode"], "ContactAlreadyExists");
    assert_eq!(dup.json()["contactId"], json!(id));
    assert_eq!(fake.creates_for("email", "BJORN@example.com"), 1);

    let nokey = c.post("/api/v3/contacts", &json!({"firstName": "Nobody"}));
    assert_eq!(nokey.status, 400);
    let badtype = c.post(
        "/api/v3/contacts",
        &json!({"email": "t@example.com", "contactType": "Alien"}),
    );
    assert_eq!(badtype.json()["errorCode"], "InvalidContactType");
    let badmail = c.post("/api/v3/contacts", &json!({"email": "t@"}));
    assert_eq!(badmail.json()["errorCode"], "InvalidEmailAddress");
    assert_eq!(c.post("/api/v3/contacts", &json!([1])).status, 400);
    assert_eq!(
        c.post(
            "/api/v3/contacts?createAsUnapproved=maybe",
            &json!({"email": "u@example.com"})
        )
        .status,
        400
    );

    // v2 takes source etc. as headers.
    let v2 = c
        .agent
        .post(&format!("{}/api/v2/contacts", c.base))
        .set("apikey", &c.key)
        .set("Content-Type", "application/json")
        .set("source", "Web")
        .send_string(r#"{"mobilePhone": "+46701112233", "contactType": "contact"}"#)
        .unwrap();
    assert_eq!(v2.status(), 201);
    let v2: Value = serde_json::from_str(&v2.into_string().unwrap()).unwrap();
    assert_eq!(v2["meta"]["source"], "Web");
    assert_eq!(v2["attributes"]["contactType"], "Contact");
    assert!(v2["attributes"].get("memberNumber").is_none());
    assert_eq!(fake.contact_count(), 2);
    assert_eq!(
        fake.creates_per_key().get("mobilePhone:+46701112233"),
        Some(&1)
    );
}

#[test]
fn update_contact() {
    let (fake, c) = start();
    let id = fake.add_contact(
        json!({"email": "a@example.com", "firstName": "A", "city": "Umeå", "createdInStore": "1"}),
    );
    fake.add_contact(json!({"email": "taken@example.com"}));
    let a = c.patch(
        &format!("/api/v3/contacts/{id}"),
        &json!({"firstName": "Ärla", "city": "", "lastName": null, "bogus": 1, "contactType": "Contact", "createdInStore": "2"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let attrs = fake.contact(&id).unwrap();
    assert_eq!(attrs["firstName"], "Ärla");
    assert_eq!(attrs["city"], "");
    assert_eq!(attrs["lastName"], Value::Null);
    assert!(attrs.get("bogus").is_none());
    assert_eq!(attrs["contactType"], "Member");
    assert_eq!(attrs["createdInStore"], "1");
    let v2 = c.post(
        &format!("/api/v2/contacts/{id}"),
        &json!({"mobilePhone": "+46705550000"}),
    );
    assert_eq!(v2.status, 200);
    assert_eq!(v2.json()["attributes"]["mobilePhone"], "+46705550000");
    assert_eq!(
        fake.find_contacts("mobilePhone", "+46705550000"),
        vec![id.clone()]
    );
    assert_eq!(
        c.patch(
            &format!("/api/v3/contacts/{id}"),
            &json!({"email": "TAKEN@example.com"})
        )
        .status,
        409
    );
    assert_eq!(
        c.patch(
            &format!("/api/v3/contacts/{id}"),
            &json!({"mobilePhone": "0705550000"})
        )
        .status,
        400
    );
    assert_eq!(
        c.patch(&format!("/api/v2/contacts/{id}"), &json!({}))
            .status,
        404
    );
    assert_eq!(
        c.post(&format!("/api/v3/contacts/{id}"), &json!({})).status,
        404
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        c.patch(
            &format!("/api/v3/contacts/{unknown}"),
            &json!({"firstName": "x"})
        )
        .status,
        404
    );
    let t = c.post(
        &format!("/api/v3/contacts/{id}/updateContactType?contactTypeId=Contact"),
        &json!({}),
    );
    assert_eq!(t.json()["attributes"]["contactType"], "Contact");
    let updates = fake
        .changes_log()
        .iter()
        .filter(|c| c.change_type == ChangeType::Updated)
        .count();
    assert_eq!(updates, 3);
    assert_eq!(
        c.send("DELETE", &format!("/api/v2/contacts/{id}"), None)
            .status,
        204
    );
    assert_eq!(
        c.send("DELETE", &format!("/api/v3/contacts/{id}"), None)
            .status,
        404
    );
    assert_eq!(fake.contact_count(), 1);
}

#[test]
fn bulk_create_status_and_limits() {
    let (fake, c) = start();
    let existing = fake.add_contact(json!({"email": "old@example.com"}));
    let body = json!([
        {"email": "new1@example.com", "firstName": "Ny"},
        {"email": "OLD@example.com"},
        {"firstName": "no key"},
        {"mobilePhone": "+46701234500"},
        {"email": "new1@example.com"},
        "not an object"
    ]);
    let a = c.post("/api/v3/contacts/bulk", &body);
    assert_eq!(a.status, 200, "{}", a.body);
    let batch = a.json().as_str().unwrap().to_string();
    // Applied at acceptance: visible before the batch reports Completed.
    assert_eq!(fake.contact_count(), 3);
    let p = c
        .get(&format!("/api/v2/contacts/bulk/status?batchId={batch}"))
        .json();
    assert_eq!(p["status"], "Processing");
    assert_eq!(p["total"], 6);
    let s = c
        .get(&format!("/api/v3/contacts/bulk/status?batchId={batch}"))
        .json();
    assert_eq!(s["status"], "Completed");
    assert_eq!(s["batchId"], json!(batch));
    assert_eq!(s["succeeded"], 4);
    assert_eq!(s["failed"], 2);
    let r = s["results"].as_array().unwrap();
    let statuses: Vec<&str> = r.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "Created",
            "AlreadyExists",
            "Failed",
            "Created",
            "AlreadyExists",
            "Failed"
        ]
    );
    assert_eq!(r[1]["contactId"], json!(existing));
    assert_eq!(r[4]["contactId"], r[0]["contactId"]);
    assert_eq!(r[1]["key"], "OLD@example.com");
    assert!(r[2]["message"]
        .as_str()
        .unwrap()
        .contains("MissingContactKey"));
    assert_eq!(r[3]["index"], 3);
    assert_eq!(fake.creates_for("email", "new1@example.com"), 1);

    let new_ids: Vec<Value> = vec![r[0]["contactId"].clone(), r[3]["contactId"].clone()];
    let from = (Utc::now() - CDuration::minutes(1)).format("%Y-%m-%d %H:%M:%S%.3f");
    // toDate is exclusive and defaults to now: a create in this very millisecond would be
    // left out, so the window ends a minute ahead.
    let to = (Utc::now() + CDuration::minutes(1)).format("%Y-%m-%d %H:%M:%S%.3f");
    let feed = c
        .get(&format!(
            "/api/v3/contacts/changes?changeType=Created&fromDate={from}&toDate={to}"
        ))
        .json();
    for id in &new_ids {
        assert!(feed.as_array().unwrap().contains(id));
    }

    let too_many: Vec<Value> = (0..4001)
        .map(|i| json!({"email": format!("m{i}@example.com")}))
        .collect();
    assert_eq!(
        c.post("/api/v3/contacts/bulk", &Value::Array(too_many))
            .status,
        400
    );
    let max: Vec<Value> = (0..4000)
        .map(|i| json!({"email": format!("m{i}@example.com")}))
        .collect();
    let ok = c.post("/api/v2/contacts/bulk", &Value::Array(max));
    assert_eq!(ok.status, 200);
    assert_eq!(fake.contact_count(), 4003);
    assert_eq!(c.post("/api/v3/contacts/bulk", &json!([])).status, 400);
    assert_eq!(
        c.post("/api/v3/contacts/bulk", &json!({"email": "x@example.com"}))
            .status,
        400
    );
    assert_eq!(
        c.post(
            "/api/v3/contacts/bulk?contactType=Alien",
            &json!([{"email": "y@example.com"}])
        )
        .status,
        400
    );
    assert_eq!(
        c.get("/api/v3/contacts/bulk/status?batchId=00000000-0000-4000-8000-000000000000")
            .status,
        404
    );
    assert_eq!(
        c.get("/api/v3/contacts/bulk/status?batchId=junk").status,
        404
    );

    let reqs = fake.bulk_requests();
    let summary: Vec<(String, usize, bool, u16)> = reqs
        .iter()
        .map(|r| (r.method.clone(), r.size, r.batch_id.is_some(), r.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("POST".into(), 6, true, 200),
            ("POST".into(), 4001, false, 400),
            ("POST".into(), 4000, true, 200),
            ("POST".into(), 0, false, 400),
            ("POST".into(), 0, false, 400),
        ]
    );
    assert_eq!(reqs[0].batch_id.as_deref(), Some(batch.as_str()));
}

#[test]
fn bulk_update_and_processing_polls() {
    let (fake, c) = start_with(FakeConfig {
        bulk_processing_polls: 0,
        ..FakeConfig::default()
    });
    let a = fake.add_contact(json!({"email": "a@example.com"}));
    let b = fake.add_contact(json!({"email": "b@example.com"}));
    let body = json!([
        {"contactId": a.to_uppercase(), "city": "Malmö"},
        {"id": b, "firstName": "Bo"},
        {"contactId": "00000000-0000-4000-8000-000000000000", "city": "x"},
        {"city": "no id"}
    ]);
    let batch = c.patch("/api/v3/contacts/bulk", &body).json();
    let s = c
        .get(&format!(
            "/api/v3/contacts/bulk/status?batchId={}",
            batch.as_str().unwrap()
        ))
        .json();
    assert_eq!(s["status"], "Completed");
    let statuses: Vec<&str> = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Updated", "Updated", "Failed", "Failed"]);
    assert_eq!(fake.contact(&a).unwrap()["city"], "Malmö");
    assert_eq!(fake.contact(&b).unwrap()["firstName"], "Bo");
    assert_eq!(fake.bulk_requests()[0].method, "PATCH");

    fake.set_bulk_processing_polls(2);
    let batch = c
        .patch("/api/v2/contacts/bulk", &json!([{"id": a, "city": "Lund"}]))
        .json();
    let url = format!(
        "/api/v3/contacts/bulk/status?batchId={}",
        batch.as_str().unwrap()
    );
    assert_eq!(c.get(&url).json()["status"], "Processing");
    assert_eq!(c.get(&url).json()["status"], "Processing");
    assert_eq!(c.get(&url).json()["status"], "Completed");
}

#[test]
fn bulk_status_without_result_rows_and_requests_per_endpoint() {
    let (fake, c) = start_with(FakeConfig {
        bulk_processing_polls: 0,
        bulk_status_results: false,
        ..FakeConfig::default()
    });
    fake.add_contact(json!({"email": "old@example.com"}));
    let body =
        json!([{"email": "new@example.com"}, {"email": "old@example.com"}, {"firstName": "x"}]);
    let batch = c.post("/api/v3/contacts/bulk", &body).json();
    let s = c
        .get(&format!(
            "/api/v2/contacts/bulk/status?batchId={}",
            batch.as_str().unwrap()
        ))
        .json();
    assert_eq!(s["status"], "Completed");
    assert_eq!(
        (
            s["total"].as_u64(),
            s["succeeded"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(s["results"], json!([]), "no per-contact rows");
    assert_eq!(fake.contact_count(), 2, "applied all the same");
    assert_eq!(
        c.get("/api/v3/contacts/id?email=new%40example.com").status,
        200
    );
    let counts = fake.requests_per_endpoint();
    let want: std::collections::BTreeMap<String, usize> = [
        ("POST /contacts/bulk", 1),
        ("GET /contacts/bulk/status", 1),
        ("GET /contacts/id", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, want);
}

#[test]
fn changes_feed() {
    let (fake, c) = start();
    let t0 = Utc.with_ymd_and_hms(2023, 5, 4, 11, 5, 0).unwrap();
    fake.set_now(t0);
    let a = fake.add_contact(json!({"email": "a@example.com"}));
    let b = fake.add_contact_at(
        json!({"email": "b@example.com"}),
        t0 + CDuration::minutes(10),
    );
    fake.advance(std::time::Duration::from_secs(3600));
    assert!(fake.update_contact(&a, json!({"city": "Kiruna"})));
    assert!(fake.update_contact_at(&a, json!({"city": "Luleå"}), t0 + CDuration::minutes(61)));
    assert!(fake.delete_contact_at(&b, t0 + CDuration::minutes(90)));

    let get = |q: &str| c.get(&format!("/api/v3/contacts/changes?{q}"));
    let ids = |q: &str| get(q).json();
    assert_eq!(
        ids("changeType=Created&fromDate=2023-05-04%2011%3A05%3A00.000"),
        json!([a, b])
    );
    assert_eq!(
        ids("changeType=created&fromDate=2023-05-04+11:05:00.001"),
        json!([b])
    );
    // toDate is exclusive; no offset means UTC.
    assert_eq!(
        ids("changeType=Created&fromDate=2023-05-04T11:00:00&toDate=2023-05-04T11:15:00"),
        json!([a])
    );
    assert_eq!(
        ids("changeType=Created&fromDate=2023-05-04T11:00:00Z&toDate=2023-05-04T13:15:00%2B02:00"),
        json!([a])
    );
    assert_eq!(
        ids("changeType=Created&fromDate=2023-05-04T11:00:00&toDate=2023-05-04T11:05:00"),
        json!([])
    );
    // toDate defaults to the fake's now (t0 + 1 h), exclusive.
    assert_eq!(
        ids("changeType=Updated&fromDate=2023-05-04T00:00:00"),
        json!([])
    );
    assert_eq!(
        ids("changeType=Updated&fromDate=2023-05-04T00:00:00&toDate=2023-05-05T00:00:00"),
        json!([a])
    );
    assert_eq!(
        ids("changeType=Deleted&fromDate=2023-05-04T00:00:00&toDate=2023-05-05T00:00:00"),
        json!([b])
    );
    assert_eq!(c.get("/api/v2/contacts/changes?changeType=Deleted&fromDate=2023-05-04T12:35:00&toDate=2023-05-05").json(), json!([b]));

    assert_eq!(get("fromDate=2023-05-04T00:00:00").status, 400);
    assert_eq!(
        get("changeType=Moved&fromDate=2023-05-04T00:00:00").status,
        400
    );
    assert_eq!(get("changeType=Created").status, 400);
    assert_eq!(get("changeType=Created&fromDate=last-tuesday").status, 400);

    fake.set_changes_cap(1);
    let capped = get("changeType=Created&fromDate=2023-05-04T00:00:00");
    assert_eq!(capped.status, 400);
    assert!(capped.json()["message"]
        .as_str()
        .unwrap()
        .contains("Too many"));
    assert_eq!(
        ids("changeType=Created&fromDate=2023-05-04T11:06:00"),
        json!([b])
    );
}

#[test]
fn receipts() {
    let (fake, c) = start();
    let id = fake.add_contact(json!({"email": "kund@example.com", "memberNumber": "77"}));
    let r = c.post(
        "/api/v3/receipts",
        &receipt("R1", &id.to_uppercase(), "contactId"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let dup = c.post("/api/v3/receipts", &receipt("R1", &id, "contactId"));
    assert_eq!(dup.status, 204);
    assert_eq!(fake.receipt_post_count("R1"), 2);
    // Posted again after its answer had gone out whole: a repost, which a client that posts
    // each receipt once never makes.
    assert_eq!(fake.receipt_reposts().get("R1"), Some(&1));
    assert_eq!(fake.receipts().len(), 1);
    assert_eq!(fake.receipts()[0].contact_id, id);
    assert_eq!(fake.receipts()[0].body["currency"], "SEK");

    assert_eq!(
        c.post(
            "/api/v2/receipts",
            &receipt("R2", "KUND@example.com", "EMAIL")
        )
        .status,
        201
    );
    assert_eq!(
        c.post("/api/v3/receipts", &receipt("R3", "77", "memberNumber"))
            .status,
        201
    );
    let nf = c.post(
        "/api/v3/receipts",
        &receipt("R4", "ghost@example.com", "email"),
    );
    assert_eq!(nf.status, 404);
    assert_eq!(nf.json()["errorCode"], "ContactNotFound");
    assert_eq!(fake.receipt_post_count("R4"), 1);
    assert_eq!(
        c.post("/api/v3/receipts", &receipt("R5", "x", "CardId"))
            .status,
        400
    );

    let mut bad = receipt("R6", &id, "contactId");
    bad["items"][0].as_object_mut().unwrap().remove("sku");
    let a = c.post("/api/v3/receipts", &bad);
    assert_eq!(a.status, 400);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("items[0].sku"),
        "{}",
        a.body
    );
    for field in [
        "uniqueReceiptId",
        "storeExternalId",
        "currency",
        "totalGrossPrice",
        "paymentMethods",
        "items",
        "createdDate",
    ] {
        let mut bad = receipt("R7", &id, "contactId");
        bad.as_object_mut().unwrap().remove(field);
        let a = c.post("/api/v3/receipts", &bad);
        assert_eq!(a.status, 400, "{field}");
        assert!(a.body.contains(field), "{field}: {}", a.body);
    }
    let mut bad = receipt("R8", &id, "contactId");
    bad["createdDate"] = json!("2018-09-06T15:55:54");
    assert!(c
        .post("/api/v3/receipts", &bad)
        .body
        .contains("createdDate"));
    let mut bad = receipt("R9", &id, "contactId");
    bad["contact"]
        .as_object_mut()
        .unwrap()
        .remove("matchKeyType");
    assert!(c
        .post("/api/v3/receipts", &bad)
        .body
        .contains("contact.matchKeyType"));
    assert_eq!(fake.receipts().len(), 3);

    let (fake2, c2) = start_with(FakeConfig {
        duplicate_receipt_status: 200,
        ..FakeConfig::default()
    });
    let id2 = fake2.add_contact(json!({"email": "k@example.com"}));
    c2.post("/api/v3/receipts", &receipt("D", &id2, "contactId"));
    assert_eq!(
        c2.post("/api/v3/receipts", &receipt("D", &id2, "contactId"))
            .status,
        200
    );
}

#[test]
fn chunked_body_and_expect_continue() {
    let (fake, _) = start();
    let body = r#"{"email":"chunk@example.com"}"#;
    let (a, b) = body.split_at(10);
    let req = format!(
        "POST /api/v3/contacts HTTP/1.1\r\nHost: x\r\napikey: fake-engage-test-key\r\nUser-Agent: t\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n\
         {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let out = String::from_utf8(raw(fake.port(), req.as_bytes())).unwrap();
    assert!(out.contains("HTTP/1.1 201 Created"), "{out}");
    assert_eq!(fake.find_contacts("email", "chunk@example.com").len(), 1);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let (fake, c) = start();
    for _ in 0..20 {
        assert_eq!(c.get("/api/v2/contacts/count").status, 200);
    }
    assert_eq!(fake.requests().len(), 20);
}

#[test]
fn seeding_is_fast_and_searchable() {
    let (fake, c) = start();
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let started = std::time::Instant::now();
    fake.seed_contacts(100_000, t0);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(fake.contact_count(), 100_000);
    assert_eq!(c.get("/api/v2/contacts/count").body, "100000");
    let (id, attrs) = fake.contacts().into_iter().nth(4242).unwrap();
    let first = attrs["firstName"].as_str().unwrap();
    assert!(!first.is_empty());
    assert!(attrs["mobilePhone"].as_str().unwrap().starts_with("+467"));
    assert_eq!(attrs["contactType"], "Member");
    let email = attrs["email"].as_str().unwrap().to_uppercase();
    assert_eq!(
        c.get(&format!("/api/v3/contacts/id?email={email}")).json(),
        json!(id)
    );
    let member = attrs["memberNumber"].as_str().unwrap();
    assert_eq!(
        c.get(&format!("/api/v3/contacts/id?customKey={member}"))
            .json(),
        json!(id)
    );
    let mut without_prefs = attrs.clone();
    let accepts = without_prefs
        .as_object_mut()
        .unwrap()
        .remove("acceptsEmail");
    let got = c.get(&format!("/api/v3/contacts/{id}")).json();
    assert_eq!(got["attributes"], without_prefs);
    assert_eq!(Some(got["preferences"]["acceptsEmail"].clone()), accepts);
    // Spread 1 ms apart: the first second holds exactly 1000 creations.
    fake.set_changes_cap(1000);
    let first_second = c
        .get("/api/v3/contacts/changes?changeType=Created&fromDate=2024-01-01T00:00:00&toDate=2024-01-01T00:00:01")
        .json();
    assert_eq!(first_second.as_array().unwrap().len(), 1000);
    // Updating a seeded contact materialises it and keeps it findable.
    assert!(fake.update_contact(&id, json!({"city": "Visby"})));
    assert_eq!(
        c.get(&format!("/api/v3/contacts/id?email={email}")).json(),
        json!(id)
    );
    assert!(fake
        .contacts()
        .iter()
        .take(50)
        .any(|(_, a)| !a["lastName"].as_str().unwrap_or("").is_ascii()));
}
