-- What a digest claim would take now, without taking it.

CREATE OR REPLACE FUNCTION count_due_digests(up_to integer DEFAULT NULL, channels text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT count(*)
      FROM (SELECT 1
              FROM alert_digests g
             WHERE g.status = 'queued'
               AND coalesce(g.next_retry_at, g.created_at) <= now()
               AND (channels IS NULL OR g.channel = ANY (channels))
             LIMIT up_to) due
$$;
COMMENT ON FUNCTION count_due_digests(integer, text[]) IS
    'Counts the digests claim_digests would hand out now, of the given channels (NULL: all), stopping at up_to (NULL: no limit). Changes nothing. Example: SELECT count_due_digests();';
