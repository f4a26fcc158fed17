-- Deploy alerts_v2:least_privilege
-- The owner's limits on what a runner login may ask of the engine, and EXECUTE taken back from
-- PUBLIC on the helpers that still had it (roles.sql's promise: PUBLIC executes none of ours).
--   alerts_config.max_claim_batch: the most rows one claim_deliveries()/claim_digests() call may
--     take; a bigger batch is refused (the runner's --batch-size is at most 10000).
--   alerts_config.min_retention: the shortest retention alerts_prune() accepts; at least a day,
--     the longest window a quota (today's sends) or a digest period (hourly or daily) counts over.
--   alerts_config.max_prune_batch: the most rows of each kind one alerts_prune() call deletes; a
--     bigger batch is clamped (the runner calls it until it returns 0).
--   alerts_config.max_phase_silence: how long a phase may go without a successful run before
--     alerts_status() reports it stalled, naming whoever holds its advisory lock.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE alerts_config
    ADD COLUMN IF NOT EXISTS max_claim_batch integer NOT NULL DEFAULT 10000,
    ADD COLUMN IF NOT EXISTS min_retention interval NOT NULL DEFAULT interval '2 days',
    ADD COLUMN IF NOT EXISTS max_prune_batch integer NOT NULL DEFAULT 10000,
    ADD COLUMN IF NOT EXISTS max_phase_silence interval NOT NULL DEFAULT interval '15 minutes';
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_config_max_claim_batch_range') THEN
        ALTER TABLE alerts_config ADD CONSTRAINT alerts_config_max_claim_batch_range
            CHECK (max_claim_batch BETWEEN 1 AND 100000);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_config_min_retention_a_day') THEN
        ALTER TABLE alerts_config ADD CONSTRAINT alerts_config_min_retention_a_day
            CHECK (min_retention >= interval '1 day');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_config_max_prune_batch_range') THEN
        ALTER TABLE alerts_config ADD CONSTRAINT alerts_config_max_prune_batch_range
            CHECK (max_prune_batch BETWEEN 1 AND 100000);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_config_max_phase_silence_positive') THEN
        ALTER TABLE alerts_config ADD CONSTRAINT alerts_config_max_phase_silence_positive
            CHECK (max_phase_silence > interval '0');
    END IF;
END
$$;
COMMENT ON COLUMN alerts_config.max_claim_batch IS
    'Phase C: the most rows one claim_deliveries()/claim_digests() call may take; a bigger batch is refused.';
COMMENT ON COLUMN alerts_config.min_retention IS
    'alerts_prune(): the shortest retention it accepts (at least a day: quotas count today''s sends, digests a period).';
COMMENT ON COLUMN alerts_config.max_prune_batch IS
    'alerts_prune(): the most rows of each kind one call deletes; a bigger batch is clamped.';
COMMENT ON COLUMN alerts_config.max_phase_silence IS
    'alerts_status(): a phase that ran in the last 7 days without a successful run for longer than this is stalled.';
REVOKE ALL ON FUNCTION alerts_lock_key(text), alerts_lock_skipped(text), alerts_settings(),
    alerts_user_destination(users, text) FROM PUBLIC;
-- The lock key is a hash anyone could compute (alerts/locks.py does): runners and dashboards may
-- use it to watch or hold the phase locks; the other three are called only inside the engine.
GRANT EXECUTE ON FUNCTION alerts_lock_key(text) TO alerts_runner, alerts_readonly;
SELECT alerts_assign_owner();
COMMIT;
