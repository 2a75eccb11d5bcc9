//! The run log: one row per writing run, in the replica's `run` table and in the till store's
//! own (`push-local`), opened at the start and closed at the end; `status` reads both. Below
//! `replica` and `till_store`, which both keep one: it needs nothing but the connection.

use rusqlite::{params, Connection};

/// Start of a writing run.
const INSERT_RUN: &str =
    "INSERT INTO run (command, started_at, outcome) VALUES (?1, ?2, 'running')";
/// End of a writing run.
const FINISH_RUN: &str = "UPDATE run SET finished_at = ?2, outcome = ?3, exit_code = ?4, \
     summary = ?5, error = ?6 WHERE id = ?1";

/// How a run ended, as its row in the run log records it. Built by the command from its result
/// (`commands::exit::run_outcome`): only the top of the crate maps an error to an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The process exit code: 0 for success.
    pub exit_code: u8,
    /// The whole error chain of a failure (errors mask personal data).
    pub error: Option<String>,
}

impl RunOutcome {
    /// A run that succeeded.
    pub fn ok() -> RunOutcome {
        RunOutcome {
            exit_code: 0,
            error: None,
        }
    }

    /// A run that failed with `exit_code`; `error` is its whole chain (`{e:#}`).
    pub fn failed(exit_code: u8, error: String) -> RunOutcome {
        RunOutcome {
            exit_code,
            error: Some(error),
        }
    }
}

/// A writing run's row in the run log, opened at the start and closed at the end; a run that
/// crashes stays `running`, which `status` reports.
#[derive(Debug)]
pub struct RunLog {
    id: i64,
}

impl RunLog {
    /// Opens the run's row.
    pub fn start(conn: &Connection, command: &str, now: &str) -> rusqlite::Result<RunLog> {
        conn.execute(INSERT_RUN, params![command, now])?;
        Ok(RunLog {
            id: conn.last_insert_rowid(),
        })
    }

    /// Closes the run's row with how the run ended (the caller maps a failure to its exit
    /// code) and `counts` (counts only, never personal data) as JSON.
    pub fn close(
        self,
        conn: &Connection,
        outcome: &RunOutcome,
        counts: &impl serde::Serialize,
    ) -> anyhow::Result<()> {
        let counts = serde_json::to_string(counts)?;
        let now = crate::time::now_rfc3339();
        self.finish(
            conn,
            &now,
            outcome.exit_code,
            Some(&counts),
            outcome.error.as_deref(),
        )?;
        Ok(())
    }

    /// Closes the run's row. `summary` is JSON with counts only; `error` never holds personal
    /// data (errors mask it).
    pub fn finish(
        self,
        conn: &Connection,
        now: &str,
        exit_code: u8,
        summary: Option<&str>,
        error: Option<&str>,
    ) -> rusqlite::Result<()> {
        let outcome = if exit_code == 0 { "ok" } else { "failed" };
        conn.execute(
            FINISH_RUN,
            params![self.id, now, outcome, exit_code, summary, error],
        )?;
        Ok(())
    }
}
