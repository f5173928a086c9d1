//! The back-office: the authority on balances, in front of SQLite or PostgreSQL. Stateless in
//! front of its database, so several instances can serve one PostgreSQL.
//!
//! - [`clock`]: where the back-office reads the time, so that tests set it.
//! - [`store`]: the storage interface ([`store::Store`]) and its SQLite and PostgreSQL
//!   implementations, with versioned migrations.
//! - [`ingest`]: judging a kiosk's batch of signed records against its stored chain (store,
//!   hold beyond a gap, count duplicates, quarantine forks and forgeries) and what each stored
//!   record does to balances.
//! - [`snapshot`]: building a kiosk's full or delta snapshot from stored rows.
//! - [`import`]: checking a CSV file of accounts, pupils and cards, then writing it.
//! - [`manage`]: the rules of back-office users' changes, shared by the HTTP API and the CLI.
//! - [`reconcile`]: the reconciliation of a service day per kiosk and site: chains,
//!   signatures, day closes, cash, anomalies with evidence, proposed voids, sign-off.
//! - [`users`]: back-office users and roles, Argon2 hashes of passwords and staff PINs.
//! - [`export`]: finance exports of a day or period (CSV, the FEC journal, signed records
//!   with the kiosks' keys) and the check of a records export.
//! - [`transfer`]: a `kiosk export` file brought by hand, ingested as the kiosk's uploads.
//! - [`http`]: the HTTP API (axum): signed kiosk requests, ingest, health, metrics, OpenAPI.
//! - [`systemd`]: telling systemd the service is ready.
//! - [`web`]: the web pages of staff, finance and admin, served beside the API.
//! - [`meal_days`]: meals and revenue per site and service day, kept up to date by ingest.

pub mod clock;
pub mod export;
pub mod http;
pub mod import;
pub mod ingest;
pub mod manage;
pub mod meal_days;
pub mod reconcile;
pub mod snapshot;
pub mod store;
pub mod systemd;
pub mod transfer;
pub mod users;
pub mod web;
