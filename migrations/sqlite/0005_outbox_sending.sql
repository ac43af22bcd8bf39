-- Set just before a row is handed to its platform, cleared when the platform is known not to
-- have it (a 429). A row claimed again with this set may have reached the platform before its
-- worker died: the adapter checks the conversation before sending it again.
ALTER TABLE outbox ADD COLUMN sending BIGINT NOT NULL DEFAULT 0;
