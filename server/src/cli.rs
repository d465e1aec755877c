//! The command line (contract, "Binaries / grid-server"):
//!
//! ```text
//! grid-server serve   [--bind ADDR:PORT] [--database-url URL] [--data-dir DIR] [--demo]
//! grid-server migrate [--database-url URL]
//! grid-server user create --username U --role R [--display-name N] [--grid ID]...
//!                         [--area ID] [--department NAME] --password-stdin [--database-url URL]
//! ```
//!
//! Every flag has an environment equivalent (`GRID_BIND`, `GRID_DATABASE_URL`,
//! `GRID_DATA_DIR`); `GRID_JWT_SECRET` is environment-only (argv is visible to every
//! user of the machine). Errors end the process with status 1 and one line on stderr.

use std::io::{BufRead, IsTerminal};
use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::auth::{password, JwtKeys};
use crate::config::{self, Config, DEFAULT_BIND, DEFAULT_DATA_DIR};
use crate::db::{self, migrations, users, write_transaction, DbPool, DbTarget, PoolOptions};
use crate::error::AppError;
use crate::state::AppState;

/// `grid-server`.
#[derive(Debug, Parser)]
#[command(
    name = "grid-server",
    version,
    about = "The grid backend: REST API and sync server"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations, then serve HTTP.
    Serve(ServeArgs),
    /// Run pending migrations and exit.
    Migrate(DbArgs),
    /// Manage users directly in the database.
    User {
        /// The user command.
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// `sqlite://PATH` or `postgres://…` [default: sqlite://DATA_DIR/grid.db]
    #[arg(
        long,
        env = "GRID_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Data directory (created if missing).
    #[arg(long, env = "GRID_DATA_DIR", default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// `serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "GRID_BIND", default_value = DEFAULT_BIND, value_name = "ADDR:PORT")]
    pub bind: String,
    /// Database and data directory.
    #[command(flatten)]
    pub db: DbArgs,
    /// Seed a demo city (once, when the database has no users) and print its passwords.
    #[arg(long)]
    pub demo: bool,
    /// HTTP worker threads [default: one per core].
    #[arg(long, env = "GRID_WORKERS")]
    pub workers: Option<usize>,
    /// Most database connections open at once.
    #[arg(long, env = "GRID_DB_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: u32,
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input. Prints the new user's id.
    Create(UserCreateArgs),
}

/// `user create` options.
#[derive(Debug, Clone, Args)]
pub struct UserCreateArgs {
    /// Login name.
    #[arg(long)]
    pub username: String,
    /// worker | supervisor | department | admin
    #[arg(long)]
    pub role: String,
    /// Shown name.
    #[arg(long)]
    pub display_name: Option<String>,
    /// A grid (area id of level grid) the user works in; repeat for several.
    #[arg(long = "grid", value_name = "ID")]
    pub grids: Vec<String>,
    /// The area at the root of a supervisor's scope.
    #[arg(long, value_name = "ID")]
    pub area: Option<String>,
    /// The department of a department user (e.g. 消防).
    #[arg(long, value_name = "NAME")]
    pub department: Option<String>,
    /// Read the password from standard input (first line). Required.
    #[arg(long)]
    pub password_stdin: bool,
    /// Database and data directory.
    #[command(flatten)]
    pub db: DbArgs,
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            crate::telemetry::init("info");
            actix_web::rt::System::new().block_on(serve(args))
        }
        Command::Migrate(args) => {
            crate::telemetry::init("warn");
            migrate(&args)
        }
        Command::User {
            command: UserCommand::Create(args),
        } => {
            crate::telemetry::init("warn");
            user_create(&args)
        }
    }
}

/// An error as one line: the message and its causes, newlines flattened.
pub fn one_line(err: &anyhow::Error) -> String {
    let text = match err.downcast_ref::<AppError>() {
        Some(app) => match app.cause() {
            Some(cause) => format!("{}: {cause:#}", app.message()),
            None => app.message().to_owned(),
        },
        None => format!("{err:#}"),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn resolve_db(args: &DbArgs) -> anyhow::Result<String> {
    config::ensure_data_dir(&args.data_dir)?;
    Ok(config::database_url_or_default(
        args.database_url.clone(),
        &args.data_dir,
    ))
}

/// Open one connection (outside any pool) for a one-shot command.
fn connect(url: &str) -> anyhow::Result<db::DbConnection> {
    let target = DbTarget::parse(url)?;
    let conn = target.connect().map_err(|e| {
        AppError::unavailable(format!(
            "cannot connect to the database {}",
            db::redact_url(url)
        ))
        .with_cause(e)
    })?;
    Ok(conn)
}

fn migrate(args: &DbArgs) -> anyhow::Result<()> {
    let mut conn = connect(&resolve_db(args)?)?;
    let applied = migrations::run_pending(&mut conn)?;
    if applied.is_empty() {
        println!("database is up to date");
    } else {
        for version in &applied {
            println!("applied {version}");
        }
    }
    Ok(())
}

fn user_create(args: &UserCreateArgs) -> anyhow::Result<()> {
    if !args.password_stdin {
        anyhow::bail!("the password is read from standard input: pass --password-stdin");
    }
    let role = args.role.parse::<users::Role>().map_err(|_| {
        anyhow::anyhow!(
            "unknown role {:?}: expected worker, supervisor, department or admin",
            args.role
        )
    })?;
    users::validate_username(&args.username)?;
    let password = read_password_line()?;
    password::validate_password(&password)?;

    let mut conn = connect(&resolve_db(&args.db)?)?;
    // So that the first admin can be created before the first `serve`.
    migrations::run_pending(&mut conn)?;
    let hash = password::hash_password(&password)?;
    let user = write_transaction(&mut conn, |conn| {
        users::insert_user(
            conn,
            &users::NewUser {
                username: &args.username,
                password_hash: &hash,
                display_name: args.display_name.as_deref(),
                role,
                area_id: args.area.as_deref(),
                department: args.department.as_deref(),
                grid_ids: &args.grids,
            },
        )
        .and_then(|user| {
            // The CLI is an administrative write too; the actor is the system (no user).
            db::audit::record(
                conn,
                None,
                "user.create",
                "user",
                &user.id,
                Some(serde_json::json!({
                    "username": user.username, "role": user.role, "via": "cli",
                    "grid_ids": args.grids, "area_id": user.area_id, "department": user.department,
                })),
            )?;
            Ok(user)
        })
    })?;
    println!("{}", user.id);
    Ok(())
}

/// The first line of standard input, without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(password.to_owned())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = args.db.data_dir.clone();
    let url = resolve_db(&args.db)?;
    let secret = config::jwt_secret(std::env::var("GRID_JWT_SECRET").ok(), &data_dir)?;

    let mut config = Config::new(url.clone(), data_dir);
    config.bind = args.bind.clone();
    config.workers = args.workers;
    config.pool = PoolOptions {
        max_size: args.db_pool_size.max(1),
        ..PoolOptions::default()
    };

    let pool = DbPool::connect_with(&url, config.pool.clone()).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "cannot connect to the database {}",
            db::redact_url(&url)
        ))
    })?;
    let applied = pool.run(migrations::run_pending).await?;
    tracing::info!(
        backend = pool.backend().as_str(),
        database = %db::redact_url(&url),
        applied = applied.len(),
        "database ready"
    );

    if args.demo {
        match pool.run(crate::demo::seed_if_empty).await? {
            Some(seeded) => print!("{}", seeded.credentials_table()),
            None => println!("demo: the database already has users; nothing seeded"),
        }
    }

    let listener =
        TcpListener::bind(&args.bind).with_context(|| format!("cannot listen on {}", args.bind))?;
    let local = listener.local_addr()?;
    let state = AppState::new(pool, config, JwtKeys::from_secret(&secret))?;
    tracing::info!(address = %local, "listening");
    crate::app::run(listener, state).await?.await?;
    Ok(())
}
