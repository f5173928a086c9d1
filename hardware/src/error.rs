//! The crate's error: what can go wrong when starting, stopping or diagnosing a reader.

use crate::limits::{READER_NAME_PATTERN_BYTES_MAX, STOP_WAIT_MS_MAX};

/// Failures of this crate's functions. Problems with a card (an unreadable UID) are not errors of
/// a function: they arrive as [`crate::CardEvent::CardUnreadable`].
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    #[error("the PC/SC service (pcscd) is not available: {0}")]
    ServiceUnavailable(pcsc::Error),
    #[error("PC/SC: {0}")]
    Pcsc(pcsc::Error),
    #[error("could not start the reader thread: {0}")]
    ThreadStart(std::io::Error),
    #[error("the reader thread did not stop within {STOP_WAIT_MS_MAX} ms")]
    StopTimedOut,
    #[error("the reader thread panicked")]
    ThreadPanicked,
    #[error("reader name pattern: empty or longer than {READER_NAME_PATTERN_BYTES_MAX} bytes")]
    ReaderNamePattern,
    #[error("simulated reader script, line {line}: {reason}")]
    Script { line: usize, reason: String },
    #[error("virtual card: {0}")]
    VirtualCard(std::io::Error),
    #[error("writing diagnostics: {0}")]
    Output(std::io::Error),
}

impl HardwareError {
    /// Sorts a PC/SC error from establishing a context or listing readers: pcscd being away is
    /// the one an installer can act on.
    pub(crate) fn from_pcsc(error: pcsc::Error) -> HardwareError {
        if means_service_gone(error) {
            HardwareError::ServiceUnavailable(error)
        } else {
            HardwareError::Pcsc(error)
        }
    }
}

/// The PC/SC errors that mean pcscd is away, or the context to it dead.
fn means_service_gone(error: pcsc::Error) -> bool {
    matches!(
        error,
        pcsc::Error::NoService
            | pcsc::Error::ServiceStopped
            | pcsc::Error::InvalidHandle
            | pcsc::Error::CommError
            | pcsc::Error::Shutdown
            | pcsc::Error::InternalError
            | pcsc::Error::UnknownError
    )
}
