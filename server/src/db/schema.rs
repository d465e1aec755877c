//! The one portable diesel schema for both backends (`migrations/sqlite` and
//! `migrations/postgres` must produce exactly these tables and columns; the migration test
//! checks both against each other and loads every table through these definitions).
//!
//! Only SQL types that diesel's `MultiConnection` shares between SQLite and PostgreSQL are
//! used: `Text` (ids, enums, dates, JSON), `BigInt` (times in ms since epoch, counters),
//! `Double`, `Bool`.

diesel::table! {
    areas (id) {
        id -> Text,
        name -> Text,
        code -> Nullable<Text>,
        level -> Text,
        parent_id -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        display_name -> Nullable<Text>,
        role -> Text,
        area_id -> Nullable<Text>,
        department -> Nullable<Text>,
        active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    user_grids (user_id, grid_id) {
        user_id -> Text,
        grid_id -> Text,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        user_id -> Text,
        name -> Nullable<Text>,
        created_at -> BigInt,
        last_seen_at -> Nullable<BigInt>,
        last_sync_at -> Nullable<BigInt>,
        last_applied_seq -> BigInt,
        pending_count -> Nullable<BigInt>,
        app_version -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        device_id -> Text,
        user_id -> Text,
        token_hash -> Text,
        family_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_failures (key) {
        key -> Text,
        window_start -> BigInt,
        count -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> BigInt,
        actor_id -> Nullable<Text>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        details -> Nullable<Text>,
    }
}

diesel::table! {
    households (id) {
        id -> Text,
        grid_id -> Text,
        address -> Text,
        building -> Nullable<Text>,
        unit -> Nullable<Text>,
        room -> Nullable<Text>,
        head_name -> Nullable<Text>,
        phone -> Nullable<Text>,
        members -> Nullable<BigInt>,
        tags -> Nullable<Text>,
        care_level -> Nullable<Text>,
        notes -> Nullable<Text>,
        deleted -> Bool,
        change_seq -> BigInt,
        versions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin_device -> Nullable<Text>,
        client_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    patrols (id) {
        id -> Text,
        grid_id -> Text,
        worker_id -> Nullable<Text>,
        started_at -> Nullable<BigInt>,
        ended_at -> Nullable<BigInt>,
        status -> Nullable<Text>,
        summary -> Nullable<Text>,
        change_seq -> BigInt,
        versions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin_device -> Nullable<Text>,
        client_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    track_points (id) {
        id -> Text,
        grid_id -> Text,
        patrol_id -> Text,
        recorded_at -> BigInt,
        lat -> Double,
        lon -> Double,
        accuracy_m -> Nullable<Double>,
        change_seq -> BigInt,
        versions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin_device -> Nullable<Text>,
        client_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    visits (id) {
        id -> Text,
        grid_id -> Text,
        household_id -> Nullable<Text>,
        worker_id -> Nullable<Text>,
        visited_at -> Nullable<BigInt>,
        mode -> Nullable<Text>,
        outcome -> Nullable<Text>,
        summary -> Nullable<Text>,
        follow_up_due -> Nullable<Text>,
        lat -> Nullable<Double>,
        lon -> Nullable<Double>,
        change_seq -> BigInt,
        versions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin_device -> Nullable<Text>,
        client_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    needs (id) {
        id -> Text,
        grid_id -> Text,
        household_id -> Nullable<Text>,
        visit_id -> Nullable<Text>,
        category -> Nullable<Text>,
        description -> Nullable<Text>,
        urgency -> Nullable<Text>,
        status -> Nullable<Text>,
        due_on -> Nullable<Text>,
        resolution -> Nullable<Text>,
        change_seq -> BigInt,
        versions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin_device -> Nullable<Text>,
        client_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    hazards (id) {
        id -> Text,
        grid_id -> Text,
        reporter_id -> Nullable<Text>,
        source -> Nullable<Text>,
        category -> Nullable<Text>,
        severity -> Nullable<Text>,
        title -> Text,
        description -> Nullable<Text>,
        lat -> Nullable<Double>,
        lon -> Nullable<Double>,
        address -> Nullable<Text>,
        status -> Text,
        assignee_department -> Nullable<Text>,
        due_at -> Nullable<BigInt>,
        change_seq -> BigInt,
        versions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin_device -> Nullable<Text>,
        client_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    hazard_actions (id) {
        id -> Text,
        grid_id -> Text,
        hazard_id -> Text,
        actor_id -> Text,
        action -> Text,
        note -> Nullable<Text>,
        department -> Nullable<Text>,
        due_at -> Nullable<BigInt>,
        at -> Nullable<BigInt>,
        effect -> Text,
        reason -> Nullable<Text>,
        server_order -> BigInt,
        change_seq -> BigInt,
        versions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin_device -> Nullable<Text>,
        client_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    attachments (id) {
        id -> Text,
        grid_id -> Text,
        owner_collection -> Text,
        owner_id -> Text,
        sha256 -> Text,
        media_type -> Nullable<Text>,
        bytes -> Nullable<BigInt>,
        taken_at -> Nullable<BigInt>,
        lat -> Nullable<Double>,
        lon -> Nullable<Double>,
        change_seq -> BigInt,
        versions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        origin_device -> Nullable<Text>,
        client_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    grid_clock (grid_id) {
        grid_id -> Text,
        counter -> BigInt,
    }
}

diesel::table! {
    record_index (collection, record_id) {
        collection -> Text,
        record_id -> Text,
        grid_id -> Text,
        change_seq -> BigInt,
    }
}

diesel::table! {
    conflicts (id) {
        id -> Text,
        collection -> Text,
        record_id -> Text,
        grid_id -> Text,
        field -> Text,
        current_value -> Nullable<Text>,
        current_version -> Nullable<Text>,
        current_device -> Nullable<Text>,
        incoming_value -> Nullable<Text>,
        incoming_version -> Text,
        incoming_device -> Nullable<Text>,
        winner -> Text,
        status -> Text,
        created_at -> BigInt,
        resolved_at -> Nullable<BigInt>,
        resolved_by -> Nullable<Text>,
        resolution -> Nullable<Text>,
        incoming_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    rejections (id) {
        id -> Text,
        device_id -> Text,
        user_id -> Text,
        seq -> BigInt,
        mutation_id -> Text,
        collection -> Nullable<Text>,
        record_id -> Nullable<Text>,
        grid_id -> Nullable<Text>,
        code -> Text,
        message -> Text,
        mutation -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(users -> areas (area_id));
diesel::joinable!(user_grids -> users (user_id));
diesel::joinable!(user_grids -> areas (grid_id));
diesel::joinable!(devices -> users (user_id));
diesel::joinable!(refresh_tokens -> devices (device_id));

diesel::allow_tables_to_appear_in_same_query!(
    areas,
    users,
    user_grids,
    devices,
    refresh_tokens,
    login_failures,
    audit_log,
    households,
    patrols,
    track_points,
    visits,
    needs,
    hazards,
    hazard_actions,
    attachments,
    grid_clock,
    record_index,
    conflicts,
    rejections,
);

/// Every table above, for tests and tooling (e.g. the schema comparison).
pub const ALL_TABLES: &[&str] = &[
    "areas",
    "users",
    "user_grids",
    "devices",
    "refresh_tokens",
    "login_failures",
    "audit_log",
    "households",
    "patrols",
    "track_points",
    "visits",
    "needs",
    "hazards",
    "hazard_actions",
    "attachments",
    "grid_clock",
    "record_index",
    "conflicts",
    "rejections",
];
