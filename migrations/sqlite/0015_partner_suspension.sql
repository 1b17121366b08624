-- A partner an operator suspended (`tradehub partner suspend`): when and
-- why. Its submissions are refused (HUB204) on every transport, its
-- agency account (if any) records no decision, until it is reinstated.
-- Kept in step with the other backend's migration of the same number.
ALTER TABLE partners ADD COLUMN suspended_at TEXT;
ALTER TABLE partners ADD COLUMN suspended_reason TEXT;
