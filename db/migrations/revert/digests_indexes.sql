-- Revert alerts_v2:digests_indexes
-- The indexes go with the digest_id column when digests is reverted; here only the
-- non-unique indexes are dropped (the constraints stay, NOT VALID is not restored).
DROP INDEX CONCURRENTLY IF EXISTS user_alert_deliveries_undigested_idx;
DROP INDEX CONCURRENTLY IF EXISTS user_alert_deliveries_digest_idx;
