//! What each command does, over sync-core's replica (offline commands) and its HTTP client
//! (`login`, `sync`). Offline commands open the replica and nothing else: they never touch
//! the network.
//!
//! Output: a created record's id alone on a line; `login`, `sync`, `status` and `export`
//! print one JSON document. Nothing is printed when a command fails (the error goes to
//! standard error, see `main`).

use std::io::{BufRead, Write};
use std::time::Duration;

use serde_json::{json, Value};
use sync_core::http::{login_with, HttpOptions, HttpTransport};
use sync_core::model::{
    HazardPatch, HouseholdPatch, NeedPatch, NewHazard, NewHazardAction, NewHousehold, NewNeed,
    NewPatrol, NewTrackPoint, NewVisit,
};
use sync_core::replica::Replica;
use sync_core::sync::{sync, SyncOptions};

use crate::cli::{
    Cli, Command, HazardCommand, HouseholdCommand, LoginArgs, NeedCommand, PatrolCommand,
    VisitCommand,
};
use crate::error::CliError;

/// The app version reported to the server with every push (devices view): the environment's
/// `GRID_WORKER_APP_VERSION`, or `grid-worker/<version>`.
pub fn app_version() -> String {
    std::env::var("GRID_WORKER_APP_VERSION")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("grid-worker/{}", env!("CARGO_PKG_VERSION")))
}

/// The HTTP client's options: defaults, with `GRID_WORKER_TIMEOUT_SECS` and
/// `GRID_WORKER_MAX_RETRIES` when set.
fn http_options() -> HttpOptions {
    let env_u64 = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let mut options = HttpOptions {
        app_version: Some(app_version()),
        ..HttpOptions::default()
    };
    if let Some(secs) = env_u64("GRID_WORKER_TIMEOUT_SECS") {
        options.timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(n) = env_u64("GRID_WORKER_MAX_RETRIES") {
        options.max_retries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    options
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    // Read the password before opening anything: a login without one changes nothing.
    let password = match &cli.command {
        Command::Login(_) => Some(read_password()?),
        _ => None,
    };
    let replica = Replica::open(&cli.replica)?;
    match cli.command {
        Command::Login(args) => login(&replica, &args, password.as_deref().unwrap_or_default()),
        Command::Sync => sync_now(&replica),
        Command::Status => status(&replica),
        Command::Export => print_json(&replica.export()?),
        Command::Household(c) => household(&replica, c),
        Command::Patrol(c) => patrol(&replica, c),
        Command::Visit(c) => visit(&replica, c),
        Command::Need(c) => need(&replica, c),
        Command::Hazard(c) => hazard(&replica, c),
    }
}

fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        CliError::Usage(format!("cannot read the password from standard input: {e}"))
    })?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(CliError::Usage(
            "no password on standard input (--password-stdin reads its first line)".into(),
        ));
    }
    Ok(password.to_owned())
}

fn print_line(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Output(e.to_string()))
}

fn print_json(value: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string(value).map_err(|e| CliError::Output(e.to_string()))?;
    print_line(&text)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, CliError> {
    serde_json::to_value(value).map_err(|e| CliError::Output(e.to_string()))
}

fn nothing_to_change(empty: bool) -> Result<(), CliError> {
    if empty {
        Err(CliError::Usage(
            "nothing to change: give at least one field option".into(),
        ))
    } else {
        Ok(())
    }
}

fn login(replica: &Replica, args: &LoginArgs, password: &str) -> Result<(), CliError> {
    let info = login_with(
        replica,
        &args.server,
        &args.username,
        password,
        args.device_name.as_deref(),
        &http_options(),
    )?;
    print_json(&to_json(&info)?)
}

fn sync_now(replica: &Replica) -> Result<(), CliError> {
    let mut transport = HttpTransport::with_options(replica, http_options())?;
    let options = SyncOptions {
        app_version: Some(app_version()),
        ..SyncOptions::default()
    };
    let summary = sync(replica, &mut transport, &options)?;
    print_json(&to_json(&summary)?)
}

fn status(replica: &Replica) -> Result<(), CliError> {
    let status = replica.status()?;
    let credentials = replica.credentials()?;
    let mut value = to_json(&status)?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("logged_in".into(), json!(credentials.is_some()));
        obj.insert("server_url".into(), json!(replica.server_url()?));
        obj.insert("session".into(), to_json(&replica.scope())?);
    }
    print_json(&value)
}

fn household(replica: &Replica, command: HouseholdCommand) -> Result<(), CliError> {
    match command {
        HouseholdCommand::Add {
            grid,
            address,
            head_name,
            phone,
            tags,
        } => {
            let id = replica.add_household(
                grid,
                &NewHousehold {
                    address,
                    head_name,
                    phone,
                    tags,
                    ..NewHousehold::default()
                },
            )?;
            print_line(&id.to_string())
        }
        HouseholdCommand::Edit {
            id,
            address,
            head_name,
            phone,
            notes,
            tags,
        } => {
            let patch = HouseholdPatch {
                address,
                head_name,
                phone,
                notes,
                tags: (!tags.is_empty()).then_some(tags),
                ..HouseholdPatch::default()
            };
            nothing_to_change(patch.to_fields().is_empty())?;
            Ok(replica.edit_household(id, &patch)?)
        }
    }
}

fn patrol(replica: &Replica, command: PatrolCommand) -> Result<(), CliError> {
    match command {
        PatrolCommand::Start { grid } => {
            let id = replica.start_patrol(grid, &NewPatrol::default())?;
            print_line(&id.to_string())
        }
        PatrolCommand::Point {
            patrol_id,
            lat,
            lon,
            accuracy,
        } => {
            let id = replica.add_track_point(
                patrol_id,
                &NewTrackPoint {
                    recorded_at: None,
                    lat,
                    lon,
                    accuracy_m: accuracy,
                },
            )?;
            print_line(&id.to_string())
        }
        PatrolCommand::End { patrol_id, summary } => Ok(replica.end_patrol(patrol_id, summary)?),
    }
}

fn visit(replica: &Replica, command: VisitCommand) -> Result<(), CliError> {
    match command {
        VisitCommand::Record {
            household,
            mode,
            outcome,
            summary,
        } => {
            let id = replica.record_visit(&NewVisit {
                household_id: household,
                visited_at: None,
                mode,
                outcome,
                summary,
                follow_up_due: None,
                lat: None,
                lon: None,
            })?;
            print_line(&id.to_string())
        }
    }
}

fn need(replica: &Replica, command: NeedCommand) -> Result<(), CliError> {
    match command {
        NeedCommand::Add {
            household,
            category,
            description,
            urgency,
        } => {
            let id = replica.add_need(&NewNeed {
                household_id: household,
                visit_id: None,
                category,
                description,
                urgency,
                due_on: None,
            })?;
            print_line(&id.to_string())
        }
        NeedCommand::Edit {
            id,
            status,
            description,
            resolution,
        } => {
            let patch = NeedPatch {
                status,
                description,
                resolution,
                ..NeedPatch::default()
            };
            nothing_to_change(patch.to_fields().is_empty())?;
            Ok(replica.edit_need(id, &patch)?)
        }
    }
}

fn hazard(replica: &Replica, command: HazardCommand) -> Result<(), CliError> {
    match command {
        HazardCommand::Report {
            grid,
            category,
            severity,
            title,
            description,
            lat,
            lon,
        } => {
            let id = replica.report_hazard(&NewHazard {
                grid_id: grid,
                source: None,
                category,
                severity,
                title,
                description,
                lat,
                lon,
                address: None,
            })?;
            print_line(&id.to_string())
        }
        HazardCommand::Edit {
            id,
            title,
            description,
            severity,
        } => {
            let patch = HazardPatch {
                title,
                description,
                severity,
                ..HazardPatch::default()
            };
            nothing_to_change(patch.to_fields().is_empty())?;
            Ok(replica.edit_hazard(id, &patch)?)
        }
        HazardCommand::Act {
            id,
            action,
            note,
            department,
            due,
        } => {
            let action_id = replica.act_on_hazard(
                id,
                &NewHazardAction {
                    action,
                    note,
                    department,
                    due_at: due,
                },
            )?;
            print_line(&action_id.to_string())
        }
    }
}
