-- LRNs are unique per declarant (the issue of the canonical model: "the
-- same LRN from the same declarant"), no longer per sending partner. Each
-- declaration row gets the scope its LRN is unique in:
--   'declarant:<id>'         the declarant's identifier, when the sending
--                            partner is registered for it (partner_trader_ids):
--                            every partner registered for that declarant
--                            shares the scope;
--   'partner:<n>:<partner>/<id>' otherwise (an identifier the hub cannot
--                            vouch for does not reach beyond its sender; <n>
--                            is the partner id's length in characters, so
--                            that ids with '/' in them cannot run together;
--                            <id> is empty without a declarant, and has no
--                            surrounding spaces, as src/store/clearance.rs
--                            lrn_scope and declarant_id write it).
-- Rows written before this migration keep their sender's scope, in which
-- they were unique. Kept in step with migrations/sqlite/0009_declarant_lrn.sql.
ALTER TABLE declarations ADD COLUMN lrn_scope TEXT;
UPDATE declarations
   SET lrn_scope = 'partner:' || char_length(partner_id) || ':' || partner_id || '/'
                   || COALESCE(btrim(canonical_json::json #>> '{declarant,id}', ' '), '')
 WHERE target = 'declaration';
DROP INDEX declarations_live_lrn;
CREATE UNIQUE INDEX declarations_live_lrn ON declarations (lrn_scope, lrn)
    WHERE target = 'declaration' AND lrn IS NOT NULL
      AND status NOT IN ('rejected', 'amended', 'cancelled');
