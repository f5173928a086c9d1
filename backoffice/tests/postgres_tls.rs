//! PostgreSQL over TLS against a real server: a throwaway cluster of the machine's PostgreSQL
//! with `ssl=on`, a CA and a server certificate made here, and `hostssl` the only way in over
//! TCP. The back-office must connect only to the server its CA vouches for, under the name it
//! dialled, and only encrypted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use backoffice::store::sql::Value;
use backoffice::store::{Mode, PostgresStore, Sql as _, Store as _, StoreError};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use testkit::Ops as _;
use testkit::fixtures::{device, registered_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_encrypted_and_the_server_is_checked() {
    let cluster = Cluster::start();
    let ca = cluster.file("ca.pem");

    let verified = |mode: &str, ca_file: &str| format!("sslmode={mode}&sslrootcert={ca_file}");

    let store = PostgresStore::open(&cluster.url("localhost", &verified("verify-full", &ca)))
        .await
        .unwrap();
    let kiosk = device("kiosk-1", 1);
    store
        .add_device(kiosk.clone(), registered_at())
        .await
        .unwrap();
    assert_eq!(store.device(&kiosk.id).await.unwrap(), Some(kiosk));
    assert!(connection_is_encrypted(&store).await);

    for mode in ["require", "verify-ca"] {
        let store = PostgresStore::open(&cluster.url("localhost", &verified(mode, &ca)))
            .await
            .unwrap();
        assert!(connection_is_encrypted(&store).await, "sslmode={mode}");
    }

    let other_ca = cluster.file("other-ca.pem");
    let refusals = [
        (
            cluster.url("localhost", &verified("verify-full", &other_ca)),
            "invalid peer certificate: UnknownIssuer",
        ),
        // The certificate names `localhost` only.
        (
            cluster.url("127.0.0.1", &verified("verify-full", &ca)),
            "certificate not valid for name \"127.0.0.1\"",
        ),
        // pg_hba.conf lets nobody in over TCP without TLS.
        (cluster.url("localhost", "sslmode=disable"), "no encryption"),
        (
            cluster.url("localhost", &verified("prefer", &ca)),
            "may fall back to an unencrypted connection",
        ),
        (
            cluster.url(
                "localhost",
                &verified("verify-full", &cluster.file("absent.pem")),
            ),
            "absent.pem",
        ),
    ];
    for (url, expected) in refusals {
        refused(&url, expected).await;
    }
}

/// Whether the store's connection is encrypted, in the server's own view.
async fn connection_is_encrypted(store: &PostgresStore) -> bool {
    let mut transaction = store.begin(Mode::Single).await.unwrap();
    let rows = transaction
        .query(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            Vec::<Value>::new(),
            |row| row.bool(0),
        )
        .await
        .unwrap();
    rows == [true]
}

/// Opening a store at `url` fails with an error that says `expected`.
async fn refused(url: &str, expected: &str) {
    match PostgresStore::open(url).await {
        Err(StoreError::Unavailable(error)) => {
            assert!(error.contains(expected), "{url}: {error}");
        }
        other => panic!("{url}: {other:?}, expected an error saying {expected:?}"),
    }
}

/// A PostgreSQL cluster in a temporary directory, stopped and removed when dropped (a failed
/// test included). Its server certificate, for `localhost`, is signed by `ca.pem`; `other-ca.pem`
/// is another CA's.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The `postgres` user's ids when the test runs as root (initdb refuses root); otherwise
    /// the cluster is the test's own.
    owner: Option<(u32, u32)>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("canteen-postgres-tls.")
            .tempdir()
            .unwrap();
        let cluster = Cluster {
            dir,
            bin: postgres_bin(),
            port: free_port(),
            owner: postgres_owner(),
        };
        cluster.write_certificates();
        cluster.write(
            "pg_hba.conf",
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        );
        if let Some((uid, gid)) = cluster.owner {
            for entry in std::fs::read_dir(cluster.dir.path()).unwrap() {
                std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), Some(gid)).unwrap();
            }
            std::os::unix::fs::chown(cluster.dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = cluster.file("data");
        cluster.run(
            "initdb",
            &[
                &format!("--pgdata={data}"),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={dir} \
             -c hba_file={dir}/pg_hba.conf -c ssl=on -c ssl_cert_file={dir}/server.crt \
             -c ssl_key_file={dir}/server.key -c ssl_min_protocol_version=TLSv1.2 -c fsync=off",
            port = cluster.port,
            dir = cluster.dir.path().display(),
        );
        let log = cluster.file("server.log");
        cluster.run(
            "pg_ctl",
            &[
                &format!("--pgdata={data}"),
                &format!("--log={log}"),
                &format!("--options={options}"),
                "--wait",
                "start",
            ],
        );
        cluster
    }

    /// A URL of this cluster under the name `host` (always reached at 127.0.0.1), with
    /// `parameters` added.
    fn url(&self, host: &str, parameters: &str) -> String {
        format!(
            "postgres://postgres@{host}:{port}/postgres?hostaddr=127.0.0.1&{parameters}",
            port = self.port
        )
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn write(&self, name: &str, contents: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        // PostgreSQL refuses a key file others may read.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn write_certificates(&self) {
        let ca = certificate_authority("canteen test CA");
        let other_ca = certificate_authority("another CA");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &ca).unwrap();
        self.write("ca.pem", &ca.pem());
        self.write("other-ca.pem", &other_ca.pem());
        self.write("server.crt", &certificate.pem());
        self.write("server.key", &key.serialize_pem());
    }

    /// Runs one of PostgreSQL's programs as the cluster's owner; panics with its output and the
    /// server's log if it fails.
    fn run(&self, program: &str, arguments: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if self.owner.is_some() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        // The server keeps the real clock: the test's moved clock matters only to the client,
        // which checks the certificates' dates.
        command.env_remove("LD_PRELOAD").env_remove("FAKETIME");
        let output = command.args(arguments).output().unwrap();
        assert!(
            output.status.success(),
            "{} failed: {}{}\nserver log:\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.file("server.log")).unwrap_or_default(),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.file("data");
        if Path::new(&data).join("postmaster.pid").exists() {
            self.run(
                "pg_ctl",
                &[
                    &format!("--pgdata={data}"),
                    "--mode=immediate",
                    "--wait",
                    "stop",
                ],
            );
        }
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// The newest PostgreSQL installed (Debian's layout).
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is required (deploy/dev/install-packages.sh)")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let version = path.file_name()?.to_str()?.parse().ok()?;
            Some((version, path.join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no initdb under /usr/lib/postgresql")
        .1
}

/// The `postgres` user's ids when the test runs as root, else none.
fn postgres_owner() -> Option<(u32, u32)> {
    let id = |flag: &str, user: &str| -> u32 {
        let output = Command::new("id").args([flag, user]).output().unwrap();
        assert!(output.status.success(), "id {flag} {user}");
        String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        return None;
    }
    Some((id("-u", "postgres"), id("-g", "postgres")))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
