//! `TestApp`: the back-office serving on a free loopback port in front of a fresh database, and
//! a plain HTTP/1.1 client that talks to it in raw bytes, as any kiosk would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use backoffice::app::ServeOptions;
use backoffice::clock::ManualClock;
use backoffice::manage::tokens;
use backoffice::store::{SqliteStore, Store};
use backoffice::users::Role;
use backoffice::web::session::{SESSION_COOKIE, SIGN_IN_COOKIE};
use proto::api::{
    HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, KioskReport, ReaderState,
    RequestToSign, UploadRequest,
};
use proto::{SignedRecord, Text, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fixtures::Kiosk;

/// A running back-office. Stops when dropped.
#[derive(Debug)]
pub struct TestApp<S> {
    pub address: SocketAddr,
    pub store: S,
    /// The service's clock: it stands still where the test started it until the test moves it.
    pub clock: ManualClock,
    /// Whether it serves HTTPS.
    tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "status {}: not the expected JSON ({error}): {}",
                self.status,
                self.text()
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value the reply sets cookie `name` to, if it sets it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(header, _)| header == "set-cookie")
            .filter_map(|(_, value)| value.split(';').next())
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }
}

/// The `authorization` header of HTTP Basic authentication as user `name`.
pub fn basic_auth(name: &str, password: &str) -> (&'static str, String) {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    ("authorization", format!("Basic {token}"))
}

/// The back-office serving [`crate::fixtures::populate`]'s two sites from a fresh SQLite
/// database, and that database (which must outlive it).
pub async fn populated_app() -> (TestApp<SqliteStore>, crate::SqliteDb) {
    let db = crate::SqliteDb::new();
    let store = db.open().await;
    crate::fixtures::populate(&store).await;
    (TestApp::start(store).await, db)
}

impl<S: Store> TestApp<S> {
    /// Serves plain HTTP with the clock at [`crate::fixtures::app_now`].
    pub async fn start(store: S) -> TestApp<S> {
        TestApp::serve(store, None, crate::fixtures::app_now()).await
    }

    /// Serves HTTP, or HTTPS with `tls`, with the clock standing at `now`.
    pub async fn serve(
        store: S,
        tls: Option<Arc<rustls::ServerConfig>>,
        now: Timestamp,
    ) -> TestApp<S> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let clock = ManualClock::new(now);
        let is_tls = tls.is_some();
        let options = ServeOptions {
            tls,
            clock: clock.shared(),
            ..ServeOptions::default()
        };
        let server = tokio::spawn(backoffice::app::serve(
            store.clone(),
            listener,
            options,
            async {
                let _ = stop.await;
            },
        ));
        TestApp {
            address,
            store,
            clock,
            tls: is_tls,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// The base URL kiosks are configured with.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// Stops accepting, finishes requests in flight, and returns how serving ended.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take().unwrap().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"").await
    }

    /// Sends one request and reads the whole answer (the connection closes after it).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Reply {
        send(self.address, method, path, headers, body).await
    }

    /// Signs in through the web form as a person would: the reply to the form, and the session
    /// cookie it sets, if it sets one.
    pub async fn sign_in(&self, name: &str, password: &str) -> (Reply, Option<String>) {
        let page = self.get("/sign-in").await;
        assert_eq!(page.status, 200);
        let token = page.cookie(SIGN_IN_COOKIE).unwrap();
        let body = format!(
            "csrf={token}&name={name}&password={}",
            password.replace(' ', "+")
        );
        let reply = self
            .request(
                "POST",
                "/sign-in",
                &[("cookie", format!("{SIGN_IN_COOKIE}={token}"))],
                body.as_bytes(),
            )
            .await;
        let session = reply
            .cookie(SESSION_COOKIE)
            .filter(|value| !value.is_empty());
        (reply, session)
    }

    /// An API token `name` for `role` (at `site`, if given), made by city IT now on the
    /// service's clock and valid `days` days: the secret a machine client sends as a bearer.
    pub async fn token(&self, name: &str, role: Role, site: Option<&str>, days: i64) -> String {
        let new = tokens::NewToken {
            name: name.to_owned(),
            role,
            site: site.map(|site| proto::SiteId::parse(site).unwrap()),
            days,
        };
        tokens::create(&self.store, &crate::ops::operator(), new, self.clock.now())
            .await
            .unwrap()
            .0
    }

    /// A request signed by `kiosk`'s key with a fresh nonce, at the current time.
    pub async fn signed(&self, kiosk: &Kiosk, method: &str, path: &str, body: &[u8]) -> Reply {
        let now = self.clock.now();
        let headers = signed_headers(kiosk, method, path, body, now, &fresh_nonce());
        self.request(method, path, &headers, body).await
    }

    /// Uploads `records` as `kiosk`.
    pub async fn upload(&self, kiosk: &Kiosk, records: Vec<SignedRecord>) -> Reply {
        let body = upload_body(records, self.clock.now());
        self.signed(kiosk, "POST", "/api/v1/kiosk/records", &body)
            .await
    }
}

impl<S> Drop for TestApp<S> {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub fn upload_body(records: Vec<SignedRecord>, kiosk_time: Timestamp) -> Vec<u8> {
    let request = UploadRequest {
        records,
        status: KioskReport {
            software_version: Text::parse("0.1.0").unwrap(),
            reader: ReaderState::Ready,
            unsynced_records: 0,
            kiosk_time,
            snapshot_version: None,
        },
    };
    serde_json::to_vec(&request).unwrap()
}

pub fn fresh_nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "nonce{}x{:016}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The four headers of a signed kiosk request.
pub fn signed_headers(
    kiosk: &Kiosk,
    method: &str,
    path: &str,
    body: &[u8],
    at: Timestamp,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let request = RequestToSign {
        device: &kiosk.device.id,
        method,
        path,
        at,
        nonce,
        body,
    };
    vec![
        (HEADER_DEVICE, kiosk.device.id.to_string()),
        (HEADER_TIMESTAMP, at.to_string()),
        (HEADER_NONCE, nonce.to_owned()),
        (HEADER_SIGNATURE, request.sign(&kiosk.key).to_base64()),
    ]
}

pub async fn send(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // The server may answer (413) before reading the whole body and close: a failed write of
    // the rest is then expected.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse_reply(&raw)
}

/// Sends raw bytes and returns whatever comes back before the server closes or a short wait
/// ends.
pub async fn send_raw(address: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        stream.read_to_end(&mut raw),
    )
    .await;
    raw
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = String::from_utf8_lossy(&raw[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
