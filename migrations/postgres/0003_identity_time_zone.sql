-- A chat account's time zone from its platform profile (Slack's `tz`), used for people the
-- directory gives no time zone.
ALTER TABLE identities ADD COLUMN time_zone TEXT;
