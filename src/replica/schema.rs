//! Numbered migrations (SQL files in `migrations/`), tracked with `PRAGMA user_version`.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

use super::ReplicaError;
use crate::config::Mode;

/// The migrations, in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_sync_state.sql"),
    include_str!("migrations/0003_outbox.sql"),
    include_str!("migrations/0004_till_store.sql"),
    include_str!("migrations/0005_used_folder.sql"),
    include_str!("migrations/0006_key_rules.sql"),
    include_str!("migrations/0007_change_seq.sql"),
];

/// The migration that moves the till's data into the till store (see [`migrate`]).
pub const TILL_STORE_VERSION: i64 = 4;

/// The oldest schema a reader (lookups, status, the till commands) accepts as it is: later
/// migrations add only what writers use (5: the folders purge covers; 6: re-keying rows, done
/// by the next sync job; 7: change numbers and publications, for `publish`), so a POS keeps
/// reading between an upgrade of the binary and the first writer that migrates the replica,
/// and a till never waits for that writer.
pub const READABLE_FROM: i64 = TILL_STORE_VERSION;

/// SQLite `application_id` of a replica ("ESyR"), so that a replica can be told from another
/// application's database.
pub const APPLICATION_ID: i32 = crate::db_owner::REPLICA.application_id;

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to date (each migration in its own transaction) and returns the
/// replica's mode, recording `new_mode` if the replica is new. `till_of` is the replica path
/// whose till store receives the till's data at schema 4 (the live replica); `None` for a
/// `full` build, whose copies of the till's data came from the live replica and are dropped.
pub fn migrate(
    conn: &Connection,
    path: &Path,
    new_mode: Mode,
    till_of: Option<&Path>,
) -> anyhow::Result<Mode> {
    let found = user_version(conn)?;
    if found > CURRENT_VERSION {
        return Err(ReplicaError::NewerSchema {
            db: path.to_path_buf(),
            found,
            supported: CURRENT_VERSION,
        }
        .into());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        if let (TILL_STORE_VERSION, Some(db)) = (version, till_of) {
            crate::till_store::take_over_from_replica(conn, db)?;
        }
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration {version} of {} failed", path.display()))?;
        if version == 1 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('mode', ?1)",
                [new_mode.as_str()],
            )?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::debug!(version, db = %path.display(), "replica schema migrated");
    }
    crate::sqlite_file::mark(conn, APPLICATION_ID)?;
    read_mode(conn, path)
}

/// For readers: the schema of the replica attached as `schema` (`main` for a reader of the
/// replica itself) must be readable (see [`READABLE_FROM`]); returns the mode.
pub fn check_current(conn: &Connection, schema: &str, path: &Path) -> anyhow::Result<Mode> {
    let found = user_version_of(conn, schema)?;
    if found > CURRENT_VERSION {
        return Err(ReplicaError::NewerSchema {
            db: path.to_path_buf(),
            found,
            supported: CURRENT_VERSION,
        }
        .into());
    }
    if found < READABLE_FROM {
        return Err(ReplicaError::OlderSchema {
            db: path.to_path_buf(),
            found,
        }
        .into());
    }
    read_mode_of(conn, schema, path)
}

fn user_version(conn: &Connection) -> anyhow::Result<i64> {
    user_version_of(conn, "main")
}

/// The schema version of the database attached as `schema`.
pub fn user_version_of(conn: &Connection, schema: &str) -> anyhow::Result<i64> {
    Ok(conn.query_row(&format!("PRAGMA {schema}.user_version"), [], |r| r.get(0))?)
}

fn read_mode(conn: &Connection, path: &Path) -> anyhow::Result<Mode> {
    read_mode_of(conn, "main", path)
}

pub fn read_mode_of(conn: &Connection, schema: &str, path: &Path) -> anyhow::Result<Mode> {
    let stored: String = conn
        .query_row(
            &format!("SELECT value FROM {schema}.meta WHERE key = 'mode'"),
            [],
            |r| r.get(0),
        )
        .with_context(|| format!("the replica {} has no mode recorded", path.display()))?;
    Mode::parse(&stored).with_context(|| {
        format!(
            "the replica {} has an unknown mode {stored:?}",
            path.display()
        )
    })
}
