//! Finance's endpoints: run and read a day's reconciliation, sign it off, decide proposed voids,
//! and download exports. Running and reading admit finance and admin; signing off and deciding
//! admit finance only.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use proto::api::ErrorCode;
use proto::{ServiceDate, SiteId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Failure;
use super::input::{body, path};
use super::openapi::{BadRequest, NotFound, TooLarge, Unprocessable, UserErrors};
use super::people::actor_with;
use crate::export::{self, ExportError, ExportKind, Period};
use crate::reconcile::{self, RUNNERS, ReconcileError, Report, SIGNERS};
use crate::state::SharedApp;
use crate::store::{ProposedVoid, SavedReconciliation, Store};

pub const RECONCILIATIONS_PATH: &str = "/api/v1/reconciliations";
pub const RECONCILIATION_PATH: &str = "/api/v1/reconciliations/{date}";
pub const SIGN_OFF_PATH: &str = "/api/v1/reconciliations/{date}/sign-off";
pub const PROPOSED_VOIDS_PATH: &str = "/api/v1/proposed-voids";
pub const APPROVE_PATH: &str = "/api/v1/proposed-voids/{id}/approve";
pub const REJECT_PATH: &str = "/api/v1/proposed-voids/{id}/reject";
pub const EXPORT_PATH: &str = "/api/v1/exports/{kind}";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    pub date: ServiceDate,
    #[serde(default)]
    pub site: Option<SiteId>,
}

/// A stored reconciliation as answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReconciliationView {
    pub date: ServiceDate,
    pub site: Option<SiteId>,
    pub run_at: Timestamp,
    pub run_by: String,
    pub signed_off_by: Option<String>,
    pub signed_off_at: Option<Timestamp>,
    pub report: Report,
}

impl From<ReconcileError> for Failure {
    fn from(error: ReconcileError) -> Failure {
        match error {
            ReconcileError::Store(error) => error.into(),
            ReconcileError::Forbidden(message) => {
                Failure::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
            }
            ReconcileError::Date(_) | ReconcileError::TimeZone(_) => {
                Failure::bad_request(error.to_string())
            }
            ReconcileError::Report(_) | ReconcileError::Task(_) => {
                tracing::error!(%error, "reconciliation failed");
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Unavailable,
                    error.to_string(),
                )
            }
        }
    }
}

impl From<ExportError> for Failure {
    fn from(error: ExportError) -> Failure {
        match error {
            ExportError::Reconcile(error) => error.into(),
            ExportError::Store(error) => error.into(),
            ExportError::Forbidden(message) => {
                Failure::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
            }
            ExportError::Period { .. } | ExportError::UnknownKind(_) => {
                Failure::bad_request(error.to_string())
            }
            ExportError::Io(_) | ExportError::Csv(_) => Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Unavailable,
                error.to_string(),
            ),
        }
    }
}

fn view(saved: &SavedReconciliation) -> Result<ReconciliationView, Failure> {
    Ok(ReconciliationView {
        date: saved.date,
        site: saved.site.clone(),
        run_at: saved.run_at,
        run_by: saved.run_by.clone(),
        signed_off_by: saved.signed_off_by.clone(),
        signed_off_at: saved.signed_off_at,
        report: reconcile::parse_report(saved)?,
    })
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn query(params: Params) -> Result<HashMap<String, String>, Failure> {
    params
        .map(|Query(params)| params)
        .map_err(|rejection| Failure::bad_request(rejection.body_text()))
}

fn site_param(params: &HashMap<String, String>) -> Result<Option<SiteId>, Failure> {
    params
        .get("site")
        .map(|site| {
            SiteId::parse(site).map_err(|error| Failure::bad_request(format!("site: {error}")))
        })
        .transpose()
}

fn date_param(name: &str, text: &str) -> Result<ServiceDate, Failure> {
    ServiceDate::parse(text).map_err(|error| Failure::bad_request(format!("{name}: {error}")))
}

/// Runs and stores the reconciliation of a service day, for all sites or one.
///
/// Refused (422) once that day is signed off. Roles: finance, admin.
#[utoipa::path(
    post,
    path = "/api/v1/reconciliations",
    tag = "finance",
    request_body = ReconcileRequest,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The reconciliation stored.", body = ReconciliationView),
        BadRequest, TooLarge, Unprocessable, UserErrors,
    )
)]
pub async fn run<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<ReconciliationView>, Failure> {
    let actor = actor_with(&app, &headers, RUNNERS).await?;
    let request: ReconcileRequest = body(request)?;
    reconcile::run_and_save(
        &app.store,
        &actor,
        request.date,
        request.site.as_ref(),
        &app.finance,
        app.clock.now(),
        |_, _| {},
    )
    .await?;
    let saved = reconcile::saved(&app.store, &actor, request.date, request.site.as_ref())
        .await?
        .ok_or_else(|| not_found("the reconciliation just stored"))?;
    Ok(Json(view(&saved)?))
}

/// The stored reconciliation of a day.
///
/// Roles: finance, admin.
#[utoipa::path(
    get,
    path = "/api/v1/reconciliations/{date}",
    tag = "finance",
    params(
        ("date" = ServiceDate, Path, description = "The service day."),
        ("site" = Option<SiteId>, Query, description = "One site's; all sites without it."),
    ),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The reconciliation.", body = ReconciliationView),
        BadRequest, NotFound, UserErrors,
    )
)]
pub async fn get<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    date: Result<Path<String>, PathRejection>,
    params: Params,
) -> Result<Json<ReconciliationView>, Failure> {
    let actor = actor_with(&app, &headers, RUNNERS).await?;
    let date = date_param("date", &path(date)?)?;
    let site = site_param(&query(params)?)?;
    let saved = reconcile::saved(&app.store, &actor, date, site.as_ref())
        .await?
        .ok_or_else(|| not_found(&format!("no reconciliation of {date}: run one first")))?;
    Ok(Json(view(&saved)?))
}

/// Signs a day off: its reconciliation is immutable from then on.
///
/// Refused while a proposed void of the day is pending. Roles: finance.
#[utoipa::path(
    post,
    path = "/api/v1/reconciliations/{date}/sign-off",
    tag = "finance",
    params(
        ("date" = ServiceDate, Path, description = "The service day."),
        ("site" = Option<SiteId>, Query, description = "One site's; all sites without it."),
    ),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Signed off.", body = ReconciliationView),
        BadRequest, NotFound, Unprocessable, UserErrors,
    )
)]
pub async fn sign_off<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    date: Result<Path<String>, PathRejection>,
    params: Params,
) -> Result<Json<ReconciliationView>, Failure> {
    let actor = actor_with(&app, &headers, SIGNERS).await?;
    let date = date_param("date", &path(date)?)?;
    let site = site_param(&query(params)?)?;
    let now = app.clock.now();
    let saved = reconcile::sign_off(&app.store, &actor, date, site.as_ref(), now).await?;
    Ok(Json(view(&saved)?))
}

/// Voids proposed by reconciliations for duplicate meals.
///
/// Roles: finance, admin.
#[utoipa::path(
    get,
    path = "/api/v1/proposed-voids",
    tag = "finance",
    params(("date" = Option<ServiceDate>, Query, description = "One day's; every day's without it.")),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The proposed voids.", body = Vec<ProposedVoid>),
        BadRequest, UserErrors,
    )
)]
pub async fn proposed_voids<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Json<Vec<ProposedVoid>>, Failure> {
    let actor = actor_with(&app, &headers, RUNNERS).await?;
    let params = query(params)?;
    let date = params
        .get("date")
        .map(|date| date_param("date", date))
        .transpose()?;
    Ok(Json(
        reconcile::proposed_voids(&app.store, &actor, date).await?,
    ))
}

/// Approves a proposed void.
///
/// The meal's price is credited back to the account by an adjustment dated at the start of the
/// next day not signed off. Roles: finance.
#[utoipa::path(
    post,
    path = "/api/v1/proposed-voids/{id}/approve",
    tag = "finance",
    params(("id" = i64, Path, description = "The proposed void.")),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Approved.", body = ProposedVoid),
        BadRequest, NotFound, Unprocessable, UserErrors,
    )
)]
pub async fn approve<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ProposedVoid>, Failure> {
    decide(&app, &headers, path(id)?, true).await
}

/// Rejects a proposed void: nothing moves.
///
/// Roles: finance.
#[utoipa::path(
    post,
    path = "/api/v1/proposed-voids/{id}/reject",
    tag = "finance",
    params(("id" = i64, Path, description = "The proposed void.")),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Rejected.", body = ProposedVoid),
        BadRequest, NotFound, Unprocessable, UserErrors,
    )
)]
pub async fn reject<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ProposedVoid>, Failure> {
    decide(&app, &headers, path(id)?, false).await
}

async fn decide<S: Store>(
    app: &SharedApp<S>,
    headers: &HeaderMap,
    id: i64,
    approve: bool,
) -> Result<Json<ProposedVoid>, Failure> {
    let actor = actor_with(app, headers, SIGNERS).await?;
    let now = app.clock.now();
    Ok(Json(
        reconcile::decide(&app.store, &actor, id, approve, &app.finance, now).await?,
    ))
}

/// An export of days `from` to `to`, all sites or one.
///
/// `meals`, `top-ups` and `summary` are CSV; `journal` is the FEC journal (tab-separated);
/// `records` is JSON Lines of the audit format, each kiosk's PEM key first. Roles: finance,
/// admin.
#[utoipa::path(
    get,
    path = "/api/v1/exports/{kind}",
    tag = "finance",
    params(
        ("kind" = inline(ExportKindName), Path, description = "What to export."),
        ("from" = ServiceDate, Query, description = "The first day."),
        ("to" = Option<ServiceDate>, Query, description = "The last day, not before `from`; `from` without it."),
        ("site" = Option<SiteId>, Query, description = "One site's; all sites without it."),
    ),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The export.", content(
            (String = "text/csv; charset=utf-8"),
            (String = "text/tab-separated-values; charset=utf-8"),
            (String = "application/jsonl"),
        )),
        BadRequest, UserErrors,
    )
)]
pub async fn download<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    kind: Result<Path<String>, PathRejection>,
    params: Params,
) -> Result<Response, Failure> {
    let actor = actor_with(&app, &headers, RUNNERS).await?;
    let kind = ExportKind::parse(&path(kind)?)?;
    let params = query(params)?;
    let from = date_param(
        "from",
        params
            .get("from")
            .ok_or_else(|| Failure::bad_request("from: required"))?,
    )?;
    let to = params
        .get("to")
        .map(|to| date_param("to", to))
        .transpose()?
        .unwrap_or(from);
    let period = Period::new(from, to)?;
    let site = site_param(&params)?;
    let mut bytes = Vec::new();
    export::write(
        &app.store,
        &actor,
        kind,
        period,
        site.as_ref(),
        &app.finance,
        &mut bytes,
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, kind.content_type())], bytes).into_response())
}

/// The kinds of export, as the path names them ([`ExportKind::parse`]).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(
    dead_code,
    reason = "named only in the API document: the handler parses the path itself"
)]
enum ExportKindName {
    Meals,
    TopUps,
    Summary,
    Journal,
    Records,
}

fn not_found(message: &str) -> Failure {
    Failure::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
}

#[cfg(test)]
mod tests {
    use super::ExportKindName;
    use crate::export::ExportKind;

    #[test]
    fn documented_export_kinds_parse() {
        let documented = [
            ExportKindName::Meals,
            ExportKindName::TopUps,
            ExportKindName::Summary,
            ExportKindName::Journal,
            ExportKindName::Records,
        ];
        for kind in documented {
            let name = serde_json::to_value(&kind).unwrap();
            let name = name.as_str().unwrap();
            assert!(ExportKind::parse(name).is_ok(), "{name}");
        }
    }
}
