#!/usr/bin/env python3
"""A straightforward Python standard-library importer, the baseline of bench/import.sh.

It does what a careful integrator would write in an afternoon with nothing but the standard
library: xml.etree.ElementTree.iterparse over each export file (namespace-aware: any prefix of
the export namespace), the same normalisation of the key columns as engage-sync (contact id
and e-mail lower-case, trimmed values; mobile phones are already E.164 in the generated data),
the attributes as JSON in full mode, and sqlite3 executemany into the same replica schema
(created beforehand by `engage-sync init`), one transaction per file together with its ledger
row. Upserts keep the version rule in SQL (an older file never overwrites a newer row); deletes
remove the row and leave a tombstone. It is single-threaded, as such a script would be.

    python3 bench/python_baseline.py --db REPLICA.db --mode keys|full FILE_OR_DIR...

Prints one JSON line: files, members, elapsed_seconds, contacts_per_second.
"""

import argparse
import datetime
import hashlib
import json
import os
import sqlite3
import sys
import time
import xml.etree.ElementTree as ET

KEY_FIELDS = {
    "memberNumber": "member_number",
    "email": "email",
    "mobilePhone": "mobile_phone",
    "externalId": "external_id",
    "socialSecurityNumber": "social_security_number",
    "contactType": "contact_type",
}

UPSERT = """
INSERT INTO contact (contact_id, member_number, email, mobile_phone, external_id,
    social_security_number, contact_type, first_name, last_name, attributes, version, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (contact_id) WHERE contact_id IS NOT NULL DO UPDATE SET
    member_number = excluded.member_number, email = excluded.email,
    mobile_phone = excluded.mobile_phone, external_id = excluded.external_id,
    social_security_number = excluded.social_security_number,
    contact_type = excluded.contact_type, first_name = excluded.first_name,
    last_name = excluded.last_name, attributes = excluded.attributes,
    version = excluded.version, updated_at = excluded.updated_at
WHERE excluded.version >= contact.version
"""
DELETE = "DELETE FROM contact WHERE contact_id = ? AND version <= ?"
TOMBSTONE = """
INSERT INTO tombstone (contact_id, version, deleted_at) VALUES (?, ?, ?)
ON CONFLICT (contact_id) DO UPDATE SET version = excluded.version,
    deleted_at = excluded.deleted_at WHERE excluded.version >= tombstone.version
"""
LEDGER = """
INSERT INTO applied_file (name, export_timestamp, file_number, size, sha256, members,
    inserted, updated, deleted, stale, applied_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, 0, ?)
"""


def local(tag):
    return tag.rsplit("}", 1)[-1]


def clean(value):
    value = (value or "").strip()
    return value or None


def row_of(member, mode, version, now):
    fields = {}
    contact_id = member.get("contactId")
    for child in member:
        name = local(child.tag)
        if name == "contactId":
            contact_id = child.text
        else:
            fields[name] = child.text or ""
    contact_id = (contact_id or "").strip().lower()
    keys = {column: None for column in KEY_FIELDS.values()}
    for name, column in KEY_FIELDS.items():
        if name in fields:
            keys[column] = clean(fields[name])
    if keys["email"]:
        keys["email"] = keys["email"].lower()
    full = mode == "full"
    attributes = None
    if full:
        fields["contactId"] = contact_id
        attributes = json.dumps(fields, ensure_ascii=False)
    return (
        contact_id,
        keys["member_number"],
        keys["email"],
        keys["mobile_phone"],
        keys["external_id"],
        keys["social_security_number"],
        keys["contact_type"] or "Member",
        clean(fields.get("firstName")) if full else None,
        clean(fields.get("lastName")) if full else None,
        attributes,
        version,
        now,
    )


def version_of(name):
    stamp = name.split("_", 1)[0]
    t = datetime.datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1000)


def import_file(conn, path, mode):
    name = os.path.basename(path)
    stamp, number = name.split("_")[:2]
    version = version_of(name)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    upserts, deletes, section = [], [], None
    for event, elem in ET.iterparse(path, events=("start", "end")):
        tag = local(elem.tag)
        if event == "start":
            if tag in ("new", "updated", "deleted"):
                section = tag
            continue
        if tag == "member":
            if section == "deleted":
                cid = elem.get("contactId") or elem.findtext("{*}contactId") or ""
                deletes.append(cid.strip().lower())
            else:
                upserts.append(row_of(elem, mode, version, now))
            elem.clear()
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with conn:
        conn.executemany(UPSERT, upserts)
        conn.executemany(DELETE, [(cid, version) for cid in deletes])
        conn.executemany(TOMBSTONE, [(cid, version, now) for cid in deletes])
        conn.execute(
            LEDGER,
            (name, stamp, int(number), os.path.getsize(path), digest,
             len(upserts) + len(deletes), len(deletes), now),
        )
    return len(upserts) + len(deletes)


def export_files(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [os.path.join(p, n) for n in os.listdir(p) if n.endswith(".xml")]
        else:
            files.append(p)

    def order(path):
        stamp, number = os.path.basename(path).split("_")[:2]
        return (stamp, int(number))

    return sorted(files, key=order)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--mode", choices=("keys", "full"), required=True)
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    conn = sqlite3.connect(a.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.isolation_level = ""  # `with conn:` commits one transaction per file
    t0 = time.perf_counter()
    files = export_files(a.paths)
    members = sum(import_file(conn, f, a.mode) for f in files)
    elapsed = time.perf_counter() - t0
    print(json.dumps({
        "files": len(files),
        "members": members,
        "elapsed_seconds": round(elapsed, 3),
        "contacts_per_second": round(members / elapsed) if elapsed else 0,
    }))


if __name__ == "__main__":
    sys.exit(main())
