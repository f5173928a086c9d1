//! The API as `schemathesis` (PyPI, installed into target/py by `deploy/dev/install-packages.sh
//! test`) attacks it: every operation of the served OpenAPI document, with all its checks, as
//! each role (with an API token) and as nobody, from a fixed seed with a bounded number of
//! examples per operation. No check may fail; afterwards the balances still hold and the service
//! answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use testkit as common;

use backoffice::manage::tokens;
use backoffice::store::Store;
use backoffice::users::Role;

use common::Ops as _;
use common::SqliteDb;
use common::app::TestApp;
use common::fixtures::populate;

/// Examples per operation and phase: enough to reach every branch of the document's schemas,
/// few enough for `make test`.
const EXAMPLES: &str = "8";

/// Checks left out: they ask the document's schemas to say every rule the service applies to a
/// body (an adjustment is not zero, a body's id is the path's, an integer is not written
/// `1.0`), which JSON Schema cannot say or the document does not say yet. Every other check
/// runs: no server error, statuses, content types, headers and bodies as documented,
/// authentication never ignored, resources after deletion.
const EXCLUDED_CHECKS: &str = "positive_data_acceptance,negative_data_rejection";

/// The seed, so that a failure replays.
const SEED: &str = "20261202";

async fn token(app: &TestApp<impl Store>, name: &str, role: Role, site: Option<&str>) -> String {
    let new = tokens::NewToken {
        name: name.to_owned(),
        role,
        site: site.map(|site| proto::SiteId::parse(site).unwrap()),
        days: 30,
    };
    let admin = common::ops::operator();
    tokens::create(&app.store, &admin, new, app.clock.now())
        .await
        .unwrap()
        .0
}

/// Runs schemathesis against `app` with `header` on every request; its output when it fails.
fn schemathesis(app: &TestApp<impl Store>, header: Option<String>) -> Result<(), String> {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py/bin/schemathesis");
    assert!(
        program.exists(),
        "{} is missing: run deploy/dev/install-packages.sh test",
        program.display()
    );
    let report = tempfile::tempdir().unwrap();
    let mut command = Command::new(&program);
    command
        .arg("run")
        .arg(format!("{}/api/openapi.json", app.url()))
        .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--seed", SEED, "--max-examples", EXAMPLES])
        // A transfer's body is JSON Lines, which schemathesis cannot write; the hostile suite and
        // the property tests send it files of every kind.
        .args(["--exclude-path", "/api/v1/transfers"])
        .args(["--workers", "1", "--request-timeout", "10", "--no-color"])
        .args([
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
        ])
        .arg("--report-dir")
        .arg(report.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("HOME", report.path());
    if let Some(header) = header {
        command.args(["--header", &header]);
    }
    let output = command.output().unwrap();
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_as_any_role_or_as_nobody() {
    let db = SqliteDb::new();
    let store = db.open().await;
    populate(&store).await;
    let app = TestApp::start(store).await;
    let mut callers = vec![("nobody", None)];
    for (name, role, site) in [
        ("admin", Role::Admin, None),
        ("finance", Role::Finance, None),
        ("provider", Role::Payments, None),
        ("staff-jaures", Role::Staff, Some("jaures")),
    ] {
        let token = token(&app, name, role, site).await;
        callers.push((name, Some(format!("Authorization: Bearer {token}"))));
    }
    let mut failures = Vec::new();
    for (name, header) in callers {
        let app = &app;
        let outcome = tokio::task::block_in_place(|| schemathesis(app, header));
        if let Err(output) = outcome {
            failures.push(format!("== as {name}\n{output}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(app.store.balance_mismatches().await.unwrap(), vec![]);
    assert_eq!(app.get("/healthz").await.status, 200);
}
