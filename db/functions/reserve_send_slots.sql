-- Send slots shared by every sender process: a provider's limits hold per bot or account, not per
-- runner, so the moments at which messages of a channel may start are handed out here, under the
-- channel's row lock, to whichever process asks. One call reserves a slot for each message of a
-- group (one round trip however many), in the order given:
--   - consecutive slots of the channel are at least (1 + 4 %) / per_second apart, across every
--     caller (each slot keeps its own caller's spacing after it: a runner slowed down by a 429
--     spaces the slots it takes wider; per_second NULL: no rate, only the destinations' intervals);
--   - two slots of one destination are at least per_destination_interval (+ 4 %) apart (0: none);
--     a destination is kept as the sha256 of its text, never the chat id or phone number itself,
--     and forgotten once its interval is over;
--   - slots are booked at most 5 seconds ahead of the server's clock, so a runner that dies
--     leaves at most that much of the channel unused.
-- A message whose destination is still within its interval, or beyond the booking horizon, gets
-- no slot (reserved = false) and uses up none: the caller asks again after wait_seconds (for a
-- destination: the end of its interval less how far ahead the channel is booked now, so the
-- slot it then gets falls about when the interval ends).
-- wait_seconds counts from the server's clock_timestamp() just before the answer leaves, so the
-- caller waits that long from when the answer arrived, whatever its own clock says.
CREATE OR REPLACE FUNCTION alerts_reserve_send_slots(
    channel text,
    destinations text[],
    per_second double precision,
    per_destination_interval double precision DEFAULT 0
)
RETURNS TABLE (
    slot integer,
    wait_seconds double precision,
    slot_at timestamptz,
    reserved boolean
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
-- Guarantees: one row per element of destinations (slot = its position), in that order. A
-- reserved slot_at is never before the server's clock nor more than booking_horizon after it;
-- it is at least (1 + margin) / r after the channel's previous reserved slot, whichever caller
-- reserved that one, r being that caller's per_second (all callers at one rate: 1/rate + 4 %
-- apart), and at least i * (1 + margin) after the previous reserved slot of the same
-- destination, i being the per_destination_interval it was reserved with. An unreserved row
-- changes nothing. Destination entries whose interval is over are deleted by every call that
-- keeps destinations for the channel.
-- Lock: FOR UPDATE on the channel's alerts_send_pacing row, held to the end of the caller's
-- transaction, which commits with synchronous_commit off: call it in a transaction of its own
-- (autocommit), as the runner does.
DECLARE
    margin constant double precision := 0.04;  -- the runner's SPACING_MARGIN (alerts/senders/pacing.py)
    booking_horizon constant interval := interval '5 seconds';
    send_channel constant text := $1;
    spacing interval;
    gap interval;
    now_at timestamptz;
    next_at timestamptz;
    free_at timestamptz;
    known_hash bytea[] := '{}';
    known_next timestamptz[] := '{}';
    changed boolean[] := '{}';
    dest_hash bytea;
    found_at integer;
    any_reserved boolean := false;
    out_at timestamptz[] := '{}';
    out_reserved boolean[] := '{}';
BEGIN
    IF send_channel IS NULL OR btrim(send_channel) = '' OR length(send_channel) > 100 THEN
        RAISE EXCEPTION 'alerts_reserve_send_slots: channel must be a name of 1 to 100 characters'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $2 IS NULL OR array_position($2, NULL) IS NOT NULL OR cardinality($2) > 10000 THEN
        RAISE EXCEPTION 'alerts_reserve_send_slots: destinations must be an array of at most 10000 non-null texts'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $3 IS NOT NULL AND NOT ($3 > 0 AND $3 <= 100000) THEN
        RAISE EXCEPTION 'alerts_reserve_send_slots: per_second must be NULL or above 0 and at most 100000, got %', $3
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $4 IS NOT NULL AND NOT ($4 >= 0 AND $4 <= 86400) THEN
        RAISE EXCEPTION 'alerts_reserve_send_slots: per_destination_interval must be 0 to 86400 seconds, got %', $4
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality($2) = 0 THEN
        RETURN;
    END IF;
    -- The answer is what the caller waits for: its commit does not wait for a WAL flush (a crash
    -- forgets the last reservations, which only frees slots of runners the crash stopped anyway).
    PERFORM set_config('synchronous_commit', 'off', true);
    spacing := CASE WHEN $3 IS NULL THEN interval '0' ELSE make_interval(secs => (1 + margin) / $3) END;
    gap := make_interval(secs => coalesce($4, 0) * (1 + margin));

    SELECT p.next_slot_at INTO next_at FROM alerts_send_pacing p WHERE p.channel = send_channel FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO alerts_send_pacing (channel, next_slot_at) VALUES (send_channel, clock_timestamp())
            ON CONFLICT ON CONSTRAINT alerts_send_pacing_pkey DO NOTHING;
        SELECT p.next_slot_at INTO STRICT next_at FROM alerts_send_pacing p WHERE p.channel = send_channel FOR UPDATE;
    END IF;
    now_at := clock_timestamp();  -- read once the row is ours: a wait for the lock is not counted as time
    next_at := greatest(next_at, now_at);

    IF gap > interval '0' THEN
        DELETE FROM alerts_send_pacing_destinations d WHERE d.channel = send_channel AND d.next_slot_at <= now_at;
        SELECT coalesce(array_agg(d.destination_sha256), '{}'), coalesce(array_agg(d.next_slot_at), '{}'),
               coalesce(array_agg(false), '{}')
          INTO known_hash, known_next, changed
          FROM alerts_send_pacing_destinations d
         WHERE d.channel = send_channel
           AND d.destination_sha256 = ANY (ARRAY(SELECT sha256(convert_to(t, 'UTF8')) FROM unnest($2) t));
    END IF;

    FOR i IN 1 .. cardinality($2) LOOP
        found_at := NULL;
        IF gap > interval '0' THEN
            dest_hash := sha256(convert_to($2[i], 'UTF8'));
            found_at := array_position(known_hash, dest_hash);
            free_at := known_next[found_at];
        END IF;
        IF found_at IS NOT NULL AND free_at > next_at THEN
            -- The destination's interval is not over at the channel's next slot: ask again when the
            -- channel's slots, booked as far ahead as they are now, reach the end of that interval.
            slot_at := now_at + (free_at - next_at);
            reserved := false;
        ELSIF next_at > now_at + booking_horizon THEN
            slot_at := next_at - booking_horizon;
            reserved := false;
        ELSE
            slot_at := next_at;
            reserved := true;
            any_reserved := true;
            next_at := next_at + spacing;
            IF gap > interval '0' THEN
                IF found_at IS NULL THEN
                    known_hash := known_hash || dest_hash;
                    known_next := known_next || (slot_at + gap);
                    changed := changed || true;
                ELSE
                    known_next[found_at] := slot_at + gap;
                    changed[found_at] := true;
                END IF;
            END IF;
        END IF;
        out_at := out_at || slot_at;
        out_reserved := out_reserved || reserved;
    END LOOP;

    IF any_reserved THEN
        UPDATE alerts_send_pacing p SET next_slot_at = next_at WHERE p.channel = send_channel;
        INSERT INTO alerts_send_pacing_destinations (channel, destination_sha256, next_slot_at)
        SELECT send_channel, k.sha, k.busy_until
          FROM unnest(known_hash, known_next, changed) AS k(sha, busy_until, is_changed)
         WHERE k.is_changed
            ON CONFLICT ON CONSTRAINT alerts_send_pacing_destinations_pkey
            DO UPDATE SET next_slot_at = excluded.next_slot_at;
    END IF;
    -- Waits count from now, the last moment before the answer leaves, so that the caller, counting
    -- them from when the answer arrives, is late by the way back only.
    now_at := clock_timestamp();
    RETURN QUERY
        SELECT k.n::integer, greatest(extract(epoch FROM k.at - now_at), 0)::double precision, k.at, k.ok
          FROM unnest(out_at, out_reserved) WITH ORDINALITY AS k(at, ok, n);
END;
$$;
COMMENT ON FUNCTION alerts_reserve_send_slots(text, text[], double precision, double precision) IS
    'Reserves send slots for a group of messages of one channel, shared by every sender process: slots (1 + 4 %) / per_second apart, one destination''s slots per_destination_interval (+ 4 %) apart, at most 5 s ahead; one row per destination, in order, with the seconds to wait from the server''s clock; reserved = false: ask again after wait_seconds. Example: SELECT * FROM alerts_reserve_send_slots(''telegram'', ARRAY[''100001'', ''100002''], 30, 1);';
