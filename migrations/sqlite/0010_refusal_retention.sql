-- Refusals are kept for a retention period (serve --refusal-retention-days):
-- the relay deletes the older ones in batches, found by this index.
CREATE INDEX refusals_at ON refusals (at);
