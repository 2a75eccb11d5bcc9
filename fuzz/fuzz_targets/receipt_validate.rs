//! Arbitrary bytes as `receipt add` input (one JSON object, an array, or JSON Lines): reading
//! and validating must end in receipts or an error with a message, never panic. Body in
//! `../harness.rs` (shared with the stable regression test).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::receipt_validate(data);
});
