//! The hazard workflow (闭环: 上报 → 立案 → 派遣 → 处置 → 核查 → 结案) as data.
//!
//! A hazard's `status`, `assignee_department` and `due_at` are never written directly: they are
//! the fold of its actions in the order the server received them ([`fold`]). For each action
//! [`decide`] gives one of three verdicts:
//! - **forbidden**: the actor's role may never take this action (a worker's `dispatch`); the
//!   server rejects the mutation;
//! - **no effect**: the role may take it, but not from the status where it lands (an offline
//!   worker's `self_handle` on a hazard a supervisor already dispatched); the action is kept in
//!   the timeline with the reason and the status does not move;
//! - **applied**: the status (and department / due date) move as [`TRANSITIONS`] says.
//!
//! Parameter checks (a `reject` without a reason, a `dispatch` without a department) do not
//! depend on the status and are made by [`check_params`] before anything is recorded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::wire::{Reason, RejectCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HazardStatus {
    Reported,
    Accepted,
    Rejected,
    Dispatched,
    InProgress,
    Disposed,
    Closed,
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HazardAction {
    Submit,
    Accept,
    Reject,
    SelfHandle,
    Dispatch,
    SignFor,
    Return,
    ReportDone,
    VerifyPass,
    VerifyFail,
    Reopen,
    Cancel,
    Comment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Worker,
    Supervisor,
    Department,
    Admin,
}

/// The effect recorded on an accepted action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Applied,
    NoEffect,
}

macro_rules! str_enum {
    ($ty:ty { $($variant:ident => $s:literal),* $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $s),* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($s => Ok(<$ty>::$variant),)* _ => Err(format!("unknown {}: {s:?}", stringify!($ty))) }
            }
        }
    };
}

str_enum!(HazardStatus {
    Reported => "reported", Accepted => "accepted", Rejected => "rejected", Dispatched => "dispatched",
    InProgress => "in_progress", Disposed => "disposed", Closed => "closed", Cancelled => "cancelled",
});
str_enum!(HazardAction {
    Submit => "submit", Accept => "accept", Reject => "reject", SelfHandle => "self_handle", Dispatch => "dispatch",
    SignFor => "sign_for", Return => "return", ReportDone => "report_done", VerifyPass => "verify_pass",
    VerifyFail => "verify_fail", Reopen => "reopen", Cancel => "cancel", Comment => "comment",
});
str_enum!(Role { Worker => "worker", Supervisor => "supervisor", Department => "department", Admin => "admin" });
str_enum!(Effect { Applied => "applied", NoEffect => "no_effect" });

impl HazardStatus {
    /// Statuses in which the case is still being worked on (`cancel` applies to these).
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            HazardStatus::Closed | HazardStatus::Rejected | HazardStatus::Cancelled
        )
    }

    /// Statuses where a due date no longer matters.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            HazardStatus::Disposed
                | HazardStatus::Closed
                | HazardStatus::Rejected
                | HazardStatus::Cancelled
        )
    }
}

/// Where an action may be taken from.
#[derive(Clone, Copy, Debug)]
pub enum From {
    /// A hazard whose submission has not been recorded yet.
    New,
    Any,
    AnyOpen,
    Only(&'static [HazardStatus]),
}

/// What an applied action does to the department and due date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    Keep,
    /// Set from the action's `department` and `due_at`.
    Set,
    /// Clear the department; keep the due date (the case's deadline still runs).
    ClearDepartment,
    /// Clear both (a reopened case is dispatched afresh).
    ClearBoth,
}

/// One row of the workflow table.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    pub action: HazardAction,
    pub from: From,
    /// `None`: the status does not change.
    pub to: Option<HazardStatus>,
    pub roles: &'static [Role],
    pub assignment: Assignment,
}

use HazardAction as A;
use HazardStatus as S;
use Role as R;

const SUPERVISING: &[Role] = &[R::Supervisor, R::Admin];
const REPORTERS: &[Role] = &[R::Worker, R::Supervisor, R::Admin];
const HANDLERS: &[Role] = &[R::Department, R::Supervisor, R::Admin];
const EVERYONE: &[Role] = &[R::Worker, R::Supervisor, R::Department, R::Admin];

/// The workflow table of `domain.md`. Admins may do whatever supervisors may.
pub const TRANSITIONS: &[Transition] = &[
    Transition {
        action: A::Submit,
        from: From::New,
        to: Some(S::Reported),
        roles: REPORTERS,
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::Accept,
        from: From::Only(&[S::Reported]),
        to: Some(S::Accepted),
        roles: SUPERVISING,
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::Reject,
        from: From::Only(&[S::Reported]),
        to: Some(S::Rejected),
        roles: SUPERVISING,
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::SelfHandle,
        from: From::Only(&[S::Reported]),
        to: Some(S::Disposed),
        roles: &[R::Worker],
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::Dispatch,
        from: From::Only(&[S::Accepted]),
        to: Some(S::Dispatched),
        roles: SUPERVISING,
        assignment: Assignment::Set,
    },
    Transition {
        action: A::SignFor,
        from: From::Only(&[S::Dispatched]),
        to: Some(S::InProgress),
        roles: HANDLERS,
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::Return,
        from: From::Only(&[S::Dispatched, S::InProgress]),
        to: Some(S::Accepted),
        roles: HANDLERS,
        assignment: Assignment::ClearDepartment,
    },
    Transition {
        action: A::ReportDone,
        from: From::Only(&[S::InProgress]),
        to: Some(S::Disposed),
        roles: HANDLERS,
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::VerifyPass,
        from: From::Only(&[S::Disposed]),
        to: Some(S::Closed),
        roles: REPORTERS,
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::VerifyFail,
        from: From::Only(&[S::Disposed]),
        to: Some(S::InProgress),
        roles: REPORTERS,
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::Reopen,
        from: From::Only(&[S::Closed, S::Rejected]),
        to: Some(S::Accepted),
        roles: SUPERVISING,
        assignment: Assignment::ClearBoth,
    },
    Transition {
        action: A::Cancel,
        from: From::AnyOpen,
        to: Some(S::Cancelled),
        roles: SUPERVISING,
        assignment: Assignment::Keep,
    },
    Transition {
        action: A::Comment,
        from: From::Any,
        to: None,
        roles: EVERYONE,
        assignment: Assignment::Keep,
    },
];

pub fn transition(action: HazardAction) -> &'static Transition {
    // Every action has exactly one row (checked by a test); Comment is the harmless fallback.
    TRANSITIONS
        .iter()
        .find(|t| t.action == action)
        .unwrap_or(&TRANSITIONS[TRANSITIONS.len() - 1])
}

/// Whether `role` may ever take `action`.
pub fn may_take(role: Role, action: HazardAction) -> bool {
    transition(action).roles.contains(&role)
}

/// The workflow fields of a hazard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowState {
    /// `None` until the hazard exists; a hazard record is `reported` from its creation.
    pub status: Option<HazardStatus>,
    pub assignee_department: Option<String>,
    pub due_at: Option<Timestamp>,
    /// Whether a `submit` action has been applied (a second one has no effect).
    pub submitted: bool,
}

impl WorkflowState {
    /// The state of a freshly created hazard record.
    pub fn created() -> Self {
        Self {
            status: Some(HazardStatus::Reported),
            ..Self::default()
        }
    }

    pub fn is_overdue(&self, now: Timestamp) -> bool {
        matches!((self.status, self.due_at), (Some(s), Some(due)) if !s.is_settled() && due < now)
    }
}

/// An action's parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionInput {
    pub action: Option<HazardAction>,
    pub note: Option<String>,
    pub department: Option<String>,
    pub due_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Applied(WorkflowState),
    NoEffect(String),
    Forbidden(String),
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// Status-independent checks of an action's parameters.
pub fn check_params(action: HazardAction, input: &ActionInput) -> Result<(), Reason> {
    let missing = |what: &str| {
        Err(Reason::new(
            RejectCode::MissingField,
            format!("{action} needs {what}"),
        ))
    };
    match action {
        A::Reject | A::Return if blank(&input.note) => missing("a reason in note"),
        A::SelfHandle if blank(&input.note) => missing("a note saying how it was handled"),
        A::Dispatch if blank(&input.department) => missing("a department"),
        _ => Ok(()),
    }
}

fn describe(from: From) -> String {
    match from {
        From::New => "a newly reported hazard".into(),
        From::Any => "any status".into(),
        From::AnyOpen => "an open hazard".into(),
        From::Only(list) => list
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// Decide what `action` by `role` does to a hazard in `state`.
pub fn decide(
    state: &WorkflowState,
    action: HazardAction,
    role: Role,
    input: &ActionInput,
) -> Verdict {
    let t = transition(action);
    if !t.roles.contains(&role) {
        return Verdict::Forbidden(format!("a {role} may not {action} a hazard"));
    }
    let fits = match (t.from, state.status) {
        (From::New, _) => !state.submitted,
        (From::Any, _) => true,
        (From::AnyOpen, Some(s)) => s.is_open(),
        (From::Only(list), Some(s)) => list.contains(&s),
        (_, None) => false,
    };
    if !fits {
        let now = state.status.map_or("not yet reported", |s| s.as_str());
        let reason = if action == A::Submit {
            "the hazard has already been submitted".to_string()
        } else {
            format!(
                "cannot {action} a hazard that is {now}; {action} applies to {}",
                describe(t.from)
            )
        };
        return Verdict::NoEffect(reason);
    }
    let mut next = state.clone();
    if action == A::Submit {
        next.submitted = true;
    }
    if let Some(to) = t.to {
        next.status = Some(to);
    }
    match t.assignment {
        Assignment::Keep => {}
        Assignment::Set => {
            next.assignee_department = input.department.as_ref().map(|d| d.trim().to_string());
            next.due_at = input.due_at;
        }
        Assignment::ClearDepartment => next.assignee_department = None,
        Assignment::ClearBoth => {
            next.assignee_department = None;
            next.due_at = None;
        }
    }
    Verdict::Applied(next)
}

/// Fold actions (in server order) over a freshly created hazard. Returns the final state and
/// each action's effect with its reason.
pub fn fold<'a>(
    actions: impl IntoIterator<Item = (Role, &'a ActionInput)>,
) -> (WorkflowState, Vec<(Effect, Option<String>)>) {
    let mut state = WorkflowState::created();
    let mut effects = Vec::new();
    for (role, input) in actions {
        let Some(action) = input.action else {
            effects.push((Effect::NoEffect, Some("unknown action".into())));
            continue;
        };
        match decide(&state, action, role, input) {
            Verdict::Applied(next) => {
                state = next;
                effects.push((Effect::Applied, None));
            }
            Verdict::NoEffect(reason) | Verdict::Forbidden(reason) => {
                effects.push((Effect::NoEffect, Some(reason)))
            }
        }
    }
    (state, effects)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `domain.md`'s table, written out independently of [`TRANSITIONS`]:
    /// from-statuses (`new`, `open`, `any` or a list), action, to (`-` unchanged), roles.
    const DOMAIN_TABLE: &str = "
        new                     submit      reported    worker,supervisor,admin
        reported                accept      accepted    supervisor,admin
        reported                reject      rejected    supervisor,admin
        reported                self_handle disposed    worker
        accepted                dispatch    dispatched  supervisor,admin
        dispatched              sign_for    in_progress department,supervisor,admin
        dispatched,in_progress  return      accepted    department,supervisor,admin
        in_progress             report_done disposed    department,supervisor,admin
        disposed                verify_pass closed      worker,supervisor,admin
        disposed                verify_fail in_progress worker,supervisor,admin
        closed,rejected         reopen      accepted    supervisor,admin
        open                    cancel      cancelled   supervisor,admin
        any                     comment     -           worker,supervisor,department,admin
    ";

    fn expected(
        status: Option<HazardStatus>,
        submitted: bool,
        action: HazardAction,
        role: Role,
    ) -> Result<Option<HazardStatus>, bool> {
        // Ok(Some(to)) applied, Ok(None) applied unchanged, Err(true) forbidden, Err(false) no effect.
        for line in DOMAIN_TABLE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols[1] != action.as_str() {
                continue;
            }
            if !cols[3].split(',').any(|r| r == role.as_str()) {
                return Err(true);
            }
            let fits = match cols[0] {
                "new" => !submitted,
                "any" => true,
                "open" => {
                    status.is_some_and(|s| !matches!(s, S::Closed | S::Rejected | S::Cancelled))
                }
                list => status.is_some_and(|s| list.split(',').any(|x| x == s.as_str())),
            };
            if !fits {
                return Err(false);
            }
            return Ok(if cols[2] == "-" {
                status
            } else {
                Some(cols[2].parse().unwrap())
            });
        }
        panic!("action {action} missing from the domain table");
    }

    fn input(action: HazardAction) -> ActionInput {
        ActionInput {
            action: Some(action),
            note: Some("现场已处理".into()),
            department: Some("消防".into()),
            due_at: Some(Timestamp(1_800_000_000_000)),
        }
    }

    #[test]
    fn every_status_action_and_role_matches_the_domain_table() {
        let statuses: Vec<Option<HazardStatus>> = std::iter::once(None)
            .chain(HazardStatus::ALL.iter().copied().map(Some))
            .collect();
        let mut checked = 0;
        for &status in &statuses {
            for submitted in [false, true] {
                let state = WorkflowState {
                    status,
                    assignee_department: None,
                    due_at: None,
                    submitted,
                };
                for &action in HazardAction::ALL {
                    for &role in Role::ALL {
                        let got = decide(&state, action, role, &input(action));
                        match (expected(status, submitted, action, role), got) {
                            (Ok(to), Verdict::Applied(next)) => assert_eq!(next.status, to, "{status:?} {action} {role}"),
                            (Err(true), Verdict::Forbidden(_)) => {}
                            (Err(false), Verdict::NoEffect(reason)) => assert!(!reason.is_empty()),
                            (want, got) => panic!("{status:?} submitted={submitted} {action} by {role}: want {want:?}, got {got:?}"),
                        }
                        assert_eq!(
                            may_take(role, action),
                            !matches!(expected(status, submitted, action, role), Err(true))
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 9 * 2 * 13 * 4);
    }

    #[test]
    fn every_action_has_one_row() {
        for &a in HazardAction::ALL {
            assert_eq!(
                TRANSITIONS.iter().filter(|t| t.action == a).count(),
                1,
                "{a}"
            );
        }
    }

    #[test]
    fn dispatch_sets_and_return_clears_the_department() {
        let accepted = WorkflowState {
            status: Some(S::Accepted),
            submitted: true,
            ..Default::default()
        };
        let Verdict::Applied(d) =
            decide(&accepted, A::Dispatch, R::Supervisor, &input(A::Dispatch))
        else {
            panic!()
        };
        assert_eq!(d.assignee_department.as_deref(), Some("消防"));
        assert_eq!(d.due_at, Some(Timestamp(1_800_000_000_000)));
        let Verdict::Applied(r) = decide(&d, A::Return, R::Department, &input(A::Return)) else {
            panic!()
        };
        assert_eq!(
            (r.status, r.assignee_department.as_deref(), r.due_at),
            (Some(S::Accepted), None, d.due_at)
        );
    }

    #[test]
    fn params_are_checked_before_status() {
        let none = ActionInput {
            action: Some(A::Reject),
            ..Default::default()
        };
        assert_eq!(
            check_params(A::Reject, &none).unwrap_err().code,
            RejectCode::MissingField
        );
        assert_eq!(
            check_params(
                A::SelfHandle,
                &ActionInput {
                    note: Some("  ".into()),
                    ..Default::default()
                }
            )
            .unwrap_err()
            .code,
            RejectCode::MissingField
        );
        assert!(check_params(
            A::Dispatch,
            &ActionInput {
                department: None,
                ..Default::default()
            }
        )
        .is_err());
        assert!(check_params(A::Comment, &ActionInput::default()).is_ok());
    }

    #[test]
    fn a_stale_offline_self_handle_has_no_effect() {
        let sup = input(A::Accept);
        let disp = input(A::Dispatch);
        let late = input(A::SelfHandle);
        let submit = input(A::Submit);
        let (state, effects) = fold([
            (R::Worker, &submit),
            (R::Supervisor, &sup),
            (R::Supervisor, &disp),
            (R::Worker, &late),
        ]);
        assert_eq!(state.status, Some(S::Dispatched));
        assert_eq!(effects[3].0, Effect::NoEffect);
        assert!(effects[3].1.as_deref().unwrap().contains("dispatched"));
    }

    #[test]
    fn overdue_needs_an_unsettled_status_and_a_past_due_date() {
        let now = Timestamp(2_000);
        let mut s = WorkflowState {
            status: Some(S::Dispatched),
            due_at: Some(Timestamp(1_000)),
            ..Default::default()
        };
        assert!(s.is_overdue(now));
        s.status = Some(S::Disposed);
        assert!(!s.is_overdue(now));
        s.status = Some(S::Accepted);
        s.due_at = Some(Timestamp(3_000));
        assert!(!s.is_overdue(now));
    }
}
