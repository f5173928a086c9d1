//! A virtual contactless card for vsmartcard's vpcd driver inside a real pcscd.
//!
//! vpcd listens on TCP (port [`VPCD_PORT_DEFAULT`] for its first slot); a virtual card is the
//! client. Connecting inserts the card, closing the connection removes it. Every message, both
//! ways, is a 2-byte big-endian length then that many bytes. A 1-byte message from vpcd is a
//! control: 0 power off, 1 power on, 2 reset, 4 "send your ATR" (pcscd asks about every 400 ms to
//! see that the card is still there, so it is answered at any time); anything longer is an APDU
//! to answer. The card answers GET DATA for the UID as a contactless reader would.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::JoinHandle;

use proto::CardUid;

use crate::error::HardwareError;
use crate::limits::{VPCD_MESSAGE_BYTES_MAX, VPCD_PORT_DEFAULT};

/// The ATR a PC/SC contactless reader gives a MIFARE Classic 1K card (PC/SC part 3): the card
/// looks like what the kiosk meets at a canteen.
pub const CONTACTLESS_ATR: [u8; 20] = [
    0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x6A,
];

/// vpcd's first slot on this machine.
pub fn vpcd_address_default() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], VPCD_PORT_DEFAULT))
}

/// How the card answers GET DATA for its UID (`FF CA 00 00 Le`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardAnswer {
    /// The UID and `90 00` for `Le` 0 or the UID's length; `6C xx` for any other `Le`.
    Uid(CardUid),
    /// `6C xx` (use `Le = xx`) until asked with the exact length, as some readers do.
    UidAfterLengthHint(CardUid),
    /// Always this status word, such as `63 00` (failed) or `6A 81` (not supported).
    Status([u8; 2]),
    /// Always these bytes, whatever they are: a card that answers garbage.
    Raw(Vec<u8>),
    /// Leaves the reader when asked: a card pulled away in the middle of the read.
    LeaveWhenAsked,
}

/// A card not yet on a reader.
#[derive(Clone, Debug)]
pub struct VirtualCard {
    answer: CardAnswer,
    atr: Vec<u8>,
}

impl VirtualCard {
    pub fn new(answer: CardAnswer) -> VirtualCard {
        VirtualCard {
            answer,
            atr: CONTACTLESS_ATR.to_vec(),
        }
    }

    /// A card that answers its UID plainly.
    pub fn with_uid(uid: CardUid) -> VirtualCard {
        VirtualCard::new(CardAnswer::Uid(uid))
    }

    /// The same card answering `atr` to reset and presence checks, such as a broken one.
    pub fn with_atr(mut self, atr: &[u8]) -> VirtualCard {
        self.atr = atr.to_vec();
        self
    }

    /// Puts the card on the vpcd slot at `vpcd`; it answers on its own thread until removed.
    pub fn insert(self, vpcd: SocketAddr) -> Result<InsertedCard, HardwareError> {
        let stream = TcpStream::connect(vpcd).map_err(HardwareError::VirtualCard)?;
        // Answers are tiny and pcscd waits for each one: send them at once.
        stream
            .set_nodelay(true)
            .map_err(HardwareError::VirtualCard)?;
        let card_stream = stream.try_clone().map_err(HardwareError::VirtualCard)?;
        let thread = std::thread::Builder::new()
            .name("vpcd-card".to_owned())
            .spawn(move || self.serve(card_stream))
            .map_err(HardwareError::VirtualCard)?;
        Ok(InsertedCard {
            stream,
            thread: Some(thread),
        })
    }

    fn serve(self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut message = [0; VPCD_MESSAGE_BYTES_MAX];
        loop {
            let mut length_bytes = [0; 2];
            ack_at_once(&stream)?;
            match stream.read_exact(&mut length_bytes) {
                Ok(()) => {}
                // vpcd closed the connection (pcscd stopped) or the card was removed.
                Err(error) if error.kind() == ErrorKind::UnexpectedEof => return Ok(()),
                Err(error) => return Err(error),
            }
            let length = usize::from(u16::from_be_bytes(length_bytes));
            let Some(message) = message.get_mut(..length) else {
                return Err(std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!("vpcd message of {length} bytes, over {VPCD_MESSAGE_BYTES_MAX}"),
                ));
            };
            ack_at_once(&stream)?;
            stream.read_exact(message)?;
            match *message {
                [] => {}
                [CONTROL_GET_ATR] => send(&mut stream, &self.atr)?,
                // Power and reset change nothing in a card that only knows its UID; no answer is
                // expected. Unknown controls are ignored like vsmartcard's own cards do.
                [CONTROL_POWER_OFF | CONTROL_POWER_ON | CONTROL_RESET] | [_] => {}
                _ => match self.answer_apdu(message) {
                    Some(answer) => send(&mut stream, &answer)?,
                    None => return stream.shutdown(Shutdown::Both),
                },
            }
        }
    }

    /// The answer to an APDU; `None` to leave the reader instead.
    fn answer_apdu(&self, apdu: &[u8]) -> Option<Vec<u8>> {
        let [0xFF, 0xCA, 0x00, 0x00, expected_length] = *apdu else {
            // Instruction not supported.
            return Some(vec![0x6D, 0x00]);
        };
        let uid_answer = |uid: &CardUid, accept_zero: bool| {
            let uid = uid.as_bytes();
            let uid_length = u8::try_from(uid.len()).unwrap_or(u8::MAX);
            if expected_length == uid_length || (accept_zero && expected_length == 0) {
                let mut answer = uid.to_vec();
                answer.extend([0x90, 0x00]);
                answer
            } else {
                vec![0x6C, uid_length]
            }
        };
        match &self.answer {
            CardAnswer::Uid(uid) => Some(uid_answer(uid, true)),
            CardAnswer::UidAfterLengthHint(uid) => Some(uid_answer(uid, false)),
            CardAnswer::Status(status) => Some(status.to_vec()),
            CardAnswer::Raw(bytes) => Some(bytes.clone()),
            CardAnswer::LeaveWhenAsked => None,
        }
    }
}

/// vpcd's control bytes.
const CONTROL_POWER_OFF: u8 = 0;
const CONTROL_POWER_ON: u8 = 1;
const CONTROL_RESET: u8 = 2;
const CONTROL_GET_ATR: u8 = 4;

/// vpcd writes a message's length and its bytes separately, and Nagle's algorithm holds the
/// second write until the first is acknowledged; a delayed ACK would add ~40 ms to every APDU and
/// every presence check. Linux leaves quick-ACK mode on its own, so it is asked again before each
/// read.
fn ack_at_once(stream: &TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_quickack(true)
}

fn send(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    let length = u16::try_from(bytes.len())
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "vpcd message too long"))?;
    let mut message = Vec::with_capacity(2 + bytes.len());
    message.extend(length.to_be_bytes());
    message.extend(bytes);
    stream.write_all(&message)
}

/// A card on a vpcd slot. Removing it (or dropping it) closes the connection.
#[derive(Debug)]
pub struct InsertedCard {
    stream: TcpStream,
    /// `None` once removed.
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl InsertedCard {
    /// Takes the card away and reports whether it spoke vpcd's protocol without an error.
    pub fn remove(mut self) -> Result<(), HardwareError> {
        // Already closed when the card left by itself or pcscd stopped: nothing to shut.
        let _ = self.stream.shutdown(Shutdown::Both);
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        match thread.join() {
            Ok(served) => served.map_err(HardwareError::VirtualCard),
            Err(_) => Err(HardwareError::ThreadPanicked),
        }
    }
}

impl Drop for InsertedCard {
    fn drop(&mut self) {
        // The card thread holds its own handle on the connection: shut it so the card leaves
        // the reader now, and the thread ends on its own. Nothing to report if it was closed.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
