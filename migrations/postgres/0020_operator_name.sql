-- Who made each change of the operator log, as well as the database role:
-- the operator's name as the command that made it gave it (tradehub's
-- operator commands give TRADEHUB_OPERATOR, else the login name that ran
-- them, through the transaction-local setting `tradehub.operator`). NULL
-- for a change made otherwise (SQL by hand) and for rows written before
-- this migration. Kept in step with the other backend's migration of the
-- same number.
ALTER TABLE operator_log ADD COLUMN operator TEXT;

CREATE OR REPLACE FUNCTION operator_log_write(action TEXT, subject TEXT, detail TEXT)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO operator_log (at, action, subject, detail, by_role, operator)
    VALUES (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            action, subject, detail, session_user,
            NULLIF(current_setting('tradehub.operator', true), ''));
$$;
