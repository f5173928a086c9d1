//! Every bound in one place. A value beyond one of these is refused with a typed error, never
//! truncated or wrapped.

use std::ops::RangeInclusive;

/// How long a pupil's result stays on a kiosk's screen: long enough to read, short enough for
/// the queue.
pub const RESULT_DISPLAY_MS: RangeInclusive<u32> = 500..=60_000;

/// How often a kiosk syncs when online: not more than once a second, at least once an hour.
pub const SYNC_INTERVAL_MS: RangeInclusive<u32> = 1_000..=3_600_000;

/// Staff mode's sign-out after inactivity: from 10 seconds to an hour.
pub const STAFF_IDLE_SIGNOUT_MS: RangeInclusive<u32> = 10_000..=3_600_000;

/// Characters in an identifier (device, account, pupil, staff, site, service, meal type, bracket).
pub const ID_CHARS_MAX: usize = 64;

/// Characters in a free-text field of a record or snapshot (names, reasons, references).
pub const TEXT_CHARS_MAX: usize = 200;

/// Bytes of one record's signed payload. A day close with every tariff line is about 10 KiB at
/// most; a meal is about 400 bytes.
pub const PAYLOAD_BYTES_MAX: usize = 16 * 1024;

/// Bytes of one record as JSON (`payload` string plus `signature`). Embedding the payload in a JSON
/// string at most doubles it (every `"` and `\` gains a backslash); 256 bytes cover the rest.
pub const RECORD_JSON_BYTES_MAX: usize = 2 * PAYLOAD_BYTES_MAX + 256;

/// The last `seq` a record may carry: 2^53 - 1, an exact integer in every JSON reader and in a
/// signed 64-bit database column. A kiosk writing a record a second would need 285 million years.
pub const SEQ_MAX: u64 = (1 << 53) - 1;

/// Lines of a day close: one per record category, meal type and bracket.
pub const DAY_CLOSE_LINES_MAX: usize = 256;

/// One top-up at a kiosk: 1,000.00 €. Larger sums go through the back-office.
pub const KIOSK_TOP_UP_CENTS_MAX: i64 = 100_000;

/// The lowest overdraft floor an account may have: -50.00 €.
pub const OVERDRAFT_FLOOR_CENTS_MIN: i64 = -5_000;

/// The highest price of one meal: 100.00 €. A higher price is a data-entry error.
pub const MEAL_PRICE_CENTS_MAX: i64 = 10_000;

/// Records in one upload request.
pub const UPLOAD_BATCH_RECORDS_MAX: usize = 500;

/// Bytes of one upload request body: 4 MiB. A full batch of ordinary records (about 1 KiB each)
/// fits many times over; a kiosk with many day closes in a row splits its batch by bytes too.
pub const UPLOAD_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Accounts in one snapshot (a city of 120 sites has about 50,000).
pub const SNAPSHOT_ACCOUNTS_MAX: usize = 200_000;

/// Pupils in one snapshot.
pub const SNAPSHOT_PUPILS_MAX: usize = 200_000;

/// Cards bound in one snapshot, pupils' and staff's.
pub const SNAPSHOT_CARDS_MAX: usize = 400_000;

/// Blocked card UIDs on the hotlist.
pub const SNAPSHOT_HOTLIST_MAX: usize = 400_000;

/// Staff credentials in one snapshot.
pub const SNAPSHOT_STAFF_MAX: usize = 10_000;

/// Tariff lines (bracket x meal type) in one snapshot.
pub const SNAPSHOT_TARIFFS_MAX: usize = 1_000;

/// Services at one site.
pub const SNAPSHOT_SERVICES_MAX: usize = 32;

/// Dietary flags on one pupil.
pub const DIETARY_FLAGS_MAX: usize = 16;

/// How far a signed request's timestamp may be from the back-office's clock: 5 minutes.
pub const REQUEST_CLOCK_SKEW_MS_MAX: i64 = 5 * 60 * 1000;

/// Characters in a signed request's nonce.
pub const REQUEST_NONCE_CHARS_MAX: usize = 64;
