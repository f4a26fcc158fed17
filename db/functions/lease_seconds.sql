-- How long a claim may stay 'sending' (alerts_config.lease_duration) in seconds, for the runner:
-- Phase C sizes its claims so that a claim is sent well within its lease at the channel's rate.
-- Changes nothing.
CREATE OR REPLACE FUNCTION alerts_lease_seconds()
RETURNS double precision
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT extract(epoch FROM coalesce((SELECT c.lease_duration FROM alerts_config c), interval '5 minutes'))::double precision
$$;
COMMENT ON FUNCTION alerts_lease_seconds() IS
    'The lease of a claimed delivery or digest in seconds (alerts_config.lease_duration, 5 minutes when unset). Example: SELECT alerts_lease_seconds();';
REVOKE ALL ON FUNCTION alerts_lease_seconds() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_lease_seconds() TO alerts_runner;
