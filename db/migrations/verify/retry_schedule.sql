-- Verify alerts_v2:retry_schedule
SELECT 1 / (alerts_retry_delay(1) > interval '0')::integer;
