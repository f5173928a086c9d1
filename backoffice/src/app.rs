//! The service put together: the HTTP API's routes and the web pages' under one router, the
//! layers every request goes through (a time bound, metrics and a log line, the `Date` of the
//! service's clock, a body size bound), and serving over HTTP or HTTPS with graceful shutdown.
//! It sits above `http` and `web`, which know nothing of each other.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use proto::api::ErrorCode;
use proto::limits::UPLOAD_BODY_BYTES_MAX;
use tokio::net::TcpListener;

use crate::clock::{SharedClock, SystemClock};
use crate::http::tls::TlsListener;
use crate::http::{self, Failure};
use crate::limits::REQUEST_TIMEOUT_MS;
use crate::metrics::Metrics;
use crate::sign_in::CLIENT_HEADER;
use crate::state::{App, SharedApp};
use crate::store::Store;
use axum::serve::IncomingStream;

/// How the service runs beside its store.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// HTTPS with this configuration; plain HTTP when none.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The time zone finance reconciles service days in.
    pub finance: crate::reconcile::Settings,
    pub clock: SharedClock,
    /// The bearer token `/metrics` asks of every scraper; without one, only this machine may
    /// read it.
    pub metrics_token: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            tls: None,
            finance: crate::reconcile::Settings::default(),
            clock: SystemClock::shared(),
            metrics_token: None,
        }
    }
}

/// The whole service in front of `app`'s store.
pub fn router<S: Store>(app: SharedApp<S>) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in http::routes::<S>() {
        router = router.route(path, handler);
    }
    for (_, path, handler) in crate::web::routes::<S>() {
        router = router.route(path, handler);
    }
    layered(router.fallback(http::not_found), app)
}

/// `routes` behind the layers every request goes through.
pub fn layered<S: Store>(routes: Router<SharedApp<S>>, app: SharedApp<S>) -> Router {
    routes
        .layer(axum::middleware::map_request(client_address))
        .layer(axum::middleware::map_response(crate::web::security_headers))
        .layer(axum::middleware::map_response_with_state(
            Arc::clone(&app),
            stamp_date::<S>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            observe::<S>,
        ))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_BYTES_MAX))
        .with_state(app)
}

/// Serves `store` on `listener` until `shutdown` completes; then finishes the requests in
/// flight.
pub async fn serve<S: Store>(
    store: S,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Arc::new(App {
        store,
        metrics: Metrics::default(),
        finance: options.finance,
        clock: options.clock,
        metrics_token: options.metrics_token,
    });
    let service = router(app).into_make_service_with_connect_info::<ClientAddress>();
    match options.tls {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            axum::serve(TlsListener::new(listener, config)?, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// The address a connection came from, over HTTP or HTTPS.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for ClientAddress {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> ClientAddress {
        ClientAddress(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ClientAddress {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> ClientAddress {
        ClientAddress(*stream.remote_addr())
    }
}

/// Passes the client's address to the handlers in [`CLIENT_HEADER`], removing any copy the
/// client sent: the sign-in lock-out counts failures per name and address.
async fn client_address(mut request: Request) -> Request {
    let address = request
        .extensions()
        .get::<ConnectInfo<ClientAddress>>()
        .map(|ConnectInfo(ClientAddress(address))| address.ip().to_string());
    let headers = request.headers_mut();
    headers.remove(CLIENT_HEADER);
    if let Some(value) = address.and_then(|address| HeaderValue::from_str(&address).ok()) {
        headers.insert(CLIENT_HEADER, value);
    }
    request
}

/// Bounds each request's time, counts it, times it and logs it. A request that panics is
/// answered 500 and ends there: it runs as a task of its own, so the panic unwinds that task
/// only, every lock it held is released (the stores' and the metrics' recover from it), and the
/// next request is served as usual.
async fn observe<S: Store>(
    State(app): State<SharedApp<S>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
    let handling = tokio::spawn(next.run(request));
    let cancel = handling.abort_handle();
    let response = match tokio::time::timeout(timeout, handling).await {
        Ok(Ok(response)) => response,
        Ok(Err(failed)) => {
            tracing::error!(%method, route, error = %failed, "a request failed inside the service");
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Unavailable,
                "the service failed on this request; it has been logged",
            )
            .into_response()
        }
        Err(_) => {
            cancel.abort();
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the request took too long; try again later",
            )
            .into_response()
        }
    };
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status();
    app.metrics.observed(&route, status.as_u16(), elapsed_us);
    tracing::info!(%method, route, status = status.as_u16(), elapsed_us, "request");
    response
}

/// The `Date` of every answer is the service's clock: a kiosk whose signed timestamp was refused
/// sets its clock by it.
async fn stamp_date<S: Store>(State(app): State<SharedApp<S>>, mut response: Response) -> Response {
    let date = jiff::Timestamp::from_millisecond(app.clock.now().unix_ms()).and_then(|now| {
        jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&now)
    });
    if let Some(value) = date.ok().and_then(|date| HeaderValue::from_str(&date).ok()) {
        response.headers_mut().insert(header::DATE, value);
    }
    response
}
