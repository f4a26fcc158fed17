-- Verify alerts_v2:source_indexes: each index is valid where the deploying role could build it.
SELECT 1 / (count(*) FILTER (WHERE i.indisvalid) = count(*))::integer
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relname IN ('risk_indices_calculated_at_idx', 'risk_indices_reading_idx',
                     'asset_risk_calculated_at_idx', 'asset_risk_reading_idx',
                     'events_inserted_at_idx', 'user_alert_prefs_user_id_idx');
