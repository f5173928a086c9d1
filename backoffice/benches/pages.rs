//! The web pages under a city's data: 50,000 accounts (one pupil and one card each) over 120
//! sites with two kiosks each, and a school year of meals (every pupil, every service day)
//! with their movements and per-day totals. Each page is fetched over HTTP with a signed-in
//! session, round after round, and its p99 compared with the 50 ms target. Run with `make
//! bench` (`cargo bench -p backoffice --bench pages [-- ROUNDS]`; `PAGES_BENCH_DAYS` sets the
//! days of records, 180 by default).
//!
//! The year is written straight into the SQLite file, since signing and ingesting nine million
//! records would take the bench's whole budget and the pages never verify old records: rows
//! have the stored shape (records, movements, the meals list and the per-day totals), and the
//! last day's payloads are real canonical meals signed by their kiosk's key. The day's
//! reconciliation, for all sites and for one, is stored as a normal school day's would be, with
//! its findings, their signed evidence and the voids it proposes; the page of a day not yet
//! reconciled is measured too. Accounts, sessions and everything else go through the store.
//! The database is a temporary file: set `TMPDIR` to a disk with room for it (about 6 GB for
//! the year).

// Latencies are reports, not money.
#![allow(clippy::float_arithmetic, clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backoffice::reconcile::{
    BalanceCheck, Finding, FindingKind, KioskDay, MealLine, PaymentMethod, Report, SiteDay,
    TopUpLine, TopUpSource,
};
use backoffice::store::{ProposedVoid, SavedReconciliation, Store, VoidStatus};
use backoffice::users::Role;
use proto::record::{Meal, MealVia, Payload, RecordBody};
use proto::snapshot::Pupil;
use proto::{
    AccountId, BracketId, CardUid, Cents, Digest, MealType, PupilId, Seq, ServiceDate, ServiceId,
    SignedRecord, SiteId, Text, Timestamp,
};

use common::SqliteDb;
use common::app::TestApp;
use common::fixtures::add_users;
use common::fixtures::key;

const ACCOUNTS: usize = 50_000;
const SITES: usize = 120;
const KIOSKS_PER_SITE: usize = 2;
const DAYS_DEFAULT: usize = 180;
const ROUNDS_DEFAULT: usize = 5;
/// Requests of each page per round.
const REQUESTS_PER_ROUND: usize = 40;
const TARGET_P99_MS: f64 = 50.0;
const PASSWORD: &str = "correct horse battery";
/// SQLite's page cache while loading, in KiB: the indexes written at random places fit.
const LOAD_CACHE_KIB: i64 = 1_500_000;

fn site(n: usize) -> String {
    format!("site{n:03}")
}

fn kiosk(site_n: usize, k: usize) -> String {
    format!("{}-k{k}", site(site_n))
}

/// Today's records of each kiosk, as written: `(seq, the signed record, the account number)`.
type TodayRecords = BTreeMap<String, Vec<(u64, SignedRecord, usize)>>;

/// The kiosk of account `n`: its site's kiosks take its pupils in turn.
fn kiosk_of(n: usize) -> (usize, usize) {
    (n % SITES, (n / SITES) % KIOSKS_PER_SITE)
}

/// The seed of a kiosk's key, registered with its device.
fn key_seed(site_n: usize, k: usize) -> u8 {
    u8::try_from((site_n * KIOSKS_PER_SITE + k) % 250).unwrap()
}

fn card_uid(n: usize) -> [u8; 4] {
    let uid = u32::try_from(n).unwrap().to_be_bytes();
    [0xbe, uid[1], uid[2], uid[3]]
}

/// Writes the city and its year of records into the database file, one transaction a day,
/// with the rollback journal off: a failed load is thrown away, never used. Returns today's
/// records, whose payloads are real canonical meals signed by their kiosk's key.
fn load_year(path: &std::path::Path, days: usize, today: ServiceDate) -> TodayRecords {
    let mut connection = rusqlite::Connection::open(path).unwrap();
    connection
        .pragma_update(None, "journal_mode", "OFF")
        .unwrap();
    connection
        .pragma_update(None, "synchronous", "OFF")
        .unwrap();
    // The indexes written at random places (movements by account) stay in memory.
    connection
        .pragma_update(None, "cache_size", -LOAD_CACHE_KIB)
        .unwrap();
    let transaction = connection.transaction().unwrap();
    {
        let mut account = transaction
            .prepare("INSERT INTO accounts (id, balance, overdraft_floor, created_at, version) VALUES (?1, ?2, 0, 0, 1)")
            .unwrap();
        let mut pupil = transaction
            .prepare(
                "INSERT INTO pupils (id, site, account, data, version) VALUES (?1, ?2, ?3, ?4, 1)",
            )
            .unwrap();
        let mut card = transaction
            .prepare("INSERT INTO cards (uid, site, holder_kind, holder, blocked, version) VALUES (?1, ?2, 'pupil', ?3, 0, 1)")
            .unwrap();
        for n in 0..ACCOUNTS {
            let id = format!("F{n:06}");
            let pupil_id = format!("Q{n:06}");
            let days_i64 = i64::try_from(days).unwrap();
            account
                .execute(rusqlite::params![id, 10_000 - 385 * days_i64])
                .unwrap();
            let data = serde_json::to_string(&Pupil {
                id: PupilId::parse(&pupil_id).unwrap(),
                account: AccountId::parse(&id).unwrap(),
                first_name: Text::parse(["Léa", "Tom", "Inès", "Hugo"][n % 4]).unwrap(),
                last_name: Text::parse(&format!("Nom{n:05}")).unwrap(),
                bracket: BracketId::parse("q2").unwrap(),
                dietary: Vec::new(),
            })
            .unwrap();
            pupil
                .execute(rusqlite::params![pupil_id, site(n % SITES), id, data])
                .unwrap();
            card.execute(rusqlite::params![
                &card_uid(n)[..],
                site(n % SITES),
                pupil_id
            ])
            .unwrap();
        }
        let mut device = transaction
            .prepare("INSERT INTO devices (id, site, public_key, added_at, revoked_at) VALUES (?1, ?2, ?3, 0, NULL)")
            .unwrap();
        let mut report = transaction
            .prepare("INSERT INTO kiosks (device, last_seen, report) VALUES (?1, ?2, ?3)")
            .unwrap();
        let now = common::fixtures::app_now();
        for s in 0..SITES {
            for k in 0..KIOSKS_PER_SITE {
                device
                    .execute(rusqlite::params![
                        kiosk(s, k),
                        site(s),
                        &key(key_seed(s, k)).public_key().as_bytes()[..]
                    ])
                    .unwrap();
                // Every tenth kiosk has been silent for an hour.
                let last_seen = now.unix_ms() - if s % 10 == 0 { 3_600_000 } else { 20_000 };
                let text = serde_json::json!({
                    "software_version": "0.1.0", "reader": "ready", "unsynced_records": 3,
                    "kiosk_time": now.to_string(),
                });
                report
                    .execute(rusqlite::params![kiosk(s, k), last_seen, text.to_string()])
                    .unwrap();
            }
        }
    }
    transaction.commit().unwrap();
    let keys: BTreeMap<String, proto::SigningKey> = (0..SITES)
        .flat_map(|s| (0..KIOSKS_PER_SITE).map(move |k| (kiosk(s, k), key(key_seed(s, k)))))
        .collect();
    let mut seqs: BTreeMap<String, u64> = BTreeMap::new();
    let mut meal_days: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut today_records = TodayRecords::new();
    let zero_hash = [0_u8; 32];
    let loading = Instant::now();
    for back in (0..days).rev() {
        let transaction = connection.transaction().unwrap();
        let mut record = transaction
            .prepare_cached("INSERT INTO records (device, seq, hash, kind, payload, signature, kiosk_at, received_at) VALUES (?1, ?2, ?3, 'meal', ?4, ?5, ?6, ?6)")
            .unwrap();
        let mut movement = transaction
            .prepare_cached("INSERT INTO movements (account, amount, device, seq, reverses_seq, at) VALUES (?1, -385, ?2, ?3, NULL, ?4)")
            .unwrap();
        let mut served = transaction
            .prepare_cached("INSERT INTO meals (site, service_date, kiosk_at, device, seq, service, meal_type, account, pupil, via_card, via_staff, price) VALUES (?1, ?2, ?3, ?4, ?5, 'lunch', 'lunch', ?6, ?7, ?8, ?9, 385)")
            .unwrap();
        let day =
            backoffice::web::layout::days_before(today, i64::try_from(back).unwrap()).unwrap();
        let day_text = day.to_string();
        let (start, _) = backoffice::web::layout::day_bounds(day).unwrap();
        for n in 0..ACCOUNTS {
            let (site_n, k) = kiosk_of(n);
            let device = kiosk(site_n, k);
            let seq = seqs.entry(device.clone()).or_insert(0);
            *seq += 1;
            // Lunch from 11:30, a pupil every two seconds at each kiosk.
            let at_ms = start.unix_ms()
                + 11 * 3_600_000
                + 1_800_000
                + i64::try_from(n / (SITES * KIOSKS_PER_SITE)).unwrap() * 2_000;
            let account = format!("F{n:06}");
            let pupil = format!("Q{n:06}");
            // One pupil in fifty forgot the card and was served by name.
            let by_staff = n % 50 == 0;
            let (payload, signature) = if back == 0 {
                let via = if by_staff {
                    MealVia::Staff(proto::StaffId::parse("staff-martin").unwrap())
                } else {
                    MealVia::Card(CardUid::parse(&card_uid(n)).unwrap())
                };
                let payload = Payload {
                    v: proto::record::FORMAT_VERSION,
                    device: proto::DeviceId::parse(&device).unwrap(),
                    seq: Seq::new(*seq).unwrap(),
                    prev: Digest::of(b"previous"),
                    at: Timestamp::from_unix_ms(at_ms).unwrap(),
                    body: RecordBody::Meal(Meal {
                        service: ServiceId::parse("lunch").unwrap(),
                        service_date: day,
                        meal_type: MealType::parse("lunch").unwrap(),
                        account: AccountId::parse(&account).unwrap(),
                        pupil: PupilId::parse(&pupil).unwrap(),
                        bracket: BracketId::parse("q2").unwrap(),
                        price: Cents::new(385),
                        balance_after: Cents::new(0),
                        via,
                    }),
                }
                .to_canonical_json();
                let signature = keys[&device].sign(payload.as_bytes()).to_base64();
                today_records.entry(device.clone()).or_default().push((
                    *seq,
                    SignedRecord {
                        payload: payload.clone(),
                        signature: signature.clone(),
                    },
                    n,
                ));
                (payload, signature)
            } else {
                ("{}".to_owned(), String::new())
            };
            let seq = i64::try_from(*seq).unwrap();
            record
                .execute(rusqlite::params![
                    device,
                    seq,
                    &zero_hash[..],
                    payload,
                    signature,
                    at_ms
                ])
                .unwrap();
            movement
                .execute(rusqlite::params![account, device, seq, at_ms])
                .unwrap();
            let (via_card, via_staff) = if by_staff {
                (None, Some("staff-martin"))
            } else {
                (Some(format!("be{n:06x}")), None)
            };
            served
                .execute(rusqlite::params![
                    site(site_n),
                    day_text,
                    at_ms,
                    device,
                    seq,
                    account,
                    pupil,
                    via_card,
                    via_staff
                ])
                .unwrap();
            *meal_days
                .entry((site(site_n), day_text.clone()))
                .or_default() += 1;
        }
        drop((record, movement, served));
        transaction.commit().unwrap();
        let written = days - back;
        if written.is_multiple_of(10) {
            println!(
                "pages: {written} of {days} days written in {:.0} s",
                loading.elapsed().as_secs_f64()
            );
        }
    }
    let transaction = connection.transaction().unwrap();
    {
        let mut day_row = transaction
            .prepare("INSERT INTO meal_days (site, service_date, meals, revenue) VALUES (?1, ?2, ?3, ?4)")
            .unwrap();
        for ((site, day), meals) in meal_days {
            day_row
                .execute(rusqlite::params![site, day, meals, meals * 385])
                .unwrap();
        }
    }
    transaction.commit().unwrap();
    today_records
}

/// A finding of `kind` at a kiosk, with its evidence.
fn finding(
    kind: FindingKind,
    site_n: usize,
    k: usize,
    seq: Option<u64>,
    detail: String,
    evidence: Vec<SignedRecord>,
) -> Finding {
    Finding {
        kind,
        site: Some(SiteId::parse(&site(site_n)).unwrap()),
        device: Some(proto::DeviceId::parse(&kiosk(site_n, k)).unwrap()),
        seq: seq.map(|seq| Seq::new(seq).unwrap()),
        detail,
        action: kind.action().to_owned(),
        evidence,
    }
}

/// A reconciliation of today as finance would find it after a normal day, for all sites or
/// one: every kiosk with its day close (but one missing), its figures, and the findings a city
/// sees on a school day (meals served by name, overdrafts, voids, a few duplicate meals with
/// their proposed voids, cash differences, late uploads, clock drift), each with its signed
/// evidence.
fn reconciliation(
    today: ServiceDate,
    only: Option<usize>,
    records: &TodayRecords,
) -> (SavedReconciliation, Vec<ProposedVoid>) {
    let (day_start, day_end) = backoffice::web::layout::day_bounds(today).unwrap();
    let sites: Vec<usize> = only.map_or_else(|| (0..SITES).collect(), |s| vec![s]);
    let mut kiosks = Vec::new();
    let mut site_days = Vec::new();
    let mut meal_lines = Vec::new();
    let mut findings = Vec::new();
    let mut proposals = Vec::new();
    let mut records_checked = 0;
    let mut revenue = Cents::ZERO;
    for &s in &sites {
        let site_id = SiteId::parse(&site(s)).unwrap();
        let mut site_meals = 0;
        for k in 0..KIOSKS_PER_SITE {
            let written = &records[&kiosk(s, k)];
            let meals = u64::try_from(written.len()).unwrap();
            let last = written.last().unwrap().0;
            // One kiosk of the city has not closed its day.
            let closed = !(s == 50 && k == 1);
            kiosks.push(KioskDay {
                device: proto::DeviceId::parse(&kiosk(s, k)).unwrap(),
                site: site_id.clone(),
                expected: true,
                first_seq: Some(Seq::new(written[0].0).unwrap()),
                last_seq: Some(Seq::new(last + u64::from(closed)).unwrap()),
                records: meals + u64::from(closed),
                day_close: closed.then(|| Seq::new(last + 1).unwrap()),
                close_matches: closed.then_some(true),
                cash_expected: Cents::new(12_000),
                cash_counted: closed
                    .then(|| Cents::new(12_000 - if s % 10 == 3 { 500 } else { 0 })),
                cash_difference: closed.then(|| Cents::new(if s % 10 == 3 { -500 } else { 0 })),
                meals,
                revenue: Cents::new(385 * i64::try_from(meals).unwrap()),
                chain_clean: true,
            });
            records_checked += meals + u64::from(closed);
            site_meals += meals;
            if s % 10 == 0 {
                findings.push(finding(
                    FindingKind::LateUpload,
                    s,
                    k,
                    Some(last),
                    format!("{} records uploaded 3 h after the day ended", meals),
                    Vec::new(),
                ));
            }
            if !closed {
                findings.push(finding(
                    FindingKind::NoDayClose,
                    s,
                    k,
                    None,
                    "no day close uploaded for the day".to_owned(),
                    Vec::new(),
                ));
            }
        }
        let site_revenue = Cents::new(385 * i64::try_from(site_meals).unwrap());
        revenue = revenue.checked_add(site_revenue).unwrap();
        site_days.push(SiteDay {
            site: Some(site_id.clone()),
            kiosks: u32::try_from(KIOSKS_PER_SITE).unwrap(),
            meals: site_meals,
            revenue: site_revenue,
            voided_meals: Cents::ZERO,
            top_ups_cash: Cents::new(24_000),
            top_ups_cheque: Cents::new(6_000),
            cash_expected: Cents::new(24_000),
            cash_counted: Cents::new(24_000 - if s % 10 == 3 { 500 } else { 0 }),
            cash_difference: Cents::new(if s % 10 == 3 { -500 } else { 0 }),
        });
        meal_lines.push(MealLine {
            site: site_id.clone(),
            meal_type: MealType::parse("lunch").unwrap(),
            bracket: BracketId::parse("q2").unwrap(),
            count: site_meals,
            total: site_revenue,
            voided_count: 0,
            voided_total: Cents::ZERO,
        });
        let first = &records[&kiosk(s, 0)];
        let second = &records[&kiosk(s, 1)];
        for (seq, record, n) in first.iter().take(2) {
            findings.push(finding(
                FindingKind::ServedWithoutCard,
                s,
                0,
                Some(*seq),
                format!("pupil Q{n:06} served by staff-martin without a card"),
                vec![record.clone()],
            ));
        }
        if s % 3 == 1 {
            let (seq, record, n) = &first[10];
            findings.push(finding(
                FindingKind::Overdraft,
                s,
                0,
                Some(*seq),
                format!("account F{n:06} at -3.85 EUR, below its floor of 0.00 EUR"),
                vec![record.clone()],
            ));
        }
        if s % 5 == 2 {
            let (seq, record, n) = &second[20];
            findings.push(finding(
                FindingKind::Void,
                s,
                1,
                Some(*seq),
                format!("meal of pupil Q{n:06} voided: served twice by mistake"),
                vec![record.clone()],
            ));
        }
        if s % 10 == 7 {
            let (kept_seq, kept, n) = &first[30];
            let (seq, duplicate, _) = &second[30];
            findings.push(finding(
                FindingKind::DuplicateMeal,
                s,
                1,
                Some(*seq),
                format!("pupil Q{n:06} charged twice for lunch, at both kiosks"),
                vec![kept.clone(), duplicate.clone()],
            ));
            proposals.push(ProposedVoid {
                id: 0,
                date: today,
                device: proto::DeviceId::parse(&kiosk(s, 1)).unwrap(),
                seq: Seq::new(*seq).unwrap(),
                kept_device: proto::DeviceId::parse(&kiosk(s, 0)).unwrap(),
                kept_seq: Seq::new(*kept_seq).unwrap(),
                account: AccountId::parse(&format!("F{n:06}")).unwrap(),
                pupil: PupilId::parse(&format!("Q{n:06}")).unwrap(),
                service: ServiceId::parse("lunch").unwrap(),
                amount: Cents::new(385),
                status: VoidStatus::Pending,
                decided_by: None,
                decided_at: None,
                correction_date: None,
            });
        }
        if s % 10 == 3 {
            findings.push(finding(
                FindingKind::CashDifference,
                s,
                0,
                None,
                "cash counted 115.00 EUR, expected 120.00 EUR".to_owned(),
                Vec::new(),
            ));
        }
        if s % 40 == 1 {
            let (seq, record, _) = &second[0];
            findings.push(finding(
                FindingKind::ClockDrift,
                s,
                1,
                Some(*seq),
                "kiosk clock 4 min ahead of the back-office".to_owned(),
                vec![record.clone()],
            ));
        }
    }
    let top_ups = vec![
        TopUpLine {
            source: TopUpSource::Kiosk,
            method: PaymentMethod::Cash,
            count: 8 * sites.len() as u64,
            total: Cents::new(24_000 * i64::try_from(sites.len()).unwrap()),
        },
        TopUpLine {
            source: TopUpSource::Kiosk,
            method: PaymentMethod::Cheque,
            count: 2 * sites.len() as u64,
            total: Cents::new(6_000 * i64::try_from(sites.len()).unwrap()),
        },
    ];
    let report = Report {
        date: today,
        site: only.map(|s| SiteId::parse(&site(s)).unwrap()),
        time_zone: backoffice::reconcile::DEFAULT_TIME_ZONE.to_owned(),
        day_start,
        day_end,
        records_checked,
        kiosks,
        sites: site_days,
        meals: meal_lines,
        revenue,
        top_ups,
        adjustments: Cents::ZERO,
        balances: only.is_none().then_some(BalanceCheck {
            opening: Cents::new(1_000_000),
            movements: Cents::new(-500_000),
            closing: Cents::new(500_000),
            holds: true,
        }),
        findings,
    };
    let saved = SavedReconciliation {
        date: today,
        site: report.site.clone(),
        report: serde_json::to_string(&report).unwrap(),
        run_at: common::fixtures::app_now(),
        run_by: "compta".to_owned(),
        signed_off_by: None,
        signed_off_at: None,
    };
    (saved, proposals)
}

async fn sign_in<S: Store>(app: &TestApp<S>, name: &str) -> Session {
    let (reply, session) = app.sign_in(name, PASSWORD).await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    vec![("cookie", format!("canteen_session={}", session.unwrap()))]
}

/// The value below which `percent` of `values` lie (nearest rank).
fn percentile(values: &mut [f64], percent: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) * percent / 100]
}

/// A signed-in user's request headers.
type Session = Vec<(&'static str, String)>;

fn main() {
    let rounds = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(ROUNDS_DEFAULT);
    let days = std::env::var("PAGES_BENCH_DAYS")
        .ok()
        .and_then(|days| days.parse().ok())
        .unwrap_or(DAYS_DEFAULT);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = SqliteDb::new();
    let today = backoffice::web::layout::service_day(common::fixtures::app_now()).unwrap();
    let loading = Instant::now();
    // The store creates the schema, then lets go of the file while the year is written.
    drop(runtime.block_on(db.open()));
    let today_records = load_year(&db.path(), days, today);
    let store = runtime.block_on(db.open());
    println!(
        "pages: loaded {ACCOUNTS} accounts, {SITES} sites, {} records over {days} days in {:.0} s",
        ACCOUNTS * days,
        loading.elapsed().as_secs_f64()
    );
    runtime.block_on(async {
        for only in [None, Some(7)] {
            let (saved, proposals) = reconciliation(today, only, &today_records);
            store.save_reconciliation(&saved, &proposals).await.unwrap();
        }
        add_users(
            &store,
            PASSWORD,
            &[
                ("martin", Role::Staff, Some("site007")),
                ("compta", Role::Finance, None),
                ("admin", Role::Admin, None),
            ],
        )
        .await;
        let app = TestApp::start(store).await;
        let staff = sign_in(&app, "martin").await;
        let finance = sign_in(&app, "compta").await;
        let admin = sign_in(&app, "admin").await;
        // Staff of site007 see account F000007's pupil (n % 120 == 7).
        let pages: Vec<(&str, &Session, String)> = vec![
            ("search by name", &staff, "/staff?q=nom00".to_owned()),
            ("search by card", &staff, "/staff?q=be000007".to_owned()),
            ("account", &staff, "/staff/accounts/F000007".to_owned()),
            ("today's meals", &staff, "/staff/meals".to_owned()),
            ("dashboard", &finance, "/finance".to_owned()),
            (
                "dashboard of a site",
                &finance,
                "/finance?site=site007".to_owned(),
            ),
            ("fleet", &finance, "/finance/kiosks".to_owned()),
            (
                "reconciliation of all sites",
                &finance,
                format!("/finance/reconciliations?date={today}"),
            ),
            (
                "reconciliation of a site",
                &finance,
                format!("/finance/reconciliations?date={today}&site=site007"),
            ),
            (
                "reconciliation not yet run",
                &finance,
                format!(
                    "/finance/reconciliations?date={}",
                    backoffice::web::layout::days_before(today, 1).unwrap()
                ),
            ),
            ("admin", &admin, "/admin".to_owned()),
            ("devices", &admin, "/admin/devices".to_owned()),
            ("users", &admin, "/admin/users".to_owned()),
            ("site setup", &admin, "/admin/sites/site007".to_owned()),
        ];
        let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); pages.len()];
        for _ in 0..rounds {
            for (index, (name, headers, path)) in pages.iter().enumerate() {
                for _ in 0..REQUESTS_PER_ROUND {
                    let started = Instant::now();
                    let reply = app.request("GET", path, headers, b"").await;
                    let elapsed: Duration = started.elapsed();
                    assert_eq!(reply.status, 200, "{name} {path}: {}", reply.text());
                    latencies[index].push(elapsed.as_secs_f64() * 1_000.0);
                }
            }
        }
        println!("| page | p50 ms | p99 ms | p99 / 50 ms |");
        println!("| --- | ---: | ---: | ---: |");
        for ((name, _, _), values) in pages.iter().zip(&mut latencies) {
            let p50 = percentile(values, 50);
            let p99 = percentile(values, 99);
            println!(
                "| {name} | {p50:.1} | {p99:.1} | {:.2} |",
                p99 / TARGET_P99_MS
            );
        }
        println!(
            "({} requests of each page over {rounds} rounds, interleaved page by page)",
            rounds * REQUESTS_PER_ROUND
        );
    });
}
