//! A phone as the tests drive it: a sync-core replica in its own file, with a clock that may
//! run behind or ahead (changeable while the test runs), seeded ids (a seed replays the same
//! record ids), its user's credentials, and the HTTP transport the app would use.
//!
//! The replica can be closed and reopened — to hand the file to a `grid-worker` process that
//! the test kills mid-sync, as the phone's OS kills an app.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_core::http::session::login_with;
use sync_core::http::{HttpError, HttpOptions, HttpTransport, LoginInfo};
use sync_core::replica::{Replica, ReplicaOptions};
use sync_core::sync::{sync, SyncError, SyncOptions, SyncSummary};
use sync_core::workflow::Role;
use sync_core::{DeviceId, Timestamp};

use crate::faults::Stash;

/// The HTTP options of test phones: short backoff (the server is local), a few retries.
pub fn http_options() -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_secs(60),
        max_retries: 3,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        app_version: Some("grid-tests/0.1.0".into()),
    }
}

/// Seeded v7-shaped ids: the real time in the timestamp bits, the rest from the seed.
pub fn seeded_ids(seed: u64) -> Arc<dyn Fn() -> uuid::Uuid + Send + Sync> {
    let rng = Mutex::new(StdRng::seed_from_u64(seed));
    Arc::new(move || {
        let mut bytes = [0u8; 10];
        rng.lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill(&mut bytes);
        let ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid()
    })
}

/// A phone. See the module notes.
pub struct Phone {
    pub name: String,
    pub path: PathBuf,
    pub username: String,
    pub password: String,
    /// How far the phone's clock is off (ms; negative = behind). Changeable at any time.
    pub skew: Arc<AtomicI64>,
    /// Push requests kept for stale replays.
    pub stash: Stash,
    /// The role the last login reported.
    pub role: Role,
    options: ReplicaOptions,
    replica: Option<Replica>,
    device: DeviceId,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("name", &self.name)
            .field("device", &self.device)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Phone {
    /// Open a new phone with its replica at `dir/<name>.db`.
    pub fn open(
        dir: &Path,
        name: &str,
        username: &str,
        password: &str,
        skew_ms: i64,
        ids_seed: u64,
    ) -> anyhow::Result<Phone> {
        let skew = Arc::new(AtomicI64::new(skew_ms));
        let s = skew.clone();
        let options = ReplicaOptions {
            clock: Arc::new(move || {
                Timestamp(chrono::Utc::now().timestamp_millis() + s.load(Ordering::SeqCst))
            }),
            ids: seeded_ids(ids_seed),
        };
        let path = dir.join(format!("{name}.db"));
        let replica = Replica::open_with(&path, options.clone())
            .with_context(|| format!("open replica {}", path.display()))?;
        Ok(Phone {
            name: name.to_owned(),
            path,
            username: username.to_owned(),
            password: password.to_owned(),
            skew,
            stash: Default::default(),
            role: Role::Worker,
            device: replica.device_id(),
            options,
            replica: Some(replica),
        })
    }

    /// The replica. The phone holds it except while [`Phone::run_worker`] lends the file to a
    /// `grid-worker` process (which takes `&mut self`), so it is always there when borrowed.
    #[allow(clippy::expect_used)]
    pub fn replica(&self) -> &Replica {
        self.replica
            .as_ref()
            .expect("the replica is open whenever the phone is borrowed")
    }

    pub fn device_id(&self) -> DeviceId {
        self.device
    }

    /// Set the clock's offset from the true time.
    pub fn set_skew(&self, ms: i64) {
        self.skew.store(ms, Ordering::SeqCst);
    }

    /// `POST /api/v1/auth/login` with this phone's device id; stores session and tokens.
    pub fn login(&mut self, base_url: &str) -> Result<LoginInfo, HttpError> {
        let info = login_with(
            self.replica(),
            base_url,
            &self.username,
            &self.password,
            Some(&self.name),
            &http_options(),
        )?;
        self.role = info.role;
        Ok(info)
    }

    /// The HTTP transport over the stored server and tokens.
    pub fn http(&self) -> Result<HttpTransport<'_>, HttpError> {
        HttpTransport::with_options(self.replica(), http_options())
    }

    /// A sync straight over HTTP (no faults).
    pub fn sync(&self) -> anyhow::Result<Result<SyncSummary, SyncError>> {
        let mut t = self.http().map_err(|e| anyhow!("transport: {e}"))?;
        Ok(sync(self.replica(), &mut t, &SyncOptions::default()))
    }

    /// Close the replica, run `grid-worker --replica PATH <args>` on its file and kill the
    /// process (SIGKILL) after `kill_after` if it has not ended by then; reopen the replica.
    /// Returns `Ok(true)` when the process was killed, `Ok(false)` when it ended by itself
    /// (its exit status is not judged here).
    pub fn run_worker(
        &mut self,
        bin: &Path,
        args: &[&str],
        kill_after: Duration,
    ) -> anyhow::Result<WorkerRun> {
        self.replica = None;
        let outcome = (|| {
            let mut child = Command::new(bin)
                .arg("--replica")
                .arg(&self.path)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("spawn {}", bin.display()))?;
            let start = Instant::now();
            loop {
                if let Some(status) = child.try_wait()? {
                    let out = child.wait_with_output()?;
                    return Ok(WorkerRun {
                        killed: false,
                        success: status.success(),
                        code: status.code(),
                        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    });
                }
                if start.elapsed() >= kill_after {
                    child.kill()?;
                    let _ = child.wait()?;
                    return Ok(WorkerRun {
                        killed: true,
                        success: false,
                        code: None,
                        stdout: String::new(),
                        stderr: String::new(),
                    });
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })();
        self.replica = Some(
            Replica::open_with(&self.path, self.options.clone())
                .with_context(|| format!("reopen replica {}", self.path.display()))?,
        );
        outcome
    }
}

/// How a `grid-worker` run ended.
#[derive(Clone, Debug)]
pub struct WorkerRun {
    pub killed: bool,
    pub success: bool,
    /// The exit status (`None` when killed).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}
