-- The worker claims the longest-due rows of one platform. With only (status, next_attempt_at)
-- every claim read and sorted all due rows (about 6 ms for a claim of 20 with 10,000 DMs
-- queued, measured with the sqlite3 shell); this index answers it in index order and stops at
-- the limit (under 0.1 ms). It replaces outbox_due: every query that index served filters on
-- status, this index's first column, so keeping both would only slow each queued row down.
CREATE INDEX outbox_claim ON outbox (status, platform, next_attempt_at, id);
DROP INDEX outbox_due;
