-- engage-sync replica schema, version 3: the offline outboxes (docs/contract.md §6).
-- Contacts and receipts registered at the till wait here until `push-local` delivers them.
-- Item states: pending (to send), in_flight (claimed or sent, outcome not yet recorded),
-- delivered (Engage has it), rejected (Engage refused it; `reason` says why), dropped (not
-- sent, and never will be: `reason` says why, e.g. the contact was deleted in Engage).
-- Delivered, rejected and dropped rows stay until `purge` (their `finished_at` is the age).

-- The last number handed out per local key prefix. Never decreases and is never purged, so a
-- local key is never reused.
CREATE TABLE local_key_seq (
    prefix TEXT PRIMARY KEY,
    last   INTEGER NOT NULL
) WITHOUT ROWID;

-- Local key → Engage contact id, once Engage knows the contact. Ids only, no personal data;
-- kept after purge so a receipt naming a local key can still be tagged.
CREATE TABLE local_key_link (
    local_key  TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL,
    linked_at  TEXT NOT NULL
) WITHOUT ROWID;

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
