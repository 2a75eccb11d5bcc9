//! Benchmark (not part of the normal suite): `full` from the API over 10,000 contacts while the
//! fake Engage answers every contact GET after 100 ms. The client must sustain ≥ 95 % of the
//! configured rate limit and never exceed it in any one-second window (the fake records the
//! time of every request). Run it with:
//!
//! ```sh
//! cargo test --release --test integration -- --ignored --nocapture bench_api_rate::
//! ```
//!
//! `BENCH_CONTACTS` and `BENCH_RATE` change the size (default 10000) and the limit (default 50).

use crate::common;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::*;
use fake_engage::{FakeConfig, FakeEngage, Matcher};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "benchmark: minutes long; run explicitly (see the module docs)"]
fn full_from_the_api_sustains_the_rate_limit() {
    let contacts = env_or("BENCH_CONTACTS", 10_000);
    let rate = env_or("BENCH_RATE", 50);
    let fake = FakeEngage::start(FakeConfig::default());
    let start = Utc::now() - TimeDelta::minutes(contacts as i64 + 60);
    fake.seed_contacts_spaced(contacts, start, Duration::from_secs(60));
    fake.set_latency(
        Matcher::prefix("/api/v3/contacts/"),
        Duration::from_millis(100),
    );
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        format!(
            "[engage]\nbase_url = \"{}\"\nrate_limit = {rate}\nmax_concurrency = 8\n",
            fake.base_url()
        ),
    )
    .expect("config");
    let began = Instant::now();
    let out = ws
        .cmd()
        .env("ENGAGE_API_KEY", fake.api_key())
        .args(["-q", "full", "--json"])
        .output()
        .expect("runs");
    let wall = began.elapsed();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(ws.contacts().len(), contacts);

    let gets: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && !r.path.contains("/contacts/changes"))
        .collect();
    assert_eq!(
        gets.len(),
        contacts,
        "one GET per contact, no retries needed"
    );
    let first = gets.iter().map(|r| r.at).min().expect("requests");
    let last = gets.iter().map(|r| r.at).max().expect("requests");
    let span = last.duration_since(first).as_secs_f64();
    let achieved = (gets.len() - 1) as f64 / span;
    let peak = fake.max_requests_in_any_window(Duration::from_secs(1));
    let mut at: Vec<Instant> = fake.requests().iter().map(|r| r.at).collect();
    at.sort_unstable();
    let tightest = at
        .windows(rate + 1)
        .map(|w| w[rate].duration_since(w[0]).as_secs_f64() * 1000.0)
        .fold(f64::INFINITY, f64::min);
    println!(
        "full via API: {contacts} contacts, limit {rate}/s, 100 ms per GET: achieved {achieved:.2} \
         GET/s ({:.1} % of the limit) over {span:.1} s; busiest one-second window {peak} requests \
         (the tightest {} consecutive requests span {tightest:.1} ms); whole run {:.1} s",
        achieved * 100.0 / rate as f64,
        rate + 1,
        wall.as_secs_f64()
    );
    assert!(achieved >= 0.95 * rate as f64, "below 95 % of the limit");
    assert!(
        peak <= rate,
        "the limit was exceeded in some one-second window"
    );
}
