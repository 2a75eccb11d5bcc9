//! The till store's numbered migrations (SQL files in `migrations/`), tracked with
//! `PRAGMA user_version`, and the one-time move of an older replica's outboxes into it.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

use super::APPLICATION_ID;

/// The migrations, in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_till_store.sql")];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Copies an older replica's outboxes, local key sequence and links and the contacts
/// registered at the till into the till store (replica schema 4, step 1 of 2; step 2, in the
/// replica's own migration, removes them there).
const TAKE_OVER: &str = include_str!("migrations/take_over_from_replica.sql");

/// What a till store that is newer or older than this binary says.
#[derive(Debug, thiserror::Error)]
#[error(
    "the till store {path} has schema version {found}, {relation} this engage-sync knows \
     ({supported}); {advice}"
)]
pub struct SchemaError {
    path: String,
    found: i64,
    relation: &'static str,
    supported: i64,
    advice: &'static str,
}

impl crate::error::Coded for SchemaError {
    fn exit_code(&self) -> crate::error::ExitCode {
        crate::error::ExitCode::Config
    }
}

/// Brings the till store at `path` (the connection's `main`) up to date, each migration in
/// its own transaction, and marks it as engage-sync's (`application_id`).
pub fn migrate(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let found = user_version(conn, "main")?;
    check_not_newer(found, path)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql).with_context(|| {
            format!(
                "migration {version} of the till store {} failed",
                path.display()
            )
        })?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::debug!(version, till_store = %path.display(), "till store schema migrated");
    }
    crate::sqlite_file::mark(conn, APPLICATION_ID)?;
    Ok(())
}

/// For readers: the attached till store `schema` must be current.
pub fn check_current(conn: &Connection, schema: &str, path: &Path) -> anyhow::Result<()> {
    let found = user_version(conn, schema)?;
    check_not_newer(found, path)?;
    if found < CURRENT_VERSION {
        return Err(SchemaError {
            path: path.display().to_string(),
            found,
            relation: "older than",
            supported: CURRENT_VERSION,
            advice: "run `engage-sync init` to migrate it",
        }
        .into());
    }
    Ok(())
}

fn check_not_newer(found: i64, path: &Path) -> anyhow::Result<()> {
    if found > CURRENT_VERSION {
        return Err(SchemaError {
            path: path.display().to_string(),
            found,
            relation: "newer than",
            supported: CURRENT_VERSION,
            advice: "upgrade engage-sync",
        }
        .into());
    }
    Ok(())
}

fn user_version(conn: &Connection, schema: &str) -> anyhow::Result<i64> {
    Ok(conn.query_row(&format!("PRAGMA {schema}.user_version"), [], |r| r.get(0))?)
}

/// Step 1 of moving an older replica's till data (schema 3) into the till store of the
/// replica at `db`, on the replica's writing connection: one transaction that writes only the
/// till store. Idempotent: a process killed after it and before step 2 (the replica's
/// migration to schema 4, which deletes the originals) runs it again with the same result,
/// since nothing else writes the till store before the replica is migrated
/// ([`super::TillStore::open`] migrates first).
pub fn take_over_from_replica(conn: &Connection, db: &Path) -> anyhow::Result<()> {
    let path = super::path_for(db);
    conn.execute(
        "ATTACH DATABASE ?1 AS till",
        [path.to_string_lossy().as_ref()],
    )
    .with_context(|| format!("cannot open the till store {}", path.display()))?;
    let copied = (|| -> anyhow::Result<()> {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(TAKE_OVER)?;
        tx.commit()?;
        Ok(())
    })();
    conn.execute_batch("DETACH DATABASE till")?;
    copied.with_context(|| {
        format!(
            "cannot move the outboxes of the replica {} into its till store {}; nothing was \
             lost, run the command again",
            db.display(),
            path.display()
        )
    })?;
    crate::failpoint::hit("migrate.copied");
    Ok(())
}
