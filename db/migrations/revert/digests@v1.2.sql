-- Revert alerts_v2:digests to its @v1.1 version (unfenced), keeping the tables and their rows.
BEGIN;
DROP FUNCTION IF EXISTS record_digest_outcomes(text, bigint[], bigint[], text[]);
DROP FUNCTION IF EXISTS alerts_requeue_digests(bigint[], bigint[], text[], boolean);
DROP FUNCTION IF EXISTS claim_digests(integer, text[]);
COMMIT;
\ir ../deploy/digests@v1.1.sql
