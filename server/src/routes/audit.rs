//! `GET /audit?action&actor_id&target_type&target_id&from&to&limit&cursor` (docs/api.md,
//! "Audit log"): admins read every entry, supervisors the entries about their area subtree
//! (see [`crate::queries::audit`]); other roles 403. Answers CSV on `Accept: text/csv`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sync_core::ids::UserId;

use super::pagination::PageRequest;
use utoipa::IntoParams;

use crate::auth::{require_role, AuthUser};
use crate::csv::list_response;
use crate::error::AppResult;
use crate::queries::audit::{self as q, AuditFilter, AuditScope};
use crate::queries::{parse_range, TimeKey, SUPERVISING};
use crate::routes::openapi::schemas::{ErrorEnvelope, Page};
use crate::state::AppState;

/// Register the audit route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit").route(web::get().to(list_audit)));
}

/// Query parameters of `GET /audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// e.g. `hazard.action`, `conflict.resolve`, `user.update`.
    action: Option<String>,
    #[param(value_type = Option<String>)]
    actor_id: Option<UserId>,
    target_type: Option<String>,
    target_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "a page of audit entries, newest first; CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<TimeKey> = page.after()?;
    let fetch = page.fetch_limit();
    let (entries, next) = state
        .pool
        .run(move |conn| {
            let scope = AuditScope::of(conn, &user)?;
            let f = AuditFilter {
                scope,
                action: query.action,
                actor_id: query.actor_id.map(|a| a.to_string()),
                target_type: query.target_type,
                target_id: query.target_id,
                from,
                to,
            };
            let rows = q::list(conn, &f, after, fetch)?;
            let page = page.finish(rows, |e| (e.at, e.id.clone()));
            Ok((q::items(conn, &page.items)?, page.next_cursor))
        })
        .await?;
    list_response(&req, "audit", q::COLUMNS, entries, next)
}
