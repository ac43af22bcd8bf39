//! `SlackApp`: `procbot serve` with Slack configured as an operator would, pointed at the fake
//! Slack through `slack.api_base_url`, over a folder of procedures, a fresh database and a
//! manual clock. Tests talk to it as Slack does: signed HTTP posts and Socket Mode envelopes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use procbot::clock::{Clock, ManualClock};
use procbot::config::{BaseUrl, Config, DatabaseUrl, SlackMode};
use procbot::store::Store;
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::db::TestDb;
use crate::fake_slack::{FakeSlack, FakeUser};
use crate::helpers::{TestRepo, procedure_text};

pub(crate) const SIGNING_SECRET: &str = "slack-signing-secret-for-tests";
pub(crate) const WEBHOOK_SECRET: &str = "git-webhook-secret-for-tests";
pub(crate) const BOT_TOKEN: &str = "xoxb-test-bot-token";
pub(crate) const APP_TOKEN: &str = "xapp-test-app-token";

pub(crate) const DIRECTORY: &str = "teams:
  it-ops: [it-lead@example.com, sam@example.com]
  engineering: [cto@example.com, ana@example.com]
people:
  it-lead@example.com: { name: Ida Lead, slack: U0IDA, manager: cto@example.com, tz: Europe/Berlin }
  sam@example.com: { name: Sam Ops }
  cto@example.com: { name: Chidi Okafor, slack: U0CTO }
  ana@example.com: { name: Ana Costa, slack: U0ANA }
";

/// Slack accounts: Sam has no id in the directory and is found by email; Zoe is in Slack
/// but not in the directory.
pub(crate) fn slack_users() -> Vec<FakeUser> {
    vec![
        FakeUser {
            id: "U0SAM",
            email: "sam@example.com",
            tz: "America/New_York",
        },
        FakeUser {
            id: "U0ZOE",
            email: "zoe@example.com",
            tz: "Europe/Dublin",
        },
    ]
}

pub(crate) fn procedure(
    id: &str,
    title: &str,
    audience: &str,
    classification: &str,
    version: &str,
    steps: &[&str],
) -> String {
    let fields: Vec<(String, String)> = [
        ("id", id),
        ("title", title),
        ("summary", &format!("{title}, step by step.")),
        ("owner", "it-lead@example.com"),
        ("audience", audience),
        ("classification", classification),
        ("version", version),
        ("last_reviewed", "2026-06-01"),
        ("keywords", "[backup, restore]"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let steps: String = steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}. {s}\n", i + 1))
        .collect();
    procedure_text(
        &fields,
        &format!("# {title}\n\n## Purpose\nKeep {id} safe.\n\n## Steps\n{steps}"),
    )
}

pub(crate) fn backup(version: &str, step: &str) -> String {
    procedure(
        "backup",
        "Back up the customer database",
        "[it-ops]",
        "internal",
        version,
        &["Start the backup job.", step],
    )
}

pub(crate) fn payroll(version: &str) -> String {
    procedure(
        "payroll",
        "Run payroll",
        "[engineering]",
        "confidential",
        version,
        &["Export the hours.", "Send the payroll file."],
    )
}

pub(crate) struct SlackApp {
    pub(crate) fake: FakeSlack,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) address: SocketAddr,
    pub(crate) repo: TestRepo,
    pub(crate) db: TestDb,
    signing_secret: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data: tempfile::TempDir,
}

impl SlackApp {
    pub(crate) async fn spawn(mode: SlackMode) -> SlackApp {
        SlackApp::spawn_with(mode, |_| {}).await
    }

    pub(crate) async fn spawn_with(mode: SlackMode, adjust: impl FnOnce(&FakeSlack)) -> SlackApp {
        // Working hours on a Tuesday morning, so nothing waits for the next working day.
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        SlackApp::spawn_at(mode, at, SIGNING_SECRET, adjust).await
    }

    /// An app whose clock starts at `at` and whose signing secret is `signing_secret`.
    pub(crate) async fn spawn_at(
        mode: SlackMode,
        at: chrono::DateTime<Utc>,
        signing_secret: &str,
        adjust: impl FnOnce(&FakeSlack),
    ) -> SlackApp {
        let fake = FakeSlack::start(slack_users()).await;
        SlackApp::spawn_on(fake, mode, at, signing_secret, adjust).await
    }

    /// An app whose Slack is reached through a proxy that can drop connections.
    pub(crate) async fn spawn_behind_proxy(adjust: impl FnOnce(&FakeSlack)) -> SlackApp {
        let fake = FakeSlack::start_behind_proxy(slack_users()).await;
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        SlackApp::spawn_on(fake, SlackMode::Http, at, SIGNING_SECRET, adjust).await
    }

    async fn spawn_on(
        fake: FakeSlack,
        mode: SlackMode,
        at: chrono::DateTime<Utc>,
        signing_secret: &str,
        adjust: impl FnOnce(&FakeSlack),
    ) -> SlackApp {
        adjust(&fake);
        let repo = TestRepo::new();
        repo.write("directory.yaml", DIRECTORY);
        repo.write("backup.md", backup("1.0.0", "Check the report."));
        repo.write("payroll.md", payroll("1.0.0"));
        let data = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite();
        let mut config = Config::default();
        config.procedures.path = repo.path().to_path_buf();
        config.procedures.state_file = data.path().join("state.json");
        config.database.url = DatabaseUrl::Sqlite(db.url.clone());
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.webhook.secret = Some(SecretString::from(WEBHOOK_SECRET));
        config.slack.mode = mode;
        config.slack.bot_token = Some(SecretString::from(BOT_TOKEN));
        config.slack.app_token = Some(SecretString::from(APP_TOKEN));
        config.slack.signing_secret = Some(SecretString::from(signing_secret.to_string()));
        config.slack.api_base_url = Some(BaseUrl(url::Url::parse(&fake.api_url()).unwrap()));
        config.procedures.web_url = Some(procbot::config::WebUrlTemplate(
            "https://git.example.com/acme/procedures/src/branch/main/{path}".into(),
        ));
        let clock = Arc::new(ManualClock::new(at));
        let application = procbot::startup::Application::build(config, clock.clone())
            .await
            .unwrap();
        let address = application.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        SlackApp {
            fake,
            clock,
            address,
            repo,
            db,
            signing_secret: signing_secret.to_string(),
            stop,
            server,
            _data: data,
        }
    }

    pub(crate) async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.db.finish().await;
    }

    pub(crate) fn clock_now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// Chat lookups recorded in the ledger so far.
    pub(crate) async fn lookups_recorded(&self) -> i64 {
        let store = self.store().await;
        let counts = store.ledger_counts().await.unwrap();
        store.close().await;
        counts.get("lookup").copied().unwrap_or(0)
    }

    pub(crate) async fn store(&self) -> Store {
        self.db.store().await
    }

    /// Slack's signature of `body` at the clock's time.
    pub(crate) fn signature(&self, body: &str) -> (String, String) {
        sign(
            &self.signing_secret,
            &self.clock.now().timestamp().to_string(),
            body,
        )
    }

    /// A POST with the given headers; the status and body of the answer.
    pub(crate) async fn post(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> (u16, String) {
        let mut request = reqwest_like::Request::post(self.address, path, content_type, body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await
    }

    /// A correctly signed POST, as Slack sends it.
    pub(crate) async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: String,
    ) -> (u16, String) {
        let (timestamp, signature) = self.signature(&body);
        self.post(
            path,
            content_type,
            &[
                ("x-slack-request-timestamp", timestamp),
                ("x-slack-signature", signature),
            ],
            body,
        )
        .await
    }

    /// `/procedure <text>` typed by `user`, over HTTP.
    pub(crate) async fn slash_command(&self, user: &str, text: &str) -> (u16, String) {
        let body = form(&[
            ("token", "verification-token-unused"),
            ("team_id", "T0ACME"),
            ("team_domain", "acme"),
            ("channel_id", "C0GENERAL"),
            ("channel_name", "general"),
            ("user_id", user),
            ("user_name", "someone"),
            ("command", "/procedure"),
            ("text", text),
            ("api_app_id", "A0PROCBOT"),
            ("response_url", &self.fake.response_url("cmd")),
            ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
        ]);
        self.post_signed("/slack/commands", "application/x-www-form-urlencoded", body)
            .await
    }

    /// `user` clicks the button `action_id` on the message `channel:ts`.
    pub(crate) async fn click(
        &self,
        user: &str,
        channel: &str,
        ts: &str,
        action_id: &str,
    ) -> (u16, String) {
        let payload = block_actions(
            user,
            channel,
            ts,
            action_id,
            &self.fake.response_url("click"),
        );
        let body = form(&[("payload", &payload.to_string())]);
        self.post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body,
        )
        .await
    }

    /// An Events API envelope around `event`.
    pub(crate) async fn event(&self, event_id: &str, event: Value) -> (u16, String) {
        let body = event_callback(event_id, event).to_string();
        self.post_signed("/slack/events", "application/json", body)
            .await
    }

    /// Changes the procedures and announces them, as a signed push webhook makes procbot do.
    pub(crate) async fn push(&self, file: &str, text: &str) {
        self.repo.write(file, text);
        let body =
            json!({"ref": "refs/heads/main", "after": "0123456789abcdef0123456789abcdef01234567"})
                .to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex(&mac.finalize().into_bytes()));
        let (status, answer) = self
            .post(
                "/webhooks/git",
                "application/json",
                &[
                    ("x-hub-signature-256", signature),
                    ("x-github-event", "push".to_string()),
                ],
                body,
            )
            .await;
        assert!(status == 202 || status == 200, "{status} {answer}");
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn sign(secret: &str, timestamp: &str, body: &str) -> (String, String) {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    (
        timestamp.to_string(),
        format!("v0={}", hex(&mac.finalize().into_bytes())),
    )
}

pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// A `block_actions` payload for a button in a message, shaped as Slack sends it.
pub(crate) fn block_actions(
    user: &str,
    channel: &str,
    ts: &str,
    action_id: &str,
    response_url: &str,
) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": "T0ACME"},
        "api_app_id": "A0PROCBOT",
        "token": "verification-token-unused",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
        "trigger_id": "12466734323.1395872398.8ad4e5f81f3c58dd4a1c5a2bea0c7e18",
        "team": {"id": "T0ACME", "domain": "acme"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": channel, "name": "directmessage"},
        "message": {"type": "message", "user": "UBOT", "ts": ts, "text": "procbot"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [{
            "action_id": action_id,
            "block_id": "b1",
            "text": {"type": "plain_text", "text": "Acknowledge", "emoji": true},
            "value": action_id,
            "style": "primary",
            "type": "button",
            "action_ts": "1700000100.000200"
        }]
    })
}

/// An Events API `event_callback` envelope, shaped as Slack sends it.
pub(crate) fn event_callback(event_id: &str, event: Value) -> Value {
    json!({
        "token": "verification-token-unused",
        "team_id": "T0ACME",
        "api_app_id": "A0PROCBOT",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1700000000,
        "authorizations": [{"enterprise_id": null, "team_id": "T0ACME", "user_id": "UBOT", "is_bot": true, "is_enterprise_install": false}],
        "is_ext_shared_channel": false,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0"
    })
}

/// The procedure ids of the Acknowledge buttons in a Slack request's blocks.
pub(crate) fn ack_buttons(args: &Value) -> Vec<String> {
    let blocks = blocks_of(args);
    blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["action_id"].as_str().map(str::to_string))
        .filter(|a| a.starts_with("ack/"))
        .collect()
}

/// A request's blocks, whether sent as JSON or as a JSON-encoded form field.
pub(crate) fn blocks_of(args: &Value) -> Vec<Value> {
    match &args["blocks"] {
        Value::Array(blocks) => blocks.clone(),
        Value::String(text) => serde_json::from_str(text).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Every text of a request's blocks, joined: what a person reads.
pub(crate) fn text_of(args: &Value) -> String {
    fn collect(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(text)) = map.get("text") {
                    out.push_str(text);
                    out.push('\n');
                }
                for (key, inner) in map {
                    if key != "text" || !inner.is_string() {
                        collect(inner, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    collect(&Value::Array(blocks_of(args)), &mut out);
    out
}

/// A minimal HTTP/1.1 client on loopback (the project has no HTTP client crate for tests).
pub(crate) mod reqwest_like {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub(crate) struct Request {
        address: SocketAddr,
        head: String,
        body: String,
    }

    impl Request {
        pub(crate) fn post(
            address: SocketAddr,
            path: &str,
            content_type: &str,
            body: String,
        ) -> Request {
            Request {
                address,
                head: format!(
                    "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\ncontent-type: {content_type}\r\n"
                ),
                body,
            }
        }

        pub(crate) fn header(mut self, name: &str, value: &str) -> Request {
            self.head.push_str(&format!("{name}: {value}\r\n"));
            self
        }

        pub(crate) async fn send(self) -> (u16, String) {
            let mut stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
            let request = format!("{}content-length: {}\r\n\r\n", self.head, self.body.len());
            stream.write_all(request.as_bytes()).await.unwrap();
            // The server may refuse before reading an oversized body; that is an answer too.
            let _ = stream.write_all(self.body.as_bytes()).await;
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response).await;
            let response = String::from_utf8_lossy(&response).into_owned();
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
    }
}
