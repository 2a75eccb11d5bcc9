CREATE TEMP VIEW IF NOT EXISTS contacts AS
SELECT c.contact_id, l.local_key, c.member_number, c.email, c.mobile_phone, c.external_id,
       c.social_security_number, c.contact_type, c.first_name, c.last_name, c.attributes,
       c.updated_at
FROM contact AS c LEFT JOIN local_key_link AS l ON l.contact_id = c.contact_id
WHERE NOT EXISTS (SELECT 1 FROM till_contact AS t
                  WHERE t.contact_id = c.contact_id AND t.version >= c.version)
UNION ALL
SELECT t.contact_id, t.local_key, t.member_number, t.email, t.mobile_phone, t.external_id,
       t.social_security_number, t.contact_type, t.first_name, t.last_name, t.attributes,
       t.updated_at
FROM till_contact AS t
WHERE t.contact_id IS NULL
   OR (NOT EXISTS (SELECT 1 FROM contact AS c
                   WHERE c.contact_id = t.contact_id AND c.version > t.version)
       AND NOT EXISTS (SELECT 1 FROM tombstone AS d WHERE d.contact_id = t.contact_id));
