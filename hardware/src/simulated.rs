//! A simulated reader for the demo and the engine's tests: taps come from a script, a channel or
//! keys, and become the same [`CardEvent`]s a real reader sends.

use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use proto::CardUid;

use crate::error::HardwareError;
use crate::event::CardEvent;
use crate::limits::{EVENT_CHANNEL_CAPACITY, SIMULATED_HOLD_MS_DEFAULT, SIMULATED_WAIT_MS_MAX};
use crate::reader::{CardReader, ReaderHandle, StopSignal};
use crate::uid::UidReadError;

/// One thing that happens at the simulated reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimulatedInput {
    /// A card placed on the reader and taken away after `hold_ms`.
    Tap { uid: CardUid, hold_ms: u64 },
    /// A card whose UID cannot be read, taken away after `hold_ms`.
    UnreadableTap { hold_ms: u64 },
    /// The reader unplugged and plugged back after `away_ms`.
    Unplug { away_ms: u64 },
    /// Nothing happens for `pause_ms` (pacing a script).
    Pause { pause_ms: u64 },
}

impl SimulatedInput {
    /// Parses one script line: `tap UID [HOLD_MS]`, `unreadable [HOLD_MS]`, `unplug AWAY_MS` or
    /// `pause MS`, where UID is lowercase hex. `None` for a blank line or a `#` comment.
    pub fn parse_line(line: &str) -> Result<Option<SimulatedInput>, String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let input = match words.as_slice() {
            ["tap", uid] | ["tap", uid, _] => SimulatedInput::Tap {
                uid: CardUid::from_hex(uid).map_err(|error| error.to_string())?,
                hold_ms: parse_ms(words.get(2))?,
            },
            ["unreadable"] | ["unreadable", _] => SimulatedInput::UnreadableTap {
                hold_ms: parse_ms(words.get(1))?,
            },
            ["unplug", away_ms] => SimulatedInput::Unplug {
                away_ms: parse_ms(Some(away_ms))?,
            },
            ["pause", pause_ms] => SimulatedInput::Pause {
                pause_ms: parse_ms(Some(pause_ms))?,
            },
            _ => {
                return Err(format!(
                    "expected `tap UID [HOLD_MS]`, `unreadable [HOLD_MS]`, `unplug MS` or \
                     `pause MS`, found `{line}`"
                ));
            }
        };
        Ok(Some(input))
    }

    /// Parses a whole script, naming the first bad line.
    pub fn parse_script(script: &str) -> Result<Vec<SimulatedInput>, HardwareError> {
        let mut inputs = Vec::new();
        for (index, line) in script.lines().enumerate() {
            let parsed =
                SimulatedInput::parse_line(line).map_err(|reason| HardwareError::Script {
                    line: index + 1,
                    reason,
                })?;
            inputs.extend(parsed);
        }
        Ok(inputs)
    }
}

fn parse_ms(word: Option<&&str>) -> Result<u64, String> {
    let Some(word) = word else {
        return Ok(SIMULATED_HOLD_MS_DEFAULT);
    };
    match word.parse::<u64>() {
        Ok(ms) if ms <= SIMULATED_WAIT_MS_MAX => Ok(ms),
        _ => Err(format!(
            "`{word}`: expected milliseconds up to {SIMULATED_WAIT_MS_MAX}"
        )),
    }
}

/// Where the simulated reader's inputs come from.
#[derive(Debug)]
enum Source {
    Script(Vec<SimulatedInput>),
    Channel(Receiver<Feed>),
}

/// What travels on a simulated reader's input channel: an input, or the handle waking the
/// thread to stop.
#[derive(Debug)]
enum Feed {
    Input(SimulatedInput),
    Stop,
}

/// A reader that needs no hardware. Its name appears in its events like a real reader's.
#[derive(Debug)]
pub struct SimulatedReader {
    name: String,
    source: Source,
    /// Kept so that stopping can wake a thread waiting for the next input.
    feed: Option<SyncSender<Feed>>,
}

/// Sends inputs to a simulated reader made by [`SimulatedReader::channel`].
#[derive(Clone, Debug)]
pub struct SimulatedTaps {
    feed: SyncSender<Feed>,
}

impl SimulatedTaps {
    /// Sends an input; `false` if the reader has stopped.
    pub fn send(&self, input: SimulatedInput) -> bool {
        self.feed.send(Feed::Input(input)).is_ok()
    }

    /// A tap of `uid` held for `hold_ms`.
    pub fn tap(&self, uid: CardUid, hold_ms: u64) -> bool {
        self.send(SimulatedInput::Tap { uid, hold_ms })
    }
}

impl SimulatedReader {
    /// A reader that plays `inputs` once, in order, then stays attached and idle.
    pub fn from_script(name: &str, inputs: Vec<SimulatedInput>) -> SimulatedReader {
        SimulatedReader {
            name: name.to_owned(),
            source: Source::Script(inputs),
            feed: None,
        }
    }

    /// A reader fed through the returned [`SimulatedTaps`], for engine tests. The input queue is
    /// bounded like the event queue.
    pub fn channel(name: &str) -> (SimulatedTaps, SimulatedReader) {
        let (feed, inputs) = sync_channel(EVENT_CHANNEL_CAPACITY);
        let reader = SimulatedReader {
            name: name.to_owned(),
            source: Source::Channel(inputs),
            feed: Some(feed.clone()),
        };
        (SimulatedTaps { feed }, reader)
    }

    /// A reader for a demo at a keyboard: each key of `keys` typed on a line of `lines` taps its
    /// card (held [`SIMULATED_HOLD_MS_DEFAULT`]); other keys do nothing, like unmapped keys on a
    /// real keyboard. Reading `lines` happens on its own thread, which ends with the input.
    pub fn from_keys(
        name: &str,
        lines: impl BufRead + Send + 'static,
        keys: Vec<(char, CardUid)>,
    ) -> Result<SimulatedReader, HardwareError> {
        let (taps, reader) = SimulatedReader::channel(name);
        std::thread::Builder::new()
            .name("simulated-keys".to_owned())
            .spawn(move || {
                for line in lines.lines() {
                    let Ok(line) = line else {
                        return;
                    };
                    for typed in line.chars() {
                        let card = keys.iter().find(|(key, _)| *key == typed);
                        if let Some((_, uid)) = card
                            && !taps.tap(*uid, SIMULATED_HOLD_MS_DEFAULT)
                        {
                            return;
                        }
                    }
                }
            })
            .map_err(HardwareError::ThreadStart)?;
        Ok(reader)
    }
}

impl CardReader for SimulatedReader {
    fn start(self, events: SyncSender<CardEvent>) -> Result<ReaderHandle, HardwareError> {
        let stop = Arc::new(StopSignal::default());
        let thread_stop = Arc::clone(&stop);
        let name = self.name;
        let source = self.source;
        let thread = std::thread::Builder::new()
            .name("simulated-reader".to_owned())
            .spawn(move || {
                let player = Player {
                    reader: name,
                    events,
                    stop: thread_stop,
                };
                // Ends when stopped or when the kiosk dropped the receiver.
                let _ = player.play(source);
            })
            .map_err(HardwareError::ThreadStart)?;
        let feed = std::sync::Mutex::new(self.feed);
        let interrupt = move || {
            let feed = feed.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(feed) = feed.as_ref() {
                // A full queue or a stopped thread: the stop flag is seen at the next input.
                let _ = feed.try_send(Feed::Stop);
            }
        };
        Ok(ReaderHandle::new(thread, stop, Box::new(interrupt)))
    }
}

/// The simulated reader's thread.
struct Player {
    reader: String,
    events: SyncSender<CardEvent>,
    stop: Arc<StopSignal>,
}

/// The thread should end: stopped, or nobody listens any more.
struct Ended;

impl Player {
    fn play(&self, source: Source) -> Result<(), Ended> {
        self.send(CardEvent::ReaderAttached {
            reader: self.reader.clone(),
        })?;
        match source {
            Source::Script(inputs) => {
                for input in inputs {
                    self.act(input)?;
                }
                // A played script leaves an idle reader, like a real one with no card.
                while !self
                    .stop
                    .sleep(Duration::from_millis(SIMULATED_WAIT_MS_MAX))
                {}
                Ok(())
            }
            Source::Channel(inputs) => loop {
                match inputs.recv() {
                    Ok(Feed::Input(input)) => self.act(input)?,
                    Ok(Feed::Stop) | Err(_) => return Err(Ended),
                }
            },
        }
    }

    fn act(&self, input: SimulatedInput) -> Result<(), Ended> {
        let reader = self.reader.clone();
        match input {
            SimulatedInput::Tap { uid, hold_ms } => self.between(
                CardEvent::CardPresent {
                    reader: reader.clone(),
                    uid,
                    reported_at: Instant::now(),
                },
                hold_ms,
                CardEvent::CardRemoved { reader },
            ),
            SimulatedInput::UnreadableTap { hold_ms } => self.between(
                CardEvent::CardUnreadable {
                    reader: reader.clone(),
                    error: UidReadError::ReaderFailed,
                },
                hold_ms,
                CardEvent::CardRemoved { reader },
            ),
            SimulatedInput::Unplug { away_ms } => self.between(
                CardEvent::ReaderLost {
                    reader: reader.clone(),
                },
                away_ms,
                CardEvent::ReaderAttached { reader },
            ),
            SimulatedInput::Pause { pause_ms } => self.wait(pause_ms),
        }
    }

    /// Sends `first`, waits `wait_ms`, then sends `then`: a card held, a reader unplugged.
    fn between(&self, first: CardEvent, wait_ms: u64, then: CardEvent) -> Result<(), Ended> {
        self.send(first)?;
        self.wait(wait_ms)?;
        self.send(then)
    }

    fn wait(&self, ms: u64) -> Result<(), Ended> {
        if self.stop.sleep(Duration::from_millis(ms)) {
            return Err(Ended);
        }
        Ok(())
    }

    fn send(&self, event: CardEvent) -> Result<(), Ended> {
        if self.stop.is_raised() {
            return Err(Ended);
        }
        self.events.send(event).map_err(|_| Ended)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::Receiver;

    use super::*;
    use crate::event::event_channel;

    const READER: &str = "Simulated";
    /// How long a test waits for an event its simulated reader sends at once.
    const EVENT_WAIT_MS: u64 = 5_000;

    fn uid(hex: &str) -> CardUid {
        CardUid::from_hex(hex).unwrap()
    }

    fn check_line(line: &str, expected: Result<Option<SimulatedInput>, ()>) {
        assert_eq!(
            SimulatedInput::parse_line(line).map_err(|_| ()),
            expected,
            "line {line:?}"
        );
    }

    #[test]
    fn script_lines_parse() {
        let tap = |hex: &str, hold_ms| {
            Ok(Some(SimulatedInput::Tap {
                uid: uid(hex),
                hold_ms,
            }))
        };
        check_line("tap 04a1b2c3", tap("04a1b2c3", SIMULATED_HOLD_MS_DEFAULT));
        check_line("  tap 04a1b2c3d4e5f6 2000 ", tap("04a1b2c3d4e5f6", 2_000));
        check_line(
            "unreadable",
            Ok(Some(SimulatedInput::UnreadableTap {
                hold_ms: SIMULATED_HOLD_MS_DEFAULT,
            })),
        );
        check_line(
            "unplug 1500",
            Ok(Some(SimulatedInput::Unplug { away_ms: 1_500 })),
        );
        check_line("pause 0", Ok(Some(SimulatedInput::Pause { pause_ms: 0 })));
        check_line("", Ok(None));
        check_line("# a comment", Ok(None));
    }

    #[test]
    fn bad_script_lines_are_refused() {
        for line in [
            "tap",
            "tap 04a1b2",
            "tap 04A1B2C3",
            "tap 04a1b2c3 -5",
            "tap 04a1b2c3 600001",
            "tap 04a1b2c3 10 extra",
            "pause",
            "unplug soon",
            "swipe 04a1b2c3",
        ] {
            check_line(line, Err(()));
        }
        let refused = SimulatedInput::parse_script("tap 04a1b2c3\n\nbounce\n");
        assert!(
            matches!(refused, Err(HardwareError::Script { line: 3, .. })),
            "{refused:?}"
        );
    }

    /// `reader` started, with the channel its events arrive on.
    fn started(reader: SimulatedReader) -> (ReaderHandle, Receiver<CardEvent>) {
        let (sender, events) = event_channel();
        (reader.start(sender).unwrap(), events)
    }

    /// The next events, without the moment taps were reported.
    fn check_events(events: &Receiver<CardEvent>, expected: &[&str]) {
        for expected in expected {
            let event = events
                .recv_timeout(Duration::from_millis(EVENT_WAIT_MS))
                .unwrap();
            assert_eq!(event.to_string(), *expected);
        }
    }

    #[test]
    fn a_script_plays_in_order() {
        let script = "tap 04a1b2c3 10\nunreadable 10\nunplug 10\npause 10\ntap 04a1b2c3d4e5f6 0";
        let reader =
            SimulatedReader::from_script(READER, SimulatedInput::parse_script(script).unwrap());
        let (handle, events) = started(reader);
        check_events(
            &events,
            &[
                "reader attached \"Simulated\"",
                "card present 04a1b2c3 on \"Simulated\"",
                "card removed from \"Simulated\"",
                "card unreadable on \"Simulated\": the reader could not read the card (status 63 00)",
                "card removed from \"Simulated\"",
                "reader lost \"Simulated\"",
                "reader attached \"Simulated\"",
                "card present 04a1b2c3d4e5f6 on \"Simulated\"",
                "card removed from \"Simulated\"",
            ],
        );
        handle.stop().unwrap();
        assert!(events.recv().is_err(), "nothing after the script");
    }

    #[test]
    fn taps_sent_on_the_channel_become_events_until_stopped() {
        let (taps, reader) = SimulatedReader::channel(READER);
        let (handle, events) = started(reader);
        assert!(taps.tap(uid("04a1b2c3"), 0));
        check_events(
            &events,
            &[
                "reader attached \"Simulated\"",
                "card present 04a1b2c3 on \"Simulated\"",
                "card removed from \"Simulated\"",
            ],
        );
        handle.stop().unwrap();
        assert!(
            !taps.tap(uid("04a1b2c3"), 0),
            "a stopped reader takes no taps"
        );
    }

    #[test]
    fn keys_tap_their_cards() {
        let typed = std::io::Cursor::new("1x\n2\n");
        let keys = vec![('1', uid("04000001")), ('2', uid("04000002"))];
        let reader = SimulatedReader::from_keys(READER, typed, keys).unwrap();
        let (handle, events) = started(reader);
        check_events(
            &events,
            &[
                "reader attached \"Simulated\"",
                "card present 04000001 on \"Simulated\"",
                "card removed from \"Simulated\"",
                "card present 04000002 on \"Simulated\"",
                "card removed from \"Simulated\"",
            ],
        );
        handle.stop().unwrap();
    }
}
