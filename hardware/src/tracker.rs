//! What the kiosk hears about the card on one reader, decided from pcscd's reports alone: one
//! tap per card however long it stays, a removal announced only once the card has stayed away
//! [`REMOVAL_DEBOUNCE_MS`], and every announced card closed by one `CardRemoved`. Kept apart from
//! PC/SC calls so that every sequence can be tested without a reader.

use std::time::{Duration, Instant};

use proto::CardUid;

use crate::event::CardEvent;
use crate::limits::REMOVAL_DEBOUNCE_MS;
use crate::uid::UidReadError;

/// The card on the reader, as the kiosk last heard of it.
#[derive(Clone, Copy, Debug)]
enum CardState {
    Absent,
    /// Announced with `CardPresent` (a UID) or `CardUnreadable` (none). `event_count` is pcscd's
    /// insertion and removal counter when it was read: a new value means another card.
    OnReader {
        uid: Option<CardUid>,
        event_count: u32,
    },
    /// Gone, but `CardRemoved` waits until `deadline` in case the same card comes back.
    Leaving {
        uid: CardUid,
        deadline: Instant,
    },
}

#[derive(Debug)]
pub(crate) struct CardTracker {
    reader: String,
    card: CardState,
}

impl CardTracker {
    pub(crate) fn new(reader: &str) -> CardTracker {
        CardTracker {
            reader: reader.to_owned(),
            card: CardState::Absent,
        }
    }

    pub(crate) fn reader(&self) -> &str {
        &self.reader
    }

    /// pcscd reports a card with insertion counter `event_count`. `read_uid` runs only for a card
    /// not yet read: our own connect and disconnect also wake us, and a held card stays one tap.
    pub(crate) fn card_present(
        &mut self,
        event_count: u32,
        reported_at: Instant,
        read_uid: impl FnOnce() -> Result<CardUid, UidReadError>,
    ) -> Vec<CardEvent> {
        let before = self.card;
        if matches!(before, CardState::OnReader { event_count: known, .. } if known == event_count)
        {
            return Vec::new();
        }
        let read = read_uid();
        let uid = read.ok();
        self.card = CardState::OnReader { uid, event_count };
        let mut events = Vec::new();
        match before {
            // The same card back within the debounce time: still the same tap.
            CardState::Leaving { uid: leaving, .. } if Some(leaving) == uid => return events,
            CardState::Leaving { .. } | CardState::OnReader { .. } => events.push(self.removed()),
            CardState::Absent => {}
        }
        events.push(match read {
            Ok(uid) => CardEvent::CardPresent {
                reader: self.reader.clone(),
                uid,
                reported_at,
            },
            Err(error) => CardEvent::CardUnreadable {
                reader: self.reader.clone(),
                error,
            },
        });
        events
    }

    /// pcscd reports no card at `reported_at`.
    pub(crate) fn card_absent(&mut self, reported_at: Instant) -> Vec<CardEvent> {
        match self.card {
            CardState::OnReader { uid: Some(uid), .. } => {
                self.card = CardState::Leaving {
                    uid,
                    deadline: reported_at + Duration::from_millis(REMOVAL_DEBOUNCE_MS),
                };
                Vec::new()
            }
            // Nothing to debounce without a UID to recognise the card by.
            CardState::OnReader { uid: None, .. } => {
                self.card = CardState::Absent;
                vec![self.removed()]
            }
            CardState::Absent | CardState::Leaving { .. } => Vec::new(),
        }
    }

    /// When a debounced removal is due, if one is waiting.
    pub(crate) fn removal_deadline(&self) -> Option<Instant> {
        match self.card {
            CardState::Leaving { deadline, .. } => Some(deadline),
            CardState::Absent | CardState::OnReader { .. } => None,
        }
    }

    /// Announces a debounced removal whose time has come by `now`.
    pub(crate) fn time_passed(&mut self, now: Instant) -> Vec<CardEvent> {
        match self.removal_deadline() {
            Some(deadline) if now >= deadline => {
                self.card = CardState::Absent;
                vec![self.removed()]
            }
            Some(_) | None => Vec::new(),
        }
    }

    /// The reader went away (unplugged, or pcscd stopped): close what was announced.
    pub(crate) fn reader_lost(self) -> Vec<CardEvent> {
        let mut events = Vec::new();
        match self.card {
            CardState::OnReader { .. } | CardState::Leaving { .. } => events.push(self.removed()),
            CardState::Absent => {}
        }
        events.push(CardEvent::ReaderLost {
            reader: self.reader,
        });
        events
    }

    fn removed(&self) -> CardEvent {
        CardEvent::CardRemoved {
            reader: self.reader.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pcscd reports, at a time in milliseconds from the start of a case.
    #[derive(Clone, Copy)]
    enum Report {
        /// A card with this insertion counter, whose UID read gives this (lowercase hex).
        Present(u64, u32, Result<&'static str, UidReadError>),
        Absent(u64),
        /// Only time passes (the wait for a debounced removal ends).
        Time(u64),
        Lost,
    }
    use Report::{Absent, Lost, Present, Time};

    fn check(reports: &[Report], expected: &[&str]) {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut tracker = Some(CardTracker::new("R"));
        let mut events = Vec::new();
        for report in reports {
            let Some(current) = tracker.as_mut() else {
                panic!("a report after the reader was lost");
            };
            match *report {
                Present(ms, event_count, read) => {
                    let read = || read.map(|hex| CardUid::from_hex(hex).unwrap());
                    events.extend(current.card_present(event_count, at(ms), read));
                }
                Absent(ms) => events.extend(current.card_absent(at(ms))),
                Time(ms) => events.extend(current.time_passed(at(ms))),
                Lost => events.extend(tracker.take().map(CardTracker::reader_lost).unwrap()),
            }
        }
        let events: Vec<String> = events.iter().map(ToString::to_string).collect();
        assert_eq!(events, expected);
    }

    const A: &str = "04a1b2c3";
    const B: &str = "04d4e5f6a7b8c9";

    #[test]
    fn a_tap_is_announced_and_its_removal_debounced() {
        let present_a = "card present 04a1b2c3 on \"R\"";
        let removed = "card removed from \"R\"";
        check(&[Present(0, 1, Ok(A))], &[present_a]);
        check(
            &[Present(0, 1, Ok(A)), Absent(100), Time(399)],
            &[present_a],
        );
        check(
            &[Present(0, 1, Ok(A)), Absent(100), Time(400)],
            &[present_a, removed],
        );
        // Held: our own connects wake us with the same counter, and nothing is read again.
        check(
            &[
                Present(0, 1, Ok(A)),
                Present(10, 1, Err(UidReadError::ReaderFailed)),
                Present(10_000, 1, Err(UidReadError::ReaderFailed)),
            ],
            &[present_a],
        );
    }

    #[test]
    fn a_card_that_flickers_is_one_tap() {
        check(
            &[
                Present(0, 1, Ok(A)),
                Absent(100),
                Present(250, 3, Ok(A)),
                Time(1_000),
                Absent(1_100),
                Time(1_400),
            ],
            &["card present 04a1b2c3 on \"R\"", "card removed from \"R\""],
        );
    }

    #[test]
    fn another_card_closes_the_first() {
        let expected = [
            "card present 04a1b2c3 on \"R\"",
            "card removed from \"R\"",
            "card present 04d4e5f6a7b8c9 on \"R\"",
        ];
        check(
            &[Present(0, 1, Ok(A)), Absent(100), Present(200, 3, Ok(B))],
            &expected,
        );
        // Swapped between two reports: only the counter shows it.
        check(&[Present(0, 1, Ok(A)), Present(50, 3, Ok(B))], &expected);
    }

    #[test]
    fn an_unreadable_card_is_removed_at_once() {
        check(
            &[Present(0, 1, Err(UidReadError::NoAnswer)), Absent(100)],
            &[
                "card unreadable on \"R\": no answer from the card (it may have left the reader)",
                "card removed from \"R\"",
            ],
        );
        // The same card read after a failed read is a new announcement, after a removal.
        check(
            &[
                Present(0, 1, Err(UidReadError::Unresponsive)),
                Present(50, 3, Ok(A)),
            ],
            &[
                "card unreadable on \"R\": the card does not answer",
                "card removed from \"R\"",
                "card present 04a1b2c3 on \"R\"",
            ],
        );
    }

    #[test]
    fn a_lost_reader_closes_its_card() {
        let lost = "reader lost \"R\"";
        check(&[Lost], &[lost]);
        check(
            &[Present(0, 1, Ok(A)), Lost],
            &[
                "card present 04a1b2c3 on \"R\"",
                "card removed from \"R\"",
                lost,
            ],
        );
        check(
            &[Present(0, 1, Ok(A)), Absent(100), Lost],
            &[
                "card present 04a1b2c3 on \"R\"",
                "card removed from \"R\"",
                lost,
            ],
        );
        check(
            &[Present(0, 1, Ok(A)), Absent(100), Time(400), Lost],
            &[
                "card present 04a1b2c3 on \"R\"",
                "card removed from \"R\"",
                lost,
            ],
        );
    }
}
