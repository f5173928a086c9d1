//! The `backoffice` command: serve the HTTP API and the pages, enrol and revoke kiosks, add
//! users, make the same changes to accounts, money, pupils, cards, tariffs, services and staff
//! as the API (through the same `backoffice::manage` functions, as the operator at the server),
//! reconcile, export and verify.
//!
//! - `args`: every subcommand and its arguments.
//! - `serve`: the service and its nightly reconciliation.
//! - `people`: kiosks, users, accounts, money, pupils, cards, tariffs, services, staff, imports
//!   and transfers.
//! - `finance`: reconciliation, exports, verification.

mod args;
mod finance;
mod people;
mod serve;

use anyhow::Context as _;
use backoffice::clock::{SharedClock, SystemClock};
use backoffice::manage::Actor;
use backoffice::store::{DatabaseUrl, PostgresStore, SqliteStore, Store};
use clap::Parser;

use args::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Plain text for journald and files; colours only for a person at a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Command::Verify { file } = &cli.command {
        return finance::verify(file);
    }
    let clock = SystemClock::shared();
    match DatabaseUrl::parse(&cli.db).map_err(anyhow::Error::msg)? {
        DatabaseUrl::Sqlite(path) => {
            let store = SqliteStore::open(&path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            run(store, cli.command, clock).await
        }
        DatabaseUrl::Postgres(url) => {
            let store = PostgresStore::open(&url)
                .await
                .context("connecting to PostgreSQL")?;
            run(store, cli.command, clock).await
        }
    }
}

async fn run<S: Store>(store: S, command: Command, clock: SharedClock) -> anyhow::Result<()> {
    let actor = Actor::operator(operator());
    let now = clock.now();
    match command {
        Command::Serve(command) => serve::serve(store, command, clock).await,
        Command::Reconcile(command) => finance::reconcile(&store, &actor, command, now).await,
        Command::Export(command) => finance::export(&store, &actor, command).await,
        Command::Verify { file } => finance::verify(&file),
        Command::Device(command) => people::device(&store, &actor, command, now).await,
        Command::Import { file } => people::import(&store, &actor, &file, now).await,
        Command::Transfer { file } => people::transfer(&store, &actor, &file, now).await,
        Command::User(command) => people::user(&store, &actor, command, now).await,
        Command::Token(command) => people::token(&store, &actor, command, now).await,
        Command::Account(command) => people::account(&store, &actor, command, now).await,
        Command::Pupil(command) => people::pupil(&store, &actor, command).await,
        Command::Card(command) => people::card(&store, &actor, command).await,
        Command::Tariff(command) => people::tariff(&store, &actor, command).await,
        Command::Service(command) => people::service(&store, &actor, command).await,
        Command::Staff(command) => people::staff(&store, &actor, command).await,
        Command::TopUp(command) => people::top_up(&store, &actor, command, now).await,
        Command::Adjust(command) => people::adjust(&store, &actor, command, now).await,
    }
}

/// Who acts from the command line, as operations and reconciliations record it: `cli:$USER`.
fn operator() -> String {
    let login = std::env::var("USER").unwrap_or_default();
    if login.is_empty() {
        "cli".to_owned()
    } else {
        format!("cli:{login}")
    }
}
