-- Lock keys: alerts_lock_key() gives the bigint Python's hashlib gives (first 8 bytes of
-- sha256, signed big-endian), deterministically and distinctly per name; each phase takes
-- its own key; a skipped phase reports exactly the contract's skip object.
BEGIN;
SELECT plan(21);

-- Expected values computed independently:
--   int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)
SELECT is(alerts_lock_key('alerts_v2_phase_a'), -2154093782851673315::bigint, 'key of alerts_v2_phase_a matches Python');
SELECT is(alerts_lock_key('alerts_v2_phase_b'), -2463820459904419210::bigint, 'key of alerts_v2_phase_b matches Python');
SELECT is(alerts_lock_key('alerts_v2_phase_c'), -4356719177269416306::bigint, 'key of alerts_v2_phase_c matches Python');
SELECT is(alerts_lock_key('alerts_v2_migrate'), -1964277457817284017::bigint, 'key of alerts_v2_migrate matches Python');
SELECT is(alerts_lock_key('alerts_v2_phase_A'), 782412234576363394::bigint,
          'a name whose digest starts below 0x80 gives a positive key (sign handling)');
SELECT is(alerts_lock_key('Zürich-Ölpreis'), -8971055388461398960::bigint, 'a non-ASCII name is hashed as UTF-8');
SELECT is(alerts_lock_key(''), -2039914840885289964::bigint, 'the empty name has a key too');
SELECT is(alerts_lock_key(NULL), NULL, 'a NULL name gives NULL (STRICT)');

-- Deterministic.
SELECT is(alerts_lock_key('alerts_v2_phase_a'), alerts_lock_key('alerts_v2_' || 'phase_a'),
          'the same name gives the same key on every call');
SELECT volatility_is('alerts_lock_key', ARRAY['text'], 'immutable', 'alerts_lock_key is IMMUTABLE');

-- Distinct names give distinct keys.
SELECT isnt(alerts_lock_key('alerts_v2_phase_a'), alerts_lock_key('alerts_v2_phase_b'), 'phase a and b keys differ');
SELECT isnt(alerts_lock_key('alerts_v2_phase_b'), alerts_lock_key('alerts_v2_phase_c'), 'phase b and c keys differ');
SELECT isnt(alerts_lock_key('alerts_v2_phase_a'), alerts_lock_key('alerts_v2_phase_c'), 'phase a and c keys differ');
SELECT isnt(alerts_lock_key('alerts_v2_phase_a'), alerts_lock_key('alerts_v2_phase_A'), 'keys are case-sensitive');

-- The skip object, exactly (jsonb equality: no key missing, none extra).
SELECT is(alerts_lock_skipped('a'),
          '{"phase": "a", "locked": false, "skipped": true, "reason": "lock_not_acquired"}'::jsonb,
          'alerts_lock_skipped(''a'') is the contract''s skip object');
SELECT is(alerts_lock_skipped('b'),
          '{"phase": "b", "locked": false, "skipped": true, "reason": "lock_not_acquired"}'::jsonb,
          'alerts_lock_skipped(''b'') names phase b');

-- Each phase takes its own transaction-scoped advisory lock. A bigint advisory lock shows
-- in pg_locks as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
CREATE TEMP VIEW my_advisory_keys AS
SELECT (l.classid::bigint << 32) | l.objid::bigint AS key
  FROM pg_locks l
 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.objsubid = 1 AND l.granted;

DELETE FROM user_alert_deliveries;
DELETE FROM alert_events;
DELETE FROM events;
DELETE FROM risk_indices;
DELETE FROM asset_risk;

SELECT is_empty('SELECT key FROM my_advisory_keys', 'no advisory lock is held before the phases run');
SELECT is(alerts_phase_a() ->> 'locked', 'true', 'alerts_phase_a reports it took its lock');
SELECT results_eq('SELECT key FROM my_advisory_keys',
                  ARRAY[-2154093782851673315::bigint],
                  'alerts_phase_a holds the alerts_v2_phase_a key until the transaction ends');
SELECT is(alerts_phase_b() ->> 'locked', 'true', 'alerts_phase_b reports it took its lock');
SELECT set_eq('SELECT key FROM my_advisory_keys',
              ARRAY[-2154093782851673315::bigint, -2463820459904419210::bigint],
              'alerts_phase_b holds the alerts_v2_phase_b key');

SELECT * FROM finish();
ROLLBACK;
