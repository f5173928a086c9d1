//! Every bound of the kiosk in one place: queues, batches, sizes, timeouts, backoffs, intervals
//! and thresholds, each with the reason for its value. The bounds of what a kiosk and the
//! back-office say to each other are `proto::limits`'.

// The engine and its worker.

/// Jobs waiting for the engine. Taps arrive a few per second at most; a full queue means the
/// engine is stuck, and a tap is answered "out of service" rather than queued forever.
pub const ENGINE_JOBS_MAX: usize = 64;

/// Updates waiting for the UI thread: a few screens' worth. A full queue slows the engine (it
/// waits to hand over what it decided) rather than losing an answer.
pub const UI_UPDATES_MAX: usize = 256;

/// Wrong PINs in a row before a staff card is locked.
pub const STAFF_PIN_ATTEMPTS_MAX: u32 = 5;

/// How long a staff card stays locked after too many wrong PINs: 15 minutes.
pub const STAFF_LOCKOUT_MS: i64 = 15 * 60 * 1000;

/// A clock step backwards larger than this between two records is recorded as a clock change:
/// NTP's own corrections stay well below a second.
pub const CLOCK_BACKWARDS_TOLERANCE_MS: i64 = 1_000;

/// Pupils returned by one name search: more than a staff screen lists, few enough to read.
pub const PUPIL_SEARCH_RESULTS_MAX: usize = 20;

// The ledger.

/// Commits between two background WAL checkpoints (a tap writes two or three pages).
pub const CHECKPOINT_EVERY_COMMITS: u32 = 150;

/// Checkpoint requests waiting for the checkpoint thread: one, since a request while one is
/// pending adds nothing.
pub const CHECKPOINT_REQUESTS_MAX: usize = 1;

/// Checkpoint passes run for one request while the writer keeps appending.
pub const CHECKPOINT_PASSES_MAX: usize = 4;

/// WAL frames (pages) past which a checkpoint holds the writer off for its last pass, so the WAL
/// restarts from its start: about 400 taps. Below it the WAL restarts at the first pause.
pub const WAL_RESTART_FRAMES: i64 = 1_024;

/// Bytes of WAL file kept after a checkpoint (`journal_size_limit`), so it does not keep the
/// size of its largest burst for ever.
pub const WAL_KEPT_BYTES_MAX: i64 = 64 * 1024 * 1024;

/// SQLite's page cache for the ledger connection, in KiB: the hot index pages of a year of
/// records.
pub const LEDGER_CACHE_KIB: i64 = 32 * 1024;

/// Bytes of the ledger file read through a memory map: a year of records is a few hundred MB.
pub const LEDGER_MMAP_BYTES_MAX: i64 = 1024 * 1024 * 1024;

/// How long a writer waits for a reader's lock before giving up.
pub const LEDGER_BUSY_TIMEOUT_MS: u64 = 5_000;

/// Records read into memory at once from the ledger: a few MB.
pub const RECORDS_PAGE_MAX: usize = 10_000;

// The touchscreen and the text mode.

/// How long a pupil-facing result stays when the snapshot has no setting yet.
pub const RESULT_DISPLAY_MS_DEFAULT: u64 = 2_000;

/// Digits in an amount typed on the keypad (up to 9 999 999,99 €, far beyond any bound).
pub const AMOUNT_DIGITS_MAX: usize = 9;

/// Digits of a staff PIN.
pub const PIN_DIGITS_MAX: usize = 8;

/// Pupils or records listed on a staff screen: what fits without scrolling.
pub const LIST_ROWS_MAX: usize = 8;

/// How long the text mode still prints updates after the input ended before it asks for the
/// last state: the reader may still be handing over the last taps typed.
pub const TEXT_SETTLE_MS: u64 = 1_000;

/// How long the text mode waits for the engine's last answers once the reader's input ended.
pub const TEXT_DRAIN_WAIT_MS_MAX: u64 = 10_000;

/// How often the ready screen's clock and the service state are refreshed: the clock shows
/// minutes, so nothing would change more often. Each refresh falls just after a minute starts.
pub const CLOCK_REFRESH_MS: u64 = 60_000;

/// How long after a minute starts its refresh comes, so that a timer firing a little early
/// still shows the new minute.
pub const CLOCK_REFRESH_LATE_MS: u64 = 20;

// The runtime.

/// Async workers of the kiosk's runtime. The async work is small (one sync client, the
/// watchdog, the stop signals) and nothing on the tap path waits for it; two workers, one per
/// core of a kiosk, keep the watchdog and the text mode answering while the sync parses a large
/// snapshot on the other.
pub const RUNTIME_WORKER_THREADS: usize = 2;

/// Threads for blocking tasks: the engine and the reader bridge hold one each for the kiosk's
/// life; the rest serve short blocking calls (name resolution for the sync).
pub const RUNTIME_BLOCKING_THREADS_MAX: usize = 8;

// The sync.

/// Time between two syncs before a snapshot says otherwise.
pub const SYNC_INTERVAL_MS_DEFAULT: u64 = 30_000;

/// The shortest interval honoured, so a misconfigured kiosk cannot flood the back-office.
pub const SYNC_INTERVAL_MS_MIN: u64 = 100;

/// How far the kiosk's clock may be from the back-office's before staff are warned: a minute,
/// well inside the 5 minutes a signed request may be off
/// ([`proto::limits::REQUEST_CLOCK_SKEW_MS_MAX`]).
pub const CLOCK_DRIFT_MS_MAX_DEFAULT: i64 = 60_000;

/// Days without a successful sync before staff are warned.
pub const OFFLINE_DAYS_MAX_DEFAULT: u32 = 3;

/// Failed syncs in a row before the kiosk counts itself offline and writes `offline_start`: one
/// dropped connection on a VPN is not an outage.
pub const FAILED_SYNCS_BEFORE_OFFLINE: u32 = 3;

/// The first retry after a failure; each further failure doubles it.
pub const BACKOFF_MS_FIRST: u64 = 1_000;

/// The longest wait between two attempts.
pub const BACKOFF_MS_MAX: u64 = 5 * 60 * 1_000;

/// Doublings of [`BACKOFF_MS_FIRST`] counted at most: 2^20 s is far past [`BACKOFF_MS_MAX`], and
/// the shift stays in range whatever the number of failures.
pub const BACKOFF_DOUBLINGS_MAX: u32 = 20;

/// Upload batches in one sync, so a kiosk with a long backlog still pulls snapshots between them.
pub const UPLOAD_BATCHES_PER_SYNC_MAX: usize = 40;

/// Bytes an upload keeps for its report and JSON framing beside the records.
pub const UPLOAD_FRAMING_BYTES: usize = 4 * 1024;

/// Bytes a record takes in an upload beside its escaped payload and its signature: the JSON
/// object's keys, quotes and comma (`{"payload":"","signature":""},` is 30).
pub const UPLOAD_RECORD_FRAMING_BYTES: usize = 32;

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// How long one request may take, answer included: a full snapshot of a large site is tens of MB.
pub const REQUEST_TIMEOUT_MS: u64 = 60_000;

/// Bytes of a snapshot answer; a full snapshot at every limit of `proto::limits` stays below.
pub const SNAPSHOT_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Bytes of any other answer (an upload's acknowledgement, an error).
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// Random bytes in a signed request's nonce: 128 bits, which no two requests share by chance.
pub const NONCE_BYTES: usize = 16;

// systemd.

/// Bytes of one notification: systemd reads a datagram of at most a page or so; ours are short.
pub const NOTIFY_MESSAGE_BYTES_MAX: usize = 1024;

/// Pings per watchdog timeout: systemd's documentation asks for one every half of it; a third
/// leaves room for a heartbeat that waited behind a slow tap.
pub const PINGS_PER_TIMEOUT: u32 = 3;

/// The shortest watchdog period honoured; a smaller `$WATCHDOG_USEC` is a configuration error
/// that would only make the kiosk spin.
pub const WATCHDOG_PERIOD_MS_MIN: u64 = 10;

// Files.

/// Bytes of a configuration file read at start; a larger one is not ours.
pub const CONFIG_BYTES_MAX: u64 = 64 * 1024;

/// Bytes of a snapshot file read by `kiosk apply-snapshot`: a city's 50,000 accounts fit in a few
/// MB.
pub const SNAPSHOT_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;
