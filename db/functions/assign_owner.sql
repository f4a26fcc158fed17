-- Hands the engine's functions and tables to alerts_owner, the NOLOGIN role they run as
-- (SECURITY DEFINER). Every deploy script that creates or replaces a function or creates a
-- table ends with `SELECT alerts_assign_owner();` (CONTRIBUTING.md, "Changing the SQL").
--
-- What counts as the engine's, in schema public:
--   functions  named alerts_*, or SECURITY DEFINER with the engine's pinned search_path
--              (pg_catalog, public, pg_temp): every SECURITY DEFINER function of the engine is
--   sequences  alerts_* sequences that belong to no table (a column's sequence follows its table)
--   tables     alert_events, user_alert_deliveries, alert_digests and alerts_*, except a table
--              adopted from a pre-v2 installation (alerts_legacy_upgrade_log): the host
--              application keeps owning it and alerts_owner gets the privileges it needs on it
--   host input tables (users, user_plans, plan_settings, user_alert_prefs, events,
--              risk_indices, asset_risk): SELECT, nothing more
-- alerts_owner may create in public only while this function re-owns objects (ALTER ... OWNER
-- TO requires it of a non-superuser); the privilege is taken back before it returns.
-- Whether a table was adopted from a pre-v2 installation (legacy_adopt records it).
CREATE OR REPLACE FUNCTION alerts_table_is_adopted(table_name text)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM alerts_legacy_upgrade_log l
                    WHERE l.kind = 'adopted_table' AND l.table_name = $1);
$$;
COMMENT ON FUNCTION alerts_table_is_adopted(text) IS
    'Whether the named engine table existed before the engine (adopted by legacy_adopt), so the host application keeps owning it. Example: SELECT alerts_table_is_adopted(''alert_events'');';

CREATE OR REPLACE FUNCTION alerts_assign_owner()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: afterwards every engine function and non-adopted engine table of schema public is
-- owned by alerts_owner, and alerts_owner holds exactly the table privileges listed above;
-- returns how many objects changed owner. Runs as the deployer (SECURITY INVOKER), who must
-- be superuser or a member of alerts_owner.
-- Lock: ALTER ... OWNER's ACCESS EXCLUSIVE on each re-owned table, bounded by the caller's lock_timeout.
DECLARE
    engine_search_path constant text := 'search_path=pg_catalog, public, pg_temp';
    owner_oid oid := to_regrole('alerts_owner');
    had_create boolean;
    object record;
    sequence_name text;
    reowned integer := 0;
BEGIN
    IF owner_oid IS NULL THEN
        RAISE EXCEPTION 'role alerts_owner does not exist'
              USING HINT = 'deploy the engine_owner change first, or have a DBA run CREATE ROLE alerts_owner NOLOGIN';
    END IF;
    had_create := has_schema_privilege(owner_oid, 'public', 'CREATE');
    IF NOT had_create THEN
        GRANT CREATE ON SCHEMA public TO alerts_owner;
    END IF;

    FOR object IN
        SELECT 'FUNCTION' AS kind, p.oid::regprocedure::text AS name
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND p.proowner <> owner_oid
           AND (p.proname LIKE 'alerts\_%' OR (p.prosecdef AND engine_search_path = ANY (p.proconfig)))
        UNION ALL
        SELECT 'TABLE', c.oid::regclass::text
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relkind IN ('r', 'p')
           AND c.relowner <> owner_oid
           AND (c.relname IN ('alert_events', 'alert_digests', 'user_alert_deliveries') OR c.relname LIKE 'alerts\_%')
           AND NOT alerts_table_is_adopted(c.relname)
        UNION ALL
        -- Free-standing sequences (alerts_claim_token_seq); a column's own sequence follows its table.
        SELECT 'SEQUENCE', c.oid::regclass::text
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relkind = 'S'
           AND c.relowner <> owner_oid
           AND c.relname LIKE 'alerts\_%'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
         ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO alerts_owner', object.kind, object.name);
        reowned := reowned + 1;
    END LOOP;

    -- Adopted tables stay the host application's; their rows and sequences are granted instead.
    FOR object IN
        SELECT c.oid::regclass::text AS name
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relname IN ('alert_events', 'user_alert_deliveries')
           AND c.relowner <> owner_oid
           AND alerts_table_is_adopted(c.relname)
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO alerts_owner', object.name);
        FOR sequence_name IN
            SELECT d.objid::regclass::text
              FROM pg_depend d
              JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             WHERE d.classid = 'pg_class'::regclass AND d.refobjid = object.name::regclass
               AND d.deptype IN ('a', 'i')
        LOOP
            EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO alerts_owner', sequence_name);
        END LOOP;
    END LOOP;

    -- The host's input tables: read, never written.
    FOR object IN
        SELECT c.oid::regclass::text AS name
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relname IN ('users', 'user_plans', 'plan_settings', 'user_alert_prefs',
                             'events', 'risk_indices', 'asset_risk')
           AND NOT has_table_privilege(owner_oid, c.oid, 'SELECT')
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO alerts_owner', object.name);
    END LOOP;

    IF NOT had_create THEN
        REVOKE CREATE ON SCHEMA public FROM alerts_owner;
    END IF;
    RETURN reowned;
END;
$$;
COMMENT ON FUNCTION alerts_assign_owner() IS
    'Makes alerts_owner the owner of every engine function and engine table (adopted tables get privileges instead) and grants it SELECT on the host input tables; returns how many objects changed owner. Call it at the end of every deploy script. Example: SELECT alerts_assign_owner();';
