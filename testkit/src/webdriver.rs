//! A small WebDriver client for the browser tests: chromedriver started on a free loopback
//! port and killed when dropped, driving headless Chromium over the W3C WebDriver protocol
//! (JSON over HTTP/1.1, one connection a command). A few dozen lines instead of a WebDriver
//! crate and its HTTP stack.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// How long chromedriver may take to listen, and an element to appear.
const STARTUP_TIMEOUT_MS: u64 = 20_000;
const WAIT_TIMEOUT_MS: u64 = 10_000;

/// The W3C key of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one headless Chromium session. Both end when dropped.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    address: SocketAddr,
    session: String,
    /// Where screenshots go.
    pub screenshots: PathBuf,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium window of a laptop's
    /// size.
    pub fn start() -> Browser {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        // The browser is not ours to test against a moved clock (deploy/dev/test-clock.sh):
        // it runs on the machine's own, and libfaketime would slow its every timer.
        let driver = Command::new("chromedriver")
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (deploy/dev/install-packages.sh test)");
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let mut browser = Browser {
            driver,
            address,
            session: String::new(),
            screenshots: screenshot_dir(),
        };
        let started = Instant::now();
        while TcpStream::connect(address).is_err() {
            assert!(
                started.elapsed() < Duration::from_millis(STARTUP_TIMEOUT_MS),
                "chromedriver did not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let created = browser.command(
            "POST",
            "/session",
            &json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    // The pages follow the browser's language: French, as at a French canteen.
                    "prefs": {"intl.accept_languages": "fr-FR,fr"},
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1000",
                             "--lang=fr-FR", "--no-first-run", "--disable-extensions"]
                }
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    /// Sends one command; returns its `value`, panicking on a WebDriver error.
    fn command(&self, method: &str, path: &str, body: &Value) -> Value {
        let (status, reply) = self.raw(method, path, body);
        assert!(
            status == 200,
            "WebDriver {method} {path} answered {status}: {reply}"
        );
        reply["value"].clone()
    }

    fn raw(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let body = if method == "GET" || method == "DELETE" {
            String::new()
        } else {
            body.to_string()
        };
        let mut stream = TcpStream::connect(self.address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .unwrap();
        // chromedriver may keep the connection open: read by the announced length.
        let mut raw = Vec::new();
        let mut buffer = [0_u8; 64 * 1024];
        loop {
            let read = stream.read(&mut buffer).unwrap();
            raw.extend_from_slice(&buffer[..read]);
            if read == 0 || response_complete(&raw) {
                break;
            }
        }
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn open(&self, url: &str) {
        self.command("POST", &self.session_path("/url"), &json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.command("GET", &self.session_path("/url"), &Value::Null)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The element matching a CSS selector, waiting for it to appear.
    pub fn find(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            let (status, reply) = self.raw(
                "POST",
                &self.session_path("/element"),
                &json!({"using": "css selector", "value": css}),
            );
            if status == 200 {
                return Element(reply["value"][ELEMENT_KEY].as_str().unwrap().to_owned());
            }
            assert!(
                started.elapsed() < Duration::from_millis(WAIT_TIMEOUT_MS),
                "no element {css} on {}:\n{}",
                self.url(),
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many elements match a CSS selector now.
    pub fn count(&self, css: &str) -> usize {
        self.command(
            "POST",
            &self.session_path("/elements"),
            &json!({"using": "css selector", "value": css}),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.command(
            "GET",
            &self.session_path(&format!("/element/{}/text", element.0)),
            &Value::Null,
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Types `text` into the element, after clearing it.
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.command(
            "POST",
            &self.session_path(&format!("/element/{}/clear", element.0)),
            &json!({}),
        );
        self.command(
            "POST",
            &self.session_path(&format!("/element/{}/value", element.0)),
            &json!({ "text": text }),
        );
    }

    /// Clicks a link or button that leads to another page, and waits until that page is
    /// there (the old document is marked first), so what follows reads the new page.
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.script("document.documentElement.dataset.left = 'yes';");
        self.command(
            "POST",
            &self.session_path(&format!("/element/{}/click", element.0)),
            &json!({}),
        );
        let started = Instant::now();
        loop {
            let (status, reply) = self.raw(
                "POST",
                &self.session_path("/execute/sync"),
                &json!({
                    "script": "return document.readyState === 'complete' \
                               && document.documentElement.dataset.left !== 'yes';",
                    "args": []
                }),
            );
            if status == 200 && reply["value"] == Value::Bool(true) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_millis(WAIT_TIMEOUT_MS),
                "clicking {css} on {} led nowhere",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Runs a script in the page and returns its result.
    pub fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            &self.session_path("/execute/sync"),
            &json!({ "script": script, "args": [] }),
        )
    }

    /// The page's `<h1>`, once there.
    pub fn heading(&self) -> String {
        self.text("h1")
    }

    /// Saves a PNG of the window under the screenshot directory.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.command("GET", &self.session_path("/screenshot"), &Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG screenshot");
        std::fs::create_dir_all(&self.screenshots).unwrap();
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &self.session_path(""), &Value::Null);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `target/browser-screenshots` of the workspace.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("browser-screenshots")
}

/// Whether `raw` holds a whole HTTP response: its headers and the body they announce.
fn response_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|length| length.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

fn dechunk(mut raw: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&rest[..size]);
        raw = &rest[size + 2..];
    }
    body
}
