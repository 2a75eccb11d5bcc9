-- engage-sync replica schema, version 6: keys by libphonenumber's numbering plans (issue 16).
-- Earlier builds stored some mobile numbers under keys no lookup can reach (`46701234567` as
-- `+4646701234567`, `+46 070…` as `+460701234567`, numbers wrapped in bidi marks as written).
-- This migration only marks a replica that holds contacts; the next sync job (`delta`,
-- `changes` or `full`), which knows the default country, re-normalises every stored key
-- in place in one transaction that also removes the mark (src/replica/rekey.rs), and its
-- summary says how many rows changed. A till command never waits for that: it only reads.
INSERT INTO meta (key, value)
    SELECT 'rekey', '2' WHERE EXISTS (SELECT 1 FROM contact);
