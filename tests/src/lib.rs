//! Helpers shared by the end-to-end tests in `tests/tests/`: each test reads as a user story and
//! drives real parts through these.
//!
//! - [`openssl`]: checks records with the `openssl` command line, as an auditor without our
//!   software would.
//! - [`workspace`]: the workspace's scripts and built binaries, for the deployment tests.
//! - [`backoffice`]: a real back-office on loopback, over SQLite or PostgreSQL, and a site.
//! - [`kiosk`]: a real kiosk without a screen, its engine and its sync client.
//! - [`proxy`]: a TCP proxy that drops, cuts, resets and delays connections on purpose.

pub mod backoffice;
pub mod kiosk;
pub mod openssl;
pub mod proxy;
pub mod workspace;
