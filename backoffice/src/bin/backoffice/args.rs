//! The command line: every subcommand and its arguments, read by clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use backoffice::reconcile::DEFAULT_TIME_ZONE;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "backoffice", version, about = "The canteen back-office")]
pub struct Cli {
    /// Where the data lives: sqlite://PATH or postgres://USER@HOST/DATABASE.
    #[arg(
        long,
        global = true,
        env = "BACKOFFICE_DB",
        default_value = "sqlite://backoffice.db"
    )]
    pub db: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API until interrupted (SIGINT or SIGTERM), then finish requests in flight.
    Serve(ServeArgs),
    /// Reconcile a service day (all sites, or one with --site) and store the report; prints a
    /// summary and every finding. Exits non-zero when a finding is a defect.
    Reconcile(ReconcileArgs),
    /// Export days --from to --to (default --from): meals, top-ups or summary as CSV, journal
    /// in the FEC layout, or records (signed, JSON Lines, with the kiosks' public keys).
    Export(ExportArgs),
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
    /// Make, list and revoke the API tokens of machine clients (the payment provider, scripts).
    #[command(subcommand)]
    Token(TokenCommand),
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
    TopUp(TopUpArgs),
    /// Correct a balance: a positive amount credits, a negative one debits; a reason is required.
    Adjust(AdjustArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, env = "BACKOFFICE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "BACKOFFICE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "BACKOFFICE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The IANA time zone service days are reconciled in.
    #[arg(long, env = "BACKOFFICE_TIME_ZONE", default_value = DEFAULT_TIME_ZONE)]
    pub time_zone: String,
    /// When to reconcile the previous day every night, HH:MM in --time-zone; `off` to
    /// reconcile only on demand.
    #[arg(long, env = "BACKOFFICE_RECONCILE_AT", default_value = "02:00")]
    pub reconcile_at: String,
    /// A file holding the bearer token every scraper of /metrics must send (Prometheus'
    /// `authorization: credentials_file`). Without it, /metrics answers only this machine.
    #[arg(long, env = "BACKOFFICE_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The service day, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    #[arg(long)]
    pub site: Option<String>,
    #[arg(long, default_value = DEFAULT_TIME_ZONE)]
    pub time_zone: String,
    /// Print the whole report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// meals, top-ups, summary, journal or records.
    pub kind: String,
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long)]
    pub site: Option<String>,
    #[arg(long, default_value = DEFAULT_TIME_ZONE)]
    pub time_zone: String,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TopUpArgs {
    #[arg(long)]
    pub account: String,
    /// In cents, 1 to 500000.
    #[arg(long, allow_negative_numbers = true)]
    pub amount: i64,
    /// cash or cheque.
    #[arg(long)]
    pub method: String,
    /// A cheque number or receipt reference.
    #[arg(long)]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct AdjustArgs {
    #[arg(long)]
    pub account: String,
    /// In cents, -500000 to 500000, not 0.
    #[arg(long, allow_negative_numbers = true)]
    pub amount: i64,
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Open the account, or change the overdraft floor of an existing one.
    Set {
        account: String,
        /// How far below zero the balance may go, in cents: 0 or negative.
        #[arg(long, allow_negative_numbers = true)]
        overdraft_floor: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum PupilCommand {
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
pub struct Holder {
    #[arg(long)]
    pub pupil: Option<String>,
    #[arg(long)]
    pub staff: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CardCommand {
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
pub enum TariffCommand {
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
pub enum ServiceCommand {
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
pub enum StaffCommand {
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
pub enum UserCommand {
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
    /// Set a user's password, read from the first line of standard input; their sessions end.
    Password {
        #[arg(long)]
        name: String,
    },
    /// Disable a user: their sessions end and they sign in no more.
    Disable {
        #[arg(long)]
        name: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it, once: give it to the client, it is not kept.
    Create {
        /// What the token is for, e.g. the provider's name; its actions are logged under it.
        #[arg(long)]
        name: String,
        /// staff (of one site), finance, admin, or payments (an online payment provider).
        #[arg(long)]
        role: String,
        /// The site of a staff token.
        #[arg(long)]
        site: Option<String>,
        /// Days until it expires (at most 366).
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Every token with its role, expiry and whether it is revoked.
    List,
    /// Refuse a token from now on.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
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
