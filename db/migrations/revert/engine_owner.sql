-- Revert alerts_v2:engine_owner
-- Gives the engine's functions and tables back to the reverting role (as before the change)
-- and takes back alerts_owner's privileges in this database. The role itself is cluster-wide
-- and may serve other databases, so it is kept.
BEGIN;
SET LOCAL lock_timeout = '5s';
DO $$
DECLARE
    object record;
BEGIN
    FOR object IN
        SELECT 'FUNCTION' AS kind, p.oid::regprocedure::text AS name
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND p.proowner = 'alerts_owner'::regrole
        UNION ALL
        SELECT 'TABLE', c.oid::regclass::text
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
           AND c.relowner = 'alerts_owner'::regrole
        UNION ALL
        SELECT 'SEQUENCE', c.oid::regclass::text
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
           AND c.relowner = 'alerts_owner'::regrole
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', object.kind, object.name, current_user);
    END LOOP;
END
$$;
DROP FUNCTION IF EXISTS alerts_assign_owner();
DROP FUNCTION IF EXISTS alerts_table_is_adopted(text);
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM alerts_owner;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM alerts_owner;
REVOKE ALL ON SCHEMA public FROM alerts_owner;
COMMIT;
