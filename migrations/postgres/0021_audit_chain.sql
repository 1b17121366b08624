-- The audit trail's hash chain (`tradehub audit verify`, docs/OPERATIONS.md).
-- The hub seals every committed event in turn: seal N holds the SHA-256 of
-- seal N-1's hash and the event's fields, so an event changed or removed
-- behind the append-only trigger's back (the trigger disabled, the file
-- edited) no longer matches its seal, and a seal changed no longer leads to
-- the hash an auditor noted earlier.
--
-- Events are written by concurrent transactions whose order of commit is
-- not their order of `seq`. Each event keeps the transaction that wrote it
-- (`xact`); the sealer seals only events of transactions that have ended
-- (below the oldest one still running), so no event commits behind the
-- chain. Rows written before this migration have xact 0 and are sealed
-- first, in `seq` order. A constant default adds the column without
-- rewriting the table; new rows take their transaction's id.
-- Kept in step with the other backend's migration of the same number.
ALTER TABLE events ADD COLUMN xact BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ALTER COLUMN xact SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_by_xact ON events (xact, seq);

CREATE TABLE event_seals (
    pos        BIGINT PRIMARY KEY,
    event_seq  BIGINT NOT NULL UNIQUE,
    sealed_at  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

CREATE FUNCTION event_seals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'event seals are append-only'; END $$;
CREATE TRIGGER event_seals_no_change BEFORE UPDATE OR DELETE ON event_seals
FOR EACH ROW EXECUTE FUNCTION event_seals_append_only();

-- Where the sealer stands: events of transactions below `horizon` are all
-- sealed; of those in [horizon, until), the ones up to (cursor_xact,
-- cursor_seq) in (xact, seq) order. `pos` and `head` are the last seal's.
CREATE TABLE audit_chain (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    horizon      BIGINT NOT NULL,
    until        BIGINT,
    cursor_xact  BIGINT NOT NULL,
    cursor_seq   BIGINT NOT NULL,
    pos          BIGINT NOT NULL,
    head         TEXT NOT NULL
);
INSERT INTO audit_chain (id, horizon, until, cursor_xact, cursor_seq, pos, head)
VALUES (1, 0, NULL, -1, 0, 0, '0000000000000000000000000000000000000000000000000000000000000000');
