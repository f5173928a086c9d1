//! The HTTP API: routes, the error body every failure answers with, and serving (HTTP or
//! HTTPS) with graceful shutdown. Every route is listed once in [`routes`], so the router and the OpenAPI test see
//! the same list.

pub mod auth;
pub mod finance;
pub mod kiosk;
pub mod metrics;
pub mod openapi;
pub mod people;
pub mod tls;
pub mod transfer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use proto::api::{ApiError, ErrorCode};
use proto::limits::UPLOAD_BODY_BYTES_MAX;
use tokio::net::TcpListener;

use crate::clock::{SharedClock, SystemClock};
use crate::store::{Store, StoreError};

/// How long one request may take before it is answered 503; a kiosk retries later.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;

/// What every handler shares.
#[derive(Debug)]
pub struct App<S> {
    pub store: S,
    pub metrics: metrics::Metrics,
    /// The time zone service days are reconciled in.
    pub finance: crate::reconcile::Settings,
    /// Where every handler reads "now".
    pub clock: SharedClock,
}

/// Cheap to clone: handlers get one each.
pub type SharedApp<S> = Arc<App<S>>;

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

/// Every endpoint: method, path as routed, and its handler.
pub fn routes<S: Store>() -> Vec<(Method, &'static str, MethodRouter<SharedApp<S>>)> {
    vec![
        (Method::GET, "/healthz", get(healthz::<S>)),
        (Method::GET, "/metrics", get(metrics::render::<S>)),
        (Method::GET, "/api/openapi.json", get(openapi::document)),
        (
            Method::POST,
            kiosk::RECORDS_PATH,
            post(kiosk::upload_records::<S>),
        ),
        (Method::GET, kiosk::SNAPSHOT_PATH, get(kiosk::snapshot::<S>)),
        (
            Method::GET,
            "/api/v1/accounts/{account}",
            get(people::get_account::<S>),
        ),
        (
            Method::PUT,
            "/api/v1/accounts/{account}",
            put(people::save_account::<S>),
        ),
        (
            Method::POST,
            "/api/v1/accounts/{account}/top-ups",
            post(people::top_up::<S>),
        ),
        (
            Method::POST,
            "/api/v1/accounts/{account}/adjustments",
            post(people::adjust::<S>),
        ),
        (
            Method::POST,
            "/api/v1/payments",
            post(people::credit_payment::<S>),
        ),
        (
            Method::PUT,
            "/api/v1/pupils/{pupil}",
            put(people::save_pupil::<S>),
        ),
        (
            Method::POST,
            "/api/v1/cards",
            post(people::assign_card::<S>),
        ),
        (
            Method::POST,
            "/api/v1/cards/{uid}/block",
            post(people::block_card::<S>),
        ),
        (
            Method::POST,
            "/api/v1/cards/{uid}/replace",
            post(people::replace_card::<S>),
        ),
        (
            Method::PUT,
            "/api/v1/sites/{site}/tariffs",
            put(people::save_tariff::<S>),
        ),
        (
            Method::PUT,
            "/api/v1/sites/{site}/services/{service}",
            put(people::save_service::<S>),
        ),
        (
            Method::PUT,
            "/api/v1/sites/{site}/staff/{staff}",
            put(people::save_staff::<S>),
        ),
        (
            Method::PUT,
            "/api/v1/sites/{site}/settings",
            put(people::save_settings::<S>),
        ),
        (
            Method::GET,
            "/api/v1/anomalies",
            get(people::anomalies::<S>),
        ),
        (Method::GET, "/api/v1/kiosks", get(people::kiosks::<S>)),
        (
            Method::POST,
            finance::RECONCILIATIONS_PATH,
            post(finance::run::<S>),
        ),
        (
            Method::GET,
            finance::RECONCILIATION_PATH,
            get(finance::get::<S>),
        ),
        (
            Method::POST,
            finance::SIGN_OFF_PATH,
            post(finance::sign_off::<S>),
        ),
        (
            Method::GET,
            finance::PROPOSED_VOIDS_PATH,
            get(finance::proposed_voids::<S>),
        ),
        (
            Method::POST,
            finance::APPROVE_PATH,
            post(finance::approve::<S>),
        ),
        (
            Method::POST,
            finance::REJECT_PATH,
            post(finance::reject::<S>),
        ),
        (
            Method::GET,
            finance::EXPORT_PATH,
            get(finance::download::<S>),
        ),
        (
            Method::POST,
            transfer::TRANSFER_PATH,
            // An export file of days of records is larger than one upload.
            post(transfer::upload::<S>)
                .layer(DefaultBodyLimit::max(crate::transfer::TRANSFER_BYTES_MAX)),
        ),
    ]
}

/// The whole API in front of `store`.
pub fn router<S: Store>(app: SharedApp<S>) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in routes::<S>() {
        router = router.route(path, handler);
    }
    for (_, path, handler) in crate::web::routes::<S>() {
        router = router.route(path, handler);
    }
    router
        .fallback(not_found)
        .layer(axum::middleware::map_response_with_state(
            Arc::clone(&app),
            stamp_date::<S>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            metrics::observe::<S>,
        ))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_BYTES_MAX))
        .with_state(app)
}

/// How the service runs beside its store.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// HTTPS with this configuration; plain HTTP when none.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The time zone finance reconciles service days in.
    pub finance: crate::reconcile::Settings,
    pub clock: SharedClock,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            tls: None,
            finance: crate::reconcile::Settings::default(),
            clock: SystemClock::shared(),
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes; then finishes the requests in
/// flight.
pub async fn serve<S: Store>(
    store: S,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Arc::new(App {
        store,
        metrics: metrics::Metrics::default(),
        finance: options.finance,
        clock: options.clock,
    });
    let router = router(app);
    match options.tls {
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            axum::serve(tls::TlsListener::new(listener, config)?, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// The `Date` of every answer is the service's clock: a kiosk whose signed timestamp was refused
/// sets its clock by it.
async fn stamp_date<S: Store>(State(app): State<SharedApp<S>>, mut response: Response) -> Response {
    let date = jiff::Timestamp::from_millisecond(app.clock.now().unix_ms()).and_then(|now| {
        jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&now)
    });
    if let Some(value) = date
        .ok()
        .and_then(|date| axum::http::HeaderValue::from_str(&date).ok())
    {
        response.headers_mut().insert(header::DATE, value);
    }
    response
}

async fn healthz<S: Store>(State(app): State<SharedApp<S>>) -> Result<&'static str, Failure> {
    app.store.ping().await?;
    Ok("ok\n")
}

async fn not_found() -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint",
    )
}

fn request_timeout() -> Duration {
    Duration::from_millis(REQUEST_TIMEOUT_MS)
}
