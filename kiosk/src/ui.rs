//! The touchscreen: the Slint UI of `ui/app.slint` wired to the engine.
//!
//! Threads: the UI thread runs Slint's event loop and owns [`KioskUi`]; the engine runs as a
//! blocking task of the kiosk's tokio runtime ([`EngineWorker`]), alone with the ledger's write
//! connection, and runs jobs in the order they were queued; card readers hand taps straight to it
//! through a [`TapSender`]. Results come back as [`Update`]s on a channel, and a [`UiWaker`] asks
//! the UI thread to apply them. The UI thread never waits for a disk write.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};

use proto::record::TopUpMethod;
use proto::snapshot::Language;
use proto::{AccountId, CardUid, Cents, PupilId, RecordBody, Seq, Text};
use slint::{ComponentHandle as _, ModelRc, SharedString, VecModel};

use crate::engine::{Decision, Engine, EngineError};
use crate::limits::{
    AMOUNT_DIGITS_MAX, ENGINE_JOBS_MAX, LIST_ROWS_MAX, PIN_DIGITS_MAX, UI_UPDATES_MAX,
};
use crate::sound::{Cue, Speaker};
use crate::sync::{EngineAccess, EngineJob, SyncState, SyncWarning};

/// The channel the UI side reads the engine's updates from: tokio's, so the text mode can await
/// it while the touchscreen takes them without waiting.
pub type UpdateReceiver = tokio::sync::mpsc::Receiver<Update>;

/// The code the Slint compiler generates from `ui/app.slint`; not ours to lint.
#[allow(
    unsafe_code,
    unused_qualifications,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::float_arithmetic,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::todo,
    clippy::dbg_macro
)]
mod generated {
    slint::include_modules!();
}
pub use generated::{AppWindow, Kiosk, ListRow, Screen};

type Job = Box<dyn FnOnce(&mut Engine) -> Update + Send>;

/// What the engine is asked: run a job, or stop. Stop is explicit because card readers and the
/// UI keep senders of their own.
enum Message {
    Run(Job),
    /// Answered by the engine, nothing shown: the systemd watchdog's proof of life.
    Heartbeat(tokio::sync::oneshot::Sender<()>),
    Stop,
}

/// Asks the UI thread to apply pending updates.
pub trait UiWaker: Send + Sync {
    fn wake(&self);
}

/// What the engine tells the UI.
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
    Sync {
        online: bool,
        unsynced: u64,
        last_sync: String,
        warnings: Vec<SyncWarning>,
    },
    /// A background job (the sync's) finished with nothing to show.
    Idle,
    /// The ready screen's service (empty outside service hours, when the screen dims) and time.
    Clock {
        service_name: String,
        time: String,
    },
}

/// The engine as a blocking task of the kiosk's runtime: it owns the ledger's write connection
/// and commits with fsync, so it never runs on an async worker.
#[derive(Debug)]
pub struct EngineWorker {
    /// A std channel: the UI thread, the reader bridge and async tasks all queue jobs without
    /// waiting, and the engine's blocking task waits on it without a runtime in between.
    jobs: SyncSender<Message>,
    /// Receives the engine when its task ends; `None` once stopped.
    finished: Option<std::sync::mpsc::Receiver<Engine>>,
}

/// A cloneable handle that card readers use to hand taps to the engine.
#[derive(Clone)]
pub struct TapSender {
    jobs: SyncSender<Message>,
    updates: tokio::sync::mpsc::Sender<Update>,
    waker: Arc<dyn UiWaker>,
    /// The reader's last known state, for the sync's report to the back-office.
    reader_ready: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for TapSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TapSender")
    }
}

impl TapSender {
    /// A card was presented: the engine decides, the UI shows the result.
    pub fn tap(&self, uid: CardUid) {
        self.submit(Box::new(move |engine| Update::Tap(engine.tap(uid))));
    }

    /// The reader went away or came back.
    pub fn reader_available(&self, available: bool) {
        self.reader_ready
            .store(available, std::sync::atomic::Ordering::Relaxed);
        self.send_update(Update::ReaderAvailable(available));
    }

    /// The sync client's state, for the staff status line.
    pub fn sync_state(&self, state: &SyncState) {
        self.send_update(Update::Sync {
            online: state.online,
            unsynced: state.unsynced_records,
            last_sync: state.last_sync_shown.clone(),
            warnings: state.warnings.clone(),
        });
    }

    /// Asks the engine to answer on `alive` once it reaches this request, behind every job
    /// queued before it. False when the engine is stopped or its queue is full (stuck).
    pub fn heartbeat(&self, alive: tokio::sync::oneshot::Sender<()>) -> bool {
        self.jobs.try_send(Message::Heartbeat(alive)).is_ok()
    }

    /// Runs `job` on the engine; its update goes to the UI.
    pub fn submit_job(&self, job: Box<dyn FnOnce(&mut Engine) -> Update + Send>) {
        self.submit(job);
    }

    fn submit(&self, job: Job) {
        match self.jobs.try_send(Message::Run(job)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.send_update(Update::Tap(Decision::OutOfService {
                reason: "engine busy".into(),
            })),
            Err(TrySendError::Disconnected(_)) => {
                self.send_update(Update::Tap(Decision::OutOfService {
                    reason: "engine stopped".into(),
                }))
            }
        }
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
    fn submit(&self, job: EngineJob) -> bool {
        let job: Job = Box::new(move |engine| {
            job(engine);
            Update::Idle
        });
        self.jobs.try_send(Message::Run(job)).is_ok()
    }

    fn publish(&self, state: &SyncState) {
        self.sync_state(state);
    }

    fn reader_state(&self) -> proto::api::ReaderState {
        if self.reader_ready.load(std::sync::atomic::Ordering::Relaxed) {
            proto::api::ReaderState::Ready
        } else {
            proto::api::ReaderState::Unavailable
        }
    }
}

impl EngineWorker {
    /// Starts the engine as a blocking task of `runtime`; returns it with the sender of jobs and
    /// the channel the UI reads updates from.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        engine: Engine,
        waker: Arc<dyn UiWaker>,
    ) -> (EngineWorker, TapSender, UpdateReceiver) {
        let (jobs, received_jobs) = std::sync::mpsc::sync_channel::<Message>(ENGINE_JOBS_MAX);
        let (updates, received_updates) = tokio::sync::mpsc::channel::<Update>(UI_UPDATES_MAX);
        let (finish, finished) = std::sync::mpsc::sync_channel::<Engine>(1);
        let task_updates = updates.clone();
        let task_waker = Arc::clone(&waker);
        // Detached: `stop` waits for the engine through `finished`, which works from any thread,
        // inside the runtime or not.
        drop(runtime.spawn_blocking(move || {
            let mut engine = engine;
            loop {
                match received_jobs.recv() {
                    Ok(Message::Run(job)) => {
                        let update = job(&mut engine);
                        // Waits while the UI's queue is full, as a slow screen should slow the
                        // engine rather than lose what it decided.
                        if task_updates.blocking_send(update).is_ok() {
                            task_waker.wake();
                        }
                    }
                    Ok(Message::Heartbeat(alive)) => {
                        let _ = alive.send(());
                    }
                    Ok(Message::Stop) | Err(_) => break,
                }
            }
            let _ = finish.send(engine);
        }));
        let sender = TapSender {
            jobs: jobs.clone(),
            updates,
            waker,
            reader_ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        };
        (
            EngineWorker {
                jobs,
                finished: Some(finished),
            },
            sender,
            received_updates,
        )
    }

    /// Stops the engine once the jobs queued before (a tap being decided included) are done,
    /// and returns it.
    pub fn stop(mut self) -> Option<Engine> {
        self.stop_task()
    }

    fn stop_task(&mut self) -> Option<Engine> {
        let finished = self.finished.take()?;
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

/// A staff flow in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Flow {
    None,
    Pin {
        card: CardUid,
        name: String,
    },
    TopUpChoose,
    TopUp {
        account: AccountId,
        name: String,
        confirming: bool,
    },
    Serve,
    Void {
        confirming: Option<Seq>,
    },
    Close {
        expected: Cents,
        confirming: bool,
    },
    Status,
}

#[derive(Debug)]
struct UiState {
    flow: Flow,
    staff_signed_in: bool,
    entry: String,
    rows: Vec<(String, String)>,
    result_display_ms: u64,
}

/// The UI thread's side: the window, what staff are doing, and the way to the engine.
pub struct KioskUi {
    window: AppWindow,
    tap_sender: TapSender,
    updates: RefCell<UpdateReceiver>,
    state: RefCell<UiState>,
    language: Language,
    /// Returns from a result screen after the display time; restarted by every result.
    result_timer: slint::Timer,
    /// Plays the pupil-facing result's sound cue.
    speaker: RefCell<Speaker>,
}

impl std::fmt::Debug for KioskUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KioskUi")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl KioskUi {
    /// Builds the window for `language` and wires its callbacks. The caller shows it.
    pub fn new(
        tap_sender: TapSender,
        updates: UpdateReceiver,
        language: Language,
        result_display_ms: u64,
    ) -> Result<Rc<KioskUi>, slint::PlatformError> {
        let window = AppWindow::new()?;
        select_language(language);
        let ui = Rc::new(KioskUi {
            window,
            tap_sender,
            updates: RefCell::new(updates),
            state: RefCell::new(UiState {
                flow: Flow::None,
                staff_signed_in: false,
                entry: String::new(),
                rows: Vec::new(),
                result_display_ms,
            }),
            language,
            result_timer: slint::Timer::default(),
            speaker: RefCell::new(Speaker::silent()),
        });
        ui.wire();
        ui.set_base_screen();
        Ok(ui)
    }

    /// Sets how sound cues are played (silent until set).
    pub fn set_speaker(&self, speaker: Speaker) {
        *self.speaker.borrow_mut() = speaker;
    }

    pub fn window(&self) -> &AppWindow {
        &self.window
    }

    pub fn tap_sender(&self) -> TapSender {
        self.tap_sender.clone()
    }

    /// Applies every pending update; returns how many there were.
    pub fn apply_updates(&self) -> usize {
        let mut applied = 0;
        loop {
            // The borrow ends before `apply`, which may queue jobs whose answers come here.
            let next = self.updates.borrow_mut().try_recv();
            let Ok(update) = next else {
                return applied;
            };
            self.apply(update);
            applied += 1;
        }
    }

    /// Sets the ready screen's service name and clock.
    pub fn set_clock(&self, service_name: &str, clock: &str, dimmed: bool) {
        let kiosk = self.window.global::<Kiosk>();
        kiosk.set_service_name(service_name.into());
        kiosk.set_clock(clock.into());
        kiosk.set_dimmed(dimmed);
    }

    fn wire(self: &Rc<Self>) {
        let kiosk = self.window.global::<Kiosk>();
        let weak = Rc::downgrade(self);
        kiosk.on_key(move |key| {
            if let Some(ui) = weak.upgrade() {
                ui.key(&key);
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_submit(move || {
            if let Some(ui) = weak.upgrade() {
                ui.submit();
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_cancel(move || {
            if let Some(ui) = weak.upgrade() {
                ui.cancel();
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_staff_action(move |action| {
            if let Some(ui) = weak.upgrade() {
                ui.staff_action(&action);
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_choose(move |key| {
            if let Some(ui) = weak.upgrade() {
                ui.choose(&key);
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_set_cheque(move |cheque| {
            if let Some(ui) = weak.upgrade() {
                ui.window.global::<Kiosk>().set_cheque(cheque);
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_open_alert(move || {
            if let Some(ui) = weak.upgrade() {
                let kiosk = ui.window.global::<Kiosk>();
                kiosk.set_alert_open(!kiosk.get_alert_open());
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_sign_out(move || {
            if let Some(ui) = weak.upgrade() {
                ui.tap_sender
                    .submit(Box::new(|engine| match engine.staff_sign_out() {
                        Ok(()) | Err(EngineError::NotSignedIn) => Update::SignedOut,
                        Err(error) => Update::Done(Err(error.to_string())),
                    }));
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_touched(move || {
            if let Some(ui) = weak.upgrade() {
                ui.window.global::<Kiosk>().set_dimmed(false);
            }
        });
    }

    fn apply(&self, update: Update) {
        let kiosk = self.window.global::<Kiosk>();
        match update {
            Update::Tap(decision) => self.show_decision(decision),
            Update::ReaderAvailable(true) => self.set_base_screen(),
            Update::ReaderAvailable(false) => kiosk.set_screen(Screen::ReaderUnavailable),
            Update::SignedIn(Ok(name)) => {
                let mut state = self.state.borrow_mut();
                state.staff_signed_in = true;
                state.flow = Flow::None;
                state.entry.clear();
                kiosk.set_staff_name(name.into());
                kiosk.set_message(SharedString::new());
                kiosk.set_entry(SharedString::new());
                kiosk.set_screen(Screen::StaffMenu);
            }
            Update::SignedIn(Err(message)) => {
                self.state.borrow_mut().entry.clear();
                kiosk.set_entry(SharedString::new());
                kiosk.set_message(message.into());
            }
            Update::SignedOut => {
                let mut state = self.state.borrow_mut();
                state.staff_signed_in = false;
                state.flow = Flow::None;
                drop(state);
                self.set_base_screen();
            }
            Update::Rows(rows) => {
                let model: Vec<ListRow> = rows
                    .iter()
                    .map(|(key, label)| ListRow {
                        key: key.into(),
                        label: label.into(),
                    })
                    .collect();
                kiosk.set_rows(ModelRc::new(VecModel::from(model)));
                self.state.borrow_mut().rows = rows;
            }
            Update::ClosePreview(Ok(expected)) => {
                self.state.borrow_mut().flow = Flow::Close {
                    expected,
                    confirming: false,
                };
                kiosk.set_close_expected(expected.to_french().into());
                self.refresh_close();
                kiosk.set_screen(Screen::StaffClose);
            }
            Update::ClosePreview(Err(message)) | Update::Done(Err(message)) => {
                kiosk.set_message(message.into());
            }
            Update::Done(Ok(message)) => {
                let mut state = self.state.borrow_mut();
                state.flow = Flow::None;
                state.entry.clear();
                kiosk.set_entry(SharedString::new());
                kiosk.set_message(message.into());
                kiosk.set_screen(Screen::StaffMenu);
            }
            Update::Status(lines) => {
                let lines: Vec<SharedString> = lines.into_iter().map(Into::into).collect();
                kiosk.set_status_lines(ModelRc::new(VecModel::from(lines)));
                kiosk.set_screen(Screen::StaffStatus);
            }
            Update::Clock { service_name, time } => {
                let dimmed = service_name.is_empty();
                self.set_clock(&service_name, &time, dimmed);
            }
            Update::Sync {
                online,
                unsynced,
                last_sync,
                warnings,
            } => {
                kiosk.set_online(online);
                kiosk.set_unsynced(i32::try_from(unsynced).unwrap_or(i32::MAX));
                kiosk.set_last_sync(last_sync.into());
                let warnings: Vec<String> = warnings
                    .iter()
                    .map(|warning| texts::sync_warning(self.language, warning))
                    .collect();
                kiosk.set_sync_warning(warnings.join(" · ").into());
            }
            Update::Idle => {}
        }
    }

    fn show_decision(&self, decision: Decision) {
        let kiosk = self.window.global::<Kiosk>();
        kiosk.set_dimmed(false);
        kiosk.set_alert_open(false);
        kiosk.set_dietary_alert(false);
        let screen = match decision {
            Decision::Served(served) => {
                kiosk.set_first_name(served.first_name.as_str().into());
                kiosk.set_balance(served.balance_after.to_french().into());
                kiosk.set_dietary_alert(!served.dietary.is_empty());
                let flags: Vec<SharedString> = served
                    .dietary
                    .iter()
                    .map(|flag| flag.as_str().into())
                    .collect();
                kiosk.set_alert_flags(ModelRc::new(VecModel::from(flags)));
                Screen::Served
            }
            Decision::AlreadyServed { first_name } => {
                kiosk.set_first_name(first_name.as_str().into());
                Screen::AlreadyServed
            }
            // Never an amount owed on the pupil's screen: the same neutral words for all three.
            Decision::InsufficientFunds { .. } | Decision::UnknownCard | Decision::BlockedCard => {
                Screen::SeeStaff
            }
            Decision::NoServiceNow => Screen::NoService,
            Decision::OutOfService { .. } => Screen::OutOfService,
            Decision::StaffCard { card, name, .. } => {
                let mut state = self.state.borrow_mut();
                if state.staff_signed_in {
                    return;
                }
                state.flow = Flow::Pin {
                    card,
                    name: name.to_string(),
                };
                state.entry.clear();
                kiosk.set_staff_name(name.as_str().into());
                kiosk.set_entry(SharedString::new());
                kiosk.set_message(SharedString::new());
                kiosk.set_screen(Screen::StaffPin);
                return;
            }
        };
        kiosk.set_screen(screen);
        let cue = match screen {
            Screen::Served => Cue::Served,
            Screen::AlreadyServed => Cue::AlreadyServed,
            _ => Cue::SeeStaff,
        };
        self.speaker.borrow().play(cue);
        let display_ms = self.state.borrow().result_display_ms;
        let weak = self.window.as_weak();
        let staff = self.state.borrow().staff_signed_in;
        self.result_timer.start(
            slint::TimerMode::SingleShot,
            std::time::Duration::from_millis(display_ms),
            move || {
                if let Some(window) = weak.upgrade() {
                    window.global::<Kiosk>().set_screen(if staff {
                        Screen::StaffMenu
                    } else {
                        Screen::Ready
                    });
                }
            },
        );
    }

    fn set_base_screen(&self) {
        let kiosk = self.window.global::<Kiosk>();
        let staff = self.state.borrow().staff_signed_in;
        kiosk.set_screen(if staff {
            Screen::StaffMenu
        } else {
            Screen::Ready
        });
    }

    fn key(&self, key: &str) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        let limit = match state.flow {
            Flow::Pin { .. } => PIN_DIGITS_MAX,
            Flow::Serve => proto::limits::TEXT_CHARS_MAX,
            _ => AMOUNT_DIGITS_MAX,
        };
        if key == "back" {
            state.entry.pop();
        } else if state.entry.chars().count() < limit {
            state.entry.push_str(key);
        }
        if let Flow::TopUp { confirming, .. } | Flow::Close { confirming, .. } = &mut state.flow {
            *confirming = false;
        }
        let flow = state.flow.clone();
        let entry = state.entry.clone();
        drop(state);
        match flow {
            Flow::Pin { .. } => kiosk.set_entry("•".repeat(entry.chars().count()).into()),
            Flow::TopUp { .. } => kiosk.set_entry(parse_amount(&entry).to_french().into()),
            Flow::Close { .. } => self.refresh_close(),
            Flow::Serve | Flow::TopUpChoose => {
                kiosk.set_entry(entry.clone().into());
                self.search(entry);
            }
            _ => {}
        }
    }

    fn refresh_close(&self) {
        let kiosk = self.window.global::<Kiosk>();
        let state = self.state.borrow();
        if let Flow::Close { expected, .. } = state.flow {
            let counted = parse_amount(&state.entry);
            kiosk.set_entry(counted.to_french().into());
            let difference = counted.checked_sub(expected).unwrap_or(Cents::ZERO);
            kiosk.set_close_difference(difference.to_french().into());
        }
    }

    fn search(&self, prefix: String) {
        self.tap_sender.submit(Box::new(move |engine| {
            let rows = engine
                .search_pupils(&prefix)
                .map(|pupils| {
                    pupils
                        .into_iter()
                        .take(LIST_ROWS_MAX)
                        .map(|p| {
                            (
                                format!("{}|{}|{}", p.id, p.account, p.first_name),
                                format!("{} {}", p.first_name, p.last_name),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Update::Rows(rows)
        }));
    }

    fn submit(&self) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        let entry = state.entry.clone();
        match &mut state.flow {
            Flow::Pin { card, .. } => {
                let card = *card;
                state.entry.clear();
                kiosk.set_entry(SharedString::new());
                let language = self.language;
                self.tap_sender.submit(Box::new(move |engine| {
                    match engine.staff_sign_in(card, &entry) {
                        Ok(staff) => Update::SignedIn(Ok(staff.to_string())),
                        Err(error) => Update::SignedIn(Err(texts::staff_error(language, &error))),
                    }
                }));
            }
            Flow::TopUp {
                account,
                name,
                confirming,
            } => {
                let amount = parse_amount(&entry);
                let method = if kiosk.get_cheque() {
                    TopUpMethod::Cheque
                } else {
                    TopUpMethod::Cash
                };
                if !*confirming {
                    *confirming = true;
                    kiosk.set_message(
                        texts::confirm_top_up(self.language, amount, method, name).into(),
                    );
                    return;
                }
                let account = account.clone();
                let language = self.language;
                self.tap_sender.submit(Box::new(move |engine| {
                    match engine.top_up(&account, amount, method, None) {
                        Ok(seq) => Update::Done(Ok(texts::top_up_done(language, amount, seq))),
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    }
                }));
            }
            Flow::Close { confirming, .. } => {
                let counted = parse_amount(&entry);
                if !*confirming {
                    *confirming = true;
                    kiosk.set_message(texts::confirm_close(self.language, counted).into());
                    return;
                }
                let language = self.language;
                self.tap_sender
                    .submit(Box::new(move |engine| match engine.close_day(counted) {
                        Ok(close) => {
                            Update::Done(Ok(texts::close_done(language, close.cash_difference)))
                        }
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    }));
            }
            _ => {}
        }
    }

    fn cancel(&self) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        state.entry.clear();
        kiosk.set_entry(SharedString::new());
        kiosk.set_message(SharedString::new());
        let signed_in = state.staff_signed_in;
        state.flow = Flow::None;
        drop(state);
        kiosk.set_screen(if signed_in {
            Screen::StaffMenu
        } else {
            Screen::Ready
        });
    }

    fn staff_action(&self, action: &str) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        state.entry.clear();
        kiosk.set_entry(SharedString::new());
        kiosk.set_message(SharedString::new());
        kiosk.set_rows(ModelRc::new(VecModel::from(Vec::<ListRow>::new())));
        let language = self.language;
        match action {
            "top-up" => {
                state.flow = Flow::TopUpChoose;
                kiosk.set_screen(Screen::StaffServe);
            }
            "serve" => {
                state.flow = Flow::Serve;
                kiosk.set_screen(Screen::StaffServe);
            }
            "void" => {
                state.flow = Flow::Void { confirming: None };
                kiosk.set_screen(Screen::StaffVoid);
                self.tap_sender.submit(Box::new(move |engine| {
                    let rows = engine
                        .voidable_today(LIST_ROWS_MAX)
                        .map(|records| {
                            records
                                .into_iter()
                                .map(|(seq, body)| {
                                    (seq.to_string(), texts::record_row(language, seq, &body))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Update::Rows(rows)
                }));
            }
            "close" => {
                self.tap_sender.submit(Box::new(move |engine| {
                    Update::ClosePreview(
                        engine
                            .close_preview()
                            .map(|close| close.cash_expected)
                            .map_err(|e| texts::staff_error(language, &e)),
                    )
                }));
            }
            "status" => {
                state.flow = Flow::Status;
                self.tap_sender
                    .submit(Box::new(move |engine| match engine.status() {
                        Ok(status) => Update::Status(texts::status_lines(language, &status)),
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    }));
            }
            _ => {}
        }
    }

    fn choose(&self, key: &str) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        let language = self.language;
        match &mut state.flow {
            Flow::TopUpChoose => {
                let mut parts = key.split('|');
                let (Some(_pupil), Some(account), Some(name)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return;
                };
                let Ok(account) = AccountId::parse(account) else {
                    return;
                };
                state.flow = Flow::TopUp {
                    account,
                    name: name.to_owned(),
                    confirming: false,
                };
                state.entry.clear();
                kiosk.set_first_name(name.into());
                kiosk.set_entry(Cents::ZERO.to_french().into());
                kiosk.set_cheque(false);
                kiosk.set_screen(Screen::StaffTopUp);
            }
            Flow::Serve => {
                let Some(pupil) = key.split('|').next().and_then(|id| PupilId::parse(id).ok())
                else {
                    return;
                };
                self.tap_sender.submit(Box::new(move |engine| {
                    match engine.serve_without_card(&pupil) {
                        Ok(served) => Update::Done(Ok(texts::served_by_staff(
                            language,
                            &served.first_name,
                            served.balance_after,
                        ))),
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    }
                }));
            }
            Flow::Void { confirming } => {
                let Some(seq) = key.parse::<u64>().ok().and_then(|seq| Seq::new(seq).ok()) else {
                    return;
                };
                if *confirming != Some(seq) {
                    *confirming = Some(seq);
                    kiosk.set_message(texts::confirm_void(language, seq).into());
                    return;
                }
                let reason = Text::parse(texts::VOID_REASON).expect("a valid reason");
                self.tap_sender
                    .submit(Box::new(move |engine| match engine.void(seq, reason) {
                        Ok(_) => Update::Done(Ok(texts::void_done(language, seq))),
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    }));
            }
            _ => {}
        }
    }
}

fn parse_amount(digits: &str) -> Cents {
    Cents::new(digits.parse::<i64>().unwrap_or(0))
}

/// Selects the bundled translation; French is the source language.
pub fn select_language(language: Language) {
    let code = match language {
        Language::Fr => "",
        Language::De => "de",
        Language::En => "en",
    };
    // Both translations are compiled in; a failure here is a build defect the UI tests catch.
    let _ = slint::select_bundled_translation(code);
}

/// The texts Rust writes on staff screens, in the kiosk's language.
pub mod texts {
    use super::*;
    use crate::engine::Status;
    use crate::sync::SyncWarning;

    /// The reason recorded with a void made at the kiosk.
    pub const VOID_REASON: &str = "annulé à la borne par le personnel";

    fn pick(language: Language, fr: String, de: String, en: String) -> String {
        match language {
            Language::Fr => fr,
            Language::De => de,
            Language::En => en,
        }
    }

    pub fn staff_error(language: Language, error: &EngineError) -> String {
        match error {
            EngineError::WrongPin { remaining } => pick(
                language,
                format!("Code incorrect, {remaining} essais restants"),
                format!("Falsche PIN, noch {remaining} Versuche"),
                format!("Wrong PIN, {remaining} attempts left"),
            ),
            EngineError::LockedOut => pick(
                language,
                "Carte bloquée : trop d'essais. Réessayez plus tard.".into(),
                "Karte gesperrt: zu viele Versuche. Später erneut versuchen.".into(),
                "Card locked: too many attempts. Try again later.".into(),
            ),
            EngineError::Amount { max, .. } => pick(
                language,
                format!("Montant entre 0,01 € et {max}"),
                format!("Betrag zwischen 0,01 € und {max}"),
                format!("Amount between 0,01 € and {max}"),
            ),
            EngineError::AlreadyServed => pick(
                language,
                "Déjà servi pour ce service".into(),
                "Für diese Ausgabe schon bedient".into(),
                "Already served this service".into(),
            ),
            EngineError::InsufficientFunds => pick(
                language,
                "Solde insuffisant".into(),
                "Guthaben reicht nicht".into(),
                "Balance too low".into(),
            ),
            EngineError::NoServiceNow => pick(
                language,
                "Pas de service maintenant".into(),
                "Gerade keine Essensausgabe".into(),
                "No meal service now".into(),
            ),
            EngineError::NotVoidable { .. } => pick(
                language,
                "Cette opération ne peut pas être annulée".into(),
                "Dieser Vorgang kann nicht storniert werden".into(),
                "This record cannot be voided".into(),
            ),
            EngineError::NotSignedIn => pick(
                language,
                "Session terminée".into(),
                "Sitzung beendet".into(),
                "Session ended".into(),
            ),
            other => pick(
                language,
                format!("Erreur : {other}"),
                format!("Fehler: {other}"),
                format!("Error: {other}"),
            ),
        }
    }

    fn method_name(language: Language, method: TopUpMethod) -> String {
        match (method, language) {
            (TopUpMethod::Cash, Language::Fr) => "espèces",
            (TopUpMethod::Cash, Language::De) => "bar",
            (TopUpMethod::Cash, Language::En) => "cash",
            (TopUpMethod::Cheque, Language::Fr) => "chèque",
            (TopUpMethod::Cheque, Language::De) => "Scheck",
            (TopUpMethod::Cheque, Language::En) => "cheque",
        }
        .into()
    }

    pub fn confirm_top_up(
        language: Language,
        amount: Cents,
        method: TopUpMethod,
        name: &str,
    ) -> String {
        let amount = amount.to_french();
        let method = method_name(language, method);
        pick(
            language,
            format!("Recharger {amount} ({method}) pour {name} ? Valider pour confirmer."),
            format!("{amount} ({method}) für {name} aufladen? Zum Bestätigen erneut bestätigen."),
            format!("Top up {amount} ({method}) for {name}? Confirm again to proceed."),
        )
    }

    pub fn top_up_done(language: Language, amount: Cents, seq: Seq) -> String {
        let amount = amount.to_french();
        pick(
            language,
            format!("Recharge de {amount} enregistrée (n° {seq})"),
            format!("Aufladung von {amount} erfasst (Nr. {seq})"),
            format!("Top-up of {amount} recorded (no. {seq})"),
        )
    }

    pub fn confirm_close(language: Language, counted: Cents) -> String {
        let counted = counted.to_french();
        pick(
            language,
            format!("Clôturer avec {counted} comptés ? Valider pour confirmer."),
            format!("Mit {counted} gezählt abschließen? Zum Bestätigen erneut bestätigen."),
            format!("Close with {counted} counted? Confirm again to proceed."),
        )
    }

    pub fn close_done(language: Language, difference: Cents) -> String {
        let difference = difference.to_french();
        pick(
            language,
            format!("Journée clôturée, écart {difference}"),
            format!("Tag abgeschlossen, Differenz {difference}"),
            format!("Day closed, difference {difference}"),
        )
    }

    pub fn served_by_staff(language: Language, first_name: &Text, balance: Cents) -> String {
        let balance = balance.to_french();
        pick(
            language,
            format!("{first_name} servi(e), solde {balance}"),
            format!("{first_name} bedient, Guthaben {balance}"),
            format!("{first_name} served, balance {balance}"),
        )
    }

    pub fn confirm_void(language: Language, seq: Seq) -> String {
        pick(
            language,
            format!("Annuler l'opération n° {seq} ? Touchez-la à nouveau."),
            format!("Vorgang Nr. {seq} stornieren? Erneut antippen."),
            format!("Void record no. {seq}? Touch it again."),
        )
    }

    pub fn void_done(language: Language, seq: Seq) -> String {
        pick(
            language,
            format!("Opération n° {seq} annulée"),
            format!("Vorgang Nr. {seq} storniert"),
            format!("Record no. {seq} voided"),
        )
    }

    pub fn record_row(language: Language, seq: Seq, body: &RecordBody) -> String {
        match body {
            RecordBody::Meal(meal) => pick(
                language,
                format!(
                    "n° {seq} · repas {} · {}",
                    meal.pupil,
                    meal.price.to_french()
                ),
                format!(
                    "Nr. {seq} · Essen {} · {}",
                    meal.pupil,
                    meal.price.to_french()
                ),
                format!(
                    "no. {seq} · meal {} · {}",
                    meal.pupil,
                    meal.price.to_french()
                ),
            ),
            RecordBody::TopUp(top_up) => pick(
                language,
                format!(
                    "n° {seq} · recharge {} · {}",
                    top_up.account,
                    top_up.amount.to_french()
                ),
                format!(
                    "Nr. {seq} · Aufladung {} · {}",
                    top_up.account,
                    top_up.amount.to_french()
                ),
                format!(
                    "no. {seq} · top-up {} · {}",
                    top_up.account,
                    top_up.amount.to_french()
                ),
            ),
            other => {
                let kind = other.kind().as_str();
                pick(
                    language,
                    format!("n° {seq} · {kind}"),
                    format!("Nr. {seq} · {kind}"),
                    format!("no. {seq} · {kind}"),
                )
            }
        }
    }

    /// A sync warning for staff.
    pub fn sync_warning(language: Language, warning: &SyncWarning) -> String {
        match warning {
            SyncWarning::ClockDrift { drift_ms } => {
                let seconds = drift_ms / 1_000;
                pick(
                    language,
                    format!("Horloge décalée de {seconds} s : prévenir le service informatique"),
                    format!("Uhr um {seconds} s verstellt: IT-Dienst benachrichtigen"),
                    format!("Clock off by {seconds} s: tell IT"),
                )
            }
            SyncWarning::OfflineTooLong { days } => pick(
                language,
                format!("Pas de synchronisation depuis {days} jours : exporter les données"),
                format!("Seit {days} Tagen nicht synchronisiert: Daten exportieren"),
                format!("Not synced for {days} days: export the records"),
            ),
            SyncWarning::RecordsQuarantined { count } => pick(
                language,
                format!("{count} enregistrements refusés par le serveur"),
                format!("{count} Einträge vom Server abgelehnt"),
                format!("{count} records refused by the back-office"),
            ),
        }
    }

    pub fn status_lines(language: Language, status: &Status) -> Vec<String> {
        let none = || pick(language, "aucun".into(), "keine".into(), "none".into());
        let show = |seq: Option<Seq>| seq.map_or_else(none, |seq| seq.to_string());
        let (device, last, acknowledged, unsynced, snapshot, today) = match language {
            Language::Fr => (
                "Borne",
                "Dernier n°",
                "Dernier n° reçu",
                "Non synchronisés",
                "Version des données",
                "Aujourd'hui",
            ),
            Language::De => (
                "Terminal",
                "Letzte Nr.",
                "Zuletzt bestätigt",
                "Nicht synchronisiert",
                "Datenversion",
                "Heute",
            ),
            Language::En => (
                "Kiosk",
                "Last no.",
                "Last acknowledged",
                "Not synced",
                "Data version",
                "Today",
            ),
        };
        vec![
            format!("{device} : {}", status.device),
            format!("{last} : {}", show(status.counts.last_seq)),
            format!("{acknowledged} : {}", show(status.counts.acknowledged_seq)),
            format!("{unsynced} : {}", status.counts.unsynced_records),
            format!(
                "{snapshot} : {}",
                status.snapshot_version.map_or_else(none, |v| v.to_string())
            ),
            format!(
                "{today} : {} / {}",
                status.today.meals, status.today.top_ups
            ),
        ]
    }
}
