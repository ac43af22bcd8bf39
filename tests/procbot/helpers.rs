//! Shared test helpers: temporary repositories, procedure text builders, running the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::NaiveDate;

/// The date the tests check "as of", so overdue reviews do not depend on the calendar.
pub(crate) const TODAY: &str = "2026-12-01";

pub(crate) fn today() -> NaiveDate {
    NaiveDate::parse_from_str(TODAY, "%Y-%m-%d").unwrap()
}

pub(crate) const DIRECTORY: &str = "teams:\n  it-ops: [it-lead@example.com, sam@example.com]\n  engineering: [cto@example.com, ana@example.com]\npeople:\n  it-lead@example.com: { name: Ida Lead, manager: cto@example.com, tz: Europe/Berlin }\n  sam@example.com: { name: Sam Ops }\n  cto@example.com: { name: Chidi Okafor }\n";

/// The fields of a clean procedure, in order, as (key, value) pairs.
pub(crate) fn clean_fields(id: &str) -> Vec<(String, String)> {
    [
        ("id", id),
        ("title", "Back up the customer database"),
        ("summary", "Take the nightly backup and verify it."),
        ("owner", "it-lead@example.com"),
        ("audience", "[it-ops, engineering]"),
        ("classification", "internal"),
        ("version", "1.2.0"),
        ("last_reviewed", "2026-06-01"),
        ("review_every", "12 months"),
        ("controls", "[A.8.13]"),
        ("keywords", "[backup, snapshot]"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub(crate) const CLEAN_BODY: &str = "\n# Back up the customer database\n\n## Purpose\nKeep customer data recoverable.\n\n## Steps\n1. Log in to the backup console.\n2. Start a full backup of the customer-db job.\n   - Wait for it to finish.\n3. Check the report.\n\n## Records\nThe backup report in the ISMS folder.\n";

/// A procedure file from fields and a body.
pub(crate) fn procedure_text(fields: &[(String, String)], body: &str) -> String {
    let mut text = String::from("---\n");
    for (key, value) in fields {
        text.push_str(&format!("{key}: {value}\n"));
    }
    text.push_str("---\n");
    text.push_str(body);
    text
}

/// A clean procedure with one field replaced (`Some`) or removed (`None`).
pub(crate) fn procedure_with(id: &str, field: &str, value: Option<&str>) -> String {
    let mut fields = clean_fields(id);
    match value {
        Some(value) => match fields.iter_mut().find(|(k, _)| k == field) {
            Some(entry) => entry.1 = value.to_string(),
            None => fields.push((field.to_string(), value.to_string())),
        },
        None => fields.retain(|(k, _)| k != field),
    }
    procedure_text(&fields, CLEAN_BODY)
}

pub(crate) fn clean_procedure(id: &str) -> String {
    procedure_with(id, "id", Some(id))
}

/// A temporary procedures repository on disk.
pub(crate) struct TestRepo {
    pub(crate) dir: tempfile::TempDir,
}

impl TestRepo {
    pub(crate) fn new() -> TestRepo {
        TestRepo {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn write(&self, relative: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }
}

/// Runs the procbot binary with `args` and no inherited `PROCBOT_*` configuration.
pub(crate) fn procbot(args: &[&str]) -> Output {
    procbot_command(args).output().unwrap()
}

pub(crate) fn procbot_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_procbot"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("PROCBOT_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

pub(crate) fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The repository root of this project.
pub(crate) fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A minimal HTTP/1.1 request on loopback: returns the status code and the body.
pub(crate) fn http_request(
    address: std::net::SocketAddr,
    request_head: &str,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{request_head}\r\nHost: localhost\r\nConnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

pub(crate) fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    http_request(address, &format!("GET {path} HTTP/1.1"), "")
}

/// A `procbot serve` application running in this test's runtime.
pub(crate) struct TestApp {
    pub(crate) address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Builds and starts the application on a loopback port chosen by the system.
pub(crate) async fn spawn_app(mut config: procbot::config::Config) -> TestApp {
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    if config.database.url == procbot::config::DatabaseConfig::default().url {
        // Beside the state file, never in the project folder.
        config.database.url = procbot::config::DatabaseUrl::Sqlite(format!(
            "sqlite://{}",
            config
                .procedures
                .state_file
                .with_file_name("procbot.db")
                .display()
        ));
    }
    let application = procbot::startup::Application::build(
        config,
        std::sync::Arc::new(procbot::clock::SystemClock),
    )
    .await
    .unwrap();
    let address = application.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        stop,
        server,
    }
}

impl TestApp {
    /// Asks for a graceful shutdown and waits for it.
    pub(crate) async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// A `procbot serve` process: started with the given environment (and no inherited
/// `PROCBOT_*`), its JSON log collected as it runs, stopped with a signal.
pub(crate) struct ServeProcess {
    pub(crate) child: std::process::Child,
    pub(crate) address: std::net::SocketAddr,
    lines: std::sync::mpsc::Receiver<String>,
    pub(crate) log: String,
}

impl ServeProcess {
    /// Starts `procbot serve` in `workdir` with `env`, and waits until it listens.
    pub(crate) fn start(workdir: &Path, env: &[(&str, String)]) -> ServeProcess {
        use std::io::BufRead;
        let mut command = procbot_command(&["serve"]);
        command
            .current_dir(workdir)
            .env("PROCBOT_HTTP__LISTEN", "127.0.0.1:0")
            .env("PROCBOT_LOG__FORMAT", "json")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = String::new();
        loop {
            let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(60)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("procbot serve never listened:\n{log}");
            };
            log.push_str(&line);
            log.push('\n');
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "HTTP server listening"
                && let Some(address) = event["address"].as_str()
            {
                return ServeProcess {
                    child,
                    address: address.parse().unwrap(),
                    lines,
                    log,
                };
            }
        }
    }

    /// The log so far.
    pub(crate) fn log(&mut self) -> &str {
        for line in self.lines.try_iter() {
            self.log.push_str(&line);
            self.log.push('\n');
        }
        &self.log
    }

    /// Sends `signal` (`KILL`, `TERM`) and waits for the process to end.
    pub(crate) fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        self.log();
        exit
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
