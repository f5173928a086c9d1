//! A real card reader through pcscd.
//!
//! One thread per reader blocks in `SCardGetStatusChange` on the chosen reader and on pcscd's
//! `\\?PnP?\Notification` pseudo-reader, with no timeout unless a removal is being debounced: it
//! costs nothing while no card comes. When a card arrives it connects, sends GET DATA for the UID
//! and disconnects without resetting the card. When pcscd goes away the context is dead for good
//! (a restarted pcscd does not know it), so the thread drops it and establishes a new one, with
//! backoff.

use std::ffi::{CStr, CString};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use proto::CardUid;

use crate::error::HardwareError;
use crate::event::CardEvent;
use crate::limits::{
    APDU_RESPONSE_BYTES_MAX, READER_NAME_PATTERN_BYTES_MAX, SERVICE_RETRY_BACKOFF_INITIAL_MS,
    SERVICE_RETRY_BACKOFF_MAX_MS, UID_READ_ATTEMPTS_MAX,
};
use crate::reader::{CardReader, ReaderHandle, StopSignal};
use crate::tracker::CardTracker;
use crate::uid::{GetDataAnswer, UidReadError, get_uid_command, parse_get_uid_answer};

/// Which reader to watch, and nothing else about it: pcscd knows the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcscConfig {
    pub reader: ReaderSelector,
}

/// How the reader is chosen among those pcscd lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReaderSelector {
    /// The first reader whose name contains this text, ignoring case (e.g. `ACR122`).
    NamePattern(String),
    /// The first reader whose name says it is contactless (see [`is_contactless_name`]).
    FirstContactless,
}

impl ReaderSelector {
    /// A selector from a configured pattern; `None` means the first contactless reader.
    pub fn from_pattern(pattern: Option<&str>) -> Result<ReaderSelector, HardwareError> {
        match pattern {
            None => Ok(ReaderSelector::FirstContactless),
            Some(pattern)
                if pattern.trim().is_empty() || pattern.len() > READER_NAME_PATTERN_BYTES_MAX =>
            {
                Err(HardwareError::ReaderNamePattern)
            }
            Some(pattern) => Ok(ReaderSelector::NamePattern(pattern.to_owned())),
        }
    }

    /// The reader to watch among `names`, in pcscd's order.
    pub fn pick<'a>(&self, names: &'a [String]) -> Option<&'a str> {
        let chosen = match self {
            ReaderSelector::NamePattern(pattern) => {
                let pattern = pattern.to_lowercase();
                names
                    .iter()
                    .find(|name| name.to_lowercase().contains(&pattern))
            }
            ReaderSelector::FirstContactless => names.iter().find(|name| is_contactless_name(name)),
        };
        chosen.map(String::as_str)
    }
}

/// Words that contactless readers put in their PC/SC names: "ACS ACR122U PICC Interface",
/// "HID OMNIKEY 5022 CL", "Identiv uTrust 3700 F CL Reader", "SCM SCL3711 NFC". PC/SC does not say
/// whether a reader is contactless, and a contact reader (a SIM or ID card slot) must not be
/// picked by default.
const CONTACTLESS_NAME_WORDS: [&str; 4] = ["picc", "cl", "contactless", "nfc"];

/// Whether a reader's name says it is contactless.
pub fn is_contactless_name(name: &str) -> bool {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| CONTACTLESS_NAME_WORDS.contains(&word.to_ascii_lowercase().as_str()))
}

/// A real reader through pcscd. See the module documentation for how it waits and recovers.
#[derive(Debug)]
pub struct PcscReader {
    config: PcscConfig,
}

impl PcscReader {
    pub fn new(config: PcscConfig) -> PcscReader {
        PcscReader { config }
    }
}

impl CardReader for PcscReader {
    fn start(self, events: SyncSender<CardEvent>) -> Result<ReaderHandle, HardwareError> {
        let stop = Arc::new(StopSignal::default());
        // The live context, shared so that stopping can cancel the thread's blocking wait.
        let live_context: Arc<Mutex<Option<Context>>> = Arc::new(Mutex::new(None));
        let mut thread = ReaderThread {
            selector: self.config.reader,
            events,
            stop: Arc::clone(&stop),
            live_context: Arc::clone(&live_context),
            watched: None,
        };
        let handle = std::thread::Builder::new()
            .name("pcsc-reader".to_owned())
            .spawn(move || thread.run())
            .map_err(HardwareError::ThreadStart)?;
        let interrupt = move || {
            let context = live_context.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(context) = context.as_ref() {
                // Failing to cancel means no call is waiting; the stop flag is seen next.
                let _ = context.cancel();
            }
        };
        Ok(ReaderHandle::new(handle, stop, Box::new(interrupt)))
    }
}

/// Why watching with one context ended.
enum WatchEnd {
    /// Stopped by the handle, or the kiosk dropped the receiver.
    Stopped,
    /// pcscd went away (or the context broke): establish a new one.
    ServiceGone(pcsc::Error),
}

struct ReaderThread {
    selector: ReaderSelector,
    events: SyncSender<CardEvent>,
    stop: Arc<StopSignal>,
    live_context: Arc<Mutex<Option<Context>>>,
    /// The watched reader, kept across contexts so that a service loss can close what was
    /// announced about it.
    watched: Option<CardTracker>,
}

impl ReaderThread {
    fn run(&mut self) {
        let mut backoff_ms = SERVICE_RETRY_BACKOFF_INITIAL_MS;
        // Whether the kiosk last heard `ServiceLost`; `ServiceRestored` answers it.
        let mut service_lost = false;
        loop {
            if self.stop.is_raised() {
                return;
            }
            let context = match Context::establish(Scope::User) {
                Ok(context) => context,
                Err(error) => {
                    if !service_lost {
                        service_lost = true;
                        if self.send(CardEvent::ServiceLost { error }).is_err() {
                            return;
                        }
                    }
                    if self.back_off(&mut backoff_ms) {
                        return;
                    }
                    continue;
                }
            };
            // No need to clear `service_lost` after: the watch below ends either the thread or
            // with pcscd lost again.
            if service_lost && self.send(CardEvent::ServiceRestored).is_err() {
                return;
            }
            let watched_since = Instant::now();
            self.set_live_context(Some(context.clone()));
            let end = self.watch(&context);
            self.set_live_context(None);
            drop(context);
            let WatchEnd::ServiceGone(error) = end else {
                return;
            };
            service_lost = true;
            let lost = self
                .lose_reader()
                .and_then(|()| self.send(CardEvent::ServiceLost { error }));
            if lost.is_err() {
                return;
            }
            // A context that worked for a while starts the backoff again; one that failed at
            // once (pcscd up but refusing us) is retried no faster than the backoff, so a broken
            // service can never make this a busy loop.
            if watched_since.elapsed() >= Duration::from_millis(SERVICE_RETRY_BACKOFF_MAX_MS) {
                backoff_ms = SERVICE_RETRY_BACKOFF_INITIAL_MS;
            }
            if self.back_off(&mut backoff_ms) {
                return;
            }
        }
    }

    /// Waits `backoff_ms` and doubles it up to the maximum; returns whether the thread was
    /// stopped meanwhile.
    fn back_off(&self, backoff_ms: &mut u64) -> bool {
        let stopped = self.stop.sleep(Duration::from_millis(*backoff_ms));
        *backoff_ms = backoff_ms
            .saturating_mul(2)
            .min(SERVICE_RETRY_BACKOFF_MAX_MS);
        stopped
    }

    fn set_live_context(&self, context: Option<Context>) {
        *self
            .live_context
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = context;
    }

    /// Sends an event; `Err` means the kiosk dropped the receiver and the thread should end.
    fn send(&self, event: CardEvent) -> Result<(), WatchEnd> {
        self.events.send(event).map_err(|_| WatchEnd::Stopped)
    }

    fn send_all(&self, events: Vec<CardEvent>) -> Result<(), WatchEnd> {
        events.into_iter().try_for_each(|event| self.send(event))
    }

    /// Watches readers with one context until it dies or the thread is stopped.
    fn watch(&mut self, context: &Context) -> WatchEnd {
        match self.watch_until_error(context) {
            Ok(never) => match never {},
            Err(end) => end,
        }
    }

    fn watch_until_error(
        &mut self,
        context: &Context,
    ) -> Result<std::convert::Infallible, WatchEnd> {
        // `states[0]` is the PnP pseudo-reader (readers attached or removed); `states[1]`, when
        // present, is the watched reader.
        let mut states = vec![ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)];
        self.attach_reader(context, &mut states)?;
        loop {
            if self.stop.is_raised() {
                return Err(WatchEnd::Stopped);
            }
            let timeout = self
                .removal_deadline()
                .map(|deadline| deadline.saturating_duration_since(Instant::now()));
            match context.get_status_change(timeout, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout | pcsc::Error::Cancelled) => {
                    self.finish_due_removal()?;
                    continue;
                }
                Err(pcsc::Error::UnknownReader) => {
                    // The reader vanished between listing and waiting.
                    self.lose_reader()?;
                    states.truncate(1);
                    continue;
                }
                Err(error) => return Err(WatchEnd::ServiceGone(error)),
            }
            let reported_at = Instant::now();
            if let Some(reader_state) = states.get_mut(1)
                && reader_state.event_state().contains(State::CHANGED)
            {
                let lost = self.on_reader_state(context, reader_state, reported_at)?;
                reader_state.sync_current_state();
                if lost {
                    states.truncate(1);
                }
            }
            if states[0].event_state().contains(State::CHANGED) {
                states[0].sync_current_state();
                self.recheck_readers(context, &mut states)?;
            }
            self.finish_due_removal()?;
        }
    }

    /// Picks a reader if none is watched, and announces it.
    fn attach_reader(
        &mut self,
        context: &Context,
        states: &mut Vec<ReaderState>,
    ) -> Result<(), WatchEnd> {
        if self.watched.is_some() {
            return Ok(());
        }
        let names = reader_names(context).map_err(WatchEnd::ServiceGone)?;
        let Some(name) = self.selector.pick(&names) else {
            return Ok(());
        };
        let Ok(c_name) = CString::new(name) else {
            // pcscd's names come from C strings and cannot hold a NUL byte.
            return Ok(());
        };
        states.push(ReaderState::new(c_name, State::UNAWARE));
        self.watched = Some(CardTracker::new(name));
        self.send(CardEvent::ReaderAttached {
            reader: name.to_owned(),
        })
    }

    /// After pcscd said readers came or went: drop the watched one if it left, pick one if none.
    fn recheck_readers(
        &mut self,
        context: &Context,
        states: &mut Vec<ReaderState>,
    ) -> Result<(), WatchEnd> {
        if let Some(watched) = &self.watched {
            let names = reader_names(context).map_err(WatchEnd::ServiceGone)?;
            if !names.iter().any(|name| name == watched.reader()) {
                self.lose_reader()?;
                states.truncate(1);
            }
        }
        self.attach_reader(context, states)
    }

    /// Handles a change of the watched reader; returns whether the reader is gone.
    fn on_reader_state(
        &mut self,
        context: &Context,
        reader_state: &ReaderState,
        reported_at: Instant,
    ) -> Result<bool, WatchEnd> {
        let event_state = reader_state.event_state();
        // UNKNOWN: pcscd no longer has this reader. (UNAVAILABLE is a reader still there whose
        // state cannot be read for now; it changes again when it can.)
        if event_state.intersects(State::UNKNOWN | State::IGNORE) {
            self.lose_reader()?;
            return Ok(true);
        }
        let Some(watched) = &mut self.watched else {
            return Ok(false);
        };
        let events = if event_state.contains(State::PRESENT) {
            watched.card_present(reader_state.event_count(), reported_at, || {
                read_uid(context, reader_state.name())
            })
        } else {
            watched.card_absent(reported_at)
        };
        self.send_all(events)?;
        Ok(false)
    }

    fn removal_deadline(&self) -> Option<Instant> {
        self.watched.as_ref()?.removal_deadline()
    }

    /// Announces a debounced removal whose time has come.
    fn finish_due_removal(&mut self) -> Result<(), WatchEnd> {
        let Some(watched) = &mut self.watched else {
            return Ok(());
        };
        let events = watched.time_passed(Instant::now());
        self.send_all(events)
    }

    /// Forgets the watched reader, closing what was announced about it.
    fn lose_reader(&mut self) -> Result<(), WatchEnd> {
        match self.watched.take() {
            Some(watched) => self.send_all(watched.reader_lost()),
            None => Ok(()),
        }
    }
}

/// The readers pcscd knows, in its order; none is an empty list, not an error.
pub(crate) fn reader_names(context: &Context) -> Result<Vec<String>, pcsc::Error> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names
            .into_iter()
            .map(|name| name.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// Connects to the card on `reader`, reads its UID and leaves the card as it was: resetting it
/// would disturb the next read and any other application using the reader.
pub(crate) fn read_uid(context: &Context, reader: &CStr) -> Result<CardUid, UidReadError> {
    let card = context
        .connect(reader, ShareMode::Shared, Protocols::ANY)
        .map_err(UidReadError::from_pcsc)?;
    let read = transmit_get_uid(&card);
    // A failed disconnect means the card left just after the read: the UID read stands, and the
    // handle is released when dropped.
    let _ = card.disconnect(Disposition::LeaveCard);
    read
}

fn transmit_get_uid(card: &pcsc::Card) -> Result<CardUid, UidReadError> {
    let mut expected_length = 0;
    let mut answer_buffer = [0; APDU_RESPONSE_BYTES_MAX];
    for _ in 0..UID_READ_ATTEMPTS_MAX {
        let answer = card
            .transmit(&get_uid_command(expected_length), &mut answer_buffer)
            .map_err(UidReadError::from_pcsc)?;
        match parse_get_uid_answer(answer)? {
            GetDataAnswer::Uid(uid) => return Ok(uid),
            GetDataAnswer::RetryWithLength(length) => expected_length = length,
        }
    }
    Err(UidReadError::LengthNotSettled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(selector: ReaderSelector, names: &[&str], expected: Option<&str>) {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        assert_eq!(
            selector.pick(&names),
            expected,
            "{selector:?} among {names:?}"
        );
    }

    fn pattern(text: &str) -> ReaderSelector {
        ReaderSelector::from_pattern(Some(text)).unwrap()
    }

    #[test]
    fn readers_are_picked_by_pattern_or_as_first_contactless() {
        let contactless = ReaderSelector::FirstContactless;
        check(contactless.clone(), &[], None);
        check(contactless.clone(), &["Virtual PCD 00 00"], None);
        check(
            contactless.clone(),
            &[
                "Gemalto PC Twin Reader 00 00",
                "ACS ACR122U PICC Interface 00 00",
            ],
            Some("ACS ACR122U PICC Interface 00 00"),
        );
        check(
            contactless.clone(),
            &[
                "HID Global OMNIKEY 5022 Smart Card Reader CL 00 00",
                "SCM SCL3711 NFC 01 00",
            ],
            Some("HID Global OMNIKEY 5022 Smart Card Reader CL 00 00"),
        );
        check(contactless, &["Identiv CLOUD 2700 R 00 00"], None);
        check(
            pattern("virtual pcd 00 01"),
            &["Virtual PCD 00 00", "Virtual PCD 00 01"],
            Some("Virtual PCD 00 01"),
        );
        check(pattern("ACR122"), &["Virtual PCD 00 00"], None);
    }

    #[test]
    fn patterns_are_bounded() {
        assert_eq!(
            ReaderSelector::from_pattern(None).unwrap(),
            ReaderSelector::FirstContactless
        );
        for refused in ["", "  ", &"x".repeat(READER_NAME_PATTERN_BYTES_MAX + 1)] {
            assert!(matches!(
                ReaderSelector::from_pattern(Some(refused)),
                Err(HardwareError::ReaderNamePattern)
            ));
        }
    }
}
