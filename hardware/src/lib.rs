//! Card readers for the kiosk. This is the only crate that touches PC/SC.
//!
//! A [`CardReader`] runs on its own thread and sends [`CardEvent`]s (a card tapped with its UID,
//! taken away, unreadable; the reader attached or lost; the PC/SC service lost or restored) into
//! a bounded channel made by [`event_channel`]. The kiosk engine receives them; nothing here
//! needs an async runtime.
//!
//! - [`event`]: [`CardEvent`], what a reader reports, and the bounded channel it travels on.
//! - [`reader`]: the [`CardReader`] trait and the [`ReaderHandle`] that stops a reader thread.
//! - [`pcsc_reader`]: [`PcscReader`], a real reader through pcscd: waits on status changes,
//!   reads the UID, debounces, recovers from a lost reader or a restarted pcscd.
//! - `tracker`: what to announce about the card on a reader from pcscd's reports (one tap per
//!   card, debounced removals), apart from PC/SC calls so every sequence is unit-tested.
//! - [`uid`]: the PC/SC GET DATA command that reads a contactless UID, and its answers.
//! - [`simulated`]: [`SimulatedReader`], taps from a script, a channel or keys, for the demo and
//!   engine tests.
//! - [`vpcd`]: [`VirtualCard`], a contactless card that plugs into a real pcscd through
//!   vsmartcard's vpcd driver, for integration tests and benchmarks.
//! - [`diagnose`]: listing readers and printing events live, for installers (`kiosk readers`).
//! - [`error`]: [`HardwareError`], the crate's error.
//! - [`limits`]: every bound and timeout, named.
//!
//! The kiosk starts one reader and takes its events; the same code runs with the simulated reader
//! in engine tests and with [`PcscReader`] on a kiosk:
//!
//! ```
//! use hardware::{CardEvent, CardReader, SimulatedReader, event_channel};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (taps, reader) = SimulatedReader::channel("demo reader");
//! let (sender, events) = event_channel();
//! let handle = reader.start(sender)?;
//! taps.tap(proto::CardUid::from_hex("04a1b2c3")?, 0);
//! let mut uids = Vec::new();
//! for event in events.iter() {
//!     match event {
//!         CardEvent::CardPresent { uid, .. } => uids.push(uid.to_string()),
//!         CardEvent::CardRemoved { .. } => break,
//!         _ => {}
//!     }
//! }
//! assert_eq!(uids, ["04a1b2c3"]);
//! handle.stop()?;
//! # Ok(())
//! # }
//! ```

pub mod diagnose;
pub mod error;
pub mod event;
pub mod limits;
pub mod pcsc_reader;
pub mod reader;
pub mod simulated;
mod tracker;
pub mod uid;
pub mod vpcd;

pub use error::HardwareError;
pub use event::{CardEvent, event_channel};
pub use pcsc_reader::{PcscConfig, PcscReader, ReaderSelector};
pub use reader::{CardReader, ReaderHandle};
pub use simulated::{SimulatedInput, SimulatedReader, SimulatedTaps};
pub use uid::UidReadError;
pub use vpcd::{CardAnswer, InsertedCard, VirtualCard};

/// PC/SC's error, as carried by [`CardEvent::ServiceLost`] and [`HardwareError`], so that the
/// kiosk can name it without depending on the `pcsc` crate itself.
pub use pcsc::Error as PcscError;
