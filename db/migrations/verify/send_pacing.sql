-- Verify alerts_v2:send_pacing
SELECT channel, next_slot_at FROM alerts_send_pacing WHERE false;
SELECT channel, destination_sha256, next_slot_at FROM alerts_send_pacing_destinations WHERE false;
-- Division by zero unless the function runs: an empty group reserves nothing and changes nothing.
SELECT 1 / (count(*) = 0)::integer FROM alerts_reserve_send_slots('telegram', ARRAY[]::text[], 30, 1);
