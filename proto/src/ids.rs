//! Identifiers, sequence numbers, card UIDs, dates and timestamps. Each type can only hold a valid
//! value: constructors parse, and serde goes through the same parsers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::limits::{ID_CHARS_MAX, TEXT_CHARS_MAX};

/// A value did not parse as the domain type it was meant to be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{what}: empty")]
    Empty { what: &'static str },
    #[error("{what}: longer than {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("{what}: character {found:?} not allowed (letters, digits, '-', '_', '.')")]
    BadCharacter { what: &'static str, found: char },
    #[error("{what}: must start with a letter or digit")]
    BadStart { what: &'static str },
    #[error("card uid: {found} bytes, expected 4, 7 or 10")]
    CardUidLength { found: usize },
    #[error("{what}: not lowercase hexadecimal")]
    NotHex { what: &'static str },
    #[error("sequence numbers start at 1")]
    SeqZero,
    #[error("sequence number {found} is above the maximum {max}", max = crate::limits::SEQ_MAX)]
    SeqTooLarge { found: u64 },
    #[error("service date: expected YYYY-MM-DD")]
    ServiceDate,
    #[error("timestamp: expected RFC 3339 UTC with milliseconds, like 2026-11-29T11:45:03.120Z")]
    Timestamp,
    #[error("text: empty or only spaces")]
    TextEmpty,
    #[error("text: begins or ends with spaces")]
    TextPadded,
    #[error("text: longer than {max} characters")]
    TextTooLong { max: usize },
    #[error("text: control characters are not allowed")]
    TextControl,
    #[error("{what}: {found} is outside {min} to {max}")]
    OutOfRange {
        what: &'static str,
        found: u64,
        min: u64,
        max: u64,
    },
}

/// Deserializes a string through `parse`, reading it in place when the input allows: no copy is
/// made before the value is parsed.
pub(crate) fn deserialize_str_with<'de, D, T, E>(
    deserializer: D,
    parse: fn(&str) -> Result<T, E>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    E: fmt::Display,
{
    struct Parsed<T, E>(fn(&str) -> Result<T, E>);

    impl<T, E: fmt::Display> serde::de::Visitor<'_> for Parsed<T, E> {
        type Value = T;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a string")
        }

        fn visit_str<Error: serde::de::Error>(self, text: &str) -> Result<T, Error> {
            (self.0)(text).map_err(Error::custom)
        }
    }

    deserializer.deserialize_str(Parsed(parse))
}

/// Writes `$type` as its text (its `Display`) and reads it back with `$parse`, which accepts
/// only that one spelling; `$schema` describes that spelling in the OpenAPI document.
macro_rules! serde_as_text {
    ($type:ident, $parse:path, $schema:path) => {
        schema_from!($type, $schema);

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<$type, D::Error> {
                $crate::ids::deserialize_str_with(deserializer, $parse)
            }
        }
    };
}
pub(crate) use serde_as_text;

/// Free text in a record or snapshot (a first name, a reason, a cheque number): 1 to
/// [`TEXT_CHARS_MAX`] characters, not only spaces, no control characters, no leading or trailing
/// spaces.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(String);

impl Text {
    pub fn parse(text: &str) -> Result<Text, ParseError> {
        if text.trim().is_empty() {
            return Err(ParseError::TextEmpty);
        }
        if text.trim() != text {
            return Err(ParseError::TextPadded);
        }
        if text.chars().count() > TEXT_CHARS_MAX {
            return Err(ParseError::TextTooLong {
                max: TEXT_CHARS_MAX,
            });
        }
        if text.chars().any(char::is_control) {
            return Err(ParseError::TextControl);
        }
        Ok(Text(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        deserialize_str_with(deserializer, Text::parse)
    }
}

schema_from!(Text, crate::openapi::text);

/// The version of the back-office's data a snapshot reflects; it rises with every change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct SnapshotVersion(pub u64);

impl fmt::Display for SnapshotVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// 1 to [`ID_CHARS_MAX`] ASCII letters, digits, `-`, `_` or `.`, starting with a letter
        /// or digit, so an id is safe in a file name, a URL path and a CSV cell.
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<$name, ParseError> {
                parse_id($what, text).map(|()| $name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(text: &str) -> Result<$name, ParseError> {
                $name::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                deserialize_str_with(deserializer, $name::parse)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::id($what)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

fn parse_id(what: &'static str, text: &str) -> Result<(), ParseError> {
    let Some(first) = text.chars().next() else {
        return Err(ParseError::Empty { what });
    };
    if text.len() > ID_CHARS_MAX {
        return Err(ParseError::TooLong {
            what,
            max: ID_CHARS_MAX,
        });
    }
    if let Some(found) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(ParseError::BadCharacter { what, found });
    }
    if !first.is_ascii_alphanumeric() {
        return Err(ParseError::BadStart { what });
    }
    Ok(())
}

id_type!(
    /// A kiosk. Each key pair gets its own id: a reinstalled kiosk is a new device.
    DeviceId,
    "device id"
);
id_type!(
    /// A family's prepaid account.
    AccountId,
    "account id"
);
id_type!(
    /// A child on an account.
    PupilId,
    "pupil id"
);
id_type!(
    /// A member of canteen staff who can sign in on a kiosk.
    StaffId,
    "staff id"
);
id_type!(
    /// A school canteen.
    SiteId,
    "site id"
);
id_type!(
    /// A meal window at a site, such as `lunch`.
    ServiceId,
    "service id"
);
id_type!(
    /// A type of meal priced by the tariff, such as `lunch` or `breakfast`.
    MealType,
    "meal type"
);
id_type!(
    /// A tariff bracket ("quotient familial" band), such as `q3`.
    BracketId,
    "tariff bracket"
);

/// The UID of a contactless card: 4, 7 or 10 bytes (ISO/IEC 14443-3 single, double and triple
/// size). Written as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardUid {
    bytes: [u8; 10],
    len: u8,
}

impl CardUid {
    pub fn parse(bytes: &[u8]) -> Result<CardUid, ParseError> {
        let len = match bytes.len() {
            4 => 4,
            7 => 7,
            10 => 10,
            found => return Err(ParseError::CardUidLength { found }),
        };
        let mut uid = CardUid {
            bytes: [0; 10],
            len,
        };
        uid.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(uid)
    }

    /// Parses lowercase hex, as written by [`CardUid::fmt`]; readers of printed UIDs that use
    /// uppercase can lowercase first.
    pub fn from_hex(text: &str) -> Result<CardUid, ParseError> {
        let bytes = decode_hex("card uid", text)?;
        CardUid::parse(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for CardUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_hex(self.as_bytes()))
    }
}

impl fmt::Debug for CardUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardUid({self})")
    }
}

serde_as_text!(CardUid, CardUid::from_hex, crate::openapi::card_uid);

/// The position of a record in its kiosk's chain, from 1 to [`Seq::MAX`]. Parsing refuses
/// anything else; the one value beyond, [`Seq::PAST_END`], only [`Seq::next`] makes: the head of a
/// full chain, where nothing more can be signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Seq(u64);

impl Seq {
    pub const FIRST: Seq = Seq(1);

    /// The last position a record may take ([`crate::limits::SEQ_MAX`]).
    pub const MAX: Seq = Seq(crate::limits::SEQ_MAX);

    /// The position after [`Seq::MAX`]: a chain's head once it is full.
    pub const PAST_END: Seq = Seq(crate::limits::SEQ_MAX + 1);

    pub fn new(seq: u64) -> Result<Seq, ParseError> {
        if seq == 0 {
            return Err(ParseError::SeqZero);
        }
        if seq > crate::limits::SEQ_MAX {
            return Err(ParseError::SeqTooLarge { found: seq });
        }
        Ok(Seq(seq))
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The following position, at most [`Seq::PAST_END`]: it never overflows, whatever the input.
    pub fn next(self) -> Seq {
        if self >= Seq::MAX {
            return Seq::PAST_END;
        }
        Seq(self.0 + 1)
    }

    /// The preceding sequence number, if any.
    pub fn previous(self) -> Option<Seq> {
        (self.0 > 1).then(|| Seq(self.0 - 1))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Seq, D::Error> {
        Seq::new(u64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

schema_from!(Seq, crate::openapi::seq);

const SERVICE_DATE_FORMAT: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// The calendar day a service belongs to, in the site's local time: `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceDate(Date);

impl ServiceDate {
    pub fn parse(text: &str) -> Result<ServiceDate, ParseError> {
        // Only the canonical four-digit year form: it sorts and compares as text too.
        if text.len() != 10 {
            return Err(ParseError::ServiceDate);
        }
        Date::parse(text, SERVICE_DATE_FORMAT)
            .map(ServiceDate)
            .map_err(|_| ParseError::ServiceDate)
    }

    pub const fn from_date(date: Date) -> ServiceDate {
        ServiceDate(date)
    }

    pub const fn date(self) -> Date {
        self.0
    }
}

impl fmt::Display for ServiceDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = (self.0.year(), u8::from(self.0.month()), self.0.day());
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

serde_as_text!(
    ServiceDate,
    ServiceDate::parse,
    crate::openapi::service_date
);

/// An instant in UTC with millisecond precision, written in one RFC 3339 form only:
/// `2026-11-29T11:45:03.120Z`. Years 0000 to 9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

const TIMESTAMP_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

impl Timestamp {
    /// The instant `unix_ms` milliseconds after 1970-01-01T00:00:00Z, if it is a four-digit year.
    pub fn from_unix_ms(unix_ms: i64) -> Result<Timestamp, ParseError> {
        let nanos = i128::from(unix_ms) * 1_000_000;
        let instant =
            OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| ParseError::Timestamp)?;
        if !(0..=9999).contains(&instant.year()) {
            return Err(ParseError::Timestamp);
        }
        Ok(Timestamp(instant))
    }

    pub fn unix_ms(self) -> i64 {
        let millis = self.0.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis).expect("a four-digit year fits in i64 milliseconds")
    }

    pub fn parse(text: &str) -> Result<Timestamp, ParseError> {
        if let Some(fields) = timestamp_fields(text) {
            return Timestamp::from_fields(fields);
        }
        let instant = time::PrimitiveDateTime::parse(text, TIMESTAMP_FORMAT)
            .map_err(|_| ParseError::Timestamp)?
            .assume_offset(UtcOffset::UTC);
        let timestamp = Timestamp(instant);
        // One spelling per instant: reject forms the parser tolerates but we never write.
        if timestamp.to_string() != text {
            return Err(ParseError::Timestamp);
        }
        Ok(timestamp)
    }

    pub fn date_utc(self) -> Date {
        self.0.date()
    }

    /// The instant of the fields of the one written form, if they name one.
    fn from_fields(fields: [u16; 7]) -> Result<Timestamp, ParseError> {
        let [year, month, day, hour, minute, second, milli] = fields;
        let month = u8::try_from(month)
            .ok()
            .and_then(|month| time::Month::try_from(month).ok())
            .ok_or(ParseError::Timestamp)?;
        let small = |value: u16| u8::try_from(value).map_err(|_| ParseError::Timestamp);
        let date = Date::from_calendar_date(i32::from(year), month, small(day)?)
            .map_err(|_| ParseError::Timestamp)?;
        let time = time::Time::from_hms_milli(small(hour)?, small(minute)?, small(second)?, milli)
            .map_err(|_| ParseError::Timestamp)?;
        Ok(Timestamp(
            time::PrimitiveDateTime::new(date, time).assume_offset(UtcOffset::UTC),
        ))
    }

    /// The written form, when the year has four digits (always, for a timestamp made by
    /// [`Timestamp::from_unix_ms`] or by the fast path of [`Timestamp::parse`]).
    fn to_ascii(self) -> Option<[u8; TIMESTAMP_BYTES]> {
        let year = u16::try_from(self.0.year())
            .ok()
            .filter(|year| *year <= 9999)?;
        let fields = [
            (year, 4),
            (u16::from(u8::from(self.0.month())), 2),
            (u16::from(self.0.day()), 2),
            (u16::from(self.0.hour()), 2),
            (u16::from(self.0.minute()), 2),
            (u16::from(self.0.second()), 2),
            (self.0.millisecond(), 3),
        ];
        let mut text = *b"0000-00-00T00:00:00.000Z";
        for ((value, width), start) in fields.into_iter().zip(TIMESTAMP_FIELD_STARTS) {
            let mut value = value;
            for index in (start..start + width).rev() {
                text[index] = b'0' + u8::try_from(value % 10).unwrap_or(0);
                value /= 10;
            }
        }
        Some(text)
    }
}

/// Bytes of a timestamp's written form, `2026-11-29T11:45:03.120Z`.
const TIMESTAMP_BYTES: usize = 24;

/// Where each field of the written form starts: year, month, day, hour, minute, second,
/// milliseconds.
const TIMESTAMP_FIELD_STARTS: [usize; 7] = [0, 5, 8, 11, 14, 17, 20];

/// The numeric fields of `text` if it has exactly the shape of the written form (digits where
/// digits go, the separators where they go), not yet checked as a date and time.
fn timestamp_fields(text: &str) -> Option<[u16; 7]> {
    let bytes: &[u8; TIMESTAMP_BYTES] = text.as_bytes().try_into().ok()?;
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ];
    if separators
        .iter()
        .any(|(index, byte)| bytes[*index] != *byte)
    {
        return None;
    }
    let widths = [4, 2, 2, 2, 2, 2, 3];
    let mut fields = [0_u16; 7];
    for ((field, start), width) in fields.iter_mut().zip(TIMESTAMP_FIELD_STARTS).zip(widths) {
        for byte in &bytes[start..start + width] {
            if !byte.is_ascii_digit() {
                return None;
            }
            *field = *field * 10 + u16::from(byte - b'0');
        }
    }
    Some(fields)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.to_ascii() {
            return f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
        }
        let text = self.0.format(TIMESTAMP_FORMAT).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

serde_as_text!(Timestamp, Timestamp::parse, crate::openapi::timestamp);

pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Decodes lowercase hex only, so every value has exactly one spelling.
pub(crate) fn decode_hex(what: &'static str, text: &str) -> Result<Vec<u8>, ParseError> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        }
    }
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(ParseError::NotHex { what });
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(ParseError::NotHex { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse` accepts `text`, or refuses it with `expected`'s error.
    fn check_parse<T>(
        parse: fn(&str) -> Result<T, ParseError>,
        text: &str,
        expected: Result<(), ParseError>,
    ) {
        assert_eq!(parse(text).map(|_| ()), expected, "{text:?}");
    }

    #[test]
    fn ids() {
        let check = |text: &str, expected| check_parse(AccountId::parse, text, expected);
        check("A-00123", Ok(()));
        check("lycee.victor_hugo-2", Ok(()));
        check(&"a".repeat(ID_CHARS_MAX), Ok(()));
        check("", Err(ParseError::Empty { what: "account id" }));
        check(
            &"a".repeat(ID_CHARS_MAX + 1),
            Err(ParseError::TooLong {
                what: "account id",
                max: ID_CHARS_MAX,
            }),
        );
        check("-a", Err(ParseError::BadStart { what: "account id" }));
        check(
            "a b",
            Err(ParseError::BadCharacter {
                what: "account id",
                found: ' ',
            }),
        );
        check(
            "a'; DROP TABLE x;--",
            Err(ParseError::BadCharacter {
                what: "account id",
                found: '\'',
            }),
        );
        check(
            "é",
            Err(ParseError::BadCharacter {
                what: "account id",
                found: 'é',
            }),
        );
        assert!(serde_json::from_str::<PupilId>("\"a/b\"").is_err());
        assert!(serde_json::from_str::<PupilId>("12").is_err());
    }

    #[test]
    fn card_uids() {
        fn check(hex: &str, expected: Result<&str, ParseError>) {
            let parsed = CardUid::from_hex(hex).map(|uid| uid.to_string());
            assert_eq!(parsed.as_deref().map_err(Clone::clone), expected, "{hex:?}");
        }
        check("04a1b2c3", Ok("04a1b2c3"));
        check("04a1b2c3d4e5f6", Ok("04a1b2c3d4e5f6"));
        check("04a1b2c3d4e5f6078899", Ok("04a1b2c3d4e5f6078899"));
        check("04a1b2", Err(ParseError::CardUidLength { found: 3 }));
        check("04a1b2c3d4", Err(ParseError::CardUidLength { found: 5 }));
        check("04A1B2C3", Err(ParseError::NotHex { what: "card uid" }));
        check("04a1b2c", Err(ParseError::NotHex { what: "card uid" }));
        check("zz", Err(ParseError::NotHex { what: "card uid" }));
        assert_eq!(
            CardUid::parse(&[1, 2, 3, 4]).unwrap().as_bytes(),
            &[1, 2, 3, 4]
        );
        assert_eq!(
            CardUid::parse(&[]),
            Err(ParseError::CardUidLength { found: 0 })
        );
        // Trailing zero bytes are part of the identity: a 7-byte UID is not a padded 4-byte one.
        assert_ne!(
            CardUid::parse(&[1, 2, 3, 4]).unwrap(),
            CardUid::parse(&[1, 2, 3, 4, 0, 0, 0]).unwrap()
        );
    }

    #[test]
    fn seqs() {
        assert_eq!(Seq::new(0), Err(ParseError::SeqZero));
        assert_eq!(Seq::new(crate::limits::SEQ_MAX), Ok(Seq::MAX));
        assert_eq!(
            Seq::new(crate::limits::SEQ_MAX + 1),
            Err(ParseError::SeqTooLarge {
                found: crate::limits::SEQ_MAX + 1
            })
        );
        assert_eq!(
            Seq::new(u64::MAX),
            Err(ParseError::SeqTooLarge { found: u64::MAX })
        );
        assert_eq!(Seq::MAX.next(), Seq::PAST_END);
        assert_eq!(Seq::PAST_END.next(), Seq::PAST_END);
        assert_eq!(Seq::PAST_END.previous(), Some(Seq::MAX));
        assert!(serde_json::from_str::<Seq>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<Seq>("9007199254740992").is_err());
        assert_eq!(
            serde_json::from_str::<Seq>("9007199254740991").unwrap(),
            Seq::MAX
        );
        assert_eq!(Seq::FIRST.next().get(), 2);
        assert_eq!(Seq::FIRST.previous(), None);
        assert_eq!(Seq::new(5).unwrap().previous(), Some(Seq::new(4).unwrap()));
        assert!(serde_json::from_str::<Seq>("0").is_err());
        assert!(serde_json::from_str::<Seq>("-1").is_err());
        assert!(serde_json::from_str::<Seq>("1.0").is_err());
    }

    /// `text` parses with `parse` exactly when `ok`, and then writes back as itself.
    fn check_round_trip<T: fmt::Display, E>(parse: fn(&str) -> Result<T, E>, text: &str, ok: bool) {
        let parsed = parse(text);
        assert_eq!(parsed.is_ok(), ok, "{text:?}");
        if let Ok(parsed) = parsed {
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn service_dates() {
        let check = |text, ok| check_round_trip(ServiceDate::parse, text, ok);
        check("2026-11-29", true);
        check("2028-02-29", true);
        check("2026-02-29", false);
        check("2026-13-01", false);
        check("2026-1-01", false);
        check("+2026-11-29", false);
        check("2026-11-29T00:00:00Z", false);
    }

    #[test]
    fn timestamps() {
        let check = |text, ok| check_round_trip(Timestamp::parse, text, ok);
        check("2026-11-29T11:45:03.120Z", true);
        check("1970-01-01T00:00:00.000Z", true);
        check("2026-11-29T11:45:03Z", false);
        check("2026-11-29T11:45:03.12Z", false);
        check("2026-11-29T11:45:03.120+00:00", false);
        check("2026-11-29T11:45:03.120+01:00", false);
        check("2026-11-29t11:45:03.120z", false);
        check("2026-11-29T25:45:03.120Z", false);
        // The fixed-shape fast path still judges the values as a calendar does.
        check("2028-02-29T23:59:59.999Z", true);
        check("2026-02-29T12:00:00.000Z", false);
        check("2026-04-31T12:00:00.000Z", false);
        check("2026-00-10T12:00:00.000Z", false);
        check("2026-13-10T12:00:00.000Z", false);
        check("2026-11-29T24:00:00.000Z", false);
        check("2026-11-29T11:60:03.120Z", false);
        check("2026-11-29T11:45:60.120Z", false);
        check("0000-01-01T00:00:00.000Z", true);
        check("9999-12-31T23:59:59.999Z", true);
        check("2026-11-29T11:45:0x.120Z", false);
        check("+026-11-29T11:45:03.120Z", false);
        check("2026-11-29 11:45:03.120Z", false);
        // Every instant of a day, minute by minute, written and read back.
        for minute in 0..24 * 60 {
            let at = Timestamp::from_unix_ms(1_795_910_400_000 + minute * 60_123).unwrap();
            assert_eq!(Timestamp::parse(&at.to_string()), Ok(at));
            let general = time::PrimitiveDateTime::parse(&at.to_string(), TIMESTAMP_FORMAT)
                .unwrap()
                .assume_offset(UtcOffset::UTC);
            assert_eq!(at, Timestamp(general));
        }
        let at = Timestamp::from_unix_ms(1_795_952_703_120).unwrap();
        assert_eq!(at.to_string(), "2026-11-29T11:45:03.120Z");
        assert_eq!(at.unix_ms(), 1_795_952_703_120);
        assert!(Timestamp::from_unix_ms(i64::MAX).is_err());
        assert!(Timestamp::from_unix_ms(-1).is_ok());
        assert!(Timestamp::from_unix_ms(-62_167_219_200_001).is_err());
    }

    #[test]
    fn texts() {
        let check = |text: &str, expected| check_parse(Text::parse, text, expected);
        check("Chloé", Ok(()));
        check("chèque n° 0012345", Ok(()));
        check(&"é".repeat(TEXT_CHARS_MAX), Ok(()));
        check("", Err(ParseError::TextEmpty));
        check("   ", Err(ParseError::TextEmpty));
        check(" Chloé", Err(ParseError::TextPadded));
        check("Chloé ", Err(ParseError::TextPadded));
        check(
            &"é".repeat(TEXT_CHARS_MAX + 1),
            Err(ParseError::TextTooLong {
                max: TEXT_CHARS_MAX,
            }),
        );
        check(r"a\nb", Ok(()));
        check("a\nb", Err(ParseError::TextControl));
        check("a\u{0}b", Err(ParseError::TextControl));
    }

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_hex("x", &encode_hex(&bytes)).unwrap(), bytes);
    }
}
