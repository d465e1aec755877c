//! Migrations run up, down (all) and up again on SQLite and PostgreSQL, and both backends
//! end with the same schema (tables, columns, types, nullability, indexes), which is also
//! the schema that `db::schema` (diesel) and sync-core's `Collection` field specs describe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use grid_server::db::schema::{self, ALL_TABLES};
use grid_server::db::{migrations, Backend, Collection, DbConnection};
use grid_server::testing::TestDb;

/// table → column → (lowercase SQL type, nullable); plus (index name, table).
#[derive(Debug, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, BTreeMap<String, (String, bool)>>,
    indexes: BTreeSet<(String, String)>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "type")]
    ty: String,
    #[diesel(sql_type = BigInt)]
    notnull: i64,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct IndexRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    table_name: String,
}

fn introspect(conn: &mut DbConnection) -> Schema {
    let mut tables = BTreeMap::new();
    let indexes: BTreeSet<(String, String)> = match conn {
        DbConnection::Sqlite(c) => {
            let names: Vec<Name> = diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations'",
            )
            .load(c)
            .unwrap();
            for Name { name } in names {
                let cols: Vec<SqliteColumn> =
                    diesel::sql_query("SELECT name, type, \"notnull\" FROM pragma_table_info(?)")
                        .bind::<Text, _>(&name)
                        .load(c)
                        .unwrap();
                let cols = cols
                    .into_iter()
                    .map(|col| (col.name, (col.ty.to_lowercase(), col.notnull == 0)))
                    .collect();
                tables.insert(name, cols);
            }
            let rows: Vec<IndexRow> = diesel::sql_query(
                "SELECT name, tbl_name AS table_name FROM sqlite_master WHERE type = 'index' \
                 AND name NOT LIKE 'sqlite_autoindex_%'",
            )
            .load(c)
            .unwrap();
            rows.into_iter().map(|r| (r.name, r.table_name)).collect()
        }
        DbConnection::Postgresql(c) => {
            let names: Vec<Name> = diesel::sql_query(
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
                 AND table_name <> '__diesel_schema_migrations'",
            )
            .load(c)
            .unwrap();
            for Name { name } in names {
                let cols: Vec<PgColumn> = diesel::sql_query(
                    "SELECT column_name::text AS column_name, data_type::text AS data_type, \
                     is_nullable::text AS is_nullable FROM information_schema.columns \
                     WHERE table_schema = 'public' AND table_name = $1",
                )
                .bind::<Text, _>(&name)
                .load(c)
                .unwrap();
                let cols = cols
                    .into_iter()
                    .map(|col| (col.column_name, (col.data_type, col.is_nullable == "YES")))
                    .collect();
                tables.insert(name, cols);
            }
            let rows: Vec<IndexRow> = diesel::sql_query(
                "SELECT indexname::text AS name, tablename::text AS table_name FROM pg_indexes \
                 WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey' \
                 AND tablename <> '__diesel_schema_migrations'",
            )
            .load(c)
            .unwrap();
            rows.into_iter().map(|r| (r.name, r.table_name)).collect()
        }
    };
    Schema { tables, indexes }
}

/// The column names `db::schema` declares for each table, read from the SQL diesel
/// generates for `SELECT all_columns`.
fn diesel_columns() -> BTreeMap<String, BTreeSet<String>> {
    macro_rules! columns {
        ($($t:ident),* $(,)?) => {{
            let mut out = BTreeMap::new();
            $(
                let sql = diesel::debug_query::<diesel::sqlite::Sqlite, _>(
                    &schema::$t::table.select(schema::$t::all_columns),
                )
                .to_string();
                out.insert(stringify!($t).to_owned(), select_list(&sql, stringify!($t)));
            )*
            out
        }};
    }
    columns!(
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
    )
}

/// Column names out of "SELECT `t`.`a`, `t`.`b` FROM `t` -- binds: []".
fn select_list(sql: &str, table: &str) -> BTreeSet<String> {
    let list = sql
        .strip_prefix("SELECT ")
        .and_then(|s| s.split(" FROM ").next())
        .unwrap();
    list.split(", ")
        .map(|c| {
            c.trim_start_matches(&format!("`{table}`."))
                .trim_matches('`')
                .to_owned()
        })
        .collect()
}

fn check_against_code(schema: &Schema, backend: Backend) {
    let expected: BTreeSet<&str> = ALL_TABLES.iter().copied().collect();
    let actual: BTreeSet<&str> = schema.tables.keys().map(String::as_str).collect();
    assert_eq!(actual, expected, "{backend:?}: tables");
    for (table, columns) in diesel_columns() {
        let db_columns: BTreeSet<String> = schema.tables[&table].keys().cloned().collect();
        assert_eq!(
            db_columns, columns,
            "{backend:?}: columns of {table} vs db::schema"
        );
    }
    let common = [
        "id",
        "grid_id",
        "change_seq",
        "versions",
        "created_at",
        "updated_at",
        "origin_device",
        "client_time",
    ];
    for collection in Collection::ALL {
        let cols = &schema.tables[collection.as_str()];
        let fields = collection.fields().iter().map(|f| f.name);
        for field in fields.chain(common.iter().copied()) {
            assert!(
                cols.contains_key(field),
                "{backend:?}: {collection} has no column {field}"
            );
        }
    }
}

/// How many migrations the backend's folder holds.
fn migration_count(db: &TestDb) -> usize {
    let folder = match db.backend {
        grid_server::db::Backend::Sqlite => "sqlite",
        grid_server::db::Backend::Postgres => "postgres",
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(folder);
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count()
}

fn up_down_up(db: &TestDb) -> Schema {
    let expected = migration_count(db);
    let mut conn = db.connect();
    assert_eq!(db.backend, conn.backend());
    let applied = migrations::run_pending(&mut conn).unwrap();
    assert_eq!(applied.len(), expected, "{applied:?}");
    assert!(migrations::pending(&mut conn).unwrap().is_empty());
    let first = introspect(&mut conn);
    check_against_code(&first, db.backend);

    let reverted = migrations::revert_all(&mut conn).unwrap();
    assert_eq!(reverted.len(), expected);
    let empty = introspect(&mut conn);
    assert!(
        empty.tables.is_empty(),
        "left after down: {:?}",
        empty.tables.keys()
    );
    assert!(
        empty.indexes.is_empty(),
        "left after down: {:?}",
        empty.indexes
    );
    assert_eq!(migrations::pending(&mut conn).unwrap().len(), expected);

    migrations::run_pending(&mut conn).unwrap();
    let again = introspect(&mut conn);
    assert_eq!(
        first, again,
        "{:?}: up, down, up changed the schema",
        db.backend
    );
    // Running again is a no-op.
    assert!(migrations::run_pending(&mut conn).unwrap().is_empty());
    again
}

#[test]
fn sqlite_up_down_up() {
    let db = TestDb::create(Backend::Sqlite).unwrap();
    up_down_up(&db);
}

#[test]
fn postgres_up_down_up() {
    if let Some(db) = TestDb::create(Backend::Postgres) {
        up_down_up(&db);
    }
}

#[test]
fn sqlite_and_postgres_schemas_match() {
    let sqlite = up_down_up(&TestDb::create(Backend::Sqlite).unwrap());
    let Some(pg_db) = TestDb::create(Backend::Postgres) else {
        return;
    };
    let postgres = up_down_up(&pg_db);
    // Table by table, so a difference is easy to read.
    for (table, columns) in &sqlite.tables {
        assert_eq!(Some(columns), postgres.tables.get(table), "table {table}");
    }
    assert_eq!(sqlite, postgres);
}
