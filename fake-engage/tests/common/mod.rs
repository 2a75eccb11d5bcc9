//! Helpers shared by the HTTP tests: a ureq client that returns (status, body)
//! for every answer, and a raw-socket client for what ureq hides.
#![allow(dead_code)]

use fake_engage::{FakeConfig, FakeEngage};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
    pub key: String,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

impl Client {
    pub fn new(fake: &FakeEngage) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build(),
            base: fake.base_url(),
            key: fake.api_key(),
        }
    }

    /// Sends with the three mandatory headers; Err only on transport errors.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let req = self
            .agent
            .request(method, &format!("{}{}", self.base, path))
            .set("apikey", &self.key)
            .set("Content-Type", "application/json")
            .set("User-Agent", "fake-engage-tests/1.0");
        let res = match body {
            Some(b) => req.send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(t.to_string()),
        };
        let status = resp.status();
        let retry_after = resp.header("Retry-After").map(str::to_string);
        let body = resp.into_string().map_err(|e| e.to_string())?;
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.try_send(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: transport error {e}"))
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.send("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send("PATCH", path, Some(body))
    }
}

pub fn start() -> (FakeEngage, Client) {
    start_with(FakeConfig::default())
}

pub fn start_with(cfg: FakeConfig) -> (FakeEngage, Client) {
    let fake = FakeEngage::start(FakeConfig {
        id_seed: Some(42),
        ..cfg
    });
    let client = Client::new(&fake);
    (fake, client)
}

/// Writes `request` verbatim and reads until the server closes.
pub fn raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// A raw request with the given extra header lines, `Connection: close`.
pub fn raw_get(fake: &FakeEngage, path: &str, headers: &[&str]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    String::from_utf8_lossy(&raw(fake.port(), req.as_bytes())).into_owned()
}

pub fn receipt(unique: &str, key: &str, key_type: &str) -> Value {
    serde_json::json!({
        "contact": {"matchKey": key, "matchKeyType": key_type},
        "uniqueReceiptId": unique,
        "receiptNumber": "468464468",
        "createdDate": "2018-09-06T15:55:54+01:00",
        "storeExternalId": "321",
        "currency": "SEK",
        "totalGrossPrice": 200.00,
        "paymentMethods": [{"type": "Card", "description": "Debit Card", "value": 200.00}],
        "items": [{"type": "PURCHASE", "quantity": 2, "grossPaidPrice": 200.00, "taxAmount": 40.00,
                   "taxPercent": 25.00, "sku": "10015563434", "articleNumber": "2324234",
                   "articleName": "Tröja"}]
    })
}
