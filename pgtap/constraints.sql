-- Constraints: every illegal state of alert_events and user_alert_deliveries is refused by
-- the table itself (whatever code path writes it), each by the constraint meant for it,
-- while the neighbouring legal states are accepted.
BEGIN;
SELECT plan(40);

DELETE FROM user_alert_deliveries;
DELETE FROM alert_events;

INSERT INTO alert_events (id, alert_type, scope_region, severity, headline, event_fingerprint)
VALUES (970001, 'HIGH_IMPACT_EVENT', 'Europe', 4, 'Constraint test event', 'pgtap:constraints:1');

-- Legal rows first, so each refusal below is caused by the one thing it changes.
SELECT lives_ok(
    $$INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint)
      VALUES ('HIGH_IMPACT_EVENT', 'Europe', 1, 'ok', 'pgtap:constraints:sev1'),
             ('HIGH_IMPACT_EVENT', 'Europe', 5, 'ok', 'pgtap:constraints:sev5')$$,
    'alert_events accepts severities 1 and 5');
SELECT lives_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel) VALUES (970001, 1, 'email')$$,
    'a delivery with only the required columns is accepted');
SELECT is((SELECT status || '/' || delivery_kind || '/' || attempts
             FROM user_alert_deliveries WHERE alert_event_id = 970001 AND user_id = 1),
          'queued/instant/0', 'a new delivery defaults to queued, instant, 0 attempts');
SELECT lives_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind, status, attempts, sent_at)
      VALUES (970001, 2, 'telegram', 'digest', 'sent', 1, now())$$,
    'a sent row with sent_at is accepted');
SELECT lives_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, last_error)
      VALUES (970001, 3, 'sms', 'failed', 1, '550 no such user')$$,
    'a failed row with last_error is accepted');
SELECT lives_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, claimed_at, lease_expires_at,
                                         claim_token)
      VALUES (970001, 4, 'email', 'sending', 1, now(), now() + interval '5 minutes', 1)$$,
    'a sending row with an attempt, claimed_at, a lease and a claim token is accepted');
SELECT lives_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status)
      VALUES (970001, 5, 'email', 'skipped')$$,
    'a skipped row is accepted');
SELECT lives_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind)
      VALUES (970001, 1, 'email', 'digest')$$,
    'the same event, user and channel may have one instant and one digest row');

-- user_alert_deliveries: value lists.
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status) VALUES (970001, 10, 'email', 'bogus')$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_status_check"',
    'status outside queued/sending/sent/failed/skipped is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel) VALUES (970001, 11, 'pigeon')$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_channel_check"',
    'channel outside email/telegram/sms is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind) VALUES (970001, 12, 'email', 'weekly')$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_delivery_kind_check"',
    'delivery_kind outside instant/digest is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind) VALUES (970001, 13, 'email', NULL)$$,
    '23502', NULL, 'delivery_kind NULL is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, attempts) VALUES (970001, 14, 'email', -1)$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_attempts_check"',
    'attempts < 0 is refused');

-- user_alert_deliveries: states that contradict each other.
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts) VALUES (970001, 15, 'email', 'sent', 1)$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sent_has_sent_at"',
    'a sent row without sent_at is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, sent_at) VALUES (970001, 16, 'email', now())$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sent_has_sent_at"',
    'sent_at on a queued row is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, last_error, sent_at)
      VALUES (970001, 17, 'email', 'failed', 1, 'boom', now())$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sent_has_sent_at"',
    'sent_at on a failed row is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts) VALUES (970001, 18, 'email', 'failed', 1)$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_failed_has_error"',
    'a failed row without last_error is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, claimed_at, lease_expires_at,
                                         claim_token)
      VALUES (970001, 19, 'email', 'sending', 0, now(), now() + interval '5 minutes', 1)$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sending_was_attempted"',
    'a sending row with attempts 0 is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, claimed_at, claim_token)
      VALUES (970001, 21, 'email', 'sending', 1, now(), 1)$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sending_has_lease"',
    'a sending row without a lease is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, lease_expires_at)
      VALUES (970001, 22, 'email', now() + interval '5 minutes')$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sending_has_lease"',
    'a lease on a queued row is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, lease_expires_at, claim_token)
      VALUES (970001, 23, 'email', 'sending', 1, now() + interval '5 minutes', 1)$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sending_was_claimed"',
    'a sending row without claimed_at is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, status, attempts, claimed_at, lease_expires_at)
      VALUES (970001, 24, 'email', 'sending', 1, now(), now() + interval '5 minutes')$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sending_has_claim_token"',
    'a sending row without a claim token (the fencing token its outcome must name) is refused');
-- The same guards hold on UPDATE, the path the outcome functions take.
SELECT throws_ok(
    $$UPDATE user_alert_deliveries SET status = 'sent', lease_expires_at = NULL WHERE alert_event_id = 970001 AND user_id = 4$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sent_has_sent_at"',
    'UPDATE to sent without sent_at is refused');
SELECT throws_ok(
    $$UPDATE user_alert_deliveries SET status = 'sending', claimed_at = now(), lease_expires_at = now() + interval '5 minutes',
                                       claim_token = 1
       WHERE alert_event_id = 970001 AND user_id = 5$$,
    '23514', 'new row for relation "user_alert_deliveries" violates check constraint "user_alert_deliveries_sending_was_attempted"',
    'UPDATE to sending without an attempt is refused');

-- user_alert_deliveries: keys.
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel, delivery_kind) VALUES (970001, 1, 'email', 'instant')$$,
    '23505', 'duplicate key value violates unique constraint "user_alert_deliveries_unique_key"',
    'a second delivery with the same (event, user, channel, kind) is refused');
SELECT throws_ok(
    $$INSERT INTO user_alert_deliveries (alert_event_id, user_id, channel) VALUES (-1, 20, 'email')$$,
    '23503', NULL, 'a delivery of a missing alert event is refused');

-- alert_events.
SELECT throws_ok(
    $$INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint)
      VALUES ('HIGH_IMPACT_EVENT', 'Europe', 0, 'x', 'pgtap:constraints:sev0')$$,
    '23514', 'new row for relation "alert_events" violates check constraint "alert_events_severity_check"',
    'severity 0 is refused');
SELECT throws_ok(
    $$INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint)
      VALUES ('HIGH_IMPACT_EVENT', 'Europe', 6, 'x', 'pgtap:constraints:sev6')$$,
    '23514', 'new row for relation "alert_events" violates check constraint "alert_events_severity_check"',
    'severity 6 is refused');
SELECT throws_ok(
    $$INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint)
      VALUES ('HIGH_IMPACT_EVENT', 'Asia', 3, 'another headline', 'pgtap:constraints:1')$$,
    '23505', 'duplicate key value violates unique constraint "alert_events_event_fingerprint_key"',
    'a second alert event with the same fingerprint is refused');
SELECT throws_ok(
    $$INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint)
      VALUES ('HIGH_IMPACT_EVENT', 'Europe', 3, 'x', NULL)$$,
    '23502', NULL, 'an alert event without a fingerprint is refused');
SELECT throws_ok(
    $$INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint)
      VALUES ('high impact', 'Europe', 3, 'x', 'pgtap:constraints:lowercase')$$,
    '23514', 'new row for relation "alert_events" violates check constraint "alert_events_alert_type_check"',
    'an alert_type that is not UPPER_SNAKE_CASE is refused');
SELECT throws_ok(
    $$INSERT INTO alert_events (alert_type, scope_region, severity, headline, event_fingerprint, created_at, fanout_completed_at)
      VALUES ('HIGH_IMPACT_EVENT', 'Europe', 3, 'x', 'pgtap:constraints:fanout', now(), now() - interval '1 second')$$,
    '23514', 'new row for relation "alert_events" violates check constraint "alert_events_fanout_after_creation"',
    'fanout_completed_at before created_at is refused');

-- alerts_config: one row, values in range.
SELECT throws_ok(
    $$INSERT INTO alerts_config DEFAULT VALUES$$,
    '23505', NULL, 'alerts_config takes no second row');
SELECT throws_ok(
    $$UPDATE alerts_config SET high_impact_min_severity = 6$$,
    '23514', 'new row for relation "alerts_config" violates check constraint "alerts_config_high_impact_min_severity_check"',
    'high_impact_min_severity above 5 is refused');
SELECT throws_ok(
    $$UPDATE alerts_config SET spike_min_score = 101$$,
    '23514', 'new row for relation "alerts_config" violates check constraint "alerts_config_spike_min_score_check"',
    'spike_min_score above 100 is refused');
SELECT throws_ok(
    $$UPDATE alerts_config SET max_attempts = 0$$,
    '23514', 'new row for relation "alerts_config" violates check constraint "alerts_config_max_attempts_check"',
    'max_attempts of 0 is refused');
SELECT throws_ok(
    $$UPDATE alerts_config SET retry_base = '2 hours', retry_max = '1 hour'$$,
    '23514', 'new row for relation "alerts_config" violates check constraint "alerts_config_retry_max_not_below_base"',
    'retry_max below retry_base is refused');
SELECT throws_ok(
    $$UPDATE alerts_config SET lease_duration = '0 seconds'$$,
    '23514', 'new row for relation "alerts_config" violates check constraint "alerts_config_lease_duration_check"',
    'a lease_duration of 0 is refused');
SELECT throws_ok(
    $$UPDATE alerts_config SET spike_min_rise_pct = 0$$,
    '23514', 'new row for relation "alerts_config" violates check constraint "alerts_config_spike_min_rise_pct_check"',
    'spike_min_rise_pct of 0 is refused');

-- Nothing refused above was stored.
SELECT is((SELECT count(*) FROM user_alert_deliveries), 6::bigint, 'only the 6 legal deliveries were stored');

SELECT * FROM finish();
ROLLBACK;
