//! Finance's commands run as an operator would: `reconcile`, `export` and `verify`, and their
//! exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::SqliteDb;
use common::cli::run;
use common::day::{DATE, Till, cash, date, lunch, meal_for};
use common::fixtures::populate;

/// Runs the command and checks its exit code and that its output holds `expected`.
fn check(db: &SqliteDb, args: &[&str], code: i32, expected: &str) {
    let ran = run(env!("CARGO_BIN_EXE_backoffice"), db, args, None);
    let text = ran.text();
    assert_eq!(ran.status.code(), Some(code), "{args:?}: {text}");
    assert!(text.contains(expected), "{args:?}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_reconciles_exports_and_verifies_from_the_command_line() {
    let db = SqliteDb::new();
    let store = db.open().await;
    populate(&store).await;
    let mut till = Till::registered(&store, "kiosk-1", 1).await;
    till.write(lunch(0), cash("A1", 2000));
    till.write(lunch(1), meal_for("P1", "A1", 385, 1615));
    till.close(lunch(60), date(), 2000);
    till.upload(&store, lunch(90)).await;
    drop(store);

    check(
        &db,
        &["reconcile", "--date", DATE],
        0,
        "clean: no defect found",
    );
    check(&db, &["reconcile", "--date", "2026-11-31"], 1, "--date");
    let file = db.dir.path().join("records.jsonl");
    let path = file.to_str().unwrap();
    check(
        &db,
        &["export", "records", "--from", DATE, "--out", path],
        0,
        "lines written",
    );
    check(
        &db,
        &["verify", path],
        0,
        "1 kiosk(s), 3 record(s), 0 violation(s)",
    );
    check(
        &db,
        &["export", "journal", "--from", DATE],
        0,
        "JournalCode\tJournalLib",
    );
    check(
        &db,
        &["export", "ledger", "--from", DATE],
        1,
        "unknown export",
    );

    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("\\\"amount\\\":2000", "\\\"amount\\\":9000"),
    )
    .unwrap();
    check(&db, &["verify", path], 1, "bad_signature");

    // A meal deleted from the database behind the back-office's back.
    let connection = rusqlite::Connection::open(db.path()).unwrap();
    connection
        .execute_batch(
            "DELETE FROM movements WHERE device = 'kiosk-1' AND seq = 2;
             DELETE FROM records WHERE device = 'kiosk-1' AND seq = 2;",
        )
        .unwrap();
    drop(connection);
    check(&db, &["reconcile", "--date", DATE], 2, "DEFECTS FOUND");
}
