//! Timestamps as the replica stores them: UTC, RFC 3339, millisecond precision.

use chrono::{SecondsFormat, Utc};

/// Now, e.g. `2026-11-25T21:30:00.123Z`.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}
