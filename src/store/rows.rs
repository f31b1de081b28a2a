//! SQL texts and the mapping of rows to domain records.

use chrono::DateTime;

use super::DbError;
use super::db::{Col, DbRow};
use crate::core::model::*;
use crate::core::ports::{Plan, PlanKind, PlanState};
use crate::core::workflow::RequestState;

/// A timestamp as stored: unix microseconds.
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// A stored timestamp.
pub(crate) fn from_micros(us: i64) -> Result<Timestamp, DbError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| DbError::Corrupt(format!("timestamp {us} µs is out of range")))
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(format!("{what}: {e}"))
}

pub(super) fn get<'r, T: Col<'r>>(row: &'r DbRow, col: &str) -> Result<T, DbError> {
    row.try_get::<T, _>(col)
        .map_err(|e| corrupt(&format!("column {col}"), e))
}

fn flag(row: &DbRow, col: &str) -> Result<bool, DbError> {
    row.flag(col)
        .map_err(|e| corrupt(&format!("column {col}"), e))
}

pub(super) fn opt_ts(row: &DbRow, col: &str) -> Result<Option<Timestamp>, DbError> {
    get::<Option<i64>>(row, col)?.map(from_micros).transpose()
}

/// Who decided, when and why (`decided_by`, `decided_at`, `reason`), when someone did.
pub(super) fn decided(row: &DbRow) -> Result<Option<(String, Timestamp, String)>, DbError> {
    Ok(
        match (
            get::<Option<String>>(row, "decided_by")?,
            opt_ts(row, "decided_at")?,
        ) {
            (Some(by), Some(at)) => Some((
                by,
                at,
                get::<Option<String>>(row, "reason")?.unwrap_or_default(),
            )),
            _ => None,
        },
    )
}

pub(super) fn handle(s: &str) -> Result<Handle, DbError> {
    Handle::parse(s).map_err(|e| corrupt("handle", e))
}

pub(super) fn app(s: &str) -> Result<AppName, DbError> {
    AppName::parse(s).map_err(|e| corrupt("app name", e))
}

/// SQL for one entity.
pub(crate) struct PersonSql {
    pub by_handle: &'static str,
    pub by_discord_id: &'static str,
    pub by_email: &'static str,
    /// The person with a handle (`which` 0) and the one with an e-mail (`which` 1).
    pub by_handle_or_email: &'static str,
    pub all: &'static str,
    /// People whose handles are in a JSON array of strings (one bind).
    pub in_list: &'static str,
    /// The same for PostgreSQL.
    pub in_list_pg: &'static str,
}

macro_rules! person_cols {
    () => {
        "SELECT handle, name, email, department, role, manager, discord_id, status, timezone \
         FROM people "
    };
}

pub(crate) const PERSON_COLS: PersonSql = PersonSql {
    by_handle: concat!(person_cols!(), "WHERE handle = ?"),
    by_discord_id: concat!(person_cols!(), "WHERE discord_id = ?"),
    by_email: concat!(person_cols!(), "WHERE email = ?"),
    by_handle_or_email: concat!(
        "SELECT CAST(0 AS BIGINT) AS which, * FROM (",
        person_cols!(),
        "WHERE handle = ?) AS h UNION ALL SELECT CAST(1 AS BIGINT) AS which, * FROM (",
        person_cols!(),
        "WHERE email = ?) AS e"
    ),
    all: concat!(person_cols!(), "ORDER BY handle"),
    in_list: concat!(
        person_cols!(),
        "WHERE handle IN (SELECT value FROM json_each(?))"
    ),
    in_list_pg: concat!(
        person_cols!(),
        "WHERE handle = ANY(ARRAY(SELECT json_array_elements_text($1::json)))"
    ),
};

pub(crate) fn person_from_row(row: &DbRow) -> Result<Person, DbError> {
    let status: String = get(row, "status")?;
    Ok(Person {
        handle: handle(&get::<String>(row, "handle")?)?,
        name: get(row, "name")?,
        email: Email::parse(&get::<String>(row, "email")?).map_err(|e| corrupt("email", e))?,
        department: get(row, "department")?,
        role: RoleName::parse(&get::<String>(row, "role")?).map_err(|e| corrupt("role", e))?,
        manager: get::<Option<String>>(row, "manager")?
            .as_deref()
            .map(handle)
            .transpose()?,
        discord_id: get(row, "discord_id")?,
        status: PersonStatus::parse(&status).ok_or_else(|| corrupt("person status", &status))?,
        timezone: get::<Option<String>>(row, "timezone")?
            .as_deref()
            .map(Zone::parse)
            .transpose()
            .map_err(|e| corrupt("time zone", e))?,
    })
}

/// SQL for requests (steps are loaded separately).
pub(crate) struct RequestSql {
    pub by_id: &'static str,
    pub open_of: &'static str,
    pub open: &'static str,
    pub by_requester: &'static str,
    pub by_ids: &'static str,
    pub by_ids_pg: &'static str,
}

macro_rules! request_cols {
    () => {
        "SELECT id, requester, app, reason, duration_secs, kind, extends_grant, state, \
         current_step, grant_id, created_at, updated_at, version FROM requests "
    };
}
macro_rules! open_states {
    () => {
        "state IN ('submitted', 'awaiting', 'no_approver')"
    };
}

pub(crate) const REQUEST_COLS: RequestSql = RequestSql {
    by_id: concat!(request_cols!(), "WHERE id = ?"),
    // Oldest first, so the caller's `pop()` takes the newest should there ever be two.
    open_of: concat!(
        request_cols!(),
        "WHERE requester = ? AND app = ? AND ",
        open_states!(),
        " ORDER BY id"
    ),
    open: concat!(
        request_cols!(),
        "WHERE ",
        open_states!(),
        " ORDER BY created_at, id"
    ),
    by_requester: concat!(
        request_cols!(),
        "WHERE requester = ? ORDER BY created_at DESC, id DESC"
    ),
    by_ids: concat!(
        request_cols!(),
        "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id"
    ),
    by_ids_pg: concat!(
        request_cols!(),
        "WHERE id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint)) ORDER BY id"
    ),
};

pub(crate) fn request_from_row(row: &DbRow) -> Result<Request, DbError> {
    let kind: String = get(row, "kind")?;
    let extends: Option<i64> = get(row, "extends_grant")?;
    let kind = match (kind.as_str(), extends) {
        ("new", _) => RequestKind::New,
        ("extend", Some(g)) => RequestKind::Extend(GrantId(g)),
        _ => return Err(corrupt("request kind", &kind)),
    };
    let state: String = get(row, "state")?;
    let step: Option<i64> = get(row, "current_step")?;
    let step = u32::try_from(step.unwrap_or(0)).map_err(|e| corrupt("current_step", e))?;
    let state =
        RequestState::from_parts(&state, step).ok_or_else(|| corrupt("request state", &state))?;
    let duration = get::<Option<i64>>(row, "duration_secs")?
        .map(|s| {
            u64::try_from(s)
                .map(|s| Span::from_std(std::time::Duration::from_secs(s)))
                .map_err(|e| corrupt("duration_secs", e))
        })
        .transpose()?;
    Ok(Request {
        id: RequestId(get(row, "id")?),
        requester: handle(&get::<String>(row, "requester")?)?,
        app: app(&get::<String>(row, "app")?)?,
        reason: get(row, "reason")?,
        duration,
        kind,
        state,
        steps: Vec::new(),
        grant: get::<Option<i64>>(row, "grant_id")?.map(GrantId),
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
        version: get(row, "version")?,
    })
}

pub(crate) fn step_from_row(row: &DbRow) -> Result<Step, DbError> {
    let rule: String = get(row, "rule")?;
    let approvers: String = get(row, "approvers")?;
    let approvers: Vec<String> =
        serde_json::from_str(&approvers).map_err(|e| corrupt("step approvers", e))?;
    let decision = if flag(row, "decided")? {
        Some(Decision {
            approved: row
                .opt_flag("approved")
                .map_err(|e| corrupt("column approved", e))?
                .unwrap_or(false),
            by: handle(
                &get::<Option<String>>(row, "decided_by")?
                    .ok_or_else(|| corrupt("step decided_by", "missing"))?,
            )?,
            at: opt_ts(row, "decided_at")?.ok_or_else(|| corrupt("step decided_at", "missing"))?,
            reason: get(row, "reason")?,
        })
    } else {
        None
    };
    Ok(Step {
        index: u32::try_from(get::<i64>(row, "idx")?).map_err(|e| corrupt("step idx", e))?,
        rule: ApprovalRule::parse(&rule).map_err(|e| corrupt("step rule", e))?,
        approvers: approvers
            .iter()
            .map(|h| handle(h))
            .collect::<Result<_, _>>()?,
        started_at: opt_ts(row, "started_at")?,
        decision,
        reminded: flag(row, "reminded")?,
        escalated: flag(row, "escalated")?,
    })
}

/// SQL for grants.
pub(crate) struct GrantSql {
    pub by_id: &'static str,
    pub live_of: &'static str,
    pub ending_by: &'static str,
    pub unwarned: &'static str,
    /// Grants whose ids are in a JSON array of integers (one bind).
    pub in_list: &'static str,
    /// The same for PostgreSQL.
    pub in_list_pg: &'static str,
    /// `live_of` for the people in a JSON array of handles (one bind).
    pub live_of_list: &'static str,
    /// The same for PostgreSQL.
    pub live_of_list_pg: &'static str,
}

macro_rules! grant_cols {
    () => {
        "SELECT id, person, app, source, request_id, state, granted_at, expires_at, warned \
         FROM grants "
    };
}

pub(crate) const GRANT_COLS: GrantSql = GrantSql {
    by_id: concat!(grant_cols!(), "WHERE id = ?"),
    live_of: concat!(
        grant_cols!(),
        "WHERE person = ? AND state IN ('pending', 'active', 'revoking') ORDER BY app, id"
    ),
    ending_by: concat!(
        grant_cols!(),
        "WHERE state = 'active' AND expires_at IS NOT NULL AND expires_at <= ? \
         ORDER BY expires_at, id"
    ),
    unwarned: concat!(
        grant_cols!(),
        "WHERE state = 'active' AND expires_at IS NOT NULL AND expires_at <= ? AND warned = 0 \
         ORDER BY expires_at, id"
    ),
    in_list: concat!(
        grant_cols!(),
        "WHERE id IN (SELECT value FROM json_each(?))"
    ),
    in_list_pg: concat!(
        grant_cols!(),
        "WHERE id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint))"
    ),
    live_of_list: concat!(
        grant_cols!(),
        "INDEXED BY grants_one_live_per_app WHERE person IN (SELECT value FROM json_each(?)) \
         AND state IN ('pending', 'active', 'revoking') ORDER BY person, app, id"
    ),
    live_of_list_pg: concat!(
        grant_cols!(),
        "WHERE person = ANY(ARRAY(SELECT json_array_elements_text($1::json))) \
         AND state IN ('pending', 'active', 'revoking') ORDER BY person, app, id"
    ),
};

pub(crate) fn grant_from_row(row: &DbRow) -> Result<Grant, DbError> {
    let source: String = get(row, "source")?;
    let req: Option<i64> = get(row, "request_id")?;
    let source = match (source.as_str(), req) {
        ("birthright", _) => GrantSource::Birthright,
        ("request", Some(r)) => GrantSource::Request(RequestId(r)),
        _ => return Err(corrupt("grant source", &source)),
    };
    let state: String = get(row, "state")?;
    Ok(Grant {
        id: GrantId(get(row, "id")?),
        person: handle(&get::<String>(row, "person")?)?,
        app: app(&get::<String>(row, "app")?)?,
        source,
        state: GrantState::parse(&state).ok_or_else(|| corrupt("grant state", &state))?,
        granted_at: opt_ts(row, "granted_at")?,
        expires_at: opt_ts(row, "expires_at")?,
        warned: flag(row, "warned")?,
    })
}

/// SQL for actions.
pub(crate) struct ActionSql {
    pub by_id: &'static str,
    pub for_grant: &'static str,
    pub for_person: &'static str,
    /// Binds: lease_until, now (updated_at), now (due), now (lease ended).
    pub claim: &'static str,
    /// The same for PostgreSQL: the candidate row is locked, and rows other instances hold
    /// locked are skipped, so concurrent claimers never wait on or take the same action.
    pub claim_pg: &'static str,
    /// `claim` skipping connectors: one more bind, the skipped names as `,a,b,`.
    pub claim_except: &'static str,
    /// The same for PostgreSQL.
    pub claim_except_pg: &'static str,
    /// Up to N due actions at once, skipping connectors. Binds: until, now, now, skipped,
    /// N, now, skipped, N, N.
    pub claim_many: &'static str,
    /// The same for PostgreSQL.
    pub claim_many_pg: &'static str,
    /// `for_person` for the people in a JSON array of handles (one bind), oldest first.
    pub for_people: &'static str,
    /// The same for PostgreSQL.
    pub for_people_pg: &'static str,
    /// Whether `claim_many` would find anything (SQLite, read-only). Binds: now, skipped,
    /// now, skipped.
    pub any_due: &'static str,
}

macro_rules! action_cols {
    () => {
        "id, connector, op, person, app, entitlement, grant_id, request_id, state, attempts, \
         last_error, not_before, created_at"
    };
}

pub(crate) const ACTION_COLS: ActionSql = ActionSql {
    by_id: concat!("SELECT ", action_cols!(), " FROM actions WHERE id = ?"),
    for_grant: concat!(
        "SELECT ",
        action_cols!(),
        " FROM actions WHERE grant_id = ? ORDER BY id"
    ),
    for_person: concat!(
        "SELECT ",
        action_cols!(),
        " FROM actions WHERE person = ? ORDER BY id"
    ),
    for_people: concat!(
        "SELECT ",
        action_cols!(),
        " FROM actions WHERE person IN (SELECT value FROM json_each(?)) ORDER BY id"
    ),
    for_people_pg: concat!(
        "SELECT ",
        action_cols!(),
        " FROM actions WHERE person = ANY(ARRAY(SELECT json_array_elements_text($1::json))) \
         ORDER BY id"
    ),
    // The claim queries find the oldest due action as the smaller of two ordered index
    // look-ups (the oldest due pending one, the oldest running one whose lease lapsed) on
    // `actions_queue (state, id, …)`: a single `ORDER BY id` over an `OR` sorted every
    // pending row, or scanned every finished one, on each claim. PostgreSQL texts number
    // their placeholders explicitly, in the binding order of the SQLite text, and take the
    // lapsed lease by lease order on `actions_leased` (migration 0007: in id order the
    // look-up walked every dead 'running' entry an update leaves behind until vacuum).
    claim: concat!(
        "UPDATE actions SET state = 'running', lease_until = ?, attempts = attempts + 1, \
         updated_at = ? WHERE id = (SELECT min(id) FROM (\
         SELECT id FROM (SELECT id FROM actions WHERE state = 'pending' AND not_before <= ? \
         ORDER BY id LIMIT 1) UNION ALL \
         SELECT id FROM (SELECT id FROM actions WHERE state = 'running' AND lease_until < ? \
         ORDER BY id LIMIT 1))) RETURNING ",
        action_cols!()
    ),
    claim_pg: concat!(
        "WITH p AS (SELECT id FROM actions WHERE state = 'pending' AND not_before <= $3 \
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED), \
         r AS (SELECT id FROM actions WHERE state = 'running' AND lease_until < $4 \
         ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED) \
         UPDATE actions SET state = 'running', lease_until = $1, attempts = attempts + 1, \
         updated_at = $2 WHERE id = (SELECT min(id) FROM \
         (SELECT id FROM p UNION ALL SELECT id FROM r) due) RETURNING ",
        action_cols!()
    ),
    // Binds: until, now, now, skipped, now, skipped.
    claim_except: concat!(
        "UPDATE actions SET state = 'running', lease_until = ?, attempts = attempts + 1, \
         updated_at = ? WHERE id = (SELECT min(id) FROM (\
         SELECT id FROM (SELECT id FROM actions WHERE state = 'pending' AND not_before <= ? \
         AND instr(?, ',' || connector || ',') = 0 ORDER BY id LIMIT 1) UNION ALL \
         SELECT id FROM (SELECT id FROM actions WHERE state = 'running' AND lease_until < ? \
         AND instr(?, ',' || connector || ',') = 0 ORDER BY id LIMIT 1))) RETURNING ",
        action_cols!()
    ),
    claim_except_pg: concat!(
        "WITH p AS (SELECT id FROM actions WHERE state = 'pending' AND not_before <= $3 \
         AND strpos($4, ',' || connector || ',') = 0 \
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED), \
         r AS (SELECT id FROM actions WHERE state = 'running' AND lease_until < $5 \
         AND strpos($6, ',' || connector || ',') = 0 \
         ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED) \
         UPDATE actions SET state = 'running', lease_until = $1, attempts = attempts + 1, \
         updated_at = $2 WHERE id = (SELECT min(id) FROM \
         (SELECT id FROM p UNION ALL SELECT id FROM r) due) RETURNING ",
        action_cols!()
    ),
    // The batch claim: the N oldest of (the N oldest due pending, the N oldest lapsed).
    claim_many: concat!(
        "UPDATE actions SET state = 'running', lease_until = ?, attempts = attempts + 1, \
         updated_at = ? WHERE id IN (SELECT id FROM (\
         SELECT id FROM (SELECT id FROM actions WHERE state = 'pending' AND not_before <= ? \
         AND instr(?, ',' || connector || ',') = 0 ORDER BY id LIMIT ?) UNION ALL \
         SELECT id FROM (SELECT id FROM actions WHERE state = 'running' AND lease_until < ? \
         AND instr(?, ',' || connector || ',') = 0 ORDER BY id LIMIT ?)) ORDER BY id LIMIT ?) \
         RETURNING ",
        action_cols!()
    ),
    any_due: "SELECT EXISTS (SELECT 1 FROM actions WHERE state = 'pending' AND not_before <= ? \
         AND instr(?, ',' || connector || ',') = 0) \
         OR EXISTS (SELECT 1 FROM actions WHERE state = 'running' AND lease_until < ? \
         AND instr(?, ',' || connector || ',') = 0) AS due",
    claim_many_pg: concat!(
        "WITH p AS (SELECT id FROM actions WHERE state = 'pending' AND not_before <= $3 \
         AND strpos($4, ',' || connector || ',') = 0 \
         ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED), \
         r AS (SELECT id FROM actions WHERE state = 'running' AND lease_until < $6 \
         AND strpos($7, ',' || connector || ',') = 0 \
         ORDER BY lease_until LIMIT $8 FOR UPDATE SKIP LOCKED) \
         UPDATE actions SET state = 'running', lease_until = $1, attempts = attempts + 1, \
         updated_at = $2 WHERE id = ANY(ARRAY(SELECT id FROM \
         (SELECT id FROM p UNION ALL SELECT id FROM r) due ORDER BY id LIMIT $9)) RETURNING ",
        action_cols!()
    ),
};

pub(crate) fn action_from_row(row: &DbRow) -> Result<Action, DbError> {
    let op: String = get(row, "op")?;
    let state: String = get(row, "state")?;
    Ok(Action {
        id: ActionId(get(row, "id")?),
        connector: ConnectorName::parse(&get::<String>(row, "connector")?)
            .map_err(|e| corrupt("connector name", e))?,
        op: ActionOp::parse(&op).ok_or_else(|| corrupt("action op", &op))?,
        person: handle(&get::<String>(row, "person")?)?,
        app: get::<Option<String>>(row, "app")?
            .as_deref()
            .map(app)
            .transpose()?,
        entitlement: get(row, "entitlement")?,
        grant: get::<Option<i64>>(row, "grant_id")?.map(GrantId),
        request: get::<Option<i64>>(row, "request_id")?.map(RequestId),
        state: ActionState::parse(&state).ok_or_else(|| corrupt("action state", &state))?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?)
            .map_err(|e| corrupt("attempts", e))?,
        last_error: get(row, "last_error")?,
        not_before: from_micros(get(row, "not_before")?)?,
        created_at: from_micros(get(row, "created_at")?)?,
    })
}

macro_rules! plan_cols {
    () => {
        "id, kind, subject, created_by, confirmers, detail, state, decided_by, decided_at, \
         reported, created_at, first_action, due_at, started, report_open"
    };
}
/// One plan by id.
pub(crate) const PLAN_BY_ID: &str = concat!("SELECT ", plan_cols!(), " FROM plans WHERE id = ?");
/// The plans waiting for Confirm or Cancel, oldest first.
pub(crate) const PLANS_OPEN: &str = concat!(
    "SELECT ",
    plan_cols!(),
    " FROM plans WHERE state = 'open' ORDER BY id"
);
/// A person's plans, newest first.
pub(crate) const PLANS_OF: &str = concat!(
    "SELECT ",
    plan_cols!(),
    " FROM plans WHERE subject = ? ORDER BY id DESC"
);
/// Each picked person's newest onboarding plan, unreported, with no grant action of the
/// person pending or running from its first action on; `$subjects` picks the handles.
macro_rules! plans_settled {
    ($subjects:literal) => {
        concat!(
            "SELECT ",
            plan_cols!(),
            " FROM plans p WHERE p.id IN (SELECT MAX(id) FROM plans WHERE kind = 'onboard' \
             AND subject ",
            $subjects,
            " GROUP BY subject) AND p.reported = 0 AND NOT EXISTS (SELECT 1 FROM actions a \
             WHERE a.person = p.subject AND p.first_action IS NOT NULL \
             AND a.id >= p.first_action AND a.op = 'grant' \
             AND a.state IN ('pending', 'running')) ORDER BY p.id"
        )
    };
}
/// The settled onboarding plans of the people in a JSON array of handles (one bind).
pub(crate) const ONBOARDING_PLANS_SETTLED: &str =
    plans_settled!("IN (SELECT value FROM json_each(?))");
/// The same for PostgreSQL.
pub(crate) const ONBOARDING_PLANS_SETTLED_PG: &str =
    plans_settled!("= ANY(ARRAY(SELECT json_array_elements_text($1::json)))");
/// Confirmed plans due by a moment and not started, oldest first (one to run at once is
/// due 10 s after its Confirm: a crash between the Confirm and the work left it).
pub(crate) const PLANS_DUE: &str = concat!(
    "SELECT ",
    plan_cols!(),
    " FROM plans WHERE state = 'confirmed' AND started = 0 \
     AND COALESCE(due_at, decided_at + 10000000) <= ? ORDER BY due_at, id"
);

/// Confirmed, started offboarding plans whose report has not gone out.
pub(crate) const PLANS_UNREPORTED_OFFBOARD: &str = concat!(
    "SELECT ",
    plan_cols!(),
    " FROM plans WHERE kind = 'offboard' AND state = 'confirmed' AND started = 1 \
     AND reported = 0 ORDER BY id"
);

pub(crate) fn plan_from_row(row: &DbRow) -> Result<Plan, DbError> {
    let kind: String = get(row, "kind")?;
    let state: String = get(row, "state")?;
    let confirmers: String = get(row, "confirmers")?;
    let confirmers: Vec<String> =
        serde_json::from_str(&confirmers).map_err(|e| corrupt("plan confirmers", e))?;
    Ok(Plan {
        id: PlanId(get(row, "id")?),
        kind: PlanKind::parse(&kind).ok_or_else(|| corrupt("plan kind", &kind))?,
        subject: handle(&get::<String>(row, "subject")?)?,
        created_by: handle(&get::<String>(row, "created_by")?)?,
        confirmers: confirmers
            .iter()
            .map(|h| handle(h))
            .collect::<Result<_, _>>()?,
        detail: get(row, "detail")?,
        state: PlanState::parse(&state).ok_or_else(|| corrupt("plan state", &state))?,
        decided_by: get::<Option<String>>(row, "decided_by")?
            .map(|h| handle(&h))
            .transpose()?,
        decided_at: opt_ts(row, "decided_at")?,
        reported: flag(row, "reported")?,
        report_open: flag(row, "report_open")?,
        first_action: get::<Option<i64>>(row, "first_action")?.map(ActionId),
        created_at: from_micros(get(row, "created_at")?)?,
        due_at: opt_ts(row, "due_at")?,
        started: flag(row, "started")?,
    })
}
