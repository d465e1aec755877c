//! The real server, in process, listening on a loopback port: `grid_server::run` on its own
//! thread and actix system, over a database given by URL (SQLite file or PostgreSQL).
//!
//! Unlike `grid_server::testing::TestServer`, a [`LiveServer`] can be **stopped and started
//! again on the same port, database and data dir** — a server restart in the middle of a run,
//! which phones must ride out (their stored server URL stays valid, their tokens too: the
//! signing secret lives in the data dir, as with `grid-server serve`).
//!
//! Invariants:
//! - only loopback addresses are ever bound;
//! - migrations run at every start (as `serve` does), so a restart also exercises "migrations
//!   already applied";
//! - dropping a `LiveServer` stops the server first, then drops the test database it owns
//!   (PostgreSQL databases made by `TestDb` are dropped with it).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use anyhow::{anyhow, bail, Context};
use grid_server::auth::password::hash_password;
use grid_server::auth::JwtKeys;
use grid_server::config::{self, Config};
use grid_server::db::users::{insert_user, NewUser, Role};
use grid_server::db::{migrations, write_transaction, Backend, DbPool, PoolOptions};
use grid_server::testing::TestDb;
use grid_server::AppState;

/// How a [`LiveServer`] is started.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// HTTP worker threads (`None`: one per core).
    pub workers: Option<usize>,
    /// The database pool.
    pub pool: PoolOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            workers: Some(2),
            pool: PoolOptions {
                max_size: 4,
                min_idle: 1,
                ..PoolOptions::default()
            },
        }
    }
}

/// The server in process. See the module notes.
pub struct LiveServer {
    /// `http://127.0.0.1:PORT` (the same across restarts).
    pub base_url: String,
    addr: SocketAddr,
    database_url: String,
    backend: Backend,
    data_dir: PathBuf,
    options: ServerOptions,
    state: Option<AppState>,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
    restarts: u32,
    // Dropped after the server has stopped (field order is drop order, and `Drop` stops it).
    _data: Option<tempfile::TempDir>,
    _db: Option<TestDb>,
}

impl std::fmt::Debug for LiveServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveServer")
            .field("base_url", &self.base_url)
            .field("backend", &self.backend)
            .field("restarts", &self.restarts)
            .finish_non_exhaustive()
    }
}

impl LiveServer {
    /// A server on a fresh test database of `backend` (`None`: PostgreSQL without
    /// `TEST_DATABASE_URL`, after the harness's skip notice).
    pub fn start_test(backend: Backend) -> anyhow::Result<Option<LiveServer>> {
        let Some(db) = TestDb::create(backend) else {
            return Ok(None);
        };
        let data = tempfile::tempdir().context("data dir")?;
        let url = db.url.clone();
        let mut server = Self::start(&url, data.path(), ServerOptions::default())?;
        server._data = Some(data);
        server._db = Some(db);
        Ok(Some(server))
    }

    /// A server on `database_url` (created and migrated as needed) with `data_dir`, on a
    /// fresh loopback port.
    pub fn start(
        database_url: &str,
        data_dir: &Path,
        options: ServerOptions,
    ) -> anyhow::Result<LiveServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let backend = grid_server::db::DbTarget::parse(database_url)
            .map_err(|e| anyhow!("database URL: {e}"))?
            .backend();
        let mut server = LiveServer {
            base_url: format!("http://{addr}"),
            addr,
            database_url: database_url.to_owned(),
            backend,
            data_dir: data_dir.to_owned(),
            options,
            state: None,
            handle: None,
            thread: None,
            restarts: 0,
            _data: None,
            _db: None,
        };
        server.launch(listener)?;
        Ok(server)
    }

    fn launch(&mut self, listener: TcpListener) -> anyhow::Result<()> {
        config::ensure_data_dir(&self.data_dir)?;
        let mut config = Config::new(self.database_url.clone(), &self.data_dir);
        config.bind = self.addr.to_string();
        config.workers = self.options.workers;
        config.pool = self.options.pool.clone();
        let pool = DbPool::connect_with(&self.database_url, config.pool.clone())
            .map_err(|e| anyhow!("connect to the database: {e}"))?;
        {
            let mut conn = pool
                .get()
                .map_err(|e| anyhow!("database connection: {e}"))?;
            migrations::run_pending(&mut conn).map_err(|e| anyhow!("migrations: {e}"))?;
        }
        let secret = config::jwt_secret(None, &self.data_dir)?;
        let state = AppState::new(pool, config, JwtKeys::from_secret(&secret))
            .map_err(|e| anyhow!("app state: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let server_state = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("live-server-{}", self.addr.port()))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match grid_server::run(listener, server_state).await {
                        Ok(server) => {
                            let _ = tx.send(Ok(server.handle()));
                            let _ = server.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })?;
        let handle = rx
            .recv()
            .map_err(|_| anyhow!("the server thread ended before it started"))??;
        self.state = Some(state);
        self.handle = Some(handle);
        self.thread = Some(thread);
        Ok(())
    }

    /// Stop the server (graceful: requests in flight finish). Idempotent.
    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // `stop` sends the command at once; the returned future only waits for it.
            drop(handle.stop(true));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.state = None;
    }

    /// Stop the server and start it again on the same port, database and data dir.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                // The old listener's port may linger for a moment.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => bail!("cannot bind {} again: {e}", self.addr),
            }
        };
        self.launch(listener)?;
        self.restarts += 1;
        Ok(())
    }

    /// Whether the server is running.
    pub fn is_running(&self) -> bool {
        self.handle.is_some()
    }

    /// How many times it was restarted.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database URL (may hold a password).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The running server's state (its pool reaches the database directly).
    pub fn state(&self) -> Option<&AppState> {
        self.state.as_ref()
    }

    /// A new small pool on the server's database, independent of the server's own (it
    /// survives restarts).
    pub fn side_pool(&self) -> anyhow::Result<DbPool> {
        DbPool::connect_with(
            &self.database_url,
            PoolOptions {
                max_size: 2,
                min_idle: 0,
                ..PoolOptions::default()
            },
        )
        .map_err(|e| anyhow!("side pool: {e}"))
    }

    /// `base_url + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Make the first admin directly in the database (what `grid-server user create --role
/// admin` does); everything else is provisioned through the admin API.
pub fn bootstrap_admin(pool: &DbPool, username: &str, password: &str) -> anyhow::Result<String> {
    let hash = hash_password(password).map_err(|e| anyhow!("hash: {e}"))?;
    let mut conn = pool.get().map_err(|e| anyhow!("connection: {e}"))?;
    let user = write_transaction(&mut conn, |c| {
        insert_user(
            c,
            &NewUser {
                username,
                password_hash: &hash,
                display_name: Some("管理员"),
                role: Role::Admin,
                area_id: None,
                department: None,
                grid_ids: &[],
            },
        )
    })
    .map_err(|e| anyhow!("insert admin: {e}"))?;
    Ok(user.id)
}
