//! The workspace as the deployment tests see it: its scripts under `deploy/`, and the `kiosk`
//! and `backoffice` binaries cargo built beside the running test (`cargo test --workspace`
//! builds every binary before any test runs; alone, run `cargo build -p kiosk -p backoffice`).

use std::path::{Path, PathBuf};

/// The workspace's root directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_owned()
}

/// The directory of the binaries built with this test: `target/debug` when the test runs from
/// `target/debug/deps`.
pub fn binary_dir() -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let deps = test.parent().expect("the test binary is in a directory");
    deps.parent()
        .expect("target/PROFILE/deps has a parent")
        .to_owned()
}

/// The path of a workspace binary, checked to exist.
pub fn binary(name: &str) -> PathBuf {
    let path = binary_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p {name}` or the whole `cargo test --workspace`",
        path.display()
    );
    path
}

/// A TCP port on 127.0.0.1 free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
