-- The row budget of one Phase B call (alerts_config.fanout_chunk_rows), for the runner: when a
-- call is cancelled by a statement_timeout, the runner halves the budget for the rest of its run.
-- Changes nothing.
CREATE OR REPLACE FUNCTION alerts_fanout_chunk_rows()
RETURNS integer
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT coalesce((SELECT c.fanout_chunk_rows FROM alerts_config c), 50000)
$$;
COMMENT ON FUNCTION alerts_fanout_chunk_rows() IS
    'The (event, user) pairs one Phase B call considers by default (alerts_config.fanout_chunk_rows). Example: SELECT alerts_fanout_chunk_rows();';
REVOKE ALL ON FUNCTION alerts_fanout_chunk_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION alerts_fanout_chunk_rows() TO alerts_runner;
