-- Transactional outbox: messages written in the same transaction as the
-- state change they announce, published by the relay with confirms and then
-- marked. Kept in step with migrations/postgres/0002_outbox.sql.
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange      TEXT NOT NULL,
    routing_key   TEXT NOT NULL,
    message_id    TEXT NOT NULL UNIQUE,
    content_type  TEXT NOT NULL,
    payload       BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    published_at  TEXT
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
