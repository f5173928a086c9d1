//! Certificates for HTTPS tests, made with the `openssl` command as an administrator would.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `openssl` with `args`, then each flag and its path; it must succeed.
pub fn openssl(args: &[&str], paths: &[(&str, &Path)]) {
    let mut command = Command::new("openssl");
    command.args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    let output = command
        .output()
        .expect("openssl is installed by deploy/dev/install-packages.sh");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA named `name` and a certificate it signs for 127.0.0.1, made with openssl as an
/// administrator would; returns the CA's certificate, the server's certificate and its key.
pub fn authority(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let file = |suffix: &str| dir.join(format!("{name}-{suffix}"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let subject = format!("/CN={name}");
    openssl(
        &[
            &["req", "-x509", "-days", "2", "-subj", &subject][..],
            &ec[..],
        ]
        .concat(),
        &[("-keyout", &file("ca.key")), ("-out", &file("ca.pem"))],
    );
    openssl(
        &[&["req", "-subj", "/CN=backoffice.test"][..], &ec[..]].concat(),
        &[
            ("-keyout", &file("server.key")),
            ("-out", &file("server.csr")),
        ],
    );
    std::fs::write(file("san.ext"), "subjectAltName=IP:127.0.0.1\n")
        .expect("the extension file is written");
    openssl(
        &["x509", "-req", "-days", "2", "-CAcreateserial"],
        &[
            ("-in", &file("server.csr")),
            ("-CA", &file("ca.pem")),
            ("-CAkey", &file("ca.key")),
            ("-extfile", &file("san.ext")),
            ("-out", &file("server.pem")),
        ],
    );
    (file("ca.pem"), file("server.pem"), file("server.key"))
}
