-- Included at the top of the first deploy script of a fresh deploy (host_tables) and of an
-- upgrade from @v1.0/@v1.1 (engine_owner), inside its transaction, so that a deployer who may
-- not create the engine's roles is stopped before anything is deployed, with one line saying
-- which statements a DBA must run first.
--
-- The roles are cluster-wide: alerts_owner (owns the engine's functions and tables, NOLOGIN),
-- alerts_runner, alerts_readonly and alerts_host (NOLOGIN, granted to login roles). A superuser deploys
-- as is. Any other deployer (a managed database's admin) needs, for each missing role,
-- CREATEROLE, and needs to be a member of alerts_owner (to hand it the functions): with
-- CREATEROLE the deploy grants that itself (PostgreSQL 15 lets CREATEROLE grant any
-- non-superuser role; 16+ only roles it has ADMIN OPTION on, which it has on roles it created).
DO $roles_preflight$
DECLARE
    deployer pg_roles;
    missing_roles text[];
    owner_exists boolean := to_regrole('alerts_owner') IS NOT NULL;
    can_grant_owner boolean;
    statements text[] := '{}';
BEGIN
    SELECT * INTO deployer FROM pg_roles WHERE rolname = current_user;
    IF deployer.rolsuper THEN
        RETURN;
    END IF;
    SELECT array_agg(required.role_name ORDER BY required.position)
      INTO missing_roles
      FROM unnest(ARRAY['alerts_owner', 'alerts_runner', 'alerts_readonly', 'alerts_host']) WITH ORDINALITY AS required (role_name, position)
     WHERE to_regrole(required.role_name) IS NULL;
    IF missing_roles IS NOT NULL AND NOT deployer.rolcreaterole THEN
        statements := statements || ARRAY(SELECT format('CREATE ROLE %I NOLOGIN;', r) FROM unnest(missing_roles) AS r);
    END IF;
    can_grant_owner := deployer.rolcreaterole
        AND (current_setting('server_version_num')::integer < 160000
             OR NOT owner_exists
             OR pg_has_role(current_user, 'alerts_owner', 'USAGE WITH ADMIN OPTION'));
    IF NOT can_grant_owner
       AND NOT (owner_exists AND pg_has_role(current_user, 'alerts_owner', 'USAGE')) THEN
        statements := statements || format('GRANT alerts_owner TO %I;', current_user);
    END IF;
    IF cardinality(statements) > 0 THEN
        RAISE EXCEPTION '%', format(
            'deploying as %I (not superuser) needs roles it may not create or join: have a DBA run %s then deploy again',
            current_user, array_to_string(statements, ' '))
              USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$roles_preflight$;
