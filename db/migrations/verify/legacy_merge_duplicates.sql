-- Verify alerts_v2:legacy_merge_duplicates
-- Division by zero while two alert events share a fingerprint (deliveries are proved
-- by the unique key indexes_concurrently builds next; no scan of them here).
SELECT 1 / (count(*) = 0)::integer
  FROM (SELECT event_fingerprint FROM alert_events GROUP BY event_fingerprint HAVING count(*) > 1) duplicates;
