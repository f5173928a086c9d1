//! The web pages under a city's data: 50,000 accounts (one pupil and one card each) over 120
//! sites with two kiosks each, and a school year of meals (every pupil, every service day)
//! with their movements and per-day totals. Each page is fetched over HTTP with a signed-in
//! session, round after round, and its p99 compared with the 50 ms target. Run with `make
//! bench` (`cargo bench -p backoffice --bench pages [-- ROUNDS]`; `PAGES_BENCH_DAYS` sets the
//! days of records, 180 by default).
//!
//! The year is written straight into the SQLite file, since signing and ingesting nine million
//! records would take the bench's whole budget and the pages never verify old records: rows
//! have the stored shape, and the last day's payloads are real canonical meal payloads, which
//! the meals page parses. Accounts, sessions and everything else go through the store.

// Latencies are reports, not money.
#![allow(clippy::float_arithmetic, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backoffice::store::Store;
use backoffice::users::{Role, User};
use proto::record::{Meal, MealVia, Payload, RecordBody};
use proto::snapshot::Pupil;
use proto::{
    AccountId, BracketId, CardUid, Cents, Digest, MealType, PupilId, Seq, ServiceDate, ServiceId,
    SiteId, Text, Timestamp,
};

use common::SqliteDb;
use common::app::{Reply, TestApp};
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

fn site(n: usize) -> String {
    format!("site{n:03}")
}

fn kiosk(site_n: usize, k: usize) -> String {
    format!("{}-k{k}", site(site_n))
}

/// Writes the city and its year of records into the database file in one transaction each.
fn load_year(path: &std::path::Path, days: usize, today: ServiceDate) {
    let mut connection = rusqlite::Connection::open(path).unwrap();
    connection
        .pragma_update(None, "synchronous", "OFF")
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
            let uid = u32::try_from(n).unwrap().to_be_bytes();
            card.execute(rusqlite::params![
                &[0xbe, uid[1], uid[2], uid[3]][..],
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
        let now = backoffice::now();
        for s in 0..SITES {
            for k in 0..KIOSKS_PER_SITE {
                let seed = u8::try_from((s * KIOSKS_PER_SITE + k) % 250).unwrap();
                device
                    .execute(rusqlite::params![
                        kiosk(s, k),
                        site(s),
                        &key(seed).public_key().as_bytes()[..]
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
    let transaction = connection.transaction().unwrap();
    {
        let mut record = transaction
            .prepare("INSERT INTO records (device, seq, hash, kind, payload, signature, kiosk_at, received_at) VALUES (?1, ?2, ?3, 'meal', ?4, '', ?5, ?5)")
            .unwrap();
        let mut movement = transaction
            .prepare("INSERT INTO movements (account, amount, device, seq, reverses_seq, at) VALUES (?1, -385, ?2, ?3, NULL, ?4)")
            .unwrap();
        let mut seqs: BTreeMap<String, u64> = BTreeMap::new();
        let mut meal_days: BTreeMap<(String, String), i64> = BTreeMap::new();
        let zero_hash = [0_u8; 32];
        for back in (0..days).rev() {
            let day =
                backoffice::web::layout::days_before(today, i64::try_from(back).unwrap()).unwrap();
            let (start, _) = backoffice::web::layout::day_bounds(day).unwrap();
            for n in 0..ACCOUNTS {
                let device = kiosk(n % SITES, n % KIOSKS_PER_SITE);
                let seq = seqs.entry(device.clone()).or_insert(0);
                *seq += 1;
                // Lunch from 11:30, a pupil every two seconds at each kiosk.
                let at_ms = start.unix_ms()
                    + 11 * 3_600_000
                    + 1_800_000
                    + i64::try_from(n / SITES).unwrap() * 2_000;
                let account = format!("F{n:06}");
                let payload = if back == 0 {
                    Payload {
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
                            pupil: PupilId::parse(&format!("Q{n:06}")).unwrap(),
                            bracket: BracketId::parse("q2").unwrap(),
                            price: Cents::new(385),
                            balance_after: Cents::new(0),
                            via: MealVia::Card(CardUid::parse(&[0xbe, 0, 0, 1]).unwrap()),
                        }),
                    }
                    .to_canonical_json()
                } else {
                    "{}".to_owned()
                };
                let seq = i64::try_from(*seq).unwrap();
                record
                    .execute(rusqlite::params![
                        device,
                        seq,
                        &zero_hash[..],
                        payload,
                        at_ms
                    ])
                    .unwrap();
                movement
                    .execute(rusqlite::params![account, device, seq, at_ms])
                    .unwrap();
                *meal_days
                    .entry((site(n % SITES), day.to_string()))
                    .or_default() += 1;
            }
        }
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
}

fn session_of(reply: &Reply) -> String {
    reply
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .filter_map(|(_, value)| value.split(';').next())
        .find_map(|pair| pair.strip_prefix("canteen_session="))
        .unwrap()
        .to_owned()
}

async fn sign_in<S: Store>(app: &TestApp<S>, name: &str) -> Session {
    let page = app.get("/sign-in").await;
    let token = page
        .headers
        .iter()
        .filter(|(header, _)| header == "set-cookie")
        .filter_map(|(_, value)| value.split(';').next())
        .find_map(|pair| pair.strip_prefix("canteen_sign_in="))
        .unwrap()
        .to_owned();
    let body = format!(
        "csrf={token}&name={name}&password={}",
        PASSWORD.replace(' ', "+")
    );
    let reply = app
        .request(
            "POST",
            "/sign-in",
            &[("cookie", format!("canteen_sign_in={token}"))],
            body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    vec![("cookie", format!("canteen_session={}", session_of(&reply)))]
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
    let today = backoffice::web::layout::service_day(backoffice::now()).unwrap();
    let loading = Instant::now();
    let store = runtime.block_on(db.open());
    load_year(&db.path(), days, today);
    println!(
        "pages: loaded {ACCOUNTS} accounts, {SITES} sites, {} records over {days} days in {:.0} s",
        ACCOUNTS * days,
        loading.elapsed().as_secs_f64()
    );
    runtime.block_on(async {
        for (name, role, site) in [
            ("martin", Role::Staff, Some("site007")),
            ("compta", Role::Finance, None),
            ("admin", Role::Admin, None),
        ] {
            let site = site.map(|site| SiteId::parse(site).unwrap());
            store
                .add_user(&User::new(name, role, site, PASSWORD).unwrap())
                .await
                .unwrap();
        }
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
                "reconciliation",
                &finance,
                format!("/finance/reconciliations?date={today}"),
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
