-- The trader identifiers (e.g. EORI numbers) a partner may submit WCO
-- declarations for: when a partner has any, the Submitter (or, without
-- one, the Declarant) of its WCO declarations must be one of them, as the
-- UNB sender of its EDIFACT interchanges must be the partner itself.
-- Kept in step with migrations/postgres/0005_trader_ids.sql.
CREATE TABLE partner_trader_ids (
    partner_id  TEXT NOT NULL REFERENCES partners(id),
    trader_id   TEXT NOT NULL,
    PRIMARY KEY (partner_id, trader_id)
);
