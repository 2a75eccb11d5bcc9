//! Write transactions that stay open across calls, by name.
//!
//! Writers use `rusqlite::Transaction` (RAII: rolled back when dropped) wherever the
//! transaction lives inside one function. The importers (`import::Importer`,
//! `import::BulkLoader`) keep one transaction open over several calls, one per export file,
//! each given the replica anew: a `Transaction` borrows the connection for its whole life, so
//! it cannot be kept between those calls. They open and end it with these methods instead
//! (the only place the statements are written), with the same SQLite semantics: `BEGIN
//! IMMEDIATE` takes the write lock at the start, so a busy replica waits the busy timeout
//! instead of failing on the upgrade; a savepoint makes one file all-or-nothing inside it.
//! A transaction left open is rolled back when the connection closes.

use super::Replica;

impl Replica {
    /// Opens a write transaction, taking the write lock now (`BEGIN IMMEDIATE`).
    pub fn begin_immediate(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")
    }

    /// Commits the open transaction.
    pub fn commit_open(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("COMMIT")
    }

    /// Rolls the open transaction back.
    pub fn rollback_open(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("ROLLBACK")
    }

    /// Whether a transaction is open (SQLite may have rolled one back by itself, on a full
    /// disk or an I/O error).
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Marks a point inside the open transaction that [`rollback_to`](Self::rollback_to) can
    /// return to.
    pub fn savepoint(&mut self, name: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(&format!("SAVEPOINT {name}"))
    }

    /// Keeps what was written since the savepoint (it becomes part of the transaction).
    pub fn release(&mut self, name: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(&format!("RELEASE {name}"))
    }

    /// Undoes what was written since the savepoint and ends it; the transaction stays open.
    pub fn rollback_to(&mut self, name: &str) -> rusqlite::Result<()> {
        self.conn
            .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
    }
}
