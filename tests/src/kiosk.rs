//! A real kiosk without a screen: enrolled in a data directory with `kiosk init`'s code, its
//! engine on the kiosk's one worker (a blocking task of the test's runtime), and its sync client,
//! which a test drives one sync at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use backoffice::store::Store;
use kiosk::clock::ManualClock;
use kiosk::config::{DataDir, SyncConfig};
use kiosk::engine::Decision;
use kiosk::engine::Engine;
use kiosk::sync::{EngineAccess as _, SyncClient, SyncError, SyncOptions, SyncState};
use kiosk::worker::{EngineWorker, NoWaker, TapSender, UpdateReceiver};
use proto::rules::Effect;
use proto::{AccountId, CardUid, Cents, DeviceId, Payload, RecordBody, Seq, SignedRecord};
use testkit::Ops as _;

use crate::backoffice::{register_device, site};

/// A Monday noon in Paris, in winter: where every kiosk's engine clock starts. Lunch is open all
/// day, so only the day matters; a test moves to the next day with [`TestKiosk::next_day`].
pub const ENGINE_START_UNIX_MS: i64 = 1_796_036_400_000;

/// A clock for a kiosk's sync that agrees with the back-office's ([`crate::backoffice::now`]).
pub fn wall_clock() -> ManualClock {
    ManualClock::new(
        jiff::Timestamp::from_millisecond(crate::backoffice::NOW_UNIX_MS).expect("a timestamp"),
    )
}

/// A kiosk enrolled with the back-office.
pub struct TestKiosk {
    pub data: DataDir,
    /// Keeps the data directory until the kiosk is dropped.
    _dir: Option<tempfile::TempDir>,
    pub device: DeviceId,
    /// The engine's worker; dropping it stops the engine after the jobs queued.
    pub worker: EngineWorker,
    /// The way to the engine, the sync's and the test's.
    pub engine: Arc<TapSender>,
    /// What a screen would show; nothing waits for it (the sync publishes without waiting), so it
    /// is only kept open.
    _updates: UpdateReceiver,
    /// The engine's clock, moved by hand; the sync has its own ([`wall_clock`]), which agrees
    /// with the back-office's.
    pub clock: ManualClock,
    pub sync: SyncClient<TapSender>,
}

impl std::fmt::Debug for TestKiosk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKiosk")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl TestKiosk {
    /// Enrols a new kiosk of the test site talking to `url` with the default sync settings, and
    /// registers it with `store`.
    pub async fn enrol(store: &impl Store, name: &str, url: &str) -> TestKiosk {
        TestKiosk::enrol_with_sync(store, name, url, SyncConfig::default()).await
    }

    /// Enrols a new kiosk of the test site talking to `url` with `sync`, and registers it with
    /// `store`.
    pub async fn enrol_with_sync(
        store: &impl Store,
        name: &str,
        url: &str,
        sync: SyncConfig,
    ) -> TestKiosk {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut kiosk = TestKiosk::enrol_in(store, dir.path(), name, url, sync).await;
        kiosk._dir = Some(dir);
        kiosk
    }

    /// Enrols a new kiosk in `root` (which must not hold one).
    pub async fn enrol_in(
        store: &impl Store,
        root: &std::path::Path,
        name: &str,
        url: &str,
        sync: SyncConfig,
    ) -> TestKiosk {
        let data = DataDir::new(root);
        let enrolment = data
            .init(
                site(),
                proto::Text::parse(name).expect("a kiosk name"),
                Some(url.to_owned()),
                "Europe/Paris",
                &ring::rand::SystemRandom::new(),
            )
            .expect("the kiosk enrols");
        let mut config = enrolment.config.clone();
        config.sync = sync;
        std::fs::write(
            data.config_path(),
            toml::to_string(&config).expect("the configuration serializes"),
        )
        .expect("the configuration is written");
        register_device(store, &config.device, enrolment.public_key).await;
        TestKiosk::start(data, None)
    }

    /// Starts the kiosk of an existing data directory, its engine on the current runtime.
    pub fn start(data: DataDir, dir: Option<tempfile::TempDir>) -> TestKiosk {
        let clock = ManualClock::new(
            jiff::Timestamp::from_millisecond(ENGINE_START_UNIX_MS).expect("a timestamp"),
        );
        let engine =
            kiosk::run::start_engine(&data, Box::new(clock.clone())).expect("the engine starts");
        let device = engine.device().clone();
        let (worker, engine, updates) = EngineWorker::start(
            &tokio::runtime::Handle::current(),
            engine,
            Arc::new(NoWaker),
        );
        let engine = Arc::new(engine);
        let sync = SyncClient::from_data_dir(&data, Arc::clone(&engine), Arc::new(wall_clock()))
            .expect("the sync starts")
            .expect("the kiosk has a back-office URL");
        TestKiosk {
            data,
            _dir: dir,
            device,
            worker,
            engine,
            _updates: updates,
            clock,
            sync,
        }
    }

    /// Gives the sync another clock (the engine keeps its own): to move the kiosk's idea of
    /// "now" for the offline bound and the clock check.
    pub fn set_sync_clock(&mut self, clock: Arc<dyn kiosk::clock::Clock + Sync>) {
        self.sync = SyncClient::from_data_dir(&self.data, Arc::clone(&self.engine), clock)
            .expect("the sync starts")
            .expect("the kiosk has a back-office URL");
    }

    /// The kinds of the kiosk's records, in order.
    pub async fn kinds(&self) -> Vec<proto::RecordKind> {
        self.records()
            .await
            .iter()
            .map(|record| {
                Payload::parse(&record.payload)
                    .expect("a stored payload")
                    .body
                    .kind()
            })
            .collect()
    }

    /// Runs `job` on the engine and awaits its result.
    pub async fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> T {
        self.engine.call(job).await.expect("the engine answers")
    }

    pub async fn tap(&self, uid: CardUid) -> Decision {
        self.call(move |engine| engine.tap(uid)).await
    }

    /// Another sync client of this kiosk, on its key, ledger and engine, to the back-office at
    /// `url`: the same kiosk's uploads by another way, as a load balancer or another network
    /// would carry them.
    pub fn another_sync_client(&self, url: String) -> SyncClient<TapSender> {
        let options = SyncOptions {
            backoffice_url: url,
            ca_file: None,
            interval_ms: None,
            clock_drift_ms_max: kiosk::limits::CLOCK_DRIFT_MS_MAX_DEFAULT,
            offline_days_max: kiosk::limits::OFFLINE_DAYS_MAX_DEFAULT,
            time_zone: jiff::tz::TimeZone::get("Europe/Paris").expect("the zone"),
        };
        SyncClient::new(
            options,
            self.device.clone(),
            self.data.load_key().expect("the kiosk's key"),
            &self.data.ledger_path(),
            Arc::clone(&self.engine),
            Arc::new(wall_clock()),
        )
        .expect("a sync client")
    }

    pub async fn sync(&mut self) -> Result<(), SyncError> {
        self.sync.sync_once().await
    }

    /// Syncs until a sync succeeds with nothing left to upload, at most `attempts` times.
    pub async fn sync_until_clean(&mut self, attempts: usize) {
        for _ in 0..attempts {
            if self.sync().await.is_ok() && self.unsynced().await == 0 {
                return;
            }
        }
        panic!(
            "{}: still not synced after {attempts} attempts: {:?}",
            self.device,
            self.sync.state()
        );
    }

    pub fn state(&self) -> SyncState {
        self.engine.sync_state()
    }

    /// Moves the engine's clock to the next day's noon: a new service day.
    pub fn next_day(&self) {
        self.clock.advance(jiff::SignedDuration::from_hours(24));
    }

    pub async fn unsynced(&self) -> u64 {
        self.call(|engine| engine.ledger().counts().expect("counts").unsynced_records)
            .await
    }

    /// The balance the kiosk would show for `account`.
    pub async fn balance(&self, account: &AccountId) -> Option<Cents> {
        let account = account.clone();
        self.call(move |engine| {
            let ledger = engine.ledger();
            let through = ledger
                .snapshot_state()
                .expect("the snapshot state")
                .and_then(|state| state.records_through);
            ledger
                .account(&account, through)
                .expect("the account")
                .map(|view| view.balance)
        })
        .await
    }

    /// Every record of the kiosk's chain, in order.
    pub async fn records(&self) -> Vec<SignedRecord> {
        self.call(|engine| {
            let mut records = Vec::new();
            engine
                .ledger()
                .visit_records(Seq::FIRST, None, |record| {
                    records.push(record.clone());
                    Ok::<(), kiosk::ledger::LedgerError>(())
                })
                .expect("the ledger reads");
            records
        })
        .await
    }
}

/// What `records` do to balances, per account, by `proto`'s rule (meals debit, top-ups credit,
/// voids reverse the record they name).
pub fn movements(records: &[SignedRecord]) -> BTreeMap<AccountId, i64> {
    let mut by_record = BTreeMap::new();
    let mut sums = BTreeMap::new();
    for record in records {
        let payload = Payload::parse(&record.payload).expect("a stored payload");
        let moved = match proto::rules::effect(&payload.body) {
            Effect::Move { account, amount } => Some((account, amount.get())),
            Effect::Reverse { seq, hash } => by_record
                .get(&(payload.device.clone(), seq, hash))
                .map(|(account, cents): &(AccountId, i64)| (account.clone(), -cents)),
            Effect::None => None,
        };
        if let Some((account, cents)) = moved {
            *sums.entry(account.clone()).or_insert(0) += cents;
            by_record.insert(
                (payload.device, payload.seq, record.payload_hash()),
                (account, cents),
            );
        }
    }
    sums
}

/// Checks what every story must leave true: the back-office holds exactly each kiosk's chain,
/// every balance is the opening balance plus the records' and operations' movements, and no
/// balance differs from the sum of its movements.
pub async fn assert_consistent<S: Store>(
    store: &S,
    kiosks: &[&TestKiosk],
    pupils: usize,
    counter_cents: &[i64],
) {
    let mut kiosk_records = Vec::new();
    for kiosk in kiosks {
        let records = kiosk.records().await;
        let stored: Vec<_> = store
            .records(&kiosk.device)
            .await
            .expect("the back-office reads")
            .into_iter()
            .map(|stored| stored.record)
            .collect();
        assert_eq!(
            stored.len(),
            records.len(),
            "{}: record count",
            kiosk.device
        );
        assert!(
            stored == records,
            "{}: the back-office holds other records",
            kiosk.device
        );
        kiosk_records.extend(records);
    }
    let moved = movements(&kiosk_records);
    for index in 0..pupils {
        let expected = crate::backoffice::OPENING_BALANCE_CENTS
            + moved
                .get(&crate::backoffice::account(index))
                .copied()
                .unwrap_or(0)
            + counter_cents.get(index).copied().unwrap_or(0);
        assert_eq!(
            store
                .balance(&crate::backoffice::account(index))
                .await
                .expect("the back-office reads"),
            Some(Cents::new(expected)),
            "balance of {}",
            crate::backoffice::account(index)
        );
    }
    assert!(
        store
            .balance_mismatches()
            .await
            .expect("the back-office reads")
            .is_empty()
    );
    assert_charged_once(&kiosk_records);
}

/// No kiosk charged a pupil twice for one service of one day (unless it voided one).
pub fn assert_charged_once(records: &[SignedRecord]) {
    let mut meals = BTreeMap::new();
    let mut voided = std::collections::BTreeSet::new();
    for record in records {
        let payload = Payload::parse(&record.payload).expect("a stored payload");
        match &payload.body {
            RecordBody::Meal(meal) => {
                meals.insert(
                    (payload.device.clone(), payload.seq),
                    (meal.pupil.clone(), meal.service.clone(), meal.service_date),
                );
            }
            RecordBody::Void(void) => {
                voided.insert((payload.device.clone(), void.voided_seq));
            }
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for ((device, seq), meal) in &meals {
        if voided.contains(&(device.clone(), *seq)) {
            continue;
        }
        assert!(
            seen.insert((device.clone(), meal.clone())),
            "{device} charged {:?} twice",
            meal
        );
    }
}
