//! Where the engine reads the time: the system clock in production, a clock the test moves by
//! hand in tests and benchmarks.

use std::sync::{Arc, Mutex};

/// A source of the current instant.
pub trait Clock: Send {
    fn now(&self) -> jiff::Timestamp;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// A clock that stands still until moved; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    /// A std `Mutex`: held for a copy only, never across an await or I/O.
    now: Arc<Mutex<jiff::Timestamp>>,
}

impl ManualClock {
    pub fn new(now: jiff::Timestamp) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    pub fn set(&self, now: jiff::Timestamp) {
        *self.now.lock().unwrap_or_else(|poison| poison.into_inner()) = now;
    }

    pub fn advance(&self, by: jiff::SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|poison| poison.into_inner());
        *now = now
            .checked_add(by)
            .expect("a test clock stays within jiff's range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> jiff::Timestamp {
        *self.now.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The instant as records write it (milliseconds, UTC).
pub fn record_time(now: jiff::Timestamp) -> proto::Timestamp {
    proto::Timestamp::from_unix_ms(now.as_millisecond()).expect("the clock reads a four-digit year")
}

/// The site's calendar day at `now`: a service date as records write it.
pub fn local_date(now: jiff::Timestamp, time_zone: &jiff::tz::TimeZone) -> proto::ServiceDate {
    let date = now.to_zoned(time_zone.clone()).date();
    proto::ServiceDate::parse(&date.to_string()).expect("jiff writes civil dates as YYYY-MM-DD")
}
