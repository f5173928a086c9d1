//! The back-office: the authority on balances, in front of SQLite or PostgreSQL. Stateless in
//! front of its database, so several instances can serve one PostgreSQL. Three layers that
//! depend only downward:
//!
//! - Interfaces: [`http`] (the JSON API), [`web`] (the pages of staff, finance and city IT), the
//!   `backoffice` binary (CLI), put together by [`app`] (the router, its layers, serving).
//! - Use cases, where every rule is written once: [`manage`] (every change a person makes, and
//!   who may make it: roles, and staff only at their own site), [`kiosks`] (who a kiosk request
//!   comes from, its upload), [`ingest`] (a kiosk's records stored exactly once), [`snapshot`]
//!   (what a kiosk gets), [`sign_in`] (passwords, sessions and the lock-out), [`import`] (a CSV
//!   file through `manage`), [`transfer`] (a kiosk export brought by hand), [`reconcile`] (a
//!   service day checked and signed off), [`export`] (finance's files and `verify`),
//!   [`meal_days`] (meals and revenue per site and day).
//! - Storage, SQL only: [`store`] (the SQLite and PostgreSQL clients and the statements both
//!   run).
//!
//! Beside them: [`clock`] (where "now" is read), [`limits`] (every bound), [`users`] (roles and
//! Argon2 hashes), [`metrics`] (Prometheus counters), [`state`] (what handlers share),
//! [`systemd`] (telling systemd the service is ready).

pub mod app;
pub mod clock;
pub mod export;
pub mod http;
pub mod import;
pub mod ingest;
pub mod kiosks;
pub mod limits;
pub mod manage;
pub mod meal_days;
pub mod metrics;
pub mod reconcile;
pub mod sign_in;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod systemd;
pub mod transfer;
pub mod users;
pub mod web;
