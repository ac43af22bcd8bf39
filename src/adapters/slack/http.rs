//! Slack's HTTP mode: `POST /slack/events`, `/slack/commands` and `/slack/interactions`, each
//! verified with the signing secret (HMAC-SHA256 `v0`, a 5-minute window on the clock,
//! constant-time compare) before a byte of the body is parsed; 401 otherwise. Commands are
//! answered in the response within Slack's 3 seconds, or acknowledged and completed through
//! their `response_url`, which must be a Slack host.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use slack_morphism::prelude::*;

use super::inbound::SlackInbound;
use crate::clock::Clock;

/// Slack's own payloads are small; anything larger is refused before it is read.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// A signature older or newer than this is refused (Slack's recommendation).
pub const MAX_SIGNATURE_AGE_SECONDS: i64 = 5 * 60;
/// How long a command may take before Slack is answered at once and the reply follows
/// through `response_url` (Slack gives up after 3 s).
const COMMAND_BUDGET: Duration = Duration::from_millis(2500);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Slack-Signature or X-Slack-Request-Timestamp header")]
    Missing,
    #[error("the signature headers are malformed")]
    Malformed,
    #[error("the request timestamp is more than 5 minutes away from now")]
    Stale,
    #[error("the signature does not match the body and the signing secret")]
    Mismatch,
}

/// Checks Slack's `v0` signature of `body`, sent at `timestamp`, against `secret` at `now`.
pub fn verify_signature(
    secret: &SecretString,
    now_unix: i64,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    if (now_unix - sent).abs() > MAX_SIGNATURE_AGE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let hex = signature
        .trim()
        .strip_prefix("v0=")
        .ok_or(SignatureError::Malformed)?;
    let expected = crate::http::webhook::decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| SignatureError::Malformed)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

struct Endpoint {
    inbound: Arc<SlackInbound>,
    secret: SecretString,
    clock: Arc<dyn Clock>,
}

pub fn routes(inbound: Arc<SlackInbound>, secret: SecretString, clock: Arc<dyn Clock>) -> Router {
    let endpoint = Arc::new(Endpoint {
        inbound,
        secret,
        clock,
    });
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(endpoint)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn verified(endpoint: &Endpoint, headers: &HeaderMap, body: &[u8]) -> Result<(), Box<Response>> {
    verify_signature(
        &endpoint.secret,
        endpoint.clock.now().timestamp(),
        header(headers, "x-slack-request-timestamp"),
        header(headers, "x-slack-signature"),
        body,
    )
    .map_err(|error| {
        tracing::warn!(%error, "a Slack request was refused");
        Box::new((StatusCode::UNAUTHORIZED, format!("{error}\n")).into_response())
    })
}

fn bad_request(what: &str, error: impl std::fmt::Display) -> Response {
    tracing::warn!(%error, "a signed Slack {what} could not be read");
    (
        StatusCode::BAD_REQUEST,
        format!("this is not a Slack {what} procbot understands: {error}\n"),
    )
        .into_response()
}

/// A form body as a JSON object of its fields (the shape slack-morphism's models read).
fn form_fields(body: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect()
}

/// Why a signed Slack body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the form has no `payload` field")]
    NoPayload,
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// A slash command's form body (`POST /slack/commands`), read after its signature is checked.
pub fn parse_command_form(body: &[u8]) -> Result<SlackCommandEvent, PayloadError> {
    Ok(serde_json::from_value(serde_json::Value::Object(
        form_fields(body),
    ))?)
}

/// An interaction's form body (`POST /slack/interactions`): its `payload=` field as JSON.
pub fn parse_interaction_form(body: &[u8]) -> Result<SlackInteractionEvent, PayloadError> {
    let fields = form_fields(body);
    let Some(serde_json::Value::String(payload)) = fields.get("payload") else {
        return Err(PayloadError::NoPayload);
    };
    Ok(serde_json::from_str(payload)?)
}

/// An Events API body (`POST /slack/events`).
pub fn parse_push_event(body: &[u8]) -> Result<SlackPushEvent, PayloadError> {
    Ok(serde_json::from_slice(body)?)
}

/// Whether a `response_url` from a payload may be posted to: Slack's own hosts over https on
/// the default port, or the host of the configured API (a proxy, or a test's fake); never a
/// URL carrying credentials, which no real `response_url` does.
pub fn allowed_response_url(text: &str, api_base: &url::Url) -> Option<url::Url> {
    let url = url::Url::parse(text).ok()?;
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = url.host_str()?;
    let slack = url.scheme() == "https"
        && url.port().is_none()
        && (host == "slack.com" || host.ends_with(".slack.com"));
    let configured = url.scheme() == api_base.scheme()
        && url.host_str() == api_base.host_str()
        && url.port_or_known_default() == api_base.port_or_known_default();
    (slack || configured).then_some(url)
}

async fn commands(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = verified(&endpoint, &headers, &body) {
        return *refused;
    }
    let event = match parse_command_form(&body) {
        Ok(event) => event,
        Err(error) => return bad_request("slash command", error),
    };
    let inbound = endpoint.inbound.clone();
    let answering = {
        let event = event.clone();
        tokio::spawn(async move { inbound.command(&event).await })
    };
    let mut answering = answering;
    match tokio::time::timeout(COMMAND_BUDGET, &mut answering).await {
        Ok(Ok(response)) => Json(response).into_response(),
        Ok(Err(error)) => {
            tracing::error!(%error, "a Slack command failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(_) => {
            // Slack waits 3 s at most: say we are on it, and answer through response_url.
            let base = endpoint.inbound.shared().api().base_url().clone();
            let inbound = endpoint.inbound.clone();
            match allowed_response_url(event.response_url.0.as_ref(), &base) {
                Some(url) => {
                    tokio::spawn(async move {
                        if let Ok(response) = answering.await {
                            inbound.respond_later(&url, response).await;
                        }
                    });
                }
                None => tracing::warn!(
                    "a slow Slack command's response_url is not a Slack host; its answer is dropped"
                ),
            }
            Json(
                SlackCommandEventResponse::new(
                    SlackMessageContent::new().with_text("Looking that up…".to_string()),
                )
                .with_response_type(SlackMessageResponseType::Ephemeral),
            )
            .into_response()
        }
    }
}

async fn interactions(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = verified(&endpoint, &headers, &body) {
        return *refused;
    }
    let event = match parse_interaction_form(&body) {
        Ok(event) => event,
        Err(error) => return bad_request("interaction", error),
    };
    match event {
        SlackInteractionEvent::BlockActions(actions) => {
            // Acknowledge at once; the click's work and replies follow through the Web API.
            let inbound = endpoint.inbound.clone();
            tokio::spawn(async move { inbound.block_actions(&actions).await });
        }
        other => {
            tracing::debug!(kind = ?std::mem::discriminant(&other), "a Slack interaction procbot does not use was ignored")
        }
    }
    StatusCode::OK.into_response()
}

async fn events(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = verified(&endpoint, &headers, &body) {
        return *refused;
    }
    let event = match parse_push_event(&body) {
        Ok(event) => event,
        Err(error) => return bad_request("event", error),
    };
    match event {
        SlackPushEvent::UrlVerification(verification) => {
            Json(serde_json::json!({"challenge": verification.challenge})).into_response()
        }
        SlackPushEvent::EventCallback(callback) => {
            let inbound = endpoint.inbound.clone();
            tokio::spawn(async move { inbound.push(&callback).await });
            StatusCode::OK.into_response()
        }
        SlackPushEvent::AppRateLimited(limited) => {
            tracing::warn!(team = %limited.team_id, "Slack is rate limiting events to procbot");
            StatusCode::OK.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published signing example is checked by the conformance tests, which read it
    // from the platform fixtures; these use a signature made here.
    const SECRET: &str = "test-signing-secret";
    const BODY: &str = "team_id=T1&user_id=U1&command=%2Fprocedure&text=backup";
    const SENT: i64 = 1_800_000_000;

    fn secret() -> SecretString {
        SecretString::from(SECRET)
    }

    fn sign(secret: &str, timestamp: &str, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{timestamp}:{body}").as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("v0={hex}")
    }

    fn check(
        now: i64,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &str,
    ) -> Result<(), SignatureError> {
        verify_signature(&secret(), now, timestamp, signature, body.as_bytes())
    }

    #[test]
    fn a_signed_request_within_five_minutes_verifies() {
        let ts = SENT.to_string();
        let signature = sign(SECRET, &ts, BODY);
        assert_eq!(check(SENT, Some(&ts), Some(&signature), BODY), Ok(()));
        assert_eq!(check(SENT + 300, Some(&ts), Some(&signature), BODY), Ok(()));
        assert_eq!(check(SENT - 300, Some(&ts), Some(&signature), BODY), Ok(()));
    }

    #[test]
    fn forged_stale_and_missing_signatures_are_refused() {
        let ts = SENT.to_string();
        let signature = sign(SECRET, &ts, BODY);
        let tampered = BODY.replace("backup", "restore");
        assert_eq!(
            check(SENT, Some(&ts), Some(&signature), &tampered),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(SENT + 301, Some(&ts), Some(&signature), BODY),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(SENT - 301, Some(&ts), Some(&signature), BODY),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(SENT, None, Some(&signature), BODY),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(SENT, Some(&ts), None, BODY),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(SENT, Some(&ts), Some("sha256=abc"), BODY),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(SENT, Some("yesterday"), Some(&signature), BODY),
            Err(SignatureError::Malformed)
        );
        let other = sign("another-secret", &ts, BODY);
        assert_eq!(
            check(SENT, Some(&ts), Some(&other), BODY),
            Err(SignatureError::Mismatch)
        );
        // A signature made for another moment does not carry over to this one.
        let moved = (SENT + 1).to_string();
        assert_eq!(
            check(SENT, Some(&moved), Some(&signature), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn response_urls_must_be_slack_or_the_configured_api() {
        let slack = url::Url::parse("https://slack.com/api").unwrap();
        assert!(allowed_response_url("https://hooks.slack.com/commands/T1/2/x", &slack).is_some());
        assert!(allowed_response_url("http://hooks.slack.com/commands/T1/2/x", &slack).is_none());
        assert!(allowed_response_url("https://hooks.slack.com.evil.example/x", &slack).is_none());
        assert!(allowed_response_url("https://evil.example/hooks.slack.com", &slack).is_none());
        assert!(allowed_response_url("http://169.254.169.254/latest", &slack).is_none());
        // Found by the slack_payloads fuzz target: credentials ride along to the host.
        assert!(allowed_response_url("https://u:p@hooks.slack.com/commands/1", &slack).is_none());
        assert!(allowed_response_url("https://%40@hooks.slack.com/commands/1", &slack).is_none());
        assert!(allowed_response_url("https://hooks.slack.com:8443/commands/1", &slack).is_none());
        let fake = url::Url::parse("http://127.0.0.1:4040/api").unwrap();
        assert!(allowed_response_url("http://127.0.0.1:4040/respond/1", &fake).is_some());
        assert!(allowed_response_url("http://127.0.0.1:4041/respond/1", &fake).is_none());
    }
}
