//! Secrets never reach the logs: a full `procbot serve` run at debug level, with every secret
//! configured and used (dashboard sign-in right and wrong, a signed webhook, a signed Slack
//! command answered through the fake Slack's Web API with the bot token, signed Discord
//! interactions with the bot token used against the fake Discord, readiness, metrics, the
//! evidence export), then its whole log searched for each secret and for the credentials that
//! arrive in payloads (a Slack `response_url`, a Discord interaction token).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::Stdio;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::helpers::{TestRepo, http_request, procbot_command, project_root};

/// The Discord public key is a real one, so that signed interactions verify.
fn secrets() -> Vec<(&'static str, String)> {
    vec![
        (
            "PROCBOT_SLACK__BOT_TOKEN",
            "xoxb-secret-bot-token-1111".into(),
        ),
        (
            "PROCBOT_SLACK__SIGNING_SECRET",
            "slack-signing-secret-2222".into(),
        ),
        (
            "PROCBOT_SLACK__APP_TOKEN",
            "xapp-secret-app-token-3333".into(),
        ),
        ("PROCBOT_DISCORD__TOKEN", "discord-secret-token-4444".into()),
        (
            "PROCBOT_DISCORD__PUBLIC_KEY",
            crate::discord_fake::public_key_hex(),
        ),
        ("PROCBOT_WEBHOOK__SECRET", "webhook-secret-5555".into()),
        ("PROCBOT_DASHBOARD__TOKEN", "dashboard-token-6666".into()),
    ]
}

/// Credentials that arrive in payloads: a Slack `response_url` (anyone holding it may answer
/// the command) and a Discord interaction token (it edits the interaction's messages).
const RESPONSE_URL: &str = "https://hooks.slack.com/commands/T0ACME/1/response-url-secret-7777";
const INTERACTION_TOKEN: &str = "discord-interaction-token-8888";

fn secret(name: &str) -> String {
    secrets().into_iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn a_full_run_at_debug_level_logs_no_secret() {
    let workdir = TestRepo::new();
    // Slack is the fake on loopback; nothing leaves this machine.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(crate::fake_slack::FakeSlack::start(
        crate::slack_app::slack_users(),
    ));
    let discord = runtime.block_on(crate::discord_fake::FakeDiscord::start());
    let mut command = procbot_command(&["serve"]);
    command
        .current_dir(workdir.path())
        .env("PROCBOT_SLACK__API_BASE_URL", fake.api_url())
        .env("PROCBOT_DISCORD__API_BASE_URL", discord.api_base_url())
        .env("PROCBOT_DISCORD__MODE", "http")
        .env("PROCBOT_HTTP__LISTEN", "127.0.0.1:0")
        .env(
            "PROCBOT_PROCEDURES__PATH",
            project_root().join("procedures"),
        )
        .env("PROCBOT_LOG__FORMAT", "json")
        .env("PROCBOT_LOG__LEVEL", "debug")
        .env("PROCBOT_SLACK__MODE", "http")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped());
    for (name, value) in secrets() {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    // Debug logging is plentiful: a thread drains stderr so the server never blocks on it.
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let mut address: Option<SocketAddr> = None;
    while address.is_none() {
        let Ok(line) = received.recv_timeout(std::time::Duration::from_secs(30)) else {
            panic!("the server never listened:\n{log}");
        };
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["message"] == "HTTP server listening"
        {
            address = event["address"].as_str().map(|a| a.parse().unwrap());
        }
        log.push_str(&line);
        log.push('\n');
    }
    let address = address.unwrap();

    // Use every secret the way its owner would.
    let dashboard = secret("PROCBOT_DASHBOARD__TOKEN");
    let dashboard = dashboard.as_str();
    for token in ["wrong", dashboard] {
        let body = format!("token={token}");
        http_request(
            address,
            "POST /login HTTP/1.1\r\ncontent-type: application/x-www-form-urlencoded",
            &body,
        );
    }
    let bearer = format!("GET /evidence?format=json HTTP/1.1\r\nAuthorization: Bearer {dashboard}");
    assert_eq!(http_request(address, &bearer, "").0, 200);
    let wrong_bearer = "GET /api/overview HTTP/1.1\r\nAuthorization: Bearer not-it";
    assert_eq!(http_request(address, wrong_bearer, "").0, 401);
    let push = r#"{"ref":"refs/heads/other","repository":{"full_name":"acme/procedures"}}"#;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret("PROCBOT_WEBHOOK__SECRET").as_bytes()).unwrap();
    mac.update(push.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (status, _) = http_request(
        address,
        &format!(
            "POST /webhooks/git HTTP/1.1\r\nx-github-event: push\r\nx-hub-signature-256: sha256={signature}\r\ncontent-type: application/json"
        ),
        push,
    );
    assert_eq!(
        status, 200,
        "a push to another branch is answered and ignored"
    );
    // A Slack command, signed with the signing secret, from someone only Slack knows: procbot
    // looks the account up with its bot token.
    let command_body = crate::slack_app::form(&[
        ("team_id", "T0ACME"),
        ("channel_id", "C0GENERAL"),
        ("user_id", "U0ZOE"),
        ("command", "/procedure"),
        ("text", "how do I back up the database?"),
        ("response_url", RESPONSE_URL),
        ("trigger_id", "1.2.3"),
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let (timestamp, signature) = crate::slack_app::sign(
        &secret("PROCBOT_SLACK__SIGNING_SECRET"),
        &now,
        &command_body,
    );
    let (status, answer) = http_request(
        address,
        &format!(
            "POST /slack/commands HTTP/1.1\r\nx-slack-request-timestamp: {timestamp}\r\nx-slack-signature: {signature}\r\ncontent-type: application/x-www-form-urlencoded"
        ),
        &command_body,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("Back up"), "{answer}");
    let bearer_used = fake.requests().iter().any(|r| {
        r.method == "users.info"
            && r.authorization.as_deref() == Some("Bearer xoxb-secret-bot-token-1111")
    });
    assert!(bearer_used, "the bot token was used: {:?}", fake.requests());
    // A Discord interaction signed with the application's key; procbot calls the fake
    // Discord with its bot token at start-up (the application and the command).
    let ping = r#"{"id":"1","application_id":"2","type":1,"token":"t","version":1}"#;
    let signature = crate::discord_fake::sign(&crate::discord_fake::signing_key(), &now, ping);
    let (status, answer) = http_request(
        address,
        &format!(
            "POST /discord/interactions HTTP/1.1\r\nx-signature-ed25519: {signature}\r\nx-signature-timestamp: {now}\r\ncontent-type: application/json"
        ),
        ping,
    );
    assert_eq!(status, 200, "{answer}");
    // A `/procedure help` command, with an interaction token of its own.
    let command = format!(
        r#"{{"id":"3","application_id":"2","type":2,"token":"{INTERACTION_TOKEN}","channel_id":"40","user":{{"id":"80351110224678912"}},"data":{{"name":"procedure","options":[{{"name":"help","type":1}}]}}}}"#
    );
    let signature = crate::discord_fake::sign(&crate::discord_fake::signing_key(), &now, &command);
    let (status, answer) = http_request(
        address,
        &format!(
            "POST /discord/interactions HTTP/1.1\r\nx-signature-ed25519: {signature}\r\nx-signature-timestamp: {now}\r\ncontent-type: application/json"
        ),
        &command,
    );
    assert_eq!(status, 200, "{answer}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !discord
        .recorded()
        .iter()
        .any(|r| r.authorization.as_deref() == Some("Bot discord-secret-token-4444"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the Discord token was never used"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(http_request(address, "GET /readyz HTTP/1.1", "").0, 200);
    assert_eq!(http_request(address, "GET /metrics HTTP/1.1", "").0, 200);

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    reader.join().unwrap();
    for line in received.try_iter() {
        log.push_str(&line);
        log.push('\n');
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{log}");
    assert!(
        log.contains("\"level\":\"DEBUG\""),
        "debug logging was on:\n{log}"
    );
    let payload_credentials = [
        ("the response_url", RESPONSE_URL.to_string()),
        ("the interaction token", INTERACTION_TOKEN.to_string()),
    ];
    for (name, value) in secrets().into_iter().chain(payload_credentials) {
        assert!(!log.contains(&value), "{name} appears in the log:\n{log}");
        assert!(!stdout.contains(&value), "{name} appears on stdout");
    }
}
