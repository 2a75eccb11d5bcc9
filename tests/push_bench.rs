//! Benchmark (not part of the normal suite): `push-local` of 100,000 local contacts and
//! 100,000 receipts against the fake Engage answering every request after 50 ms. Reports the
//! requests made against the minimum possible, the wall time, and whether the rate limit held
//! (the busiest one-second window at the fake against the configured limit, and 429s from the
//! fake, which like Engage refuses above 200 requests/s), and checks exactly-once delivery. Run it with `bash bench/push.sh`, or:
//!
//! ```sh
//! cargo test --release --test integration -- --ignored --nocapture push_bench::
//! ```
//!
//! `BENCH_CONTACTS`, `BENCH_RECEIPTS`, `BENCH_LATENCY_MS`, `BENCH_RATE` (requests/s, default
//! 50), `BENCH_LOOKUP` (1: look each contact up before creating it, the default in
//! production; 0: rely on bulk's "already exists", the minimum requests) and `BENCH_ROWS` (0:
//! the fake's batch status lists no per-contact rows, so each created contact must be found by
//! key; default 1) change the run. `BENCH_LOST=N` drops the first N bulk creates before Engage
//! applies them (the push cannot know): the first push leaves their contacts in flight (exit
//! 75) and a second push checks them by key and sends them again; both are measured.

use crate::common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use fake_engage::{FakeConfig, FakeEngage, Fault, FaultKind, Matcher};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn receipt_line(i: usize, contacts: usize) -> String {
    format!(
        "{{\"contact\":{{\"matchKeyType\":\"localKey\",\"matchKey\":\"L0600-{:06}\"}},\
         \"uniqueReceiptId\":\"B-{i}\",\"receiptNumber\":\"{i}\",\
         \"createdDate\":\"2026-11-25T15:55:54+01:00\",\"currency\":\"SEK\",\
         \"totalGrossPrice\":199.5,\"paymentMethods\":[{{\"type\":\"Card\",\"value\":199.5}}],\
         \"items\":[{{\"type\":\"PURCHASE\",\"quantity\":1,\"grossPaidPrice\":199.5,\
         \"taxAmount\":39.9,\"taxPercent\":25,\"sku\":\"S{i}\",\"articleNumber\":\"A1\",\
         \"articleName\":\"Socks\"}}]}}\n",
        i % contacts + 1
    )
}

fn write_inputs(ws: &Workspace, contacts: usize, receipts: usize) {
    let mut c = std::io::BufWriter::new(
        std::fs::File::create(ws.path().join("contacts.jsonl")).expect("create"),
    );
    for i in 0..contacts {
        writeln!(
            c,
            "{{\"email\":\"bench{i}@example.com\",\"mobilePhone\":\"+4673{i:07}\",\
             \"firstName\":\"Bench\",\"lastName\":\"Person {i}\"}}"
        )
        .expect("write");
    }
    c.flush().expect("flush");
    let mut r = std::io::BufWriter::new(
        std::fs::File::create(ws.path().join("receipts.jsonl")).expect("create"),
    );
    for i in 0..receipts {
        r.write_all(receipt_line(i, contacts).as_bytes())
            .expect("write");
    }
    r.flush().expect("flush");
}

fn timed(ws: &Workspace, fake: &FakeEngage, args: &[&str]) -> (std::process::Output, f64) {
    let began = Instant::now();
    let out = ws
        .cmd()
        .env("ENGAGE_API_KEY", fake.api_key())
        .args(args)
        .output()
        .expect("runs");
    (out, began.elapsed().as_secs_f64())
}

#[test]
#[ignore = "benchmark: about 35 minutes at the defaults; run explicitly (see the module docs)"]
fn push_of_a_big_backlog_stays_within_the_rate_limit_and_near_the_minimum_requests() {
    let contacts = env_or("BENCH_CONTACTS", 100_000).max(1);
    let receipts = env_or("BENCH_RECEIPTS", 100_000);
    let latency = env_or("BENCH_LATENCY_MS", 50) as u64;
    let rate = env_or("BENCH_RATE", 50);
    let lookup = env_or("BENCH_LOOKUP", 0) == 1;
    let rows = env_or("BENCH_ROWS", 1) == 1;
    let lost = env_or("BENCH_LOST", 0);
    // The fake refuses like Engage does: 429 above 200 requests in any second. Whether the
    // client kept to its own (lower) limit is read from the fake's request times.
    let fake = FakeEngage::start(FakeConfig {
        rate_limit_per_sec: Some(200),
        bulk_status_results: rows,
        ..FakeConfig::default()
    });
    fake.set_latency(Matcher::Any, Duration::from_millis(latency));
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        format!(
            "[engage]\nbase_url = \"{}\"\nrate_limit = {rate}\nmax_concurrency = 8\n\
             [local]\nstore_external_id = \"0600\"\nlookup_before_create = {lookup}\n\
             recheck_after = \"0s\"\n",
            fake.base_url()
        ),
    )
    .expect("config");
    // Till commands never create a replica: `init` first, as an operator does.
    ws.init();
    write_inputs(&ws, contacts, receipts);

    let (out, add_contacts_s) = timed(
        &ws,
        &fake,
        &["-q", "contact", "add", "--from", "contacts.jsonl"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut add_receipts_s = 0.0;
    if receipts > 0 {
        let (out, s) = timed(&ws, &fake, &["-q", "receipt", "add", "receipts.jsonl"]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        add_receipts_s = s;
    }
    let mut lost_report = String::new();
    let mut created_before = 0;
    if lost > 0 {
        fake.inject(
            Fault::on(
                "POST",
                "/api/v3/contacts/bulk",
                FaultKind::DropBeforeResponse,
            )
            .times(lost),
        );
        let (out, s) = timed(&ws, &fake, &["-q", "--json", "push-local"]);
        assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
        let first: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        created_before = first["contacts_created"].as_u64().unwrap_or_default() as usize;
        lost_report = format!(
            "first push (answers of {lost} bulk creates lost): {} requests in {s:.1} s, exit 75, \
             {} contacts sent without an answer; the second push is measured below\n",
            fake.requests().len(),
            first["sent_without_answer"]
        );
        fake.clear_requests();
    }
    let (out, push_s) = timed(&ws, &fake, &["-q", "--json", "push-local"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");

    let requests = fake.requests();
    let count = |method: &str, part: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .count()
    };
    let (bulk, polls) = (
        count("POST", "/contacts/bulk"),
        count("GET", "/bulk/status"),
    );
    let (lookups, posts) = (count("GET", "/contacts/id"), count("POST", "/receipts"));
    let too_many = requests.iter().filter(|r| r.status == Some(429)).count();
    let batches = contacts.div_ceil(4000);
    let minimum = 2 * batches + receipts;
    let peak = fake.max_requests_in_any_window(Duration::from_secs(1));
    let arrivals: Vec<Instant> = requests.iter().map(|r| r.at).collect();
    let (over, seconds) = windows_over(&arrivals, rate);
    let gaps = gap_percentiles(&arrivals);
    let tightest = tightest_span(&arrivals, rate + 1);
    let post_times: Vec<Instant> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/receipts"))
        .map(|r| r.at)
        .collect();
    let post_rate = match (post_times.iter().min(), post_times.iter().max()) {
        (Some(a), Some(b)) if post_times.len() > 1 => {
            (post_times.len() - 1) as f64 / b.duration_since(*a).as_secs_f64()
        }
        _ => 0.0,
    };
    let span = match (
        requests.iter().map(|r| r.at).min(),
        requests.iter().map(|r| r.at).max(),
    ) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let report = format!(
        "push-local: {contacts} local contacts, {receipts} receipts, {latency} ms per request, \
         limit {rate}/s, lookup_before_create = {lookup}, per-contact status rows = {rows}\n\
         {lost_report}\
         requests: {} in all = {bulk} bulk creates + {polls} status polls + {lookups} lookups + \
         {posts} receipt posts ({:.3} requests per contact besides receipt posts); minimum possible {minimum} ({batches} bulk + {batches} polls + \
         {receipts} posts): {:.3}x\n\
         wall time: push {push_s:.1} s ({:.1} requests/s over {span:.1} s at the fake); \
         contact add {add_contacts_s:.1} s; receipt add {add_receipts_s:.1} s\n\
         rate limit: busiest one-second window {peak} requests (limit {rate}); {over} of \
         {seconds} whole seconds above the limit; the tightest {} consecutive arrivals span \
         {tightest:.1} ms (more than 1000 ms: never {} in a second); gaps between arrivals \
         p1/p50/p99 {gaps}; 429 answers {too_many}\n\
         receipt posts: {post_rate:.2}/s from the first to the last ({:.1} % of the limit)\n\
         summary: {summary}\n",
        requests.len(),
        (requests.len() - posts) as f64 / contacts as f64,
        requests.len() as f64 / minimum as f64,
        requests.len() as f64 / span.max(0.001),
        rate + 1,
        rate + 1,
        post_rate * 100.0 / rate as f64,
    );
    println!("{report}");
    let _ = std::fs::create_dir_all("bench/out");
    let _ = std::fs::write("bench/out/push.txt", &report);

    assert_eq!(fake.contact_count(), contacts, "every contact created");
    assert!(
        fake.creates_per_key().values().all(|&n| n == 1),
        "none twice"
    );
    assert_eq!(
        summary["contacts_created"].as_u64().unwrap_or_default() as usize + created_before,
        contacts,
        "every contact reported as created (none was in Engage before)"
    );
    assert_eq!(fake.receipts().len(), receipts, "every receipt stored");
    assert_eq!(posts, receipts, "each receipt posted once");
    assert_eq!(too_many, 0, "Engage's 429 limit was never reached");
    assert!(
        peak <= rate,
        "{peak} requests reached the fake within one second"
    );
    let average = requests.len() as f64 / span.max(0.001);
    assert!(
        average <= rate as f64,
        "average {average:.1}/s above the limit {rate}"
    );
}

/// Consecutive one-second buckets from the first arrival, and how many hold more than `rate`.
fn windows_over(arrivals: &[Instant], rate: usize) -> (usize, usize) {
    let Some(first) = arrivals.iter().min() else {
        return (0, 0);
    };
    let mut buckets: Vec<usize> = Vec::new();
    for a in arrivals {
        let i = a.duration_since(*first).as_secs() as usize;
        if buckets.len() <= i {
            buckets.resize(i + 1, 0);
        }
        buckets[i] += 1;
    }
    (buckets.iter().filter(|&&n| n > rate).count(), buckets.len())
}

/// The shortest time (ms) spanned by `n` consecutive arrivals: above 1000 ms for `n` = limit
/// + 1 means no sliding second held more than the limit, and the excess is the margin left.
fn tightest_span(arrivals: &[Instant], n: usize) -> f64 {
    let mut at = arrivals.to_vec();
    at.sort_unstable();
    at.windows(n.max(2))
        .map(|w| w[w.len() - 1].duration_since(w[0]).as_secs_f64() * 1000.0)
        .fold(f64::INFINITY, f64::min)
}

/// The 1st, 50th and 99th percentile of the time between consecutive arrivals, in ms.
fn gap_percentiles(arrivals: &[Instant]) -> String {
    let mut at = arrivals.to_vec();
    at.sort_unstable();
    let mut gaps: Vec<f64> = at
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1000.0)
        .collect();
    if gaps.is_empty() {
        return "-".into();
    }
    gaps.sort_by(f64::total_cmp);
    let p = |q: f64| gaps[((gaps.len() - 1) as f64 * q) as usize];
    format!("{:.1}/{:.1}/{:.1} ms", p(0.01), p(0.5), p(0.99))
}
