//! The engine's one worker: the engine runs as a blocking task of the kiosk's tokio runtime
//! ([`EngineWorker`]), alone with the ledger's write connection, and runs jobs one at a time in
//! the order they were queued. Everything else reaches it through a [`TapSender`]: card readers
//! hand it taps, the touchscreen and the text mode staff actions and state requests, the sync
//! its jobs ([`EngineAccess`]), the systemd watchdog its heartbeats, and tests anything at all
//! ([`EngineAccess::call`]).
//!
//! What the engine decides for a screen comes back as an [`Update`] on a tokio channel, and a
//! [`UiWaker`] tells the screen to take it: `kiosk run`'s window applies updates when Slint's
//! event loop is woken, the text mode awaits them. Nothing here waits for a screen except the
//! engine, when the screen has not taken [`UI_UPDATES_MAX`] updates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use proto::api::ReaderState;
use proto::{CardUid, Cents};

use crate::engine::{Decision, Engine};
use crate::limits::{ENGINE_JOBS_MAX, UI_UPDATES_MAX};
use crate::sync::{EngineAccess, EngineJob, SyncState};

/// What the engine tells a screen.
#[derive(Debug)]
pub enum Update {
    Tap(Decision),
    ReaderAvailable(bool),
    SignedIn(Result<String, String>),
    SignedOut,
    Rows(Vec<(String, String)>),
    ClosePreview(Result<Cents, String>),
    Done(Result<String, String>),
    Status(Vec<String>),
    /// The sync's state, for the staff status line.
    Sync(SyncState),
    /// The ready screen's service (empty outside service hours, when the screen dims) and time.
    Clock {
        service_name: String,
        time: String,
    },
}

/// The channel a screen reads the engine's updates from: tokio's, so the text mode can await it
/// while the touchscreen takes them without waiting.
pub type UpdateReceiver = tokio::sync::mpsc::Receiver<Update>;

/// Asks the screen to apply pending updates.
pub trait UiWaker: Send + Sync {
    fn wake(&self);
}

/// Wakes nothing: for a screen that awaits the update channel itself (the text mode), or for
/// none at all (tests, benchmarks).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoWaker;

impl UiWaker for NoWaker {
    fn wake(&self) {}
}

/// A job whose answer a screen shows.
type ShownJob = Box<dyn FnOnce(&mut Engine) -> Update + Send>;

/// What the engine is asked. Stop is explicit because card readers and the UI keep senders of
/// their own.
enum Message {
    /// A job whose update goes to the screen.
    Show(ShownJob),
    /// A job that answers its caller itself (the sync's, a test's), and the screen nothing.
    Run(EngineJob),
    /// Answered by the engine, nothing shown: the systemd watchdog's proof of life.
    Heartbeat(tokio::sync::oneshot::Sender<()>),
    Stop,
}

/// The engine as a blocking task of the kiosk's runtime: it owns the ledger's write connection
/// and commits with fsync, so it never runs on an async worker.
#[derive(Debug)]
pub struct EngineWorker {
    /// A std channel: the UI thread, the reader bridge and async tasks all queue jobs without
    /// waiting, and the engine's blocking task waits on it without a runtime in between.
    jobs: SyncSender<Message>,
    /// Receives the engine when its task ends; `None` once stopped. In a `Mutex` only so that
    /// the worker can be shared (a std receiver cannot be): it is taken whole, once.
    finished: Option<Mutex<Receiver<Engine>>>,
}

/// A cloneable handle to the engine's queue, for everything that is not the engine.
#[derive(Clone)]
pub struct TapSender {
    jobs: SyncSender<Message>,
    updates: tokio::sync::mpsc::Sender<Update>,
    waker: Arc<dyn UiWaker>,
    /// The reader's last known state, for the sync's report to the back-office.
    reader_ready: Arc<AtomicBool>,
    /// The sync's last published state. A std `Mutex`: held for a copy, never across an await.
    sync_state: Arc<Mutex<SyncState>>,
}

impl std::fmt::Debug for TapSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TapSender")
    }
}

impl EngineWorker {
    /// Starts the engine as a blocking task of `runtime`; returns it with the sender of jobs and
    /// the channel a screen reads updates from.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        engine: Engine,
        waker: Arc<dyn UiWaker>,
    ) -> (EngineWorker, TapSender, UpdateReceiver) {
        let (jobs, received_jobs) = std::sync::mpsc::sync_channel::<Message>(ENGINE_JOBS_MAX);
        let (updates, received_updates) = tokio::sync::mpsc::channel::<Update>(UI_UPDATES_MAX);
        // One engine comes back, once.
        let (finish, finished) = std::sync::mpsc::sync_channel::<Engine>(1);
        let shown = Shown {
            updates: updates.clone(),
            waker: Arc::clone(&waker),
        };
        // Detached: `stop` waits for the engine through `finished`, which works from any thread,
        // inside the runtime or not.
        drop(runtime.spawn_blocking(move || {
            let _ = finish.send(serve(engine, &received_jobs, &shown));
        }));
        let sender = TapSender {
            jobs: jobs.clone(),
            updates,
            waker,
            reader_ready: Arc::new(AtomicBool::new(true)),
            sync_state: Arc::default(),
        };
        let worker = EngineWorker {
            jobs,
            finished: Some(Mutex::new(finished)),
        };
        (worker, sender, received_updates)
    }

    /// Stops the engine once the jobs queued before (a tap being decided included) are done,
    /// and returns it.
    pub fn stop(mut self) -> Option<Engine> {
        self.stop_task()
    }

    fn stop_task(&mut self) -> Option<Engine> {
        let finished = self
            .finished
            .take()?
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        // Blocks only while the queue is full: the engine is working through it.
        let _ = self.jobs.send(Message::Stop);
        finished.recv().ok()
    }
}

impl Drop for EngineWorker {
    fn drop(&mut self) {
        drop(self.stop_task());
    }
}

/// Where the engine's task hands what a screen shows.
struct Shown {
    updates: tokio::sync::mpsc::Sender<Update>,
    waker: Arc<dyn UiWaker>,
}

/// The engine's task: runs jobs in order until asked to stop or every sender is gone.
fn serve(mut engine: Engine, jobs: &Receiver<Message>, shown: &Shown) -> Engine {
    loop {
        match jobs.recv() {
            Ok(Message::Show(job)) => {
                let update = job(&mut engine);
                // Waits while the screen's queue is full, as a slow screen should slow the
                // engine rather than lose what it decided.
                if shown.updates.blocking_send(update).is_ok() {
                    shown.waker.wake();
                }
            }
            Ok(Message::Run(job)) => job(&mut engine),
            Ok(Message::Heartbeat(alive)) => {
                let _ = alive.send(());
            }
            Ok(Message::Stop) | Err(_) => return engine,
        }
    }
}

impl TapSender {
    /// A card was presented: the engine decides, the screen shows the result.
    pub fn tap(&self, uid: CardUid) {
        self.submit(move |engine| Update::Tap(engine.tap(uid)));
    }

    /// Runs `job` on the engine; its update goes to the screen. A full queue (a stuck engine)
    /// or a stopped engine shows "out of service" at once.
    pub fn submit(&self, job: impl FnOnce(&mut Engine) -> Update + Send + 'static) {
        let reason = match self.jobs.try_send(Message::Show(Box::new(job))) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => "engine busy",
            Err(TrySendError::Disconnected(_)) => "engine stopped",
        };
        self.send_update(Update::Tap(Decision::OutOfService {
            reason: reason.into(),
        }));
    }

    /// The reader went away or came back.
    pub fn reader_available(&self, available: bool) {
        self.reader_ready.store(available, Ordering::Relaxed);
        self.send_update(Update::ReaderAvailable(available));
    }

    /// Asks the engine to answer on `alive` once it reaches this request, behind every job
    /// queued before it. False when the engine is stopped or its queue is full (stuck).
    pub fn heartbeat(&self, alive: tokio::sync::oneshot::Sender<()>) -> bool {
        self.jobs.try_send(Message::Heartbeat(alive)).is_ok()
    }

    /// The sync's last published state.
    pub fn sync_state(&self) -> SyncState {
        self.sync_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn send_update(&self, update: Update) {
        // A full queue means the UI thread is stuck; dropping an update is better than blocking
        // a reader or the engine.
        if self.updates.try_send(update).is_ok() {
            self.waker.wake();
        }
    }
}

/// The sync reaches the engine through the same queue as taps, but a full queue only makes the
/// sync retry later: it never shows "out of service".
impl EngineAccess for TapSender {
    fn queue(&self, job: EngineJob) -> bool {
        self.jobs.try_send(Message::Run(job)).is_ok()
    }

    fn publish(&self, state: &SyncState) {
        *self
            .sync_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = state.clone();
        self.send_update(Update::Sync(state.clone()));
    }

    fn reader_state(&self) -> ReaderState {
        if self.reader_ready.load(Ordering::Relaxed) {
            ReaderState::Ready
        } else {
            ReaderState::Unavailable
        }
    }
}
