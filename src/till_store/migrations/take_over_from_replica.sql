-- Replica schema 4, step 1 of 2 (src/till_store/schema.rs): the replica (`main`, schema 3)
-- gives its till data to its till store (attached as `till`). Idempotent: rows already
-- copied by an earlier, interrupted run are left as they are.
INSERT INTO till.local_key_seq (prefix, last)
    SELECT prefix, last FROM main.local_key_seq WHERE true
    ON CONFLICT(prefix) DO UPDATE SET last = max(last, excluded.last);
INSERT OR IGNORE INTO till.local_key_link (local_key, contact_id, linked_at)
    SELECT local_key, contact_id, linked_at FROM main.local_key_link;
-- A local contact Engage knows stays in the replica as Engage's contact; its local key is
-- found through the link.
INSERT OR IGNORE INTO till.local_key_link (local_key, contact_id, linked_at)
    SELECT local_key, contact_id, updated_at FROM main.contact
    WHERE local_key IS NOT NULL AND contact_id IS NOT NULL;
INSERT OR IGNORE INTO till.till_contact (contact_id, local_key, member_number, email,
    mobile_phone, external_id, social_security_number, contact_type, first_name, last_name,
    attributes, version, updated_at)
    SELECT NULL, local_key, member_number, email, mobile_phone, external_id,
           social_security_number, contact_type, first_name, last_name, attributes, version,
           updated_at
    FROM main.contact WHERE local_key IS NOT NULL AND contact_id IS NULL ORDER BY id;
INSERT OR IGNORE INTO till.contact_outbox SELECT * FROM main.contact_outbox ORDER BY id;
INSERT OR IGNORE INTO till.outbox_batch SELECT * FROM main.outbox_batch;
INSERT OR IGNORE INTO till.receipt_outbox SELECT * FROM main.receipt_outbox ORDER BY id;
