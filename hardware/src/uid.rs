//! Reading a contactless card's UID with the PC/SC GET DATA command (PC/SC part 3, 3.2.2.1.3):
//! `FF CA 00 00 Le`, answered by the reader itself with the UID and `90 00`.

use proto::CardUid;

/// Why a card's UID could not be read. Sent to the kiosk in
/// [`crate::CardEvent::CardUnreadable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UidReadError {
    #[error("the card left the reader during the read")]
    RemovedDuringRead,
    #[error("the card does not answer")]
    Unresponsive,
    #[error("the reader could not read the card (status 63 00)")]
    ReaderFailed,
    #[error("the reader cannot read a UID from this card (status 6A 81)")]
    NotSupported,
    /// What vpcd passes on when the card left in the middle of a command.
    #[error("no answer from the card (it may have left the reader)")]
    NoAnswer,
    #[error("an answer of {length} bytes has no status word")]
    NoStatusWord { length: usize },
    #[error("unexpected status {sw1:02x} {sw2:02x}")]
    UnexpectedStatus { sw1: u8, sw2: u8 },
    #[error("a UID of {length} bytes (expected 4, 7 or 10)")]
    UidLength { length: usize },
    #[error("the card asked for another length on every attempt")]
    LengthNotSettled,
    #[error("PC/SC: {0}")]
    Pcsc(pcsc::Error),
}

impl UidReadError {
    /// Names the PC/SC errors that mean something about the card rather than the system.
    pub(crate) fn from_pcsc(error: pcsc::Error) -> UidReadError {
        match error {
            pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard | pcsc::Error::ResetCard => {
                UidReadError::RemovedDuringRead
            }
            pcsc::Error::UnresponsiveCard | pcsc::Error::UnpoweredCard => {
                UidReadError::Unresponsive
            }
            other => UidReadError::Pcsc(other),
        }
    }
}

/// What a GET DATA answer asks of us next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetDataAnswer {
    /// The UID, read.
    Uid(CardUid),
    /// `6C xx`: the command must be sent again with `Le = xx`, the exact UID length.
    RetryWithLength(u8),
}

/// The GET DATA command for the UID. `Le = 00` asks for the whole UID whatever its length.
pub fn get_uid_command(expected_length: u8) -> [u8; 5] {
    [0xFF, 0xCA, 0x00, 0x00, expected_length]
}

/// Interprets a GET DATA answer: the data bytes followed by a two-byte status word.
pub fn parse_get_uid_answer(answer: &[u8]) -> Result<GetDataAnswer, UidReadError> {
    if answer.is_empty() {
        return Err(UidReadError::NoAnswer);
    }
    let Some((data, status)) = answer.split_last_chunk::<2>() else {
        return Err(UidReadError::NoStatusWord {
            length: answer.len(),
        });
    };
    match *status {
        [0x90, 0x00] => CardUid::parse(data)
            .map(GetDataAnswer::Uid)
            .map_err(|_| UidReadError::UidLength { length: data.len() }),
        // Le = 00 would ask for everything again: a 6C 00 is a card that does not know its length.
        [0x6C, 0x00] => Err(UidReadError::UnexpectedStatus {
            sw1: 0x6C,
            sw2: 0x00,
        }),
        [0x6C, length] => Ok(GetDataAnswer::RetryWithLength(length)),
        [0x63, 0x00] => Err(UidReadError::ReaderFailed),
        [0x6A, 0x81] => Err(UidReadError::NotSupported),
        [sw1, sw2] => Err(UidReadError::UnexpectedStatus { sw1, sw2 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(answer: &[u8], expected: Result<GetDataAnswer, UidReadError>) {
        assert_eq!(
            parse_get_uid_answer(answer),
            expected,
            "answer {answer:02x?}"
        );
    }

    fn uid(bytes: &[u8]) -> Result<GetDataAnswer, UidReadError> {
        Ok(GetDataAnswer::Uid(CardUid::parse(bytes).unwrap()))
    }

    #[test]
    fn answers_are_interpreted() {
        check(&[1, 2, 3, 4, 0x90, 0x00], uid(&[1, 2, 3, 4]));
        check(
            &[1, 2, 3, 4, 5, 6, 7, 0x90, 0x00],
            uid(&[1, 2, 3, 4, 5, 6, 7]),
        );
        check(
            &[9; 12],
            Err(UidReadError::UnexpectedStatus { sw1: 9, sw2: 9 }),
        );
        let mut ten = vec![0xAB; 10];
        ten.extend([0x90, 0x00]);
        check(&ten, uid(&[0xAB; 10]));
        check(&[0x6C, 0x07], Ok(GetDataAnswer::RetryWithLength(7)));
        check(
            &[0x6C, 0x00],
            Err(UidReadError::UnexpectedStatus {
                sw1: 0x6C,
                sw2: 0x00,
            }),
        );
        check(&[0x63, 0x00], Err(UidReadError::ReaderFailed));
        check(&[0x6A, 0x81], Err(UidReadError::NotSupported));
        check(
            &[0x6D, 0x00],
            Err(UidReadError::UnexpectedStatus {
                sw1: 0x6D,
                sw2: 0x00,
            }),
        );
    }

    #[test]
    fn garbage_is_refused() {
        check(&[], Err(UidReadError::NoAnswer));
        check(&[0x90], Err(UidReadError::NoStatusWord { length: 1 }));
        check(&[0x90, 0x00], Err(UidReadError::UidLength { length: 0 }));
        check(
            &[1, 2, 3, 0x90, 0x00],
            Err(UidReadError::UidLength { length: 3 }),
        );
        check(
            &[1, 2, 3, 4, 5, 0x90, 0x00],
            Err(UidReadError::UidLength { length: 5 }),
        );
        check(
            &[0xEE; 11],
            Err(UidReadError::UnexpectedStatus {
                sw1: 0xEE,
                sw2: 0xEE,
            }),
        );
    }

    #[test]
    fn command_carries_the_expected_length() {
        assert_eq!(get_uid_command(0), [0xFF, 0xCA, 0x00, 0x00, 0x00]);
        assert_eq!(get_uid_command(7), [0xFF, 0xCA, 0x00, 0x00, 0x07]);
    }
}
