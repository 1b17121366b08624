-- What operators changed, for the auditor: accounts added, API tokens
-- issued again, roles, suspensions and reinstatements, trader identifiers,
-- outbox messages put back for another round of attempts, and a broker
-- record forgotten. Written by triggers in the transaction of the change
-- itself, so that a change made any way (the CLI, or SQL by hand) is on
-- it; append-only, as `events` is. `by_role` is the database role that made
-- the change (PostgreSQL; NULL on SQLite, which has none).
-- Kept in step with the other backend's migration of the same number.
CREATE TABLE operator_log (
    seq      BIGSERIAL PRIMARY KEY,
    at       TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL,
    by_role  TEXT
);

CREATE FUNCTION operator_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the operator log is append-only'; END $$;
CREATE TRIGGER operator_log_no_change BEFORE UPDATE OR DELETE ON operator_log
FOR EACH ROW EXECUTE FUNCTION operator_log_append_only();

CREATE FUNCTION operator_log_write(action TEXT, subject TEXT, detail TEXT)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO operator_log (at, action, subject, detail, by_role)
    VALUES (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            action, subject, detail, session_user);
$$;

CREATE FUNCTION operator_log_partners() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM operator_log_write('partner_added', NEW.id, 'named ' || NEW.name);
        RETURN NULL;
    END IF;
    IF OLD.token_hash IS DISTINCT FROM NEW.token_hash THEN
        PERFORM operator_log_write('token_issued', NEW.id,
            'a new API token; the one before no longer works');
    END IF;
    IF OLD.agency IS DISTINCT FROM NEW.agency THEN
        PERFORM operator_log_write('role_changed', NEW.id,
            'acts for ' || COALESCE(NEW.agency, 'no agency') || ' (before: ' ||
            COALESCE(OLD.agency, 'no agency') || ')');
    END IF;
    IF OLD.suspended_at IS DISTINCT FROM NEW.suspended_at
       OR OLD.suspended_reason IS DISTINCT FROM NEW.suspended_reason THEN
        IF NEW.suspended_at IS NULL THEN
            PERFORM operator_log_write('partner_reinstated', NEW.id,
                'suspended since ' || COALESCE(OLD.suspended_at, '?') || ': ' ||
                COALESCE(OLD.suspended_reason, ''));
        ELSE
            PERFORM operator_log_write('partner_suspended', NEW.id,
                COALESCE(NEW.suspended_reason, ''));
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER operator_log_partners AFTER INSERT OR UPDATE ON partners
FOR EACH ROW EXECUTE FUNCTION operator_log_partners();

CREATE FUNCTION operator_log_trader_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM operator_log_write('trader_added', NEW.partner_id,
        'submits for trader ' || NEW.trader_id);
    RETURN NULL;
END $$;
CREATE TRIGGER operator_log_trader_added AFTER INSERT ON partner_trader_ids
FOR EACH ROW EXECUTE FUNCTION operator_log_trader_added();

CREATE FUNCTION operator_log_outbox_retried() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM operator_log_write('outbox_retried', 'outbox ' || NEW.seq,
        NEW.message_id || ' to ' || NEW.exchange || ' ' || NEW.routing_key ||
        ' after ' || OLD.attempts || ' attempt(s)' ||
        CASE WHEN OLD.parked_at IS NOT NULL
             THEN ', parked since ' || OLD.parked_at ELSE '' END ||
        ': ' || COALESCE(OLD.last_error, ''));
    RETURN NULL;
END $$;
CREATE TRIGGER operator_log_outbox_retried AFTER UPDATE OF attempts ON outbox
FOR EACH ROW WHEN (OLD.attempts > 0 AND NEW.attempts = 0)
EXECUTE FUNCTION operator_log_outbox_retried();

CREATE FUNCTION operator_log_broker_forgotten() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM operator_log_write('broker_forgotten', 'outbox',
        'no longer published to the broker of prefix ' || OLD.amqp_prefix ||
        ' (recorded ' || OLD.recorded_at || ')');
    RETURN NULL;
END $$;
CREATE TRIGGER operator_log_broker_forgotten AFTER DELETE ON outbox_broker
FOR EACH ROW EXECUTE FUNCTION operator_log_broker_forgotten();
