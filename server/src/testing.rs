//! Integration-test harness (feature `test-support`): a fresh database per test on SQLite
//! and, when `TEST_DATABASE_URL` is set, on PostgreSQL; the real server on `127.0.0.1:0`;
//! an HTTP client.
//!
//! Write a test once, run it on both backends:
//!
//! ```ignore
//! grid_server::backend_tests! {
//!     async fn healthz_answers(server) {
//!         let resp = server.get("/healthz").await;
//!         assert_eq!(resp.status, 200);
//!     }
//! }
//! ```
//!
//! generates `healthz_answers::sqlite` and `healthz_answers::postgres` (`#[test]` functions,
//! each on its own actix runtime). Without `TEST_DATABASE_URL` the PostgreSQL variant prints
//! "skipping PostgreSQL: TEST_DATABASE_URL not set" and passes. Or, in one test:
//! `testing::block_on(testing::for_each_backend(|server| async move { … }))`.
//!
//! Invariants:
//! - Every `TestDb` is new and empty: a temp file for SQLite; a uniquely named database
//!   created through the `TEST_DATABASE_URL` connection for PostgreSQL, dropped (FORCE) when
//!   the `TestDb` is dropped.
//! - `TestServer` runs the server on its own thread with its own actix system, so tests may
//!   use any runtime and block freely; dropping it stops the server, then drops the database.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Once;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use diesel::{Connection, RunQueryDsl};
use serde_json::Value;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::db::{migrations, Backend, DbConnection, DbPool, DbTarget, PoolOptions};
use crate::state::AppState;

/// The environment variable naming a PostgreSQL server where tests may create databases.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// Both backends, in the order tests run them.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// Run a future to completion on a fresh actix system (what each generated test does).
pub fn block_on<F: Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

/// The PostgreSQL admin URL, or `None` after printing the skip notice.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            static NOTICE: Once = Once::new();
            NOTICE.call_once(|| {
                eprintln!("skipping PostgreSQL: {TEST_DATABASE_URL} not set");
            });
            None
        }
    }
}

/// Replace the database name in a PostgreSQL URL, keeping credentials, host and query.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let prefix = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{database}?{q}"),
        None => format!("{prefix}/{database}"),
    }
}

/// A fresh, empty database (no migrations run).
pub struct TestDb {
    /// Its URL (`sqlite://…` or `postgres://…`).
    pub url: String,
    /// Its backend.
    pub backend: Backend,
    // Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
    // (admin URL, database name) to drop on Drop.
    postgres: Option<(String, String)>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("backend", &self.backend)
            .field("url", &crate::db::redact_url(&self.url))
            .finish()
    }
}

impl TestDb {
    /// A new database on `backend`; `None` for PostgreSQL without `TEST_DATABASE_URL`.
    /// Panics if the database cannot be created (a test failure, not a skip).
    #[allow(clippy::expect_used)]
    pub fn create(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create temp dir");
                let url = format!("sqlite://{}", dir.path().join("grid.db").display());
                Some(TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url()?;
                let name = format!("grid_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = diesel::PgConnection::establish(&admin_url).unwrap_or_else(|e| {
                    panic!(
                        "cannot connect to {TEST_DATABASE_URL} ({}): {e}",
                        crate::db::redact_url(&admin_url)
                    )
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("CREATE DATABASE for the test");
                Some(TestDb {
                    url: with_database(&admin_url, &name),
                    backend,
                    _dir: None,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    /// One new connection (SQLite pragmas applied), outside any pool.
    #[allow(clippy::expect_used)]
    pub fn connect(&self) -> DbConnection {
        DbTarget::parse(&self.url)
            .expect("test database URL")
            .connect()
            .expect("connect to the test database")
    }

    /// A small pool on this database, with every migration applied.
    pub fn migrated_pool(&self) -> DbPool {
        self.migrated_pool_with(test_pool_options())
    }

    /// A pool with `options` on this database, with every migration applied.
    #[allow(clippy::expect_used)]
    pub fn migrated_pool_with(&self, options: PoolOptions) -> DbPool {
        let pool = DbPool::connect_with(&self.url, options).expect("test pool");
        let mut conn = pool.get().expect("test connection");
        migrations::run_pending(&mut conn).expect("migrations");
        pool
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            match diesel::PgConnection::establish(&admin_url) {
                Ok(mut admin) => {
                    if let Err(e) =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin)
                    {
                        eprintln!("warning: could not drop test database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("warning: could not drop test database {name}: {e}"),
            }
        }
    }
}

fn test_pool_options() -> PoolOptions {
    PoolOptions {
        max_size: 4,
        min_idle: 1,
        ..PoolOptions::default()
    }
}

/// The backends available to this run (SQLite always; PostgreSQL with
/// `TEST_DATABASE_URL`).
pub fn available_backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    if postgres_admin_url().is_some() {
        out.push(Backend::Postgres);
    }
    out
}

/// A response read whole: status, headers, body text and (when it parses) JSON.
#[derive(Debug)]
pub struct TestResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub json: Value,
}

impl TestResponse {
    /// The envelope's error code, if this is an error response.
    pub fn error_code(&self) -> Option<&str> {
        self.json["error"]["code"].as_str()
    }
}

/// The real server on `127.0.0.1:<random port>`, on its own database and data dir.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The server's state (its pool reaches the test database directly).
    pub state: AppState,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    client: reqwest::Client,
    data_dir: tempfile::TempDir,
    // Declared last: dropped after the server and its pool are gone.
    db: TestDb,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("base_url", &self.base_url)
            .field("db", &self.db)
            .finish()
    }
}

impl TestServer {
    /// Start a server on a fresh migrated database of `backend`; `None` for PostgreSQL
    /// without `TEST_DATABASE_URL`.
    pub fn start(backend: Backend) -> Option<TestServer> {
        Some(TestServer::start_on(TestDb::create(backend)?, |_| {}))
    }

    /// Start a server on `db` (migrated here), after letting `adjust` change the config.
    #[allow(clippy::expect_used)]
    pub fn start_on(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut config = Config::new(db.url.clone(), data_dir.path());
        config.workers = Some(2);
        config.pool = test_pool_options();
        adjust(&mut config);
        let pool = db.migrated_pool_with(config.pool.clone());
        let jwt = JwtKeys::from_secret(b"test-secret-test-secret-test-secret!");
        let state = AppState::new(pool, config, jwt).expect("app state");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = std::sync::mpsc::channel();
        let server_state = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match crate::app::run(listener, server_state).await {
                        Ok(server) => {
                            let _ = tx.send(Ok(server.handle()));
                            let _ = server.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .expect("spawn server thread");
        let handle = rx
            .recv()
            .expect("server thread answered")
            .expect("server started");
        TestServer {
            base_url: format!("http://{addr}"),
            state,
            handle,
            thread: Some(thread),
            client: reqwest::Client::new(),
            data_dir,
            db,
        }
    }

    /// The backend under test.
    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// The test database.
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// The server's pool.
    pub fn pool(&self) -> &DbPool {
        &self.state.pool
    }

    /// The server's data dir.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// `base_url + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Send a request and read the whole response.
    #[allow(clippy::expect_used)]
    pub async fn send(&self, request: reqwest::RequestBuilder) -> TestResponse {
        let resp = request.send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("response body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            text,
            json,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(self.client.get(self.url(path))).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// Seed the demo city into this server's database (see `crate::demo`).
    #[allow(clippy::expect_used)]
    pub async fn seed_demo(&self) -> crate::demo::DemoSeed {
        self.state
            .pool
            .run(crate::demo::seed_if_empty)
            .await
            .expect("demo seed")
            .expect("database had no users")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Run `test` against a fresh server on every available backend, one after the other.
pub async fn for_each_backend<F, Fut>(mut test: F)
where
    F: FnMut(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in BACKENDS {
        if let Some(server) = TestServer::start(backend) {
            test(server).await;
        }
    }
}

/// Generate, for each `async fn NAME(server) { … }`, a module `NAME` with `#[test]`
/// functions `sqlite` and `postgres`, each running the body against a fresh
/// [`TestServer`] (the PostgreSQL one skips with a notice without `TEST_DATABASE_URL`).
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* async fn $name:ident($server:ident) $body:block )*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($server: $crate::testing::TestServer) $body

                #[test]
                fn sqlite() {
                    if let Some(server) = $crate::testing::TestServer::start($crate::db::Backend::Sqlite) {
                        $crate::testing::block_on(body(server));
                    }
                }

                #[test]
                fn postgres() {
                    if let Some(server) = $crate::testing::TestServer::start($crate::db::Backend::Postgres) {
                        $crate::testing::block_on(body(server));
                    }
                }
            }
        )*
    };
}

/// Like [`backend_tests!`] but without a server: each body gets a fresh migrated
/// [`DbPool`] (and runs on an actix system, so `pool.run(..)` works).
#[macro_export]
macro_rules! backend_db_tests {
    ($( $(#[$meta:meta])* async fn $name:ident($pool:ident) $body:block )*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($pool: $crate::db::DbPool) $body

                #[test]
                fn sqlite() {
                    if let Some(db) = $crate::testing::TestDb::create($crate::db::Backend::Sqlite) {
                        let pool = db.migrated_pool();
                        $crate::testing::block_on(body(pool));
                    }
                }

                #[test]
                fn postgres() {
                    if let Some(db) = $crate::testing::TestDb::create($crate::db::Backend::Postgres) {
                        let pool = db.migrated_pool();
                        $crate::testing::block_on(body(pool));
                    }
                }
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_database("postgresql://h:1/", "x"),
            "postgresql://h:1/x"
        );
    }
}
