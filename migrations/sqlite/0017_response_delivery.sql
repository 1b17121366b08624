-- When each answer to a sender was handed over: the outbox message it
-- went out as (its message_id, which the sender receives) and when the
-- relay had it published (confirmed by the broker, written to the drop
-- folder, or given to the in-process transport). The outbox row itself
-- is purged days after publishing; this stays with the declaration.
-- Kept in step with the other backend's migration of the same number.
ALTER TABLE responses ADD COLUMN message_id TEXT;
ALTER TABLE responses ADD COLUMN published_at TEXT;
CREATE INDEX responses_by_message ON responses (message_id);
