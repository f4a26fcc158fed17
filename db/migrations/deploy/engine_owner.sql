-- Deploy alerts_v2:engine_owner
-- The engine's functions stop running as whoever deployed them (often a superuser): they are
-- owned by alerts_owner, a NOLOGIN role that is not superuser, has no BYPASSRLS and holds only
-- what the pipeline needs (SELECT on the host input tables; ownership of the engine tables,
-- or row privileges on tables adopted from a pre-v2 installation). A host role that can
-- change what a phase reads (a view or policy on its own table calling its own function)
-- then runs that function as alerts_owner, never as a superuser.
-- Guarantees: alerts_owner exists, the deployer is a member of it, and alerts_assign_owner()
-- has handed it every engine function and table. Every later deploy script ends with
-- `SELECT alerts_assign_owner();`.
BEGIN;
SET LOCAL lock_timeout = '5s';
\ir ../checks/roles_preflight.sql

DO $$
BEGIN
    IF to_regrole('alerts_owner') IS NULL THEN
        BEGIN
            CREATE ROLE alerts_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a concurrent deploy into another database
        END;
    END IF;
    -- Created by a DBA beforehand: it must not be more than the engine needs.
    IF EXISTS (SELECT 1 FROM pg_roles
                WHERE rolname = 'alerts_owner' AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcanlogin)) THEN
        RAISE EXCEPTION 'role alerts_owner may be superuser, BYPASSRLS, CREATEROLE or LOGIN: run ALTER ROLE alerts_owner NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOLOGIN; then deploy again';
    END IF;
    -- The deployer replaces the engine's functions later, which takes being a member of their owner.
    IF NOT pg_has_role(current_user, 'alerts_owner', 'USAGE') THEN
        EXECUTE format('GRANT alerts_owner TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO alerts_owner;

\ir ../../functions/assign_owner.sql
REVOKE ALL ON FUNCTION alerts_assign_owner(), alerts_table_is_adopted(text) FROM PUBLIC;
SELECT alerts_assign_owner();
COMMIT;
