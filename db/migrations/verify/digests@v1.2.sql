-- Verify alerts_v2:digests (fenced outcomes; the claim returns a claim_token)
SELECT 'record_digest_outcomes(text, bigint[], bigint[], text[])'::regprocedure,
       'reclaim_expired_digests()'::regprocedure, 'alerts_phase_d()'::regprocedure,
       'count_due_digests(integer, text[])'::regprocedure;
SELECT 1 / count(*)::integer FROM pg_proc
 WHERE oid = 'claim_digests(integer, text[])'::regprocedure AND 'claim_token' = ANY (proargnames);
SELECT 1 / (to_regprocedure('record_digest_outcomes(text, bigint[], text[])') IS NULL)::integer;
