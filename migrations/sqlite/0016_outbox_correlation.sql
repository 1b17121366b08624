-- The AMQP correlation_id an outbox message is published with: an answer
-- to a partner carries the message_id of the AMQP delivery it answers, so
-- that a carrier's middleware pairs them without reading the answer.
-- Kept in step with the other backend's migration of the same number.
ALTER TABLE outbox ADD COLUMN correlation_id TEXT;
