//! systemd's notification protocol against a real datagram socket, as systemd listens: `READY=1`
//! once the kiosk is up, `WATCHDOG=1` while the engine answers its heartbeats, none while the
//! engine is stalled, and again once it recovers; then `kiosk run` itself under the variables
//! systemd sets.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiosk::systemd::{Notifier, Watchdog, ping_period};
use kiosk::worker::{EngineWorker, NoWaker, Update};

/// The socket systemd would listen on.
struct Listener {
    _dir: tempfile::TempDir,
    path: PathBuf,
    socket: UnixDatagram,
}

impl Listener {
    fn new() -> Listener {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        Listener {
            _dir: dir,
            path,
            socket,
        }
    }

    /// The next message, or None if none arrives within `wait`.
    fn next(&self, wait: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buffer = [0u8; 4096];
        match self.socket.recv(&mut buffer) {
            Ok(length) => Some(String::from_utf8(buffer[..length].to_vec()).unwrap()),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(error) => panic!("{error}"),
        }
    }

    /// Every message already waiting.
    fn drain(&self) -> Vec<String> {
        std::iter::from_fn(|| self.next(Duration::from_millis(1))).collect()
    }

    fn notifier(&self) -> Notifier {
        Notifier::to_path(self.path.clone()).unwrap()
    }
}

const PERIOD: Duration = Duration::from_millis(40);

#[test]
fn ready_then_watchdog_pings_that_stop_while_the_engine_is_stalled() {
    let listener = Listener::new();
    listener.notifier().ready("device test").unwrap();
    assert_eq!(
        listener.next(Duration::from_secs(5)).as_deref(),
        Some("READY=1\nSTATUS=device test")
    );

    let kiosk = common::TestKiosk::new(3);
    let runtime = kiosk::run::runtime().unwrap();
    let (worker, sender, _updates) =
        EngineWorker::start(runtime.handle(), kiosk.engine, Arc::new(NoWaker));
    let heartbeat_sender = sender.clone();
    let watchdog = Watchdog::start(
        runtime.handle(),
        listener.notifier(),
        PERIOD,
        move |alive| heartbeat_sender.heartbeat(alive),
    );
    for _ in 0..3 {
        assert_eq!(
            listener.next(Duration::from_secs(5)).as_deref(),
            Some("WATCHDOG=1")
        );
    }

    // The engine blocks inside a job, as on a hung disk: heartbeats queue behind it.
    let (started, engine_stalled) = std::sync::mpsc::sync_channel::<()>(1);
    let (release, gate) = std::sync::mpsc::sync_channel::<()>(1);
    sender.submit(move |_engine| {
        started.send(()).unwrap();
        gate.recv().unwrap();
        Update::SignedOut
    });
    engine_stalled.recv_timeout(Duration::from_secs(5)).unwrap();
    // A heartbeat answered just before the stall may still be on its way.
    std::thread::sleep(PERIOD * 2);
    listener.drain();
    assert_eq!(
        listener.next(PERIOD * 10),
        None,
        "no ping while the engine is stalled"
    );

    release.send(()).unwrap();
    assert_eq!(
        listener.next(Duration::from_secs(5)).as_deref(),
        Some("WATCHDOG=1"),
        "pings again once the engine answers"
    );

    watchdog.stop();
    listener.drain();
    assert_eq!(listener.next(PERIOD * 5), None, "no ping after stop");
    drop(worker.stop());
}

#[test]
fn a_full_engine_queue_earns_no_ping_but_does_not_stop_the_watchdog() {
    let listener = Listener::new();
    let runtime = kiosk::run::runtime().unwrap();
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let heartbeat_refused = Arc::clone(&refused);
    // A queue that refuses, then accepts and answers at once.
    let watchdog = Watchdog::start(
        runtime.handle(),
        listener.notifier(),
        PERIOD,
        move |alive| {
            if heartbeat_refused.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            alive.send(()).is_ok()
        },
    );
    assert_eq!(listener.next(PERIOD * 5), None);
    refused.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        listener.next(Duration::from_secs(5)).as_deref(),
        Some("WATCHDOG=1")
    );
    watchdog.stop();
}

#[test]
fn ping_period_is_a_third_of_the_timeout_and_never_tiny() {
    fn check(timeout_ms: u64, expected_ms: u64) {
        assert_eq!(
            ping_period(Duration::from_millis(timeout_ms)),
            Duration::from_millis(expected_ms),
            "timeout {timeout_ms} ms"
        );
    }
    check(30_000, 10_000);
    check(300, 100);
    check(3, kiosk::limits::WATCHDOG_PERIOD_MS_MIN);
}

#[test]
fn abstract_sockets_and_long_messages_are_refused_and_silence_sends_nothing() {
    assert!(Notifier::to_path(PathBuf::from("@systemd/notify")).is_err());
    let listener = Listener::new();
    let long = "X".repeat(kiosk::limits::NOTIFY_MESSAGE_BYTES_MAX + 1);
    assert!(listener.notifier().notify(&long).is_err());
    let silent = Notifier::silent();
    assert!(!silent.is_active());
    silent.ready("nothing").unwrap();
    assert_eq!(listener.next(PERIOD), None);
}

/// `kiosk run` in text mode with typed taps, under the variables systemd sets.
fn run_kiosk(data: &Path, listener: &Listener, watchdog_pid: Option<&str>) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiosk"));
    command
        .args(["run", "--ui", "text", "--reader", "stdin", "--data-dir"])
        .arg(data)
        .env("NOTIFY_SOCKET", &listener.path)
        .env("WATCHDOG_USEC", "150000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pid) = watchdog_pid {
        command.env("WATCHDOG_PID", pid);
    }
    command.spawn().unwrap()
}

#[test]
fn kiosk_run_reports_ready_pings_the_watchdog_and_says_when_it_stops() {
    let mut kiosk = common::TestKiosk::without_snapshot();
    kiosk
        .engine
        .apply_snapshot(&common::snapshot_always_open(3))
        .unwrap();
    let data = kiosk.data.root.clone();
    drop(kiosk.engine);
    let listener = Listener::new();
    let mut child = run_kiosk(&data, &listener, None);

    let ready = listener.next(Duration::from_secs(30)).unwrap();
    assert!(
        ready.starts_with("READY=1\nSTATUS=device jaures-"),
        "{ready}"
    );
    for _ in 0..2 {
        assert_eq!(
            listener.next(Duration::from_secs(10)).as_deref(),
            Some("WATCHDOG=1")
        );
    }
    let card = common::pupil_card(1);
    writeln!(child.stdin.as_mut().unwrap(), "tap {card}").unwrap();
    drop(child.stdin.take());
    // Keep reading, as systemd does, until the kiosk has exited.
    let started = Instant::now();
    let mut messages = Vec::new();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "still running");
        messages.extend(listener.next(Duration::from_millis(10)));
    }
    messages.extend(listener.drain());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(messages.last().map(String::as_str), Some("STOPPING=1"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("ready, reading cards from standard input"),
        "{stdout}"
    );
    assert!(stdout.contains("\nserved    "), "{stdout}");
    assert!(stdout.contains("unsynced "), "{stdout}");
}

#[test]
fn kiosk_run_leaves_a_watchdog_meant_for_another_process_alone() {
    let kiosk = common::TestKiosk::new(3);
    let data = kiosk.data.root.clone();
    drop(kiosk.engine);
    let listener = Listener::new();
    let mut child = run_kiosk(&data, &listener, Some("1"));
    let ready = listener.next(Duration::from_secs(30)).unwrap();
    assert!(ready.starts_with("READY=1"), "{ready}");
    assert_eq!(listener.next(Duration::from_millis(600)), None);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_listener_that_stops_reading_never_blocks_the_kiosk() {
    let listener = Listener::new();
    let notifier = listener.notifier();
    let started = Instant::now();
    let refused = (0..10_000)
        .filter(|_| notifier.notify("WATCHDOG=1").is_err())
        .count();
    assert!(refused > 0, "the queue never filled");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        listener.next(Duration::from_secs(1)).as_deref(),
        Some("WATCHDOG=1")
    );
}
