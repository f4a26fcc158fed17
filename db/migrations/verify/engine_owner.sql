-- Verify alerts_v2:engine_owner
-- Division by zero unless alerts_owner is a plain role owning every SECURITY DEFINER function of
-- the engine (the ones alerts_assign_owner() hands over; a host's own functions are not ours).
SELECT 1 / count(*) FROM pg_roles
 WHERE rolname = 'alerts_owner' AND NOT (rolsuper OR rolbypassrls OR rolcreaterole OR rolcanlogin);
SELECT 1 / (count(*) = 0)::integer FROM pg_proc
 WHERE pronamespace = 'public'::regnamespace AND prosecdef AND proowner <> 'alerts_owner'::regrole
   AND (proname LIKE 'alerts\_%' OR 'search_path=pg_catalog, public, pg_temp' = ANY (proconfig));
SELECT 'alerts_assign_owner()'::regprocedure;
