-- Verify alerts_v2:lease_seconds
SELECT 1 / (alerts_lease_seconds() > 0)::integer;
