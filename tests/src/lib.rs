//! Helpers shared by the end-to-end tests in `tests/tests/`: each test reads as a user story and
//! drives real parts through these.
//!
//! - [`openssl`]: checks records with the `openssl` command line, as an auditor without our
//!   software would.

pub mod openssl;
