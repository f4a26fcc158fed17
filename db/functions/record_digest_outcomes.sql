-- What a sender did with the digests it claimed, for the digest and its member deliveries alike.

CREATE OR REPLACE FUNCTION record_digest_outcomes(outcome text, ids bigint[], claim_tokens bigint[],
                                                  details text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
-- Guarantees: changes only digests still 'sending' under the caller's claim_token. outcome 'sent'
-- (details: provider ids) finishes such a digest and its queued members alike (a digest put back
-- after its lease expired is not theirs any more, and may go out again); 'failed' or 'skipped'
-- (details: reasons) finish a 'sending' digest and its members; 'requeue' (details: errors)
-- and 'release' put it back as alerts_requeue_digests() says. Lock: row locks of the UPDATEs.
DECLARE
    changed integer;
    returned jsonb;
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('sent', 'failed', 'skipped', 'requeue', 'release') THEN
        RAISE EXCEPTION 'record_digest_outcomes: outcome must be sent, failed, skipped, requeue or release, got %',
            coalesce(outcome, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM alerts_check_claim_tokens('record_digest_outcomes', ids, claim_tokens);
    IF outcome IN ('requeue', 'release') THEN
        returned := alerts_requeue_digests(ids, claim_tokens, details, outcome = 'release');
        RETURN (returned ->> 'requeued')::integer + (returned ->> 'failed')::integer
               + (returned ->> 'merged')::integer;
    END IF;
    WITH outcomes AS (
        SELECT o.id, o.claim_token, left(o.detail, 1900) AS detail
          FROM unnest(ids, claim_tokens, details) AS o (id, claim_token, detail)
    ),
    finished_digests AS (
        UPDATE alert_digests g
           SET status = outcome,
               sent_at = CASE WHEN outcome = 'sent' THEN now() END,
               provider_message_id = CASE WHEN outcome = 'sent' THEN o.detail ELSE g.provider_message_id END,
               last_error = CASE WHEN outcome = 'sent' THEN NULL
                                 ELSE coalesce(o.detail, outcome || ' without a reason') END,
               next_retry_at = NULL, lease_expires_at = NULL
          FROM outcomes o
         WHERE g.id = o.id AND g.claim_token = o.claim_token
           AND g.status = 'sending'
        RETURNING g.id, g.status, g.attempts, g.sent_at, g.provider_message_id, g.last_error
    ),
    finished_members AS (
        UPDATE user_alert_deliveries d
           SET status = fd.status, attempts = fd.attempts, sent_at = fd.sent_at,
               provider_message_id = fd.provider_message_id, last_error = fd.last_error
          FROM finished_digests fd
         WHERE d.digest_id = fd.id AND d.status IN ('queued', 'failed')
           AND (fd.status = 'sent' OR d.status = 'queued')
        RETURNING d.id
    )
    SELECT count(*) INTO changed FROM finished_digests;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION record_digest_outcomes(text, bigint[], bigint[], text[]) IS
    'Records what a sender did with claimed digests: sent, failed, skipped, requeue or release, for digests still carrying the given claim tokens; a final outcome also finishes the digest''s member deliveries. Example: SELECT record_digest_outcomes(''sent'', ARRAY[7], ARRAY[17], ARRAY[''msg-1'']);';
