-- engage-sync replica schema, version 7: change tracking for `publish` on a hub (issue 21).
-- Every transaction that writes contacts or tombstones takes the next number of one counter
-- and stamps the rows it writes with it (`change_seq`, a bound parameter of the writes, not a
-- trigger). Writers are serialised, so numbers are committed in increasing order and a
-- reader's snapshot holds every number up to the counter's. No personal data here. Readers
-- are unaffected (only writers use these).
--
-- How `publish` finds the rows numbered above the last it published: deletes through the
-- tombstones' index; contacts through `change_log`, which only a hub keeps (`logging`, set
-- by its first publication): one row id appended per contact written, which costs an import
-- about half of what an index on contact.change_seq would (that index's old entry must be
-- found and deleted on every update), and nothing at all on a replica that never publishes.
-- A bulk load appends one row with a NULL row id instead ("every row may have changed"), and
-- the first publication of a replica (and the first after a `full` swap) reads the whole
-- table, comparing `change_seq`.
--
-- Existing rows and tombstones get number 1 and the first publication starts after 0: on a
-- migrated replica every contact and tombstone counts as changed once, so the first
-- `publish` is, in effect, a whole snapshot in delta form.
CREATE TABLE change_counter (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last      INTEGER NOT NULL,   -- the last number handed out
    published INTEGER NOT NULL,   -- `publish` has published every change up to this number
    logging   INTEGER NOT NULL    -- 1 on a hub: writers append to change_log
);
INSERT INTO change_counter (id, last, published, logging) VALUES (1, 1, 0, 0);
-- The contacts written since the last publication (a hub's only): the transaction's number,
-- the contact's row id (NULL: a bulk load, every row) and whether the write created the row
-- (so that `publish` finds the few new contacts without reading every changed one twice).
-- `publish` empties it up to what it published.
CREATE TABLE change_log (
    seq      INTEGER NOT NULL,
    row      INTEGER,
    inserted INTEGER NOT NULL
);
ALTER TABLE contact ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 1;
-- The number of the transaction that created the row: `publish` lists a contact created
-- since the last publication under <new>, any other under <updated>.
ALTER TABLE contact ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tombstone ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 1;
CREATE INDEX tombstone_by_change_seq ON tombstone(change_seq);

-- Publications written (`publish`): their file names' timestamp (strictly increasing across
-- publications), the folder and the files. A delta publication holds the changes numbered
-- from_seq < n <= to_seq and is numbered (`delta_number`, 1, 2, … in its file names, so that
-- a store can tell that it missed one); a snapshot holds the whole replica as of to_seq and
-- names the last delta number before it. The row is written, with the counter's
-- `published`, before the files are renamed into place; the next `publish` finishes
-- renaming what a killed one left (src/publish/).
CREATE TABLE publication (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('delta', 'snapshot')),
    delta_number INTEGER NOT NULL,
    stamp        TEXT NOT NULL,       -- YYYYMMDDHHmmss
    dir          TEXT NOT NULL,       -- canonical, absolute
    files        TEXT NOT NULL,       -- JSON array of file names, in order
    from_seq     INTEGER NOT NULL,
    to_seq       INTEGER NOT NULL,
    contacts     INTEGER NOT NULL,    -- members under <new> and <updated>
    deleted      INTEGER NOT NULL,    -- members under <deleted>
    published_at TEXT NOT NULL
);
