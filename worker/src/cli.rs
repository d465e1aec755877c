//! The command line (contract: "`grid-worker`"), parsed by clap. Values are parsed into
//! sync-core's types here (ids, enums, times), so a bad value is an argument error naming the
//! option before the replica is opened.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sync_core::ids::{GridId, RecordId};
use sync_core::model::{
    HazardAction, HazardCategory, HouseholdTag, NeedCategory, NeedStatus, NeedUrgency, Severity,
    VisitMode, VisitOutcome,
};
use sync_core::Timestamp;

/// The reference phone client of the grid system: records offline into a replica file and
/// syncs it with the server.
#[derive(Debug, Parser)]
#[command(name = "grid-worker", version, about)]
pub struct Cli {
    /// The replica file (created at first use).
    #[arg(long, value_name = "PATH", env = "GRID_WORKER_REPLICA")]
    pub replica: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a server (reads the password from standard input).
    Login(LoginArgs),
    /// Push pending changes and pull the server's; prints a JSON summary.
    Sync,
    /// Pending changes, last sync, rejections and conflicts, as JSON.
    Status,
    /// The canonical export of everything this replica holds, as JSON.
    Export,
    /// Households (户).
    #[command(subcommand)]
    Household(HouseholdCommand),
    /// Patrols (巡查) and their routes.
    #[command(subcommand)]
    Patrol(PatrolCommand),
    /// Visits (上门走访).
    #[command(subcommand)]
    Visit(VisitCommand),
    /// Needs (需求清单).
    #[command(subcommand)]
    Need(NeedCommand),
    /// Hazards and incidents (隐患/事件).
    #[command(subcommand)]
    Hazard(HazardCommand),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: String,
    #[arg(long, value_name = "U")]
    pub username: String,
    /// Read the password from the first line of standard input.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// A name for this device in the supervisors' device list.
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum HouseholdCommand {
    /// Add a household; prints its id.
    Add {
        #[arg(long, value_name = "ID")]
        grid: GridId,
        #[arg(long, value_name = "A")]
        address: String,
        #[arg(long, value_name = "N")]
        head_name: Option<String>,
        #[arg(long, value_name = "P")]
        phone: Option<String>,
        /// A tag (repeat for several): elderly_alone, veteran, disabled, low_income, child,
        /// key_care, other.
        #[arg(long = "tag", value_name = "T")]
        tags: Vec<HouseholdTag>,
    },
    /// Edit a household (only the options given change; --tag replaces the tags).
    Edit {
        id: RecordId,
        #[arg(long, value_name = "A")]
        address: Option<String>,
        #[arg(long, value_name = "N")]
        head_name: Option<String>,
        #[arg(long, value_name = "P")]
        phone: Option<String>,
        #[arg(long, value_name = "T")]
        notes: Option<String>,
        #[arg(long = "tag", value_name = "T")]
        tags: Vec<HouseholdTag>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PatrolCommand {
    /// Start a patrol now; prints its id.
    Start {
        #[arg(long, value_name = "ID")]
        grid: GridId,
    },
    /// Record a point of a patrol's route now; prints its id.
    Point {
        patrol_id: RecordId,
        #[arg(long, value_name = "X", allow_negative_numbers = true)]
        lat: f64,
        #[arg(long, value_name = "Y", allow_negative_numbers = true)]
        lon: f64,
        /// Accuracy in metres.
        #[arg(long, value_name = "M")]
        accuracy: Option<f64>,
    },
    /// End a patrol now.
    End {
        patrol_id: RecordId,
        #[arg(long, value_name = "S")]
        summary: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum VisitCommand {
    /// Record a visit made now; prints its id.
    Record {
        #[arg(long, value_name = "ID")]
        household: RecordId,
        /// in_person, phone, video or proxy.
        #[arg(long, value_name = "M")]
        mode: VisitMode,
        /// met, not_home, refused or moved.
        #[arg(long, value_name = "O")]
        outcome: VisitOutcome,
        #[arg(long, value_name = "S")]
        summary: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NeedCommand {
    /// Add a need to a household's list; prints its id.
    Add {
        #[arg(long, value_name = "ID")]
        household: RecordId,
        #[arg(long, value_name = "C")]
        category: NeedCategory,
        #[arg(long, value_name = "D")]
        description: String,
        /// low, normal or high.
        #[arg(long, value_name = "U")]
        urgency: Option<NeedUrgency>,
    },
    /// Edit a need.
    Edit {
        id: RecordId,
        #[arg(long, value_name = "S")]
        status: Option<NeedStatus>,
        #[arg(long, value_name = "D")]
        description: Option<String>,
        #[arg(long, value_name = "R")]
        resolution: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HazardCommand {
    /// Report a hazard (with its submit action); prints its id.
    Report {
        #[arg(long, value_name = "ID")]
        grid: GridId,
        #[arg(long, value_name = "C")]
        category: HazardCategory,
        /// low, medium, high or critical.
        #[arg(long, value_name = "S")]
        severity: Severity,
        #[arg(long, value_name = "T")]
        title: String,
        #[arg(long, value_name = "D")]
        description: Option<String>,
        #[arg(
            long,
            value_name = "X",
            requires = "lon",
            allow_negative_numbers = true
        )]
        lat: Option<f64>,
        #[arg(
            long,
            value_name = "Y",
            requires = "lat",
            allow_negative_numbers = true
        )]
        lon: Option<f64>,
    },
    /// Edit a hazard's description fields.
    Edit {
        id: RecordId,
        #[arg(long, value_name = "T")]
        title: Option<String>,
        #[arg(long, value_name = "D")]
        description: Option<String>,
        #[arg(long, value_name = "S")]
        severity: Option<Severity>,
    },
    /// Act on a hazard's workflow (self_handle, verify_pass, comment, …); prints the
    /// action's id.
    Act {
        id: RecordId,
        #[arg(long, value_name = "A")]
        action: HazardAction,
        #[arg(long, value_name = "N")]
        note: Option<String>,
        #[arg(long, value_name = "D")]
        department: Option<String>,
        /// A due time, RFC 3339 (e.g. 2026-11-23T08:30:00Z).
        #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
        due: Option<Timestamp>,
    },
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 time"))
}
