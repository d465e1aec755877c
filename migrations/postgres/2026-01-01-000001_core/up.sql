-- Core tables: the area tree, users and their grids, devices and their sessions,
-- login-failure windows for rate limiting, and the audit log.
-- Portable conventions (shared with ../../sqlite): ids TEXT (UUID strings), times BIGINT
-- milliseconds since the Unix epoch (UTC), JSON as TEXT, booleans BOOLEAN.

CREATE TABLE areas (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    code       TEXT,
    level      TEXT NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid')),
    parent_id  TEXT REFERENCES areas (id),
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX areas_code_key ON areas (code);
CREATE INDEX areas_parent_idx ON areas (parent_id);
CREATE INDEX areas_level_idx ON areas (level);

CREATE TABLE users (
    id            TEXT NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    display_name  TEXT,
    role          TEXT NOT NULL CHECK (role IN ('worker', 'supervisor', 'department', 'admin')),
    area_id       TEXT REFERENCES areas (id),
    department    TEXT,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE INDEX users_area_idx ON users (area_id);
CREATE INDEX users_role_idx ON users (role);

CREATE TABLE user_grids (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grid_id TEXT NOT NULL REFERENCES areas (id),
    PRIMARY KEY (user_id, grid_id)
);
CREATE INDEX user_grids_grid_idx ON user_grids (grid_id);

CREATE TABLE devices (
    id               TEXT NOT NULL PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT,
    last_sync_at     BIGINT,
    last_applied_seq BIGINT NOT NULL DEFAULT 0,
    pending_count    BIGINT,
    app_version      TEXT,
    revoked_at       BIGINT
);
CREATE INDEX devices_user_idx ON devices (user_id);

CREATE TABLE refresh_tokens (
    id         TEXT NOT NULL PRIMARY KEY,
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    family_id  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_device_idx ON refresh_tokens (device_id);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Fixed-window counters of failed logins, keyed e.g. 'user:NAME' or 'ip:ADDR'. Kept in the
-- database (not in memory) so limits hold across restarts and across several server processes.
CREATE TABLE login_failures (
    key          TEXT NOT NULL PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id          TEXT NOT NULL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    details     TEXT
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at);
