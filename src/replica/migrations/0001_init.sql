-- engage-sync replica schema, version 1.
-- Applied by src/replica/schema.rs inside one transaction; PRAGMA user_version records it.

-- Settings of this replica that must not change silently (mode).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per live contact. Engage contacts have contact_id; contacts registered at the till
-- have local_key until Engage assigns an id (then both).
CREATE TABLE contact (
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
    version                INTEGER NOT NULL,  -- ms since epoch of the data's source (file or fetch)
    updated_at             TEXT NOT NULL,     -- UTC RFC 3339, when this row was last written
    CHECK (contact_id IS NOT NULL OR local_key IS NOT NULL)
);

-- Every lookup column is indexed. Mostly-empty keys get partial indexes, which SQLite uses for
-- `col = ?` because equality implies NOT NULL; they keep the import hot path cheap.
CREATE UNIQUE INDEX contact_by_contact_id ON contact(contact_id) WHERE contact_id IS NOT NULL;
CREATE UNIQUE INDEX contact_by_local_key ON contact(local_key) WHERE local_key IS NOT NULL;
CREATE INDEX contact_by_member_number ON contact(member_number) WHERE member_number IS NOT NULL;
CREATE INDEX contact_by_email ON contact(email) WHERE email IS NOT NULL;
CREATE INDEX contact_by_mobile_phone ON contact(mobile_phone) WHERE mobile_phone IS NOT NULL;
CREATE INDEX contact_by_external_id ON contact(external_id) WHERE external_id IS NOT NULL;
CREATE INDEX contact_by_ssn ON contact(social_security_number)
    WHERE social_security_number IS NOT NULL;

-- A deleted contact: id and time only, no personal data. Keeps an older file or fetch from
-- resurrecting it.
CREATE TABLE tombstone (
    contact_id TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    deleted_at TEXT NOT NULL
) WITHOUT ROWID;

-- Export files applied, each in the same transaction as its contacts.
CREATE TABLE applied_file (
    name             TEXT PRIMARY KEY,
    export_timestamp TEXT NOT NULL,   -- YYYYMMDDHHmmss from the name
    file_number      INTEGER NOT NULL,
    size             INTEGER NOT NULL,
    sha256           TEXT NOT NULL,
    members          INTEGER NOT NULL,
    inserted         INTEGER NOT NULL,
    updated          INTEGER NOT NULL,
    deleted          INTEGER NOT NULL,
    stale            INTEGER NOT NULL,
    applied_at       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX applied_file_by_export ON applied_file(export_timestamp, file_number);

-- Files moved to quarantine, and why (the reason never quotes file content).
CREATE TABLE quarantined_file (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    moved_to       TEXT,
    reason         TEXT NOT NULL,
    quarantined_at TEXT NOT NULL
);

-- One row per writing run: for `status` (last success, last failure) and audits.
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

-- The public read interface (README "Reading the replica"). Stable; changes are versioned.
CREATE VIEW contacts AS
SELECT contact_id, local_key, member_number, email, mobile_phone, external_id,
       social_security_number, contact_type, first_name, last_name, attributes, updated_at
FROM contact;
