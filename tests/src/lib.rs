//! Helpers shared by the end-to-end tests in `tests/tests/`: each test reads as a user story and
//! drives real parts through these.
//!
//! - [`openssl`]: checks records with the `openssl` command line, as an auditor without our
//!   software would.
//! - [`workspace`]: the workspace's scripts and built binaries, for the deployment tests.

pub mod openssl;
pub mod workspace;
