//! User stories of the kiosk API, over HTTP against a running back-office.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use testkit as common;

use common::Ops as _;

use backoffice::store::Store;
use proto::api::{ApiError, ErrorCode, UploadResponse};
use proto::limits::{REQUEST_CLOCK_SKEW_MS_MAX, UPLOAD_BATCH_RECORDS_MAX, UPLOAD_BODY_BYTES_MAX};
use proto::snapshot::Snapshot;
use proto::{CardUid, Cents, Seq, Timestamp};

use common::app::{TestApp, fresh_nonce, signed_headers, upload_body};
use common::fixtures::registered_at;
use common::fixtures::{Kiosk, account, at, populate, top_up};
use common::{PostgresDb, SqliteDb};

const RECORDS: &str = "/api/v1/kiosk/records";
const SNAPSHOT: &str = "/api/v1/kiosk/snapshot";

/// An enrolled kiosk with an account to charge, on a fresh back-office.
async fn enrolled<S: Store>(store: S) -> (TestApp<S>, Kiosk) {
    let kiosk = Kiosk::registered(&store, "kiosk-jaures-1", 1).await;
    store
        .add_account(&account("A1"), Cents::ZERO, at(0))
        .await
        .unwrap();
    (TestApp::start(store).await, kiosk)
}

fn acknowledged(reply: &common::app::Reply) -> UploadResponse {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_uploads_its_records_and_a_retry_stores_nothing_twice() {
    let db = SqliteDb::new();
    let (app, mut kiosk) = enrolled(db.open().await).await;
    kiosk.write(top_up("A1", 2_000));
    kiosk.write_meals("A1", 4);

    let first = acknowledged(&app.upload(&kiosk, kiosk.signed(1, 3)).await);
    assert_eq!(first.acknowledged, Some(Seq::new(3).unwrap()));
    assert_eq!(
        (first.stored, first.duplicates, first.quarantined),
        (3, 0, 0)
    );

    // The answer was lost: the kiosk sends everything again, with what is new.
    let retry = acknowledged(&app.upload(&kiosk, kiosk.signed(1, 5)).await);
    assert_eq!(retry.acknowledged, Some(Seq::new(5).unwrap()));
    assert_eq!(
        (retry.stored, retry.duplicates, retry.quarantined),
        (2, 3, 0)
    );

    assert_eq!(app.store.records(&kiosk.device.id).await.unwrap().len(), 5);
    assert_eq!(
        app.store.balance(&account("A1")).await.unwrap(),
        Some(Cents::new(2_000 - 4 * 385))
    );
    // The kiosk's snapshot says its balances include its records up to seq 5, so the kiosk
    // adds only what it wrote after.
    let snapshot: Snapshot = app
        .signed(&kiosk, "GET", "/api/v1/kiosk/snapshot", b"")
        .await
        .json();
    assert_eq!(snapshot.records_through, Some(Seq::new(5).unwrap()));
    assert_eq!(app.store.balance_mismatches().await.unwrap(), vec![]);
    let statuses = app.store.kiosk_statuses().await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].device, kiosk.device.id);

    let metrics = app.get("/metrics").await.text();
    for line in [
        "canteen_records_total{outcome=\"stored\"} 5",
        "canteen_records_total{outcome=\"duplicate\"} 3",
        "canteen_http_requests_total{route=\"/api/v1/kiosk/records\",status=\"200\"} 2",
        "canteen_kiosk_last_seen_seconds{device=\"kiosk-jaures-1\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    app.stop().await.unwrap();
}

/// A request as sent: which kiosk signs, what it claims, and what is sent.
struct Attempt {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: ErrorCode,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_answered_clearly_and_store_nothing() {
    let db = SqliteDb::new();
    let (app, mut kiosk) = enrolled(db.open().await).await;
    kiosk.write_meals("A1", 2);
    let stranger = Kiosk::new("kiosk-unknown", 2);
    let mut revoked = Kiosk::new("kiosk-revoked", 3);
    revoked.write_meals("A1", 1);
    app.store
        .add_device(revoked.device.clone(), registered_at())
        .await
        .unwrap();
    app.store
        .revoke_device(&revoked.device.id, at(0))
        .await
        .unwrap();

    let now = app.clock.now();
    let body = upload_body(kiosk.signed(1, 2), now);
    let sign = |kiosk: &Kiosk, body: &[u8], at: Timestamp, nonce: &str| {
        signed_headers(kiosk, "POST", RECORDS, body, at, nonce)
    };
    let replayed_nonce = fresh_nonce();
    let mut impostor = sign(&stranger, &body, now, &fresh_nonce());
    impostor[0].1 = kiosk.device.id.to_string();
    let skewed =
        Timestamp::from_unix_ms(now.unix_ms() - REQUEST_CLOCK_SKEW_MS_MAX - 1_000).unwrap();
    let too_many = upload_body(
        vec![kiosk.signed(1, 1)[0].clone(); UPLOAD_BATCH_RECORDS_MAX + 1],
        now,
    );
    let too_big = vec![b' '; UPLOAD_BODY_BYTES_MAX + 1];
    let wrong_types = br#"{"records": 12, "status": "fine"}"#.to_vec();
    let attempts = vec![
        Attempt {
            name: "no signature headers",
            headers: vec![],
            body: body.clone(),
            status: 401,
            code: ErrorCode::Unauthenticated,
        },
        Attempt {
            name: "unknown kiosk",
            headers: sign(&stranger, &body, now, &fresh_nonce()),
            body: body.clone(),
            status: 401,
            code: ErrorCode::Unauthenticated,
        },
        Attempt {
            name: "revoked kiosk",
            headers: sign(
                &revoked,
                &upload_body(revoked.signed(1, 1), now),
                now,
                &fresh_nonce(),
            ),
            body: upload_body(revoked.signed(1, 1), now),
            status: 403,
            code: ErrorCode::Forbidden,
        },
        Attempt {
            name: "signed by another key than the kiosk's",
            headers: impostor,
            body: body.clone(),
            status: 401,
            code: ErrorCode::Unauthenticated,
        },
        Attempt {
            name: "body altered after signing",
            headers: sign(&kiosk, &body, now, &fresh_nonce()),
            body: upload_body(kiosk.signed(1, 1), now),
            status: 401,
            code: ErrorCode::Unauthenticated,
        },
        Attempt {
            name: "clock too far off",
            headers: sign(&kiosk, &body, skewed, &fresh_nonce()),
            body: body.clone(),
            status: 401,
            code: ErrorCode::Unauthenticated,
        },
        Attempt {
            name: "nonce too short",
            headers: sign(&kiosk, &body, now, "short"),
            body: body.clone(),
            status: 401,
            code: ErrorCode::Unauthenticated,
        },
        Attempt {
            name: "malformed JSON",
            headers: sign(&kiosk, b"{not json", now, &fresh_nonce()),
            body: b"{not json".to_vec(),
            status: 400,
            code: ErrorCode::BadRequest,
        },
        Attempt {
            name: "wrong types",
            headers: sign(&kiosk, &wrong_types, now, &fresh_nonce()),
            body: wrong_types.clone(),
            status: 400,
            code: ErrorCode::BadRequest,
        },
        Attempt {
            name: "batch too large",
            headers: sign(&kiosk, &too_many, now, &fresh_nonce()),
            body: too_many.clone(),
            status: 413,
            code: ErrorCode::BatchTooLarge,
        },
        Attempt {
            name: "body too large",
            headers: sign(&kiosk, &too_big, now, &fresh_nonce()),
            body: too_big.clone(),
            status: 413,
            code: ErrorCode::BodyTooLarge,
        },
        Attempt {
            name: "replayed request (first copy refused for its body)",
            headers: sign(&kiosk, &wrong_types, now, &replayed_nonce),
            body: wrong_types.clone(),
            status: 400,
            code: ErrorCode::BadRequest,
        },
        Attempt {
            name: "replayed request",
            headers: sign(&kiosk, &wrong_types, now, &replayed_nonce),
            body: wrong_types.clone(),
            status: 401,
            code: ErrorCode::Replayed,
        },
    ];
    for attempt in attempts {
        let reply = app
            .request("POST", RECORDS, &attempt.headers, &attempt.body)
            .await;
        assert_eq!(
            reply.status,
            attempt.status,
            "{}: {}",
            attempt.name,
            reply.text()
        );
        let error: ApiError = reply.json();
        assert_eq!(error.code, attempt.code, "{}", attempt.name);
        for device in [&kiosk.device.id, &revoked.device.id] {
            assert!(
                app.store.records(device).await.unwrap().is_empty(),
                "{}: something was stored",
                attempt.name
            );
        }
        assert!(
            app.store.kiosk_statuses().await.unwrap().is_empty(),
            "{}",
            attempt.name
        );
    }
    let metrics = app.get("/metrics").await.text();
    assert!(metrics.contains("canteen_kiosk_requests_refused_total{reason=\"replayed\"} 1"));
    assert!(metrics.contains("canteen_kiosk_requests_refused_total{reason=\"unknown_device\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_every_routed_endpoint_is_documented() {
    let db = SqliteDb::new();
    let (app, _kiosk) = enrolled(db.open().await).await;
    let health = app.get("/healthz").await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let missing = app.get("/api/v1/nothing-here").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json::<ApiError>().code, ErrorCode::NotFound);

    let document: serde_json::Value = app.get("/api/openapi.json").await.json();
    assert_eq!(document["openapi"], "3.1.0");
    let routed: BTreeSet<(String, String)> =
        backoffice::http::routes::<backoffice::store::SqliteStore>()
            .into_iter()
            .map(|(method, path, _)| (method.as_str().to_ascii_lowercase(), path.to_owned()))
            .collect();
    assert!(!routed.is_empty());
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            check_operation(path, method, operation);
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(routed, documented, "routed and documented endpoints differ");
}

/// An operation declares each parameter of its path, at least one success and, when it takes
/// credentials, what it answers without them.
fn check_operation(path: &str, method: &str, operation: &serde_json::Value) {
    let parameters = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let in_path: BTreeSet<&str> = parameters
        .iter()
        .filter(|parameter| parameter["in"] == "path")
        .filter_map(|parameter| parameter["name"].as_str())
        .collect();
    let templated: BTreeSet<&str> = path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    assert_eq!(in_path, templated, "{method} {path}: path parameters");
    let responses = operation["responses"].as_object().unwrap();
    assert!(
        responses.keys().any(|status| status.starts_with('2')),
        "{method} {path} documents no success"
    );
    if operation["security"].is_array() {
        assert!(
            responses.contains_key("401"),
            "{method} {path} takes credentials but documents no 401"
        );
    }
}

/// The served document is valid OpenAPI 3.1, by the reference validator (`openapi-spec-validator`
/// from PyPI, installed into target/py by `deploy/dev/install-packages.sh test`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid() {
    let validator =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py/bin/openapi-spec-validator");
    assert!(
        validator.is_file(),
        "{} is missing: run ./deploy/dev/install-packages.sh test",
        validator.display()
    );
    let db = SqliteDb::new();
    let (app, _kiosk) = enrolled(db.open().await).await;
    let reply = app.get("/api/openapi.json").await;
    assert_eq!(reply.status, 200);
    let file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(file.path(), reply.text()).unwrap();
    let output = std::process::Command::new(&validator)
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two back-office instances on one PostgreSQL, racing the same kiosk's uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_store_each_record_once() {
    const ROUNDS: u64 = 4;
    let db = PostgresDb::new().await;
    let (first, mut kiosk) = enrolled(db.open().await).await;
    let second = TestApp::start(db.open().await).await;
    kiosk.write(top_up("A1", 50_000));
    kiosk.write_meals("A1", 39);
    for round in 1..=ROUNDS {
        let batch = kiosk.signed(1, round * 10);
        let (a, b) = tokio::join!(
            first.upload(&kiosk, batch.clone()),
            second.upload(&kiosk, batch)
        );
        let (a, b) = (acknowledged(&a), acknowledged(&b));
        assert_eq!(a.stored + b.stored, 10, "round {round}");
        assert_eq!(a.acknowledged, Some(Seq::new(round * 10).unwrap()));
        assert_eq!(b.acknowledged, Some(Seq::new(round * 10).unwrap()));
    }
    assert_eq!(
        first.store.records(&kiosk.device.id).await.unwrap().len(),
        40
    );
    assert_eq!(
        second.store.balance(&account("A1")).await.unwrap(),
        Some(Cents::new(50_000 - 39 * 385))
    );
    assert_eq!(first.store.balance_mismatches().await.unwrap(), vec![]);
}

/// The database goes away mid-service: the kiosk gets a 503, and its retry once the database
/// is back stores everything once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_answers_503_and_the_retry_loses_nothing() {
    let db = PostgresDb::new().await;
    let (app, mut kiosk) = enrolled(db.open().await).await;
    kiosk.write_meals("A1", 6);
    acknowledged(&app.upload(&kiosk, kiosk.signed(1, 3)).await);

    let (admin, connection) =
        tokio_postgres::connect(&common::postgres_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';",
            name = db.name
        ))
        .await
        .unwrap();
    let refused = app.upload(&kiosk, kiosk.signed(1, 6)).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.json::<ApiError>().code, ErrorCode::Unavailable);
    assert_eq!(app.get("/healthz").await.status, 503);

    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            db.name
        ))
        .await
        .unwrap();
    let retry = acknowledged(&app.upload(&kiosk, kiosk.signed(1, 6)).await);
    assert_eq!((retry.stored, retry.duplicates), (3, 3));
    assert_eq!(retry.acknowledged, Some(Seq::new(6).unwrap()));
    assert_eq!(
        app.store.balance(&account("A1")).await.unwrap(),
        Some(Cents::new(-6 * 385))
    );
    assert_eq!(app.store.balance_mismatches().await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_fetches_its_snapshot_then_only_what_changed() {
    let db = SqliteDb::new();
    let store = db.open().await;
    populate(&store).await;
    let kiosk = Kiosk::registered(&store, "kiosk-jaures-1", 1).await;
    let app = TestApp::start(store).await;

    let reply = app.signed(&kiosk, "GET", SNAPSHOT, b"").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let full: Snapshot = reply.json();
    full.check_complete().unwrap();
    assert_eq!(full.site, kiosk.device.site);

    app.store
        .block_card(&CardUid::parse(&[2, 2, 2, 2]).unwrap())
        .await
        .unwrap();
    let path = format!("{SNAPSHOT}?since={}", full.version);
    let delta: Snapshot = app.signed(&kiosk, "GET", &path, b"").await.json();
    assert_eq!(delta.since, Some(full.version));
    assert!(delta.version > full.version);
    assert_eq!(
        delta.removed.cards,
        vec![CardUid::parse(&[2, 2, 2, 2]).unwrap()]
    );

    for bad in [
        format!("{SNAPSHOT}?since=-1"),
        format!("{SNAPSHOT}?since=x"),
    ] {
        let reply = app.signed(&kiosk, "GET", &bad, b"").await;
        assert_eq!(reply.status, 400, "{bad}");
    }
    // The query is signed: changing it breaks the signature.
    let headers = signed_headers(
        &kiosk,
        "GET",
        SNAPSHOT,
        b"",
        app.clock.now(),
        &fresh_nonce(),
    );
    let reply = app.request("GET", &path, &headers, b"").await;
    assert_eq!(reply.status, 401);
}
