//! The `backoffice` command line, run as an operator would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use backoffice::store::Store;

use common::SqliteDb;
use common::fixtures::{device_id, key, site};

fn backoffice(db: &SqliteDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backoffice"))
        .arg("--db")
        .arg(db.url())
        .args(args)
        .output()
        .unwrap()
}

fn check(db: &SqliteDb, args: &[&str], success: bool, output_contains: &str) {
    let output = backoffice(db, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.success(), success, "{args:?}: {text}");
    assert!(text.contains(output_contains), "{args:?}: {text}");
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
    let mut server = Command::new(env!("CARGO_BIN_EXE_backoffice"))
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
    use std::io::Write as _;

    let db = SqliteDb::new();
    let add = |args: &[&str], password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_backoffice"))
            .arg("--db")
            .arg(db.url())
            .args(["user", "add"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let output = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let cases: [(&[&str], &str, bool, &str); 6] = [
        (
            &["--name", "martin", "--role", "staff", "--site", "jaures"],
            "correct horse battery",
            true,
            "added",
        ),
        (
            &["--name", "compta", "--role", "finance"],
            "correct horse battery",
            true,
            "added",
        ),
        (
            &["--name", "martin", "--role", "admin"],
            "correct horse battery",
            false,
            "already exists",
        ),
        (
            &["--name", "paul", "--role", "staff"],
            "correct horse battery",
            false,
            "--site",
        ),
        (
            &["--name", "root", "--role", "superuser"],
            "correct horse battery",
            false,
            "--role",
        ),
        (
            &["--name", "weak", "--role", "admin"],
            "short",
            false,
            "password",
        ),
    ];
    for (args, password, success, contains) in cases {
        let (succeeded, text) = add(args, password);
        assert_eq!(succeeded, success, "{args:?}: {text}");
        assert!(text.contains(contains), "{args:?}: {text}");
    }
    let store = db.open().await;
    let martin = store.user("martin").await.unwrap().unwrap();
    assert_eq!(martin.role, backoffice::users::Role::Staff);
    assert_eq!(martin.site, Some(site()));
    assert!(martin.verify_password("correct horse battery"));
    assert_eq!(store.user("paul").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_writes_nothing_unless_every_row_is_valid() {
    let db = SqliteDb::new();
    let header = backoffice::import::HEADER.join(",");
    let valid = format!(
        "{header}\n\
         jaures,A1,-500,P1,Léa,Martin,q3,no_pork,04a1b2c3\n\
         jaures,A1,-500,P2,Tom,Martin,q3,,\n\
         ferry,A2,0,P3,Inès,\"Petit, Jr\",q1,,0a0b0c0d\n"
    );
    let invalid = format!(
        "{header}\n\
         jaures,A9,0,P9,Zoé,Durand,q2,,\n\
         jaures,A1,-500,P1,,Martin,q3,,\n\
         jaures,A1,12,P2,Tom,Martin,q3,,\n"
    );
    let valid_path = db.dir.path().join("valid.csv");
    let invalid_path = db.dir.path().join("invalid.csv");
    std::fs::write(&valid_path, valid).unwrap();
    std::fs::write(&invalid_path, invalid).unwrap();

    check(
        &db,
        &["import", invalid_path.to_str().unwrap()],
        false,
        "line 3: first_name",
    );
    check(
        &db,
        &["import", invalid_path.to_str().unwrap()],
        false,
        "line 4: overdraft_floor",
    );
    let store = db.open().await;
    assert_eq!(
        store
            .account(&common::fixtures::account("A9"))
            .await
            .unwrap(),
        None
    );
    drop(store);

    check(
        &db,
        &["import", valid_path.to_str().unwrap()],
        true,
        "imported 3 rows",
    );
    // Again: nothing changes, nothing fails.
    check(
        &db,
        &["import", valid_path.to_str().unwrap()],
        true,
        "imported 3 rows",
    );
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
