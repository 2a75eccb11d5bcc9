//! Arbitrary bytes as a contact-export document: the streaming parser must end in a member
//! list or an error with a message and an offset inside the input, never panic, hang or grow
//! without bound. Body in `../harness.rs` (shared with the stable regression test).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::export_parser(data);
});
