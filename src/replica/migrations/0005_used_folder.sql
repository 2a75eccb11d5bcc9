-- engage-sync replica schema, version 5: every local folder this replica has put export files in
-- (archive, quarantine) or downloaded them to (the inbox the SFTP fetch stages files in), so that
-- `purge` covers all of them whatever the flags or config of the purge run itself (docs/contract.md
-- §7). Paths are canonical and absolute. No personal data. Readers of schema 4 are unaffected (only
-- writers use this table), so a reader accepts a replica of either version.
CREATE TABLE used_folder (
    path          TEXT NOT NULL,
    kind          TEXT NOT NULL,      -- archive | quarantine | inbox
    first_used_at TEXT NOT NULL,
    last_used_at  TEXT NOT NULL,
    PRIMARY KEY (path, kind)
) WITHOUT ROWID;
