//! Finance's night over HTTP: reconcile a day, read the duplicate meal it found, approve the
//! proposed void, sign the day off, and download its exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use backoffice::http::finance::ReconciliationView;
use backoffice::reconcile::FindingKind;
use backoffice::store::{ProposedVoid, SqliteStore, VoidStatus};
use backoffice::users::Role;
use proto::Cents;
use serde_json::json;

use common::SqliteDb;
use common::app::{Reply, TestApp, basic_auth};
use common::day::charged_twice;
use common::fixtures::{account, populate_with_users};

const PASSWORD: &str = "correct horse battery";

/// Where finance signs off the reconciled day.
const SIGN_OFF: &str = "/api/v1/reconciliations/2026-11-30/sign-off";

/// A signed-in user's request headers.
type Headers = Vec<(&'static str, String)>;

fn as_user(name: &str) -> Headers {
    vec![basic_auth(name, PASSWORD)]
}

/// `GET path` as the user whose headers are `who`.
async fn get(app: &TestApp<SqliteStore>, who: &Headers, path: &str) -> Reply {
    app.request("GET", path, who, b"").await
}

/// `POST path` without a body, as the user whose headers are `who`.
async fn post(app: &TestApp<SqliteStore>, who: &Headers, path: &str) -> Reply {
    app.request("POST", path, who, b"").await
}

/// Asks the back-office to reconcile 2026-11-30, as the user whose headers are `who`.
async fn run_reconciliation(app: &TestApp<SqliteStore>, who: &Headers) -> Reply {
    let body = json!({"date": "2026-11-30"}).to_string();
    app.request("POST", "/api/v1/reconciliations", who, body.as_bytes())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_reconciles_approves_a_void_signs_off_and_exports() {
    let db = SqliteDb::new();
    let store = db.open().await;
    populate_with_users(
        &store,
        PASSWORD,
        &[
            ("compta", Role::Finance, None),
            ("admin", Role::Admin, None),
        ],
    )
    .await;
    charged_twice(&store, [1, 2]).await;
    let app = TestApp::start(store).await;
    let finance = as_user("compta");
    let admin = as_user("admin");

    let run = run_reconciliation(&app, &admin).await;
    assert_eq!(run.status, 200, "{}", run.text());
    let view: ReconciliationView = run.json();
    assert_eq!(view.run_by, "admin");
    let duplicate = view
        .report
        .findings
        .iter()
        .find(|finding| finding.kind == FindingKind::DuplicateMeal)
        .unwrap();
    assert_eq!(duplicate.evidence.len(), 2);

    let proposals: Vec<ProposedVoid> =
        get(&app, &finance, "/api/v1/proposed-voids?date=2026-11-30")
            .await
            .json();
    assert_eq!(proposals.len(), 1);
    let refused = post(&app, &finance, SIGN_OFF).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    let approved = post(
        &app,
        &finance,
        &format!("/api/v1/proposed-voids/{}/approve", proposals[0].id),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.text());
    assert_eq!(approved.json::<ProposedVoid>().status, VoidStatus::Approved);
    assert_eq!(
        app.store.balance(&account("A1")).await.unwrap(),
        Some(Cents::new(-385))
    );

    let signed = post(&app, &finance, SIGN_OFF).await;
    assert_eq!(signed.status, 200, "{}", signed.text());
    let stored: ReconciliationView = get(&app, &admin, "/api/v1/reconciliations/2026-11-30")
        .await
        .json();
    assert_eq!(stored.signed_off_by.as_deref(), Some("compta"));
    let again = run_reconciliation(&app, &finance).await;
    assert_eq!(again.status, 422, "{}", again.text());

    let meals = get(&app, &finance, "/api/v1/exports/meals?from=2026-11-30").await;
    assert_eq!(meals.status, 200, "{}", meals.text());
    assert_eq!(meals.text().lines().count(), 3, "{}", meals.text());
    let journal = get(
        &app,
        &finance,
        "/api/v1/exports/journal?from=2026-11-30&to=2026-12-01",
    )
    .await;
    assert_eq!(journal.status, 200);
    assert!(
        journal
            .text()
            .starts_with("JournalCode\tJournalLib\tEcritureNum")
    );
    let records = get(&app, &finance, "/api/v1/exports/records?from=2026-11-30").await;
    assert_eq!(records.status, 200);
    let verification = backoffice::export::verify(records.body.as_slice()).unwrap();
    assert_eq!(verification.violations, vec![]);
    assert_eq!((verification.devices, verification.records), (2, 4));
    let bad = get(&app, &finance, "/api/v1/exports/ledger?from=2026-11-30").await;
    assert_eq!(bad.status, 400);
}
