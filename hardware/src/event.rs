//! What a reader reports, and the bounded channel it travels on.

use std::fmt;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use proto::CardUid;

use crate::limits::EVENT_CHANNEL_CAPACITY;
use crate::uid::UidReadError;

/// One thing that happened at a reader. Events about one reader come in a consistent order:
/// `ReaderAttached` before any card event, every `CardPresent` or `CardUnreadable` followed by one
/// `CardRemoved` (sent before `ReaderLost` when the reader goes away with a card on it), and
/// `ServiceLost` alternating with `ServiceRestored`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardEvent {
    /// A card was tapped and its UID read. A card left on the reader is one tap.
    CardPresent {
        reader: String,
        uid: CardUid,
        /// When pcscd reported the card (or the simulated tap happened), so the kiosk can measure
        /// its tap-to-decision time from the moment the card was seen.
        reported_at: Instant,
    },
    /// A card is on the reader but its UID could not be read: it left during the read, answered
    /// garbage, or the reader could not talk to it. The UI can ask to tap again.
    CardUnreadable { reader: String, error: UidReadError },
    /// The card that was on the reader (read or not) has gone.
    CardRemoved { reader: String },
    /// The reader is ready: found at start, plugged back in, or back after pcscd restarted.
    ReaderAttached { reader: String },
    /// The reader went away (unplugged, or pcscd stopped); the UI shows "reader unavailable".
    ReaderLost { reader: String },
    /// pcscd cannot be reached; the reader thread retries with backoff.
    ServiceLost { error: pcsc::Error },
    /// pcscd can be reached again after `ServiceLost`.
    ServiceRestored,
}

impl fmt::Display for CardEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardEvent::CardPresent { reader, uid, .. } => {
                write!(f, "card present {uid} on \"{reader}\"")
            }
            CardEvent::CardUnreadable { reader, error } => {
                write!(f, "card unreadable on \"{reader}\": {error}")
            }
            CardEvent::CardRemoved { reader } => write!(f, "card removed from \"{reader}\""),
            CardEvent::ReaderAttached { reader } => write!(f, "reader attached \"{reader}\""),
            CardEvent::ReaderLost { reader } => write!(f, "reader lost \"{reader}\""),
            CardEvent::ServiceLost { error } => write!(f, "pcscd unavailable: {error}"),
            CardEvent::ServiceRestored => write!(f, "pcscd available again"),
        }
    }
}

/// The channel from a reader thread to the kiosk, bounded by [`EVENT_CHANNEL_CAPACITY`]. Dropping
/// the receiver ends the reader thread at its next event.
pub fn event_channel() -> (SyncSender<CardEvent>, Receiver<CardEvent>) {
    sync_channel(EVENT_CHANNEL_CAPACITY)
}
