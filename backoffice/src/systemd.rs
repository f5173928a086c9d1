//! systemd's readiness notification, spoken directly: one datagram to the Unix socket named by
//! `$NOTIFY_SOCKET` (the `sd_notify` protocol). The unit is `Type=notify`, so systemd (and units
//! ordered after the back-office) count it as started only once the database is open, its
//! migrations have run and the listener is bound, not as soon as the process exists.

use std::os::unix::net::UnixDatagram;

/// The environment variable naming systemd's notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Sends `READY=1` with a status line, when started by systemd; does nothing otherwise.
/// Abstract sockets (a leading `@`) are refused: systemd's own socket is a path under `/run`.
pub fn notify_ready(status: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET_ENV).filter(|path| !path.is_empty()) else {
        return Ok(());
    };
    if path.as_encoded_bytes().first() == Some(&b'@') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{NOTIFY_SOCKET_ENV}={}: abstract socket", path.display()),
        ));
    }
    let socket = UnixDatagram::unbound()?;
    // Never wait on a listener that stopped reading.
    socket.set_nonblocking(true)?;
    socket.send_to(format!("READY=1\nSTATUS={status}").as_bytes(), &path)?;
    Ok(())
}
