//! The `grid-server` binary as users run it: `migrate`, `user create`, `serve --demo`,
//! on SQLite (default URL in the data dir) and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use grid_server::db::areas::{self, AreaLevel};
use grid_server::db::{users, Backend};
use grid_server::testing::{block_on, TestDb, BACKENDS};

const BIN: &str = env!("CARGO_BIN_EXE_grid-server");

/// A command with no GRID_* settings inherited from the environment.
fn grid_server(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "GRID_BIND",
        "GRID_DATABASE_URL",
        "GRID_JWT_SECRET",
        "GRID_WORKERS",
        "GRID_DB_POOL_SIZE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GRID_DATA_DIR", data_dir).env("GRID_LOG", "warn");
    cmd
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading (e.g. a bad role): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A failure: status 1 and exactly one line on stderr containing `needle`.
fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
}

#[test]
fn migrate_applies_then_reports_up_to_date() {
    for backend in BACKENDS {
        let Some(db) = TestDb::create(backend) else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let out = grid_server(dir.path())
            .args(["migrate", "--database-url", &db.url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        // One line per migration folder of the backend.
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            });
        let expected = std::fs::read_dir(folder).unwrap().count();
        assert_eq!(
            text(&out.stdout).matches("applied").count(),
            expected,
            "{}",
            text(&out.stdout)
        );
        let out = grid_server(dir.path())
            .args(["migrate", "--database-url", &db.url])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("up to date"));
    }
}

#[test]
fn migrate_uses_the_data_dir_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let out = grid_server(&data).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(data.join("grid.db").exists());
}

#[test]
fn bad_database_url_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = grid_server(dir.path())
        .args(["migrate", "--database-url", "mysql://root:hunter2@db/grid"])
        .output()
        .unwrap();
    assert_fails_with(&out, "unsupported database URL");
    assert!(!text(&out.stderr).contains("hunter2"), "password leaked");
}

#[test]
fn user_create_on_each_backend() {
    for backend in BACKENDS {
        let Some(db) = TestDb::create(backend) else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let create = |args: &[&str], password: &str| {
            let mut cmd = grid_server(dir.path());
            cmd.args(["user", "create", "--database-url", &db.url])
                .args(args);
            run_with_stdin(cmd, password)
        };

        // Works on a database that was never migrated: the first admin before the first serve.
        let out = create(
            &["--username", "admin", "--role", "admin", "--password-stdin"],
            "s3cret pass\n",
        );
        assert!(out.status.success(), "{backend:?}: {}", text(&out.stderr));
        let admin_id = text(&out.stdout).trim().to_owned();
        assert!(uuid::Uuid::parse_str(&admin_id).is_ok(), "{admin_id:?}");

        // A grid to assign.
        let pool = db.migrated_pool();
        let grid_id = block_on(pool.write(|c| {
            let d = areas::insert_area(c, "鼓楼区", None, AreaLevel::District, None)?;
            Ok(areas::insert_area(c, "第一网格", None, AreaLevel::Grid, Some(&d.id))?.id)
        }))
        .unwrap();

        let out = create(
            &[
                "--username",
                "worker1",
                "--role",
                "worker",
                "--display-name",
                "刘洋",
                "--grid",
                &grid_id,
                "--password-stdin",
            ],
            "worker password\r\n",
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let (stored, grids) = block_on(pool.run(|c| {
            let u = users::find_by_username(c, "worker1")?.unwrap();
            let g = users::grid_ids(c, &u.id)?;
            Ok((u, g))
        }))
        .unwrap();
        assert_eq!(grids, vec![grid_id.clone()]);
        assert_eq!(stored.display_name.as_deref(), Some("刘洋"));
        assert!(stored
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(grid_server::auth::password::verify_password(
            "worker password",
            &stored.password_hash
        )
        .unwrap());

        assert_fails_with(
            &create(
                &["--username", "x", "--role", "king", "--password-stdin"],
                "pw\n",
            ),
            "unknown role",
        );
        assert_fails_with(
            &create(
                &[
                    "--username",
                    "y",
                    "--role",
                    "worker",
                    "--grid",
                    "no-such-grid",
                    "--password-stdin",
                ],
                "pw\n",
            ),
            "not an existing grid: no-such-grid",
        );
        assert_fails_with(
            &create(
                &["--username", "admin", "--role", "admin", "--password-stdin"],
                "pw\n",
            ),
            "taken",
        );
        assert_fails_with(
            &create(&["--username", "z", "--role", "admin"], "pw\n"),
            "--password-stdin",
        );
        assert_fails_with(
            &create(
                &["--username", "z", "--role", "admin", "--password-stdin"],
                "\n",
            ),
            "password must not be empty",
        );
        let count = block_on(pool.run(users::count)).unwrap();
        assert_eq!(count, 2, "{backend:?}: failed creates wrote nothing");
    }
}

struct Served {
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `serve`, wait for /healthz; returns the child and the base URL.
fn serve(data_dir: &Path, extra: &[&str]) -> (Served, String) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let child = grid_server(data_dir)
        .arg("serve")
        .args(extra)
        .env("GRID_BIND", &bind)
        .env("GRID_WORKERS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut served = Served { child };
    let base = format!("http://{bind}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = block_on(async {
            match reqwest::get(format!("{base}/healthz")).await {
                Ok(r) => r.status().as_u16() == 200,
                Err(_) => false,
            }
        });
        if ok {
            return (served, base);
        }
        if let Some(status) = served.child.try_wait().unwrap() {
            let mut err = String::new();
            served
                .child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("serve exited with {status}: {err}");
        }
        assert!(Instant::now() < deadline, "serve did not answer /healthz");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stdout_after_kill(mut served: Served) -> String {
    let _ = served.child.kill();
    let _ = served.child.wait();
    let mut out = String::new();
    served
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[test]
fn serve_demo_on_the_default_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (served, base) = serve(&data, &["--demo"]);
    let body = block_on(async {
        reqwest::get(format!("{base}/nope"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(body.contains("\"not_found\""), "{body}");
    let out = stdout_after_kill(served);
    assert!(out.contains("Demo city seeded"), "{out}");
    for user in ["admin", "street_sup", "worker4", "xiaofang"] {
        assert!(out.contains(user), "{user} missing from {out}");
    }
    assert!(data.join("grid.db").exists());

    // The JWT secret was generated once, private, and is reused.
    let secret_path = data.join("jwt-secret");
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Second start: nothing seeded again, same secret.
    let (served, _) = serve(&data, &["--demo"]);
    let out = stdout_after_kill(served);
    assert!(out.contains("nothing seeded"), "{out}");
    assert_eq!(std::fs::read_to_string(&secret_path).unwrap(), secret);
}

#[test]
fn serve_on_postgres_runs_migrations_first() {
    let Some(db) = TestDb::create(Backend::Postgres) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (served, _) = serve(dir.path(), &["--database-url", &db.url, "--demo"]);
    let out = stdout_after_kill(served);
    assert!(out.contains("Demo city seeded"), "{out}");
    let pool = db.migrated_pool();
    assert_eq!(block_on(pool.run(users::count)).unwrap(), 11);
}
