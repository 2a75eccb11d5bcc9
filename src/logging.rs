//! Log setup: tracing to stderr, text or JSON, level from -v/-q (`ENGAGE_SYNC_LOG`, a tracing
//! filter such as `engage_sync=debug`, overrides them).
//! Nothing logged may hold personal data unmasked (see `mask`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::printable::LogLineWriter;

/// Installs the global subscriber. `verbosity` is -v count minus -q count; `filter` is
/// `--log-filter` / `ENGAGE_SYNC_LOG` (clap reads the variable), which replaces the level when
/// it is a valid tracing filter.
pub fn init(format: LogFormat, verbosity: i8, filter: Option<&std::ffi::OsStr>) {
    let level = match verbosity {
        i8::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = filter
        .and_then(|f| f.to_str())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("engage_sync={level},warn")));
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_target(false);
    // Text lines have their control characters escaped (a file name could forge a log line);
    // JSON escapes them itself.
    let _ = match format {
        LogFormat::Text => builder
            .with_writer(move || LogLineWriter { ansi })
            .try_init(),
        LogFormat::Json => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .try_init(),
    };
}
