//! The `backoffice` command: serve the HTTP API, enrol and revoke kiosks, add users.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use backoffice::store::{DatabaseUrl, Device, PostgresStore, SqliteStore, Store};
use backoffice::users::{Role, User};
use clap::{Parser, Subcommand};
use proto::{DeviceId, PublicKey, SiteId};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(name = "backoffice", version, about = "The canteen back-office")]
struct Cli {
    /// Where the data lives: sqlite://PATH or postgres://USER@HOST/DATABASE.
    #[arg(long, global = true, default_value = "sqlite://backoffice.db")]
    db: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until interrupted (SIGINT or SIGTERM), then finish requests in flight.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Enrol and revoke kiosks.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Import accounts, pupils, tariff brackets and cards from a CSV file (see the columns in
    /// the library's `import` module); nothing is written unless every row is valid.
    Import { file: PathBuf },
    /// Manage back-office users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from the first line of standard input.
    Add {
        #[arg(long)]
        name: String,
        /// staff (of one site), finance, admin, or payments (an online payment provider).
        #[arg(long)]
        role: String,
        /// The site of a staff user.
        #[arg(long)]
        site: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Register a kiosk's public key (the PEM that `kiosk init` prints).
    Add {
        #[arg(long)]
        site: String,
        /// The kiosk's device id, as it signs its records.
        #[arg(long)]
        name: String,
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Refuse a kiosk from now on; its stored records stay.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

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
    match DatabaseUrl::parse(&cli.db).map_err(anyhow::Error::msg)? {
        DatabaseUrl::Sqlite(path) => {
            let store = SqliteStore::open(&path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            run(store, cli.command).await
        }
        DatabaseUrl::Postgres(url) => {
            let store = PostgresStore::open(&url)
                .await
                .context("connecting to PostgreSQL")?;
            run(store, cli.command).await
        }
    }
}

async fn run<S: Store>(store: S, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
        } => {
            let tls = match (tls_cert, tls_key) {
                (Some(certificate), Some(key)) => {
                    Some(backoffice::http::tls::server_config(&certificate, &key)?)
                }
                _ => None,
            };
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            tracing::info!(address = %listener.local_addr()?, scheme, "serving");
            backoffice::http::serve(store, listener, tls, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Device(DeviceCommand::Add {
            site,
            name,
            public_key,
        }) => {
            let pem = std::fs::read_to_string(&public_key)
                .with_context(|| format!("reading {}", public_key.display()))?;
            let key = PublicKey::from_pem(&pem)
                .with_context(|| format!("reading {}", public_key.display()))?;
            let device = Device {
                id: DeviceId::parse(&name).context("--name")?,
                site: SiteId::parse(&site).context("--site")?,
                key,
                revoked_at: None,
            };
            store.add_device(device).await?;
            println!(
                "device {name} added to site {site}, key {}",
                key.fingerprint()
            );
        }
        Command::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rows = backoffice::import::parse(&text)
                .map_err(backoffice::import::ImportError::Invalid)?;
            let total = rows.len();
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            backoffice::import::apply(&store, &rows, |done| {
                if terminal {
                    eprint!("\rimporting: {done}/{total} rows");
                }
            })
            .await?;
            if terminal {
                eprintln!();
            }
            println!("imported {total} rows from {}", file.display());
        }
        Command::User(UserCommand::Add { name, role, site }) => {
            let role = Role::parse(&role).with_context(|| {
                format!("--role {role}: expected staff, finance, admin or payments")
            })?;
            let site = site
                .map(|site| SiteId::parse(&site).context("--site"))
                .transpose()?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let user = User::new(&name, role, site, password)?;
            store.add_user(&user).await?;
            println!("user {name} added with role {}", role.as_str());
        }
        Command::Device(DeviceCommand::Revoke { name }) => {
            let device = DeviceId::parse(&name).context("--name")?;
            store.revoke_device(&device, backoffice::now()).await?;
            println!("device {name} revoked");
        }
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM (how systemd stops a service).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down");
}
