-- Verify alerts_v2:host_tables
-- Fails (column does not exist) unless every contract column is present.
SELECT id, email, email_verified, telegram_chat_id, phone_number, created_at FROM users WHERE false;
SELECT user_id, plan FROM user_plans WHERE false;
SELECT plan_code, allowed_alert_types, max_email_alerts_per_day, delivery_config FROM plan_settings WHERE false;
SELECT id, user_id, alert_type, region, asset, threshold, enabled, delivery_mode FROM user_alert_prefs WHERE false;
SELECT id, title, region, category, severity_score, inserted_at FROM events WHERE false;
SELECT id, region, window_days, risk_score, trend, calculated_at FROM risk_indices WHERE false;
SELECT id, asset, region, window_days, risk_score, direction, calculated_at FROM asset_risk WHERE false;
