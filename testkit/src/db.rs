//! Fresh databases of each backend: a SQLite file in a directory of its own, a uniquely named
//! PostgreSQL database dropped with it.

use backoffice::store::{PostgresStore, SqliteStore};

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
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("backoffice.db")
    }

    pub async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path()).await.unwrap()
    }

    /// Every row the service keeps of the city, as text: what a refused request must not change.
    /// Sessions and counted sign-in failures are left out (a refused sign-in counts by design).
    pub fn city_rows(&self) -> String {
        let connection = rusqlite::Connection::open_with_flags(
            self.path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut tables = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let tables: Vec<String> = tables
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|name: &String| !["web_sessions", "sign_in_failures"].contains(&name.as_str()))
            .collect();
        let mut rows = String::new();
        for table in tables {
            let mut statement = connection
                .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
                .or_else(|_| connection.prepare(&format!("SELECT * FROM \"{table}\"")))
                .unwrap();
            let columns = statement.column_count();
            let mut query = statement.query([]).unwrap();
            while let Some(row) = query.next().unwrap() {
                let values: Vec<String> = (0..columns)
                    .map(|column| format!("{:?}", row.get_ref(column).unwrap()))
                    .collect();
                rows.push_str(&format!("{table}: {}\n", values.join(", ")));
            }
        }
        rows
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

impl PostgresDb {
    pub async fn new() -> PostgresDb {
        let name = format!(
            "canteen_test_{}_{}",
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
            .unwrap();
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
        PostgresStore::open(&self.url()).await.unwrap()
    }
}

static NEXT_DATABASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime's async context: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
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
