-- What operators changed, for the auditor: accounts added, API tokens
-- issued again, roles, suspensions and reinstatements, trader identifiers,
-- outbox messages put back for another round of attempts, and a broker
-- record forgotten. Written by triggers in the transaction of the change
-- itself, so that a change made any way (the CLI, or SQL by hand) is on
-- it; append-only, as `events` is. `by_role` is the database role that made
-- the change (PostgreSQL; NULL on SQLite, which has none).
-- Kept in step with the other backend's migration of the same number.
CREATE TABLE operator_log (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL,
    by_role  TEXT
);

CREATE TRIGGER operator_log_no_update BEFORE UPDATE ON operator_log
BEGIN SELECT RAISE(ABORT, 'the operator log is append-only'); END;
CREATE TRIGGER operator_log_no_delete BEFORE DELETE ON operator_log
BEGIN SELECT RAISE(ABORT, 'the operator log is append-only'); END;

CREATE TRIGGER operator_log_partner_added AFTER INSERT ON partners
BEGIN
    INSERT INTO operator_log (at, action, subject, detail)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'partner_added', NEW.id,
            'named ' || NEW.name);
END;

CREATE TRIGGER operator_log_token_issued AFTER UPDATE OF token_hash ON partners
WHEN OLD.token_hash IS NOT NEW.token_hash
BEGIN
    INSERT INTO operator_log (at, action, subject, detail)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'token_issued', NEW.id,
            'a new API token; the one before no longer works');
END;

CREATE TRIGGER operator_log_role AFTER UPDATE OF agency ON partners
WHEN OLD.agency IS NOT NEW.agency
BEGIN
    INSERT INTO operator_log (at, action, subject, detail)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'role_changed', NEW.id,
            'acts for ' || COALESCE(NEW.agency, 'no agency') || ' (before: ' ||
            COALESCE(OLD.agency, 'no agency') || ')');
END;

CREATE TRIGGER operator_log_suspension
AFTER UPDATE OF suspended_at, suspended_reason ON partners
WHEN OLD.suspended_at IS NOT NEW.suspended_at
  OR OLD.suspended_reason IS NOT NEW.suspended_reason
BEGIN
    INSERT INTO operator_log (at, action, subject, detail)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
            CASE WHEN NEW.suspended_at IS NULL THEN 'partner_reinstated'
                 ELSE 'partner_suspended' END,
            NEW.id,
            CASE WHEN NEW.suspended_at IS NULL
                 THEN 'suspended since ' || COALESCE(OLD.suspended_at, '?') ||
                      ': ' || COALESCE(OLD.suspended_reason, '')
                 ELSE COALESCE(NEW.suspended_reason, '') END);
END;

CREATE TRIGGER operator_log_trader_added AFTER INSERT ON partner_trader_ids
BEGIN
    INSERT INTO operator_log (at, action, subject, detail)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'trader_added', NEW.partner_id,
            'submits for trader ' || NEW.trader_id);
END;

CREATE TRIGGER operator_log_outbox_retried AFTER UPDATE OF attempts ON outbox
WHEN OLD.attempts > 0 AND NEW.attempts = 0
BEGIN
    INSERT INTO operator_log (at, action, subject, detail)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'outbox_retried',
            'outbox ' || NEW.seq,
            NEW.message_id || ' to ' || NEW.exchange || ' ' || NEW.routing_key ||
            ' after ' || OLD.attempts || ' attempt(s)' ||
            CASE WHEN OLD.parked_at IS NOT NULL
                 THEN ', parked since ' || OLD.parked_at ELSE '' END ||
            ': ' || COALESCE(OLD.last_error, ''));
END;

CREATE TRIGGER operator_log_broker_forgotten AFTER DELETE ON outbox_broker
BEGIN
    INSERT INTO operator_log (at, action, subject, detail)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'broker_forgotten',
            'outbox', 'no longer published to the broker of prefix ' || OLD.amqp_prefix ||
            ' (recorded ' || OLD.recorded_at || ')');
END;
