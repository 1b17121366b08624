-- One live declaration per LRN and sender: intake checks for an earlier
-- one before it writes (RUL009, or the declaration an amendment or
-- cancellation moves), but two originals submitted at the same moment (two
-- requests, two hub instances) both found none. The index makes the second
-- commit fail; intake then works its declarations out again and answers
-- RUL009. Rejected, amended and cancelled declarations do not count.
CREATE UNIQUE INDEX declarations_live_lrn ON declarations (partner_id, lrn)
    WHERE target = 'declaration' AND lrn IS NOT NULL
      AND status NOT IN ('rejected', 'amended', 'cancelled');
