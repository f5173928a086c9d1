//! The API as `schemathesis` (PyPI, installed into target/py by `deploy/dev/install-packages.sh
//! test`) attacks it: every operation of the served OpenAPI document, with all its checks, as
//! each role (with an API token) and as nobody, from a fixed seed with a bounded number of
//! examples per operation. No check may fail; afterwards the balances still hold and the service
//! answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use testkit as common;

use backoffice::store::Store;
use backoffice::users::Role;

use common::Ops as _;
use common::app::{TestApp, populated_app};

/// Examples per operation and phase: enough to reach every branch of the document's schemas,
/// few enough for `make test`.
const EXAMPLES: &str = "8";

/// The two rules the document cannot state as schemas, since JSON Schema cannot compare two
/// values: a service ends after it starts, an export's period ends no earlier than it starts.
/// Those two operations may therefore answer 400 to a request that fits its schema (their
/// descriptions say why); every other operation runs every check with schemathesis' own
/// statuses.
const CONFIG: &str = r#"
[[operations]]
include-method = "PUT"
include-path = "/api/v1/sites/{site}/services/{service}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]

[[operations]]
include-method = "GET"
include-path = "/api/v1/exports/{kind}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"#;

/// The seed, so that a failure replays.
const SEED: &str = "20261202";

/// Runs schemathesis against `app` with `header` on every request; its output when it fails.
fn schemathesis(app: &TestApp<impl Store>, header: Option<String>) -> Result<(), String> {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py/bin/schemathesis");
    assert!(
        program.exists(),
        "{} is missing: run deploy/dev/install-packages.sh test",
        program.display()
    );
    let report = tempfile::tempdir().unwrap();
    let config = report.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut command = Command::new(&program);
    command
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/openapi.json", app.url()))
        .args(["--checks", "all"])
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
        // Its cache and reports stay in the scratch folder, out of the source tree.
        .current_dir(report.path())
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
    let (app, _db) = populated_app().await;
    let mut callers = vec![("nobody", None)];
    for (name, role, site) in [
        ("admin", Role::Admin, None),
        ("finance", Role::Finance, None),
        ("provider", Role::Payments, None),
        ("staff-jaures", Role::Staff, Some("jaures")),
    ] {
        let token = app.token(name, role, site, 30).await;
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
