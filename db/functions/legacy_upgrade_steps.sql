-- The steps both legacy upgrades (legacy_upgrade_events, legacy_upgrade_deliveries) take on
-- an adopted table, once each: each script includes this file first and drops the helpers
-- again at its end (legacy_upgrade_steps_drop.sql), so they never stay in the schema.
-- CREATE INDEX CONCURRENTLY cannot run inside a function: for deferred indexes the helpers
-- only return the statements, which the script runs at top level with \gexec.

CREATE OR REPLACE FUNCTION alerts_legacy_accept_null(target regclass, engine_columns name[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: every column of target that is NOT NULL without a default and is not one of
-- engine_columns (a legacy-only column every engine INSERT would fail on) accepts NULL from
-- now on, recorded in alerts_legacy_upgrade_log; values are kept. Lock: ACCESS EXCLUSIVE on
-- target for each metadata change, within the caller's lock_timeout.
DECLARE
    legacy_column name;
BEGIN
    FOR legacy_column IN
        SELECT a.attname
          FROM pg_attribute a
         WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attnotnull AND NOT a.atthasdef
           AND a.attname <> ALL (engine_columns)
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL', target, legacy_column);
        INSERT INTO alerts_legacy_upgrade_log (kind, table_name, detail)
        VALUES ('dropped_not_null', target::text, jsonb_build_object('column', legacy_column));
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION alerts_legacy_invalid_index_drops(target regclass)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Changes nothing: the DROP INDEX CONCURRENTLY statements for the deferred indexes of target
-- whose earlier rebuild failed and left an INVALID index under the name.
    SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I', c.relname)
      FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid
      JOIN alerts_legacy_upgrade_log l
        ON l.kind = 'deferred_index' AND l.table_name = target::text AND l.detail ->> 'name' = c.relname
     WHERE i.indrelid = target AND NOT i.indisvalid
$$;

CREATE OR REPLACE FUNCTION alerts_legacy_deferred_index_builds(target regclass)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Changes nothing: the CREATE INDEX CONCURRENTLY statements for the indexes of target an
-- earlier version of the upgrade dropped, recorded as 'deferred_index' and did not rebuild.
    SELECT regexp_replace(l.detail ->> 'definition', '^CREATE INDEX ', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS ')
      FROM alerts_legacy_upgrade_log l
     WHERE l.kind = 'deferred_index' AND l.table_name = target::text
       AND to_regclass(format('public.%I', l.detail ->> 'name')) IS NULL
     ORDER BY l.id
$$;

CREATE OR REPLACE FUNCTION alerts_legacy_add_checks(target regclass, wanted jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: each CHECK of wanted ({"name": "CHECK (...)"}) that target lacks by that name is
-- added NOT VALID: new and updated rows are checked from now on, existing rows only when
-- alerts_legacy_validate() runs. A constraint of that name already there is kept.
-- Lock: SHARE ROW EXCLUSIVE on target for each, briefly, within the caller's lock_timeout.
DECLARE
    check_name text;
    definition text;
BEGIN
    FOR check_name, definition IN
        SELECT w.key, w.value
          FROM jsonb_each_text(wanted) AS w
         WHERE NOT EXISTS (SELECT 1 FROM pg_constraint pc WHERE pc.conrelid = target AND pc.conname = w.key)
         ORDER BY w.key
    LOOP
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', target, check_name, definition);
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION alerts_legacy_validate(target regclass, check_names name[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
-- Guarantees: each CHECK of check_names on target that is still NOT VALID is validated
-- against the existing rows (or the call fails, naming it). Lock: SHARE UPDATE EXCLUSIVE on
-- target, which lets reads and writes go on.
DECLARE
    unvalidated name;
BEGIN
    FOR unvalidated IN
        SELECT conname FROM pg_constraint
         WHERE conrelid = target AND contype = 'c' AND NOT convalidated AND conname = ANY (check_names)
         ORDER BY conname
    LOOP
        EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', target, unvalidated);
    END LOOP;
END;
$$;

-- Nobody but the deployer calls them, even if a failed upgrade leaves them behind until its rerun.
REVOKE ALL ON FUNCTION alerts_legacy_accept_null(regclass, name[]), alerts_legacy_invalid_index_drops(regclass),
    alerts_legacy_deferred_index_builds(regclass), alerts_legacy_add_checks(regclass, jsonb),
    alerts_legacy_validate(regclass, name[]) FROM PUBLIC;
