-- The audit trail's hash chain (`tradehub audit verify`, docs/OPERATIONS.md).
-- The hub seals every committed event in turn: seal N holds the SHA-256 of
-- seal N-1's hash and the event's fields, so an event changed or removed
-- behind the append-only triggers' back (the triggers dropped, the file
-- edited) no longer matches its seal, and a seal changed no longer leads to
-- the hash an auditor noted earlier.
--
-- SQLite has one writer at a time, so events commit in `seq` order and the
-- sealer follows `seq`; `xact` is 0 for every row (PostgreSQL keeps there
-- the transaction that wrote the event). Kept in step with the other
-- backend's migration of the same number.
ALTER TABLE events ADD COLUMN xact INTEGER NOT NULL DEFAULT 0;

CREATE TABLE event_seals (
    pos        INTEGER PRIMARY KEY,
    event_seq  INTEGER NOT NULL UNIQUE,
    sealed_at  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE TRIGGER event_seals_no_update BEFORE UPDATE ON event_seals
BEGIN SELECT RAISE(ABORT, 'event seals are append-only'); END;
CREATE TRIGGER event_seals_no_delete BEFORE DELETE ON event_seals
BEGIN SELECT RAISE(ABORT, 'event seals are append-only'); END;

-- Where the sealer stands (see the PostgreSQL migration): on SQLite the
-- range [horizon, until) stays open and the cursor follows `seq`.
CREATE TABLE audit_chain (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    horizon      INTEGER NOT NULL,
    until        INTEGER,
    cursor_xact  INTEGER NOT NULL,
    cursor_seq   INTEGER NOT NULL,
    pos          INTEGER NOT NULL,
    head         TEXT NOT NULL
);
INSERT INTO audit_chain (id, horizon, until, cursor_xact, cursor_seq, pos, head)
VALUES (1, 0, NULL, -1, 0, 0, '0000000000000000000000000000000000000000000000000000000000000000');
