-- engage-sync replica schema, version 2: state of the API sync.

-- Where `changes` continues: the end of the last window applied (UTC, RFC 3339). Written in
-- the same transaction as the data of that window.
CREATE TABLE sync_cursor (
    name       TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- A `full` build from the API: contact ids enumerated and not yet fetched. Lives only in the
-- build file; a resumed build fetches what is left.
CREATE TABLE full_pending (
    contact_id TEXT PRIMARY KEY
) WITHOUT ROWID;
