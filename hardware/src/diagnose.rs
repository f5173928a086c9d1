//! For installers diagnosing a site (`kiosk readers`): the readers pcscd knows, and every card
//! event printed live, like `pcsc_scan` for our cards.

use std::io::Write;
use std::time::Instant;

use pcsc::{Context, ReaderState, Scope, State};

use crate::error::HardwareError;
use crate::event::{CardEvent, event_channel};
use crate::pcsc_reader::{PcscConfig, PcscReader, is_contactless_name, reader_names};
use crate::reader::CardReader;

/// One reader as pcscd sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    pub name: String,
    /// Whether its name says it is contactless: the reader chosen when none is configured.
    pub contactless: bool,
    /// The ATR of the card on it, if any.
    pub card_atr: Option<Vec<u8>>,
}

/// The readers pcscd knows, in its order, with the card on each. Fails with
/// [`HardwareError::ServiceUnavailable`] when pcscd is not running.
pub fn list_readers() -> Result<Vec<ReaderInfo>, HardwareError> {
    let context = Context::establish(Scope::User).map_err(HardwareError::from_pcsc)?;
    let names = reader_names(&context).map_err(HardwareError::from_pcsc)?;
    let mut states = Vec::with_capacity(names.len());
    for name in &names {
        let Ok(c_name) = std::ffi::CString::new(name.as_str()) else {
            continue;
        };
        states.push(ReaderState::new(c_name, State::UNAWARE));
    }
    if states.is_empty() {
        return Ok(Vec::new());
    }
    // UNAWARE asks for the current state at once; a zero timeout never waits.
    match context.get_status_change(std::time::Duration::ZERO, &mut states) {
        Ok(()) | Err(pcsc::Error::Timeout) => {}
        Err(error) => return Err(HardwareError::from_pcsc(error)),
    }
    Ok(states
        .iter()
        .map(|state| {
            let name = state.name().to_string_lossy().into_owned();
            let card_atr = state
                .event_state()
                .contains(State::PRESENT)
                .then(|| state.atr().to_vec());
            ReaderInfo {
                contactless: is_contactless_name(&name),
                name,
                card_atr,
            }
        })
        .collect())
}

/// Writes the readers of [`list_readers`], one a line: the name, whether it is contactless, and
/// the card's ATR in hex.
pub fn print_readers(readers: &[ReaderInfo], out: &mut impl Write) -> Result<(), HardwareError> {
    if readers.is_empty() {
        writeln!(
            out,
            "no reader (is a reader plugged in, and is pcscd running?)"
        )
        .map_err(HardwareError::Output)?;
    }
    for (index, reader) in readers.iter().enumerate() {
        let kind = if reader.contactless {
            "contactless"
        } else {
            "contact or unknown"
        };
        let card = match &reader.card_atr {
            Some(atr) => format!("card ATR {}", hex(atr)),
            None => "no card".to_owned(),
        };
        writeln!(out, "{index}: \"{}\" ({kind}), {card}", reader.name)
            .map_err(HardwareError::Output)?;
    }
    Ok(())
}

/// Watches the reader chosen by `config` and writes each event as a line, prefixed by the
/// seconds since the watch began, until `keep_watching` returns false for an event just written.
/// The kiosk CLI passes `|_| true` and ends with Ctrl-C.
pub fn watch(
    config: PcscConfig,
    out: &mut impl Write,
    mut keep_watching: impl FnMut(&CardEvent) -> bool,
) -> Result<(), HardwareError> {
    let started_at = Instant::now();
    let (events, received) = event_channel();
    let reader = PcscReader::new(config).start(events)?;
    for event in received.iter() {
        let elapsed_ms = started_at.elapsed().as_millis();
        writeln!(
            out,
            "{:>6}.{:03}s {event}",
            elapsed_ms / 1_000,
            elapsed_ms % 1_000
        )
        .map_err(HardwareError::Output)?;
        out.flush().map_err(HardwareError::Output)?;
        if !keep_watching(&event) {
            break;
        }
    }
    drop(received);
    reader.stop()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
