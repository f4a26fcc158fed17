-- Verify alerts_v2:digests_indexes
-- Division by zero unless both indexes exist and are valid and both constraints are validated.
SELECT 1 / (count(*) = 2)::integer
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relname IN ('user_alert_deliveries_digest_idx', 'user_alert_deliveries_undigested_idx') AND i.indisvalid;
SELECT 1 / (count(*) = 2)::integer
  FROM pg_constraint
 WHERE conname IN ('user_alert_deliveries_digest_id_fkey', 'user_alert_deliveries_digest_only_for_digests')
   AND convalidated;
