-- The retry schedule, one function so that the runner and psql apply the same rule:
-- retry_base doubling per attempt already made, capped at retry_max, plus up to
-- retry_jitter_pct of random jitter (all three in alerts_config).
CREATE OR REPLACE FUNCTION alerts_retry_delay(attempts_made integer)
RETURNS interval
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT least(c.retry_max, c.retry_base * power(2, least(greatest(attempts_made, 1) - 1, 30)))
           * (1 + random() * c.retry_jitter_pct / 100)
      FROM alerts_config c
$$;
COMMENT ON FUNCTION alerts_retry_delay(integer) IS
    'How long a delivery waits before its next attempt after attempts_made attempts: retry_base * 2^(attempts_made - 1), capped at retry_max, plus up to retry_jitter_pct jitter. Example: SELECT alerts_retry_delay(3);';
