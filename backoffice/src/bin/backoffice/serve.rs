//! `backoffice serve`: the HTTP API and the pages until SIGINT or SIGTERM, and the nightly
//! reconciliation of the previous day.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use backoffice::app::ServeOptions;
use backoffice::clock::SharedClock;
use backoffice::limits::METRICS_TOKEN_CHARS_MIN;
use backoffice::manage::Actor;
use backoffice::reconcile::{self, Settings};
use backoffice::store::Store;
use proto::ServiceDate;
use tokio::net::TcpListener;

use crate::args::ServeArgs;

pub async fn serve<S: Store>(
    store: S,
    command: ServeArgs,
    clock: SharedClock,
) -> anyhow::Result<()> {
    let finance = Settings::new(&command.time_zone).context("--time-zone")?;
    let nightly = match command.reconcile_at.as_str() {
        "off" => None,
        time => Some(
            time.parse::<jiff::civil::Time>()
                .with_context(|| format!("--reconcile-at {time}: expected HH:MM or off"))?,
        ),
    };
    let tls = match (command.tls_cert, command.tls_key) {
        (Some(certificate), Some(key)) => {
            Some(backoffice::http::tls::server_config(&certificate, &key)?)
        }
        _ => None,
    };
    let metrics_token = match &command.metrics_token_file {
        Some(path) => Some(metrics_token(path)?),
        None => None,
    };
    let listener = TcpListener::bind(command.listen)
        .await
        .with_context(|| format!("listening on {}", command.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let address = listener.local_addr()?;
    tracing::info!(%address, scheme, "serving");
    if let Some(at) = nightly {
        let nightly =
            nightly_reconciliation(store.clone(), finance.clone(), at, Arc::clone(&clock));
        tokio::spawn(nightly);
    }
    // Database open and migrated, listener bound: requests are accepted from here on.
    backoffice::systemd::notify_ready(&format!("serving {scheme}://{address}"))
        .context("notifying systemd")?;
    let options = ServeOptions {
        tls,
        finance,
        clock,
        metrics_token,
    };
    backoffice::app::serve(store, listener, options, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The token of `path`'s first line; one shorter than [`METRICS_TOKEN_CHARS_MIN`] is refused.
fn metrics_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--metrics-token-file {}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_owned();
    anyhow::ensure!(
        token.chars().count() >= METRICS_TOKEN_CHARS_MIN,
        "--metrics-token-file {}: the token must have at least {METRICS_TOKEN_CHARS_MIN} characters",
        path.display()
    );
    Ok(token)
}

/// Reconciles the previous day every night at `at` (in the time zone of `settings`), for all
/// sites. A day already signed off is left alone; a failure is logged and tried again the next
/// night (or on demand).
async fn nightly_reconciliation<S: Store>(
    store: S,
    settings: Settings,
    at: jiff::civil::Time,
    clock: SharedClock,
) {
    loop {
        let Ok(now) = jiff::Timestamp::from_millisecond(clock.now().unix_ms()) else {
            tracing::error!("the clock is out of range: no nightly reconciliation");
            return;
        };
        let now = now.to_zoned(settings.time_zone.clone());
        let next = match now.with().time(at).build().and_then(|today| {
            if today > now {
                Ok(today)
            } else {
                today.tomorrow()
            }
        }) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "cannot schedule the nightly reconciliation");
                return;
            }
        };
        let wait = next.timestamp().duration_since(now.timestamp());
        let wait = std::time::Duration::try_from(wait).unwrap_or_default();
        tokio::time::sleep(wait).await;
        let Ok(yesterday) = next.date().yesterday() else {
            continue;
        };
        let Ok(date) = ServiceDate::parse(&yesterday.to_string()) else {
            continue;
        };
        let actor = Actor::operator("nightly");
        let run = reconcile::run_and_save(
            &store,
            &actor,
            date,
            None,
            &settings,
            clock.now(),
            |_, _| {},
        );
        match run.await {
            Ok(report) => tracing::info!(
                %date,
                findings = report.findings.len(),
                clean = report.is_clean(),
                "nightly reconciliation stored"
            ),
            Err(error) => tracing::error!(%date, %error, "nightly reconciliation failed"),
        }
    }
}

/// Completes on SIGINT or SIGTERM (how systemd stops a service).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down");
}
