//! The `backoffice` command line, run as an operator would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use std::process::Command;

use common::SqliteDb;
use common::cli::run;
use common::fixtures::registered_at;
use common::fixtures::{device_id, key, site};
use proto::SiteId;

const BACKOFFICE: &str = env!("CARGO_BIN_EXE_backoffice");

/// A password long enough for any user.
const PASSWORD: &str = "correct horse battery";

fn check(db: &SqliteDb, args: &[&str], success: bool, output_contains: &str) {
    let ran = run(BACKOFFICE, db, args, None);
    let text = ran.text();
    assert_eq!(ran.status.success(), success, "{args:?}: {text}");
    assert!(text.contains(output_contains), "{args:?}: {text}");
}

/// One command of a scenario: its arguments, what it reads on standard input, whether it
/// succeeds, and what its output says.
type Step<'a> = (&'a [&'a str], &'a str, bool, &'a str);

fn run_steps(db: &SqliteDb, steps: &[Step]) {
    for &(args, stdin, success, contains) in steps {
        let ran = run(BACKOFFICE, db, args, Some(stdin));
        let text = ran.text();
        assert_eq!(ran.status.success(), success, "{args:?}: {text}");
        assert!(text.contains(contains), "{args:?}: {text}");
        if !success {
            assert!(
                !ran.stderr.trim().is_empty(),
                "{args:?}: a refusal says why"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn city_it_enrols_and_revokes_a_kiosk() {
    let db = SqliteDb::new();
    let pem_path = db.dir.path().join("kiosk.pem");
    std::fs::write(&pem_path, key(7).public_key().to_pem()).unwrap();
    let pem = pem_path.to_str().unwrap();
    let not_pem = db.dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let not_pem = not_pem.to_str().unwrap();

    let add = [
        "device",
        "add",
        "--site",
        "jaures",
        "--name",
        "kiosk-jaures-1",
    ];
    check(
        &db,
        &[&add[..], &["--public-key", pem]].concat(),
        true,
        "device kiosk-jaures-1 added",
    );
    check(
        &db,
        &[&add[..], &["--public-key", pem]].concat(),
        false,
        "already exists",
    );
    check(
        &db,
        &[
            "device",
            "add",
            "--site",
            "jaures",
            "--name",
            "bad name!",
            "--public-key",
            pem,
        ],
        false,
        "--name",
    );
    check(
        &db,
        &[
            "device",
            "add",
            "--site",
            "jaures",
            "--name",
            "kiosk-2",
            "--public-key",
            not_pem,
        ],
        false,
        "PEM",
    );
    check(
        &db,
        &["device", "revoke", "--name", "kiosk-jaures-1"],
        true,
        "revoked",
    );
    check(
        &db,
        &["device", "revoke", "--name", "kiosk-none"],
        false,
        "does not exist",
    );

    let store = db.open().await;
    let device = store
        .device(&device_id("kiosk-jaures-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device.site, site());
    assert_eq!(device.key, key(7).public_key());
    assert!(device.revoked_at.is_some());
    assert_eq!(store.device(&device_id("kiosk-2")).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_until_sigterm_then_stops_cleanly() {
    use std::io::BufRead as _;

    let db = SqliteDb::new();
    let mut server = Command::new(BACKOFFICE)
        .arg("--db")
        .arg(db.url())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = std::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let address: std::net::SocketAddr = loop {
        let line = log.next().expect("serve logs its address").unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let reply = common::app::send(address, "GET", "/healthz", &[], b"").await;
    assert_eq!(reply.status, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    assert!(rest.iter().any(|line| line.contains("stopped")), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn city_it_adds_users_with_roles() {
    let db = SqliteDb::new();
    let steps: &[Step] = &[
        (
            &[
                "user", "add", "--name", "martin", "--role", "staff", "--site", "jaures",
            ],
            PASSWORD,
            true,
            "added",
        ),
        (
            &["user", "add", "--name", "compta", "--role", "finance"],
            PASSWORD,
            true,
            "added",
        ),
        (
            &["user", "add", "--name", "martin", "--role", "admin"],
            PASSWORD,
            false,
            "already exists",
        ),
        (
            &["user", "add", "--name", "paul", "--role", "staff"],
            PASSWORD,
            false,
            "--site",
        ),
        (
            &["user", "add", "--name", "root", "--role", "superuser"],
            PASSWORD,
            false,
            "--role",
        ),
        (
            &["user", "add", "--name", "weak", "--role", "admin"],
            "short",
            false,
            "password",
        ),
    ];
    run_steps(&db, steps);
    let store = db.open().await;
    let martin = store.user("martin").await.unwrap().unwrap();
    assert_eq!(martin.role, backoffice::users::Role::Staff);
    assert_eq!(martin.site, Some(site()));
    assert!(martin.verify_password(PASSWORD));
    assert_eq!(store.user("paul").await.unwrap(), None);
}

/// Writes an import file `name` of `rows` under the import header, beside the database; its
/// path.
fn import_file(db: &SqliteDb, name: &str, rows: &str) -> String {
    let path = db.dir.path().join(name);
    let header = backoffice::import::HEADER.join(",");
    std::fs::write(&path, format!("{header}\n{rows}")).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_writes_nothing_unless_every_row_is_valid() {
    let db = SqliteDb::new();
    let valid = import_file(
        &db,
        "valid.csv",
        "jaures,A1,-500,P1,Léa,Martin,q3,no_pork,04a1b2c3\n\
         jaures,A1,-500,P2,Tom,Martin,q3,,\n\
         ferry,A2,0,P3,Inès,\"Petit, Jr\",q1,,0a0b0c0d\n",
    );
    let invalid = import_file(
        &db,
        "invalid.csv",
        "jaures,A9,0,P9,Zoé,Durand,q2,,\n\
         jaures,A1,-500,P1,,Martin,q3,,\n\
         jaures,A1,12,P2,Tom,Martin,q3,,\n",
    );

    check(&db, &["import", &invalid], false, "line 3: first_name");
    check(&db, &["import", &invalid], false, "line 4: overdraft_floor");
    let store = db.open().await;
    assert_eq!(
        store
            .account(&common::fixtures::account("A9"))
            .await
            .unwrap(),
        None
    );
    drop(store);

    check(&db, &["import", &valid], true, "imported 3 rows");
    // Again: nothing changes, nothing fails.
    check(&db, &["import", &valid], true, "imported 3 rows");
    let store = db.open().await;
    let snapshot = store.snapshot(&site(), None, None).await.unwrap();
    let pupils: Vec<&str> = snapshot.pupils.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(pupils, ["P1", "P2"]);
    assert_eq!(snapshot.cards.len(), 1);
    assert_eq!(
        snapshot.accounts[0].overdraft_floor,
        proto::Cents::new(-500)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_cannot_move_a_pupil_to_another_site() {
    let db = SqliteDb::new();
    let enrolled = import_file(
        &db,
        "enrolled.csv",
        "jaures,A1,-500,P1,Léa,Martin,q3,,04a1b2c3\n",
    );
    let moved = import_file(
        &db,
        "moved.csv",
        "ferry,A2,0,P3,Inès,Petit,q1,,\n\
         ferry,A1,-500,P1,Léa,Martin,q3,,\n",
    );
    check(&db, &["import", &enrolled], true, "imported 1 rows");
    check(
        &db,
        &["import", &moved],
        false,
        "line 3: a pupil stays at their site",
    );
    // Nothing of the refused file was written: P1 is still at jaures, P3 does not exist.
    let store = db.open().await;
    let at = |site: &str| SiteId::parse(site).unwrap();
    let jaures = store.snapshot(&at("jaures"), None, None).await.unwrap();
    let ferry = store.snapshot(&at("ferry"), None, None).await.unwrap();
    let ids = |snapshot: &proto::snapshot::Snapshot| -> Vec<String> {
        snapshot.pupils.iter().map(|p| p.id.to_string()).collect()
    };
    assert_eq!(ids(&jaures), ["P1"]);
    assert!(ids(&ferry).is_empty(), "{:?}", ids(&ferry));
    assert_eq!(jaures.cards.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_manage_accounts_pupils_cards_and_money_from_the_command_line() {
    let db = SqliteDb::new();
    let pupil = |site: &'static str, account: &'static str, first_name: &'static str| {
        [
            "pupil",
            "set",
            "--site",
            site,
            "--id",
            "P1",
            "--account",
            account,
            "--first-name",
            first_name,
            "--last-name",
            "Martin",
            "--bracket",
            "q3",
            "--dietary",
            "no_pork",
        ]
    };
    let enrol = pupil("jaures", "A1", "Léa");
    let unknown_account = pupil("jaures", "A9", "Léa");
    let other_site = pupil("ferry", "A1", "Léa");
    let blank_name = pupil("jaures", "A1", " ");
    let top_up = |account: &'static str, amount: &'static str, method: &'static str| {
        [
            "top-up",
            "--account",
            account,
            "--amount",
            amount,
            "--method",
            method,
        ]
    };
    let adjust = |amount: &'static str, reason: &'static str| {
        [
            "adjust",
            "--account",
            "A1",
            "--amount",
            amount,
            "--reason",
            reason,
        ]
    };
    let replace = |uid: &'static str, new_uid: &'static str| {
        ["card", "replace", "--uid", uid, "--new-uid", new_uid]
    };
    let steps: &[Step] = &[
        (
            &["account", "set", "A1", "--overdraft-floor", "-500"],
            "",
            true,
            "opened",
        ),
        (
            &["account", "set", "A1", "--overdraft-floor", "-300"],
            "",
            true,
            "updated",
        ),
        (
            &["account", "set", "A1", "--overdraft-floor", "100"],
            "",
            false,
            "overdraft floor",
        ),
        (
            &["account", "set", "A 2", "--overdraft-floor", "0"],
            "",
            false,
            "ACCOUNT",
        ),
        (&enrol, "", true, "pupil P1 saved"),
        (&unknown_account, "", false, "does not exist"),
        (&other_site, "", false, "stays at their site"),
        (&blank_name, "", false, "--first-name"),
        (
            &["card", "assign", "--uid", "04a1b2c3", "--pupil", "P1"],
            "",
            true,
            "assigned",
        ),
        (
            &["card", "assign", "--uid", "04a1b2c4", "--pupil", "P9"],
            "",
            false,
            "holder",
        ),
        (
            &["card", "assign", "--uid", "04A1", "--pupil", "P1"],
            "",
            false,
            "--uid",
        ),
        (
            &[
                "card", "assign", "--uid", "04a1b2c4", "--pupil", "P1", "--staff", "S1",
            ],
            "",
            false,
            "cannot be used with",
        ),
        (&top_up("A1", "2000", "cash"), "", true, "balance 2000"),
        (
            &[
                "top-up",
                "--account",
                "A1",
                "--amount",
                "1000",
                "--method",
                "cheque",
                "--reference",
                "cheque 0042",
            ],
            "",
            true,
            "balance 3000",
        ),
        (&top_up("A1", "0", "cash"), "", false, "top-up 0 outside"),
        (
            &top_up("A1", "-100", "cash"),
            "",
            false,
            "top-up -100 outside",
        ),
        (&top_up("A1", "100", "card"), "", false, "--method"),
        (&top_up("A9", "100", "cash"), "", false, "does not exist"),
        (&adjust("-500", "meal not served"), "", true, "balance 2500"),
        (&adjust("0", "nothing"), "", false, "changes nothing"),
        (&adjust("-500001", "too much"), "", false, "outside"),
        (&adjust("100", ""), "", false, "--reason"),
        (
            &["adjust", "--account", "A1", "--amount", "100"],
            "",
            false,
            "--reason",
        ),
        (
            &replace("04a1b2c3", "04a1b2c4"),
            "",
            true,
            "card 04a1b2c4 assigned",
        ),
        (
            &replace("0a0b0c0d", "0a0b0c0e"),
            "",
            false,
            "does not exist",
        ),
        (&["card", "block", "--uid", "04a1b2c4"], "", true, "blocked"),
        (
            &["card", "block", "--uid", "0a0b0c0d"],
            "",
            false,
            "does not exist",
        ),
    ];
    run_steps(&db, steps);

    let store = db.open().await;
    let a1 = store
        .account(&common::fixtures::account("A1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a1.overdraft_floor, proto::Cents::new(-300));
    assert_eq!(
        store
            .balance(&common::fixtures::account("A1"))
            .await
            .unwrap(),
        Some(proto::Cents::new(2500))
    );
    assert_eq!(
        store
            .account(&common::fixtures::account("A9"))
            .await
            .unwrap(),
        None
    );
    let snapshot = store.snapshot(&site(), None, None).await.unwrap();
    assert_eq!(snapshot.pupils.len(), 1);
    let p1 = &snapshot.pupils[0];
    assert_eq!(
        (p1.id.as_str(), p1.account.as_str(), p1.first_name.as_str()),
        ("P1", "A1", "Léa")
    );
    assert_eq!(p1.dietary.len(), 1);
    let mut hotlist: Vec<String> = snapshot.hotlist.iter().map(ToString::to_string).collect();
    hotlist.sort();
    assert_eq!(hotlist, ["04a1b2c3", "04a1b2c4"]);
    let ferry = SiteId::parse("ferry").unwrap();
    assert!(
        store
            .snapshot(&ferry, None, None)
            .await
            .unwrap()
            .pupils
            .is_empty()
    );
    assert_eq!(
        store
            .card(&proto::CardUid::from_hex("0a0b0c0e").unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_up_a_site_from_the_command_line() {
    let db = SqliteDb::new();
    let service = |id: &'static str, weekdays: &'static str, start: &'static str| {
        [
            "service",
            "set",
            "--site",
            "jaures",
            "--id",
            id,
            "--name",
            "Déjeuner",
            "--meal-type",
            "lunch",
            "--weekdays",
            weekdays,
            "--start",
            start,
            "--end",
            "13:30",
        ]
    };
    let lunch = service("lunch", "monday,tuesday,thursday,friday", "11:30");
    let backwards = service("late", "monday", "14:00");
    let funday = service("late", "monday,funday", "11:30");
    let bad_time = service("late", "monday", "25:00");
    let staff = |id: &'static str| {
        [
            "staff",
            "set",
            "--site",
            "jaures",
            "--id",
            id,
            "--name",
            "Mme Durand",
        ]
    };
    let tariff = |bracket: &'static str, price: &'static str| {
        [
            "tariff",
            "set",
            "--site",
            "jaures",
            "--bracket",
            bracket,
            "--meal-type",
            "lunch",
            "--price",
            price,
        ]
    };
    let steps: &[Step] = &[
        (&tariff("q3", "350"), "", true, "350 cents"),
        (&tariff("q4", "-1"), "", false, "price -1 outside"),
        (&tariff("q 4", "400"), "", false, "--bracket"),
        (&lunch, "", true, "service lunch saved"),
        (&backwards, "", false, "ends after it starts"),
        (&funday, "", false, "--weekdays funday"),
        (&bad_time, "", false, "--start"),
        (&staff("S1"), "1234", true, "staff S1 saved"),
        (&staff("S2"), "12a4", false, "PIN"),
        (
            &["card", "assign", "--uid", "0a0b0c0d", "--staff", "S1"],
            "",
            true,
            "assigned",
        ),
        (
            &["card", "assign", "--uid", "0a0b0c0e", "--staff", "S2"],
            "",
            false,
            "holder",
        ),
    ];
    run_steps(&db, steps);

    let store = db.open().await;
    let snapshot = store.snapshot(&site(), None, None).await.unwrap();
    assert_eq!(snapshot.tariffs, [common::fixtures::tariff("q3", 350)]);
    assert_eq!(snapshot.services.len(), 1);
    let lunch = &snapshot.services[0];
    assert_eq!((lunch.id.as_str(), lunch.weekdays.len()), ("lunch", 4));
    assert_eq!(snapshot.staff.len(), 1);
    assert_eq!(snapshot.staff[0].id.as_str(), "S1");
    assert!(snapshot.staff[0].pin_hash.as_str().starts_with("$argon2"));
    assert_eq!(snapshot.cards.len(), 1);
    assert_eq!(snapshot.cards[0].uid.to_string(), "0a0b0c0d");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_brings_a_kiosk_export_by_hand() {
    use common::fixtures::{Kiosk, account, at, device, top_up};
    let db = SqliteDb::new();
    let store = db.open().await;
    store
        .add_device(device("kiosk-jaures-1", 7), registered_at())
        .await
        .unwrap();
    store
        .add_account(&account("A1"), proto::Cents::new(0), at(0))
        .await
        .unwrap();
    let mut kiosk = Kiosk::new("kiosk-jaures-1", 7);
    for _ in 0..3 {
        kiosk.write(top_up("A1", 500));
    }
    let lines: Vec<String> = kiosk
        .signed(1, 3)
        .iter()
        .map(proto::SignedRecord::to_json)
        .collect();
    let file = db.dir.path().join("records.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let file = file.to_str().unwrap();
    let stranger = db.dir.path().join("stranger.jsonl");
    let mut other = Kiosk::new("kiosk-unknown", 8);
    other.write(top_up("A1", 500));
    std::fs::write(&stranger, other.signed(1, 1)[0].to_json()).unwrap();
    let not_records = db.dir.path().join("not-records.jsonl");
    std::fs::write(&not_records, "{\"hello\": 1}\n").unwrap();

    check(
        &db,
        &["transfer", file],
        true,
        "kiosk-jaures-1: 3 stored, 0 duplicates, 0 quarantined; held through 3",
    );
    check(
        &db,
        &["transfer", file],
        true,
        "kiosk-jaures-1: 0 stored, 3 duplicates, 0 quarantined; held through 3",
    );
    check(
        &db,
        &["transfer", stranger.to_str().unwrap()],
        false,
        "unknown device kiosk-unknown",
    );
    check(
        &db,
        &["transfer", not_records.to_str().unwrap()],
        false,
        "line 1: not a signed record",
    );
    assert_eq!(
        store.balance(&account("A1")).await.unwrap(),
        Some(proto::Cents::new(1_500))
    );
}
