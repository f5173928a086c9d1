//! systemd's service notifications, spoken directly: one datagram a message to the Unix socket
//! named by `$NOTIFY_SOCKET` (the `sd_notify` protocol), so no C library or crate is needed.
//!
//! `kiosk run` sends `READY=1` once its engine and card reader are up. When the unit sets
//! `WatchdogSec=`, systemd passes `$WATCHDOG_USEC` and restarts the kiosk unless `WATCHDOG=1`
//! arrives within that time. The [`Watchdog`], a task of the kiosk's runtime, sends it only after
//! the engine answered a heartbeat queued behind the taps, so a hung engine (a stuck disk, a
//! deadlock) stops the pings and systemd restarts the kiosk, while a merely idle kiosk keeps
//! pinging.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::limits::{NOTIFY_MESSAGE_BYTES_MAX, PINGS_PER_TIMEOUT, WATCHDOG_PERIOD_MS_MIN};

/// The environment variable naming systemd's notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// The environment variable holding the watchdog timeout in microseconds.
pub const WATCHDOG_USEC_ENV: &str = "WATCHDOG_USEC";
/// The environment variable naming the process the watchdog is meant for.
pub const WATCHDOG_PID_ENV: &str = "WATCHDOG_PID";

/// A notification could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{NOTIFY_SOCKET_ENV}={path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("notification of {0} bytes is longer than {NOTIFY_MESSAGE_BYTES_MAX}")]
    TooLong(usize),
    #[error("{NOTIFY_SOCKET_ENV}={0}: an abstract socket, which this kiosk does not use")]
    Abstract(String),
}

/// Where notifications go: systemd's socket, or nowhere when not started by systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
}

#[derive(Debug)]
struct Target {
    path: PathBuf,
    socket: UnixDatagram,
}

impl Notifier {
    /// The notifier systemd asked for through the environment; silent without `$NOTIFY_SOCKET`.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        match std::env::var_os(NOTIFY_SOCKET_ENV) {
            None => Ok(Notifier::silent()),
            Some(path) if path.is_empty() => Ok(Notifier::silent()),
            Some(path) => Notifier::to_path(PathBuf::from(path)),
        }
    }

    /// Sends nothing.
    pub fn silent() -> Notifier {
        Notifier { target: None }
    }

    /// Sends to the datagram socket at `path`. systemd's own socket is a path under `/run`;
    /// abstract sockets (a leading `@`) are refused rather than silently ignored.
    pub fn to_path(path: PathBuf) -> Result<Notifier, NotifyError> {
        if path.as_os_str().as_encoded_bytes().first() == Some(&b'@') {
            return Err(NotifyError::Abstract(path.display().to_string()));
        }
        let socket = UnixDatagram::unbound()
            .and_then(|socket| {
                // A listener that stops reading must not hang the kiosk: a full queue drops
                // the notification with an error instead of blocking the watchdog.
                socket.set_nonblocking(true)?;
                Ok(socket)
            })
            .map_err(|source| NotifyError::Socket {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Notifier {
            target: Some(Target { path, socket }),
        })
    }

    /// Whether notifications go anywhere.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `message` (newline-separated `KEY=value` pairs) as one datagram.
    pub fn notify(&self, message: &str) -> Result<(), NotifyError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        if message.len() > NOTIFY_MESSAGE_BYTES_MAX {
            return Err(NotifyError::TooLong(message.len()));
        }
        target
            .socket
            .send_to(message.as_bytes(), &target.path)
            .map(drop)
            .map_err(|source| NotifyError::Socket {
                path: target.path.display().to_string(),
                source,
            })
    }

    /// `READY=1` with a status line `systemctl status` shows.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.notify(&format!("READY=1\nSTATUS={status}"))
    }

    /// `STOPPING=1`: a stop is on its way and not a failure.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.notify("STOPPING=1")
    }
}

/// The watchdog period systemd asked for: `$WATCHDOG_USEC`, when `$WATCHDOG_PID` is unset or
/// names this process. `None` when the unit has no watchdog.
pub fn watchdog_timeout_from_env() -> Option<Duration> {
    if let Some(pid) = std::env::var_os(WATCHDOG_PID_ENV)
        && pid.to_str().and_then(|pid| pid.parse::<u32>().ok()) != Some(std::process::id())
    {
        return None;
    }
    let usec = std::env::var(WATCHDOG_USEC_ENV).ok()?.parse::<u64>().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// How often to ping for a watchdog `timeout`.
pub fn ping_period(timeout: Duration) -> Duration {
    (timeout / PINGS_PER_TIMEOUT).max(Duration::from_millis(WATCHDOG_PERIOD_MS_MIN))
}

/// Sends `WATCHDOG=1` every period, each time only after the engine answered a heartbeat.
#[derive(Debug)]
pub struct Watchdog {
    /// Tells the task to end; `None` once stopped.
    stop: Option<oneshot::Sender<()>>,
    /// Disconnected when the task has ended, so `stop` can wait from any thread.
    ended: std::sync::mpsc::Receiver<()>,
}

impl Watchdog {
    /// Starts the watchdog as a task of `runtime`. Every `period` it calls `heartbeat` with a
    /// sender, which must reach the engine and be answered there (false: it could not be
    /// queued); it pings systemd once the answer arrives. A heartbeat not answered in time is
    /// waited for, not repeated, so a hung engine sends no more pings and systemd restarts the
    /// kiosk.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        notifier: Notifier,
        period: Duration,
        heartbeat: impl Fn(oneshot::Sender<()>) -> bool + Send + 'static,
    ) -> Watchdog {
        let (stop, stopped) = oneshot::channel();
        let (running, ended) = std::sync::mpsc::sync_channel::<()>(0);
        drop(runtime.spawn(async move {
            let _running = running;
            watch(notifier, period, heartbeat, stopped).await;
        }));
        Watchdog {
            stop: Some(stop),
            ended,
        }
    }

    /// Stops the task and waits for it; no ping is sent after this returns.
    pub fn stop(mut self) {
        self.stop_task();
    }

    fn stop_task(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            // Returns once the task, which never blocks, has dropped its end of the channel.
            let _ = self.ended.recv();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop_task();
    }
}

async fn watch(
    notifier: Notifier,
    period: Duration,
    heartbeat: impl Fn(oneshot::Sender<()>) -> bool,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let (alive, answer) = oneshot::channel();
        // A heartbeat that could not be queued (a full queue) earns no ping this period.
        if heartbeat(alive) {
            // Wait for the answer however long it takes, but keep hearing the stop request.
            tokio::select! {
                answered = answer => {
                    // An engine that stopped drops the heartbeat unanswered: no ping.
                    if answered.is_ok()
                        && let Err(error) = notifier.notify("WATCHDOG=1")
                    {
                        eprintln!("kiosk: watchdog: {error}");
                    }
                }
                _ = &mut stopped => return,
            }
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = &mut stopped => return,
        }
    }
}
