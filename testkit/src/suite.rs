//! The same test against a fresh database of each backend, SQLite and PostgreSQL: both must
//! behave the same in every case.

/// Runs each named test, an `async fn(store)`, against a fresh database of each backend, as
/// tests `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! store_suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = $crate::SqliteDb::new();
                    super::$test(db.open().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = $crate::PostgresDb::new().await;
                    super::$test(db.open().await).await;
                }
            )*
        }
    };
}

/// Runs each named test, an `async fn(Db, store)` that may tamper with the database behind the
/// store's back, against a fresh database of each backend, as tests `sqlite::NAME` and
/// `postgres::NAME`.
#[macro_export]
macro_rules! db_suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (db, store) = $crate::day::Db::sqlite().await;
                    super::$test(db, store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (db, store) = $crate::day::Db::postgres().await;
                    super::$test(db, store).await;
                }
            )*
        }
    };
}

/// Runs each story, an `async fn(store, ..)`, as two tests named in a `(story, sqlite, postgres)`
/// triple: `sqlite` on a fresh SQLite database and `postgres` on a fresh PostgreSQL one.
/// Arguments after the store, if any, follow each test's name:
/// `on_each_backend!((story, story_sqlite(11), story_postgres(12)))`.
#[macro_export]
macro_rules! on_each_backend {
    ($((
        $story:ident,
        $sqlite:ident $(($($sqlite_arg:expr),* $(,)?))?,
        $postgres:ident $(($($postgres_arg:expr),* $(,)?))? $(,)?
    )),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $sqlite() {
                let db = $crate::SqliteDb::new();
                $story(db.open().await $($(, $sqlite_arg)*)?).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $postgres() {
                let db = $crate::PostgresDb::new().await;
                $story(db.open().await $($(, $postgres_arg)*)?).await;
            }
        )+
    };
}
