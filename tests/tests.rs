//! The integration tests, one crate (as ripgrep's `tests/tests.rs`): each file of `tests/` is
//! a module here, so the suite links one test binary instead of one per file. Shared helpers
//! are `common` (a workspace, the fake Engage, receipts) and `sshd` (a real OpenSSH server).
//! Run one file's tests with `cargo test --test integration FILE::`.

mod common;
mod sshd;

mod ambiguous_input;
mod api_progress;
mod api_sync;
mod bench_api_rate;
mod bulk_load;
mod cli;
mod completions;
mod concurrency;
mod config_search;
mod crash_matrix;
mod delta;
mod engage_client;
mod fault_storm;
mod files_and_databases;
mod floor_plan;
mod fuzz_regressions;
mod healthcheck;
mod hostile_input;
mod hub_stores;
mod json_output;
mod keys;
mod keys_mode;
mod lookup;
mod malformed;
mod man_pages;
mod no_stray_replica;
mod outbox;
mod output_privacy;
mod publish;
mod purge;
mod purge_scope;
mod push;
mod push_bench;
mod push_report;
mod quiet_output;
mod readers_under_write;
mod sample_receipt;
mod service_units;
mod sftp;
mod status;
mod till_never_waits;
