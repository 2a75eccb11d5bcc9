-- engage-sync till store, version 1 (docs/contract.md §3, §6): what the till writes, in a SQLite
-- file of its own beside the replica (`<db>.till`), so that a till write never waits for a sync
-- job, which holds the replica's write lock for as long as it needs. Written only by the till
-- commands (`contact add`, `contact update`, `receipt add`), by `push-local` and by `purge`, always
-- in short transactions. Applied by src/till_store/schema.rs inside one transaction; PRAGMA
-- user_version records it.
--
-- Table names differ from the replica's wherever readers see both files at once (the
-- `contacts` view, src/till_store/contacts_view.sql): `till_contact` and `local_key_link`
-- here, `contact` and `tombstone` there. `meta` and `run` exist in both and are always
-- named with their schema where both are attached.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The till's version of a contact: one registered at the till (local_key set; contact_id NULL
-- until Engage knows it), or an Engage contact changed at the till (contact_id set). Readers
-- see this row instead of the replica's while its version is at least the replica row's, and
-- never when Engage deleted the contact (tombstone). A row the replica has overtaken shows
-- nothing a reader would see, so `push-local` and `purge` delete it (no personal data is kept
-- twice). Keys-only stores keep the keys and contact type only, as the replica does.
CREATE TABLE till_contact (
    id                     INTEGER PRIMARY KEY,
    contact_id             TEXT,     -- Engage GUID, lower-case
    local_key              TEXT,     -- integrator-generated key, e.g. L0600-000123
    member_number          TEXT,
    email                  TEXT,     -- trimmed, lower-case
    mobile_phone           TEXT,     -- E.164
    external_id            TEXT,
    social_security_number TEXT,
    contact_type           TEXT,
    first_name             TEXT,     -- NULL in keys mode
    last_name              TEXT,     -- NULL in keys mode
    attributes             TEXT,     -- JSON of every field; NULL in keys mode
    version                INTEGER NOT NULL,  -- ms since epoch of the till write (0: Engage's wins)
    updated_at             TEXT NOT NULL,     -- UTC RFC 3339
    CHECK (contact_id IS NOT NULL OR local_key IS NOT NULL)
);
CREATE UNIQUE INDEX till_contact_by_local_key ON till_contact(local_key)
    WHERE local_key IS NOT NULL;
-- An Engage contact changed at the till has one row; two local contacts that turned out to
-- be the same Engage contact keep theirs (their local keys both find it).
CREATE UNIQUE INDEX till_contact_engage_change ON till_contact(contact_id)
    WHERE local_key IS NULL;
CREATE INDEX till_contact_by_contact_id ON till_contact(contact_id)
    WHERE contact_id IS NOT NULL;
CREATE INDEX till_contact_by_member_number ON till_contact(member_number)
    WHERE member_number IS NOT NULL;
CREATE INDEX till_contact_by_email ON till_contact(email) WHERE email IS NOT NULL;
CREATE INDEX till_contact_by_mobile_phone ON till_contact(mobile_phone)
    WHERE mobile_phone IS NOT NULL;
CREATE INDEX till_contact_by_external_id ON till_contact(external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX till_contact_by_ssn ON till_contact(social_security_number)
    WHERE social_security_number IS NOT NULL;

-- The last number handed out per local key prefix. Never decreases and is never purged, so a
-- local key is never reused.
CREATE TABLE local_key_seq (
    prefix TEXT PRIMARY KEY,
    last   INTEGER NOT NULL
) WITHOUT ROWID;

-- Local key → Engage contact id, once Engage knows the contact. Ids only, no personal data;
-- kept after purge so a receipt naming a local key can still be tagged, and so that readers
-- find Engage's row of the contact by its local key.
CREATE TABLE local_key_link (
    local_key  TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL,
    linked_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX local_key_link_by_contact_id ON local_key_link(contact_id);

-- Item states: pending (to send), in_flight (claimed or sent, outcome not yet recorded),
-- delivered (Engage has it), rejected (Engage refused it; `reason` says why), dropped (not
-- sent, and never will be: `reason` says why, e.g. the contact was deleted in Engage).
-- Delivered, rejected and dropped rows stay until `purge` (their `finished_at` is the age).

-- Contact creates and updates made at the till, pushed with Engage's bulk write.
CREATE TABLE contact_outbox (
    id          INTEGER PRIMARY KEY,
    op          TEXT NOT NULL CHECK (op IN ('create', 'update')),
    local_key   TEXT,              -- the local contact (create; update of a contact not yet linked)
    contact_id  TEXT,              -- Engage id: the update's target, or what the create became
    fields      TEXT NOT NULL,     -- JSON object of Engage attributes to send (update: changed only)
    state       TEXT NOT NULL CHECK (state IN
                    ('pending', 'in_flight', 'delivered', 'rejected', 'dropped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    batch_id    TEXT,              -- the bulk batch it went in, stored before the status is polled
    outcome     TEXT,              -- Created, AlreadyExists, Found (by lookup), Updated, ...
    reason      TEXT,              -- rejected/dropped: why; pending: the last transient failure
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    sent_at     TEXT,              -- set just before the request leaves; NULL while only claimed
    finished_at TEXT,
    CHECK (local_key IS NOT NULL OR contact_id IS NOT NULL)
);
CREATE INDEX contact_outbox_by_state ON contact_outbox(state, op, id);
CREATE INDEX contact_outbox_by_local_key ON contact_outbox(local_key)
    WHERE local_key IS NOT NULL;
CREATE INDEX contact_outbox_by_contact_id ON contact_outbox(contact_id)
    WHERE contact_id IS NOT NULL;
CREATE INDEX contact_outbox_by_batch ON contact_outbox(batch_id) WHERE batch_id IS NOT NULL;

-- Bulk batches sent. A row is written as soon as Engage answers with the batch id, before the
-- first status poll, so a crash in between resumes polling instead of sending again.
CREATE TABLE outbox_batch (
    batch_id    TEXT PRIMARY KEY,
    op          TEXT NOT NULL,
    items       INTEGER NOT NULL,
    state       TEXT NOT NULL,     -- sent | completed | failed | lost
    polls       INTEGER NOT NULL DEFAULT 0,
    sent_at     TEXT NOT NULL,
    finished_at TEXT
) WITHOUT ROWID;

-- Finalized purchases, posted one by one; `uniqueReceiptId` makes a re-post harmless.
CREATE TABLE receipt_outbox (
    id                INTEGER PRIMARY KEY,
    unique_receipt_id TEXT NOT NULL UNIQUE,
    body              TEXT NOT NULL,  -- the receipt as given, canonical JSON
    ref_type          TEXT NOT NULL,  -- how it names its contact: contactId, localKey, email, ...
    ref_value         TEXT NOT NULL,  -- normalised
    sent_key_type     TEXT,           -- the match key it was last sent with
    sent_key          TEXT,
    state             TEXT NOT NULL CHECK (state IN
                          ('pending', 'in_flight', 'delivered', 'rejected', 'dropped')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    outcome           TEXT,           -- Created, Duplicate
    reason            TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    sent_at           TEXT,
    finished_at       TEXT
);
CREATE INDEX receipt_outbox_by_state ON receipt_outbox(state, id);

-- `push-local` runs (the sync jobs' runs are in the replica's `run` table): for `status`.
CREATE TABLE run (
    id          INTEGER PRIMARY KEY,
    command     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    outcome     TEXT NOT NULL,        -- running | ok | failed
    exit_code   INTEGER,
    summary     TEXT,                 -- JSON counts, never personal data
    error       TEXT
);
