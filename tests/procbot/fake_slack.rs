//! A fake Slack on loopback: the Web API methods procbot calls (answered in the shapes of
//! Slack's documented responses, or with the very responses in the platform fixtures when
//! `PROCBOT_PLATFORM_FIXTURES` is set), `response_url`s, and a Socket Mode websocket. It
//! records every request and every Socket Mode acknowledgement, and fails on command.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// One request the bot made.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    /// The Web API method (`chat.postMessage`), or `respond` for a `response_url`.
    pub(crate) method: String,
    pub(crate) http_method: String,
    pub(crate) content_type: String,
    pub(crate) authorization: Option<String>,
    /// The arguments: the JSON body, or the form/query fields as strings.
    pub(crate) args: Value,
}

/// What the fake answers instead of success, once per scripted failure.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    /// HTTP 429 with `Retry-After` seconds and Slack's `ratelimited` body.
    RateLimited(u64),
    /// HTTP 500.
    ServerError,
    /// `{"ok": false, "error": code}` with HTTP 200.
    ApiError(&'static str),
    /// A normal answer, this much later.
    Slow(Duration),
    /// Slack takes the request (a message is posted) but its answer comes this much later:
    /// a sender that dies meanwhile never learns it was delivered.
    AnswerLost(Duration),
}

/// A Slack account the fake knows.
#[derive(Clone, Debug)]
pub(crate) struct FakeUser {
    pub(crate) id: &'static str,
    pub(crate) email: &'static str,
    pub(crate) tz: &'static str,
}

#[derive(Default)]
struct State0 {
    requests: Vec<Recorded>,
    failures: BTreeMap<String, VecDeque<Failure>>,
    users: Vec<FakeUser>,
    next_ts: u64,
    socket_acks: Vec<Value>,
    connections_opened: usize,
    /// Messages posted: (the channel asked for, the channel it landed in, ts, arguments).
    posted: Vec<Posted>,
    /// A workspace-wide limit on `chat.postMessage`, as Slack enforces: a token bucket of
    /// (per second, tokens left, last refill); posts beyond it get 429.
    post_limit: Option<(f64, f64, std::time::Instant)>,
    rate_limited: usize,
}

/// A message the fake accepted.
#[derive(Clone, Debug)]
pub(crate) struct Posted {
    pub(crate) asked: String,
    pub(crate) channel: String,
    pub(crate) ts: String,
    pub(crate) args: Value,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State0>>,
    ws_address: SocketAddr,
    /// Envelopes to push to the connected Socket Mode client.
    envelopes: Arc<tokio::sync::Mutex<Option<mpsc::UnboundedSender<WsMessage>>>>,
}

pub(crate) struct FakeSlack {
    pub(crate) address: SocketAddr,
    shared: Shared,
    /// Where procbot reaches the Web API: the fake itself, or a proxy in front of it that
    /// can drop connections.
    api_address: SocketAddr,
    drops: Arc<std::sync::atomic::AtomicUsize>,
}

/// The platform fixtures folder, when the conformance environment names one.
pub(crate) fn platform_fixtures() -> Option<PathBuf> {
    std::env::var_os("PROCBOT_PLATFORM_FIXTURES").map(PathBuf::from)
}

/// A documented success response of `method`: from the fixtures when available, else the
/// fake's own copy of its shape.
fn documented_response(method: &str) -> Value {
    if let Some(dir) = platform_fixtures() {
        let path = dir.join(format!("slack/payloads/api/{method}.json"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        }
    }
    match method {
        "auth.test" => {
            json!({"ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "procbot", "team_id": "T0ACME", "user_id": "UBOT"})
        }
        "chat.postMessage" => {
            json!({"ok": true, "channel": "C0", "ts": "0", "message": {"type": "message", "text": "", "bot_id": "B1", "ts": "0"}})
        }
        "chat.update" => {
            json!({"ok": true, "channel": "C0", "ts": "0", "text": "", "message": {"text": "", "user": "UBOT"}})
        }
        "views.publish" => {
            json!({"ok": true, "view": {"id": "V1", "type": "home", "blocks": [], "team_id": "T0ACME", "app_id": "A1", "bot_id": "B1", "hash": "1.2"}})
        }
        _ => json!({"ok": true}),
    }
}

impl FakeSlack {
    pub(crate) async fn start(users: Vec<FakeUser>) -> FakeSlack {
        let ws_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws_address = ws_listener.local_addr().unwrap();
        let shared = Shared {
            state: Arc::new(Mutex::new(State0 {
                users,
                next_ts: 1,
                ..State0::default()
            })),
            ws_address,
            envelopes: Arc::new(tokio::sync::Mutex::new(None)),
        };
        tokio::spawn(serve_socket_mode(ws_listener, shared.clone()));
        let app = Router::new()
            .route("/api/{method}", any(web_api))
            .route("/respond/{id}", any(respond))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeSlack {
            address,
            shared,
            api_address: address,
            drops: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// The fake behind a proxy that, when told to (`drop_next_post_answers`), passes a
    /// `chat.postMessage` on to Slack and then cuts the connection before the answer: the
    /// message is posted, and its sender only sees the connection drop.
    pub(crate) async fn start_behind_proxy(users: Vec<FakeUser>) -> FakeSlack {
        let mut fake = FakeSlack::start(users).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        fake.api_address = listener.local_addr().unwrap();
        tokio::spawn(dropping_proxy(listener, fake.address, fake.drops.clone()));
        fake
    }

    /// The next `count` answers to `chat.postMessage` are lost with their connection.
    pub(crate) fn drop_next_post_answers(&self, count: usize) {
        self.drops
            .fetch_add(count, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn api_url(&self) -> String {
        format!("http://{}/api", self.api_address)
    }

    pub(crate) fn response_url(&self, id: &str) -> String {
        format!("http://{}/respond/{id}", self.address)
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    pub(crate) fn calls(&self, method: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .collect()
    }

    /// Enforces a workspace-wide limit of `per_second` posts (bursts up to a second's worth),
    /// answering 429 with `Retry-After: 1` beyond it.
    pub(crate) fn enforce_post_rate(&self, per_second: f64) {
        self.shared.state.lock().unwrap().post_limit =
            Some((per_second, per_second, std::time::Instant::now()));
    }

    /// How many posts the limit refused.
    pub(crate) fn rate_limited(&self) -> usize {
        self.shared.state.lock().unwrap().rate_limited
    }

    /// How many messages were posted in all.
    pub(crate) fn posted_count(&self) -> usize {
        self.shared.state.lock().unwrap().posted.len()
    }

    /// Messages accepted for `asked` (a user id, a channel name or id), oldest first.
    pub(crate) fn posted_to(&self, asked: &str) -> Vec<Posted> {
        self.shared
            .state
            .lock()
            .unwrap()
            .posted
            .iter()
            .filter(|p| p.asked == asked)
            .cloned()
            .collect()
    }

    pub(crate) fn fail_next(&self, method: &str, failure: Failure) {
        self.shared
            .state
            .lock()
            .unwrap()
            .failures
            .entry(method.to_string())
            .or_default()
            .push_back(failure);
    }

    pub(crate) fn socket_acks(&self) -> Vec<Value> {
        self.shared.state.lock().unwrap().socket_acks.clone()
    }

    pub(crate) fn connections_opened(&self) -> usize {
        self.shared.state.lock().unwrap().connections_opened
    }

    /// Sends a Socket Mode message to the connected client; false when none is connected.
    pub(crate) async fn push_envelope(&self, envelope: &Value) -> bool {
        match &*self.shared.envelopes.lock().await {
            Some(sender) => sender.send(WsMessage::text(envelope.to_string())).is_ok(),
            None => false,
        }
    }

    /// Waits until `done` holds of the recorded requests, or fails the test after 30 s.
    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&[Recorded]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if done(&self.requests()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; the fake saw {:#?}",
                self.requests()
                    .iter()
                    .map(|r| &r.method)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a client is connected over Socket Mode.
    pub(crate) async fn wait_for_socket(&self, connections: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.connections_opened() < connections
            || self.shared.envelopes.lock().await.is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no Socket Mode connection"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn fields_of(text: &str) -> Value {
    Value::Object(
        url::form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    )
}

fn record(
    shared: &Shared,
    method: &str,
    http_method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    body: &Bytes,
) -> Recorded {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let args = if content_type.starts_with("application/json") {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    } else if !body.is_empty() {
        fields_of(&String::from_utf8_lossy(body))
    } else {
        fields_of(query.as_deref().unwrap_or_default())
    };
    let recorded = Recorded {
        method: method.to_string(),
        http_method: http_method.to_string(),
        content_type,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        args,
    };
    shared.state.lock().unwrap().requests.push(recorded.clone());
    recorded
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// The scripted answer to the next call of `method`: a failure to answer with, or
/// (`Err`) how long to hold back a normal answer.
async fn scripted_failure(shared: &Shared, method: &str) -> Option<Result<Response, Duration>> {
    let failure = shared
        .state
        .lock()
        .unwrap()
        .failures
        .get_mut(method)
        .and_then(VecDeque::pop_front)?;
    Some(Ok(match failure {
        Failure::Slow(delay) => {
            tokio::time::sleep(delay).await;
            return None;
        }
        Failure::AnswerLost(delay) => return Some(Err(delay)),
        Failure::RateLimited(seconds) => {
            let body = platform_fixtures()
                .and_then(|dir| {
                    std::fs::read_to_string(dir.join("slack/payloads/api/ratelimited.json")).ok()
                })
                .unwrap_or_else(|| r#"{"ok":false,"error":"ratelimited"}"#.to_string());
            (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("content-type", "application/json".to_string()),
                    ("retry-after", seconds.to_string()),
                ],
                body,
            )
                .into_response()
        }
        Failure::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        Failure::ApiError(code) => {
            json_response(StatusCode::OK, json!({"ok": false, "error": code}))
        }
    }))
}

/// Whether the workspace limit (if any) lets one more post through now.
fn take_post_token(shared: &Shared) -> bool {
    let mut state = shared.state.lock().unwrap();
    let Some((rate, tokens, since)) = state.post_limit else {
        return true;
    };
    let now = std::time::Instant::now();
    let tokens = (tokens + now.duration_since(since).as_secs_f64() * rate).min(rate);
    if tokens >= 1.0 {
        state.post_limit = Some((rate, tokens - 1.0, now));
        true
    } else {
        state.post_limit = Some((rate, tokens, now));
        state.rate_limited += 1;
        false
    }
}

fn user_json(user: &FakeUser) -> Value {
    let mut base = documented_response("users.info");
    let mut user_value = base
        .get_mut("user")
        .map(Value::take)
        .unwrap_or_else(|| json!({"profile": {}}));
    user_value["id"] = json!(user.id);
    user_value["tz"] = json!(user.tz);
    user_value["deleted"] = json!(false);
    user_value["is_bot"] = json!(false);
    user_value["profile"]["email"] = json!(user.email);
    user_value
}

async fn web_api(
    State(shared): State<Shared>,
    Path(method): Path<String>,
    http_method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let recorded = record(&shared, &method, &http_method, &headers, query, &body);
    if method == "chat.postMessage" && !take_post_token(&shared) {
        let body = r#"{"ok":false,"error":"ratelimited"}"#;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("content-type", "application/json"), ("retry-after", "1")],
            body,
        )
            .into_response();
    }
    let mut answer_delay = None;
    match scripted_failure(&shared, &method).await {
        Some(Err(delay)) => answer_delay = Some(delay),
        Some(Ok(failure)) => return failure,
        None => {}
    }
    let args = &recorded.args;
    let mut response = documented_response(&method);
    match method.as_str() {
        "chat.postMessage" | "chat.update" => {
            let channel = args["channel"].as_str().unwrap_or("C0");
            // A DM posted to a user id lands in that user's DM channel.
            let channel = match channel.strip_prefix('U') {
                Some(rest) => format!("D{rest}"),
                None if channel.starts_with('#') => "C0PROCEDURES".to_string(),
                None => channel.to_string(),
            };
            let ts = if method == "chat.update" {
                args["ts"].as_str().unwrap_or("0").to_string()
            } else {
                let mut state = shared.state.lock().unwrap();
                state.next_ts += 1;
                let ts = format!("1700000000.{:06}", state.next_ts);
                state.posted.push(Posted {
                    asked: args["channel"].as_str().unwrap_or_default().to_string(),
                    channel: channel.clone(),
                    ts: ts.clone(),
                    args: args.clone(),
                });
                ts
            };
            response["channel"] = json!(channel);
            response["ts"] = json!(ts);
            if let Some(message) = response.get_mut("message") {
                message["ts"] = json!(ts);
                message["text"] = args["text"].clone();
            }
        }
        "chat.postEphemeral" => {
            response = json!({"ok": true, "message_ts": "1700000000.999999"});
        }
        "users.lookupByEmail" | "users.info" => {
            let users = shared.state.lock().unwrap().users.clone();
            let found = users.iter().find(|u| {
                args["email"].as_str() == Some(u.email) || args["user"].as_str() == Some(u.id)
            });
            response = match found {
                Some(user) => json!({"ok": true, "user": user_json(user)}),
                None if method == "users.info" => json!({"ok": false, "error": "user_not_found"}),
                None => json!({"ok": false, "error": "users_not_found"}),
            };
        }
        "conversations.open" => {
            let user = match &args["users"] {
                Value::Array(users) => users
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                Value::String(users) => users.split(',').next().unwrap_or_default().to_string(),
                _ => String::new(),
            };
            response = json!({"ok": true, "channel": {"id": format!("D{}", user.trim_start_matches('U'))}});
        }
        "conversations.history" => {
            let channel = args["channel"].as_str().unwrap_or_default();
            let state = shared.state.lock().unwrap();
            let messages: Vec<Value> = state
                .posted
                .iter()
                .rev()
                .filter(|p| p.channel == channel)
                .take(100)
                .map(|p| json!({"type": "message", "user": "UBOT", "bot_id": "B1", "ts": p.ts, "text": p.args["text"], "blocks": p.args["blocks"]}))
                .collect();
            response = json!({"ok": true, "messages": messages, "has_more": false});
        }
        "apps.connections.open" => {
            let mut state = shared.state.lock().unwrap();
            state.connections_opened += 1;
            response = json!({"ok": true, "url": format!("ws://{}/link/?ticket={}", shared.ws_address, state.connections_opened)});
        }
        "views.publish" => {
            if let Some(view) = response.get_mut("view") {
                view["blocks"] = args["view"]["blocks"].clone();
            }
        }
        _ => {}
    }
    if let Some(delay) = answer_delay {
        tokio::time::sleep(delay).await;
    }
    json_response(StatusCode::OK, response)
}

async fn respond(
    State(shared): State<Shared>,
    Path(_id): Path<String>,
    http_method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, "respond", &http_method, &headers, None, &body);
    (StatusCode::OK, "ok").into_response()
}

/// Socket Mode: every connection gets `hello`, then whatever the test pushes; what the client
/// sends (acknowledgements) is recorded.
async fn serve_socket_mode(listener: TcpListener, shared: Shared) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(socket) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut sink, mut source) = socket.split();
            let hello = platform_fixtures()
                .and_then(|dir| std::fs::read_to_string(dir.join("slack/payloads/socket_mode/hello.json")).ok())
                .unwrap_or_else(|| {
                    json!({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake", "build_number": 1, "approximate_connection_time": 3600}, "connection_info": {"app_id": "A1"}}).to_string()
                });
            if sink.send(WsMessage::text(hello)).await.is_err() {
                return;
            }
            let (sender, mut receiver) = mpsc::unbounded_channel();
            *shared.envelopes.lock().await = Some(sender);
            loop {
                tokio::select! {
                    outgoing = receiver.recv() => {
                        let Some(outgoing) = outgoing else { return };
                        let closing = outgoing.to_text().is_ok_and(|t| t.contains("\"disconnect\""));
                        if sink.send(outgoing).await.is_err() {
                            return;
                        }
                        if closing {
                            let _ = sink.close().await;
                            *shared.envelopes.lock().await = None;
                            return;
                        }
                    }
                    incoming = source.next() => {
                        match incoming {
                            Some(Ok(WsMessage::Text(text))) => {
                                if let Ok(ack) = serde_json::from_str::<Value>(text.as_str()) {
                                    shared.state.lock().unwrap().socket_acks.push(ack);
                                }
                            }
                            Some(Ok(WsMessage::Ping(data))) => {
                                let _ = sink.send(WsMessage::Pong(data)).await;
                            }
                            Some(Ok(_)) => {}
                            _ => return,
                        }
                    }
                }
            }
        });
    }
}

/// Forwards connections to `target`; a connection whose request posts a message while drops
/// are asked for is cut as soon as the answer starts, after Slack has acted on it.
async fn dropping_proxy(
    listener: TcpListener,
    target: SocketAddr,
    drops: Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(upstream) = tokio::net::TcpStream::connect(target).await else {
            continue;
        };
        let drops = drops.clone();
        tokio::spawn(async move {
            let (mut client_read, mut client_write) = client.into_split();
            let (mut upstream_read, mut upstream_write) = upstream.into_split();
            let cut = Arc::new(AtomicBool::new(false));
            let cut_request = cut.clone();
            let requests = tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let Ok(n) = client_read.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    let chunk = &buffer[..n];
                    if chunk.windows(22).any(|w| w == b"/api/chat.postMessage ")
                        && drops
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| d.checked_sub(1))
                            .is_ok()
                    {
                        cut_request.store(true, Ordering::SeqCst);
                    }
                    if upstream_write.write_all(chunk).await.is_err() {
                        return;
                    }
                }
            });
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(n) = upstream_read.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                if cut.load(Ordering::SeqCst) {
                    // The answer is lost with the connection.
                    break;
                }
                if client_write.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
            requests.abort();
        });
    }
}
