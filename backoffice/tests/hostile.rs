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
use tower::ServiceExt as _;

use common::Ops as _;

use backoffice::app::ClientAddress;
use backoffice::clock::SystemClock;
use backoffice::export::{self, ExportKind, Period};
use backoffice::http::people::LOCKED_OUT;
use backoffice::manage::accounts::credit_payment;
use backoffice::manage::{Actor, tokens, users};
use backoffice::metrics::Metrics;
use backoffice::reconcile;
use backoffice::sign_in::{self, Attempt, SignIn};
use backoffice::state::App;
use backoffice::store::{
    AnomalyReason, ProposedVoid, SessionRows as _, SqliteStore, Store, VoidStatus,
};
use backoffice::users::{Role, User};
use proto::{Cents, Seq, SignedRecord, Text};
use serde_json::json;

use common::SqliteDb;
use common::app::{TestApp, populated_app};
use common::day::{Till, date, lunch, night_after, settings, two_duplicate_meals, void_of};
use common::fixtures::{
    Kiosk, account, add_users, at, populate, registered_at, top_up as kiosk_top_up,
};

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

/// Kiosk `kiosk-jaures-1` registered and account A1 opened; the kiosk has written a 20 € top-up
/// of A1 and uploaded nothing yet.
async fn a_kiosk_with_a_top_up_written(store: &impl Store) -> Kiosk {
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
    kiosk
}

async fn a_record_past_the_last_seq_is_refused_and_the_service_goes_on(store: impl Store) {
    let mut kiosk = a_kiosk_with_a_top_up_written(&store).await;
    kiosk.write(kiosk_top_up("A1", 500));
    let app = TestApp::start(store).await;

    for seq in ["18446744073709551615", "9007199254740992"] {
        let crafted = signed_at_seq(&kiosk, seq);
        let reply = app.upload(&kiosk, vec![crafted]).await;
        // Refused outright, or acknowledged with the record quarantined: never stored.
        assert!(
            reply.status == 200 || (400..500).contains(&reply.status),
            "seq {seq}: {}",
            reply.text()
        );
        assert_nothing_stored_and_serving(&app, &kiosk).await;
    }
    // The service, its store and the kiosk's chain are as before.
    let reply = app.upload(&kiosk, kiosk.signed(1, 2)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(balance_of(&app.store, "A1").await, Some(2_500));
}

common::on_each_backend!((
    a_record_past_the_last_seq_is_refused_and_the_service_goes_on,
    a_record_past_the_last_seq_is_refused_on_sqlite,
    a_record_past_the_last_seq_is_refused_on_postgres
));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_past_the_last_seq_is_refused_and_the_service_goes_on() {
    let db = SqliteDb::new();
    let store = db.open().await;
    let kiosk = a_kiosk_with_a_top_up_written(&store).await;
    add_users(&store, PASSWORD, &[("compta", Role::Finance, None)]).await;
    let app = TestApp::start(store).await;
    let crafted = signed_at_seq(&kiosk, "18446744073709551615");
    let file = format!("{}\n", serde_json::to_string(&crafted).unwrap());

    let reply = app
        .request(
            "POST",
            "/api/v1/transfers",
            &[basic_as("compta", PASSWORD)],
            file.as_bytes(),
        )
        .await;
    assert!(
        (400..500).contains(&reply.status),
        "{} {}",
        reply.status,
        reply.text()
    );
    assert_nothing_stored_and_serving(&app, &kiosk).await;
}

/// No record of `kiosk` is stored, and the service answers.
async fn assert_nothing_stored_and_serving(app: &TestApp<impl Store>, kiosk: &Kiosk) {
    let stored = app.store.records(&kiosk.device.id).await.unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    assert_eq!(app.get("/healthz").await.status, 200);
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
        metrics_token: None,
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

/// Account `name`'s balance in cents, as the store holds it.
async fn balance_of(store: &impl Store, name: &str) -> Option<i64> {
    store.balance(&account(name)).await.unwrap().map(Cents::get)
}

/// Two kiosks served P1 and P3 the same meal: the reconciliation proposes voiding kiosk-2's.
async fn a_day_with_two_duplicates(store: &impl Store) -> (Till, Vec<ProposedVoid>) {
    populate(store).await;
    let (_, k2) = two_duplicate_meals(store).await;
    let finance = common::ops::finance("finance-1");
    reconcile::run_and_save(
        store,
        &finance,
        date(),
        None,
        &settings(),
        night_after(),
        |_, _| {},
    )
    .await
    .unwrap();
    let proposals = store.proposed_voids(Some(date())).await.unwrap();
    assert_eq!(proposals.len(), 2);
    (k2, proposals)
}

/// A duplicate meal comes back once, whichever comes first: finance approving its proposed
/// void, or the kiosk voiding it.
async fn a_meal_is_credited_back_once_by_finance_or_the_kiosk(store: impl Store) {
    let (mut k2, proposals) = a_day_with_two_duplicates(&store).await;
    let (p1, p3) = (&proposals[0], &proposals[1]);
    let finance = common::ops::finance("finance-1");
    let settings = settings();
    let decide =
        |id, approve| reconcile::decide(&store, &finance, id, approve, &settings, night_after());
    assert_eq!(balance_of(&store, "A1").await, Some(-770));
    assert_eq!(balance_of(&store, "A2").await, Some(-200));

    // Finance first, then the kiosk: the kiosk's void is kept as evidence, moves nothing.
    decide(p1.id, true).await.unwrap();
    assert_eq!(balance_of(&store, "A1").await, Some(-385));
    let p1_meal = k2.written[0].clone();
    k2.write(lunch(200), void_of(&p1_meal));
    // The kiosk first, then finance: the approval is refused, the proposal can be rejected.
    let p3_meal = k2.written[1].clone();
    k2.write(lunch(201), void_of(&p3_meal));
    k2.upload(&store, lunch(240)).await;
    assert_eq!(balance_of(&store, "A1").await, Some(-385));
    assert_eq!(balance_of(&store, "A2").await, Some(-100));
    let repeated: Vec<_> = store
        .anomalies()
        .await
        .unwrap()
        .into_iter()
        .filter(|anomaly| anomaly.reason == AnomalyReason::VoidRepeated)
        .map(|anomaly| anomaly.seq.map(Seq::get))
        .collect();
    assert_eq!(repeated, vec![Some(4)]);
    let refused = decide(p3.id, true).await.unwrap_err();
    assert!(
        refused.to_string().contains("voided at the kiosk"),
        "{refused}"
    );
    assert_eq!(balance_of(&store, "A2").await, Some(-100));
    assert_eq!(
        decide(p3.id, false).await.unwrap().status,
        VoidStatus::Rejected
    );
    assert_eq!(store.balance_mismatches().await.unwrap(), vec![]);
}

common::on_each_backend!((
    a_meal_is_credited_back_once_by_finance_or_the_kiosk,
    a_meal_is_credited_back_once_on_sqlite,
    a_meal_is_credited_back_once_on_postgres
));

/// A back-office with a finance user, over HTTP.
async fn with_finance_user() -> (TestApp<SqliteStore>, SqliteDb) {
    let db = SqliteDb::new();
    let store = db.open().await;
    add_users(&store, PASSWORD, &[("compta", Role::Finance, None)]).await;
    (TestApp::start(store).await, db)
}

/// The status of `GET /api/v1/kiosks` as `name` with `password`, from the local address
/// `from` (the loopback has all of 127.0.0.0/8).
async fn status_from(from: &str, app: &TestApp<impl Store>, name: &str, password: &str) -> u16 {
    let (status, answer) = answer_from(from, app, name, password).await;
    // A locked name is refused as any wrong credentials are, with its reason.
    if status == 401 && answer.contains(LOCKED_OUT) {
        return LOCKED;
    }
    status
}

/// What [`status_from`] answers for credentials refused because the name is locked out.
const LOCKED: u16 = 0;

/// The status and the whole answer of [`status_from`]'s request.
async fn answer_from(
    from: &str,
    app: &TestApp<impl Store>,
    name: &str,
    password: &str,
) -> (u16, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(app.address).await.unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    let request = format!(
        "GET /api/v1/kiosks HTTP/1.1\r\nhost: canteen\r\nconnection: close\r\n\
         authorization: Basic {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_are_held_to_the_lock_out_of_their_address_alone() {
    let (app, _db) = with_finance_user().await;
    let app = Arc::new(app);
    let guesses: Vec<_> = (0..12)
        .map(|guess| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                status_from(
                    "127.0.0.1",
                    &app,
                    "compta",
                    &format!("guess number {guess}"),
                )
                .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|status| **status == 401).count();
    assert!(checked <= 5, "{statuses:?}");
    assert!(
        statuses.iter().all(|status| [401, LOCKED].contains(status)),
        "{statuses:?}"
    );
    // The right password from the guessing address waits out the lock-out; from another
    // address the user works as usual.
    assert_eq!(
        status_from("127.0.0.1", &app, "compta", PASSWORD).await,
        LOCKED
    );
    assert_eq!(
        status_from("127.0.0.2", &app, "compta", PASSWORD).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_name_answers_as_late_as_a_known_one() {
    let (app, _db) = with_finance_user().await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..3 {
        let started = std::time::Instant::now();
        assert_eq!(
            status_from("127.0.0.1", &app, "compta", "not the password").await,
            401
        );
        known.push(started.elapsed());
        let started = std::time::Instant::now();
        let stranger = format!("nobody-{round}");
        assert_eq!(
            status_from("127.0.0.1", &app, &stranger, "not the password").await,
            401
        );
        unknown.push(started.elapsed());
    }
    known.sort();
    unknown.sort();
    // Medians, with room for a noisy machine: an unchecked name answers some 50 times sooner.
    assert!(
        unknown[1] * 3 >= known[1],
        "unknown {unknown:?}, known {known:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_no_user_can_have_is_refused_and_never_stored() {
    let (app, _db) = with_finance_user().await;
    let overlong = "a".repeat(100_000);
    for name in [overlong.as_str(), "compta\u{0}", "<script>", "compta\r\nx"] {
        let reply = app
            .request("GET", "/api/v1/kiosks", &[basic_as(name, "x")], b"")
            .await;
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    let since = proto::Timestamp::from_unix_ms(0).unwrap();
    let mut transaction = app
        .store
        .begin(backoffice::store::Mode::Single)
        .await
        .unwrap();
    for name in [overlong.as_str(), "<script>"] {
        assert_eq!(
            transaction
                .failed_sign_ins(name, "127.0.0.1", since)
                .await
                .unwrap(),
            0
        );
    }
}

fn basic_as(name: &str, password: &str) -> (&'static str, String) {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    ("authorization", format!("Basic {token}"))
}

/// A password check of `name` from the test's address.
async fn sign_in_as(store: &impl Store, name: &str, password: &str) -> SignIn {
    let attempt = Attempt {
        name: name.to_owned(),
        password: password.to_owned(),
        client: "192.0.2.7".to_owned(),
    };
    sign_in::check_password(store, attempt, &Role::ALL, at(0))
        .await
        .unwrap()
}

/// Whoever knew an old password, or a user city IT disabled, is signed out at once.
async fn sessions_end_with_a_new_password_or_a_disabled_user(store: impl Store) {
    let admin = common::ops::operator();
    for name in ["compta", "martin"] {
        let user = User::new(name, Role::Finance, None, PASSWORD).unwrap();
        store.add_user(&user, registered_at()).await.unwrap();
    }
    let session_of = |name: &'static str| {
        let store = store.clone();
        async move {
            let user = store.user(name).await.unwrap().unwrap();
            sign_in::open_session(&store, &user, at(0)).await.unwrap().0
        }
    };
    let is_open = |token: String| {
        let store = store.clone();
        async move {
            sign_in::session(&store, &token, at(1))
                .await
                .unwrap()
                .is_some()
        }
    };
    let (compta, martin) = (session_of("compta").await, session_of("martin").await);
    assert!(is_open(compta.clone()).await && is_open(martin.clone()).await);

    // A new password for compta: compta's sessions end, martin's stay.
    let renewed = User::new("compta", Role::Finance, None, "another long password").unwrap();
    users::update(&store, &admin, &renewed).await.unwrap();
    assert!(!is_open(compta).await);
    assert!(is_open(martin.clone()).await);
    assert!(matches!(
        sign_in_as(&store, "compta", PASSWORD).await,
        SignIn::Failed
    ));

    // Martin disabled: the session ends and the right password no longer signs in.
    users::set_disabled(&store, &admin, "martin", true, at(2))
        .await
        .unwrap();
    assert!(!is_open(martin).await);
    assert!(matches!(
        sign_in_as(&store, "martin", PASSWORD).await,
        SignIn::Failed
    ));
    assert!(store.user("martin").await.unwrap().unwrap().disabled);
    users::set_disabled(&store, &admin, "martin", false, at(3))
        .await
        .unwrap();
    assert!(matches!(
        sign_in_as(&store, "martin", PASSWORD).await,
        SignIn::Known(_)
    ));
    // City IT cannot lock themselves out.
    let refused = users::set_disabled(&store, &admin, &admin.name, true, at(4)).await;
    assert!(refused.is_err());
}

common::on_each_backend!((
    sessions_end_with_a_new_password_or_a_disabled_user,
    sessions_end_with_a_new_password_or_a_disabled_user_on_sqlite,
    sessions_end_with_a_new_password_or_a_disabled_user_on_postgres
));

type Headers<'a> = Vec<(&'a str, &'a str)>;

/// The status of `GET /metrics` from `from`, with `headers`.
async fn metrics_status(router: Router, from: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = axum::http::Request::get("/metrics");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(axum::body::Body::empty()).unwrap();
    let from = ClientAddress(from.parse().unwrap());
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(from));
    router.oneshot(request).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_the_scrapers_token_or_else_this_machine_only() {
    const TOKEN: &str = "a-token-of-at-least-thirty-two-characters";
    let db = SqliteDb::new();
    let without = metrics_router(&db, None).await;
    let with = metrics_router(&db, Some(TOKEN)).await;
    let bearer = format!("Bearer {TOKEN}");
    let remote = "192.0.2.10:40000";
    let cases: [(&Router, &str, Headers<'_>, u16); 8] = [
        (&without, "127.0.0.1:40000", vec![], 200),
        (&without, "[::1]:40000", vec![], 200),
        (&without, remote, vec![], 401),
        // The client address is the connection's: a header claiming loopback changes nothing.
        (
            &without,
            remote,
            vec![("x-canteen-client", "127.0.0.1")],
            401,
        ),
        // With a token, nobody is answered without it, this machine included (a proxy here
        // would otherwise open it to all).
        (&with, "127.0.0.1:40000", vec![], 401),
        (&with, remote, vec![("authorization", "Bearer wrong")], 401),
        (&with, remote, vec![("authorization", bearer.as_str())], 200),
        (
            &with,
            "127.0.0.1:40000",
            vec![("authorization", bearer.as_str())],
            200,
        ),
    ];
    for (router, from, headers, expected) in cases {
        let status = metrics_status(router.clone(), from, &headers).await;
        assert_eq!(status, expected, "{from} {headers:?}");
    }
}

/// The service's router over `db`, with `metrics_token`.
async fn metrics_router(db: &SqliteDb, metrics_token: Option<&str>) -> Router {
    let app = Arc::new(App {
        store: db.open().await,
        metrics: Metrics::default(),
        finance: settings(),
        clock: SystemClock::shared(),
        metrics_token: metrics_token.map(str::to_owned),
    });
    backoffice::app::router(app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_sending_junk_fills_its_anomaly_budget_and_no_more() {
    use proto::limits::UPLOAD_BATCH_RECORDS_MAX;
    let budget = usize::try_from(backoffice::limits::ANOMALIES_PER_KIOSK_PER_DAY_MAX).unwrap();
    let db = SqliteDb::new();
    let store = db.open().await;
    let mut kiosk = Kiosk::new("kiosk-jaures-1", 1);
    store
        .add_device(kiosk.device.clone(), registered_at())
        .await
        .unwrap();
    // Meals of an account that does not exist: each record is stored and is an anomaly.
    let sent = budget + 120;
    for _ in 0..sent {
        kiosk.write(common::fixtures::meal("NOBODY", 385));
    }
    let app = TestApp::start(store).await;
    let mut uploaded = 0;
    for from in (1..=sent).step_by(UPLOAD_BATCH_RECORDS_MAX) {
        let to = (from + UPLOAD_BATCH_RECORDS_MAX - 1).min(sent);
        let records = kiosk.signed(u64::try_from(from).unwrap(), u64::try_from(to).unwrap());
        let reply = app.upload(&kiosk, records).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        uploaded += to + 1 - from;
    }
    assert_eq!(uploaded, sent);
    assert_eq!(
        app.store.records(&kiosk.device.id).await.unwrap().len(),
        sent
    );
    assert_eq!(app.store.anomalies().await.unwrap().len(), budget);
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains("canteen_anomalies_dropped_total{device=\"kiosk-jaures-1\"} 120"),
        "{metrics}"
    );
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_clients_use_tokens_that_expire_and_can_be_revoked() {
    let (app, _db) = populated_app().await;
    let provider = app.token("provider", Role::Payments, None, 30).await;
    let script = app
        .token("jaures-script", Role::Staff, Some("jaures"), 1)
        .await;
    let payment = |reference: &str| {
        json!({"reference": reference, "account": "A1", "amount": 1000}).to_string()
    };
    let pay = |token: String, reference: &'static str| {
        let app = &app;
        let body = payment(reference);
        async move {
            app.request(
                "POST",
                "/api/v1/payments",
                &[bearer(&token)],
                body.as_bytes(),
            )
            .await
            .status
        }
    };
    assert_eq!(pay(provider.clone(), "PAY-1").await, 200);
    assert_eq!(pay(format!("{provider}x"), "PAY-2").await, 401);
    assert_eq!(pay("canteen_not-a-token".to_owned(), "PAY-2").await, 401);
    // The token's role and site hold as a user's would.
    assert_eq!(pay(script.clone(), "PAY-2").await, 403);
    let own = app
        .request("GET", "/api/v1/accounts/A1", &[bearer(&script)], b"")
        .await;
    assert_eq!(own.status, 200, "{}", own.text());
    let kiosks = app
        .request("GET", "/api/v1/kiosks", &[bearer(&script)], b"")
        .await;
    assert_eq!(kiosks.status, 403);
    // Its actions carry its name.
    let now = app.clock.now().unix_ms();
    let around = |ms: i64| proto::Timestamp::from_unix_ms(now + ms).unwrap();
    let operations = app
        .store
        .operations_between(around(-60_000), around(60_000))
        .await
        .unwrap();
    assert!(
        operations
            .iter()
            .any(|operation| operation.user == "token:provider"),
        "{operations:?}"
    );

    // A day later the script's token has expired; the provider's is revoked by city IT.
    app.clock.advance_ms(24 * 60 * 60 * 1_000);
    let own = app
        .request("GET", "/api/v1/accounts/A1", &[bearer(&script)], b"")
        .await;
    assert_eq!(own.status, 401);
    assert_eq!(pay(provider.clone(), "PAY-3").await, 200);
    let admin = common::ops::operator();
    tokens::revoke(&app.store, &admin, "provider", app.clock.now())
        .await
        .unwrap();
    assert_eq!(pay(provider, "PAY-4").await, 401);
    assert_eq!(balance_of(&app.store, "A1").await, Some(2_000));
    // The store holds hashes only.
    let listed = tokens::list(&app.store, &admin).await.unwrap();
    assert_eq!(listed.len(), 2);
}

/// Path parameters a hostile client tries: far too long, not UTF-8 once decoded, a NUL, a walk
/// up the tree.
fn hostile_params() -> Vec<String> {
    vec![
        "A".repeat(10_000),
        "%FF%FE%FD".to_owned(),
        "a%00b".to_owned(),
        "..%2F..%2Fetc%2Fpasswd".to_owned(),
    ]
}

/// Bodies a hostile client tries, with their content type.
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let long = format!("{{\"reason\":\"{}\"}}", "x".repeat(200_000));
    vec![
        ("application/json", vec![0xff, 0xfe, 0xfd, b'{']),
        ("application/json", deep.into_bytes()),
        ("application/json", long.into_bytes()),
        ("text/plain", b"{\"amount\":500}".to_vec()),
        (
            "application/x-www-form-urlencoded",
            b"amount=%FF%FE&name=\x00".to_vec(),
        ),
    ]
}

/// A raw request with its own content type, answered within a bound (never a hang).
async fn hostile_request(
    app: &TestApp<impl Store>,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    (content_type, body): &(&str, Vec<u8>),
) -> u16 {
    let mut headers = headers.to_vec();
    headers.push(("content-type", (*content_type).to_owned()));
    let request = app.request(method, path, &headers, body);
    tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s"))
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_hostile_input_without_a_server_error_or_a_change() {
    let (app, db) = populated_app().await;
    let admin = app.token("hostile-suite", Role::Admin, None, 1).await;
    let before = db.city_rows();
    let mut routes: Vec<(String, String)> = backoffice::http::routes::<SqliteStore>()
        .into_iter()
        .chain(backoffice::web::routes::<SqliteStore>())
        .map(|(method, path, _)| (method.to_string(), path.to_owned()))
        .collect();
    routes.sort();
    let mut asked = 0;
    for (method, template) in &routes {
        for param in hostile_params() {
            let path = fill_params(template, &param);
            for body in hostile_bodies() {
                for credentials in [vec![], vec![bearer(&admin)]] {
                    // Twice: a refusal repeated is the same refusal.
                    for _ in 0..2 {
                        let status =
                            hostile_request(&app, method, &path, &credentials, &body).await;
                        assert!(
                            status < 500,
                            "{method} {template} with {param:.20}: {status}"
                        );
                        asked += 1;
                    }
                }
            }
        }
    }
    assert!(asked > 1_000, "{asked} requests");
    assert_eq!(
        db.city_rows(),
        before,
        "a refused request changed the city's rows"
    );
    assert_eq!(app.get("/healthz").await.status, 200);
}

/// `template` with each `{name}` replaced by `value`.
fn fill_params(template: &str, value: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        path.push_str(value);
        rest = &rest[open + rest[open..].find('}').unwrap() + 1..];
    }
    path.push_str(rest);
    path
}

/// What the document promises of a body holds both ways: settings a kiosk cannot work with (a
/// result shown for 0 ms, a sync every millisecond, an idle sign-out after 50 days) are refused
/// and change nothing; a whole number written `30000.0`, a `PUT` body leaving out the id its path
/// gives, and a pupil kept at their site are read as the document says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_judged_as_the_document_states_them() {
    let (app, db) = populated_app().await;
    let admin = vec![
        bearer(&app.token("bodies", Role::Admin, None, 1).await),
        ("content-type", "application/json".to_owned()),
    ];
    let put = |path: &'static str, body: serde_json::Value| {
        let app = &app;
        let admin = &admin;
        async move {
            let reply = app
                .request("PUT", path, admin, body.to_string().as_bytes())
                .await;
            (
                reply.status,
                String::from_utf8_lossy(&reply.body).into_owned(),
            )
        }
    };
    let settings =
        |display: serde_json::Value, sync: serde_json::Value, idle: serde_json::Value| {
            json!({"result_display_ms": display, "sync_interval_ms": sync,
            "staff_idle_signout_ms": idle, "language": "fr"})
        };
    let before = db.city_rows();
    for (display, sync, idle) in [
        (json!(0), json!(30_000), json!(60_000)),
        (json!(2_000), json!(1), json!(60_000)),
        (json!(2_000), json!(30_000), json!(4_320_000_000_u64)),
        (json!(2_000.5), json!(30_000), json!(60_000)),
    ] {
        let (status, body) = put(
            "/api/v1/sites/jaures/settings",
            settings(display.clone(), sync.clone(), idle.clone()),
        )
        .await;
        assert_eq!(status, 400, "{display} {sync} {idle}: {body}");
    }
    assert_eq!(
        db.city_rows(),
        before,
        "refused settings changed the city's rows"
    );

    let (status, body) = put(
        "/api/v1/sites/jaures/settings",
        settings(json!(2_000.0), json!(30_000), json!(60_000.0)),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let service = json!({"name": "Déjeuner", "meal_type": "lunch",
        "weekdays": ["monday"], "start": "11:30", "end": "13:30"});
    let (status, body) = put("/api/v1/sites/jaures/services/lunch", service.clone()).await;
    assert_eq!(status, 200, "{body}");
    let mut named_other = service;
    named_other["id"] = "dinner".into();
    let (status, body) = put("/api/v1/sites/jaures/services/lunch", named_other).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = put(
        "/api/v1/pupils/P1",
        json!({"site": "ferry", "pupil": {"account": "A1", "first_name": "Léa",
            "last_name": "Martin", "bracket": "q3"}}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("stays at their site"), "{body}");
}
