-- Who made each change of the operator log: the operator's name as the
-- command that made it gave it (tradehub's operator commands give
-- TRADEHUB_OPERATOR, else the login name that ran them). SQLite has no
-- session settings: such a command writes the name into `operator_actor`
-- at the start of its transaction and deletes it before the commit (SQLite
-- has one writer at a time, so no other transaction ever sees it), and the
-- triggers below, those of migration 0018 made again, read it. NULL for a
-- change made otherwise (SQL by hand) and for rows written before this
-- migration. Kept in step with the other backend's migration of the same
-- number.
ALTER TABLE operator_log ADD COLUMN operator TEXT;

CREATE TABLE operator_actor (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    name  TEXT NOT NULL
);

DROP TRIGGER operator_log_partner_added;
CREATE TRIGGER operator_log_partner_added AFTER INSERT ON partners
BEGIN
    INSERT INTO operator_log (at, action, subject, detail, operator)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'partner_added', NEW.id,
            'named ' || NEW.name,
            (SELECT name FROM operator_actor WHERE id = 1));
END;

DROP TRIGGER operator_log_token_issued;
CREATE TRIGGER operator_log_token_issued AFTER UPDATE OF token_hash ON partners
WHEN OLD.token_hash IS NOT NEW.token_hash
BEGIN
    INSERT INTO operator_log (at, action, subject, detail, operator)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'token_issued', NEW.id,
            'a new API token; the one before no longer works',
            (SELECT name FROM operator_actor WHERE id = 1));
END;

DROP TRIGGER operator_log_role;
CREATE TRIGGER operator_log_role AFTER UPDATE OF agency ON partners
WHEN OLD.agency IS NOT NEW.agency
BEGIN
    INSERT INTO operator_log (at, action, subject, detail, operator)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'role_changed', NEW.id,
            'acts for ' || COALESCE(NEW.agency, 'no agency') || ' (before: ' ||
            COALESCE(OLD.agency, 'no agency') || ')',
            (SELECT name FROM operator_actor WHERE id = 1));
END;

DROP TRIGGER operator_log_suspension;
CREATE TRIGGER operator_log_suspension
AFTER UPDATE OF suspended_at, suspended_reason ON partners
WHEN OLD.suspended_at IS NOT NEW.suspended_at
  OR OLD.suspended_reason IS NOT NEW.suspended_reason
BEGIN
    INSERT INTO operator_log (at, action, subject, detail, operator)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
            CASE WHEN NEW.suspended_at IS NULL THEN 'partner_reinstated'
                 ELSE 'partner_suspended' END,
            NEW.id,
            CASE WHEN NEW.suspended_at IS NULL
                 THEN 'suspended since ' || COALESCE(OLD.suspended_at, '?') ||
                      ': ' || COALESCE(OLD.suspended_reason, '')
                 ELSE COALESCE(NEW.suspended_reason, '') END,
            (SELECT name FROM operator_actor WHERE id = 1));
END;

DROP TRIGGER operator_log_trader_added;
CREATE TRIGGER operator_log_trader_added AFTER INSERT ON partner_trader_ids
BEGIN
    INSERT INTO operator_log (at, action, subject, detail, operator)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'trader_added', NEW.partner_id,
            'submits for trader ' || NEW.trader_id,
            (SELECT name FROM operator_actor WHERE id = 1));
END;

DROP TRIGGER operator_log_outbox_retried;
CREATE TRIGGER operator_log_outbox_retried AFTER UPDATE OF attempts ON outbox
WHEN OLD.attempts > 0 AND NEW.attempts = 0
BEGIN
    INSERT INTO operator_log (at, action, subject, detail, operator)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'outbox_retried',
            'outbox ' || NEW.seq,
            NEW.message_id || ' to ' || NEW.exchange || ' ' || NEW.routing_key ||
            ' after ' || OLD.attempts || ' attempt(s)' ||
            CASE WHEN OLD.parked_at IS NOT NULL
                 THEN ', parked since ' || OLD.parked_at ELSE '' END ||
            ': ' || COALESCE(OLD.last_error, ''),
            (SELECT name FROM operator_actor WHERE id = 1));
END;

DROP TRIGGER operator_log_broker_forgotten;
CREATE TRIGGER operator_log_broker_forgotten AFTER DELETE ON outbox_broker
BEGIN
    INSERT INTO operator_log (at, action, subject, detail, operator)
    VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'broker_forgotten',
            'outbox', 'no longer published to the broker of prefix ' || OLD.amqp_prefix ||
            ' (recorded ' || OLD.recorded_at || ')',
            (SELECT name FROM operator_actor WHERE id = 1));
END;
