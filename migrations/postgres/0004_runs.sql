-- Procedure runs: one procedure version performed as a checklist. `run_key` makes a
-- scheduled occurrence start once, across restarts and instances. Steps and assignees are
-- JSON arrays of texts and emails.
CREATE TABLE runs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_key       TEXT   NOT NULL UNIQUE,
    procedure_id  TEXT   NOT NULL,
    content_hash  TEXT   NOT NULL,
    version       TEXT,
    commit_id     TEXT,
    title         TEXT   NOT NULL,
    owner         TEXT,
    run_trigger   TEXT   NOT NULL,
    scheduled_for BIGINT,
    due_at        BIGINT,
    started_at    BIGINT NOT NULL,
    started_by    TEXT,
    assignees     TEXT   NOT NULL,
    steps         TEXT   NOT NULL,
    finished_at   BIGINT,
    finished_by   TEXT,
    deviations    BIGINT
);
CREATE INDEX runs_procedure ON runs (procedure_id);
CREATE INDEX runs_open ON runs (finished_at);

-- Each step's current outcome, note, who and when; every change is also a ledger entry.
CREATE TABLE run_steps (
    run_id      BIGINT NOT NULL,
    step        BIGINT NOT NULL,
    outcome     TEXT,
    note        TEXT,
    email       TEXT   NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, step)
);
