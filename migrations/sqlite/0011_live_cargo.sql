-- One live cargo report per sender and document number (BGM 1004, its
-- `lrn`), as one live declaration per LRN (0006): intake refuses a second
-- original (RUL009), and this index keeps two submitted at the same moment
-- from both going live (the later commit is worked out again and refused).
-- Reports stored before it could already have a second live original with
-- one number; the older ones are what a replacement would have made them,
-- `amended` by the newest, each with its event on the trail.
INSERT INTO events (interchange_id, declaration_id, at, kind, detail)
SELECT d.interchange_id, d.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'amended',
       'amended by cargo report ' || (
           SELECT n.id FROM declarations n
            WHERE n.partner_id = d.partner_id AND n.lrn = d.lrn
              AND n.target = 'cargo_report' AND n.status = 'accepted'
              AND (n.function IS NULL OR n.function <> 'cancellation')
            ORDER BY n.created_at DESC, n.id DESC LIMIT 1
       ) || ', a later original with its number (migration 0011)'
  FROM declarations d
 WHERE d.target = 'cargo_report' AND d.status = 'accepted'
   AND (d.function IS NULL OR d.function <> 'cancellation')
   AND EXISTS (
       SELECT 1 FROM declarations n
        WHERE n.partner_id = d.partner_id AND n.lrn = d.lrn
          AND n.target = 'cargo_report' AND n.status = 'accepted'
          AND (n.function IS NULL OR n.function <> 'cancellation')
          AND (n.created_at > d.created_at OR (n.created_at = d.created_at AND n.id > d.id)));
UPDATE declarations SET status = 'amended', updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
 WHERE target = 'cargo_report' AND status = 'accepted'
   AND (function IS NULL OR function <> 'cancellation')
   AND EXISTS (
       SELECT 1 FROM declarations n
        WHERE n.partner_id = declarations.partner_id AND n.lrn = declarations.lrn
          AND n.target = 'cargo_report' AND n.status = 'accepted'
          AND (n.function IS NULL OR n.function <> 'cancellation')
          AND (n.created_at > declarations.created_at
               OR (n.created_at = declarations.created_at AND n.id > declarations.id)));
CREATE UNIQUE INDEX declarations_live_cargo ON declarations (partner_id, lrn)
    WHERE target = 'cargo_report' AND status = 'accepted'
      AND (function IS NULL OR function <> 'cancellation');
