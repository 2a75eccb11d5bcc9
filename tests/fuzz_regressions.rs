//! Replays the fuzzers' regression corpus (`fuzz/regressions/<target>/`: inputs that crashed
//! or hung a target once, and inputs that reached new code) through the same harness the
//! cargo-fuzz targets run (`fuzz/harness.rs`), on stable, as part of `cargo test`. Each input
//! must end in a result (Ok, or an Err with a message), never a panic.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `target` through `run`; returns (ok, err) counts. A panic names the file.
fn replay(target: &str, run: fn(&[u8]) -> Result<usize, String>) -> (usize, usize) {
    let files = corpus(target);
    assert!(!files.is_empty(), "no regression inputs for {target}");
    let (mut ok, mut err) = (0, 0);
    for file in &files {
        let data = std::fs::read(file).expect("read");
        let outcome = std::panic::catch_unwind(|| run(&data));
        match outcome {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(message)) => {
                assert!(
                    !message.trim().is_empty(),
                    "{}: empty error",
                    file.display()
                );
                err += 1;
            }
            Err(_) => panic!("{} panicked (see above)", file.display()),
        }
    }
    println!(
        "{target}: {} regression inputs replayed: {ok} Ok, {err} refused with a message",
        files.len()
    );
    (ok, err)
}

#[test]
fn export_parser_regressions_replay_without_panics() {
    let (ok, err) = replay("export_parser", harness::export_parser);
    assert!(
        ok > 0 && err > 0,
        "the corpus has valid and invalid documents"
    );
}

#[test]
fn receipt_regressions_replay_without_panics() {
    let (ok, err) = replay("receipt_validate", harness::receipt_validate);
    assert!(
        ok > 0 && err > 0,
        "the corpus has valid and invalid receipts"
    );
}

#[test]
fn the_harness_accepts_what_the_product_accepts() {
    // The harness is not vacuous: a real export and a real receipt pass it.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/exports");
    for entry in std::fs::read_dir(fixtures).expect("fixtures") {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        assert!(harness::export_parser(&data).expect("a fixture parses") > 0);
    }
    let receipt = br#"{"contact":{"matchKeyType":"mobilePhone","matchKey":"070-123 45 67"},
        "uniqueReceiptId":"R1","createdDate":"2026-11-25T15:55:54+01:00","currency":"SEK",
        "totalGrossPrice":200.0,"paymentMethods":[{"type":"Card","value":200.0}],
        "items":[{"type":"PURCHASE","quantity":2,"grossPaidPrice":200.0,"taxAmount":40.0,
        "taxPercent":25.0,"sku":"1","articleNumber":"2","articleName":"Socks"}]}"#;
    assert_eq!(harness::receipt_validate(receipt), Ok(1));
    assert!(harness::receipt_validate(b"{}").is_err());
}
