//! The back-office against callers who break the rules: a crafted record, a request that makes
//! a handler panic, a stranger sending a large body, a redirect off the site, a formula in an
//! export, a page framed by another site. Each answer is a clear refusal; nothing is stored on
//! refusal, and the service answers the next request as usual.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use testkit as common;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::Ops as _;

use backoffice::clock::SystemClock;
use backoffice::export::{self, ExportKind, Period};
use backoffice::manage::Actor;
use backoffice::manage::accounts::credit_payment;
use backoffice::metrics::Metrics;
use backoffice::state::App;
use backoffice::store::Store;
use backoffice::users::{Role, User};
use proto::{Cents, SignedRecord, Text};

use common::app::TestApp;
use common::day::{date, lunch, settings};
use common::fixtures::{Kiosk, account, at, populate, registered_at, top_up as kiosk_top_up};
use common::{PostgresDb, SqliteDb};

const PASSWORD: &str = "correct horse battery staple";

/// The first record `kiosk` wrote, its `seq` replaced by `seq` and signed again with the
/// kiosk's own key: what a stolen kiosk's key can make.
fn signed_at_seq(kiosk: &Kiosk, seq: &str) -> SignedRecord {
    let payload =
        kiosk.written[0]
            .signed()
            .payload
            .replacen("\"seq\":1", &format!("\"seq\":{seq}"), 1);
    assert!(payload.contains(seq), "{payload}");
    SignedRecord {
        signature: kiosk.key.sign(payload.as_bytes()).to_base64(),
        payload,
    }
}

async fn a_record_past_the_last_seq_is_refused_and_the_service_goes_on(store: impl Store) {
    let mut kiosk = Kiosk::new("kiosk-jaures-1", 1);
    store
        .add_device(kiosk.device.clone(), registered_at())
        .await
        .unwrap();
    store
        .add_account(&account("A1"), Cents::ZERO, at(0))
        .await
        .unwrap();
    kiosk.write(kiosk_top_up("A1", 2_000));
    kiosk.write(kiosk_top_up("A1", 500));
    let app = TestApp::start(store).await;

    for seq in ["18446744073709551615", "9007199254740992"] {
        let crafted = signed_at_seq(&kiosk, seq);
        let reply = app.upload(&kiosk, vec![crafted]).await;
        assert!(
            (400..500).contains(&reply.status) || reply.status == 200,
            "seq {seq}: {} {}",
            reply.status,
            reply.text()
        );
        assert!(
            app.store
                .records(&kiosk.device.id)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // The service, its store and the kiosk's chain are as before.
    assert_eq!(app.get("/healthz").await.status, 200);
    let reply = app.upload(&kiosk, kiosk.signed(1, 2)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        app.store.balance(&account("A1")).await.unwrap(),
        Some(Cents::new(2_500))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_past_the_last_seq_is_refused_on_sqlite() {
    let db = SqliteDb::new();
    a_record_past_the_last_seq_is_refused_and_the_service_goes_on(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_past_the_last_seq_is_refused_on_postgres() {
    let db = PostgresDb::new().await;
    a_record_past_the_last_seq_is_refused_and_the_service_goes_on(db.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_past_the_last_seq_is_refused_and_the_service_goes_on() {
    let db = SqliteDb::new();
    let store = db.open().await;
    let mut kiosk = Kiosk::new("kiosk-jaures-1", 1);
    store
        .add_device(kiosk.device.clone(), registered_at())
        .await
        .unwrap();
    store
        .add_account(&account("A1"), Cents::ZERO, at(0))
        .await
        .unwrap();
    kiosk.write(kiosk_top_up("A1", 2_000));
    store
        .add_user(
            &User::new("compta", Role::Finance, None, PASSWORD).unwrap(),
            registered_at(),
        )
        .await
        .unwrap();
    let app = TestApp::start(store).await;
    let crafted = signed_at_seq(&kiosk, "18446744073709551615");
    let file = format!("{}\n", serde_json::to_string(&crafted).unwrap());

    let reply = app
        .request(
            "POST",
            "/api/v1/transfers",
            &[basic("compta")],
            file.as_bytes(),
        )
        .await;
    assert!(
        (400..500).contains(&reply.status),
        "{} {}",
        reply.status,
        reply.text()
    );
    assert!(
        app.store
            .records(&kiosk.device.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.get("/healthz").await.status, 200);
}

fn basic(name: &str) -> (&'static str, String) {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{PASSWORD}"));
    ("authorization", format!("Basic {token}"))
}

async fn a_handler_with_a_bug() -> &'static str {
    panic!("a handler's bug")
}

/// A route that panics, behind the service's own layers, beside one that answers.
async fn serve_with_a_panicking_route() -> std::net::SocketAddr {
    let db = SqliteDb::new();
    let app = Arc::new(App {
        store: db.open().await,
        metrics: Metrics::default(),
        finance: settings(),
        clock: SystemClock::shared(),
    });
    // The database file lives as long as the test process: the service outlives this function.
    std::mem::forget(db);
    let routes = Router::new()
        .route("/boom", get(a_handler_with_a_bug))
        .route("/fine", get(|| async { "fine" }));
    let router = backoffice::app::layered(routes, app);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_panics_is_answered_and_the_next_is_served() {
    let address = serve_with_a_panicking_route().await;
    for _ in 0..3 {
        let reply = common::app::send(address, "GET", "/boom", &[], b"").await;
        assert_eq!(reply.status, 500, "{}", reply.text());
        let fine = common::app::send(address, "GET", "/fine", &[], b"").await;
        assert_eq!((fine.status, fine.text().as_str()), (200, "fine"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_is_refused_before_a_transfer_body_is_read() {
    let db = SqliteDb::new();
    let app = TestApp::start(db.open().await).await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    // Announces 200 MiB and sends a few bytes of it: the answer must not wait for the rest.
    let head = "POST /api/v1/transfers HTTP/1.1\r\nhost: canteen\r\n\
                content-type: application/x-ndjson\r\ncontent-length: 209715200\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'{'; 4096]).await.unwrap();
    let mut answer = vec![0_u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the service waited for the body before asking who sends it")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_goes_back_only_to_this_site() {
    let db = SqliteDb::new();
    let app = TestApp::start(db.open().await).await;
    let location = |reply: &common::app::Reply| {
        reply
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("location"))
            .map(|(_, value)| value.clone())
            .unwrap()
    };
    for back in [
        "/%5Cevil.example",
        "/%09/evil.example",
        "//evil.example",
        "https://evil.example",
        "/%0D%0A/evil.example",
        "/%20/evil.example",
    ] {
        let reply = app.get(&format!("/language?to=en&back={back}")).await;
        assert_eq!(reply.status, 303, "{back}");
        assert_eq!(location(&reply), "/", "{back}");
    }
    let reply = app.get("/language?to=en&back=/staff").await;
    assert_eq!(location(&reply), "/staff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_answers_carry_the_security_headers() {
    let db = SqliteDb::new();
    let app = TestApp::start(db.open().await).await;
    for path in ["/sign-in", "/healthz", "/api/v1/kiosks", "/no-such-page"] {
        let reply = app.get(path).await;
        let header = |name: &str| {
            reply
                .headers
                .iter()
                .find(|(found, _)| found.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
        };
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("script-src 'unsafe-inline'"), "{policy}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("referrer-policy"), "same-origin");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_text_never_starts_a_spreadsheet_formula() {
    let db = SqliteDb::new();
    let store = db.open().await;
    populate(&store).await;
    let provider = Actor {
        name: "provider".to_owned(),
        role: Role::Payments,
        site: None,
    };
    let formulas = [
        "=HYPERLINK(\"https://evil.example\",\"refund\")",
        "+1+cmd|'/c calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
    ];
    for (minute, reference) in (0_i64..).zip(formulas) {
        credit_payment(
            &store,
            &provider,
            Text::parse(reference).unwrap(),
            &account("A1"),
            Cents::new(100),
            lunch(minute),
        )
        .await
        .unwrap();
    }
    let mut bytes = Vec::new();
    export::write(
        &store,
        &common::ops::finance("finance-1"),
        ExportKind::TopUps,
        Period::new(date(), date()).unwrap(),
        None,
        &settings(),
        &mut bytes,
    )
    .await
    .unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(bytes.as_slice())
        .records()
        .map(Result::unwrap)
        .collect();
    let references: Vec<&str> = rows.iter().map(|row| row.get(8).unwrap()).collect();
    let expected: Vec<String> = formulas.iter().map(|text| format!("'{text}")).collect();
    assert_eq!(references, expected);
    for field in rows.iter().flat_map(csv::StringRecord::iter) {
        assert!(!field.starts_with(['=', '+', '@']), "{field}");
    }
}
