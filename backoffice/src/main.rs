//! The `backoffice` command: serve the HTTP API, enrol and revoke kiosks, add users, and make
//! the same changes to accounts, money, pupils, cards, tariffs, services and staff as the HTTP
//! API, through the same rules (`backoffice::manage`) and the same `Store` methods.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use backoffice::clock::{SharedClock, SystemClock};
use backoffice::export::{self, ExportKind, Period};
use backoffice::http::ServeOptions;
use backoffice::manage;
use backoffice::reconcile::{self, Settings};
use backoffice::store::{DatabaseUrl, Device, Operation, PostgresStore, SqliteStore, Store};
use backoffice::users::{Role, User};
use clap::{Args, Parser, Subcommand};
use proto::record::TopUpMethod;
use proto::snapshot::{Card, CardHolder, LocalTime, Pupil, Service, Tariff, Weekday};
use proto::{
    AccountId, BracketId, CardUid, Cents, DeviceId, MealType, ParseError, PublicKey, PupilId,
    ServiceDate, ServiceId, SiteId, StaffId, Text,
};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(name = "backoffice", version, about = "The canteen back-office")]
struct Cli {
    /// Where the data lives: sqlite://PATH or postgres://USER@HOST/DATABASE.
    #[arg(
        long,
        global = true,
        env = "BACKOFFICE_DB",
        default_value = "sqlite://backoffice.db"
    )]
    db: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until interrupted (SIGINT or SIGTERM), then finish requests in flight.
    Serve {
        #[arg(long, env = "BACKOFFICE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
        #[arg(long, env = "BACKOFFICE_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "BACKOFFICE_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// The IANA time zone service days are reconciled in.
        #[arg(long, env = "BACKOFFICE_TIME_ZONE", default_value = backoffice::reconcile::DEFAULT_TIME_ZONE)]
        time_zone: String,
        /// When to reconcile the previous day every night, HH:MM in --time-zone; `off` to
        /// reconcile only on demand.
        #[arg(long, env = "BACKOFFICE_RECONCILE_AT", default_value = "02:00")]
        reconcile_at: String,
    },
    /// Reconcile a service day (all sites, or one with --site) and store the report; prints a
    /// summary and every finding. Exits non-zero when a finding is a defect.
    Reconcile {
        /// The service day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        #[arg(long)]
        site: Option<String>,
        #[arg(long, default_value = backoffice::reconcile::DEFAULT_TIME_ZONE)]
        time_zone: String,
        /// Print the whole report as JSON instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Export days --from to --to (default --from): meals, top-ups or summary as CSV, journal
    /// in the FEC layout, or records (signed, JSON Lines, with the kiosks' public keys).
    Export {
        /// meals, top-ups, summary, journal or records.
        kind: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        site: Option<String>,
        #[arg(long, default_value = backoffice::reconcile::DEFAULT_TIME_ZONE)]
        time_zone: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a records export's signatures and chains; lists every violation and exits
    /// non-zero if there is any. Needs no database.
    Verify { file: PathBuf },
    /// Enrol and revoke kiosks.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Import accounts, pupils, tariff brackets and cards from a CSV file (see the columns in
    /// the library's `import` module); nothing is written unless every row is valid.
    Import { file: PathBuf },
    /// Ingest a file written by `kiosk export` and brought by hand (a site offline for days),
    /// exactly as the kiosk's own uploads would be; its later uploads count as duplicates.
    Transfer { file: PathBuf },
    /// Manage back-office users.
    #[command(subcommand)]
    User(UserCommand),
    /// Open accounts and change their overdraft floor.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Enrol or edit pupils.
    #[command(subcommand)]
    Pupil(PupilCommand),
    /// Bind, block and replace cards.
    #[command(subcommand)]
    Card(CardCommand),
    /// Set meal prices.
    #[command(subcommand)]
    Tariff(TariffCommand),
    /// Set meal windows.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Enrol or edit staff who sign in on kiosks.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Record money paid in at the back-office counter.
    TopUp {
        #[arg(long)]
        account: String,
        /// In cents, 1 to 500000.
        #[arg(long, allow_negative_numbers = true)]
        amount: i64,
        /// cash or cheque.
        #[arg(long)]
        method: String,
        /// A cheque number or receipt reference.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Correct a balance: a positive amount credits, a negative one debits; a reason is required.
    Adjust {
        #[arg(long)]
        account: String,
        /// In cents, -500000 to 500000, not 0.
        #[arg(long, allow_negative_numbers = true)]
        amount: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Open the account, or change the overdraft floor of an existing one.
    Set {
        account: String,
        /// How far below zero the balance may go, in cents: 0 or negative.
        #[arg(long, allow_negative_numbers = true)]
        overdraft_floor: i64,
    },
}

#[derive(Debug, Subcommand)]
enum PupilCommand {
    /// Enrol a pupil, or edit one; the account must exist and a pupil stays at their site.
    Set {
        #[arg(long)]
        site: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        account: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        /// The tariff bracket.
        #[arg(long)]
        bracket: String,
        /// A dietary flag such as no_pork; repeat for several.
        #[arg(long)]
        dietary: Vec<String>,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct Holder {
    #[arg(long)]
    pupil: Option<String>,
    #[arg(long)]
    staff: Option<String>,
}

#[derive(Debug, Subcommand)]
enum CardCommand {
    /// Bind a new card to a pupil or a staff member.
    Assign {
        /// The card's UID in lowercase hexadecimal.
        #[arg(long)]
        uid: String,
        #[command(flatten)]
        holder: Holder,
    },
    /// Put a lost card on every kiosk's hotlist.
    Block {
        #[arg(long)]
        uid: String,
    },
    /// Block a card and bind a new one to its holder; the balance stays with the account.
    Replace {
        #[arg(long)]
        uid: String,
        #[arg(long)]
        new_uid: String,
    },
}

#[derive(Debug, Subcommand)]
enum TariffCommand {
    /// Set one bracket's price of one meal type at a site.
    Set {
        #[arg(long)]
        site: String,
        #[arg(long)]
        bracket: String,
        #[arg(long)]
        meal_type: String,
        /// In cents.
        #[arg(long, allow_negative_numbers = true)]
        price: i64,
    },
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Create or edit a meal window of a site.
    Set {
        #[arg(long)]
        site: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        meal_type: String,
        /// Comma-separated: monday,tuesday,...
        #[arg(long, value_delimiter = ',')]
        weekdays: Vec<String>,
        /// HH:MM, the site's local time.
        #[arg(long)]
        start: String,
        /// HH:MM, after --start.
        #[arg(long)]
        end: String,
    },
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Create or edit a staff member; the PIN (4 to 8 digits) is read from the first line of
    /// standard input and only its hash is kept.
    Set {
        #[arg(long)]
        site: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
    },
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
    if let Command::Verify { file } = &cli.command {
        return verify(file);
    }
    match DatabaseUrl::parse(&cli.db).map_err(anyhow::Error::msg)? {
        DatabaseUrl::Sqlite(path) => {
            let store = SqliteStore::open(&path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            run(store, cli.command, SystemClock::shared()).await
        }
        DatabaseUrl::Postgres(url) => {
            let store = PostgresStore::open(&url)
                .await
                .context("connecting to PostgreSQL")?;
            run(store, cli.command, SystemClock::shared()).await
        }
    }
}

async fn run<S: Store>(store: S, command: Command, clock: SharedClock) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            time_zone,
            reconcile_at,
        } => {
            let finance = Settings::new(&time_zone).context("--time-zone")?;
            let nightly = match reconcile_at.as_str() {
                "off" => None,
                time => Some(
                    time.parse::<jiff::civil::Time>()
                        .with_context(|| format!("--reconcile-at {time}: expected HH:MM or off"))?,
                ),
            };
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
            let address = listener.local_addr()?;
            tracing::info!(%address, scheme, "serving");
            if let Some(at) = nightly {
                tokio::spawn(nightly_reconciliation(
                    store.clone(),
                    finance.clone(),
                    at,
                    Arc::clone(&clock),
                ));
            }
            // Database open and migrated, listener bound: requests are accepted from here on.
            backoffice::systemd::notify_ready(&format!("serving {scheme}://{address}"))
                .context("notifying systemd")?;
            let options = ServeOptions {
                tls,
                finance,
                clock,
            };
            backoffice::http::serve(store, listener, options, shutdown_signal()).await?;
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
            store.add_device(device, clock.now()).await?;
            println!(
                "device {name} added to site {site}, key {}",
                key.fingerprint()
            );
        }
        Command::Transfer { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let transfer = backoffice::transfer::parse(&text)
                .with_context(|| format!("{}", file.display()))?;
            let device = transfer.device.clone();
            let outcome = backoffice::transfer::ingest(&store, transfer, clock.now()).await?;
            println!(
                "{device}: {} stored, {} duplicates, {} quarantined; held through {}",
                outcome.stored,
                outcome.duplicates,
                outcome.quarantined,
                outcome
                    .acknowledged
                    .map_or_else(|| "none".to_owned(), |seq| seq.to_string())
            );
        }
        Command::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rows = backoffice::import::parse(&text)
                .map_err(backoffice::import::ImportError::Invalid)?;
            let total = rows.len();
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            backoffice::import::apply(&store, &rows, clock.now(), |done| {
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
            store.add_user(&user, clock.now()).await?;
            println!("user {name} added with role {}", role.as_str());
        }
        Command::Device(DeviceCommand::Revoke { name }) => {
            let device = DeviceId::parse(&name).context("--name")?;
            store.revoke_device(&device, clock.now()).await?;
            println!("device {name} revoked");
        }
        Command::Account(AccountCommand::Set {
            account,
            overdraft_floor,
        }) => {
            let id = arg("ACCOUNT", &account, AccountId::parse)?;
            let floor = Cents::new(overdraft_floor);
            manage::check_overdraft_floor(floor).context("--overdraft-floor")?;
            let opened = manage::save_account(&store, &id, floor, clock.now()).await?;
            let done = if opened { "opened" } else { "updated" };
            println!("account {account} {done}, overdraft floor {overdraft_floor} cents");
        }
        Command::Pupil(PupilCommand::Set {
            site,
            id,
            account,
            first_name,
            last_name,
            bracket,
            dietary,
        }) => {
            let site = arg("--site", &site, SiteId::parse)?;
            let pupil = Pupil {
                id: arg("--id", &id, PupilId::parse)?,
                account: arg("--account", &account, AccountId::parse)?,
                first_name: arg("--first-name", &first_name, Text::parse)?,
                last_name: arg("--last-name", &last_name, Text::parse)?,
                bracket: arg("--bracket", &bracket, BracketId::parse)?,
                dietary: dietary
                    .iter()
                    .map(|flag| arg("--dietary", flag, Text::parse))
                    .collect::<anyhow::Result<_>>()?,
            };
            let stored_site = store
                .holder_site(&CardHolder::Pupil(pupil.id.clone()))
                .await?;
            manage::check_pupil(&site, &pupil, stored_site.as_ref())?;
            let version = store.save_pupil(&site, &pupil).await?;
            println!(
                "pupil {id} saved at site {site} (snapshot version {})",
                version.0
            );
        }
        Command::Card(CardCommand::Assign { uid, holder }) => {
            let uid = arg("--uid", &uid, CardUid::from_hex)?;
            let holder = match (holder.pupil, holder.staff) {
                (Some(pupil), _) => CardHolder::Pupil(arg("--pupil", &pupil, PupilId::parse)?),
                (None, Some(staff)) => CardHolder::Staff(arg("--staff", &staff, StaffId::parse)?),
                (None, None) => anyhow::bail!("--pupil or --staff is required"),
            };
            if store.holder_site(&holder).await?.is_none() {
                anyhow::bail!("the card's holder does not exist");
            }
            let version = store.assign_card(&Card { uid, holder }).await?;
            println!("card {uid} assigned (snapshot version {})", version.0);
        }
        Command::Card(CardCommand::Block { uid }) => {
            let uid = arg("--uid", &uid, CardUid::from_hex)?;
            existing_card(&store, &uid).await?;
            let version = store.block_card(&uid).await?;
            println!("card {uid} blocked (snapshot version {})", version.0);
        }
        Command::Card(CardCommand::Replace { uid, new_uid }) => {
            let uid = arg("--uid", &uid, CardUid::from_hex)?;
            let new_uid = arg("--new-uid", &new_uid, CardUid::from_hex)?;
            existing_card(&store, &uid).await?;
            let version = store.replace_card(&uid, &new_uid).await?;
            println!(
                "card {uid} blocked, card {new_uid} assigned to its holder (snapshot version {})",
                version.0
            );
        }
        Command::Tariff(TariffCommand::Set {
            site,
            bracket,
            meal_type,
            price,
        }) => {
            let site = arg("--site", &site, SiteId::parse)?;
            let tariff = Tariff {
                bracket: arg("--bracket", &bracket, BracketId::parse)?,
                meal_type: arg("--meal-type", &meal_type, MealType::parse)?,
                price: Cents::new(price),
            };
            manage::check_tariff(&tariff).context("--price")?;
            let version = store.save_tariff(&site, &tariff).await?;
            println!(
                "tariff {bracket} {meal_type} at site {site}: {price} cents (snapshot version {})",
                version.0
            );
        }
        Command::Service(ServiceCommand::Set {
            site,
            id,
            name,
            meal_type,
            weekdays,
            start,
            end,
        }) => {
            let site = arg("--site", &site, SiteId::parse)?;
            let service = Service {
                id: arg("--id", &id, ServiceId::parse)?,
                name: arg("--name", &name, Text::parse)?,
                meal_type: arg("--meal-type", &meal_type, MealType::parse)?,
                weekdays: weekdays
                    .iter()
                    .map(|day| {
                        from_json::<Weekday>(day)
                            .with_context(|| format!("--weekdays {day}: expected monday..sunday"))
                    })
                    .collect::<anyhow::Result<_>>()?,
                start: LocalTime::parse(&start)
                    .with_context(|| format!("--start {start}: expected HH:MM"))?,
                end: LocalTime::parse(&end)
                    .with_context(|| format!("--end {end}: expected HH:MM"))?,
            };
            manage::check_service(&service)?;
            let version = store.save_service(&site, &service).await?;
            println!(
                "service {id} saved at site {site} (snapshot version {})",
                version.0
            );
        }
        Command::Staff(StaffCommand::Set { site, id, name }) => {
            let site = arg("--site", &site, SiteId::parse)?;
            let staff_id = arg("--id", &id, StaffId::parse)?;
            let name = arg("--name", &name, Text::parse)?;
            let mut pin = String::new();
            std::io::stdin()
                .read_line(&mut pin)
                .context("reading the PIN from standard input")?;
            let pin = pin.trim_end_matches(['\r', '\n']).to_owned();
            let staff =
                tokio::task::spawn_blocking(move || manage::staff_credential(staff_id, name, &pin))
                    .await??;
            let version = store.save_staff(&site, &staff).await?;
            println!(
                "staff {id} saved at site {site} (snapshot version {})",
                version.0
            );
        }
        Command::TopUp {
            account,
            amount,
            method,
            reference,
        } => {
            let method = from_json::<TopUpMethod>(&method)
                .with_context(|| format!("--method {method}: expected cash or cheque"))?;
            let operation = manage::top_up(
                arg("--account", &account, AccountId::parse)?,
                Cents::new(amount),
                method,
                reference
                    .map(|reference| arg("--reference", &reference, Text::parse))
                    .transpose()?,
                operator(),
                clock.now(),
            )?;
            apply(&store, &operation).await?;
        }
        Command::Adjust {
            account,
            amount,
            reason,
        } => {
            let operation = manage::adjustment(
                arg("--account", &account, AccountId::parse)?,
                Cents::new(amount),
                arg("--reason", &reason, Text::parse)?,
                operator(),
                clock.now(),
            )?;
            apply(&store, &operation).await?;
        }
        Command::Reconcile {
            date,
            site,
            time_zone,
            json,
        } => {
            let settings = Settings::new(&time_zone).context("--time-zone")?;
            let date = arg("--date", &date, ServiceDate::parse)?;
            let site = site
                .map(|site| arg("--site", &site, SiteId::parse))
                .transpose()?;
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let report = reconcile::run_and_save(
                &store,
                date,
                site.as_ref(),
                &settings,
                &operator(),
                clock.now(),
                |done, total| {
                    if terminal {
                        eprint!("\r{}", progress_bar(done, total));
                    }
                },
            )
            .await?;
            if terminal {
                eprintln!();
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", summary(&report));
            }
            if !report.is_clean() {
                std::process::exit(2);
            }
        }
        Command::Export {
            kind,
            from,
            to,
            site,
            time_zone,
            out,
        } => {
            let settings = Settings::new(&time_zone).context("--time-zone")?;
            let kind = ExportKind::parse(&kind)?;
            let from = arg("--from", &from, ServiceDate::parse)?;
            let to = to
                .map(|to| arg("--to", &to, ServiceDate::parse))
                .transpose()?
                .unwrap_or(from);
            let period = Period::new(from, to)?;
            let site = site
                .map(|site| arg("--site", &site, SiteId::parse))
                .transpose()?;
            let lines = match &out {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    export::write(&store, kind, period, site.as_ref(), &settings, &mut writer)
                        .await?
                }
                None => {
                    let mut writer = std::io::BufWriter::new(std::io::stdout());
                    export::write(&store, kind, period, site.as_ref(), &settings, &mut writer)
                        .await?
                }
            };
            if let Some(path) = out {
                eprintln!("{lines} lines written to {}", path.display());
            }
        }
        Command::Verify { file } => verify(&file)?,
    }
    Ok(())
}

/// `backoffice verify FILE`: every violation on standard output, non-zero exit if any.
fn verify(file: &std::path::Path) -> anyhow::Result<()> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let verification = export::verify(reader)?;
    for violation in &verification.violations {
        let device = violation
            .device
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let seq = violation
            .seq
            .map_or_else(|| "-".to_owned(), |seq| seq.to_string());
        println!("{device}\t{seq}\t{violation}");
    }
    println!(
        "{}: {} kiosk(s), {} record(s), {} violation(s)",
        file.display(),
        verification.devices,
        verification.records,
        verification.violations.len()
    );
    if !verification.violations.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// `[#####.....] 12/500 kiosks`, for a terminal.
fn progress_bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 40;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!(
        "reconciling [{}{}] {done}/{total} kiosks",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled)
    )
}

/// The report in a few lines, then every finding.
fn summary(report: &reconcile::Report) -> String {
    let mut text = format!(
        "reconciliation of {} ({}), {} records checked\n",
        report.date,
        report
            .site
            .as_ref()
            .map_or_else(|| "all sites".to_owned(), ToString::to_string),
        report.records_checked
    );
    for site in &report.sites {
        text.push_str(&format!(
            "site {}: {} kiosk(s), {} meals, revenue {} cents, cash expected {} counted {} \
             (difference {})\n",
            site.site.as_ref().map_or("-", SiteId::as_str),
            site.kiosks,
            site.meals,
            site.revenue.get(),
            site.cash_expected.get(),
            site.cash_counted.get(),
            site.cash_difference.get()
        ));
    }
    for line in &report.top_ups {
        text.push_str(&format!(
            "top-ups {:?} {:?}: {} for {} cents\n",
            line.source,
            line.method,
            line.count,
            line.total.get()
        ));
    }
    if let Some(balances) = &report.balances {
        text.push_str(&format!(
            "balances: opening {} + movements {} = closing {}: {}\n",
            balances.opening.get(),
            balances.movements.get(),
            balances.closing.get(),
            if balances.holds {
                "holds"
            } else {
                "DOES NOT HOLD"
            }
        ));
    }
    for finding in &report.findings {
        text.push_str(&format!(
            "{:?}\t{}\t{}\t{}\t-> {}\n",
            finding.kind,
            finding.device.as_ref().map_or("-", DeviceId::as_str),
            finding
                .seq
                .map_or_else(|| "-".to_owned(), |seq| seq.to_string()),
            finding.detail,
            finding.action
        ));
    }
    text.push_str(if report.is_clean() {
        "clean: no defect found\n"
    } else {
        "DEFECTS FOUND: do not sign off before they are resolved\n"
    });
    text
}

/// Reconciles the previous day every night at `at` (in the time zone of `settings`), for all
/// sites. A day already signed off is left alone; a failure is logged and tried again the next
/// night (or on demand).
async fn nightly_reconciliation<S: Store>(
    store: S,
    settings: Settings,
    at: jiff::civil::Time,
    clock: SharedClock,
) {
    loop {
        let Ok(now) = jiff::Timestamp::from_millisecond(clock.now().unix_ms()) else {
            tracing::error!("the clock is out of range: no nightly reconciliation");
            return;
        };
        let now = now.to_zoned(settings.time_zone.clone());
        let next = match now.with().time(at).build().and_then(|today| {
            if today > now {
                Ok(today)
            } else {
                today.tomorrow()
            }
        }) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "cannot schedule the nightly reconciliation");
                return;
            }
        };
        let wait = next.timestamp().duration_since(now.timestamp());
        let wait = std::time::Duration::try_from(wait).unwrap_or_default();
        tokio::time::sleep(wait).await;
        let Ok(yesterday) = next.date().yesterday() else {
            continue;
        };
        let Ok(date) = ServiceDate::parse(&yesterday.to_string()) else {
            continue;
        };
        let run = reconcile::run_and_save(
            &store,
            date,
            None,
            &settings,
            "nightly",
            clock.now(),
            |_, _| {},
        );
        match run.await {
            Ok(report) => tracing::info!(
                %date,
                findings = report.findings.len(),
                clean = report.is_clean(),
                "nightly reconciliation stored"
            ),
            Err(error) => tracing::error!(%date, %error, "nightly reconciliation failed"),
        }
    }
}

/// A command-line value through its `proto` parser, the error naming the flag.
fn arg<T>(
    flag: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> anyhow::Result<T> {
    parse(text).with_context(|| format!("{flag} {text:?}"))
}

/// A value of a `proto` enum from its name, as the HTTP API's JSON spells it.
fn from_json<T: serde::de::DeserializeOwned>(name: &str) -> anyhow::Result<T> {
    Ok(serde_json::from_value(serde_json::Value::String(
        name.to_owned(),
    ))?)
}

/// Who moved money from the command line, as the operation row records it.
fn operator() -> String {
    let login = std::env::var("USER").unwrap_or_default();
    if login.is_empty() {
        "cli".to_owned()
    } else {
        format!("cli:{login}")
    }
}

async fn existing_card<S: Store>(store: &S, uid: &CardUid) -> anyhow::Result<()> {
    if store.card(uid).await?.is_none() {
        anyhow::bail!("card {uid} does not exist");
    }
    Ok(())
}

async fn apply<S: Store>(store: &S, operation: &Operation) -> anyhow::Result<()> {
    let outcome = store.apply_operation(operation).await?;
    println!(
        "account {}: {:+} cents, balance {} cents (snapshot version {})",
        operation.account,
        operation.amount.get(),
        outcome.balance.get(),
        outcome.version.0
    );
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
