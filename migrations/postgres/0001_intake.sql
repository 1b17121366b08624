-- Durable intake: partners, interchanges (raw bytes kept), the append-only
-- audit trail and refused submissions. Kept in step with
-- migrations/sqlite/0001_intake.sql.
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
    raw                BYTEA NOT NULL,
    UNIQUE (sender, control_reference),
    UNIQUE (partner_id, sha256)
);

CREATE TABLE events (
    seq             BIGSERIAL PRIMARY KEY,
    interchange_id  TEXT NOT NULL REFERENCES interchanges(id),
    at              TEXT NOT NULL,
    kind            TEXT NOT NULL,
    detail          TEXT NOT NULL
);
CREATE INDEX events_by_interchange ON events (interchange_id, seq);

-- Append-only: the audit trail is never rewritten.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION events_append_only();

CREATE TABLE refusals (
    seq          BIGSERIAL PRIMARY KEY,
    partner_id   TEXT,
    at           TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    code         TEXT NOT NULL,
    detail       TEXT NOT NULL
);
