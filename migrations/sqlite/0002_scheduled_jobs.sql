-- Jobs the scheduler has done (a review nudge for one due date and milestone, a day's
-- acknowledgement reminder, a digest for one scheduled time): the key makes each happen once,
-- across restarts and instances.
CREATE TABLE scheduled_jobs (
    job_key TEXT   NOT NULL PRIMARY KEY,
    done_at BIGINT NOT NULL
);
