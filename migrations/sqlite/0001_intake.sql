-- Durable intake: partners, interchanges (raw bytes kept), the append-only
-- audit trail and refused submissions. Kept in step with
-- migrations/postgres/0001_intake.sql.
CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE interchanges (
    id                 TEXT PRIMARY KEY,
    partner_id         TEXT NOT NULL REFERENCES partners(id),
    sender             TEXT NOT NULL,
    control_reference  TEXT,
    sha256             TEXT NOT NULL,
    format             TEXT NOT NULL,
    status             TEXT NOT NULL,
    received_at        TEXT NOT NULL,
    size_bytes         BIGINT NOT NULL,
    message_count      BIGINT NOT NULL,
    error_count        BIGINT NOT NULL,
    issues_json        TEXT NOT NULL,
    acknowledgement    TEXT NOT NULL,
    raw                BLOB NOT NULL,
    UNIQUE (sender, control_reference),
    UNIQUE (partner_id, sha256)
);

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    interchange_id  TEXT NOT NULL REFERENCES interchanges(id),
    at              TEXT NOT NULL,
    kind            TEXT NOT NULL,
    detail          TEXT NOT NULL
);
CREATE INDEX events_by_interchange ON events (interchange_id, seq);

-- Append-only: the audit trail is never rewritten.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE refusals (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id   TEXT,
    at           TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    code         TEXT NOT NULL,
    detail       TEXT NOT NULL
);
