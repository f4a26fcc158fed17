-- A claimed delivery the provider accepted becomes sent (fenced by its claim token).

CREATE OR REPLACE FUNCTION mark_deliveries_sent(ids bigint[], claim_tokens bigint[],
                                                provider_message_ids text[] DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: only sending -> sent, with sent_at = now(), for rows still 'sending' under the
-- caller's claim_token. A row put back after its lease ended (queued), failed, skipped, sent or
-- claimed again since is untouched: its message may go out once more (at-least-once), but no
-- caller can turn a row it does not hold into 'sent'. Lock: row locks of the UPDATE
-- (alerts_record_delivery_outcomes()).
    SELECT alerts_record_delivery_outcomes('mark_deliveries_sent', ids, claim_tokens,
                                           array_fill('sent'::text, ARRAY[coalesce(cardinality(ids), 0)]),
                                           provider_message_ids)
$$;
COMMENT ON FUNCTION mark_deliveries_sent(bigint[], bigint[], text[]) IS
    'Marks claimed (sending) deliveries sent, with the provider''s message ids, where they still carry the given claim tokens. Example: SELECT mark_deliveries_sent(ARRAY[42], ARRAY[17], ARRAY[''msg-1'']);';
