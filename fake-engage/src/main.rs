//! `fake-engage` binary: runs the fake by hand, e.g. to point a manually run
//! engage-sync at it. Argument parsing is hand-written to keep the crate's
//! dependencies (and build time) small.

use fake_engage::{FakeConfig, FakeEngage, Matcher};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
fake-engage: a stateful fake of Voyado Engage's API, for tests

USAGE: fake-engage [OPTIONS]

OPTIONS:
  --port N                 port on 127.0.0.1 (default 8085; 0 = any free port)
  --api-key KEY            the accepted apikey header (default test-key)
  --seed N                 create N synthetic contacts at start (default 0)
  --latency-ms MS          latency added to every request (default 0)
  --changes-cap N          most ids per changes answer (default 250000)
  --bulk-polls N           status polls a bulk batch stays Processing (default 1)
  --rate-limit N           answer 429 above N requests/s (default: no limit)
  --contact-type-top-level put contactType at the top level of contacts
  --uppercase-ids          print contact ids in upper case
  -h, --help               this help

Runs until interrupted (Ctrl-C).";

fn value<T: std::str::FromStr>(
    args: &mut impl Iterator<Item = String>,
    flag: &str,
) -> Result<T, String> {
    let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{flag}: invalid value '{v}'"))
}

fn run() -> Result<(), String> {
    let mut cfg = FakeConfig {
        port: 8085,
        api_key: "test-key".into(),
        ..FakeConfig::default()
    };
    let mut seed = 0usize;
    let mut latency_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => cfg.port = value(&mut args, &a)?,
            "--api-key" => cfg.api_key = value(&mut args, &a)?,
            "--seed" => seed = value(&mut args, &a)?,
            "--latency-ms" => latency_ms = value(&mut args, &a)?,
            "--changes-cap" => cfg.changes_cap = value(&mut args, &a)?,
            "--bulk-polls" => cfg.bulk_processing_polls = value(&mut args, &a)?,
            "--rate-limit" => cfg.rate_limit_per_sec = Some(value(&mut args, &a)?),
            "--contact-type-top-level" => cfg.contact_type_top_level = true,
            "--uppercase-ids" => cfg.uppercase_ids = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument '{other}'\n\n{USAGE}")),
        }
    }
    let fake = FakeEngage::try_start(cfg).map_err(|e| format!("cannot start: {e}"))?;
    if seed > 0 {
        // Spread over the hour before now, so a changes window from then
        // finds them all.
        let start = chrono::Utc::now() - chrono::Duration::hours(1);
        let step = Duration::from_millis((3_600_000 / seed as u64).max(1));
        fake.seed_contacts_spaced(seed, start, step);
    }
    if latency_ms > 0 {
        fake.set_latency(Matcher::Any, Duration::from_millis(latency_ms));
    }
    println!("{}", fake.base_url());
    eprintln!(
        "fake-engage listening on {} with {} contacts; apikey header: {}",
        fake.base_url(),
        fake.contact_count(),
        fake.api_key()
    );
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-engage: {e}");
            ExitCode::from(64)
        }
    }
}
