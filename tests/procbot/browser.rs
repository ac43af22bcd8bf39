//! A real browser on the dashboard: Debian's headless Chromium driven through chromedriver's
//! WebDriver protocol (plain JSON over loopback HTTP). It signs in, reads the overview and its
//! chart, follows a link to a procedure and checks what a person would see.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::dashboard::{dashboard_app, dashboard_repo};
use crate::helpers::TestRepo;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    address: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = exchange(
            self.address,
            "DELETE",
            &format!("/session/{}", self.session),
            "",
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange, reading exactly Content-Length bytes (chromedriver keeps
/// connections open).
fn exchange(address: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn call(address: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, text) = exchange(address, method, path, &body);
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("chromedriver answered {status}: {text}"));
    assert_eq!(status, 200, "{method} {path}: {value}");
    value["value"].clone()
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "the browser test needs Debian's chromium and chromium-driver \
                     (apt-get install chromium chromium-driver; .ci/run does): {error}"
                )
            });
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(address).is_ok()
                && call(address, "GET", "/status", None)["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let session = call(
            address,
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}})),
        )["sessionId"]
            .as_str()
            .unwrap()
            .to_string();
        Driver {
            child,
            address,
            session,
            _profile: profile,
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(
            self.address,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn title(&self) -> String {
        self.session_call("GET", "/title", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The element `css` selects, waiting up to five seconds for a page still loading.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, text) = exchange(
                self.address,
                "POST",
                &format!("/session/{}/element", self.session),
                &json!({"using": "css selector", "value": css}).to_string(),
            );
            let value: Value = serde_json::from_str(&text).unwrap_or_default();
            if status == 200
                && let Some(element) = value["value"][ELEMENT].as_str()
            {
                return element.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no element matches {css}: {status} {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of `css`, once the page shows it (a page replaced mid-read is read again).
    fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.find(css);
            let (status, text) = exchange(
                self.address,
                "GET",
                &format!("/session/{}/element/{element}/text", self.session),
                "",
            );
            let value: Value = serde_json::from_str(&text).unwrap_or_default();
            if status == 200
                && let Some(text) = value["value"].as_str()
            {
                return text.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "cannot read {css}: {status} {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to ten seconds) until `css` shows `needle`: navigation after a click or a
    /// form submission finishes in its own time.
    fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text(css);
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {needle:?}; it shows {text:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for_title(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.title() != expected {
            assert!(
                Instant::now() < deadline,
                "the title stayed {:?}, not {expected:?}",
                self.title()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session_call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.session_call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_reads_the_overview_and_opens_a_procedure() {
    let repo = dashboard_repo();
    let data = TestRepo::new();
    let app = dashboard_app(&repo, &data).await;
    let port = app.address.port();
    tokio::task::spawn_blocking(move || {
        let browser = Driver::start();
        // `localhost` is a secure context for Chromium, so the Secure cookie is kept.
        let base = format!("http://localhost:{port}");
        browser.open(&format!("{base}/"));
        assert_eq!(browser.url(), format!("{base}/login"));
        browser.type_into("#token", "not the token");
        browser.click("#sign-in");
        browser.wait_for_text("main", "That token is not right.");
        browser.type_into("#token", "correct horse battery staple");
        browser.click("#sign-in");
        browser.wait_for_title("Overview · procbot");
        let overview = browser.wait_for_text("main", "2 procedures served");
        assert!(
            overview.contains("Acknowledgement coverage of current versions: 0% (0 of 6)"),
            "{overview}"
        );
        assert!(overview.contains("0% (0/4)"), "{overview}");
        browser.find("svg#chart rect");
        browser.click("a[href='/procedures/backup']");
        browser.wait_for_title("Back up the customer database · procbot");
        assert_eq!(browser.text("main h1"), "Back up the customer database");
        let page = browser.wait_for_text("main", "Log in to the backup console.");
        assert!(page.contains("sam@example.com"), "{page}");
        browser.click("a[href='/people']");
        browser.wait_for_text("#people", "Sam Ops");
    })
    .await
    .unwrap();
    app.stop().await;
}
