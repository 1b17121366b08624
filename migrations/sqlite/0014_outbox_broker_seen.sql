-- When a relay publishing the outbox to the recorded broker last claimed
-- (refreshed at most every 30 seconds). `tradehub outbox broker --forget`
-- refuses while it is recent: forgetting the broker under a running
-- instance would let one without a broker start and mark the others'
-- messages published in-process. A relay with a broker also records its
-- prefix again when it finds none recorded.
ALTER TABLE outbox_broker ADD COLUMN seen_at TEXT;
