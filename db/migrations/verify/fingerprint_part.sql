-- Verify alerts_v2:fingerprint_part
SELECT 1 / (alerts_fingerprint_part('Europe:oil\x') = 'Europe\:oil\\x')::integer;
