-- The one form a destination is compared in for suppression (alerts_suppressions' key).
CREATE OR REPLACE FUNCTION alerts_destination_key(channel text, destination text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
-- Guarantees: the form a destination is suppressed under, the same for the provider's spelling
-- and the user's: email lower-cased and trimmed, a phone number without formatting (spaces, dots,
-- dashes, parentheses), a chat id trimmed; NULL when blank. Lock: none.
    SELECT nullif(CASE channel
                      WHEN 'email' THEN lower(btrim(destination))
                      WHEN 'sms' THEN regexp_replace(destination, '[[:space:]().-]', '', 'g')
                      ELSE btrim(destination)
                  END, '')
$$;
COMMENT ON FUNCTION alerts_destination_key(text, text) IS
    'The form a destination is suppressed under: email lower-cased, phone numbers without formatting, trimmed. Example: SELECT alerts_destination_key(''sms'', ''+44 7700 900123'');';
