-- Outbox messages the broker refuses: each failed publish counts an
-- attempt, keeps its error and waits until retry_at (Unix seconds) before
-- it is tried again; later messages to the same destination wait behind it,
-- so their order holds. A message the broker rejects for itself (not its
-- destination) is parked after a number of attempts: set aside for the
-- operator (tradehub outbox list / retry) instead of holding the relay.
-- Published rows are deleted after the retention period.
-- Kept in step with migrations/sqlite/0007_outbox_retry.sql.
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN retry_at BIGINT;
ALTER TABLE outbox ADD COLUMN parked_at TEXT;
CREATE INDEX outbox_waiting ON outbox (exchange, routing_key, seq)
    WHERE published_at IS NULL AND retry_at IS NOT NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
