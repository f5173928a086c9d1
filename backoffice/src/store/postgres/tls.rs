//! How the back-office reaches PostgreSQL: over TLS with the server's certificate checked
//! against a CA file, or in plain text when the URL says so, and never libpq's default
//! `prefer`, which falls back to plain text without a word when TLS is not offered.
//!
//! The URL's `sslmode` and `sslrootcert` are read here and removed before the rest goes to
//! `tokio-postgres`, which knows neither `verify-ca`, `verify-full` nor `sslrootcert`:
//! - no `sslmode`, or `disable`: plain text (a warning when the host is not this machine);
//! - `require`, `verify-ca`, `verify-full`: TLS or no connection, the server's certificate checked
//!   against the CAs of `sslrootcert` and its name against the URL's host, whichever of the three
//!   (stricter than libpq's `require` and `verify-ca`, which check less);
//! - `prefer` and `allow` (which may fall back to plain text) are refused, and so is TLS without
//!   `sslrootcert` (there is no default CA to trust).

use std::path::{Path, PathBuf};

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// A PostgreSQL URL, read: what `tokio-postgres` connects with and how the connection is
/// protected.
#[derive(Debug)]
pub struct PostgresUrl {
    /// Its `ssl_mode` agrees with `encryption`: `Disable` or `Require`, never `Prefer`.
    pub config: tokio_postgres::Config,
    pub encryption: Encryption,
}

/// How the connection to PostgreSQL is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// Plain text: `sslmode=disable`, or no `sslmode` at all.
    Plain,
    /// TLS, the server's certificate checked against the CAs of this PEM file and its name
    /// against the URL's host.
    Verified { ca_file: PathBuf },
}

impl PostgresUrl {
    /// Reads `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE?PARAMETERS`). The error says
    /// what to change; it never repeats the URL, which may hold a password.
    pub fn parse(url: &str) -> Result<PostgresUrl, String> {
        let (base, query) = split_query(url);
        let mut kept = Vec::new();
        let mut sslmode = None;
        let mut sslrootcert = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                kept.push(pair);
                continue;
            };
            let key = decode(key)?;
            let slot = match key.as_str() {
                "sslmode" => &mut sslmode,
                "sslrootcert" => &mut sslrootcert,
                _ => {
                    kept.push(pair);
                    continue;
                }
            };
            if slot.replace(decode(value)?).is_some() {
                return Err(format!("{key} is given twice"));
            }
        }
        let encryption = encryption(sslmode.as_deref(), sslrootcert)?;
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: tokio_postgres::Config =
            rest.parse().map_err(|error| super::with_sources(&error))?;
        config.ssl_mode(match encryption {
            Encryption::Plain => SslMode::Disable,
            Encryption::Verified { .. } => SslMode::Require,
        });
        Ok(PostgresUrl { config, encryption })
    }

    /// The hosts reached over the network in plain text: not this machine.
    pub fn plain_remote_hosts(&self) -> Vec<String> {
        if self.encryption != Encryption::Plain {
            return Vec::new();
        }
        self.config
            .get_hosts()
            .iter()
            .filter_map(|host| match host {
                Host::Tcp(name) if !is_loopback(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A TLS connector (rustls on `ring`, TLS 1.2 or 1.3) that trusts only the certificates of
/// `ca_file` and checks the server's name. It offers ALPN `postgresql`, as libpq does, so that
/// a server configured for direct TLS negotiation accepts it too.
pub fn connector(ca_file: &Path) -> Result<MakeRustlsConnect, String> {
    let ca_error = |reason: String| format!("CA file {}: {reason}", ca_file.display());
    let pem = std::fs::read(ca_file).map_err(|error| ca_error(error.to_string()))?;
    let mut config = proto::tls::client_trusting(&pem).map_err(ca_error)?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

/// What `sslmode` and `sslrootcert` ask for, or why they are refused.
fn encryption(sslmode: Option<&str>, sslrootcert: Option<String>) -> Result<Encryption, String> {
    const USE: &str = "use sslmode=verify-full&sslrootcert=/path/to/ca.pem to encrypt, \
                       or sslmode=disable for plain text";
    match (sslmode, sslrootcert) {
        (None | Some("disable"), None) => Ok(Encryption::Plain),
        (None | Some("disable"), Some(_)) => Err(format!(
            "sslrootcert is given but the connection would not be encrypted: {USE}"
        )),
        (Some("require" | "verify-ca" | "verify-full"), Some(ca_file)) if !ca_file.is_empty() => {
            Ok(Encryption::Verified {
                ca_file: PathBuf::from(ca_file),
            })
        }
        (Some(mode @ ("require" | "verify-ca" | "verify-full")), _) => Err(format!(
            "sslmode={mode} needs a CA file, sslrootcert=/path/to/ca.pem: the CA the \
             server's certificate is checked against"
        )),
        (Some(mode @ ("prefer" | "allow")), _) => Err(format!(
            "sslmode={mode} may fall back to an unencrypted connection: {USE}"
        )),
        (Some(mode), _) => Err(format!("unknown sslmode {mode:?}: {USE}")),
    }
}

/// The URL before its query, and the query, split where `tokio-postgres` splits them: at the
/// first `?` after the user information, which ends at the first `@`.
fn split_query(url: &str) -> (&str, &str) {
    let host_start = url.find('@').map_or(0, |at| at + 1);
    match url[host_start..].find('?') {
        Some(question) => {
            let question = host_start + question;
            (&url[..question], &url[question + 1..])
        }
        None => (url, ""),
    }
}

fn decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|error| format!("database url parameter: {error}"))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tokio_postgres::config::SslMode;

    use super::{Encryption, PostgresUrl};

    /// `url` reads as `expected`, or fails with an error that contains `expected`'s text.
    fn check(url: &str, expected: Result<(Encryption, Option<&str>), &str>) {
        match (PostgresUrl::parse(url), expected) {
            (Ok(read), Ok((encryption, application_name))) => {
                assert_eq!(read.encryption, encryption, "{url}");
                let ssl_mode = match encryption {
                    Encryption::Plain => SslMode::Disable,
                    Encryption::Verified { .. } => SslMode::Require,
                };
                assert_eq!(read.config.get_ssl_mode(), ssl_mode, "{url}");
                assert_eq!(read.config.get_dbname(), Some("canteen"), "{url}");
                assert_eq!(
                    read.config.get_application_name(),
                    application_name,
                    "{url}"
                );
            }
            (Err(error), Err(expected)) => {
                assert!(error.contains(expected), "{url}: {error}");
                assert!(!error.contains("secret"), "{url}: {error}");
            }
            (read, expected) => panic!("{url}: {read:?}, expected {expected:?}"),
        }
    }

    fn verified(ca_file: &str) -> Encryption {
        Encryption::Verified {
            ca_file: PathBuf::from(ca_file),
        }
    }

    #[test]
    fn sslmode_and_sslrootcert() {
        let base = "postgres://backoffice:secret@db.canteen.vpn/canteen";
        check(base, Ok((Encryption::Plain, None)));
        check(
            &format!("{base}?sslmode=disable&application_name=bo"),
            Ok((Encryption::Plain, Some("bo"))),
        );
        for mode in ["require", "verify-ca", "verify-full"] {
            check(
                &format!("{base}?sslmode={mode}&sslrootcert=/etc/ca.pem"),
                Ok((verified("/etc/ca.pem"), None)),
            );
            check(&format!("{base}?sslmode={mode}"), Err("needs a CA file"));
            check(
                &format!("{base}?sslmode={mode}&sslrootcert="),
                Err("needs a CA file"),
            );
        }
        check(
            &format!(
                "{base}?application_name=bo&sslrootcert=%2Fetc%2Fdb%20ca.pem&sslmode=verify-full"
            ),
            Ok((verified("/etc/db ca.pem"), Some("bo"))),
        );
        check(&format!("{base}?sslmode=prefer"), Err("may fall back"));
        check(&format!("{base}?sslmode=allow"), Err("may fall back"));
        check(&format!("{base}?sslmode=full"), Err("unknown sslmode"));
        check(
            &format!("{base}?sslrootcert=/etc/ca.pem"),
            Err("would not be encrypted"),
        );
        check(
            &format!("{base}?sslmode=disable&sslmode=require"),
            Err("sslmode is given twice"),
        );
        check(&format!("{base}?sslcert=/etc/c.pem"), Err("sslcert"));
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        check(
            "postgres://backoffice:se?cret@db/canteen?sslmode=verify-full&sslrootcert=/ca.pem",
            Ok((verified("/ca.pem"), None)),
        );
    }

    #[test]
    fn plain_text_to_another_machine_is_told() {
        let hosts = |url: &str| PostgresUrl::parse(url).map(|read| read.plain_remote_hosts());
        assert_eq!(hosts("postgres://u@127.0.0.1/canteen"), Ok(vec![]));
        assert_eq!(hosts("postgres://u@localhost,[::1]/canteen"), Ok(vec![]));
        assert_eq!(
            hosts("postgres://u@db.canteen.vpn/canteen"),
            Ok(vec!["db.canteen.vpn".to_owned()])
        );
        assert_eq!(
            hosts("postgres://u@db/canteen?sslmode=verify-full&sslrootcert=/ca.pem"),
            Ok(vec![])
        );
    }
}
