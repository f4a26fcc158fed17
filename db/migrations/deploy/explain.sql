-- Deploy alerts_v2:explain
-- alerts_explain(user_id, alert_event_id): why a user gets an alert or not, for support in psql.
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../../functions/alerts_explain.sql
REVOKE ALL ON FUNCTION alerts_explain(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_explain(bigint, bigint) TO alerts_runner, alerts_readonly;
SELECT alerts_assign_owner();
COMMIT;
