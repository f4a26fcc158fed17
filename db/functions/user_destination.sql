-- Where a user receives a channel's messages: the one rule the claims share.
CREATE OR REPLACE FUNCTION alerts_user_destination(u users, channel text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT nullif(btrim(CASE channel
                            WHEN 'email' THEN u.email::text
                            WHEN 'telegram' THEN u.telegram_chat_id::text
                            WHEN 'sms' THEN u.phone_number::text
                        END), '')
$$;
COMMENT ON FUNCTION alerts_user_destination(users, text) IS
    'The user''s destination for a channel (email, telegram chat id or phone number), NULL when blank. Example: SELECT alerts_user_destination(u, ''email'') FROM users u;';
