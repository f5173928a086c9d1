//! The back-office's test harness, shared by its own tests and benchmarks and by the end-to-end
//! tests of the `tests` crate.
//!
//! - [`cli`]: the `backoffice` command line run on a test's database ([`cli::run`]).
//! - [`db`]: fresh databases of each backend ([`SqliteDb`], [`PostgresDb`]).
//! - [`ops`]: what tests do to a back-office, by short names ([`Ops`]).
//! - [`app`]: the service on a free loopback port with a clock the test sets ([`app::TestApp`]),
//!   and a raw HTTP/1.1 client, signed kiosk requests included.
//! - [`fixtures`]: kiosks' keys, devices and chains, accounts, pupils, two sites.
//! - [`day`]: a service day of tills written at chosen times, and raw access to each backend's
//!   rows to tamper with them as an attacker with database access would.
//! - [`tls`]: a CA and a server certificate it signs, made with `openssl`.
//! - [`webdriver`]: a small WebDriver client for headless Chromium.
//! - [`suite`]: one test on each backend ([`store_suite!`], [`db_suite!`], [`on_each_backend!`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod cli;
pub mod day;
pub mod db;
pub mod fixtures;
pub mod ops;
pub mod suite;
pub mod tls;
pub mod webdriver;

pub use db::{PostgresDb, SqliteDb, postgres_url};
pub use ops::Ops;
