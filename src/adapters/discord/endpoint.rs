//! The HTTP interactions endpoint, `POST /discord/interactions`: a body over the size limit is
//! refused (413); the Ed25519 signature over timestamp and body is checked, and the timestamp
//! must be within five minutes of procbot's clock, before the body is read as JSON (401
//! otherwise); PING gets PONG; everything else is answered by `Interactions`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serenity::interactions_endpoint::Verifier;

use super::interaction::{Interactions, parse};
use crate::clock::Clock;

pub const PATH: &str = "/discord/interactions";
/// Interactions carry the clicked message and resolved objects; far below this.
pub const BODY_LIMIT: usize = 256 * 1024;
/// A signed request older or newer than this is refused: a captured one cannot be replayed.
pub const MAX_SKEW_SECONDS: i64 = 300;

struct Endpoint {
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    interactions: Arc<Interactions>,
}

/// The application's public key (64 hex digits, from the Developer Portal) as a verifier.
pub fn verifier(public_key: &str) -> Result<Verifier, String> {
    let text = public_key.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            "discord.public_key must be the application's public key: 64 hex digits".into(),
        );
    }
    let mut bytes = [0u8; 32];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16)
            .map_err(|_| "discord.public_key is not hexadecimal".to_string())?;
    }
    Verifier::try_new(bytes).map_err(|error| format!("discord.public_key: {error}"))
}

pub fn routes(
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    interactions: Arc<Interactions>,
) -> Router {
    Router::new()
        .route(PATH, post(interaction))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(Arc::new(Endpoint {
            verifier,
            clock,
            interactions,
        }))
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": reason }))).into_response()
}

async fn interaction(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
    ) else {
        return refuse(StatusCode::UNAUTHORIZED, "missing signature headers");
    };
    if endpoint
        .verifier
        .verify(signature, timestamp, &body)
        .is_err()
    {
        return refuse(StatusCode::UNAUTHORIZED, "invalid request signature");
    }
    let now = endpoint.clock.now().timestamp();
    let fresh = timestamp
        .trim()
        .parse::<i64>()
        .is_ok_and(|ts| (now - ts).abs() <= MAX_SKEW_SECONDS);
    if !fresh {
        return refuse(StatusCode::UNAUTHORIZED, "stale or malformed timestamp");
    }
    let parsed = match parse(&body) {
        Ok(parsed) => parsed,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let response = endpoint.interactions.answer(parsed).await;
    if let Some(after) = response.after {
        tokio::spawn(after);
    }
    axum::Json(response.body).into_response()
}
