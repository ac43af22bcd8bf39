-- What several procbot instances on one database share about repository sync: the last
-- announced snapshot (the same JSON the state file holds), and a lock that lets one instance
-- at a time compare a new snapshot with it and announce the difference. A lock whose holder
-- died expires at `until`.
CREATE TABLE announced_state (
    name     TEXT   NOT NULL PRIMARY KEY,
    state    TEXT   NOT NULL,
    saved_at BIGINT NOT NULL
);
CREATE TABLE sync_locks (
    name   TEXT   NOT NULL PRIMARY KEY,
    holder TEXT   NOT NULL,
    until  BIGINT NOT NULL
);
