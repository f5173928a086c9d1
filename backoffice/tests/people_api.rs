//! User stories of staff, finance, city IT and the online payment provider, over HTTP; and a
//! walk of every endpoint with every role.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use backoffice::store::Store;
use backoffice::users::Role;
use proto::Cents;
use proto::api::{ApiError, ErrorCode};
use proto::snapshot::AccountState;
use serde_json::{Value, json};

use common::SqliteDb;
use common::app::{Reply, TestApp, basic_auth};
use common::fixtures::{account, populate_with_users, site};

const PASSWORD: &str = "correct horse battery";

/// Who asks: a user name, or nobody.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    StaffJaures,
    StaffFerry,
    Finance,
    Admin,
    Payments,
    Nobody,
    WrongPassword,
}

const EVERYONE: [Who; 7] = [
    Who::StaffJaures,
    Who::StaffFerry,
    Who::Finance,
    Who::Admin,
    Who::Payments,
    Who::Nobody,
    Who::WrongPassword,
];

impl Who {
    fn headers(self) -> Vec<(&'static str, String)> {
        let (name, password) = match self {
            Who::StaffJaures => ("martin", PASSWORD),
            Who::StaffFerry => ("durand", PASSWORD),
            Who::Finance => ("compta", PASSWORD),
            Who::Admin => ("admin", PASSWORD),
            Who::Payments => ("provider", PASSWORD),
            Who::WrongPassword => ("admin", "not the password at all"),
            Who::Nobody => return vec![],
        };
        vec![basic_auth(name, password)]
    }
}

/// A back-office with two sites populated and one user of each role.
async fn started() -> (TestApp<backoffice::store::SqliteStore>, SqliteDb) {
    let db = SqliteDb::new();
    let store = db.open().await;
    populate_with_users(
        &store,
        PASSWORD,
        &[
            ("martin", Role::Staff, Some("jaures")),
            ("durand", Role::Staff, Some("ferry")),
            ("compta", Role::Finance, None),
            ("admin", Role::Admin, None),
            ("provider", Role::Payments, None),
        ],
    )
    .await;
    (TestApp::start(store).await, db)
}

async fn call(
    app: &TestApp<impl Store>,
    who: Who,
    method: &str,
    path: &str,
    body: &Value,
) -> Reply {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    app.request(method, path, &who.headers(), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_admits_exactly_its_roles() {
    use Who::{Admin, Finance, Payments, StaffFerry, StaffJaures};
    let (app, db) = started().await;
    let pupil = json!({"site": "jaures", "pupil": {"id": "P1", "account": "A1",
        "first_name": "Léa", "last_name": "Martin", "bracket": "q3"}});
    let service = json!({"id": "lunch", "name": "Déjeuner", "meal_type": "lunch",
        "weekdays": ["monday"], "start": "11:30", "end": "13:30"});
    let settings = json!({"result_display_ms": 3000, "sync_interval_ms": 30000,
        "staff_idle_signout_ms": 60000, "language": "fr"});
    let endpoints: Vec<(&str, &str, Value, Vec<Who>)> = vec![
        (
            "GET",
            "/api/v1/accounts/A1",
            Value::Null,
            vec![StaffJaures, Finance, Admin],
        ),
        (
            "PUT",
            "/api/v1/accounts/A7",
            json!({"overdraft_floor": 0}),
            vec![StaffJaures, StaffFerry, Admin],
        ),
        (
            "POST",
            "/api/v1/accounts/A1/top-ups",
            json!({"amount": 500, "method": "cash"}),
            vec![StaffJaures, Admin],
        ),
        (
            "POST",
            "/api/v1/accounts/A1/adjustments",
            json!({"amount": -100, "reason": "double top-up"}),
            vec![Finance, Admin],
        ),
        (
            "POST",
            "/api/v1/payments",
            json!({"reference": "PAY-1", "account": "A1", "amount": 1000}),
            vec![Payments, Admin],
        ),
        ("PUT", "/api/v1/pupils/P1", pupil, vec![StaffJaures, Admin]),
        (
            "POST",
            "/api/v1/cards",
            json!({"uid": "0a0b0c0d", "holder": {"pupil": "P1"}}),
            vec![StaffJaures, Admin],
        ),
        (
            "POST",
            "/api/v1/cards/03030303/block",
            Value::Null,
            vec![StaffJaures, Admin],
        ),
        (
            "POST",
            "/api/v1/cards/02020202/replace",
            json!({"new_uid": "02020209"}),
            vec![StaffJaures, Admin],
        ),
        (
            "PUT",
            "/api/v1/sites/jaures/tariffs",
            json!({"bracket": "q1", "meal_type": "lunch", "price": 110}),
            vec![Admin],
        ),
        (
            "PUT",
            "/api/v1/sites/jaures/services/lunch",
            service,
            vec![Admin],
        ),
        (
            "PUT",
            "/api/v1/sites/jaures/staff/staff-dupont",
            json!({"name": "M. Dupont", "pin": "4321"}),
            vec![Admin],
        ),
        (
            "PUT",
            "/api/v1/sites/jaures/settings",
            settings,
            vec![Admin],
        ),
        (
            "GET",
            "/api/v1/anomalies",
            Value::Null,
            vec![Finance, Admin],
        ),
        ("GET", "/api/v1/kiosks", Value::Null, vec![Finance, Admin]),
        (
            "POST",
            "/api/v1/reconciliations",
            json!({"date": "2026-11-30"}),
            vec![Finance, Admin],
        ),
        (
            "GET",
            "/api/v1/reconciliations/2026-11-30",
            Value::Null,
            vec![Finance, Admin],
        ),
        (
            "POST",
            "/api/v1/reconciliations/2026-11-30/sign-off",
            Value::Null,
            vec![Finance],
        ),
        (
            "GET",
            "/api/v1/proposed-voids?date=2026-11-30",
            Value::Null,
            vec![Finance, Admin],
        ),
        (
            "POST",
            "/api/v1/proposed-voids/1/approve",
            Value::Null,
            vec![Finance],
        ),
        (
            "POST",
            "/api/v1/proposed-voids/1/reject",
            Value::Null,
            vec![Finance],
        ),
        (
            "GET",
            "/api/v1/exports/journal?from=2026-11-30",
            Value::Null,
            vec![Finance, Admin],
        ),
        // A manual transfer's body is an export file; `{}` is refused once the role is.
        ("POST", "/api/v1/transfers", json!({}), vec![Finance, Admin]),
        // Kiosk endpoints take signed requests, never a user's password.
        ("GET", "/api/v1/kiosk/snapshot", Value::Null, vec![]),
        ("POST", "/api/v1/kiosk/records", json!({}), vec![]),
    ];
    let routed = backoffice::http::routes::<backoffice::store::SqliteStore>().len();
    let public = 3; // healthz, metrics, openapi
    assert_eq!(
        endpoints.len() + public,
        routed,
        "every routed endpoint is walked"
    );
    // Each operation, as each role, on the own site (martin, of jaures) and on another site
    // (durand, of ferry, on jaures' account, pupil and cards): a refusal changes nothing.
    for (method, path, body, allowed) in &endpoints {
        for who in EVERYONE {
            let before = db.city_rows();
            let reply = call(&app, who, method, path, body).await;
            let denied = match who {
                Who::Nobody | Who::WrongPassword => 401,
                _ if path.starts_with("/api/v1/kiosk/") => 401,
                _ => 403,
            };
            if allowed.contains(&who) {
                assert!(
                    ![401, 403].contains(&reply.status) && reply.status < 500,
                    "{who:?} {method} {path}: {} {}",
                    reply.status,
                    reply.text()
                );
            } else {
                assert_eq!(
                    reply.status,
                    denied,
                    "{who:?} {method} {path}: {}",
                    reply.text()
                );
                assert_eq!(
                    db.city_rows(),
                    before,
                    "{who:?} {method} {path} changed rows"
                );
            }
        }
    }
    assert_eq!(app.store.balance_mismatches().await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_top_up_and_replace_a_lost_card_and_the_balance_stays() {
    let (app, _db) = started().await;
    let staff = Who::StaffJaures;
    let topped = call(&app, staff, "POST", "/api/v1/accounts/A1/top-ups",
        &json!({"amount": 2500, "method": "cheque", "reference": "n° 0012'; DROP TABLE accounts;--"})).await;
    assert_eq!(topped.status, 200, "{}", topped.text());
    let replaced = call(
        &app,
        staff,
        "POST",
        "/api/v1/cards/01010101/replace",
        &json!({"new_uid": "01010199"}),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    let state: AccountState = call(&app, staff, "GET", "/api/v1/accounts/A1", &Value::Null)
        .await
        .json();
    assert_eq!(state.balance, Cents::new(2_500));
    let opened = call(
        &app,
        staff,
        "PUT",
        "/api/v1/accounts/A5",
        &json!({"overdraft_floor": 0}),
    )
    .await;
    assert_eq!(opened.status, 201, "{}", opened.text());
    let edited = call(
        &app,
        staff,
        "PUT",
        "/api/v1/accounts/A1",
        &json!({"overdraft_floor": -1000}),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.text());
    let state: AccountState = edited.json();
    assert_eq!(
        (state.balance, state.overdraft_floor),
        (Cents::new(2_500), Cents::new(-1_000))
    );
    let snapshot = app.store.snapshot(&site(), None, None).await.unwrap();
    snapshot.check_complete().unwrap();
    assert!(
        snapshot
            .hotlist
            .iter()
            .any(|uid| uid.to_string() == "01010101")
    );

    // Bad input: a clear 4xx and nothing written.
    let bad: Vec<(Who, &str, &str, Value, u16)> = vec![
        (
            staff,
            "POST",
            "/api/v1/accounts/A1/top-ups",
            json!({"amount": -5, "method": "cash"}),
            400,
        ),
        (
            staff,
            "POST",
            "/api/v1/accounts/A1/top-ups",
            json!({"amount": 0, "method": "cash"}),
            400,
        ),
        (
            staff,
            "POST",
            "/api/v1/accounts/A1/top-ups",
            json!({"amount": 9_223_372_036_854_775_807_i64, "method": "cash"}),
            400,
        ),
        (
            staff,
            "POST",
            "/api/v1/accounts/A1/top-ups",
            json!({"amount": "ten", "method": "cash"}),
            400,
        ),
        (
            staff,
            "POST",
            "/api/v1/accounts/A1/top-ups",
            json!({"amount": 5, "method": "gold"}),
            400,
        ),
        (
            staff,
            "POST",
            "/api/v1/accounts/A-NONE/top-ups",
            json!({"amount": 5, "method": "cash"}),
            404,
        ),
        (
            staff,
            "POST",
            "/api/v1/accounts/A1'--/top-ups",
            json!({"amount": 5, "method": "cash"}),
            400,
        ),
        (
            Who::Finance,
            "POST",
            "/api/v1/accounts/A1/adjustments",
            json!({"amount": -100}),
            400,
        ),
        (
            Who::Finance,
            "POST",
            "/api/v1/accounts/A1/adjustments",
            json!({"amount": 0, "reason": "none"}),
            400,
        ),
        (
            staff,
            "PUT",
            "/api/v1/accounts/A8",
            json!({"overdraft_floor": 100}),
            400,
        ),
        (
            staff,
            "POST",
            "/api/v1/cards",
            json!({"uid": "zz", "holder": {"pupil": "P1"}}),
            400,
        ),
        (
            staff,
            "POST",
            "/api/v1/cards",
            json!({"uid": "0a0b0c0e", "holder": {"pupil": "P-NONE"}}),
            404,
        ),
        (
            staff,
            "POST",
            "/api/v1/cards",
            json!({"uid": "02020202", "holder": {"pupil": "P1"}}),
            409,
        ),
        (
            Who::Admin,
            "PUT",
            "/api/v1/sites/jaures/staff/staff-x",
            json!({"name": "X", "pin": "12"}),
            400,
        ),
        (
            Who::Admin,
            "PUT",
            "/api/v1/sites/jaures/tariffs",
            json!({"bracket": "q1", "meal_type": "lunch", "price": 10_001}),
            400,
        ),
    ];
    for (who, method, path, body, status) in bad {
        let reply = call(&app, who, method, path, &body).await;
        assert_eq!(
            reply.status,
            status,
            "{method} {path} {body}: {}",
            reply.text()
        );
        let _: ApiError = reply.json();
    }
    let state: AccountState = call(&app, staff, "GET", "/api/v1/accounts/A1", &Value::Null)
        .await
        .json();
    assert_eq!(state.balance, Cents::new(2_500));
    assert_eq!(app.store.account(&account("A8")).await.unwrap(), None);
    assert_eq!(app.store.balance_mismatches().await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_payment_is_credited_once_however_often_it_is_sent() {
    let (app, _db) = started().await;
    let payment = json!({"reference": "PSP-2026-000123", "account": "A2", "amount": 3000});
    let mut balances = Vec::new();
    for attempt in 0..3 {
        let reply = call(&app, Who::Payments, "POST", "/api/v1/payments", &payment).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let moved: Value = reply.json();
        assert_eq!(moved["replayed"], json!(attempt > 0));
        balances.push(moved["balance"].clone());
    }
    assert_eq!(balances, vec![json!(3000); 3]);
    let other = json!({"reference": "PSP-2026-000123", "account": "A2", "amount": 1});
    let conflict = call(&app, Who::Payments, "POST", "/api/v1/payments", &other).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json::<ApiError>().code, ErrorCode::Conflict);
    assert_eq!(
        app.store.balance(&account("A2")).await.unwrap(),
        Some(Cents::new(3_000))
    );
}
