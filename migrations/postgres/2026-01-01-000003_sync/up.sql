-- Sync bookkeeping: per-grid change counters and the record index that gap-free pull
-- reads, conflicts kept for review, and rejected mutations kept for phones and supervisors.

-- One row per grid. Every write to a synced record bumps its grid's counter inside the
-- write's transaction (INSERT .. ON CONFLICT DO UPDATE .. RETURNING). On PostgreSQL the
-- bump takes the row lock and holds it to commit, so a later writer of the same grid waits
-- and gets a larger number only after the earlier one committed: per grid, commit order is
-- counter order, and a reader that has seen counter N has seen everything below N.
-- On SQLite write transactions (BEGIN IMMEDIATE) are serialised, which gives the same.
CREATE TABLE grid_clock (
    grid_id TEXT NOT NULL PRIMARY KEY,
    counter BIGINT NOT NULL
);

-- The latest change_seq of every synced record, across collections: pull reads
-- WHERE grid_id = ? AND change_seq > cursor ORDER BY change_seq.
CREATE TABLE record_index (
    collection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    grid_id    TEXT NOT NULL,
    change_seq BIGINT NOT NULL,
    PRIMARY KEY (collection, record_id)
);
CREATE INDEX record_index_grid_seq_idx ON record_index (grid_id, change_seq);

-- A concurrent edit of one field: both values, both versions, who won. Values are JSON text.
CREATE TABLE conflicts (
    id               TEXT NOT NULL PRIMARY KEY,
    collection       TEXT NOT NULL,
    record_id        TEXT NOT NULL,
    grid_id          TEXT NOT NULL,
    field            TEXT NOT NULL,
    current_value    TEXT,
    current_version  TEXT,
    current_device   TEXT,
    incoming_value   TEXT,
    incoming_version TEXT NOT NULL,
    incoming_device  TEXT,
    winner           TEXT NOT NULL CHECK (winner IN ('current', 'incoming')),
    status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at       BIGINT NOT NULL,
    resolved_at      BIGINT,
    resolved_by      TEXT,
    resolution       TEXT
);
CREATE INDEX conflicts_status_idx ON conflicts (status, created_at);
CREATE INDEX conflicts_grid_status_idx ON conflicts (grid_id, status);
CREATE INDEX conflicts_record_idx ON conflicts (collection, record_id);

-- A mutation the server refused, as received (JSON text), so the reason stays visible to
-- the phone (even if the push response was lost) and to supervisors. One per (device, seq).
CREATE TABLE rejections (
    id          TEXT NOT NULL PRIMARY KEY,
    device_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    mutation_id TEXT NOT NULL,
    collection  TEXT,
    record_id   TEXT,
    grid_id     TEXT,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    mutation    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX rejections_device_seq_key ON rejections (device_id, seq);
CREATE INDEX rejections_grid_idx ON rejections (grid_id, created_at);
CREATE INDEX rejections_user_idx ON rejections (user_id, created_at);
CREATE INDEX rejections_record_idx ON rejections (collection, record_id);
