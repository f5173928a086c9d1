//! The [`CardReader`] trait and the handle that stops a reader thread.

use std::fmt;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::HardwareError;
use crate::event::CardEvent;
use crate::limits::{STOP_CANCEL_INTERVAL_MS, STOP_WAIT_MS_MAX};

/// A source of card events. `start` moves the reader onto its own thread, which sends every
/// event into `events` until it is stopped or the receiver is dropped.
pub trait CardReader {
    fn start(self, events: SyncSender<CardEvent>) -> Result<ReaderHandle, HardwareError>;
}

/// A running reader thread. Stopping (or dropping) it ends the thread; the events already sent
/// stay in the channel.
pub struct ReaderHandle {
    /// `None` once stopped.
    thread: Option<JoinHandle<()>>,
    stop: Arc<StopSignal>,
    /// Wakes the thread from a wait that the stop signal cannot reach (a blocking PC/SC call).
    interrupt: Box<dyn Fn() + Send>,
}

impl ReaderHandle {
    pub(crate) fn new(
        thread: JoinHandle<()>,
        stop: Arc<StopSignal>,
        interrupt: Box<dyn Fn() + Send>,
    ) -> ReaderHandle {
        ReaderHandle {
            thread: Some(thread),
            stop,
            interrupt,
        }
    }

    /// Stops the thread and waits for it, at most [`STOP_WAIT_MS_MAX`]. A thread blocked on a
    /// full event channel cannot stop until the receiver takes an event or is dropped.
    pub fn stop(mut self) -> Result<(), HardwareError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), HardwareError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.stop.raise();
        let deadline = Instant::now() + Duration::from_millis(STOP_WAIT_MS_MAX);
        // The thread may be about to enter a blocking wait that a cancel sent now would miss, so
        // the cancel is repeated until it has ended: a few wakeups, only while stopping.
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                return Err(HardwareError::StopTimedOut);
            }
            (self.interrupt)();
            std::thread::sleep(Duration::from_millis(STOP_CANCEL_INTERVAL_MS));
        }
        thread.join().map_err(|_| HardwareError::ThreadPanicked)
    }
}

impl Drop for ReaderHandle {
    fn drop(&mut self) {
        // Dropping cannot report a failure; whoever needs to know calls `stop`. A thread that
        // did not stop in time is left to end at its next event.
        let _ = self.shut_down();
    }
}

impl fmt::Debug for ReaderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderHandle")
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

/// A flag that a reader thread checks and sleeps on, so stopping interrupts its backoff waits.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    pub(crate) fn raise(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    pub(crate) fn is_raised(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration` unless stopped first; returns whether the stop was raised.
    pub(crate) fn sleep(&self, duration: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, duration, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }
}
