-- The movement reference number customs gives a declaration it accepts
-- (see docs/formats.md). An amendment keeps the MRN of the declaration it
-- replaces, which leaves the live ones first; no two live declarations
-- share one. Kept in step with migrations/sqlite/0008_mrn.sql.
ALTER TABLE declarations ADD COLUMN mrn TEXT;
CREATE UNIQUE INDEX declarations_live_mrn ON declarations (mrn)
    WHERE mrn IS NOT NULL AND status <> 'amended';
