//! The sync client: in the background, uploads the records the back-office has not acknowledged,
//! pulls the snapshot's changes, measures the kiosk's clock against the back-office's, and tells
//! staff how it goes.
//!
//! Tasks: the sync is one task of the kiosk's tokio runtime ([`spawn`]); it reads the ledger
//! through its own read-only connection ([`Ledger::open_reader`]) and hands everything that writes
//! (acknowledgements, snapshots, audit records) to the engine as jobs ([`EngineAccess`]), never
//! waiting on the tap path and never holding the engine while the network answers. A tap therefore waits for the network never, and for the sync only while a
//! snapshot it already received is applied in one transaction.
//!
//! Retries back off exponentially with jitter ([`backoff_ms`]), from [`BACKOFF_MS_FIRST`] up to
//! [`BACKOFF_MS_MAX`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::api::{
    ApiError, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, KioskReport,
    ReaderState, RequestToSign, UploadRequest, UploadResponse,
};
use proto::limits::{UPLOAD_BATCH_RECORDS_MAX, UPLOAD_BODY_BYTES_MAX};
use proto::snapshot::Snapshot;
use proto::{DeviceId, Seq, SignedRecord, SigningKey, SnapshotVersion, Text, Timestamp};
use ring::rand::SecureRandom as _;

use crate::clock::{Clock, record_time};
use crate::config::{ConfigError, DataDir, KioskConfig};
use crate::engine::{Engine, EngineError};
use crate::ledger::{Ledger, LedgerError};
use crate::limits::{
    BACKOFF_DOUBLINGS_MAX, BACKOFF_MS_FIRST, BACKOFF_MS_MAX, CLOCK_DRIFT_MS_MAX_DEFAULT,
    CONNECT_TIMEOUT_MS, FAILED_SYNCS_BEFORE_OFFLINE, NONCE_BYTES, OFFLINE_DAYS_MAX_DEFAULT,
    REQUEST_TIMEOUT_MS, RESPONSE_BYTES_MAX, SNAPSHOT_BYTES_MAX, SYNC_INTERVAL_MS_DEFAULT,
    SYNC_INTERVAL_MS_MIN, UPLOAD_BATCHES_PER_SYNC_MAX, UPLOAD_FRAMING_BYTES,
    UPLOAD_RECORD_FRAMING_BYTES,
};

/// Milliseconds in a day, for the offline bound.
const DAY_MS: i64 = 24 * 60 * 60 * 1_000;

/// The back-office's kiosk endpoints, relative to its base URL.
const RECORDS_PATH: &str = "api/v1/kiosk/records";
const SNAPSHOT_PATH: &str = "api/v1/kiosk/snapshot";

/// Why a sync did not complete. Every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("back-office URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("back-office unreachable: {0}")]
    Network(String),
    #[error("back-office answered {status}: {message}")]
    Refused {
        status: u16,
        message: String,
        /// The API's error body, when it sent one.
        error: Option<ApiError>,
    },
    #[error("back-office answer larger than {max} bytes")]
    AnswerTooLarge { max: usize },
    #[error("back-office answer unreadable: {0}")]
    BadAnswer(String),
    #[error("the back-office acknowledged record {0}, which this kiosk has not written")]
    AcknowledgedUnknown(Seq),
    #[error("the engine's queue is full")]
    EngineBusy,
    #[error("the engine stopped")]
    EngineStopped,
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("random source failed")]
    Random,
}

/// Something staff should act on; shown on the status line until it clears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncWarning {
    /// The kiosk's clock is this far from the back-office's (kiosk minus back-office).
    ClockDrift { drift_ms: i64 },
    /// No successful sync for this many whole days.
    OfflineTooLong { days: i64 },
    /// The back-office refused some of this kiosk's records (kept aside as evidence).
    RecordsQuarantined { count: u32 },
}

/// What the sync tells the staff status line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The last sync succeeded.
    pub online: bool,
    pub last_sync: Option<Timestamp>,
    /// The last sync in the site's local time, as staff read it ("14:05", or "28/11 14:05" on
    /// another day); "—" before the first.
    pub last_sync_shown: String,
    pub unsynced_records: u64,
    pub warnings: Vec<SyncWarning>,
    /// Why the last attempt failed, for `kiosk status` and logs.
    pub last_error: Option<String>,
}

/// A job for the engine that answers its caller itself.
pub type EngineJob = Box<dyn FnOnce(&mut Engine) + Send>;

/// How the sync reaches the engine and the screen.
pub trait EngineAccess: Send + Sync + 'static {
    /// Queues `job` on the engine without waiting; false when the queue is full or the
    /// engine stopped.
    fn queue(&self, job: EngineJob) -> bool;
    /// Shows the sync's state to staff.
    fn publish(&self, state: &SyncState);
    /// Whether the card reader works, for the report the back-office keeps.
    fn reader_state(&self) -> ReaderState;

    /// Runs `job` on the engine and awaits its result, holding nothing the engine needs
    /// meanwhile. The job is queued at once, not when the answer is first awaited.
    fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> impl Future<Output = Result<T, SyncError>> + Send {
        let (done, result) = tokio::sync::oneshot::channel();
        let queued = self.queue(Box::new(move |engine| {
            let _ = done.send(job(engine));
        }));
        async move {
            if !queued {
                return Err(SyncError::EngineBusy);
            }
            result.await.map_err(|_| SyncError::EngineStopped)
        }
    }
}

/// What the sync needs to know, from `kiosk.toml` or a test.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub backoffice_url: String,
    pub ca_file: Option<PathBuf>,
    /// Overrides the snapshot's interval.
    pub interval_ms: Option<u64>,
    pub clock_drift_ms_max: i64,
    pub offline_days_max: u32,
    pub time_zone: jiff::tz::TimeZone,
}

impl SyncOptions {
    /// The sync of a configured kiosk; none when it has no back-office URL.
    pub fn from_config(config: &KioskConfig) -> Result<Option<SyncOptions>, ConfigError> {
        let Some(url) = &config.backoffice_url else {
            return Ok(None);
        };
        let time_zone = jiff::tz::TimeZone::get(&config.time_zone)
            .map_err(|_| ConfigError::TimeZone(config.time_zone.clone()))?;
        Ok(Some(SyncOptions {
            backoffice_url: url.clone(),
            ca_file: config.sync.ca_file.clone(),
            interval_ms: config.sync.interval_ms,
            clock_drift_ms_max: config
                .sync
                .clock_drift_ms_max
                .unwrap_or(CLOCK_DRIFT_MS_MAX_DEFAULT),
            offline_days_max: config
                .sync
                .offline_days_max
                .unwrap_or(OFFLINE_DAYS_MAX_DEFAULT),
            time_zone,
        }))
    }
}

/// An HTTP client for the back-office: HTTP/1.1, bounded timeouts, and, when `ca_file` is set,
/// that CA as the only trusted root (rustls on `ring`).
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, SyncError> {
    let mut builder = reqwest::Client::builder()
        .http1_only()
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .user_agent(concat!("canteen-kiosk/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let ca_error = |reason: String| SyncError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|error| ca_error(error.to_string()))?;
        let config = proto::tls::client_trusting(&pem).map_err(ca_error)?;
        builder = builder.use_preconfigured_tls(config);
    }
    builder
        .build()
        .map_err(|error| SyncError::Client(error.to_string()))
}

/// The wait before attempt number `failures + 1` after `failures` failures in a row: doubling
/// from [`BACKOFF_MS_FIRST`] up to [`BACKOFF_MS_MAX`], then "equal jitter" (between half and all
/// of it, by `random` in 0..=u16::MAX) so kiosks that lost the VPN together do not return
/// together.
pub fn backoff_ms(failures: u32, random: u16) -> u64 {
    let exponent = failures.saturating_sub(1).min(BACKOFF_DOUBLINGS_MAX);
    let ceiling = BACKOFF_MS_FIRST
        .saturating_mul(1_u64 << exponent)
        .min(BACKOFF_MS_MAX);
    let half = ceiling / 2;
    half + half * u64::from(random) / u64::from(u16::MAX)
}

/// The first records of `records` that fit one upload: at most [`UPLOAD_BATCH_RECORDS_MAX`]
/// records and [`UPLOAD_BODY_BYTES_MAX`] bytes, and at least one.
pub fn fit_batch(mut records: Vec<SignedRecord>) -> Vec<SignedRecord> {
    let budget = UPLOAD_BODY_BYTES_MAX - UPLOAD_FRAMING_BYTES;
    let mut bytes = 0;
    let mut count = 0;
    for record in records.iter().take(UPLOAD_BATCH_RECORDS_MAX) {
        // Escaping the payload in a JSON string at most doubles it.
        let size = 2 * record.payload.len() + record.signature.len() + UPLOAD_RECORD_FRAMING_BYTES;
        if count > 0 && bytes + size > budget {
            break;
        }
        bytes += size;
        count += 1;
    }
    records.truncate(count);
    records
}

/// Kiosk time minus back-office time, from a request sent at `sent` and answered at `received`
/// (kiosk clock): the back-office's time is taken as the middle of the exchange.
pub fn clock_drift_ms(sent: Timestamp, received: Timestamp, backoffice: Timestamp) -> i64 {
    let middle = sent.unix_ms() + (received.unix_ms() - sent.unix_ms()) / 2;
    middle - backoffice.unix_ms()
}

/// The background sync of one kiosk.
pub struct SyncClient<E> {
    http: reqwest::Client,
    /// The back-office's base URL, ending in `/`.
    base: reqwest::Url,
    device: DeviceId,
    key: SigningKey,
    /// A std `Mutex` around the read-only connection: held for a read, never across an await.
    reader: Mutex<Ledger>,
    engine: Arc<E>,
    clock: Arc<dyn Clock + Sync>,
    options: SyncOptions,
    random: ring::rand::SystemRandom,
    state: SyncState,
    /// What the back-office said it holds, when it said it: a back-office restored from a backup
    /// may hold less than the ledger's acknowledgement, and is then sent the rest again.
    backoffice_acknowledged: Option<Option<Seq>>,
    /// The next snapshot request asks for everything (a delta failed to apply).
    need_full_snapshot: bool,
    failures: u32,
    first_failure_at: Option<Timestamp>,
    offline_since: Option<Timestamp>,
    /// The drift last recorded: one `clock_drift` record per episode, not one per sync.
    drift_recorded: bool,
    /// Kiosk minus back-office, applied to request timestamps once the drift is beyond the
    /// bound, so a kiosk with a wrong clock can still sync (and be told).
    signing_offset_ms: i64,
}

impl<E> std::fmt::Debug for SyncClient<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient")
            .field("base", &self.base.as_str())
            .field("device", &self.device)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<E: EngineAccess> SyncClient<E> {
    pub fn new(
        options: SyncOptions,
        device: DeviceId,
        key: SigningKey,
        ledger_path: &Path,
        engine: Arc<E>,
        clock: Arc<dyn Clock + Sync>,
    ) -> Result<SyncClient<E>, SyncError> {
        let url_error = |reason: String| SyncError::Url {
            url: options.backoffice_url.clone(),
            reason,
        };
        let mut base = reqwest::Url::parse(&options.backoffice_url)
            .map_err(|error| url_error(error.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(url_error("only http and https".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = http_client(options.ca_file.as_deref())?;
        let reader = Ledger::open_reader(ledger_path)?;
        let mut client = SyncClient {
            http,
            base,
            device,
            key,
            reader: Mutex::new(reader),
            engine,
            clock,
            options,
            random: ring::rand::SystemRandom::new(),
            state: SyncState::default(),
            backoffice_acknowledged: None,
            need_full_snapshot: false,
            failures: 0,
            first_failure_at: None,
            offline_since: None,
            drift_recorded: false,
            signing_offset_ms: 0,
        };
        // Until the first sync, the last one known is the last snapshot applied.
        client.state.last_sync = client
            .read(|ledger| ledger.snapshot_state())?
            .map(|s| s.applied_at);
        client.refresh_shown()?;
        Ok(client)
    }

    /// The sync of the kiosk in `data`; none when it has no back-office URL.
    pub fn from_data_dir(
        data: &DataDir,
        engine: Arc<E>,
        clock: Arc<dyn Clock + Sync>,
    ) -> Result<Option<SyncClient<E>>, SyncError> {
        let config = data.load_config()?;
        let Some(options) = SyncOptions::from_config(&config)? else {
            return Ok(None);
        };
        let key = data.load_key()?;
        SyncClient::new(
            options,
            config.device,
            key,
            &data.ledger_path(),
            engine,
            clock,
        )
        .map(Some)
    }

    pub fn state(&self) -> &SyncState {
        &self.state
    }

    /// One sync: uploads, then the snapshot's changes; updates and publishes the state.
    pub async fn sync_once(&mut self) -> Result<(), SyncError> {
        let result = self.exchange().await;
        let now = record_time(self.now());
        match &result {
            Ok(()) => {
                self.failures = 0;
                self.first_failure_at = None;
                self.state.online = true;
                self.state.last_sync = Some(now);
                self.state.last_error = None;
                if let Some(since) = self.offline_since.take() {
                    // Best effort: a kiosk that cannot write an audit record is out of
                    // service anyway, and the next tap says so.
                    let _ = self
                        .engine
                        .call(move |engine| engine.note_offline_end(since))
                        .await;
                }
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                self.first_failure_at.get_or_insert(now);
                self.state.online = false;
                self.state.last_error = Some(error.to_string());
                if self.failures >= FAILED_SYNCS_BEFORE_OFFLINE && self.offline_since.is_none() {
                    let last_sync = self.state.last_sync;
                    if let Ok(Ok(())) = self
                        .engine
                        .call(move |engine| engine.note_offline_start(last_sync))
                        .await
                    {
                        self.offline_since = self.first_failure_at;
                    }
                }
            }
        }
        self.check_offline_days(now);
        if let Err(error) = self.refresh_shown() {
            self.state.last_error = Some(error.to_string());
        }
        self.engine.publish(&self.state);
        result
    }

    /// Syncs for as long as the task runs: every interval after a success, with backoff after a
    /// failure. [`SyncHandle::stop`] ends it, at any await.
    pub async fn run(mut self) {
        loop {
            let delay_ms = match self.sync_once().await {
                Ok(()) => self.interval_ms(),
                Err(_) => {
                    let mut bytes = [0_u8; 2];
                    let random = self
                        .random
                        .fill(&mut bytes)
                        .map_or(u16::MAX, |()| u16::from_le_bytes(bytes));
                    backoff_ms(self.failures, random)
                }
            };
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
    }

    /// The interval: the configuration's, else the snapshot's, else the default.
    pub fn interval_ms(&self) -> u64 {
        let from_snapshot = self
            .read(|ledger| ledger.snapshot_state())
            .ok()
            .flatten()
            .map(|state| u64::from(state.settings.sync_interval_ms));
        self.options
            .interval_ms
            .or(from_snapshot)
            .unwrap_or(SYNC_INTERVAL_MS_DEFAULT)
            .max(SYNC_INTERVAL_MS_MIN)
    }

    async fn exchange(&mut self) -> Result<(), SyncError> {
        self.upload().await?;
        if self.pull_snapshot().await? {
            // Applying wrote a `snapshot_applied` record: send it now, so a kiosk that synced
            // has nothing left to send. The delta it causes changes nothing and is not applied.
            self.upload().await?;
        }
        Ok(())
    }

    /// Uploads what the back-office lacks, batch by batch; at least one request, which carries
    /// the report and brings back the back-office's clock.
    async fn upload(&mut self) -> Result<(), SyncError> {
        for _ in 0..UPLOAD_BATCHES_PER_SYNC_MAX {
            let counts = self.read(|ledger| ledger.counts())?;
            let held = self
                .backoffice_acknowledged
                .unwrap_or(counts.acknowledged_seq);
            let from = held.map_or(Seq::FIRST, Seq::next);
            let last = counts.last_seq;
            let records = match last {
                Some(last) if last >= from => {
                    let to = Seq::new(from.get() + (UPLOAD_BATCH_RECORDS_MAX as u64) - 1)
                        .map_err(|error| SyncError::BadAnswer(error.to_string()))?;
                    fit_batch(self.read(|ledger| ledger.records(from, Some(to)))?)
                }
                _ => Vec::new(),
            };
            let sent_through = records
                .len()
                .checked_sub(1)
                .map(|last_index| Seq::new(from.get() + last_index as u64))
                .transpose()
                .map_err(|error| SyncError::BadAnswer(error.to_string()))?;
            let unsynced_after = last.map_or(0, |last| {
                last.get()
                    .saturating_sub(sent_through.map_or(from.get() - 1, Seq::get))
            });
            let response = self.post_records(records, counts.unsynced_records).await?;
            if response.quarantined > 0 {
                self.warn(SyncWarning::RecordsQuarantined {
                    count: response.quarantined,
                });
            }
            self.backoffice_acknowledged = Some(response.acknowledged);
            if let Some(acknowledged) = response.acknowledged
                && counts
                    .acknowledged_seq
                    .is_none_or(|known| acknowledged > known)
            {
                if last.is_none_or(|last| acknowledged > last) {
                    return Err(SyncError::AcknowledgedUnknown(acknowledged));
                }
                self.engine
                    .call(move |engine| engine.record_acknowledged(acknowledged))
                    .await??;
            }
            let progressed =
                sent_through.is_some() && response.acknowledged.is_some_and(|ack| ack >= from);
            if unsynced_after == 0 || !progressed {
                // Everything sent, or the back-office holds this batch aside (beyond a gap,
                // quarantined): sending it again now would change nothing.
                return Ok(());
            }
        }
        Ok(())
    }

    async fn post_records(
        &mut self,
        records: Vec<SignedRecord>,
        unsynced_records: u64,
    ) -> Result<UploadResponse, SyncError> {
        let snapshot_version = self
            .read(|ledger| ledger.snapshot_state())?
            .map(|state| state.version);
        let request = UploadRequest {
            records,
            status: KioskReport {
                software_version: Text::parse(env!("CARGO_PKG_VERSION"))
                    .map_err(|error| SyncError::Client(error.to_string()))?,
                reader: self.engine.reader_state(),
                unsynced_records,
                kiosk_time: record_time(self.now()),
                snapshot_version,
            },
        };
        let body =
            serde_json::to_vec(&request).map_err(|error| SyncError::Client(error.to_string()))?;
        let sent = record_time(self.now());
        let answer = self
            .send(
                reqwest::Method::POST,
                RECORDS_PATH,
                body,
                RESPONSE_BYTES_MAX,
            )
            .await?;
        let received = record_time(self.now());
        let response: UploadResponse = serde_json::from_slice(&answer)
            .map_err(|error| SyncError::BadAnswer(error.to_string()))?;
        self.measure_drift(sent, received, response.backoffice_time)
            .await;
        Ok(response)
    }

    /// Fetches the snapshot's changes since the version applied (everything when none is) and
    /// has the engine apply them in one transaction. Returns whether it applied anything.
    async fn pull_snapshot(&mut self) -> Result<bool, SyncError> {
        let current = if self.need_full_snapshot {
            None
        } else {
            self.read(|ledger| ledger.snapshot_state())?
                .map(|state| state.version)
        };
        let path = match current {
            Some(SnapshotVersion(version)) => format!("{SNAPSHOT_PATH}?since={version}"),
            None => SNAPSHOT_PATH.to_owned(),
        };
        let answer = self
            .send(reqwest::Method::GET, &path, Vec::new(), SNAPSHOT_BYTES_MAX)
            .await?;
        let snapshot: Snapshot = serde_json::from_slice(&answer)
            .map_err(|error| SyncError::BadAnswer(error.to_string()))?;
        if !snapshot.is_full() && delta_changes_nothing(&snapshot) {
            // Only the version moved (records that move no money were stored): no transaction,
            // no audit record. The balances and `records_through` the kiosk holds stay right,
            // since none of its records stored since moved a balance.
            return Ok(false);
        }
        let applied = self
            .engine
            .call(move |engine| engine.apply_snapshot(&snapshot))
            .await?;
        self.need_full_snapshot = applied.is_err();
        applied.map_err(SyncError::from)?;
        Ok(true)
    }

    /// Sends a signed request and reads its answer, at most `answer_bytes_max` bytes.
    async fn send(
        &mut self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Vec<u8>,
        answer_bytes_max: usize,
    ) -> Result<Vec<u8>, SyncError> {
        let request = self.signed_request(method, path_and_query, body)?;
        let mut response = request
            .send()
            .await
            .map_err(|error| SyncError::Network(error_chain(&error)))?;
        let status = response.status();
        let server_date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|date| date.to_str().ok())
            .and_then(|date| jiff::fmt::rfc2822::parse(date).ok())
            .map(|date| date.timestamp());
        let limit = if status.is_success() {
            answer_bytes_max
        } else {
            RESPONSE_BYTES_MAX
        };
        let answer = read_answer(&mut response, limit).await?;
        if status.is_success() {
            return Ok(answer);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED
            && let Some(date) = server_date
        {
            // A refused timestamp may be the kiosk's clock: the answer's `Date` (to the second)
            // is all the back-office tells a request it did not accept.
            let now = record_time(self.now());
            if let Ok(date) = Timestamp::from_unix_ms(date.as_millisecond()) {
                self.measure_drift(now, now, date).await;
            }
        }
        Err(refusal(status, &answer))
    }

    /// A request to the back-office signed with the kiosk's key, in the back-office's time when
    /// the kiosk's clock drifted.
    fn signed_request(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::RequestBuilder, SyncError> {
        let url = self
            .base
            .join(path_and_query)
            .map_err(|error| SyncError::Url {
                url: self.base.to_string(),
                reason: error.to_string(),
            })?;
        let signed_path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let at = Timestamp::from_unix_ms(self.now().as_millisecond() - self.signing_offset_ms)
            .map_err(|error| SyncError::Client(error.to_string()))?;
        let nonce = self.nonce()?;
        let signature = RequestToSign {
            device: &self.device,
            method: method.as_str(),
            path: &signed_path,
            at,
            nonce: &nonce,
            body: &body,
        }
        .sign(&self.key);
        Ok(self
            .http
            .request(method, url)
            .header(HEADER_DEVICE, self.device.as_str())
            .header(HEADER_TIMESTAMP, at.to_string())
            .header(HEADER_NONCE, nonce)
            .header(HEADER_SIGNATURE, signature.to_base64())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body))
    }

    /// Compares the kiosk's clock with the back-office's; beyond the bound, writes one
    /// `clock_drift` record per episode and warns staff.
    async fn measure_drift(&mut self, sent: Timestamp, received: Timestamp, backoffice: Timestamp) {
        let drift_ms = clock_drift_ms(sent, received, backoffice);
        self.state
            .warnings
            .retain(|warning| !matches!(warning, SyncWarning::ClockDrift { .. }));
        if drift_ms.abs() <= self.options.clock_drift_ms_max {
            self.drift_recorded = false;
            self.signing_offset_ms = 0;
            return;
        }
        self.signing_offset_ms = drift_ms;
        self.state
            .warnings
            .push(SyncWarning::ClockDrift { drift_ms });
        if !self.drift_recorded
            && let Ok(Ok(())) = self
                .engine
                .call(move |engine| engine.note_clock_drift(backoffice, drift_ms))
                .await
        {
            self.drift_recorded = true;
        }
    }

    fn check_offline_days(&mut self, now: Timestamp) {
        self.state
            .warnings
            .retain(|warning| !matches!(warning, SyncWarning::OfflineTooLong { .. }));
        let Some(last_sync) = self.state.last_sync else {
            return;
        };
        let days = (now.unix_ms() - last_sync.unix_ms()) / DAY_MS;
        if days >= i64::from(self.options.offline_days_max) {
            self.state
                .warnings
                .push(SyncWarning::OfflineTooLong { days });
        }
    }

    fn warn(&mut self, warning: SyncWarning) {
        self.state
            .warnings
            .retain(|known| std::mem::discriminant(known) != std::mem::discriminant(&warning));
        self.state.warnings.push(warning);
    }

    fn refresh_shown(&mut self) -> Result<(), SyncError> {
        self.state.unsynced_records = self.read(|ledger| ledger.counts())?.unsynced_records;
        self.state.last_sync_shown = match self.state.last_sync {
            None => "—".to_owned(),
            Some(last) => {
                let tz = &self.options.time_zone;
                let last = jiff::Timestamp::from_millisecond(last.unix_ms())
                    .map_err(|error| SyncError::Client(error.to_string()))?
                    .to_zoned(tz.clone());
                let today = self.clock.now().to_zoned(tz.clone()).date();
                if last.date() == today {
                    format!("{:02}:{:02}", last.hour(), last.minute())
                } else {
                    format!(
                        "{:02}/{:02} {:02}:{:02}",
                        last.day(),
                        last.month(),
                        last.hour(),
                        last.minute()
                    )
                }
            }
        };
        Ok(())
    }

    fn read<T>(
        &self,
        read: impl FnOnce(&Ledger) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let ledger = self
            .reader
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        read(&ledger)
    }

    fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// [`NONCE_BYTES`] random bytes from the system's source, as hex digits.
    fn nonce(&self) -> Result<String, SyncError> {
        let mut bytes = [0_u8; NONCE_BYTES];
        self.random
            .fill(&mut bytes)
            .map_err(|_| SyncError::Random)?;
        Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
    }
}

/// The answer's body, at most `limit` bytes.
async fn read_answer(response: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, SyncError> {
    let mut answer = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| SyncError::Network(error_chain(&error)))?
    {
        if answer.len() + chunk.len() > limit {
            return Err(SyncError::AnswerTooLarge { max: limit });
        }
        answer.extend_from_slice(&chunk);
    }
    Ok(answer)
}

/// A refused request's error: the API's error body when it sent one, else the answer's text.
fn refusal(status: reqwest::StatusCode, answer: &[u8]) -> SyncError {
    let error: Option<ApiError> = serde_json::from_slice(answer).ok();
    SyncError::Refused {
        status: status.as_u16(),
        message: error.as_ref().map_or_else(
            || String::from_utf8_lossy(answer).into_owned(),
            |error| error.message.clone(),
        ),
        error,
    }
}

/// Whether a delta carries no change at all, whatever its version.
pub fn delta_changes_nothing(snapshot: &Snapshot) -> bool {
    snapshot.accounts.is_empty()
        && snapshot.pupils.is_empty()
        && snapshot.cards.is_empty()
        && snapshot.hotlist.is_empty()
        && snapshot.tariffs.is_empty()
        && snapshot.services.is_empty()
        && snapshot.staff.is_empty()
        && snapshot.settings.is_none()
        && snapshot.removed.is_empty()
}

/// An error with its causes, which reqwest keeps apart ("error sending request: connection
/// refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A sync running as a task of the kiosk's runtime.
#[derive(Debug)]
pub struct SyncHandle {
    task: tokio::task::JoinHandle<()>,
}

impl SyncHandle {
    /// Stops the sync, even in the middle of an exchange (which is dropped; the back-office's
    /// exactly-once ingest makes that harmless, and a job already handed to the engine still
    /// runs), and waits for its task to end.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for SyncHandle {
    /// Ends the task at its next await; only [`SyncHandle::stop`] waits for it.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts `client` as a task of `runtime`. Between syncs it waits on one timer, the only wakeup
/// it asks of an idle kiosk's runtime.
pub fn spawn<E: EngineAccess>(
    runtime: &tokio::runtime::Handle,
    client: SyncClient<E>,
) -> SyncHandle {
    SyncHandle {
        task: runtime.spawn(client.run()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_with_jitter() {
        fn check(failures: u32, random: u16, expected_ms: u64) {
            assert_eq!(
                backoff_ms(failures, random),
                expected_ms,
                "{failures} {random}"
            );
        }
        check(1, u16::MAX, BACKOFF_MS_FIRST);
        check(1, 0, BACKOFF_MS_FIRST / 2);
        check(2, u16::MAX, 2 * BACKOFF_MS_FIRST);
        check(3, u16::MAX, 4 * BACKOFF_MS_FIRST);
        check(3, 0, 2 * BACKOFF_MS_FIRST);
        check(9, u16::MAX, 256 * BACKOFF_MS_FIRST);
        check(10, u16::MAX, BACKOFF_MS_MAX);
        check(u32::MAX, u16::MAX, BACKOFF_MS_MAX);
        check(u32::MAX, 0, BACKOFF_MS_MAX / 2);
        check(0, u16::MAX, BACKOFF_MS_FIRST);
    }

    #[test]
    fn drift_is_measured_at_the_middle_of_the_exchange() {
        fn check(sent_ms: i64, received_ms: i64, backoffice_ms: i64, expected_ms: i64) {
            let at = |ms: i64| Timestamp::from_unix_ms(1_800_000_000_000 + ms).unwrap();
            assert_eq!(
                clock_drift_ms(at(sent_ms), at(received_ms), at(backoffice_ms)),
                expected_ms
            );
        }
        check(0, 0, 0, 0);
        check(0, 100, 50, 0);
        check(0, 100, 0, 50);
        check(60_000, 60_100, 0, 60_050);
        check(0, 100, 120_050, -120_000);
    }

    #[test]
    fn batches_are_bounded_by_count_and_bytes() {
        fn record(payload_bytes: usize) -> SignedRecord {
            SignedRecord {
                payload: "x".repeat(payload_bytes),
                signature: "s".repeat(88),
            }
        }
        fn check(sizes: &[usize], expected: usize) {
            let records = sizes.iter().map(|size| record(*size)).collect();
            assert_eq!(
                fit_batch(records).len(),
                expected,
                "{} records",
                sizes.len()
            );
        }
        check(&[], 0);
        check(&[400], 1);
        check(&[400; 10], 10);
        check(
            &[400; UPLOAD_BATCH_RECORDS_MAX + 1],
            UPLOAD_BATCH_RECORDS_MAX,
        );
        // Day closes of 16 KiB: the body limit cuts first.
        check(&[16 * 1024; 200], 127);
        // One record always goes, whatever its size.
        check(&[UPLOAD_BODY_BYTES_MAX], 1);
    }
}
