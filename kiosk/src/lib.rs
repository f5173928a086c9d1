//! The canteen kiosk: the engine decides, the ledger persists, the UI only displays.
//!
//! - [`config`]: the data directory (configuration, key, ledger) and enrolment.
//! - [`ledger`]: the offline SQLite ledger of signed records and the current snapshot.
//! - [`engine`]: card taps and staff actions turned into decisions and signed records.
//! - [`day_close`]: the Z record's totals.
//! - [`clock`]: the time source, real or moved by hand.
//! - [`export`]: signed records written as JSON Lines for audit or manual transfer.
//! - [`worker`]: the engine's one worker, a blocking task of the kiosk's runtime, and the
//!   [`worker::TapSender`] through which readers, screens, the sync and the watchdog reach it.
//! - [`ui`]: the Slint touchscreen, which sends the worker jobs and shows its updates.
//! - [`texts`]: what staff read, in the kiosk's three languages.
//! - [`run`]: `kiosk run`, the engine, a card reader, the sync and the touchscreen on one runtime.
//! - [`sound`]: the short sound cues of pupil-facing results.
//! - [`text_ui`]: `kiosk run --ui text`, decisions as lines for a terminal without a display.
//! - [`systemd`]: readiness and watchdog notifications to systemd.
//! - [`sync`]: the background sync with the back-office (uploads, snapshots, clock, offline).
//! - [`limits`]: every bound of the kiosk, named.

pub mod clock;
pub mod config;
pub mod day_close;
pub mod engine;
pub mod export;
pub mod ledger;
pub mod limits;
pub mod run;
pub mod sound;
pub mod sync;
pub mod systemd;
pub mod text_ui;
pub mod texts;
pub mod ui;
pub mod worker;
