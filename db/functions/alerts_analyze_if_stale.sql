-- Refreshes planner statistics of the tables Phase B joins when they changed a
-- lot since their last ANALYZE (a bulk load autovacuum has not seen yet).
-- A planner that believes a table is empty picks nested loops: 25 s instead
-- of 0.13 s for 4,240 deliveries was measured here (FIELD-NOTES.md).
-- It runs as alerts_owner, which may ANALYZE only the tables it owns (and, on PostgreSQL 17+,
-- those it was granted MAINTAIN on): a stale host table it may not analyse is left alone and
-- counted, and Phase B then plans without nested loops (db/functions/phase_b_fanout.sql).
CREATE OR REPLACE FUNCTION alerts_analyze_if_stale()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: changes no rows; only statistics, and only of tables its owner may analyse.
-- Returns how many stale input tables it could not analyse (0: every input's statistics are fresh).
-- Lock: none beyond ANALYZE's own (SHARE UPDATE EXCLUSIVE per table, waits for another ANALYZE).
DECLARE
    stale record;
    left_stale integer := 0;
BEGIN
    FOR stale IN
        SELECT st.relid::regclass AS relation,
               pg_has_role(c.relowner, 'USAGE')
               OR (current_setting('server_version_num')::integer >= 170000
                   AND has_table_privilege(c.oid, 'MAINTAIN')) AS may_analyze
          FROM pg_stat_user_tables st
          JOIN pg_class c ON c.oid = st.relid
         WHERE st.schemaname = 'public'
           AND st.relname IN ('users', 'user_plans', 'plan_settings', 'user_alert_prefs',
                              'alert_events', 'user_alert_deliveries')
           -- 50 (autovacuum's own threshold), not 500: a hundred events added to a table analysed empty made
           -- the fanout plan for 1 event instead of 100 (merge joins, sorts on disk: +30% on
           -- 1,000,000 deliveries), and the foreign-key check of each delivery seq-scan alert_events.
           AND st.n_mod_since_analyze > 50 + 0.2 * greatest(st.n_live_tup - st.n_mod_since_analyze, 0)
    LOOP
        IF stale.may_analyze THEN
            EXECUTE format('ANALYZE %s', stale.relation);
        ELSE
            left_stale := left_stale + 1;
        END IF;
    END LOOP;
    RETURN left_stale;
END;
$$;
COMMENT ON FUNCTION alerts_analyze_if_stale() IS
    'ANALYZEs the Phase B input tables whose rows changed a lot since their last ANALYZE and that its owner may analyse; returns how many stale ones it could not analyse. Example: SELECT alerts_analyze_if_stale();';
