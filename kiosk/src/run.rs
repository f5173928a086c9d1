//! `kiosk run`: the touchscreen on the main thread, where Slint's event loop runs (or, without a
//! display, a text mode that prints each decision and the kiosk's state), and everything else on
//! one tokio runtime ([`runtime`]): the engine and the reader bridge as blocking tasks, the sync,
//! the systemd watchdog and the stop signals as async tasks. Under systemd it reports readiness
//! and, through a heartbeat the engine answers, liveness (`systemd.rs`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use hardware::simulated::SimulatedInput;
use hardware::{
    CardEvent, CardReader as _, PcscConfig, PcscReader, ReaderHandle, ReaderSelector,
    SimulatedReader,
};
use proto::snapshot::{KioskSettings, Language};
use slint::ComponentHandle as _;

use crate::clock::SystemClock;
use crate::config::DataDir;
use crate::engine::Engine;
use crate::ledger::Ledger;
use crate::limits::{
    CLOCK_REFRESH_LATE_MS, CLOCK_REFRESH_MS, RESULT_DISPLAY_MS_DEFAULT,
    RUNTIME_BLOCKING_THREADS_MAX, RUNTIME_WORKER_THREADS,
};
use crate::systemd::{Notifier, Watchdog};
use crate::ui::KioskUi;
use crate::worker::{EngineWorker, NoWaker, TapSender, UiWaker, Update, UpdateReceiver};

/// The wait from `now` until the next refresh of the ready screen's clock: just after the next
/// minute starts (services and the clock change on whole minutes, in every time zone).
fn until_next_minute(now: std::time::SystemTime) -> std::time::Duration {
    let into_minute = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() % u128::from(CLOCK_REFRESH_MS));
    let into_minute = u64::try_from(into_minute).unwrap_or(0);
    std::time::Duration::from_millis(CLOCK_REFRESH_MS - into_minute + CLOCK_REFRESH_LATE_MS)
}

/// Where taps come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReaderSource {
    /// A real reader through pcscd; the first contactless one, or the first whose name contains
    /// the pattern.
    Pcsc { name_pattern: Option<String> },
    /// A script of `tap UID`, `pause MS`, `unplug MS` lines, played once.
    Script(std::path::PathBuf),
    /// The same lines typed on standard input.
    Stdin,
}

/// Where decisions are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UiMode {
    /// The Slint touchscreen in a window (needs a display).
    Window,
    /// One line per decision and state change on standard output, for a terminal without a
    /// display (a demo, a diagnosis over SSH). Ends when the reader's input ends.
    Text,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub data_dir: std::path::PathBuf,
    pub reader: ReaderSource,
    pub fullscreen: bool,
    pub ui: UiMode,
}

/// `kiosk run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("card reader: {0}")]
    Reader(#[from] hardware::HardwareError),
    #[error("reader script {path}: {reason}")]
    Script { path: String, reason: String },
    #[error("display: {0}")]
    Display(#[from] slint::PlatformError),
    #[error("systemd notification: {0}")]
    Notify(#[from] crate::systemd::NotifyError),
    #[error("sync: {0}")]
    Sync(#[from] crate::sync::SyncError),
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
}

thread_local! {
    /// The UI, for the closures Slint runs on the main thread when the engine has news.
    static UI: RefCell<Option<Rc<KioskUi>>> = const { RefCell::new(None) };
}

/// Wakes the main thread through Slint's event loop.
struct EventLoopWaker;

impl UiWaker for EventLoopWaker {
    fn wake(&self) {
        // Fails only once the event loop has quit, when there is nothing left to show.
        let _ = slint::invoke_from_event_loop(|| {
            UI.with(|ui| {
                if let Some(ui) = ui.borrow().as_ref() {
                    ui.apply_updates();
                }
            });
        });
    }
}

/// Opens the kiosk's data directory and starts its engine on `clock`: configuration, key and
/// ledger as `kiosk init` wrote them. `kiosk run` and `kiosk apply-snapshot` both start here.
pub fn start_engine(
    data: &DataDir,
    clock: Box<dyn crate::clock::Clock>,
) -> Result<Engine, RunError> {
    let config = data.load_config()?;
    let key = data.load_key()?;
    let ledger = Ledger::open(&data.ledger_path())?;
    let time_zone = jiff::tz::TimeZone::get(&config.time_zone)
        .map_err(|_| crate::config::ConfigError::TimeZone(config.time_zone.clone()))?;
    Ok(Engine::start(
        ledger,
        key,
        config.device,
        clock,
        time_zone,
        env!("CARGO_PKG_VERSION"),
    )?)
}

/// The kiosk's one tokio runtime. An idle runtime takes no wakeup: its workers sleep until a
/// task is woken, and the sync's timer is the only one that runs.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKER_THREADS)
        .max_blocking_threads(RUNTIME_BLOCKING_THREADS_MAX)
        .thread_name("kiosk-runtime")
        .enable_io()
        .enable_time()
        .build()
}

/// Runs the kiosk until its window is closed (window mode) or its reader's input ends (text
/// mode), or SIGTERM or SIGINT arrives; then stops the reader, the sync and the watchdog, and
/// waits for the engine to finish the taps already queued.
pub fn run(options: &RunOptions) -> Result<(), RunError> {
    let runtime = runtime().map_err(RunError::Runtime)?;
    let result = run_on(runtime.handle(), options);
    // Every task has ended or was asked to; the stdin reader may still wait for a line.
    runtime.shutdown_background();
    result
}

fn run_on(runtime: &tokio::runtime::Handle, options: &RunOptions) -> Result<(), RunError> {
    let notifier = Notifier::from_env()?;
    let data = DataDir::new(&options.data_dir);
    let engine = start_engine(&data, Box::new(SystemClock))?;
    let device = engine.device().clone();
    let settings = engine
        .ledger()
        .snapshot_state()?
        .map(|state| state.settings);
    let waker: Arc<dyn UiWaker> = match options.ui {
        UiMode::Window => Arc::new(EventLoopWaker),
        // The printing loop awaits the update channel itself.
        UiMode::Text => Arc::new(NoWaker),
    };
    let (worker, tap_sender, updates) = EngineWorker::start(runtime, engine, waker);
    let face = Face::open(options.ui, &tap_sender, updates, settings.as_ref())?;

    let (events, received) = hardware::event_channel();
    // Dropped when typed input ends; the other readers never end, so it lives until `run` ends.
    let (input_open, input_ended) = tokio::sync::oneshot::channel::<()>();
    let mut input_open = Some(input_open);
    let (reader, reader_label) = start_reader(&options.reader, events, &mut input_open)?;
    let bridge = runtime.spawn_blocking({
        let sender = tap_sender.clone();
        move || bridge(&received, &sender)
    });
    let sync = start_sync(runtime, &data, &tap_sender)?;

    // Engine and reader are up: systemd may consider the kiosk started.
    notifier.ready(&format!("device {device}, reader {reader_label}"))?;
    let watchdog = start_watchdog(runtime, &notifier, &tap_sender)?;

    match face {
        Face::Window(ui) => show_window(runtime, &ui, &tap_sender, options.fullscreen)?,
        Face::Text(mut updates) => {
            println!("kiosk {device}: ready, reading cards from {reader_label}");
            runtime.block_on(crate::text_ui::print_until_input_ends(
                &tap_sender,
                &mut updates,
                async {
                    tokio::select! {
                        _ = input_ended => {}
                        () = stop_requested() => {}
                    }
                },
            ));
        }
    }

    // Stop in the order things depend on each other: no ping once stopping, no new tap once
    // the reader is stopped, and the engine last, after the taps already queued.
    drop(input_open);
    if let Some(watchdog) = watchdog {
        watchdog.stop();
    }
    let _ = notifier.stopping();
    if let Some(sync) = sync {
        runtime.block_on(sync.stop());
    }
    let stopped_reader = reader.stop();
    // The bridge ends once the reader's thread, and with it the event sender, is gone; a reader
    // that did not stop in time is left behind with its bridge, not waited for.
    if stopped_reader.is_ok() {
        let _ = runtime.block_on(bridge);
    }
    UI.with(|cell| cell.borrow_mut().take());
    drop(worker.stop());
    Ok(stopped_reader?)
}

/// Starts the card reader `source` names, sending into `events`; returns it with a label for
/// people. Typed input takes `input_open` and drops it when it ends.
fn start_reader(
    source: &ReaderSource,
    events: std::sync::mpsc::SyncSender<CardEvent>,
    input_open: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(ReaderHandle, &'static str), RunError> {
    match source {
        ReaderSource::Pcsc { name_pattern } => {
            let config = PcscConfig {
                reader: ReaderSelector::from_pattern(name_pattern.as_deref())?,
            };
            Ok((PcscReader::new(config).start(events)?, "pcscd"))
        }
        ReaderSource::Script(path) => {
            let script = std::fs::read_to_string(path).map_err(|error| RunError::Script {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
            let inputs = SimulatedInput::parse_script(&script)?;
            let reader = SimulatedReader::from_script("simulated reader", inputs);
            Ok((reader.start(events)?, "script"))
        }
        ReaderSource::Stdin => {
            let (taps, reader) = SimulatedReader::channel("keyboard reader");
            spawn_stdin_feed(taps, input_open.take());
            Ok((reader.start(events)?, "standard input"))
        }
    }
}

/// Starts the systemd watchdog when the unit asks for one, with heartbeats queued behind taps.
fn start_watchdog(
    runtime: &tokio::runtime::Handle,
    notifier: &Notifier,
    sender: &TapSender,
) -> Result<Option<Watchdog>, RunError> {
    let Some(timeout) = crate::systemd::watchdog_timeout_from_env() else {
        return Ok(None);
    };
    if !notifier.is_active() {
        return Ok(None);
    }
    let sender = sender.clone();
    Ok(Some(Watchdog::start(
        runtime,
        Notifier::from_env()?,
        crate::systemd::ping_period(timeout),
        move |alive| sender.heartbeat(alive),
    )))
}

/// Runs the window until it is closed, or a stop is asked, with its minute clock.
fn show_window(
    runtime: &tokio::runtime::Handle,
    ui: &KioskUi,
    sender: &TapSender,
    fullscreen: bool,
) -> Result<(), RunError> {
    // One timer, re-aimed at the next minute's start each time it fires, so the clock turns with
    // the minute and does not drift.
    let clock_timer = Rc::new(slint::Timer::default());
    refresh_clock(sender);
    let clock_sender = sender.clone();
    let aim = Rc::downgrade(&clock_timer);
    clock_timer.start(
        slint::TimerMode::Repeated,
        until_next_minute(std::time::SystemTime::now()),
        move || {
            refresh_clock(&clock_sender);
            if let Some(timer) = aim.upgrade() {
                timer.set_interval(until_next_minute(std::time::SystemTime::now()));
            }
        },
    );
    if fullscreen {
        ui.window().window().set_fullscreen(true);
    }
    // A stop asked by systemd or Ctrl-C closes the window as a person would.
    let signals = runtime.spawn(async {
        stop_requested().await;
        let _ = slint::quit_event_loop();
    });
    let shown = ui.window().run();
    signals.abort();
    clock_timer.stop();
    Ok(shown?)
}

/// Completes when the kiosk is asked to stop: SIGTERM (systemd) or SIGINT (Ctrl-C). When the
/// signals cannot be watched it never completes, and they end the process as by default.
async fn stop_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

/// What shows the engine's updates.
enum Face {
    Window(Rc<KioskUi>),
    Text(UpdateReceiver),
}

impl Face {
    /// The window, in the snapshot's language and display time (French and
    /// [`RESULT_DISPLAY_MS_DEFAULT`] before the first), or the text mode.
    fn open(
        mode: UiMode,
        sender: &TapSender,
        updates: UpdateReceiver,
        settings: Option<&KioskSettings>,
    ) -> Result<Face, RunError> {
        if mode == UiMode::Text {
            return Ok(Face::Text(updates));
        }
        let language = settings.map_or(Language::Fr, |settings| settings.language);
        let display_ms = settings.map_or(RESULT_DISPLAY_MS_DEFAULT, |settings| {
            u64::from(settings.result_display_ms)
        });
        let ui = KioskUi::new(sender.clone(), updates, language, display_ms)?;
        ui.set_speaker(crate::sound::Speaker::aplay());
        UI.with(|cell| *cell.borrow_mut() = Some(Rc::clone(&ui)));
        Ok(Face::Window(ui))
    }
}

/// Starts the background sync when the kiosk knows its back-office.
fn start_sync(
    runtime: &tokio::runtime::Handle,
    data: &DataDir,
    sender: &TapSender,
) -> Result<Option<crate::sync::SyncHandle>, RunError> {
    let Some(client) = crate::sync::SyncClient::from_data_dir(
        data,
        Arc::new(sender.clone()),
        Arc::new(SystemClock),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(crate::sync::spawn(runtime, client)))
}

/// Forwards reader events to the engine (taps) and the UI (reader state), in the order the
/// reader sent them; ends with the reader. A blocking task: the hardware crate's channel is a
/// std one, and waiting on it directly adds no hop between a tap and the engine.
fn bridge(events: &std::sync::mpsc::Receiver<CardEvent>, sender: &TapSender) {
    for event in events.iter() {
        match event {
            CardEvent::CardPresent { uid, .. } => sender.tap(uid),
            CardEvent::ReaderAttached { .. } | CardEvent::ServiceRestored => {
                sender.reader_available(true)
            }
            CardEvent::ReaderLost { .. } | CardEvent::ServiceLost { .. } => {
                sender.reader_available(false)
            }
            // The card is still on the reader or gone: the next read decides.
            CardEvent::CardUnreadable { .. } | CardEvent::CardRemoved { .. } => {}
        }
    }
}

/// Feeds typed lines to the reader; drops `input_open` when standard input ends. A thread of its
/// own, like a hardware reader's: a read of standard input cannot be interrupted, so it must not
/// hold up the runtime's shutdown.
fn spawn_stdin_feed(
    taps: hardware::simulated::SimulatedTaps,
    input_open: Option<tokio::sync::oneshot::Sender<()>>,
) {
    std::thread::Builder::new()
        .name("stdin-taps".into())
        .spawn(move || {
            let _input_open = input_open;
            for line in std::io::stdin().lines().map_while(Result::ok) {
                match SimulatedInput::parse_line(&line) {
                    Ok(Some(input)) => {
                        if !taps.send(input) {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(reason) => eprintln!("kiosk: ignored {line:?}: {reason}"),
                }
            }
        })
        .expect("the stdin thread starts");
}

/// Asks the engine for the open service and the local time, and signs idle staff out.
fn refresh_clock(sender: &TapSender) {
    sender.submit(|engine| {
        if engine.sign_out_if_idle().unwrap_or(false) {
            return Update::SignedOut;
        }
        let (service, time) = engine.service_now();
        Update::Clock {
            service_name: service.map(|name| name.to_string()).unwrap_or_default(),
            time,
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::until_next_minute;

    #[test]
    fn the_clock_is_refreshed_just_after_each_minute_starts() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        let minute = 29_000_000 * 60_000;
        assert_eq!(until_next_minute(at(minute)), Duration::from_millis(60_020));
        assert_eq!(
            until_next_minute(at(minute + 30_000)),
            Duration::from_millis(30_020)
        );
        assert_eq!(
            until_next_minute(at(minute + 59_999)),
            Duration::from_millis(21)
        );
        // A refresh that fired before the minute turned aims again just after it.
        assert_eq!(
            until_next_minute(at(minute + 59_990)),
            Duration::from_millis(30)
        );
    }
}
