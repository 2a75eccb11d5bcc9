-- engage-sync replica schema, version 4: the till's data lives in the till store (`<db>.till`,
-- src/till_store/), so that till writes never wait for a sync job's write lock. Step 2 of 2:
-- step 1 (src/till_store/migrations/take_over_from_replica.sql) has copied, in the till
-- store's own transaction, what is removed here (a `full` build has nothing to copy: its
-- copies came from the live replica). secure_delete overwrites the removed rows.
DELETE FROM contact WHERE contact_id IS NULL;
UPDATE contact SET local_key = NULL WHERE local_key IS NOT NULL;
DROP TABLE contact_outbox;
DROP TABLE outbox_batch;
DROP TABLE receipt_outbox;
DROP TABLE local_key_link;
DROP TABLE local_key_seq;
-- The public `contacts` view now spans both files: a temporary view that readers create after
-- attaching the till store (README "Reading the replica", interface version 2). Without it, a
-- reader of interface version 1 fails loudly instead of silently missing the till's contacts.
DROP VIEW contacts;
