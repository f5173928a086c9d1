//! Every bound of the back-office in one place, beside `proto::limits` (the bounds both sides
//! share). A value beyond one of these is refused with a clear error, never truncated; waits
//! and pools beyond them give up and answer "try again later".

/// The largest top-up at the back-office counter: 5,000.00 €.
pub const COUNTER_TOP_UP_CENTS_MAX: i64 = 500_000;

/// The largest adjustment either way: 5,000.00 €.
pub const ADJUSTMENT_CENTS_MAX: i64 = 500_000;

/// The largest online payment: 1,000.00 €.
pub const ONLINE_PAYMENT_CENTS_MAX: i64 = 100_000;

/// Records of one kiosk held beyond a gap, waiting for it to be filled. Beyond this the kiosk's
/// later records are refused for now (not acknowledged, so it sends them again).
pub const HELD_RECORDS_PER_DEVICE_MAX: usize = 10 * proto::limits::UPLOAD_BATCH_RECORDS_MAX;

/// Rows of one CSV import: as many pupils as a snapshot may hold.
pub const IMPORT_ROWS_MAX: usize = proto::limits::SNAPSHOT_PUPILS_MAX;

/// Records in one `kiosk export` file brought by hand: about two months of a busy kiosk.
pub const TRANSFER_RECORDS_MAX: usize = 100_000;

/// Bytes of such a file: [`TRANSFER_RECORDS_MAX`] records at most, each at most
/// `proto::limits::RECORD_JSON_BYTES_MAX` in theory but about 1 KiB in practice.
pub const TRANSFER_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Days in one export or journal: a year and a day.
pub const PERIOD_DAYS_MAX: u32 = 366;

/// Lines `verify` reads from one export file: years of a city's records.
pub const VERIFY_LINES_MAX: u64 = 50_000_000;

/// How long after the end of its day a kiosk's record may arrive before the reconciliation
/// calls its upload late.
pub const LATE_UPLOAD_GRACE_MS: i64 = 60 * 60 * 1000;

/// How far the next day not signed off is looked for, for an approved void's correction.
pub const NEXT_OPEN_DAY_SEARCH_DAYS_MAX: u32 = 366;

/// Kiosks a reconciliation reads ahead of the ones being checked, so that the database and the
/// checks work at once without holding a whole city's day in memory.
pub const KIOSKS_READ_AHEAD_MAX: usize = 4;

/// Findings of one kind listed per kiosk and day; beyond, one more says how many were left out.
pub const FINDINGS_PER_KIND_PER_KIOSK_MAX: usize = 1_000;

/// Characters in a password; a longer one is refused rather than hashed for seconds.
pub const PASSWORD_CHARS_MAX: usize = 256;

/// The shortest password a user may have.
pub const PASSWORD_CHARS_MIN: usize = 12;

/// A staff PIN: 4 to 8 digits, typed on the kiosk's keypad.
pub const PIN_DIGITS_MIN: usize = 4;
pub const PIN_DIGITS_MAX: usize = 8;

/// How long a web session lasts: a working day.
pub const SESSION_DURATION_MS: i64 = 10 * 60 * 60 * 1_000;

/// Failed sign-ins under one name from one client address within [`SIGN_IN_LOCK_MS`] after
/// which that name is locked for that address.
pub const SIGN_IN_FAILURES_MAX: u32 = 5;

/// Password checks running at once: each takes Argon2's 19 MiB and a core for a moment, and
/// they share the blocking threads with SQLite.
pub const PASSWORD_CHECKS_IN_FLIGHT_MAX: usize = 4;

/// How long a password check waits for its turn before the answer is "try again later".
pub const PASSWORD_CHECK_WAIT_MS: u64 = 5_000;

/// How long failed sign-ins count against a name.
pub const SIGN_IN_LOCK_MS: i64 = 15 * 60 * 1_000;

/// Characters of the bearer token Prometheus sends for `/metrics`, at the least.
pub const METRICS_TOKEN_CHARS_MIN: usize = 32;

/// A day, for budgets counted over the last one.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1_000;

/// Anomalies kept of one kiosk within a [`DAY_MS`]; beyond, an upload's anomalies are dropped
/// and counted (`canteen_anomalies_dropped_total`, an alert), its records still stored.
pub const ANOMALIES_PER_KIOSK_PER_DAY_MAX: u64 = 1_000;

/// Days an API token lasts at the most: a year and a day, renewed by city IT.
pub const API_TOKEN_DAYS_MAX: i64 = 366;

/// Characters of a search typed by staff.
pub const SEARCH_CHARS_MAX: usize = 64;

/// Pupils a search lists.
pub const SEARCH_RESULTS_MAX: usize = 50;

/// Lines of an account's history on its page.
pub const HISTORY_LINES_MAX: usize = 50;

/// Meals listed on a site's meals page: a large canteen's day.
pub const SITE_MEALS_MAX: usize = 5_000;

/// Days of the finance dashboard's charts.
pub const DASHBOARD_DAYS: i64 = 31;

/// A kiosk not heard from for this long is shown as silent on the fleet page.
pub const KIOSK_SILENT_MS: i64 = 15 * 60 * 1_000;

/// Rows of a CSV import shown before it is confirmed.
pub const IMPORT_PREVIEW_ROWS: usize = 20;

/// How long one request may take before it is answered 503; a kiosk retries later.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;

/// How long a TLS handshake may take before the connection is dropped.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// TLS handshakes in flight at once; more connections wait for their turn.
pub const TLS_HANDSHAKES_MAX: usize = 256;

/// How long a SQLite statement waits for another process's write lock before giving up.
pub const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;

/// How long a request waits for the SQLite connection, which one transaction holds at a time,
/// before answering 503: long enough for a queue of ordinary transactions, short enough that
/// a stuck one shows as an error rather than a hang.
pub const SQLITE_CONNECTION_WAIT_MS: u64 = 10_000;

/// Connections one back-office instance keeps open to PostgreSQL. PostgreSQL's default allows
/// 100 in all; a few instances of 16 leave room for reporting and administration.
pub const POSTGRES_POOL_CONNECTIONS_MAX: usize = 16;

/// How long a request waits for a free connection before answering 503.
pub const POSTGRES_POOL_WAIT_MS: u64 = 5_000;

/// How long a new connection may take.
pub const POSTGRES_CONNECT_TIMEOUT_MS: u64 = 5_000;
