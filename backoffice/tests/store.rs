//! One storage test suite, run against SQLite and against PostgreSQL: both backends must behave
//! the same in every case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use backoffice::ingest::IngestOutcome;
use backoffice::kiosks::NonceOutcome;
use backoffice::store::{
    AnomalyReason, Device, Operation, OperationKind, ServedMeal, Store, StoreError,
};
use backoffice::users::{Role, User};
use proto::api::{KioskReport, ReaderState};
use proto::record::{MealVia, TopUpMethod};
use proto::snapshot::CardHolder;
use proto::snapshot::Snapshot;
use proto::{
    CardUid, Cents, Record, RecordBody, Seq, ServiceDate, SignedRecord, SiteId, SnapshotVersion,
    StaffId, Text,
};

use common::fixtures::registered_at;
use common::fixtures::{
    Kiosk, account, at, device, device_id, forged, meal, populate, pupil, pupil_card, register,
    settings, site, staff_member, tariff, top_up, void,
};

common::store_suite!(
    devices_are_registered_once_and_revoked,
    nonces_are_refused_when_seen_again,
    ingest_stores_each_record_exactly_once,
    voids_reverse_the_voided_record_once,
    records_for_unknown_accounts_are_stored_and_reported,
    concurrent_uploads_of_one_batch_store_it_once,
    kiosk_reports_keep_the_latest,
    snapshots_hold_the_site_and_deltas_catch_up,
    invalid_references_change_nothing,
    operations_move_balances_and_online_payments_credit_once,
    users_are_kept_and_replaced_cards_keep_the_account,
    site_meals_list_one_site_day_in_kiosk_time_order,
    deltas_miss_no_change_of_concurrent_ingests,
);

async fn devices_are_registered_once_and_revoked(store: impl Store) {
    let kiosk = device("kiosk-1", 1);
    assert_eq!(store.device(&kiosk.id).await.unwrap(), None);
    store
        .add_device(kiosk.clone(), registered_at())
        .await
        .unwrap();
    assert_eq!(store.device(&kiosk.id).await.unwrap(), Some(kiosk.clone()));
    assert!(matches!(
        store
            .add_device(device("kiosk-1", 2), registered_at())
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    store.revoke_device(&kiosk.id, at(5)).await.unwrap();
    // Revoking again keeps the first revocation time.
    store.revoke_device(&kiosk.id, at(9)).await.unwrap();
    let revoked = store.device(&kiosk.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(5)));
    assert!(matches!(
        store
            .revoke_device(&device_id("kiosk-unknown"), at(5))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn nonces_are_refused_when_seen_again(store: impl Store) {
    store
        .add_device(device("kiosk-1", 1), registered_at())
        .await
        .unwrap();
    store
        .add_device(device("kiosk-2", 2), registered_at())
        .await
        .unwrap();
    let now = at(0);
    let cases = [
        ("kiosk-1", "nonce0000000000001", NonceOutcome::Fresh),
        ("kiosk-1", "nonce0000000000002", NonceOutcome::Fresh),
        ("kiosk-1", "nonce0000000000001", NonceOutcome::Replayed),
        // Nonces are per kiosk.
        ("kiosk-2", "nonce0000000000001", NonceOutcome::Fresh),
        ("kiosk-2", "nonce0000000000001", NonceOutcome::Replayed),
    ];
    for (kiosk, nonce, expected) in cases {
        let outcome = store
            .remember_nonce(&device_id(kiosk), nonce, now, now)
            .await
            .unwrap();
        assert_eq!(outcome, expected, "{kiosk} {nonce}");
    }
}

/// One upload of a scenario and what the back-office must answer.
struct Upload {
    records: Vec<SignedRecord>,
    acknowledged: Option<u64>,
    stored: u32,
    duplicates: u32,
    quarantined: u32,
}

fn upload(
    records: Vec<SignedRecord>,
    acknowledged: Option<u64>,
    [stored, duplicates, quarantined]: [u32; 3],
) -> Upload {
    Upload {
        records,
        acknowledged,
        stored,
        duplicates,
        quarantined,
    }
}

/// Plays `uploads` of `kiosk`'s records against a fresh device and checks each answer, then
/// checks what was stored: exactly the kiosk's records `1..=stored_through`, each once and
/// unaltered, with the balance of `account_name` equal to `balance_cents` and to the sum of its
/// movements, and the anomalies found with their reasons.
async fn check(
    store: &impl Store,
    kiosk: &Kiosk,
    account_name: &str,
    uploads: Vec<Upload>,
    stored_through: u64,
    balance_cents: i64,
    anomalies: &[AnomalyReason],
) {
    store
        .add_device(kiosk.device.clone(), registered_at())
        .await
        .unwrap();
    store
        .add_account(&account(account_name), Cents::ZERO, at(0))
        .await
        .unwrap();
    for (number, upload) in uploads.into_iter().enumerate() {
        let outcome = store
            .ingest(&kiosk.device, upload.records, at(100_000))
            .await
            .unwrap();
        let expected = IngestOutcome {
            acknowledged: upload.acknowledged.map(|seq| Seq::new(seq).unwrap()),
            stored: upload.stored,
            duplicates: upload.duplicates,
            quarantined: upload.quarantined,
            anomalies_dropped: 0,
        };
        assert_eq!(outcome, expected, "upload #{number}");
    }
    let stored = store.records(&kiosk.device.id).await.unwrap();
    let expected: Vec<SignedRecord> = kiosk.signed(1, stored_through);
    let stored_records: Vec<SignedRecord> = stored.iter().map(|r| r.record.clone()).collect();
    assert_eq!(stored_records, expected);
    for stored in &stored {
        assert_eq!(stored.received_at, at(100_000));
        let written = &kiosk.written[usize::try_from(stored.seq.get() - 1).unwrap()];
        assert_eq!(stored.kiosk_at, written.payload().at);
    }
    let stored_through = usize::try_from(stored_through).unwrap();
    let listed: Vec<ServedMeal> = store
        .site_meals(&site(), service_date(), SITE_MEALS_MAX)
        .await
        .unwrap()
        .into_iter()
        .filter(|meal| meal.device == kiosk.device.id)
        .collect();
    assert_eq!(
        listed,
        served(&kiosk.device, &kiosk.written[..stored_through])
    );
    assert_eq!(
        store.balance(&account(account_name)).await.unwrap(),
        Some(Cents::new(balance_cents))
    );
    assert_eq!(store.balance_mismatches().await.unwrap(), vec![]);
    let found: Vec<AnomalyReason> = store
        .anomalies()
        .await
        .unwrap()
        .iter()
        .filter(|anomaly| anomaly.device == kiosk.device.id)
        .map(|anomaly| anomaly.reason)
        .collect();
    assert_eq!(found, anomalies);
}

/// More meals than any test serves in a day.
const SITE_MEALS_MAX: usize = 1_000;

/// The service date of the fixtures' meals.
fn service_date() -> ServiceDate {
    ServiceDate::parse("2026-11-30").unwrap()
}

/// What a site's meals must list for the meal records among `records`, in their order.
fn served(device: &Device, records: &[Record]) -> Vec<ServedMeal> {
    records
        .iter()
        .filter_map(|record| match &record.payload().body {
            RecordBody::Meal(meal) => Some(ServedMeal {
                device: device.id.clone(),
                seq: record.seq(),
                kiosk_at: record.payload().at,
                service: meal.service.clone(),
                meal_type: meal.meal_type.clone(),
                account: meal.account.clone(),
                pupil: meal.pupil.clone(),
                via: meal.via.clone(),
                price: meal.price,
            }),
            _ => None,
        })
        .collect()
}

/// A meal of `account_name` served on `date` by a member of staff, not by a card.
fn meal_by_staff_on(account_name: &str, date: &str) -> RecordBody {
    let RecordBody::Meal(mut body) = meal(account_name, 410) else {
        unreachable!("the fixture writes a meal")
    };
    body.service_date = ServiceDate::parse(date).unwrap();
    body.via = MealVia::Staff(StaffId::parse("staff-martin").unwrap());
    RecordBody::Meal(body)
}

async fn ingest_stores_each_record_exactly_once(store: impl Store) {
    type Scenario = (
        &'static str,
        fn(&mut Kiosk, &str) -> (Vec<Upload>, u64, i64, Vec<AnomalyReason>),
    );
    let scenarios: [Scenario; 6] = [
        ("in order", |kiosk, a| {
            kiosk.write(top_up(a, 2_000));
            kiosk.write_meals(a, 3);
            let uploads = vec![
                upload(kiosk.signed(1, 2), Some(2), [2, 0, 0]),
                upload(kiosk.signed(3, 4), Some(4), [2, 0, 0]),
                upload(vec![], Some(4), [0, 0, 0]),
            ];
            (uploads, 4, 2_000 - 3 * 385, vec![])
        }),
        ("re-uploads are duplicates", |kiosk, a| {
            kiosk.write_meals(a, 4);
            let mut twice = kiosk.signed(3, 4);
            twice.extend(kiosk.signed(3, 4));
            let uploads = vec![
                upload(kiosk.signed(1, 2), Some(2), [2, 0, 0]),
                upload(kiosk.signed(1, 3), Some(3), [1, 2, 0]),
                upload(twice, Some(4), [1, 3, 0]),
            ];
            (uploads, 4, -4 * 385, vec![])
        }),
        ("a gap is held until filled", |kiosk, a| {
            kiosk.write_meals(a, 6);
            let uploads = vec![
                upload(kiosk.signed(1, 2), Some(2), [2, 0, 0]),
                upload(kiosk.signed(5, 6), Some(2), [0, 0, 0]),
                upload(kiosk.signed(3, 4), Some(6), [4, 0, 0]),
            ];
            (uploads, 6, -6 * 385, vec![])
        }),
        ("a gap not filled is reported", |kiosk, a| {
            kiosk.write_meals(a, 4);
            let uploads = vec![
                upload(kiosk.signed(1, 1), Some(1), [1, 0, 0]),
                upload(kiosk.signed(3, 4), Some(1), [0, 0, 0]),
                upload(kiosk.signed(4, 4), Some(1), [0, 1, 0]),
            ];
            (uploads, 1, -385, vec![AnomalyReason::Gap])
        }),
        (
            "a fork is quarantined, never stored over good data",
            |kiosk, a| {
                kiosk.write_meals(a, 3);
                let uploads = vec![
                    upload(kiosk.signed(1, 2), Some(2), [2, 0, 0]),
                    upload(vec![kiosk.fork_at(2, top_up(a, 9_999))], Some(2), [0, 0, 1]),
                    upload(
                        // Within a batch the first of two records at one seq is kept.
                        vec![
                            kiosk.signed(3, 3)[0].clone(),
                            kiosk.fork_at(3, top_up(a, 9_999)),
                        ],
                        Some(3),
                        [1, 0, 1],
                    ),
                ];
                (
                    uploads,
                    3,
                    -3 * 385,
                    vec![AnomalyReason::Fork, AnomalyReason::Fork],
                )
            },
        ),
        ("a forged signature is quarantined", |kiosk, a| {
            kiosk.write_meals(a, 2);
            let uploads = vec![
                upload(vec![forged(&kiosk.signed(1, 1)[0])], None, [0, 0, 1]),
                upload(kiosk.signed(1, 1), Some(1), [1, 0, 0]),
                upload(vec![forged(&kiosk.signed(1, 1)[0])], Some(1), [0, 0, 1]),
                upload(kiosk.signed(2, 2), Some(2), [1, 0, 0]),
            ];
            (uploads, 2, -2 * 385, vec![AnomalyReason::BadRecord])
        }),
    ];
    for (seed, (name, scenario)) in (1_u8..).zip(scenarios) {
        // Each scenario has its own kiosk and account in the one database.
        let mut kiosk = Kiosk::new(&format!("kiosk-{seed}"), seed);
        let account_name = format!("A{seed}");
        let (uploads, stored_through, balance_cents, anomalies) =
            scenario(&mut kiosk, &account_name);
        eprintln!("scenario: {name}");
        check(
            &store,
            &kiosk,
            &account_name,
            uploads,
            stored_through,
            balance_cents,
            &anomalies,
        )
        .await;
    }
}

async fn voids_reverse_the_voided_record_once(store: impl Store) {
    let mut kiosk = Kiosk::new("kiosk-1", 1);
    kiosk.write(top_up("A1", 1_000));
    let mistaken = kiosk.write(meal("A1", 385));
    kiosk.write(void(&mistaken));
    kiosk.write(void(&mistaken));
    let uploads = vec![upload(kiosk.signed(1, 4), Some(4), [4, 0, 0])];
    check(
        &store,
        &kiosk,
        "A1",
        uploads,
        4,
        1_000,
        &[AnomalyReason::VoidRepeated],
    )
    .await;
}

async fn records_for_unknown_accounts_are_stored_and_reported(store: impl Store) {
    let mut kiosk = Kiosk::new("kiosk-1", 1);
    kiosk.write(meal("A-UNKNOWN", 385));
    kiosk.write(meal("A1", 385));
    let uploads = vec![upload(kiosk.signed(1, 2), Some(2), [2, 0, 0])];
    check(
        &store,
        &kiosk,
        "A1",
        uploads,
        2,
        -385,
        &[AnomalyReason::UnknownAccount],
    )
    .await;
}

/// Registers `kiosk` and stores its first three records.
async fn register_and_ingest(store: &impl Store, kiosk: &Kiosk) {
    register(store, &kiosk.device).await;
    store
        .ingest(&kiosk.device, kiosk.signed(1, 3), at(100_000))
        .await
        .unwrap();
}

async fn concurrent_uploads_of_one_batch_store_it_once(store: impl Store) {
    const UPLOADERS: usize = 6;
    let mut kiosk = Kiosk::registered(&store, "kiosk-1", 1).await;
    kiosk.write(top_up("A1", 50_000));
    kiosk.write_meals("A1", 59);
    store
        .add_account(&account("A1"), Cents::ZERO, at(0))
        .await
        .unwrap();
    let mut uploads = tokio::task::JoinSet::new();
    for uploader in 0..UPLOADERS {
        let store = store.clone();
        let device = kiosk.device.clone();
        // Overlapping batches, as retries after a timeout would send.
        let batch = kiosk.signed(1, 20 + 10 * u64::try_from(uploader).unwrap());
        uploads.spawn(async move { store.ingest(&device, batch, at(100_000)).await.unwrap() });
    }
    let mut stored_total = 0;
    while let Some(outcome) = uploads.join_next().await {
        stored_total += outcome.unwrap().stored;
    }
    let final_outcome = store
        .ingest(&kiosk.device, kiosk.signed(1, 60), at(100_000))
        .await
        .unwrap();
    stored_total += final_outcome.stored;
    assert_eq!(stored_total, 60);
    assert_eq!(final_outcome.acknowledged, Some(Seq::new(60).unwrap()));
    assert_eq!(store.records(&kiosk.device.id).await.unwrap().len(), 60);
    assert_eq!(
        store.balance(&account("A1")).await.unwrap(),
        Some(Cents::new(50_000 - 59 * 385))
    );
    assert_eq!(store.balance_mismatches().await.unwrap(), vec![]);
}

/// A site's meals of a day, from both its kiosks, in kiosk time order; not another site's, not
/// another day's, and a voided meal stays listed as served.
async fn site_meals_list_one_site_day_in_kiosk_time_order(store: impl Store) {
    let mut first = Kiosk::new("kiosk-1", 1);
    let mut second = Kiosk::new("kiosk-2", 2);
    let mut elsewhere = Kiosk::new("kiosk-3", 3);
    elsewhere.device.site = SiteId::parse("zola").unwrap();
    store
        .add_account(&account("A1"), Cents::ZERO, at(0))
        .await
        .unwrap();
    for kiosk in [&mut first, &mut second, &mut elsewhere] {
        store
            .add_device(kiosk.device.clone(), registered_at())
            .await
            .unwrap();
        kiosk.write(meal("A1", 385));
        let mistaken = kiosk.write(meal_by_staff_on("A1", "2026-11-30"));
        kiosk.write(void(&mistaken));
        kiosk.write(meal_by_staff_on("A1", "2026-12-01"));
        store
            .ingest(&kiosk.device, kiosk.signed(1, 4), at(100_000))
            .await
            .unwrap();
    }
    let check = async |site: &str, date: &str, expected: Vec<ServedMeal>| {
        let listed = store
            .site_meals(
                &SiteId::parse(site).unwrap(),
                ServiceDate::parse(date).unwrap(),
                SITE_MEALS_MAX,
            )
            .await
            .unwrap();
        assert_eq!(listed, expected, "{site} {date}");
    };
    // Both kiosks write at the same offsets: the kiosk breaks the tie.
    let interleaved = |from: usize, to: usize| {
        let mut meals = served(&first.device, &first.written[from..to]);
        meals.extend(served(&second.device, &second.written[from..to]));
        meals.sort_by(|a, b| (a.kiosk_at, &a.device).cmp(&(b.kiosk_at, &b.device)));
        meals
    };
    check("jaures", "2026-11-30", interleaved(0, 3)).await;
    check("jaures", "2026-12-01", interleaved(3, 4)).await;
    check(
        "zola",
        "2026-11-30",
        served(&elsewhere.device, &elsewhere.written[..3]),
    )
    .await;
    check("zola", "2026-11-29", vec![]).await;
    check("nowhere", "2026-11-30", vec![]).await;
    let limited = store.site_meals(&site(), service_date(), 3).await.unwrap();
    assert_eq!(limited, interleaved(0, 3)[..3]);
}

async fn kiosk_reports_keep_the_latest(store: impl Store) {
    let kiosk = device("kiosk-1", 1);
    store
        .add_device(kiosk.clone(), registered_at())
        .await
        .unwrap();
    for (unsynced, seen) in [(12, at(1_000)), (0, at(2_000))] {
        let report = KioskReport {
            software_version: Text::parse("0.1.0").unwrap(),
            reader: ReaderState::Ready,
            unsynced_records: unsynced,
            kiosk_time: at(-500),
            snapshot_version: None,
        };
        store
            .record_kiosk_report(&kiosk.id, &report, seen)
            .await
            .unwrap();
    }
    let statuses = store.kiosk_statuses().await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].device, kiosk.id);
    assert_eq!(statuses[0].last_seen, at(2_000));
    assert_eq!(statuses[0].report.unsynced_records, 0);
}

/// A kiosk's state after applying `delta` to `full`, as the kiosk merges it.
fn merged(mut full: Snapshot, delta: Snapshot) -> Snapshot {
    fn upsert<T: Clone, K: PartialEq>(into: &mut Vec<T>, from: &[T], key: impl Fn(&T) -> K) {
        for item in from {
            match into.iter_mut().find(|kept| key(kept) == key(item)) {
                Some(kept) => *kept = item.clone(),
                None => into.push(item.clone()),
            }
        }
    }
    assert_eq!(delta.since, Some(full.version));
    full.version = delta.version;
    upsert(&mut full.accounts, &delta.accounts, |a| a.id.clone());
    upsert(&mut full.pupils, &delta.pupils, |p| p.id.clone());
    upsert(&mut full.cards, &delta.cards, |c| c.uid);
    upsert(&mut full.hotlist, &delta.hotlist, |uid| *uid);
    upsert(&mut full.tariffs, &delta.tariffs, |t| {
        (t.bracket.clone(), t.meal_type.clone())
    });
    upsert(&mut full.services, &delta.services, |s| s.id.clone());
    upsert(&mut full.staff, &delta.staff, |s| s.id.clone());
    if delta.settings.is_some() {
        full.settings = delta.settings;
    }
    full.cards
        .retain(|card| !delta.removed.cards.contains(&card.uid));
    full
}

/// Sorted the way the store sorts, so two snapshots of the same data compare equal.
fn normalized(mut snapshot: Snapshot) -> Snapshot {
    snapshot.accounts.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot.pupils.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot.cards.sort_by_key(|card| card.uid);
    snapshot.hotlist.sort();
    snapshot
}

async fn snapshots_hold_the_site_and_deltas_catch_up(store: impl Store) {
    populate(&store).await;
    let full = store.snapshot(&site(), None, None).await.unwrap();
    full.check_complete().unwrap();
    let pupils: Vec<&str> = full.pupils.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(pupils, ["P1", "P2", "P3"], "only the site's pupils");
    let accounts: Vec<&str> = full.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(accounts, ["A1", "A2"]);
    assert_eq!(
        full.cards.len(),
        4,
        "three pupils' cards and the staff card"
    );
    assert_eq!(full.staff, vec![staff_member("staff-martin")]);
    assert_eq!(full.settings, Some(settings()));
    assert_eq!(
        full.pupils[0],
        pupil("P1", "A1", "q3"),
        "text survives as written"
    );

    // Changes: a lost card blocked and replaced, a meal charged, a new price.
    let mut kiosk = Kiosk::registered(&store, "kiosk-1", 1).await;
    let mut versions = vec![full.version];
    versions.push(
        store
            .block_card(&CardUid::parse(&[1, 1, 1, 1]).unwrap())
            .await
            .unwrap(),
    );
    versions.push(
        store
            .assign_card(&pupil_card(&[1, 1, 1, 7], "P1"))
            .await
            .unwrap(),
    );
    versions.push(
        store
            .save_tariff(&site(), &tariff("q1", 120))
            .await
            .unwrap(),
    );
    kiosk.write(meal("A2", 120));
    store
        .ingest(&kiosk.device, kiosk.signed(1, 1), at(10))
        .await
        .unwrap();
    let delta = store
        .snapshot(&site(), None, Some(full.version))
        .await
        .unwrap();
    versions.push(delta.version);
    assert!(
        versions.windows(2).all(|pair| pair[0] < pair[1]),
        "{versions:?}"
    );
    delta.check_entries().unwrap();
    assert_eq!(
        delta.removed.cards,
        vec![CardUid::parse(&[1, 1, 1, 1]).unwrap()]
    );
    assert_eq!(delta.hotlist, vec![CardUid::parse(&[1, 1, 1, 1]).unwrap()]);
    assert_eq!(delta.cards, vec![pupil_card(&[1, 1, 1, 7], "P1")]);
    assert_eq!(delta.tariffs, vec![tariff("q1", 120)]);
    assert_eq!(delta.accounts.len(), 1);
    assert_eq!(delta.accounts[0].balance, Cents::new(-120));
    assert!(delta.pupils.is_empty() && delta.staff.is_empty() && delta.settings.is_none());

    let caught_up = merged(full.clone(), delta.clone());
    let fresh = store.snapshot(&site(), None, None).await.unwrap();
    assert_eq!(normalized(caught_up), normalized(fresh.clone()));

    // Nothing changed since: an empty delta at the same version.
    let nothing = store
        .snapshot(&site(), None, Some(delta.version))
        .await
        .unwrap();
    assert_eq!(nothing.version, delta.version);
    assert!(nothing.accounts.is_empty() && nothing.cards.is_empty() && nothing.removed.is_empty());
    // A kiosk ahead of the database (restored from a backup) gets everything.
    let ahead = SnapshotVersion(delta.version.0 + 1_000);
    assert_eq!(
        store.snapshot(&site(), None, Some(ahead)).await.unwrap(),
        fresh
    );
}

/// Kiosks upload at once, their ingests committing in whatever order, while another kiosk of
/// the site follows the deltas. Every ingest charges an account of its own, once: a change a
/// delta missed would stay missed, so the deltas merged must equal a full snapshot.
async fn deltas_miss_no_change_of_concurrent_ingests(store: impl Store) {
    const KIOSKS: u8 = 4;
    const UPLOADS: u64 = 8;
    populate(&store).await;
    let mut kiosks = Vec::new();
    for number in 1..=KIOSKS {
        let mut kiosk = Kiosk::new(&format!("kiosk-{number}"), number);
        for upload in 1..=UPLOADS {
            let name = format!("K{number}U{upload}");
            store
                .add_account(&account(&name), Cents::ZERO, at(0))
                .await
                .unwrap();
            store
                .save_pupil(&site(), &pupil(&format!("P{name}"), &name, "q1"))
                .await
                .unwrap();
            kiosk.write(meal(&name, 100 + i64::from(number)));
        }
        store
            .add_device(kiosk.device.clone(), registered_at())
            .await
            .unwrap();
        kiosks.push(kiosk);
    }
    let full = store.snapshot(&site(), None, None).await.unwrap();

    let uploaded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = tokio::spawn({
        let store = store.clone();
        let uploaded = std::sync::Arc::clone(&uploaded);
        async move {
            let mut followed = full;
            loop {
                // Read before the pull: the pull after the last upload sees everything.
                let last = uploaded.load(std::sync::atomic::Ordering::SeqCst);
                let delta = store
                    .snapshot(&site(), None, Some(followed.version))
                    .await
                    .unwrap();
                followed = merged(followed, delta);
                if last {
                    return followed;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let mut uploads = tokio::task::JoinSet::new();
    for kiosk in kiosks {
        let store = store.clone();
        uploads.spawn(async move {
            for seq in 1..=UPLOADS {
                let outcome = store
                    .ingest(&kiosk.device, kiosk.signed(seq, seq), at(100_000))
                    .await
                    .unwrap();
                assert_eq!(outcome.stored, 1);
            }
        });
    }
    while let Some(upload) = uploads.join_next().await {
        upload.unwrap();
    }
    uploaded.store(true, std::sync::atomic::Ordering::SeqCst);
    let followed = follower.await.unwrap();
    let fresh = store.snapshot(&site(), None, None).await.unwrap();
    assert_eq!(normalized(followed), normalized(fresh));
}

/// The interleaving the snapshot versions must survive, made certain on PostgreSQL: one
/// kiosk's ingest starts first (held on an account row from outside) and commits last, after
/// another kiosk's ingest and a delta pulled in between. The held ingest must not hold up the
/// other kiosk's, and the next delta must bring its change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deltas_miss_no_ingest_that_commits_late() {
    let db = common::PostgresDb::new().await;
    let store = db.open().await;
    populate(&store).await;
    let mut early = Kiosk::new("kiosk-early", 1);
    early.write(meal("A1", 100));
    let mut late = Kiosk::new("kiosk-late", 2);
    late.write(meal("A2", 250));
    store
        .add_device(early.device.clone(), registered_at())
        .await
        .unwrap();
    store
        .add_device(late.device.clone(), registered_at())
        .await
        .unwrap();
    let full = store.snapshot(&site(), None, None).await.unwrap();

    let connect = || async {
        let (client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    };
    let mut holder = connect().await;
    let watcher = connect().await;
    let hold = holder.transaction().await.unwrap();
    hold.execute("SELECT 1 FROM accounts WHERE id = 'A2' FOR UPDATE", &[])
        .await
        .unwrap();
    let late_ingest = tokio::spawn({
        let store = store.clone();
        let device = late.device.clone();
        let batch = late.signed(1, 1);
        async move { store.ingest(&device, batch, at(100_000)).await.unwrap() }
    });
    // Until the late ingest waits for the account row.
    let waiting_deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting == 1 {
            break;
        }
        assert!(std::time::Instant::now() < waiting_deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let early_outcome = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.ingest(&early.device, early.signed(1, 1), at(100_000)),
    )
    .await
    .expect("an ingest does not wait for another kiosk's unfinished ingest")
    .unwrap();
    assert_eq!(early_outcome.stored, 1);
    let between = store
        .snapshot(&site(), None, Some(full.version))
        .await
        .unwrap();
    let accounts: Vec<&str> = between.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(accounts, ["A1"]);

    hold.rollback().await.unwrap();
    assert_eq!(late_ingest.await.unwrap().stored, 1);
    let after = store
        .snapshot(&site(), None, Some(between.version))
        .await
        .unwrap();
    let accounts: Vec<&str> = after.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(accounts, ["A2"], "the late commit is in the next delta");
    assert_eq!(after.accounts[0].balance, Cents::new(-250));
    let followed = merged(merged(full, between), after);
    let fresh = store.snapshot(&site(), None, None).await.unwrap();
    assert_eq!(normalized(followed), normalized(fresh));
}

async fn invalid_references_change_nothing(store: impl Store) {
    populate(&store).await;
    let before = store.snapshot(&site(), None, None).await.unwrap();
    let already_bound = pupil_card(&[2, 2, 2, 2], "P3");
    let failures = [
        store
            .save_pupil(&site(), &pupil("P4", "A-NONE", "q1"))
            .await
            .err(),
        store
            .assign_card(&pupil_card(&[7, 7, 7, 7], "P-NONE"))
            .await
            .err(),
        store.assign_card(&already_bound).await.err(),
        store
            .block_card(&CardUid::parse(&[8, 8, 8, 8]).unwrap())
            .await
            .err(),
    ];
    for failure in failures {
        assert!(
            matches!(
                failure,
                Some(StoreError::NotFound { .. } | StoreError::AlreadyExists { .. })
            ),
            "{failure:?}"
        );
    }
    assert_eq!(store.snapshot(&site(), None, None).await.unwrap(), before);
}

async fn operations_move_balances_and_online_payments_credit_once(store: impl Store) {
    store
        .add_account(&account("A1"), Cents::ZERO, at(0))
        .await
        .unwrap();
    let text = |text: &str| Text::parse(text).unwrap();
    let operation = |kind: OperationKind, amount: i64| Operation {
        kind,
        account: account("A1"),
        amount: Cents::new(amount),
        user: "martin".to_owned(),
        at: at(0),
    };
    let top_up = OperationKind::TopUp {
        method: TopUpMethod::Cheque,
        reference: Some(text("chèque n° 12'); DROP TABLE operations;--")),
    };
    let payment = |reference: &str| OperationKind::OnlinePayment {
        reference: text(reference),
    };
    let adjustment = OperationKind::Adjustment {
        reason: text("cash counted twice on 2026-11-27"),
    };
    // The balance after and whether it was a replay, or a word of the error expected.
    type Expected = Result<(i64, bool), &'static str>;
    let cases: Vec<(Operation, Expected)> = vec![
        (operation(top_up, 2_000), Ok((2_000, false))),
        (operation(payment("PAY-0001"), 1_500), Ok((3_500, false))),
        (operation(payment("PAY-0001"), 1_500), Ok((3_500, true))),
        (operation(payment("PAY-0001"), 9_999), Err("already exists")),
        (operation(adjustment.clone(), -500), Ok((3_000, false))),
        (operation(adjustment, i64::MAX), Err("refused")),
        (
            Operation {
                account: account("A-NONE"),
                ..operation(payment("PAY-0002"), 100)
            },
            Err("does not exist"),
        ),
    ];
    let mut last_version = SnapshotVersion(0);
    for (number, (operation, expected)) in cases.into_iter().enumerate() {
        let outcome = store.apply_operation(&operation).await;
        match (outcome, expected) {
            (Ok(outcome), Ok((balance, replayed))) => {
                assert_eq!(outcome.balance, Cents::new(balance), "case {number}");
                assert_eq!(outcome.replayed, replayed, "case {number}");
                assert!(outcome.version >= last_version, "case {number}");
                last_version = outcome.version;
            }
            (Err(error), Err(message)) => {
                assert!(
                    error.to_string().contains(message),
                    "case {number}: {error}"
                );
            }
            (outcome, expected) => panic!("case {number}: {outcome:?}, expected {expected:?}"),
        }
    }
    assert_eq!(
        store
            .account(&account("A1"))
            .await
            .unwrap()
            .unwrap()
            .balance,
        Cents::new(3_000)
    );
    assert_eq!(store.balance_mismatches().await.unwrap(), vec![]);

    let version = store
        .set_overdraft_floor(&account("A1"), Cents::new(-300))
        .await
        .unwrap();
    assert!(version > last_version);
    let edited = store.account(&account("A1")).await.unwrap().unwrap();
    assert_eq!(
        (edited.balance, edited.overdraft_floor),
        (Cents::new(3_000), Cents::new(-300))
    );
    assert!(matches!(
        store
            .set_overdraft_floor(&account("A-NONE"), Cents::ZERO)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn users_are_kept_and_replaced_cards_keep_the_account(store: impl Store) {
    let user = User::new("martin", Role::Staff, Some(site()), "correct horse battery").unwrap();
    store.add_user(&user, registered_at()).await.unwrap();
    assert_eq!(store.user("martin").await.unwrap(), Some(user.clone()));
    assert_eq!(store.user("nobody").await.unwrap(), None);
    assert!(matches!(
        store.add_user(&user, registered_at()).await,
        Err(StoreError::AlreadyExists { .. })
    ));

    populate(&store).await;
    let lost = CardUid::parse(&[1, 1, 1, 1]).unwrap();
    let new = CardUid::parse(&[1, 1, 1, 2]).unwrap();
    let holder = CardHolder::Pupil(proto::PupilId::parse("P1").unwrap());
    assert_eq!(store.holder_site(&holder).await.unwrap(), Some(site()));
    store.replace_card(&lost, &new).await.unwrap();
    assert_eq!(
        store.card(&lost).await.unwrap(),
        Some((holder.clone(), true))
    );
    assert_eq!(
        store.card(&new).await.unwrap(),
        Some((holder.clone(), false))
    );
    let snapshot = store.snapshot(&site(), None, None).await.unwrap();
    snapshot.check_complete().unwrap();
    assert!(snapshot.hotlist.contains(&lost));
    assert!(
        snapshot
            .cards
            .iter()
            .any(|card| card.uid == new && card.holder == holder)
    );
    assert!(matches!(
        store.replace_card(&lost, &new).await,
        Err(StoreError::AlreadyExists { .. })
    ));
}

/// Opening a database again applies no migration twice and keeps the data; a database written
/// by newer software is refused rather than misread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_refuse_a_newer_schema() {
    let sqlite = common::SqliteDb::new();
    let postgres = common::PostgresDb::new().await;
    sqlite
        .open()
        .await
        .add_device(device("kiosk-1", 1), registered_at())
        .await
        .unwrap();
    postgres
        .open()
        .await
        .add_device(device("kiosk-1", 1), registered_at())
        .await
        .unwrap();
    assert!(
        sqlite
            .open()
            .await
            .device(&device_id("kiosk-1"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        postgres
            .open()
            .await
            .device(&device_id("kiosk-1"))
            .await
            .unwrap()
            .is_some()
    );

    let newer = "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)";
    rusqlite::Connection::open(sqlite.path())
        .unwrap()
        .execute(newer, [])
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&postgres.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client.execute(newer, &[]).await.unwrap();
    drop(client);
    connection.await.unwrap().unwrap();
    assert!(matches!(
        backoffice::store::SqliteStore::open(&sqlite.path()).await,
        Err(StoreError::SchemaTooNew { found: 999, .. })
    ));
    assert!(matches!(
        backoffice::store::PostgresStore::open(&postgres.url()).await,
        Err(StoreError::SchemaTooNew { found: 999, .. })
    ));
}

/// The schema version that added the `meals` table.
const MEALS_MIGRATION: i64 = 6;

/// A database whose records were stored before the `meals` table existed lists them once it is
/// opened by this version: the migration fills the table from the stored payloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meals_migration_lists_the_meals_stored_before_it() {
    let mut kiosk = Kiosk::new("kiosk-1", 1);
    kiosk.write(top_up("A1", 2_000));
    kiosk.write(meal("A1", 385));
    kiosk.write(meal_by_staff_on("A1", "2026-11-30"));
    let expected = served(&kiosk.device, &kiosk.written);
    assert_eq!(expected.len(), 2);
    let back_to_before = [
        // What the migrations after it did, undone newest first, so that they run again.
        "DROP TABLE api_tokens".to_owned(),
        "ALTER TABLE users DROP COLUMN disabled_at".to_owned(),
        "DROP INDEX sign_in_failures_by_name".to_owned(),
        "ALTER TABLE sign_in_failures DROP COLUMN client".to_owned(),
        "CREATE INDEX sign_in_failures_by_name ON sign_in_failures (user_name, at)".to_owned(),
        "DROP TABLE meals".to_owned(),
        format!("DELETE FROM schema_migrations WHERE version >= {MEALS_MIGRATION}"),
    ];

    let sqlite = common::SqliteDb::new();
    register_and_ingest(&sqlite.open().await, &kiosk).await;
    let connection = rusqlite::Connection::open(sqlite.path()).unwrap();
    for sql in &back_to_before {
        connection.execute(sql, []).unwrap();
    }
    drop(connection);
    let store = sqlite.open().await;
    assert_eq!(
        store
            .site_meals(&site(), service_date(), SITE_MEALS_MAX)
            .await
            .unwrap(),
        expected,
        "sqlite"
    );

    let postgres = common::PostgresDb::new().await;
    register_and_ingest(&postgres.open().await, &kiosk).await;
    let (client, connection) = tokio_postgres::connect(&postgres.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    for sql in &back_to_before {
        client.execute(sql.as_str(), &[]).await.unwrap();
    }
    drop(client);
    connection.await.unwrap().unwrap();
    let store = postgres.open().await;
    assert_eq!(
        store
            .site_meals(&site(), service_date(), SITE_MEALS_MAX)
            .await
            .unwrap(),
        expected,
        "postgres"
    );
}
