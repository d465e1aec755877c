-- One table per synced collection, with a real typed column for every field of the
-- contract's "Record fields" table, so supervisors' queries are plain SQL.
--
-- Common columns on every collection:
--   id            client-made UUID (v7)
--   grid_id       the grid (an area with level 'grid') the record belongs to
--   change_seq    the grid's change counter at this record's last write (see grid_clock
--                 in the sync migration): what gap-free pull orders by
--   versions      JSON object field -> HLC stamp of that field's current value (sync
--                 metadata, not data)
--   created_at, updated_at   server times (ms since epoch, UTC)
--   origin_device the device whose mutation created the record (NULL: made on the server)
--   client_time   the device's time when the record was written, for sync-lag statistics
-- Times are BIGINT ms since epoch (UTC); dates (due_on, follow_up_due) TEXT 'YYYY-MM-DD';
-- tags a TEXT JSON array (filter with LIKE '%"elderly_alone"%').
-- No foreign keys between synced records: they arrive offline and in any order, and their
-- integrity is checked by the sync layer, which can reject a mutation instead of failing
-- the whole push.

CREATE TABLE households (
    id            TEXT NOT NULL PRIMARY KEY,
    grid_id       TEXT NOT NULL REFERENCES areas (id),
    address       TEXT NOT NULL,
    building      TEXT,
    unit          TEXT,
    room          TEXT,
    head_name     TEXT,
    phone         TEXT,
    members       BIGINT,
    tags          TEXT,
    care_level    TEXT,
    notes         TEXT,
    deleted       BOOLEAN NOT NULL DEFAULT FALSE,
    change_seq    BIGINT NOT NULL,
    versions      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    origin_device TEXT,
    client_time   BIGINT
);
CREATE INDEX households_grid_idx ON households (grid_id, deleted);
CREATE INDEX households_grid_care_idx ON households (grid_id, care_level);

CREATE TABLE patrols (
    id            TEXT NOT NULL PRIMARY KEY,
    grid_id       TEXT NOT NULL REFERENCES areas (id),
    worker_id     TEXT,
    started_at    BIGINT,
    ended_at      BIGINT,
    status        TEXT,
    summary       TEXT,
    change_seq    BIGINT NOT NULL,
    versions      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    origin_device TEXT,
    client_time   BIGINT
);
CREATE INDEX patrols_grid_started_idx ON patrols (grid_id, started_at);
CREATE INDEX patrols_worker_started_idx ON patrols (worker_id, started_at);

CREATE TABLE track_points (
    id            TEXT NOT NULL PRIMARY KEY,
    grid_id       TEXT NOT NULL REFERENCES areas (id),
    patrol_id     TEXT NOT NULL,
    recorded_at   BIGINT NOT NULL,
    lat           DOUBLE PRECISION NOT NULL,
    lon           DOUBLE PRECISION NOT NULL,
    accuracy_m    DOUBLE PRECISION,
    change_seq    BIGINT NOT NULL,
    versions      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    origin_device TEXT,
    client_time   BIGINT
);
CREATE INDEX track_points_patrol_idx ON track_points (patrol_id, recorded_at);
CREATE INDEX track_points_grid_idx ON track_points (grid_id);

CREATE TABLE visits (
    id            TEXT NOT NULL PRIMARY KEY,
    grid_id       TEXT NOT NULL REFERENCES areas (id),
    household_id  TEXT,
    worker_id     TEXT,
    visited_at    BIGINT,
    mode          TEXT,
    outcome       TEXT,
    summary       TEXT,
    follow_up_due TEXT,
    lat           DOUBLE PRECISION,
    lon           DOUBLE PRECISION,
    change_seq    BIGINT NOT NULL,
    versions      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    origin_device TEXT,
    client_time   BIGINT
);
CREATE INDEX visits_grid_visited_idx ON visits (grid_id, visited_at);
CREATE INDEX visits_household_idx ON visits (household_id, visited_at);
CREATE INDEX visits_worker_visited_idx ON visits (worker_id, visited_at);

CREATE TABLE needs (
    id            TEXT NOT NULL PRIMARY KEY,
    grid_id       TEXT NOT NULL REFERENCES areas (id),
    household_id  TEXT,
    visit_id      TEXT,
    category      TEXT,
    description   TEXT,
    urgency       TEXT,
    status        TEXT,
    due_on        TEXT,
    resolution    TEXT,
    change_seq    BIGINT NOT NULL,
    versions      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    origin_device TEXT,
    client_time   BIGINT
);
CREATE INDEX needs_grid_status_idx ON needs (grid_id, status);
CREATE INDEX needs_household_idx ON needs (household_id);
CREATE INDEX needs_visit_idx ON needs (visit_id);

-- status, assignee_department and due_at are derived by the server from hazard_actions.
CREATE TABLE hazards (
    id                  TEXT NOT NULL PRIMARY KEY,
    grid_id             TEXT NOT NULL REFERENCES areas (id),
    reporter_id         TEXT,
    source              TEXT,
    category            TEXT,
    severity            TEXT,
    title               TEXT NOT NULL,
    description         TEXT,
    lat                 DOUBLE PRECISION,
    lon                 DOUBLE PRECISION,
    address             TEXT,
    status              TEXT NOT NULL DEFAULT 'reported',
    assignee_department TEXT,
    due_at              BIGINT,
    change_seq          BIGINT NOT NULL,
    versions            TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    origin_device       TEXT,
    client_time         BIGINT
);
CREATE INDEX hazards_grid_status_idx ON hazards (grid_id, status);
CREATE INDEX hazards_grid_created_idx ON hazards (grid_id, created_at);
CREATE INDEX hazards_department_status_idx ON hazards (assignee_department, status);
CREATE INDEX hazards_status_due_idx ON hazards (status, due_at);
CREATE INDEX hazards_reporter_idx ON hazards (reporter_id, created_at);

-- Append-only; server_order is the order in which the server received the actions, which
-- is the order the workflow applies them in. effect ('applied' | 'no_effect') and reason
-- are the server's verdict.
CREATE TABLE hazard_actions (
    id            TEXT NOT NULL PRIMARY KEY,
    grid_id       TEXT NOT NULL REFERENCES areas (id),
    hazard_id     TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    action        TEXT NOT NULL,
    note          TEXT,
    department    TEXT,
    due_at        BIGINT,
    at            BIGINT,
    effect        TEXT NOT NULL CHECK (effect IN ('applied', 'no_effect')),
    reason        TEXT,
    server_order  BIGINT NOT NULL,
    change_seq    BIGINT NOT NULL,
    versions      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    origin_device TEXT,
    client_time   BIGINT
);
CREATE INDEX hazard_actions_hazard_idx ON hazard_actions (hazard_id, server_order);
CREATE INDEX hazard_actions_actor_idx ON hazard_actions (actor_id, created_at);
CREATE INDEX hazard_actions_grid_idx ON hazard_actions (grid_id, action);

-- Append-only metadata; the bytes travel separately.
CREATE TABLE attachments (
    id               TEXT NOT NULL PRIMARY KEY,
    grid_id          TEXT NOT NULL REFERENCES areas (id),
    owner_collection TEXT NOT NULL,
    owner_id         TEXT NOT NULL,
    sha256           TEXT NOT NULL,
    media_type       TEXT,
    bytes            BIGINT,
    taken_at         BIGINT,
    lat              DOUBLE PRECISION,
    lon              DOUBLE PRECISION,
    change_seq       BIGINT NOT NULL,
    versions         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    origin_device    TEXT,
    client_time      BIGINT
);
CREATE INDEX attachments_owner_idx ON attachments (owner_collection, owner_id);
CREATE INDEX attachments_grid_idx ON attachments (grid_id);
CREATE INDEX attachments_sha256_idx ON attachments (sha256);
