-- Deploy alerts_v2:digests (fenced outcomes; a digest put back in the queue while a newer one
-- waits for its window is merged into it; Phase D never attaches a member to a digest in flight)
-- The tables are those of digests@v1.1; this version replaces its functions.
BEGIN;
SET LOCAL lock_timeout = '5s';
-- The old signatures go: the runner of this release calls only the new ones.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS claim_digests(integer, text[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS record_digest_outcomes(text, bigint[], text[]);
\ir ../../functions/phase_d_digests.sql
\ir ../../functions/claim_digests.sql
\ir ../../functions/requeue_digests.sql
\ir ../../functions/record_digest_outcomes.sql
\ir ../../functions/reclaim_expired_digests.sql
\ir ../../functions/count_due_digests.sql
REVOKE ALL ON FUNCTION alerts_phase_d(), claim_digests(integer, text[]), count_due_digests(integer, text[]),
    alerts_requeue_digests(bigint[], bigint[], text[], boolean),
    record_digest_outcomes(text, bigint[], bigint[], text[]), reclaim_expired_digests() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_phase_d(), claim_digests(integer, text[]), count_due_digests(integer, text[]),
    record_digest_outcomes(text, bigint[], bigint[], text[]), reclaim_expired_digests() TO alerts_runner;
GRANT EXECUTE ON FUNCTION count_due_digests(integer, text[]) TO alerts_readonly;
SELECT alerts_assign_owner();
COMMIT;
