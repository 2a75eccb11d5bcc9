//! engage-sync: a local SQLite replica of Voyado Engage contacts and offline outboxes, so that
//! checkout never depends on Engage being reachable. The binary (`src/main.rs`) only parses
//! the command line and calls [`commands::run`]; tests and benchmarks use the same code.

pub mod api_sync;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db_owner;
pub mod engage;
pub mod error;
pub mod export_xml;
pub mod failpoint;
pub mod fsutil;
pub mod full_build;
pub mod import;
pub mod lock;
pub mod logging;
pub mod mask;
pub mod normalize;
pub mod outbox;
pub mod printable;
pub mod progress;
pub mod publish;
pub mod purge;
pub mod replica;
pub mod run_log;
pub mod secret;
pub mod sftp;
pub mod sqlite_file;
pub mod status;
pub mod till_store;
pub mod time;
pub mod writeback;
