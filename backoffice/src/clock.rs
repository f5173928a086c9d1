//! Where the back-office reads the time: the system clock in production, a clock the test moves
//! by hand in tests and benchmarks. Everything that stamps or judges a moment (a kiosk's
//! registration, a request's age, a sign-off, a session's expiry, the nightly run) asks the
//! [`Clock`] it was given; nothing below it reads the system clock.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use proto::Timestamp;

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The clock handlers, jobs and the CLI share.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            });
        Timestamp::from_unix_ms(unix_ms).expect("the system clock is within years 1970 to 9999")
    }
}

/// A clock that stands still until moved; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    /// A std `Mutex`: held for a copy only, never across an await or I/O.
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    pub fn new(now: Timestamp) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    pub fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    pub fn set(&self, now: Timestamp) {
        *self.now.lock().unwrap_or_else(|poison| poison.into_inner()) = now;
    }

    /// Moves the clock forward (or back, for a negative `ms`).
    pub fn advance_ms(&self, ms: i64) {
        let mut now = self.now.lock().unwrap_or_else(|poison| poison.into_inner());
        *now = Timestamp::from_unix_ms(now.unix_ms().saturating_add(ms))
            .expect("a test clock stays within years 1970 to 9999");
    }

    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        ManualClock::now(self)
    }
}
