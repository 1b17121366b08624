-- Clearance: the declarations (and manifests, passenger lists) mapped from
-- accepted messages, the permit requests routed to agencies, and the
-- responses the hub sent back. Kept in step with
-- migrations/postgres/0003_clearance.sql.
CREATE TABLE declarations (
    id                 TEXT PRIMARY KEY,
    interchange_id     TEXT NOT NULL REFERENCES interchanges(id),
    message_reference  TEXT NOT NULL,
    message_type       TEXT NOT NULL,
    target             TEXT NOT NULL,
    partner_id         TEXT NOT NULL,
    lrn                TEXT,
    function           TEXT,
    status             TEXT NOT NULL,
    lane               TEXT,
    canonical_json     TEXT,
    issues_json        TEXT NOT NULL,
    reply_json         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (interchange_id, message_reference)
);
CREATE INDEX declarations_by_status ON declarations (status, created_at);
CREATE INDEX declarations_by_lrn ON declarations (partner_id, lrn);

CREATE TABLE permits (
    id              TEXT PRIMARY KEY,
    declaration_id  TEXT NOT NULL REFERENCES declarations(id),
    agency          TEXT NOT NULL,
    rule            TEXT NOT NULL,
    status          TEXT NOT NULL,
    requested_at    TEXT NOT NULL,
    due_at          TEXT NOT NULL,
    decided_at      TEXT,
    request_json    TEXT NOT NULL,
    decision_json   TEXT
);
CREATE INDEX permits_by_declaration ON permits (declaration_id);
CREATE INDEX permits_by_agency ON permits (agency, status);
CREATE INDEX permits_due ON permits (status, due_at);

CREATE TABLE responses (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    declaration_id  TEXT NOT NULL REFERENCES declarations(id),
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX responses_by_declaration ON responses (declaration_id, seq);

-- Events about a declaration name it (the interchange stays the anchor).
ALTER TABLE events ADD COLUMN declaration_id TEXT;
CREATE INDEX events_by_declaration ON events (declaration_id, seq);

-- A partner account may belong to an agency: it reads that agency's permit
-- inbox and posts its decisions.
ALTER TABLE partners ADD COLUMN agency TEXT;
