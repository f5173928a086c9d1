//! Prometheus metrics, kept in memory per instance: requests and latencies per route, records
//! ingested, refusals by reason, and when each kiosk was last seen.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use proto::{DeviceId, Timestamp};

use crate::ingest::IngestOutcome;

/// Upper bounds of the latency histogram's buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 11] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

#[derive(Debug, Default)]
pub struct Metrics {
    /// A std mutex: held for a few map updates, never across an await.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latencies: BTreeMap<String, Histogram>,
    records_stored: u64,
    records_duplicate: u64,
    records_quarantined: u64,
    anomalies_dropped: BTreeMap<DeviceId, u64>,
    refusals: BTreeMap<&'static str, u64>,
    kiosk_last_seen_ms: BTreeMap<DeviceId, i64>,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Observations at or below each of [`LATENCY_BUCKETS_MS`].
    buckets: [u64; LATENCY_BUCKETS_MS.len()],
    count: u64,
    sum_us: u64,
}

impl Metrics {
    fn with(&self, update: impl FnOnce(&mut Inner)) {
        // A panic while holding the lock leaves counters that are still counters.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        update(&mut inner);
    }

    pub fn ingested(&self, device: &DeviceId, outcome: &IngestOutcome, at: Timestamp) {
        self.with(|inner| {
            inner.records_stored += u64::from(outcome.stored);
            inner.records_duplicate += u64::from(outcome.duplicates);
            inner.records_quarantined += u64::from(outcome.quarantined);
            if outcome.anomalies_dropped > 0 {
                *inner.anomalies_dropped.entry(device.clone()).or_default() +=
                    u64::from(outcome.anomalies_dropped);
            }
            inner
                .kiosk_last_seen_ms
                .insert(device.clone(), at.unix_ms());
        });
    }

    pub fn refused(&self, reason: &'static str) {
        self.with(|inner| *inner.refusals.entry(reason).or_default() += 1);
    }

    /// Counts and times one answered request.
    pub fn observed(&self, route: &str, status: u16, elapsed_us: u64) {
        self.with(|inner| {
            *inner
                .requests
                .entry((route.to_owned(), status))
                .or_default() += 1;
            let histogram = inner.latencies.entry(route.to_owned()).or_default();
            histogram.count += 1;
            histogram.sum_us = histogram.sum_us.saturating_add(elapsed_us);
            for (bucket, bound_ms) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS_MS) {
                if elapsed_us <= bound_ms * 1_000 {
                    *bucket += 1;
                }
            }
        });
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        self.with(|inner| inner.render(&mut text));
        text
    }
}

impl Inner {
    fn render(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = self.write(out);
    }

    fn write(&self, out: &mut String) -> std::fmt::Result {
        self.write_requests(out)?;
        self.write_records(out)?;
        self.write_kiosks(out)
    }

    /// Requests by route and status, and their latencies.
    fn write_requests(&self, out: &mut String) -> std::fmt::Result {
        header(
            out,
            "canteen_http_requests_total",
            "counter",
            "HTTP requests by route and status.",
        )?;
        for ((route, status), count) in &self.requests {
            writeln!(
                out,
                "canteen_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            )?;
        }
        header(
            out,
            "canteen_http_request_duration_seconds",
            "histogram",
            "HTTP request latency.",
        )?;
        for (route, histogram) in &self.latencies {
            histogram.write(out, route)?;
        }
        Ok(())
    }

    /// Records by outcome.
    fn write_records(&self, out: &mut String) -> std::fmt::Result {
        header(
            out,
            "canteen_records_total",
            "counter",
            "Uploaded records by outcome.",
        )?;
        for (outcome, count) in [
            ("stored", self.records_stored),
            ("duplicate", self.records_duplicate),
            ("quarantined", self.records_quarantined),
        ] {
            writeln!(
                out,
                "canteen_records_total{{outcome=\"{outcome}\"}} {count}"
            )?;
        }
        Ok(())
    }

    /// What kiosks did: refused requests, last uploads, anomalies over budget.
    fn write_kiosks(&self, out: &mut String) -> std::fmt::Result {
        header(
            out,
            "canteen_kiosk_requests_refused_total",
            "counter",
            "Refused kiosk requests by reason.",
        )?;
        for (reason, count) in &self.refusals {
            writeln!(
                out,
                "canteen_kiosk_requests_refused_total{{reason=\"{reason}\"}} {count}"
            )?;
        }
        header(
            out,
            "canteen_kiosk_last_seen_seconds",
            "gauge",
            "When each kiosk last uploaded, as Unix time.",
        )?;
        for (device, unix_ms) in &self.kiosk_last_seen_ms {
            writeln!(
                out,
                "canteen_kiosk_last_seen_seconds{{device=\"{device}\"}} {}.{:03}",
                unix_ms.div_euclid(1_000),
                unix_ms.rem_euclid(1_000)
            )?;
        }
        header(
            out,
            "canteen_anomalies_dropped_total",
            "counter",
            "Anomalies not kept because the kiosk used up its budget of the last day.",
        )?;
        for (device, count) in &self.anomalies_dropped {
            writeln!(
                out,
                "canteen_anomalies_dropped_total{{device=\"{device}\"}} {count}"
            )?;
        }
        Ok(())
    }
}

impl Histogram {
    /// The route's buckets, sum and count, in seconds.
    fn write(&self, out: &mut String, route: &str) -> std::fmt::Result {
        const NAME: &str = "canteen_http_request_duration_seconds";
        for (bound_ms, count) in LATENCY_BUCKETS_MS.iter().zip(self.buckets) {
            let (seconds, millis) = (bound_ms / 1_000, bound_ms % 1_000);
            writeln!(
                out,
                "{NAME}_bucket{{route=\"{route}\",le=\"{seconds}.{millis:03}\"}} {count}"
            )?;
        }
        let count = self.count;
        writeln!(
            out,
            "{NAME}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
        )?;
        writeln!(
            out,
            "{NAME}_sum{{route=\"{route}\"}} {}.{:06}",
            self.sum_us / 1_000_000,
            self.sum_us % 1_000_000
        )?;
        writeln!(out, "{NAME}_count{{route=\"{route}\"}} {count}")
    }
}

/// A metric family's `HELP` and `TYPE` lines.
fn header(out: &mut String, name: &str, kind: &str, help: &str) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}
