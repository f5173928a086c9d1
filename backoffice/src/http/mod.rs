//! The HTTP API: its routes, listed once in [`routes`] area by area (so the router and the
//! OpenAPI test see the same list), and the error body every failure answers with. Handlers
//! authenticate the caller and turn requests into calls of the use cases (`manage`, `kiosks`,
//! `reconcile`, `export`, `transfer`); `crate::app` puts the routes together with the pages'.

pub mod auth;
pub mod finance;
mod input;
pub mod kiosk;
pub mod openapi;
pub mod people;
pub mod tls;
pub mod transfer;

use axum::extract::State;
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use proto::api::{ApiError, ErrorCode};

use crate::manage::ManageError;
use crate::state::SharedApp;
use crate::store::{Store, StoreError};

/// A failed request: the status and the [`ApiError`] body.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub error: ApiError,
}

impl Failure {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            error: ApiError::new(code, message),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        let (status, code) = match &error {
            StoreError::Unavailable(_) | StoreError::SchemaTooNew { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
            }
            StoreError::AlreadyExists { .. } => (StatusCode::CONFLICT, ErrorCode::Conflict),
            StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            StoreError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadRequest),
            StoreError::Constraint(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            StoreError::Corrupt(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Unavailable),
        };
        if status.is_server_error() {
            tracing::error!(%error, "storage failed");
        }
        Failure::new(status, code, error.to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&self.error).unwrap_or_default();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

impl From<ManageError> for Failure {
    fn from(error: ManageError) -> Failure {
        match error {
            ManageError::Forbidden(message) => {
                Failure::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
            }
            ManageError::Invalid(message) => Failure::bad_request(message),
            ManageError::Conflict(message) => {
                Failure::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
            }
            ManageError::Store(error) => Failure::from(error),
        }
    }
}

/// An endpoint: method, path as routed, and its handler.
pub type Route<S> = (Method, &'static str, MethodRouter<SharedApp<S>>);

/// The endpoint `method` `path`, answered by `handler`: the method is named once, for the router
/// and the OpenAPI test alike.
fn route<S: Store, H: Handler<T, SharedApp<S>>, T: 'static>(
    method: Method,
    path: &'static str,
    handler: H,
) -> Route<S> {
    let filter = MethodFilter::try_from(method.clone())
        .expect("the API routes only methods axum filters on");
    (method, path, on(filter, handler))
}

/// Every endpoint: method, path as routed, and its handler.
pub fn routes<S: Store>() -> Vec<Route<S>> {
    [
        service_routes::<S>(),
        kiosk_routes::<S>(),
        account_routes::<S>(),
        pupil_and_card_routes::<S>(),
        site_routes::<S>(),
        monitoring_routes::<S>(),
        finance_routes::<S>(),
        transfer_routes::<S>(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The service's own: health, metrics and this API's document.
fn service_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        route(Method::GET, "/healthz", healthz::<S>),
        route(Method::GET, "/metrics", metrics::<S>),
        route(Method::GET, "/api/openapi.json", openapi::document),
    ]
}

/// What kiosks call, with signed requests.
fn kiosk_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        route(
            Method::POST,
            kiosk::RECORDS_PATH,
            kiosk::upload_records::<S>,
        ),
        route(Method::GET, kiosk::SNAPSHOT_PATH, kiosk::snapshot::<S>),
    ]
}

/// Accounts and the money that moves them.
fn account_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        route(
            Method::GET,
            "/api/v1/accounts/{account}",
            people::get_account::<S>,
        ),
        route(
            Method::PUT,
            "/api/v1/accounts/{account}",
            people::save_account::<S>,
        ),
        route(
            Method::POST,
            "/api/v1/accounts/{account}/top-ups",
            people::top_up::<S>,
        ),
        route(
            Method::POST,
            "/api/v1/accounts/{account}/adjustments",
            people::adjust::<S>,
        ),
        route(
            Method::POST,
            "/api/v1/payments",
            people::credit_payment::<S>,
        ),
    ]
}

/// Pupils and their cards.
fn pupil_and_card_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        route(
            Method::PUT,
            "/api/v1/pupils/{pupil}",
            people::save_pupil::<S>,
        ),
        route(Method::POST, "/api/v1/cards", people::assign_card::<S>),
        route(
            Method::POST,
            "/api/v1/cards/{uid}/block",
            people::block_card::<S>,
        ),
        route(
            Method::POST,
            "/api/v1/cards/{uid}/replace",
            people::replace_card::<S>,
        ),
    ]
}

/// A site's set-up: tariffs, services, staff and kiosk settings.
fn site_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        route(
            Method::PUT,
            "/api/v1/sites/{site}/tariffs",
            people::save_tariff::<S>,
        ),
        route(
            Method::PUT,
            "/api/v1/sites/{site}/services/{service}",
            people::save_service::<S>,
        ),
        route(
            Method::PUT,
            "/api/v1/sites/{site}/staff/{staff}",
            people::save_staff::<S>,
        ),
        route(
            Method::PUT,
            "/api/v1/sites/{site}/settings",
            people::save_settings::<S>,
        ),
    ]
}

/// Anomalies and the kiosk fleet, as finance and admin watch them.
fn monitoring_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        route(Method::GET, "/api/v1/anomalies", people::anomalies::<S>),
        route(Method::GET, "/api/v1/kiosks", people::kiosks::<S>),
    ]
}

/// Reconciliations, their proposed voids, sign-off and exports.
fn finance_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        route(
            Method::POST,
            finance::RECONCILIATIONS_PATH,
            finance::run::<S>,
        ),
        route(Method::GET, finance::RECONCILIATION_PATH, finance::get::<S>),
        route(Method::POST, finance::SIGN_OFF_PATH, finance::sign_off::<S>),
        route(
            Method::GET,
            finance::PROPOSED_VOIDS_PATH,
            finance::proposed_voids::<S>,
        ),
        route(Method::POST, finance::APPROVE_PATH, finance::approve::<S>),
        route(Method::POST, finance::REJECT_PATH, finance::reject::<S>),
        route(Method::GET, finance::EXPORT_PATH, finance::download::<S>),
    ]
}

/// A kiosk's export file brought by hand.
fn transfer_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        // An export file of days of records is larger than one upload: the handler reads it
        // itself, after checking who sends it, within its own bound.
        route(Method::POST, transfer::TRANSFER_PATH, transfer::upload::<S>),
    ]
}

/// Whether this instance and its database answer.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses(
        (status = 200, description = "`ok`", body = String),
        openapi::Unavailable,
    )
)]
async fn healthz<S: Store>(State(app): State<SharedApp<S>>) -> Result<&'static str, Failure> {
    crate::store::ping(&app.store).await?;
    Ok("ok\n")
}

/// Prometheus metrics: requests, latencies, records ingested, refusals by reason, per-kiosk
/// last seen.
///
/// With `--metrics-token-file`, every scraper sends that bearer token; without, only a scraper
/// on this machine is answered.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus' text format, version 0.0.4.", body = String),
        openapi::Unauthenticated,
    )
)]
async fn metrics<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Failure> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let admitted = match (&app.metrics_token, bearer) {
        // Compared as digests: the time a comparison takes says nothing of the token.
        (Some(expected), Some(sent)) => {
            proto::Digest::of(expected.as_bytes()) == proto::Digest::of(sent.as_bytes())
        }
        (Some(_), None) => false,
        // No token configured: this machine only (a proxy on this machine must then not
        // forward /metrics).
        (None, _) => crate::sign_in::client_of(&headers)
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback()),
    };
    if !admitted {
        return Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "metrics need the bearer token configured with --metrics-token-file",
        ));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    ))
}

/// Any other path.
pub async fn not_found() -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint",
    )
}
