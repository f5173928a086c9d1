//! Finance exports on SQLite and PostgreSQL: the journal balances, the CSV files hold the day's
//! rows, and a records export verifies, while every tampering of the file is caught and named
//! by `verify`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use backoffice::export::{self, ExportKind, Period, Violation};
use backoffice::reconcile::FindingKind;
use backoffice::store::Store;
use proto::{ServiceDate, SignedRecord};

use common::day::{Db, Till, cash, date, lunch, meal_for, settings, void_of};
use common::fixtures::{key, populate};

common::db_suite!(
    csv_and_journal_hold_the_day_and_balance,
    a_records_export_verifies_and_tampering_is_named,
);

async fn export(store: &impl Store, kind: ExportKind, from: ServiceDate) -> String {
    let mut bytes = Vec::new();
    export::write(
        store,
        &common::ops::finance("finance-1"),
        kind,
        Period::new(from, date()).unwrap(),
        None,
        &settings(),
        &mut bytes,
    )
    .await
    .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Two kiosks' day: meals, a cash top-up, a void, a cash shortfall.
async fn a_day(store: &impl Store) -> (Till, Till) {
    populate(store).await;
    let mut k1 = Till::registered(store, "kiosk-1", 1).await;
    let mut k2 = Till::registered(store, "kiosk-2", 2).await;
    let friday = ServiceDate::parse("2026-11-27").unwrap();
    k1.write(lunch(-3 * 24 * 60), meal_for("P1", "A1", 385, 0));
    k1.close(lunch(-3 * 24 * 60 + 60), friday, 0);
    k1.write(lunch(0), cash("A1", 2000));
    let mistaken = k1.write(lunch(1), meal_for("P1", "A1", 385, 0));
    k1.write(lunch(2), meal_for("P2", "A1", 385, 0));
    k1.write(lunch(3), void_of(&mistaken));
    k1.close(lunch(120), date(), 1990);
    k2.write(lunch(5), meal_for("P3", "A2", 100, 0));
    k2.close(lunch(121), date(), 0);
    k1.upload(store, lunch(180)).await;
    k2.upload(store, lunch(180)).await;
    (k1, k2)
}

fn cents(amount: &str) -> i64 {
    let (units, hundredths) = amount.split_once(',').unwrap();
    units.parse::<i64>().unwrap() * 100 + hundredths.parse::<i64>().unwrap()
}

async fn csv_and_journal_hold_the_day_and_balance(_db: Db, store: impl Store) {
    a_day(&store).await;
    let meals = export(&store, ExportKind::Meals, date()).await;
    let rows: Vec<&str> = meals.lines().collect();
    assert_eq!(rows.len(), 4, "{meals}");
    assert!(rows[0].starts_with("service_date,site,device,seq"));
    assert_eq!(
        rows.iter().filter(|row| row.ends_with(",true")).count(),
        1,
        "one voided meal: {meals}"
    );
    let top_ups = export(&store, ExportKind::TopUps, date()).await;
    assert_eq!(top_ups.lines().count(), 2, "{top_ups}");
    assert!(top_ups.contains(",kiosk,jaures,kiosk-1/3,"), "{top_ups}");
    let summary = export(&store, ExportKind::Summary, date()).await;
    assert_eq!(
        summary.lines().nth(1).unwrap(),
        "2026-11-30,jaures,2,3,485,385,2000,0,2000,1990,-10,",
        "{summary}"
    );

    // Three days: the Friday's meal is in it too.
    let friday = ServiceDate::parse("2026-11-27").unwrap();
    let journal = export(&store, ExportKind::Journal, friday).await;
    let lines: Vec<Vec<&str>> = journal
        .lines()
        .map(|line| line.split('\t').collect())
        .collect();
    assert_eq!(lines[0], export::FEC_COLUMNS.to_vec());
    assert!(lines.iter().all(|line| line.len() == 18), "{journal}");
    let (mut debit, mut credit) = (0, 0);
    let mut by_account = std::collections::BTreeMap::<&str, i64>::new();
    for line in &lines[1..] {
        debit += cents(line[11]);
        credit += cents(line[12]);
        *by_account.entry(line[4]).or_default() += cents(line[11]) - cents(line[12]);
        assert!(
            export::ACCOUNTS
                .iter()
                .any(|(number, label, _)| *number == line[4] && *label == line[5]),
            "{line:?}"
        );
    }
    assert_eq!(debit, credit, "{journal}");
    // Meals 385 (Friday) + 770 + 100, voided 385: revenue 870 credited to 706.
    assert_eq!(by_account["706"], -870, "{journal}");
    // Cash 2000 paid in, 10 short.
    assert_eq!(by_account["530"], 1990, "{journal}");
    assert_eq!(by_account["658"], 10, "{journal}");
    assert!(!by_account.contains_key("758"), "{journal}");
    assert_eq!(by_account["4191"], 870 - 2000, "{journal}");
    assert!(
        lines[1..]
            .iter()
            .any(|line| line[0] == "VT" && line[3] == "20261127")
    );
}

fn kinds(violations: &[Violation]) -> Vec<(FindingKind, Option<u64>)> {
    violations
        .iter()
        .map(|violation| (violation.kind, violation.seq.map(proto::Seq::get)))
        .collect()
}

async fn a_records_export_verifies_and_tampering_is_named(_db: Db, store: impl Store) {
    let (k1, _) = a_day(&store).await;
    let text = export(&store, ExportKind::Records, date()).await;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Two key lines, then kiosk-1 from its Friday close (seq 2) to Monday's (7), kiosk-2's 2.
    assert_eq!(lines.len(), 2 + 6 + 2, "{text}");
    let verified = export::verify(text.as_bytes()).unwrap();
    assert_eq!(verified.violations, vec![]);
    assert_eq!((verified.devices, verified.records), (2, 8));

    let line_of = |seq: u64| {
        lines
            .iter()
            .position(|line| {
                SignedRecord::from_json(line.as_bytes()).is_ok_and(|record| {
                    record.payload.contains("\"device\":\"kiosk-1\"")
                        && record.claimed_seq().map(proto::Seq::get) == Some(seq)
                })
            })
            .unwrap()
    };
    let check = |name: &str, tampered: Vec<String>, expected: (FindingKind, u64)| {
        let verification = export::verify(tampered.join("\n").as_bytes()).unwrap();
        let found = kinds(&verification.violations);
        assert!(
            found.contains(&(expected.0, Some(expected.1))),
            "{name}: expected {expected:?}, found {found:?}"
        );
    };

    let mut edited = lines.clone();
    edited[line_of(3)] = edited[line_of(3)].replace("\\\"amount\\\":2000", "\\\"amount\\\":20000");
    assert_ne!(edited, lines);
    check("edited amount", edited, (FindingKind::BadSignature, 3));

    let mut deleted = lines.clone();
    deleted.remove(line_of(4));
    check("deleted record", deleted, (FindingKind::Gap, 4));

    let mut duplicated = lines.clone();
    duplicated.insert(line_of(4), lines[line_of(4)].clone());
    check(
        "duplicated record",
        duplicated,
        (FindingKind::DuplicateRecord, 4),
    );

    let mut reordered = lines.clone();
    reordered.swap(line_of(4), line_of(5));
    check(
        "reordered pair",
        reordered,
        (FindingKind::ReorderedRecords, 4),
    );

    let close = k1.written.last().unwrap().signed().clone();
    let forged_payload = close.payload.replace(
        "\"cash_counted\":1990,\"cash_difference\":-10",
        "\"cash_counted\":2000,\"cash_difference\":0",
    );
    assert_ne!(forged_payload, close.payload);
    let forged = SignedRecord {
        signature: key(99).sign(forged_payload.as_bytes()).to_base64(),
        payload: forged_payload,
    };
    let mut forged_close = lines.clone();
    forged_close[line_of(7)] = forged.to_json();
    check(
        "forged day close",
        forged_close,
        (FindingKind::ForgedDayClose, 7),
    );

    // The key revoked before the Monday's records were signed.
    store.revoke_device(&k1.device.id, lunch(2)).await.unwrap();
    let revoked = export(&store, ExportKind::Records, date()).await;
    let verification = export::verify(revoked.as_bytes()).unwrap();
    assert_eq!(
        kinds(&verification.violations),
        vec![
            (FindingKind::SignedAfterRevocation, Some(5)),
            (FindingKind::SignedAfterRevocation, Some(6)),
            (FindingKind::SignedAfterRevocation, Some(7)),
        ]
    );
}
