//! The reconciliation of a service day, run against SQLite and PostgreSQL with the same tests:
//! a clean day, duplicate meals proposed for a void and decided by finance, sign-off, and
//! stored data tampered with behind the back-office's back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;
use common::ops::finance;

use backoffice::reconcile::{self, FindingKind, PaymentMethod, Report, TopUpLine, TopUpSource};
use backoffice::store::{ProposedVoid, SavedReconciliation, Store, StoreError, VoidStatus};
use proto::{Cents, ChainHead, Seq, ServiceDate, SigningKey};

use common::day::{
    Db, Till, cash, date, lunch, meal_for, night_after, quoted, settings, two_duplicate_meals,
    void_of,
};
use common::fixtures::{account, key, populate};

common::db_suite!(
    a_day_reconciles_per_kiosk_and_site_and_reruns_identically,
    duplicate_meals_are_proposed_for_a_void_and_decided_by_finance,
    tampered_records_are_caught_and_named,
    rows_that_refer_to_nothing_are_refused,
    events_to_review_are_listed_with_their_evidence,
);

async fn run(store: &impl Store, date: ServiceDate) -> reconcile::Outcome {
    reconcile::run(store, date, None, &settings(), |_, _| {})
        .await
        .unwrap()
}

/// The nightly run of `date` for all sites as finance user `user`, saved.
async fn run_and_save(
    store: &impl Store,
    user: &str,
    date: ServiceDate,
) -> Result<Report, reconcile::ReconcileError> {
    reconcile::run_and_save(
        store,
        &finance(user),
        date,
        None,
        &settings(),
        night_after(),
        |_, _| {},
    )
    .await
}

/// Finance user `finance-1` approves, or rejects, proposed void `id`.
async fn decide(
    store: &impl Store,
    id: i64,
    approve: bool,
) -> Result<ProposedVoid, reconcile::ReconcileError> {
    reconcile::decide(
        store,
        &finance("finance-1"),
        id,
        approve,
        &settings(),
        night_after(),
    )
    .await
}

fn findings_of(report: &Report, device: &str) -> Vec<(FindingKind, Option<u64>)> {
    report
        .findings
        .iter()
        .filter(|finding| finding.device.as_ref().map(proto::DeviceId::as_str) == Some(device))
        .map(|finding| (finding.kind, finding.seq.map(Seq::get)))
        .collect()
}

async fn a_day_reconciles_per_kiosk_and_site_and_reruns_identically(_db: Db, store: impl Store) {
    populate(&store).await;
    let mut k1 = Till::registered(&store, "kiosk-1", 1).await;
    let mut k2 = Till::registered(&store, "kiosk-2", 2).await;
    // A third kiosk, registered, sends nothing that day.
    Till::registered(&store, "kiosk-3", 3).await;
    // The Friday before, closed: the anchor of Monday's chain.
    let friday = ServiceDate::parse("2026-11-27").unwrap();
    k1.write(lunch(-3 * 24 * 60), meal_for("P1", "A1", 385, -385));
    k1.close(lunch(-3 * 24 * 60 + 60), friday, 0);
    k1.write(lunch(0), cash("A1", 2000));
    let mistaken = k1.write(lunch(1), meal_for("P1", "A1", 385, 1230));
    k1.write(lunch(2), meal_for("P2", "A1", 385, 845));
    k1.write(lunch(3), void_of(&mistaken));
    k1.close(lunch(120), date(), 1990);
    k2.write(lunch(5), meal_for("P3", "A2", 385, -385));
    k2.close(lunch(121), date(), 0);
    k1.upload(&store, lunch(180)).await;
    k2.upload(&store, lunch(180)).await;

    let outcome = run(&store, date()).await;
    let report = &outcome.report;
    assert!(outcome.proposals.is_empty());
    assert_eq!(
        findings_of(report, "kiosk-1"),
        vec![
            (FindingKind::Void, Some(6)),
            (FindingKind::CashDifference, Some(7))
        ]
    );
    assert_eq!(
        findings_of(report, "kiosk-2"),
        vec![(FindingKind::Overdraft, Some(1))]
    );
    assert_eq!(
        findings_of(report, "kiosk-3"),
        vec![(FindingKind::NotUploaded, None)]
    );
    let kiosk_1 = &report.kiosks[0];
    assert_eq!(kiosk_1.device.as_str(), "kiosk-1");
    assert_eq!(kiosk_1.first_seq.map(Seq::get), Some(3));
    assert_eq!(kiosk_1.day_close.map(Seq::get), Some(7));
    assert_eq!(kiosk_1.close_matches, Some(true));
    assert!(kiosk_1.chain_clean);
    assert_eq!(kiosk_1.cash_expected, Cents::new(2000));
    assert_eq!(kiosk_1.cash_difference, Some(Cents::new(-10)));
    assert_eq!(kiosk_1.meals, 2);
    assert_eq!(report.kiosks.len(), 3);

    assert_eq!(report.sites.len(), 1);
    let jaures = &report.sites[0];
    assert_eq!(jaures.meals, 3);
    assert_eq!(jaures.revenue, Cents::new(770));
    assert_eq!(jaures.voided_meals, Cents::new(385));
    assert_eq!(jaures.cash_expected, Cents::new(2000));
    assert_eq!(jaures.cash_counted, Cents::new(1990));
    assert_eq!(jaures.cash_difference, Cents::new(-10));
    assert_eq!(report.meals.len(), 1);
    assert_eq!(
        (report.meals[0].count, report.meals[0].total.get()),
        (3, 1155)
    );
    assert_eq!(
        (
            report.meals[0].voided_count,
            report.meals[0].voided_total.get()
        ),
        (1, 385)
    );
    assert_eq!(report.revenue, Cents::new(770));
    assert_eq!(
        report.top_ups,
        vec![TopUpLine {
            source: TopUpSource::Kiosk,
            method: PaymentMethod::Cash,
            count: 1,
            total: Cents::new(2000),
        }]
    );
    let balances = report.balances.unwrap();
    assert!(balances.holds, "{balances:?}");
    assert_eq!(balances.opening, Cents::ZERO);
    assert_eq!(balances.closing, Cents::new(845));

    // Same inputs, same result; stored as run.
    assert_eq!(run(&store, date()).await, outcome);
    let stored_report = run_and_save(&store, "finance-1", date()).await.unwrap();
    assert_eq!(&stored_report, report);
    let saved = store.reconciliation(date(), None).await.unwrap().unwrap();
    assert_eq!(&reconcile::parse_report(&saved).unwrap(), report);
    assert_eq!(saved.run_by, "finance-1");

    // One site only: the same kiosks, without the city-wide balances.
    let site = common::fixtures::site();
    let per_site = reconcile::run(&store, date(), Some(&site), &settings(), |_, _| {})
        .await
        .unwrap()
        .report;
    assert_eq!(per_site.kiosks, report.kiosks);
    assert_eq!(per_site.balances, None);
    let other = proto::SiteId::parse("ferry").unwrap();
    let empty = reconcile::run(&store, date(), Some(&other), &settings(), |_, _| {})
        .await
        .unwrap()
        .report;
    assert!(empty.kiosks.is_empty());
}

async fn duplicate_meals_are_proposed_for_a_void_and_decided_by_finance(
    _db: Db,
    store: impl Store,
) {
    populate(&store).await;
    let (k1, k2) = two_duplicate_meals(&store).await;

    let report = run_and_save(&store, "finance-1", date()).await.unwrap();
    assert_eq!(
        findings_of(&report, "kiosk-2"),
        vec![
            (FindingKind::DuplicateMeal, Some(1)),
            (FindingKind::DuplicateMeal, Some(2))
        ]
    );
    // Its evidence: the meal that stands and the duplicate, as the kiosks signed them.
    let duplicate = report
        .findings
        .iter()
        .find(|finding| finding.kind == FindingKind::DuplicateMeal)
        .unwrap();
    assert_eq!(
        duplicate.evidence,
        vec![
            k1.written[0].signed().clone(),
            k2.written[0].signed().clone()
        ]
    );
    let proposals = store.proposed_voids(Some(date())).await.unwrap();
    assert_eq!(proposals.len(), 2);
    assert!(proposals.iter().all(|proposal| {
        proposal.status == VoidStatus::Pending
            && proposal.device.as_str() == "kiosk-2"
            && proposal.kept_device.as_str() == "kiosk-1"
    }));
    let (p1, p3) = (&proposals[0], &proposals[1]);
    assert_eq!(p1.pupil.as_str(), "P1");

    // Finance must decide first.
    assert!(matches!(
        store
            .sign_off_reconciliation(date(), None, "finance-1", lunch(200))
            .await,
        Err(StoreError::Refused(_))
    ));

    // The next day is signed off already: the correction lands on the day after.
    let tuesday = reconcile::next_date(date()).unwrap();
    run_and_save(&store, "finance-1", tuesday).await.unwrap();
    store
        .sign_off_reconciliation(tuesday, None, "finance-1", lunch(200))
        .await
        .unwrap();
    let wednesday = reconcile::next_date(tuesday).unwrap();

    assert_eq!(
        store.balance(&account("A1")).await.unwrap(),
        Some(Cents::new(-770))
    );
    let approved = decide(&store, p1.id, true).await.unwrap();
    assert_eq!(approved.status, VoidStatus::Approved);
    assert_eq!(approved.correction_date, Some(wednesday));
    assert_eq!(approved.decided_by.as_deref(), Some("finance-1"));
    assert_eq!(
        store.balance(&account("A1")).await.unwrap(),
        Some(Cents::new(-385))
    );
    let wednesday_day = reconcile::Day::new(wednesday, &settings()).unwrap();
    let corrections = store
        .operations_between(wednesday_day.start, wednesday_day.end)
        .await
        .unwrap();
    assert_eq!(corrections.len(), 1);
    assert_eq!(corrections[0].amount, Cents::new(385));
    assert_eq!(corrections[0].kind, "adjustment");

    let rejected = decide(&store, p3.id, false).await.unwrap();
    assert_eq!(rejected.status, VoidStatus::Rejected);
    assert_eq!(
        store.balance(&account("A2")).await.unwrap(),
        Some(Cents::new(-200))
    );
    for (id, approve) in [(p1.id, false), (p3.id, true)] {
        assert!(matches!(
            decide(&store, id, approve).await,
            Err(reconcile::ReconcileError::Store(StoreError::Refused(_)))
        ));
    }
    assert!(store.balance_mismatches().await.unwrap().is_empty());

    // Running again keeps the decisions; then the day is signed off and never changes.
    run_and_save(&store, "finance-2", date()).await.unwrap();
    assert_eq!(
        store
            .proposed_voids(Some(date()))
            .await
            .unwrap()
            .iter()
            .map(|proposal| proposal.status)
            .collect::<Vec<_>>(),
        vec![VoidStatus::Approved, VoidStatus::Rejected]
    );
    let signed = store
        .sign_off_reconciliation(date(), None, "finance-1", lunch(300))
        .await
        .unwrap();
    assert_eq!(signed.signed_off_by.as_deref(), Some("finance-1"));
    assert!(matches!(
        run_and_save(&store, "finance-1", date()).await,
        Err(reconcile::ReconcileError::Store(StoreError::Refused(_)))
    ));
    assert!(matches!(
        store
            .save_reconciliation(
                &SavedReconciliation {
                    report: "{}".to_owned(),
                    ..signed.clone()
                },
                &[]
            )
            .await,
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        store
            .sign_off_reconciliation(date(), None, "finance-2", lunch(400))
            .await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!(
        store.reconciliation(date(), None).await.unwrap(),
        Some(signed)
    );
}

/// A kiosk of the tampering test: five meals and a day close, then one change to its rows.
async fn five_meals(store: &impl Store, name: &str, seed: u8) -> Till {
    let mut till = Till::registered(store, name, seed).await;
    for minute in 0..5 {
        till.write(
            lunch(minute),
            meal_for(&format!("P{seed}-{minute}"), "A1", 385, 0),
        );
    }
    till
}

/// The database itself refuses a movement or a record that refers to nothing, and removing or
/// renaming what stored rows refer to, whoever writes.
async fn rows_that_refer_to_nothing_are_refused(db: Db, store: impl Store) {
    populate(&store).await;
    let till = five_meals(&store, "k-refs", 10).await;
    till.upload(&store, lunch(30)).await;
    let stored = store.records(&till.device.id).await.unwrap();
    let balance = store.balance(&account("A1")).await.unwrap();
    for sql in [
        "INSERT INTO movements (account, amount, device, seq, at)
         VALUES ('A1', -385, 'k-refs', 99, 0)",
        "INSERT INTO movements (account, amount, device, seq, at)
         VALUES ('A-nobody', -385, 'k-refs', 2, 0)",
        "INSERT INTO records (device, seq, hash, kind, payload, signature, kiosk_at, received_at)
         SELECT 'k-nowhere', seq, hash, kind, payload, signature, kiosk_at, received_at
         FROM records WHERE device = 'k-refs'",
        "DELETE FROM records WHERE device = 'k-refs' AND seq = 2",
        "DELETE FROM accounts WHERE id = 'A1'",
        "DELETE FROM devices WHERE id = 'k-refs'",
        "UPDATE records SET seq = seq + 100 WHERE device = 'k-refs'",
        "UPDATE movements SET account = 'A-nobody' WHERE device = 'k-refs'",
        "UPDATE accounts SET id = 'A-renamed' WHERE id = 'A1'",
    ] {
        assert!(db.try_tamper(sql).await.is_err(), "not refused: {sql}");
    }
    assert_eq!(store.records(&till.device.id).await.unwrap(), stored);
    assert_eq!(store.balance(&account("A1")).await.unwrap(), balance);
    // What refers to nothing any more can still go, in order.
    db.tamper(
        "DELETE FROM movements WHERE device = 'k-refs' AND seq = 2;
         DELETE FROM records WHERE device = 'k-refs' AND seq = 2;",
    )
    .await;
}

async fn tampered_records_are_caught_and_named(db: Db, store: impl Store) {
    populate(&store).await;
    store
        .set_overdraft_floor(&account("A1"), Cents::new(-5000))
        .await
        .unwrap();
    let mut clean = five_meals(&store, "k-clean", 10).await;
    let mut edited = five_meals(&store, "k-edit", 11).await;
    let mut deleted = five_meals(&store, "k-delete", 12).await;
    let mut duplicated = five_meals(&store, "k-dup", 13).await;
    let mut swapped = five_meals(&store, "k-swap", 14).await;
    let mut forged = five_meals(&store, "k-forged", 15).await;
    let mut revoked = five_meals(&store, "k-revoked", 17).await;
    for till in [
        &mut clean,
        &mut edited,
        &mut deleted,
        &mut duplicated,
        &mut swapped,
        &mut forged,
        &mut revoked,
    ] {
        till.close(lunch(60), date(), 0);
        till.upload(&store, lunch(180)).await;
    }
    // A day close signed by the kiosk whose totals are not its records'.
    let mut lying = five_meals(&store, "k-lying", 16).await;
    let mut body = lying.close_body(date(), 0);
    body.lines[0].count -= 1;
    body.lines[0].total = Cents::new(body.lines[0].total.get() - 385);
    lying.write(lunch(60), proto::RecordBody::DayClose(body));
    lying.upload(&store, lunch(180)).await;

    // The stored rows changed by someone with access to the database.
    db.tamper(
        "UPDATE records SET payload = replace(payload, '\"price\":385', '\"price\":1')
         WHERE device = 'k-edit' AND seq = 2",
    )
    .await;
    db.tamper(
        "DELETE FROM movements WHERE device = 'k-delete' AND seq = 3;
         DELETE FROM records WHERE device = 'k-delete' AND seq = 3;",
    )
    .await;
    db.tamper(
        "UPDATE records SET
            payload = (SELECT payload FROM records WHERE device = 'k-dup' AND seq = 2),
            signature = (SELECT signature FROM records WHERE device = 'k-dup' AND seq = 2)
         WHERE device = 'k-dup' AND seq = 3",
    )
    .await;
    db.tamper(
        "CREATE TABLE scratch AS SELECT seq, payload, signature FROM records
            WHERE device = 'k-swap' AND seq IN (3, 4);
         UPDATE records SET
            payload = (SELECT payload FROM scratch WHERE scratch.seq = 7 - records.seq),
            signature = (SELECT signature FROM scratch WHERE scratch.seq = 7 - records.seq)
         WHERE device = 'k-swap' AND seq IN (3, 4);
         DROP TABLE scratch;",
    )
    .await;
    let close = forged.written.last().unwrap().signed().clone();
    let forged_payload = close.payload.replace(
        "\"cash_counted\":0,\"cash_difference\":0",
        "\"cash_counted\":500,\"cash_difference\":500",
    );
    assert_ne!(forged_payload, close.payload);
    let forger: SigningKey = key(99);
    let forged_signature = forger.sign(forged_payload.as_bytes()).to_base64();
    db.tamper(&format!(
        "UPDATE records SET payload = {}, signature = {} WHERE device = 'k-forged' AND seq = 6",
        quoted(&forged_payload),
        quoted(&forged_signature)
    ))
    .await;
    store
        .revoke_device(&revoked.device.id, lunch(2))
        .await
        .unwrap();

    let report = run(&store, date()).await.report;
    assert!(
        findings_of(&report, "k-clean").is_empty(),
        "{:?}",
        findings_of(&report, "k-clean")
    );
    let check = |device: &str, kind: FindingKind, seq: u64| {
        let found = findings_of(&report, device);
        assert!(
            found.contains(&(kind, Some(seq))),
            "{device}: expected {kind:?} at seq {seq}, found {found:?}"
        );
        let kiosk = report
            .kiosks
            .iter()
            .find(|kiosk| kiosk.device.as_str() == device)
            .unwrap();
        assert!(!kiosk.chain_clean, "{device}");
    };
    check("k-edit", FindingKind::BadSignature, 2);
    check("k-delete", FindingKind::Gap, 3);
    check("k-dup", FindingKind::DuplicateRecord, 2);
    check("k-swap", FindingKind::ReorderedRecords, 3);
    check("k-forged", FindingKind::ForgedDayClose, 6);
    check("k-lying", FindingKind::DayCloseMismatch, 6);
    check("k-revoked", FindingKind::SignedAfterRevocation, 3);
    // The deleted meal's money vanished from the ledger too.
    assert!(report.kinds().contains(&FindingKind::BalanceMismatch));
    assert!(!report.is_clean());
}

async fn events_to_review_are_listed_with_their_evidence(_db: Db, store: impl Store) {
    use proto::record::{ClockDrift, MealVia, RefusalReason, TapRefused};
    populate(&store).await;
    let mut till = Till::registered(&store, "kiosk-1", 1).await;
    let card = proto::CardUid::parse(&[9, 9, 9, 9]).unwrap();
    for reason in [RefusalReason::BlockedCard, RefusalReason::UnknownCard] {
        till.write(
            lunch(0),
            proto::RecordBody::TapRefused(TapRefused {
                card,
                reason,
                service: None,
            }),
        );
    }
    let mut by_staff = meal_for("P2", "A1", 385, 0);
    if let proto::RecordBody::Meal(meal) = &mut by_staff {
        meal.via = MealVia::Staff(proto::StaffId::parse("staff-martin").unwrap());
    }
    till.write(lunch(1), by_staff);
    till.write(
        lunch(2),
        proto::RecordBody::ClockDrift(ClockDrift {
            backoffice_time: lunch(2),
            drift_ms: 95_000,
        }),
    );
    till.close(lunch(60), date(), 0);
    // Uploaded two days later.
    till.upload(&store, lunch(2 * 24 * 60)).await;
    // Another record at seq 2, properly signed: a fork, refused and kept as evidence.
    let mut other = ChainHead::after(&till.written[0]);
    let forked = other
        .append(
            &till.key,
            &till.device.id,
            lunch(3),
            meal_for("P3", "A2", 100, 0),
        )
        .unwrap();
    store
        .ingest(
            &till.device,
            vec![forked.signed().clone()],
            lunch(2 * 24 * 60),
        )
        .await
        .unwrap();

    let report = run(&store, date()).await.report;
    let found = findings_of(&report, "kiosk-1");
    for expected in [
        (FindingKind::LateUpload, Some(1)),
        (FindingKind::BlockedCard, Some(1)),
        (FindingKind::UnknownCard, Some(2)),
        (FindingKind::ServedWithoutCard, Some(3)),
        (FindingKind::ClockDrift, Some(4)),
        (FindingKind::Quarantined, Some(2)),
    ] {
        assert!(
            found.contains(&expected),
            "expected {expected:?} in {found:?}"
        );
    }
    assert!(
        report
            .findings
            .iter()
            .all(|finding| !finding.action.is_empty())
    );
    let quarantined = report
        .findings
        .iter()
        .find(|finding| finding.kind == FindingKind::Quarantined)
        .unwrap();
    assert_eq!(quarantined.evidence, vec![forked.signed().clone()]);
    assert!(
        quarantined.detail.starts_with("fork"),
        "{}",
        quarantined.detail
    );
}
