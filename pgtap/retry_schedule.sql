-- Retry schedule: alerts_retry_delay(n) is retry_base * 2^(n-1), capped at retry_max, plus
-- 0 to retry_jitter_pct of jitter, all read from alerts_config; it never overflows and the
-- jitter really varies.
BEGIN;
SELECT plan(12);

UPDATE alerts_config SET retry_base = '60 seconds', retry_max = '1 hour', retry_jitter_pct = 20;

-- With jitter, each delay falls in [d, d * 1.2]; 200 draws per attempt count.
CREATE TEMP TABLE draws AS
SELECT a.attempts_made, alerts_retry_delay(a.attempts_made) AS delay
  FROM (VALUES (0), (1), (2), (3), (7), (1000)) AS a (attempts_made), generate_series(1, 200);

SELECT is_empty($$SELECT 1 FROM draws WHERE attempts_made IN (0, 1)
                    AND delay NOT BETWEEN interval '60 seconds' AND interval '72 seconds'$$,
                'after 0 or 1 attempts: 60 s plus at most 20%');
SELECT is_empty($$SELECT 1 FROM draws WHERE attempts_made = 2
                    AND delay NOT BETWEEN interval '120 seconds' AND interval '144 seconds'$$,
                'after 2 attempts: 120 s plus at most 20%');
SELECT is_empty($$SELECT 1 FROM draws WHERE attempts_made = 3
                    AND delay NOT BETWEEN interval '240 seconds' AND interval '288 seconds'$$,
                'after 3 attempts: 240 s plus at most 20%');
SELECT is_empty($$SELECT 1 FROM draws WHERE attempts_made = 7
                    AND delay NOT BETWEEN interval '1 hour' AND interval '72 minutes'$$,
                'after 7 attempts (3,840 s uncapped): capped at retry_max 1 hour plus at most 20%');
SELECT is_empty($$SELECT 1 FROM draws WHERE attempts_made = 1000
                    AND delay NOT BETWEEN interval '1 hour' AND interval '72 minutes'$$,
                'after 1,000 attempts: still capped, no overflow');
SELECT cmp_ok((SELECT count(DISTINCT delay) FROM draws WHERE attempts_made = 3), '>', 1::bigint,
              'the jitter varies between calls');
SELECT volatility_is('alerts_retry_delay', ARRAY['integer'], 'volatile',
                     'alerts_retry_delay is VOLATILE (random jitter must not be folded)');

-- Every parameter comes from alerts_config.
UPDATE alerts_config SET retry_jitter_pct = 0;
SELECT is(alerts_retry_delay(3), interval '240 seconds', 'retry_jitter_pct 0: exactly 60 s * 2^2');
UPDATE alerts_config SET retry_base = '10 seconds';
SELECT is(alerts_retry_delay(2), interval '20 seconds', 'retry_base 10 s: 20 s after 2 attempts');
UPDATE alerts_config SET retry_max = '30 seconds';
SELECT is(alerts_retry_delay(5), interval '30 seconds', 'retry_max 30 s caps 160 s at 30 s');
UPDATE alerts_config SET retry_max = '1 hour', retry_jitter_pct = 100;
SELECT ok((SELECT bool_and(d BETWEEN interval '40 seconds' AND interval '80 seconds')
             FROM (SELECT alerts_retry_delay(3) AS d FROM generate_series(1, 200)) t),
          'retry_jitter_pct 100: between 1x and 2x');
SELECT ok((SELECT max(d) > interval '48 seconds'
             FROM (SELECT alerts_retry_delay(3) AS d FROM generate_series(1, 200)) t),
          'retry_jitter_pct 100 reaches beyond 20% (200 draws)');

SELECT * FROM finish();
ROLLBACK;
