//! A fake Discord for the Discord adapter's tests: the REST API on loopback (`/api/v10/...`)
//! answering with valid models and recording every request, with programmable failures (429
//! with `retry_after`, 5xx, Discord error codes); Ed25519 signing of interaction bodies; and a
//! small OpenAPI 3.1 checker for the requests procbot sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

pub(crate) const APPLICATION_ID: &str = "700000000000000001";
pub(crate) const BOT_USER_ID: &str = "700000000000000002";
pub(crate) const TOKEN: &str = "test-bot-token";

/// One request the fake received, and its answer's status.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Option<Value>,
    pub(crate) status: u16,
    /// The id of the message it created, for message posts.
    pub(crate) created_id: Option<String>,
}

/// A failure the fake answers with, `times` times, for requests matching method and path.
struct Scripted {
    method: &'static str,
    path_contains: String,
    status: u16,
    body: Value,
    retry_after_header: Option<String>,
    times: usize,
}

#[derive(Default)]
struct State {
    recorded: Vec<Recorded>,
    scripted: Vec<Scripted>,
    next_id: u64,
    /// Guild members' roles, by user id; anyone else holds none.
    member_roles: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Clone)]
pub(crate) struct FakeDiscord {
    state: Arc<Mutex<State>>,
    pub(crate) address: std::net::SocketAddr,
}

fn user(id: &str) -> Value {
    json!({"id": id, "username": format!("user{id}"), "discriminator": "0", "global_name": null, "avatar": null})
}

fn message(id: &str, channel: &str, body: Option<&Value>) -> Value {
    let field =
        |name: &str, default: Value| body.and_then(|b| b.get(name).cloned()).unwrap_or(default);
    json!({
        "id": id, "channel_id": channel, "type": 0,
        "author": user(BOT_USER_ID),
        "content": field("content", json!("")),
        "embeds": field("embeds", json!([])),
        "components": field("components", json!([])),
        "timestamp": "2026-12-01T09:00:00.000000+00:00", "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "pinned": false, "flags": field("flags", json!(0))
    })
}

impl FakeDiscord {
    pub(crate) async fn start() -> FakeDiscord {
        let state = Arc::new(Mutex::new(State {
            next_id: 800_000_000_000_000_000,
            ..State::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { answer(&state, method, uri, headers, body) }
            },
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeDiscord { state, address }
    }

    /// `user` is a member of every guild, holding `roles`.
    pub(crate) fn set_member_roles(&self, user: &str, roles: &[&str]) {
        self.lock().member_roles.insert(
            user.to_string(),
            roles.iter().map(|r| r.to_string()).collect(),
        );
    }

    /// What `discord.api_base_url` is set to.
    pub(crate) fn api_base_url(&self) -> String {
        format!("http://{}/api", self.address)
    }

    /// The fake answers the next `times` requests matching with `status` and `body`.
    pub(crate) fn fail(
        &self,
        method: &'static str,
        path_contains: &str,
        status: u16,
        body: Value,
        times: usize,
    ) {
        self.lock().scripted.push(Scripted {
            method,
            path_contains: path_contains.to_string(),
            status,
            body,
            retry_after_header: None,
            times,
        });
    }

    /// A 429 with only a `Retry-After` header (whole seconds), as proxies send them.
    pub(crate) fn rate_limit_with_header(&self, path_contains: &str, seconds: &str) {
        self.lock().scripted.push(Scripted {
            method: "POST",
            path_contains: path_contains.to_string(),
            status: 429,
            body: json!({}),
            retry_after_header: Some(seconds.to_string()),
            times: 1,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn recorded(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// Requests with `method` whose path matches `pattern` (`*` stands for one segment).
    pub(crate) fn matching(&self, method: &str, pattern: &str) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.method == method && path_matches(pattern, &r.path))
            .collect()
    }

    /// Waits (polling, at most 30 s: the suite shares 2 cores) until `condition` holds.
    pub(crate) async fn wait_for(&self, what: &str, condition: impl Fn(&[Recorded]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if condition(&self.recorded()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; recorded: {:#?}",
                    self.recorded()
                        .iter()
                        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) fn path_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, s)| *p == "*" || p == s)
}

fn answer(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = uri.path().to_string();
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| json!({"unparsable": String::from_utf8_lossy(&body)})),
        )
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut recorded = Recorded {
        method: method.to_string(),
        path: path.clone(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: parsed.clone(),
        status: 200,
        created_id: None,
    };
    if let Some(index) = state
        .scripted
        .iter()
        .position(|s| s.times > 0 && s.method == method.as_str() && path.contains(&s.path_contains))
    {
        let scripted = &mut state.scripted[index];
        scripted.times -= 1;
        let status = StatusCode::from_u16(scripted.status).unwrap();
        let mut response = (status, axum::Json(scripted.body.clone())).into_response();
        if let Some(seconds) = &scripted.retry_after_header {
            response
                .headers_mut()
                .insert("retry-after", seconds.parse().unwrap());
        }
        recorded.status = scripted.status;
        state.recorded.push(recorded);
        return response;
    }
    let segments: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    state.next_id += 1;
    let new_id = state.next_id.to_string();
    let (status, reply) = match (method.as_str(), segments.as_slice()) {
        ("GET", ["guilds", _guild, "members", member]) => match state.member_roles.get(*member) {
            Some(roles) => (
                200,
                Some(
                    json!({"user": user(member), "roles": roles, "joined_at": "2026-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0}),
                ),
            ),
            None => (
                200,
                Some(
                    json!({"user": user(member), "roles": [], "joined_at": "2026-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0}),
                ),
            ),
        },
        ("GET", ["oauth2", "applications", "@me"]) => (
            200,
            Some(
                json!({"id": APPLICATION_ID, "name": "procbot", "icon": null, "description": "",
                        "bot_public": false, "bot_require_code_grant": false, "verify_key": "00",
                        "flags": 0, "bot": user(BOT_USER_ID)}),
            ),
        ),
        ("GET", ["gateway"]) => (200, Some(json!({"url": "ws://127.0.0.1:9"}))),
        ("PUT", ["applications", _, "commands"])
        | ("PUT", ["applications", _, "guilds", _, "commands"]) => {
            let commands = parsed.clone().unwrap_or(json!([]));
            (200, Some(commands))
        }
        ("POST", ["users", "@me", "channels"]) => {
            let recipient = parsed
                .as_ref()
                .and_then(|b| b.get("recipient_id"))
                .and_then(Value::as_str)
                .unwrap_or("0")
                .to_string();
            // One DM channel per person, with an id derived from theirs.
            let channel = format!("9{}", recipient.trim_start_matches('4'));
            (
                200,
                Some(
                    json!({"id": channel, "type": 1, "last_message_id": null, "recipients": [user(&recipient)]}),
                ),
            )
        }
        ("POST", ["channels", channel, "messages"]) => {
            recorded.created_id = Some(new_id.clone());
            (200, Some(message(&new_id, channel, parsed.as_ref())))
        }
        ("PATCH", ["channels", channel, "messages", id]) => {
            (200, Some(message(id, channel, parsed.as_ref())))
        }
        ("POST", ["interactions", _, _, "callback"]) => (204, None),
        ("PATCH", ["webhooks", _, _, "messages", "@original"]) => {
            (200, Some(message(&new_id, "1", parsed.as_ref())))
        }
        ("POST", ["webhooks", _, _]) => {
            recorded.created_id = Some(new_id.clone());
            (200, Some(message(&new_id, "1", parsed.as_ref())))
        }
        _ => (404, Some(json!({"code": 0, "message": "404: Not Found"}))),
    };
    recorded.status = status;
    state.recorded.push(recorded);
    let status = StatusCode::from_u16(status).unwrap();
    match reply {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    }
}

/// The application's key pair, as the Developer Portal would hold it.
pub(crate) fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

pub(crate) fn public_key_hex() -> String {
    hex(&signing_key().verifying_key().to_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature Discord sends in `X-Signature-Ed25519`.
pub(crate) fn sign(key: &SigningKey, timestamp: &str, body: &str) -> String {
    hex(&key.sign(format!("{timestamp}{body}").as_bytes()).to_bytes())
}

/// Where the platform fixtures are, from `PROCBOT_PLATFORM_FIXTURES`; `None` (with a notice)
/// when it is unset.
pub(crate) fn fixtures(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os("PROCBOT_PLATFORM_FIXTURES") {
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            assert!(
                dir.join("discord").is_dir(),
                "PROCBOT_PLATFORM_FIXTURES is set to {} but it has no discord/ folder",
                dir.display()
            );
            Some(dir)
        }
        None => {
            eprintln!(
                "NOTICE: {test} checks against the platform fixtures and did nothing: set PROCBOT_PLATFORM_FIXTURES (CI sets it to ../shared/fixtures)"
            );
            None
        }
    }
}

pub(crate) fn read_fixture(dir: &std::path::Path, relative: &str) -> String {
    let path = dir.join("discord").join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("fixture {} is missing: {error}", path.display()))
}

/// Discord's OpenAPI document, and checks of requests against it.
pub(crate) struct OpenApi {
    spec: Value,
}

impl OpenApi {
    pub(crate) fn load(fixtures: &std::path::Path) -> OpenApi {
        let text = read_fixture(fixtures, "openapi/openapi.json");
        OpenApi {
            spec: serde_json::from_str(&text).expect("openapi.json is JSON"),
        }
    }

    /// The path template a request path (`/api/v10/...`) matches: literal segments preferred.
    fn template(&self, path: &str) -> Option<String> {
        let path = path.strip_prefix("/api/v10")?;
        let segments: Vec<&str> = path.split('/').collect();
        let paths = self.spec["paths"].as_object()?;
        paths
            .keys()
            .filter_map(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (part, segment) in parts.iter().zip(&segments) {
                    if part.starts_with('{') && part.ends_with('}') {
                        if segment.is_empty() {
                            return None;
                        }
                    } else if part == segment {
                        literal += 1;
                    } else {
                        return None;
                    }
                }
                Some((literal, template.clone()))
            })
            .max()
            .map(|(_, template)| template)
    }

    /// Every problem with one request: unknown route or method, or a body the request
    /// schema refuses.
    pub(crate) fn problems(&self, request: &Recorded) -> Vec<String> {
        let label = format!("{} {}", request.method, request.path);
        let Some(template) = self.template(&request.path) else {
            return vec![format!("{label}: no such route in Discord's API")];
        };
        let operation = &self.spec["paths"][&template][request.method.to_lowercase()];
        if operation.is_null() {
            return vec![format!(
                "{label}: {template} has no {} operation",
                request.method
            )];
        }
        let mut problems = Vec::new();
        if request.authorization.as_deref() != Some(&format!("Bot {TOKEN}")) {
            problems.push(format!("{label}: not authorised as the bot"));
        }
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        match (&request.body, schema.is_null()) {
            (Some(body), false) => {
                if request.content_type.as_deref() != Some("application/json") {
                    problems.push(format!(
                        "{label}: a JSON body without content-type application/json"
                    ));
                }
                self.check(schema, body, "$", &mut problems);
            }
            (Some(_), true) => problems.push(format!("{label}: a body where the API takes none")),
            (None, false) if operation["requestBody"]["required"] == json!(true) => {
                problems.push(format!("{label}: no body where one is required"))
            }
            (None, _) => {}
        }
        problems
            .into_iter()
            .map(|p| {
                if p.starts_with(&label) {
                    p
                } else {
                    format!("{label}: {p}")
                }
            })
            .collect()
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                self.resolve(&self.spec["components"]["schemas"][name])
            }
            None => schema,
        }
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema.get(key).and_then(Value::as_array) {
                let mut reasons = Vec::new();
                let fits = options.iter().any(|option| {
                    let mut found = Vec::new();
                    self.check(option, value, at, &mut found);
                    let fits = found.is_empty();
                    reasons.extend(found);
                    fits
                });
                if !fits {
                    problems.push(format!(
                        "{at}: matches none of the {key} options ({})",
                        reasons.into_iter().take(6).collect::<Vec<_>>().join("; ")
                    ));
                }
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.check(part, value, at, problems);
            }
        }
        if let Some(expected) = schema.get("type") {
            let types: Vec<&str> = match expected {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let fits = types.iter().any(|t| match *t {
                "null" => value.is_null(),
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "string" => value.is_string(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                _ => true,
            });
            if !fits {
                problems.push(format!("{at}: {value} is not of type {expected}"));
                return;
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            problems.push(format!(
                "{at}: {value} is not one of {}",
                Value::Array(options.clone())
            ));
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            problems.push(format!("{at}: {value} is not {constant}"));
        }
        if let Some(text) = value.as_str() {
            let length = text.chars().count() as u64;
            if schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|max| length > max)
            {
                problems.push(format!("{at}: {length} characters is over maxLength"));
            }
            if schema
                .get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|min| length < min)
            {
                problems.push(format!("{at}: {length} characters is under minLength"));
            }
        }
        if let Some(number) = value.as_f64() {
            if schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|max| number > max)
            {
                problems.push(format!("{at}: {number} is over the maximum"));
            }
            if schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|min| number < min)
            {
                problems.push(format!("{at}: {number} is under the minimum"));
            }
        }
        if let Some(items) = value.as_array() {
            if schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|max| items.len() as u64 > max)
            {
                problems.push(format!("{at}: {} items is over maxItems", items.len()));
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    self.check(item_schema, item, &format!("{at}[{index}]"), problems);
                }
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        problems.push(format!("{at}: required property `{name}` is missing"));
                    }
                }
            }
            for (name, property) in object {
                match properties.and_then(|p| p.get(name)) {
                    Some(property_schema) => {
                        self.check(property_schema, property, &format!("{at}.{name}"), problems)
                    }
                    None => {
                        match schema.get("additionalProperties") {
                            Some(Value::Bool(false)) => problems
                                .push(format!("{at}: property `{name}` is not in the schema")),
                            Some(extra) if extra.is_object() => {
                                self.check(extra, property, &format!("{at}.{name}"), problems)
                            }
                            _ if properties.is_some() => problems
                                .push(format!("{at}: property `{name}` is not in the schema")),
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}

/// Requests grouped as `METHOD template` → count, for messages.
pub(crate) fn summary(recorded: &[Recorded]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for request in recorded {
        *out.entry(format!("{} {}", request.method, request.path))
            .or_default() += 1;
    }
    out
}
