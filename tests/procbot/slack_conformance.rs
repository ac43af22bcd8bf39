//! Slack conformance, against Slack's own published shapes in `$PROCBOT_PLATFORM_FIXTURES`
//! (CI sets it to `../shared/fixtures`): the signed slash command of Slack's signing example,
//! real block actions, events and Socket Mode envelopes through procbot's endpoints, and every
//! Web API request procbot sent checked against Slack's OpenAPI spec. Without the variable
//! these tests say so and return; with it, a missing file is a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::TimeZone;
use procbot::config::SlackMode;
use serde_json::{Value, json};

use crate::fake_slack::{Failure, Recorded, platform_fixtures};
use crate::slack_app::{SlackApp, ack_buttons, form, text_of};

fn fixtures() -> Option<PathBuf> {
    let dir = platform_fixtures();
    if dir.is_none() {
        eprintln!(
            "PROCBOT_PLATFORM_FIXTURES is not set: Slack conformance against the platform fixtures not run here (CI runs it)"
        );
    }
    dir
}

fn read(dir: &Path, relative: &str) -> String {
    let path = dir.join("slack").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "the platform fixture {} is missing: {error}",
            path.display()
        )
    })
}

fn read_json(dir: &Path, relative: &str) -> Value {
    serde_json::from_str(&read(dir, relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Slack's signing example: secret, timestamp and signature of `slash_command.form.txt`.
const EXAMPLE_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const EXAMPLE_TIMESTAMP: i64 = 1_531_420_618;
const EXAMPLE_SIGNATURE: &str =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slacks_signed_example_command_and_real_payloads_are_answered() {
    let Some(dir) = fixtures() else { return };
    let at = chrono::Utc
        .timestamp_opt(EXAMPLE_TIMESTAMP + 20, 0)
        .unwrap();
    let app = SlackApp::spawn_at(SlackMode::Http, at, EXAMPLE_SECRET, |_| {}).await;

    // The slash command body exactly as Slack signed it in its documentation.
    let body = read(&dir, "payloads/http/slash_command.form.txt");
    let headers = [
        ("x-slack-request-timestamp", EXAMPLE_TIMESTAMP.to_string()),
        ("x-slack-signature", EXAMPLE_SIGNATURE.to_string()),
    ];
    let (status, answer) = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &headers,
            body.clone(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(
        text_of(&answer).contains("/procedure"),
        "an empty command shows help: {answer:#}"
    );
    // One byte changed, and Slack's signature no longer holds.
    let (status, _) = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &headers,
            body.replace("roadrunner", "roadrunnex"),
        )
        .await;
    assert_eq!(status, 401);

    // A real block_actions payload (a button in an App Home), signed as Slack signs.
    let payload = read(&dir, "payloads/interactivity/block_actions.button.json");
    let (status, _) = app
        .post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form(&[("payload", payload.trim())]),
        )
        .await;
    assert_eq!(status, 200);
    // A real view_submission: procbot opens no modals, so it is acknowledged and ignored.
    let payload = read(&dir, "payloads/interactivity/view_submission.json");
    let (status, _) = app
        .post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form(&[("payload", payload.trim())]),
        )
        .await;
    assert_eq!(status, 200);

    // Real Events API bodies.
    let challenge = read_json(&dir, "payloads/events/url_verification.json");
    let (status, answer) = app
        .post_signed("/slack/events", "application/json", challenge.to_string())
        .await;
    assert_eq!(status, 200);
    assert!(answer.contains(challenge["challenge"].as_str().unwrap()));
    for event in [
        "app_mention.json",
        "message.channels.json",
        "app_home_opened.json",
    ] {
        let body = read(&dir, &format!("payloads/events/{event}"));
        let (status, answer) = app
            .post_signed("/slack/events", "application/json", body)
            .await;
        assert_eq!(status, 200, "{event}: {answer}");
    }
    // The mention is answered in its thread; the Home tab opened is published.
    app.fake
        .wait_for("the answer to the real mention", |requests| {
            requests
                .iter()
                .any(|r| r.method == "chat.postMessage" && r.args.get("thread_ts").is_some())
        })
        .await;
    app.fake
        .wait_for("the real app_home_opened's Home tab", |requests| {
            requests.iter().any(|r| r.method == "views.publish")
        })
        .await;
    // The inner event of a DM, wrapped as Slack wraps it, is answered in the DM.
    let inner = read_json(&dir, "payloads/events/message.im.event.json");
    let channel = inner["channel"].as_str().unwrap().to_string();
    let (status, _) = app.event("EvIM", inner).await;
    assert_eq!(status, 200);
    app.fake
        .wait_for("the answer to the real DM", |requests| {
            requests
                .iter()
                .any(|r| r.method == "chat.postMessage" && r.args["channel"] == channel.as_str())
        })
        .await;

    // Slack SDKs' field-union samples (every field ever seen, placeholder values): signed and
    // sent, they get an answer, never a crash, and the server keeps serving.
    for (sample, path, content_type) in [
        ("BlockActionPayload.json", "/slack/interactions", "form"),
        ("ViewSubmissionPayload.json", "/slack/interactions", "form"),
        ("AppMentionPayload.json", "/slack/events", "json"),
        ("AppHomeOpenedPayload.json", "/slack/events", "json"),
        ("MessagePayload.json", "/slack/events", "json"),
        ("SlashCommandPayload.json", "/slack/commands", "form-fields"),
    ] {
        let text = read(&dir, &format!("payloads/java-sdk-samples/{sample}"));
        let (body, content_type) = match content_type {
            "form" => (
                form(&[("payload", text.trim())]),
                "application/x-www-form-urlencoded",
            ),
            "form-fields" => {
                let fields: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
                let pairs: Vec<(String, String)> = fields
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect();
                let pairs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                (form(&pairs), "application/x-www-form-urlencoded")
            }
            _ => (text, "application/json"),
        };
        let (status, answer) = app.post_signed(path, content_type, body).await;
        assert!(matches!(status, 200 | 400), "{sample}: {status} {answer}");
    }
    let (status, _) = crate::slack_app::reqwest_like::Request::post(
        app.address,
        "/healthz",
        "text/plain",
        String::new(),
    )
    .send()
    .await;
    assert_eq!(status, 405, "still serving (healthz is GET only)");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slacks_real_socket_mode_envelopes_are_acknowledged() {
    let Some(dir) = fixtures() else { return };
    let app = SlackApp::spawn(SlackMode::Socket).await;
    app.fake.wait_for_socket(1).await;
    for envelope in [
        "slash_commands.json",
        "events_api.app_mention.json",
        "events_api.message.json",
        "interactive.shortcut.json",
        "interactive.block_actions.json",
    ] {
        let envelope = read_json(&dir, &format!("payloads/socket_mode/{envelope}"));
        let id = envelope["envelope_id"].as_str().unwrap().to_string();
        assert!(app.fake.push_envelope(&envelope).await);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(ack) = app
                .fake
                .socket_acks()
                .into_iter()
                .find(|a| a["envelope_id"] == id.as_str())
            {
                if envelope["type"] == "slash_commands" {
                    assert_eq!(ack["payload"]["response_type"], "ephemeral", "{ack:#}");
                }
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} was not acknowledged"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Slack's own disconnect message: procbot opens a new connection.
    let disconnect = read_json(&dir, "payloads/socket_mode/disconnect.json");
    assert!(app.fake.push_envelope(&disconnect).await);
    app.fake.wait_for_socket(2).await;
    app.stop().await;
}

/// Checks one Web API request against the method's operation in Slack's OpenAPI 2.0 spec:
/// the method exists, the content type is one it consumes, every required argument is there,
/// every argument is one it documents, with the documented type.
fn violations(spec: &Value, request: &Recorded) -> Vec<String> {
    let mut problems = Vec::new();
    let name = &request.method;
    let Some(path) = spec["paths"].get(format!("/{name}")) else {
        return vec![format!("{name}: no such method in Slack's Web API spec")];
    };
    let verb = request.http_method.to_lowercase();
    // The spec gives each method one verb; Slack's Web API takes any method as POST with a
    // form or JSON body too, so a POST is checked against the documented operation.
    let operation = match path.get(&verb) {
        Some(operation) => operation,
        None if verb == "post" => match path.as_object().and_then(|ops| ops.values().next()) {
            Some(operation) => operation,
            None => return vec![format!("{name}: no operation")],
        },
        None => return vec![format!("{name}: {verb} is not documented")],
    };
    let consumes: Vec<&str> = operation["consumes"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if verb == "post" {
        let sent = request
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        if !consumes.contains(&sent) {
            problems.push(format!(
                "{name}: sent {sent}, the method consumes {consumes:?}"
            ));
        }
    }
    let parameters = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let args = request.args.as_object().cloned().unwrap_or_default();
    let json_body = request.content_type.starts_with("application/json");
    for parameter in &parameters {
        let pname = parameter["name"].as_str().unwrap_or_default();
        let required = parameter["required"].as_bool().unwrap_or(false);
        if pname == "token" {
            // The token travels as `Authorization: Bearer`, as Slack recommends.
            if required
                && !request
                    .authorization
                    .as_deref()
                    .is_some_and(|a| a.starts_with("Bearer x"))
            {
                problems.push(format!("{name}: no bearer token"));
            }
            continue;
        }
        let Some(value) = args.get(pname) else {
            if required {
                problems.push(format!(
                    "{name}: the required argument `{pname}` is missing"
                ));
            }
            continue;
        };
        let kind = parameter["type"].as_str().unwrap_or("string");
        let fits = match (kind, value) {
            ("string", Value::String(_)) => true,
            // A JSON body carries structured arguments (blocks, a view) as JSON themselves;
            // the form encoding the spec describes sends them JSON-encoded as strings.
            ("string", Value::Array(_) | Value::Object(_)) => json_body,
            ("boolean", Value::Bool(_)) => true,
            ("boolean", Value::String(text)) => {
                matches!(text.as_str(), "true" | "false" | "1" | "0")
            }
            ("integer" | "number", Value::Number(_)) => true,
            ("integer" | "number", Value::String(text)) => text.parse::<f64>().is_ok(),
            _ => false,
        };
        if !fits {
            problems.push(format!("{name}: `{pname}` should be {kind}, was {value}"));
        }
    }
    for key in args.keys() {
        if !parameters.iter().any(|p| p["name"] == key.as_str()) {
            problems.push(format!(
                "{name}: `{key}` is not an argument Slack documents"
            ));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_procbot_sends_matches_slacks_web_api_spec() {
    let Some(dir) = fixtures() else { return };
    let spec = read_json(&dir, "openapi/slack_web_openapi_v2.json");
    // A tour of everything procbot does in Slack: welcome DMs (one found by email, one
    // rate limited first), a click and its update, a command, a mention answered in public
    // and one in private, a DM from someone only Slack knows, the Home tab.
    let app = SlackApp::spawn_with(SlackMode::Http, |fake| {
        fake.fail_next("chat.postMessage", Failure::RateLimited(1));
        // A failure after which the message may have arrived: procbot reads the DM back.
        fake.fail_next("chat.postMessage", Failure::ServerError);
        fake.fail_next("users.info", Failure::ApiError("user_not_found"));
    })
    .await;
    for _ in 0..50 {
        if app.fake.posted_to("U0SAM").len() == 1
            && app.fake.posted_to("U0ANA").len() == 1
            && app.fake.posted_to("U0CTO").len() == 1
            && app.fake.posted_to("U0IDA").len() == 1
        {
            break;
        }
        app.clock.advance(chrono::Duration::seconds(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = app.fake.posted_to("U0SAM").remove(0);
    let button = ack_buttons(&delivered.args)[0].clone();
    app.click("U0SAM", &delivered.channel, &delivered.ts, &button)
        .await;
    app.slash_command("U0IDA", "backup").await;
    app.slash_command("U0NOBODY", "list").await;
    app.event("Ev1", json!({"type": "app_mention", "user": "U0IDA", "text": "<@UBOT> backup", "ts": "1700000001.000100", "channel": "C0GENERAL", "event_ts": "1700000001.000100"})).await;
    app.event("Ev2", json!({"type": "app_mention", "user": "U0CTO", "text": "<@UBOT> run payroll", "ts": "1700000002.000100", "channel": "C0GENERAL", "event_ts": "1700000002.000100"})).await;
    app.event("Ev3", json!({"type": "message", "channel": "D0ZOE", "user": "U0ZOE", "text": "help", "ts": "1700000003.000100", "event_ts": "1700000003.000100", "channel_type": "im"})).await;
    app.event("Ev4", json!({"type": "app_home_opened", "user": "U0IDA", "channel": "D0IDA", "tab": "home", "event_ts": "1700000004.000100"})).await;
    app.fake
        .wait_for("every kind of call", |requests| {
            [
                "auth.test",
                "chat.postMessage",
                "chat.update",
                "chat.postEphemeral",
                "users.lookupByEmail",
                "users.info",
                "views.publish",
            ]
            .iter()
            .all(|m| requests.iter().any(|r| r.method == *m))
                && requests
                    .iter()
                    .any(|r| r.method == "chat.postMessage" && r.args["channel"] == "D0ZOE")
        })
        .await;
    let mut requests: Vec<Recorded> = app.fake.requests();
    app.stop().await;
    // And Socket Mode's connection request.
    let socket = SlackApp::spawn(SlackMode::Socket).await;
    socket.fake.wait_for_socket(1).await;
    requests.extend(socket.fake.requests());
    socket.stop().await;
    let mut problems = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    for request in requests.iter().filter(|r| r.method != "respond") {
        if request.method == "apps.connections.open" {
            // Newer than the published spec: documented as a POST with the app-level token
            // and no arguments.
            assert_eq!(request.http_method, "POST");
            assert!(
                request
                    .authorization
                    .as_deref()
                    .is_some_and(|a| a.starts_with("Bearer xapp-"))
            );
            continue;
        }
        checked.insert(request.method.clone());
        problems.extend(violations(&spec, request));
    }
    assert!(
        problems.is_empty(),
        "requests that do not match Slack's spec:\n{}",
        problems.join("\n")
    );
    // Every method procbot called is one whose scopes the app manifest asks for, and the
    // tour called them all.
    let declared: std::collections::BTreeSet<String> = procbot::adapters::slack::api::METHOD_SCOPES
        .iter()
        .map(|(method, _)| method.to_string())
        .collect();
    assert_eq!(checked, declared);
}

#[test]
fn the_validator_catches_what_slack_would_refuse() {
    let Some(dir) = fixtures() else { return };
    let spec = read_json(&dir, "openapi/slack_web_openapi_v2.json");
    let request = |method: &str, args: Value| Recorded {
        method: method.to_string(),
        http_method: "POST".to_string(),
        content_type: "application/json; charset=utf-8".to_string(),
        authorization: Some("Bearer xoxb-1".to_string()),
        args,
    };
    assert!(
        violations(
            &spec,
            &request("chat.postMessage", json!({"channel": "C1", "text": "hi"}))
        )
        .is_empty()
    );
    assert!(
        !violations(&spec, &request("chat.postMessage", json!({"text": "hi"}))).is_empty(),
        "channel is required"
    );
    assert!(
        !violations(
            &spec,
            &request(
                "chat.postMessage",
                json!({"channel": "C1", "unfurl_links": "maybe"})
            )
        )
        .is_empty()
    );
    assert!(
        !violations(
            &spec,
            &request("chat.postMessage", json!({"channel": "C1", "chanel": "C1"}))
        )
        .is_empty()
    );
    assert!(
        !violations(&spec, &request("chat.update", json!({"channel": "C1"}))).is_empty(),
        "ts is required"
    );
    assert!(!violations(&spec, &request("chat.postMesage", json!({}))).is_empty());
    let mut no_token = request("auth.test", json!({}));
    no_token.authorization = None;
    assert!(!violations(&spec, &no_token).is_empty());
    let mut form_only = request("users.lookupByEmail", json!({"email": "a@example.com"}));
    form_only.content_type = "application/json".into();
    assert!(
        !violations(&spec, &form_only).is_empty(),
        "lookupByEmail takes no JSON body"
    );
}
