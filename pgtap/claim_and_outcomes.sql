-- Claiming and outcomes: claim_deliveries hands out only due instant queued rows, earliest
-- due first, in batches, as sending with one more attempt and a lease; count_due_deliveries
-- agrees; outcome, requeue, release and reclaim functions change only rows still 'sending'.
BEGIN;
SELECT plan(57);

-- The claim token each row carries now, in the order of ids (what the claim returned for it).
CREATE FUNCTION pg_temp.tokens(ids bigint[]) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT array_agg(d.claim_token ORDER BY o.n)
      FROM unnest(ids) WITH ORDINALITY AS o (id, n) LEFT JOIN user_alert_deliveries d ON d.id = o.id
$$;

DELETE FROM user_alert_deliveries;
DELETE FROM alert_events;
DELETE FROM users;
UPDATE alerts_config
   SET max_attempts = DEFAULT, retry_base = DEFAULT, retry_max = DEFAULT, retry_jitter_pct = DEFAULT,
       lease_duration = DEFAULT;

INSERT INTO users (id, email, email_verified, telegram_chat_id, phone_number) VALUES
    (940001, 'c1@example.com', true, 'tg-c1', '+2001'),
    (940002, ' c2@example.com ', true, NULL, NULL);

INSERT INTO alert_events (id, alert_type, scope_region, scope_assets, severity, headline, body, event_fingerprint,
                          created_at, fanout_completed_at) VALUES
    (950001, 'HIGH_IMPACT_EVENT', 'Europe', '{}', 5, 'Claim me', 'Body one', 'pgtap:c:950001',
     now() - interval '4 hours', now() - interval '4 hours'),
    (950002, 'ASSET_RISK_SPIKE', 'Gulf', '{oil}', 4, 'Oil risk spike in Gulf', 'Body two', 'pgtap:c:950002',
     now() - interval '4 hours', now() - interval '4 hours'),
    (950003, 'REGIONAL_RISK_SPIKE', 'Asia', '{}', 3, 'Regional risk spike in Asia', 'Body three', 'pgtap:c:950003',
     now() - interval '4 hours', now() - interval '4 hours');

INSERT INTO user_alert_deliveries (id, alert_event_id, user_id, channel, delivery_kind, status, attempts,
                                   next_retry_at, last_error, sent_at, claimed_at, lease_expires_at, created_at,
                                   claim_token) VALUES
    -- due: queued, instant, next_retry_at NULL or not in the future; due at coalesce(next_retry_at, created_at)
    (960003, 950001, 940001, 'sms', 'instant', 'queued', 0, NULL, NULL, NULL, NULL, NULL, now() - interval '10 minutes', NULL),
    (960001, 950001, 940001, 'email', 'instant', 'queued', 0, NULL, NULL, NULL, NULL, NULL, now() - interval '5 minutes', NULL),
    (960002, 950001, 940001, 'telegram', 'instant', 'queued', 0, NULL, NULL, NULL, NULL, NULL, now() - interval '5 minutes', NULL),
    (960012, 950001, 940002, 'telegram', 'instant', 'queued', 0, NULL, NULL, NULL, NULL, NULL, now() - interval '2 minutes', NULL),
    (960006, 950002, 940001, 'telegram', 'instant', 'queued', 2, now() - interval '30 seconds', 'timeout', NULL, NULL, NULL,
     now() - interval '3 hours', NULL),
    (960013, 950001, 940002, 'email', 'instant', 'queued', 0, now(), NULL, NULL, NULL, NULL, now() - interval '1 minute', NULL),
    -- not due
    (960004, 950001, 940001, 'email', 'digest', 'queued', 0, NULL, NULL, NULL, NULL, NULL, now() - interval '20 minutes', NULL),
    (960005, 950002, 940001, 'email', 'instant', 'queued', 1, now() + interval '1 hour', 'timeout', NULL, NULL, NULL,
     now() - interval '30 minutes', NULL),
    (960007, 950002, 940001, 'sms', 'instant', 'sent', 1, NULL, NULL, now() - interval '1 hour', NULL, NULL,
     now() - interval '40 minutes', NULL),
    (960008, 950003, 940001, 'email', 'instant', 'failed', 1, NULL, '550', NULL, NULL, NULL, now() - interval '50 minutes', NULL),
    (960009, 950003, 940001, 'telegram', 'instant', 'sending', 1, NULL, NULL, NULL,
     now() - interval '1 minute', now() + interval '4 minutes', now() - interval '60 minutes', 9),
    (960010, 950003, 940001, 'sms', 'instant', 'skipped', 1, NULL, 'no destination', NULL, NULL, NULL,
     now() - interval '70 minutes', NULL),
    -- claimed by a sender that died: leases ended
    (960015, 950002, 940002, 'email', 'instant', 'sending', 2, NULL, NULL, NULL,
     now() - interval '20 minutes', now() - interval '15 minutes', now() - interval '2 hours', 15),
    (960016, 950002, 940002, 'telegram', 'instant', 'sending', 5, NULL, NULL, NULL,
     now() - interval '20 minutes', now() - interval '15 minutes', now() - interval '2 hours', 16);

CREATE TEMP TABLE not_due_before AS
SELECT id, status, attempts, next_retry_at, last_error, sent_at, claimed_at, lease_expires_at
  FROM user_alert_deliveries WHERE id NOT IN (960001, 960002, 960003, 960006, 960012, 960013);

-- count_due_deliveries.
SELECT is(count_due_deliveries(), 6::bigint, 'count_due_deliveries() counts the 6 due rows');
SELECT is(count_due_deliveries(4), 4::bigint, 'count_due_deliveries(4) stops at 4');
SELECT is(count_due_deliveries(NULL), 6::bigint, 'count_due_deliveries(NULL) has no limit');
SELECT is((SELECT count(*) FROM user_alert_deliveries WHERE status = 'sending'), 3::bigint,
          'counting claims nothing');

-- Bad batch sizes.
SELECT throws_ok('SELECT * FROM claim_deliveries(0)', '22023',
                 'claim_deliveries: batch must be a positive integer, got 0', 'claim_deliveries(0) throws');
SELECT throws_ok('SELECT * FROM claim_deliveries(NULL)', '22023',
                 'claim_deliveries: batch must be a positive integer, got NULL', 'claim_deliveries(NULL) throws');
SELECT throws_ok('SELECT * FROM claim_deliveries(-3)', '22023',
                 'claim_deliveries: batch must be a positive integer, got -3', 'claim_deliveries(-3) throws');

-- First batch of 2: the two oldest due rows.
CREATE TEMP TABLE claim1 AS SELECT row_number() OVER () AS n, c.* FROM claim_deliveries(2) c;
SELECT results_eq('SELECT delivery_id FROM claim1 ORDER BY n', ARRAY[960003, 960001]::bigint[],
                  'claim_deliveries(2) returns the two oldest due rows, oldest first');
SELECT results_eq(
    'SELECT delivery_id, user_id, channel, destination, attempts FROM claim1 ORDER BY n',
    $$VALUES (960003::bigint, 940001::bigint, 'sms'::text, '+2001'::text, 1),
             (960001, 940001, 'email', 'c1@example.com', 1)$$,
    'claimed rows carry the user, channel, the channel''s destination and the new attempt count');
SELECT results_eq(
    'SELECT alert_event_id, alert_type, severity, scope_region, scope_assets, headline, body, event_created_at FROM claim1 WHERE n = 1',
    $$SELECT id, alert_type, severity, scope_region, scope_assets, headline, body, created_at
        FROM alert_events WHERE id = 950001$$,
    'claimed rows carry the alert event''s fields');
SELECT set_eq('SELECT id, status, attempts, claimed_at, lease_expires_at FROM user_alert_deliveries WHERE id IN (960003, 960001)',
              $$VALUES (960003::bigint, 'sending'::text, 1, now(), now() + interval '5 minutes'),
                       (960001, 'sending', 1, now(), now() + interval '5 minutes')$$,
              'claimed rows are stored as sending with attempts + 1, claimed now, leased for lease_duration');
SELECT is(count_due_deliveries(), 4::bigint, 'after the first claim 4 rows are due');

-- Second batch, larger than what is due, under a longer lease.
UPDATE alerts_config SET lease_duration = '10 minutes';
CREATE TEMP TABLE claim2 AS SELECT row_number() OVER () AS n, c.* FROM claim_deliveries(10) c;
SELECT results_eq('SELECT delivery_id FROM claim2 ORDER BY n', ARRAY[960002, 960012, 960006, 960013]::bigint[],
                  'claim_deliveries(10) returns the 4 remaining due rows, by due time then id');
SELECT results_eq(
    'SELECT delivery_id, channel, destination, attempts FROM claim2 ORDER BY n',
    $$VALUES (960002::bigint, 'telegram'::text, 'tg-c1'::text, 1),
             (960012, 'telegram', NULL, 1),
             (960006, 'telegram', 'tg-c1', 3),
             (960013, 'email', 'c2@example.com', 1)$$,
    'destination per channel (trimmed; NULL when the user has none); a retried row goes from 2 to 3 attempts');
SELECT ok((SELECT n FROM claim2 WHERE delivery_id = 960006) > (SELECT n FROM claim2 WHERE delivery_id = 960012),
          'a retried row is due at its next_retry_at: created 3 hours ago, it comes after a row due 2 minutes ago');
SELECT ok(EXISTS (SELECT 1 FROM claim2 WHERE delivery_id = 960013),
          'a row whose next_retry_at is now is due');
SELECT is((SELECT count(*) FROM user_alert_deliveries
            WHERE id IN (SELECT delivery_id FROM claim2) AND lease_expires_at = now() + interval '10 minutes'),
          4::bigint, 'the lease follows alerts_config.lease_duration');
SELECT set_eq('SELECT id, status, attempts, next_retry_at, last_error, sent_at, claimed_at, lease_expires_at
                 FROM user_alert_deliveries WHERE id NOT IN (960001, 960002, 960003, 960006, 960012, 960013)',
              'SELECT * FROM not_due_before',
              'digest, future-retry, sent, failed, sending and skipped rows are left alone');
SELECT is_empty('SELECT * FROM claim_deliveries(10)', 'nothing is left to claim');
SELECT is(count_due_deliveries(), 0::bigint, 'count_due_deliveries() agrees: 0 due');

-- mark_deliveries_sent.
SELECT is(mark_deliveries_sent(ARRAY[960003]::bigint[], pg_temp.tokens(ARRAY[960003]::bigint[]), ARRAY['msg-3']), 1, 'mark_deliveries_sent marks a sending row');
SELECT results_eq('SELECT status, sent_at, provider_message_id, last_error, lease_expires_at FROM user_alert_deliveries WHERE id = 960003',
                  $$VALUES ('sent'::text, now(), 'msg-3'::text, NULL::text, NULL::timestamptz)$$,
                  'a sent row has sent_at = now(), the provider''s message id and no lease');
SELECT is(mark_deliveries_sent(ARRAY[960003]::bigint[], pg_temp.tokens(ARRAY[960003]::bigint[]), ARRAY['msg-again']), 0, 'marking an already sent row again changes 0');
SELECT is((SELECT provider_message_id FROM user_alert_deliveries WHERE id = 960003), 'msg-3',
          'the repeated call did not overwrite the message id');
SELECT is(mark_deliveries_sent(ARRAY[960005]::bigint[], pg_temp.tokens(ARRAY[960005]::bigint[]), ARRAY['msg-5']), 0, 'mark_deliveries_sent on a queued row changes 0');
SELECT results_eq('SELECT status, attempts, sent_at FROM user_alert_deliveries WHERE id = 960005',
                  $$VALUES ('queued'::text, 1, NULL::timestamptz)$$, 'the queued row is still queued');
SELECT is(mark_deliveries_sent(ARRAY[960009, 960005, 960007]::bigint[], pg_temp.tokens(ARRAY[960009, 960005, 960007]::bigint[]), ARRAY['a', 'b', 'c']), 1,
          'in a mixed list only the sending row is marked sent');
SELECT results_eq('SELECT id, status, provider_message_id FROM user_alert_deliveries WHERE id IN (960009, 960007) ORDER BY id',
                  $$VALUES (960007::bigint, 'sent'::text, NULL::text), (960009, 'sent', 'a')$$,
                  'ids[i] goes with provider_message_ids[i]; the earlier sent row is untouched');

-- mark_deliveries_failed.
SELECT is(mark_deliveries_failed(ARRAY[960002, 960001]::bigint[], pg_temp.tokens(ARRAY[960002, 960001]::bigint[]), ARRAY[NULL, '550 no such user']), 2,
          'mark_deliveries_failed marks sending rows');
SELECT results_eq('SELECT id, status, last_error, attempts, lease_expires_at FROM user_alert_deliveries WHERE id IN (960001, 960002) ORDER BY id',
                  $$VALUES (960001::bigint, 'failed'::text, '550 no such user'::text, 1, NULL::timestamptz),
                           (960002, 'failed', 'failed without a reason', 1, NULL)$$,
                  'errors[i] goes with ids[i]; a failure without an error still stores a reason');
SELECT is(mark_deliveries_failed(ARRAY[960007]::bigint[], pg_temp.tokens(ARRAY[960007]::bigint[]), ARRAY['late']), 0, 'mark_deliveries_failed on a sent row changes 0');
SELECT is((SELECT status FROM user_alert_deliveries WHERE id = 960007), 'sent', 'the sent row stays sent');

-- mark_deliveries_skipped.
SELECT is(mark_deliveries_skipped(ARRAY[960012]::bigint[], pg_temp.tokens(ARRAY[960012]::bigint[]), ARRAY['no telegram destination']), 1,
          'mark_deliveries_skipped marks a sending row');
SELECT results_eq('SELECT status, last_error, lease_expires_at FROM user_alert_deliveries WHERE id = 960012',
                  $$VALUES ('skipped'::text, 'no telegram destination'::text, NULL::timestamptz)$$,
                  'a skipped row keeps its reason');
SELECT is(mark_deliveries_skipped(ARRAY[960001]::bigint[], pg_temp.tokens(ARRAY[960001]::bigint[]), ARRAY['late']), 0, 'mark_deliveries_skipped on a failed row changes 0');

-- requeue_deliveries: keeps the attempt, waits alerts_retry_delay(attempts), gives up at max_attempts.
SELECT is(requeue_deliveries(ARRAY[960006]::bigint[], pg_temp.tokens(ARRAY[960006]::bigint[]), ARRAY['timeout again']), 1, 'requeue_deliveries requeues a sending row');
SELECT results_eq('SELECT status, attempts, last_error, lease_expires_at FROM user_alert_deliveries WHERE id = 960006',
                  $$VALUES ('queued'::text, 3, 'timeout again'::text, NULL::timestamptz)$$,
                  'a requeued row keeps its attempts and the error, and loses its lease');
SELECT ok((SELECT next_retry_at BETWEEN now() + interval '240 seconds' AND now() + interval '288 seconds'
             FROM user_alert_deliveries WHERE id = 960006),
          'after 3 attempts the retry waits 60 s * 2^2 plus at most 20% jitter');
SELECT is(count_due_deliveries(), 0::bigint, 'a requeued delivery is not due again immediately');
SELECT is(requeue_deliveries(ARRAY[960004]::bigint[], pg_temp.tokens(ARRAY[960004]::bigint[]), ARRAY['x']), 0, 'requeue_deliveries on a queued row changes 0');
INSERT INTO user_alert_deliveries (id, alert_event_id, user_id, channel, status, attempts, claimed_at, lease_expires_at,
                                   claim_token) VALUES
    (960014, 950003, 940002, 'email', 'sending', 1, now(), now() + interval '5 minutes', 14),
    (960017, 950002, 940002, 'sms', 'sending', 5, now(), now() + interval '5 minutes', 17);
SELECT is(requeue_deliveries(ARRAY[960014, 960017]::bigint[], pg_temp.tokens(ARRAY[960014, 960017]::bigint[])), 2, 'requeue_deliveries works without errors');
SELECT ok((SELECT status = 'queued' AND last_error = 'transient failure'
                  AND next_retry_at BETWEEN now() + interval '60 seconds' AND now() + interval '72 seconds'
             FROM user_alert_deliveries WHERE id = 960014),
          'after 1 attempt: queued for 60 s plus jitter, with a default error');
SELECT results_eq('SELECT status, attempts, last_error, next_retry_at, lease_expires_at FROM user_alert_deliveries WHERE id = 960017',
                  $$VALUES ('failed'::text, 5, 'gave up after 5 attempts: transient failure'::text, NULL::timestamptz, NULL::timestamptz)$$,
                  'at max_attempts (5) a transient failure becomes a permanent one');

-- release_deliveries: gives the attempt back and the row is due at once.
SELECT is(release_deliveries(ARRAY[960013]::bigint[], pg_temp.tokens(ARRAY[960013]::bigint[])), 1, 'release_deliveries releases a sending row');
SELECT results_eq('SELECT status, attempts, lease_expires_at FROM user_alert_deliveries WHERE id = 960013',
                  $$VALUES ('queued'::text, 0, NULL::timestamptz)$$, 'a released row is queued with its attempt given back');
SELECT is(release_deliveries(ARRAY[960003]::bigint[], pg_temp.tokens(ARRAY[960003]::bigint[])), 0, 'release_deliveries on a sent row changes 0');
SELECT results_eq('SELECT status, attempts FROM user_alert_deliveries WHERE id = 960003',
                  $$VALUES ('sent'::text, 1)$$, 'the sent row keeps its status and attempt');
SELECT is(count_due_deliveries(), 1::bigint, 'the released row is due again at once');
CREATE TEMP TABLE claim3 AS SELECT row_number() OVER () AS n, c.* FROM claim_deliveries(10) c;
SELECT results_eq('SELECT delivery_id, attempts FROM claim3 ORDER BY n', $$VALUES (960013::bigint, 1)$$,
                  'only the released row is claimed again (the requeued ones wait for their retry)');

-- reclaim_expired_deliveries: rows whose lease ended go back to the queue, or fail when spent.
SELECT is(reclaim_expired_deliveries(), '{"requeued": 1, "failed": 1, "more": false}'::jsonb,
          'reclaim_expired_deliveries reclaims the two rows whose lease ended');
SELECT ok((SELECT status = 'queued' AND attempts = 2 AND lease_expires_at IS NULL
                  AND last_error LIKE 'lease expired at % during attempt 2 %'
                  AND next_retry_at BETWEEN now() + interval '120 seconds' AND now() + interval '144 seconds'
             FROM user_alert_deliveries WHERE id = 960015),
          'an expired row with attempts left is queued for a retry, the expiry recorded');
SELECT ok((SELECT status = 'failed' AND attempts = 5 AND next_retry_at IS NULL AND lease_expires_at IS NULL
             FROM user_alert_deliveries WHERE id = 960016),
          'an expired row with its attempts spent fails');
SELECT results_eq('SELECT status, lease_expires_at FROM user_alert_deliveries WHERE id = 960013',
                  $$VALUES ('sending'::text, now() + interval '10 minutes')$$,
                  'a row whose lease is still running is not reclaimed');
SELECT is(reclaim_expired_deliveries(), '{"requeued": 0, "failed": 0, "more": false}'::jsonb, 'a second reclaim finds nothing');

SELECT is(mark_deliveries_sent(ARRAY[960013]::bigint[], pg_temp.tokens(ARRAY[960013]::bigint[])), 1, 'mark_deliveries_sent works without message ids');
SELECT results_eq('SELECT status, provider_message_id FROM user_alert_deliveries WHERE id = 960013',
                  $$VALUES ('sent'::text, NULL::text)$$, 'sent without a message id');
SELECT is((SELECT count(*) FROM user_alert_deliveries WHERE status = 'sending'), 0::bigint,
          'no row is left sending');

SELECT * FROM finish();
ROLLBACK;
