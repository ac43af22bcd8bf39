-- procbot's store, SQLite flavour. Portable column types only (INTEGER, BIGINT, TEXT):
-- times are unix milliseconds, flags are 0/1, hashes are lowercase hex.

-- Every version of a procedure procbot has announced, so evidence names titles and versions
-- even after the file is gone.
CREATE TABLE procedure_versions (
    procedure_id   TEXT    NOT NULL,
    content_hash   TEXT    NOT NULL,
    version        TEXT,
    title          TEXT    NOT NULL,
    owner          TEXT,
    classification TEXT    NOT NULL,
    path           TEXT    NOT NULL,
    commit_id      TEXT,
    commit_author  TEXT,
    committed_at   BIGINT,
    first_seen_at  BIGINT  NOT NULL,
    PRIMARY KEY (procedure_id, content_hash)
);

-- One row per detected change that was announced.
CREATE TABLE announcements (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    announce_key  TEXT    NOT NULL UNIQUE,
    procedure_id  TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    from_version  TEXT,
    to_version    TEXT,
    content_hash  TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    commit_id     TEXT,
    requires_ack  BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX announcements_procedure ON announcements (procedure_id, id);

-- Who had to acknowledge which version: the audience as it was when the version was announced.
CREATE TABLE ack_requirements (
    procedure_id    TEXT   NOT NULL,
    content_hash    TEXT   NOT NULL,
    email           TEXT   NOT NULL,
    version         TEXT,
    announcement_id BIGINT NOT NULL,
    required_since  BIGINT NOT NULL,
    PRIMARY KEY (procedure_id, content_hash, email)
);
CREATE INDEX ack_requirements_email ON ack_requirements (email);

-- One per (person, procedure, content hash: the hash fixes the version), however often the
-- button is clicked.
CREATE TABLE acknowledgements (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    email            TEXT   NOT NULL,
    procedure_id     TEXT   NOT NULL,
    version          TEXT   NOT NULL,
    content_hash     TEXT   NOT NULL,
    acknowledged_at  BIGINT NOT NULL,
    platform         TEXT   NOT NULL,
    workspace        TEXT   NOT NULL,
    user_id          TEXT   NOT NULL,
    message_ref      TEXT,
    voluntary        BIGINT NOT NULL,
    UNIQUE (email, procedure_id, content_hash)
);

-- Owners' answers to review nudges.
CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    procedure_id  TEXT   NOT NULL,
    content_hash  TEXT   NOT NULL,
    version       TEXT,
    email         TEXT   NOT NULL,
    outcome       TEXT   NOT NULL,
    reviewed_at   BIGINT NOT NULL,
    snooze_until  BIGINT
);
CREATE INDEX reviews_procedure ON reviews (procedure_id, reviewed_at);

-- Chat accounts: (platform, workspace or guild, user id) -> a person in the directory.
CREATE TABLE identities (
    platform   TEXT   NOT NULL,
    workspace  TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
    email      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (platform, workspace, user_id)
);
CREATE INDEX identities_email ON identities (email);

-- Every outbound message, durable before it is sent.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key  TEXT   NOT NULL UNIQUE,
    platform         TEXT   NOT NULL,
    destination      TEXT   NOT NULL,
    message          TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_error       TEXT,
    message_ref      TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_message_ref ON outbox (platform, message_ref);

-- The append-only, hash-chained evidence ledger.
CREATE TABLE ledger (
    seq        BIGINT NOT NULL PRIMARY KEY,
    recorded_at BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    prev_hash  TEXT   NOT NULL,
    hash       TEXT   NOT NULL
);

-- The chain's tip: appends lock this row, so they are serialised across instances, and a
-- deleted tail entry is detected.
CREATE TABLE ledger_head (
    id   BIGINT NOT NULL PRIMARY KEY,
    seq  BIGINT NOT NULL,
    hash TEXT   NOT NULL
);
INSERT INTO ledger_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
