//! Every bound and timeout of the crate, named.

/// Events a reader thread may send before the kiosk takes them. When the queue is full the
/// thread waits: a slow engine delays taps rather than losing a card event, and a pupil cannot
/// tap 64 times while the engine is stuck.
pub const EVENT_CHANNEL_CAPACITY: usize = 64;

/// The first wait before establishing a new PC/SC context after pcscd went away; it doubles on
/// each failure up to [`SERVICE_RETRY_BACKOFF_MAX_MS`].
pub const SERVICE_RETRY_BACKOFF_INITIAL_MS: u64 = 50;

/// The longest wait between two attempts to reach pcscd. Taps must work again within 5 s of pcscd
/// returning; one attempt a second costs nothing while it is away.
pub const SERVICE_RETRY_BACKOFF_MAX_MS: u64 = 1_000;

/// A card that leaves the reader and comes back within this time is the same tap: a card held at
/// the edge of the field flickers in and out. `CardRemoved` waits this long.
pub const REMOVAL_DEBOUNCE_MS: u64 = 300;

/// GET DATA commands sent to one card: the first, and one more with the length that a `6C xx`
/// answer gave.
pub const UID_READ_ATTEMPTS_MAX: usize = 2;

/// Room for a GET DATA answer: a UID is at most 10 bytes and a status word 2, but a misbehaving
/// card's longer answer must fit whole to be recognised and refused.
pub const APDU_RESPONSE_BYTES_MAX: usize = 258;

/// How long [`crate::ReaderHandle::stop`] waits for the reader thread to end.
pub const STOP_WAIT_MS_MAX: u64 = 2_000;

/// While stopping, how often the reader thread's blocking PC/SC wait is cancelled again, in case
/// the first cancel arrived before the thread started waiting.
pub const STOP_CANCEL_INTERVAL_MS: u64 = 10;

/// vpcd's TCP port for its first slot (`CHANNELID 0x8C7B` in `/etc/reader.conf.d/vpcd`); the
/// second slot listens on the next port.
pub const VPCD_PORT_DEFAULT: u16 = 35963;

/// The longest vpcd message a virtual card accepts: a short APDU is at most 261 bytes, and vpcd
/// sends nothing longer to a contactless card.
pub const VPCD_MESSAGE_BYTES_MAX: usize = 261;

/// The longest reader name pattern accepted in a configuration (PC/SC names are under 128 bytes).
pub const READER_NAME_PATTERN_BYTES_MAX: usize = 128;

/// The longest hold, pause or unplug a simulated reader's script may ask for: a demo script, not
/// a sleep.
pub const SIMULATED_WAIT_MS_MAX: u64 = 600_000;

/// How long a scripted or keyed tap stays on the reader unless told otherwise: about a pupil's.
pub const SIMULATED_HOLD_MS_DEFAULT: u64 = 300;
