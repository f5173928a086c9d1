//! What every handler of the API and the pages shares: the store, the clock, the metrics and
//! the time zone finance reconciles in.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::reconcile::Settings;

#[derive(Debug)]
pub struct App<S> {
    pub store: S,
    pub metrics: Metrics,
    /// The time zone service days are reconciled in.
    pub finance: Settings,
    /// Where every handler reads "now".
    pub clock: SharedClock,
    /// The bearer token `/metrics` asks of every scraper (none: this machine only).
    pub metrics_token: Option<String>,
}

/// Cheap to clone: handlers get one each.
pub type SharedApp<S> = Arc<App<S>>;
