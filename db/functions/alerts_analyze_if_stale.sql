-- Refreshes planner statistics of the tables Phase B joins when they changed a
-- lot since their last ANALYZE (a bulk load autovacuum has not seen yet).
-- A planner that believes a table is empty picks nested loops: 25 s instead
-- of 0.13 s for 4,240 deliveries was measured here (FIELD-NOTES.md).
CREATE OR REPLACE FUNCTION alerts_analyze_if_stale()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes no rows; only statistics, and only of tables its owner may analyze.
-- Lock: none beyond ANALYZE's own (SHARE UPDATE EXCLUSIVE per table, waits for another ANALYZE).
DECLARE
    stale regclass;
    analyzed integer := 0;
BEGIN
    FOR stale IN
        SELECT st.relid::regclass
          FROM pg_stat_user_tables st
          JOIN pg_class c ON c.oid = st.relid
         WHERE st.schemaname = 'public'
           -- Only what this function's owner (alerts_owner) may ANALYZE: tables it owns, and on
           -- PostgreSQL 17+ tables it was granted MAINTAIN on. Any other table is left to autovacuum
           -- instead of a WARNING per run (a host table the engine does not own, an adopted table).
           AND (pg_has_role(c.relowner, 'USAGE')
                OR (current_setting('server_version_num')::integer >= 170000
                    AND has_table_privilege(c.oid, 'MAINTAIN')))
           AND st.relname IN ('users', 'user_plans', 'plan_settings', 'user_alert_prefs',
                              'alert_events', 'user_alert_deliveries')
           -- 50 (autovacuum's own threshold), not 500: a hundred events added to a table analysed empty made
           -- the fanout plan for 1 event instead of 100 (merge joins, sorts on disk: +30% on
           -- 1,000,000 deliveries), and the foreign-key check of each delivery seq-scan alert_events.
           AND st.n_mod_since_analyze > 50 + 0.2 * greatest(st.n_live_tup - st.n_mod_since_analyze, 0)
    LOOP
        EXECUTE format('ANALYZE %s', stale);
        analyzed := analyzed + 1;
    END LOOP;
    RETURN analyzed;
END;
$$;
COMMENT ON FUNCTION alerts_analyze_if_stale() IS
    'ANALYZEs the Phase B input tables whose rows changed a lot since their last ANALYZE; returns how many it analysed.';
