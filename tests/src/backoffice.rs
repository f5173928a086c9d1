//! A real back-office serving on a free loopback port in front of a fresh SQLite or PostgreSQL
//! database, and a site to serve meals at.

use std::net::SocketAddr;
use std::sync::Arc;

use backoffice::clock::ManualClock;
use backoffice::http::ServeOptions;
use backoffice::store::{Operation, OperationKind, PostgresStore, SqliteStore, Store};
use proto::record::TopUpMethod;
use proto::snapshot::{
    Card, CardHolder, KioskSettings, Language, LocalTime, Pupil, Service, Tariff, Weekday,
};
use proto::{
    AccountId, BracketId, CardUid, Cents, MealType, PupilId, ServiceId, SiteId, Text, Timestamp,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The site every kiosk of these tests belongs to.
pub const SITE: &str = "jaures";

/// The price of lunch for every pupil.
pub const LUNCH_CENTS: i64 = 385;

/// What every account holds before the first meal: 1,000.00 €.
pub const OPENING_BALANCE_CENTS: i64 = 100_000;

/// The PostgreSQL server the tests use; each test creates and drops its own database there.
pub fn postgres_url() -> String {
    std::env::var("CANTEEN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh SQLite database in its own directory, removed with it.
#[derive(Debug)]
pub struct SqliteDb {
    pub dir: tempfile::TempDir,
}

impl SqliteDb {
    pub fn new() -> SqliteDb {
        SqliteDb {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("backoffice.db")
    }

    pub async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path()).await.expect("SQLite opens")
    }
}

impl Default for SqliteDb {
    fn default() -> SqliteDb {
        SqliteDb::new()
    }
}

/// A fresh, uniquely named PostgreSQL database, dropped when this is.
#[derive(Debug)]
pub struct PostgresDb {
    pub name: String,
}

static NEXT_DATABASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl PostgresDb {
    pub async fn new() -> PostgresDb {
        let name = format!(
            "canteen_e2e_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "PostgreSQL is required at {} (CANTEEN_TEST_POSTGRES_URL; \
                     deploy/dev/start-postgres.sh starts one): {error}",
                    postgres_url()
                )
            });
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("the test database is created");
        PostgresDb { name }
    }

    pub fn url(&self) -> String {
        let server = postgres_url();
        let base = server
            .rsplit_once('/')
            .map_or(server.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    pub async fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.url())
            .await
            .expect("PostgreSQL opens")
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime's async context: a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// A back-office serving HTTP (or HTTPS) on loopback. Stops when dropped.
#[derive(Debug)]
pub struct BackOffice<S> {
    pub address: SocketAddr,
    pub store: S,
    /// The service's clock, standing at [`now`] until a test moves it.
    pub clock: ManualClock,
    tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl<S: Store> BackOffice<S> {
    pub async fn start(store: S) -> BackOffice<S> {
        BackOffice::serve(store, None).await
    }

    pub async fn start_tls(store: S, tls: Arc<rustls::ServerConfig>) -> BackOffice<S> {
        BackOffice::serve(store, Some(tls)).await
    }

    async fn serve(store: S, tls: Option<Arc<rustls::ServerConfig>>) -> BackOffice<S> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let is_tls = tls.is_some();
        let clock = ManualClock::new(now());
        let options = ServeOptions {
            tls,
            clock: clock.shared(),
            ..ServeOptions::default()
        };
        let server = tokio::spawn(backoffice::http::serve(
            store.clone(),
            listener,
            options,
            async {
                let _ = stop.await;
            },
        ));
        BackOffice {
            address,
            store,
            clock,
            tls: is_tls,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// The base URL kiosks are configured with.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// Stops accepting and finishes the requests in flight.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl<S> Drop for BackOffice<S> {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub fn site() -> SiteId {
    SiteId::parse(SITE).expect("a site id")
}

pub fn account(index: usize) -> AccountId {
    AccountId::parse(&format!("A{index:04}")).expect("an account id")
}

pub fn pupil(index: usize) -> PupilId {
    PupilId::parse(&format!("P{index:04}")).expect("a pupil id")
}

/// Pupil `index`'s card.
pub fn card(index: usize) -> CardUid {
    let [high, low] = u16::try_from(index).expect("few pupils").to_be_bytes();
    CardUid::parse(&[0x04, high, low, 0x5a]).expect("a card UID")
}

/// Lunch every day of the week, all day long, so a test can serve at any hour: the kiosks'
/// engines run on a clock set by hand to a day's noon.
pub fn lunch() -> Service {
    Service {
        id: ServiceId::parse("lunch").expect("a service id"),
        name: Text::parse("Déjeuner").expect("a name"),
        meal_type: MealType::parse("lunch").expect("a meal type"),
        weekdays: vec![
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ],
        start: LocalTime::parse("00:00").expect("a time"),
        end: LocalTime::parse("23:59").expect("a time"),
    }
}

/// Site `jaures` with `pupils` pupils, each on an account of their own holding
/// [`OPENING_BALANCE_CENTS`], with a card; lunch at [`LUNCH_CENTS`].
pub async fn populate_site(store: &impl Store, pupils: usize) {
    let site = site();
    let at = now();
    store
        .save_tariff(
            &site,
            &Tariff {
                bracket: BracketId::parse("q1").expect("a bracket"),
                meal_type: MealType::parse("lunch").expect("a meal type"),
                price: Cents::new(LUNCH_CENTS),
            },
        )
        .await
        .expect("the tariff is saved");
    store
        .save_service(&site, &lunch())
        .await
        .expect("the service is saved");
    store
        .save_kiosk_settings(
            &site,
            &KioskSettings {
                result_display_ms: 2_000,
                sync_interval_ms: 30_000,
                staff_idle_signout_ms: 60_000,
                language: Language::Fr,
            },
        )
        .await
        .expect("the settings are saved");
    for index in 0..pupils {
        store
            .add_account(&account(index), Cents::new(-500), at)
            .await
            .expect("the account is opened");
        top_up(store, &account(index), OPENING_BALANCE_CENTS).await;
        store
            .save_pupil(
                &site,
                &Pupil {
                    id: pupil(index),
                    account: account(index),
                    first_name: Text::parse(&format!("Léa {index}")).expect("a name"),
                    last_name: Text::parse("Martin").expect("a name"),
                    bracket: BracketId::parse("q1").expect("a bracket"),
                    dietary: Vec::new(),
                },
            )
            .await
            .expect("the pupil is saved");
        store
            .assign_card(&Card {
                uid: card(index),
                holder: CardHolder::Pupil(pupil(index)),
            })
            .await
            .expect("the card is assigned");
    }
}

/// Money paid in at the back-office counter.
pub async fn top_up(store: &impl Store, account: &AccountId, cents: i64) {
    store
        .apply_operation(&Operation {
            kind: OperationKind::TopUp {
                method: TopUpMethod::Cash,
                reference: None,
            },
            account: account.clone(),
            amount: Cents::new(cents),
            user: "test".to_owned(),
            at: now(),
        })
        .await
        .expect("the top-up is applied");
}

/// Where the clocks of every back-office and of every kiosk's sync stand in these tests: an hour
/// after the kiosks' engines start. Fixed, so that no test depends on the day it runs.
pub const NOW_UNIX_MS: i64 = crate::kiosk::ENGINE_START_UNIX_MS + 3_600_000;

/// [`NOW_UNIX_MS`] as the back-office writes it.
pub fn now() -> Timestamp {
    Timestamp::from_unix_ms(NOW_UNIX_MS).expect("a timestamp")
}

/// When the tests' kiosks and users are registered: a month before [`now`].
pub fn registered_at() -> Timestamp {
    Timestamp::from_unix_ms(NOW_UNIX_MS - 30 * 24 * 3_600_000).expect("a timestamp")
}

/// An HTTP/1.1 answer: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Sends one plain HTTP/1.1 request (the connection closes after it) and reads the answer.
pub async fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("the back-office accepts");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .expect("an HTTP status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Reply { status, body }
}

/// A back-office user and the `authorization` header that signs them in.
pub async fn user(
    store: &impl Store,
    name: &str,
    role: backoffice::users::Role,
) -> (&'static str, String) {
    use base64::Engine as _;
    let password = "correct horse battery staple";
    let user = backoffice::users::User::new(name, role, None, password).expect("a valid user");
    store
        .add_user(&user, registered_at())
        .await
        .expect("the user is added");
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    ("authorization", format!("Basic {credentials}"))
}

/// A counter from the back-office's `/metrics`, such as
/// `canteen_records_total{outcome="duplicate"}`.
pub async fn metric(address: SocketAddr, name: &str) -> u64 {
    let reply = http(address, "GET", "/metrics", &[], b"").await;
    reply
        .body
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}
