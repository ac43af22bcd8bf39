//! `POST /webhooks/git`: push notifications from GitHub, Gitea/Forgejo and GitLab, verified
//! with `webhook.secret` before anything else is read, then turned into a sync trigger.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

/// What the webhook endpoint needs.
#[derive(Debug)]
pub struct GitWebhook {
    pub secret: Option<SecretString>,
    /// Only pushes to this branch trigger a sync.
    pub branch: String,
    pub trigger: Arc<Notify>,
}

/// The forge a push came from, told by its signature header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forge {
    GitHub,
    Gitea,
    GitLab,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature header (X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token)")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match the body and the configured secret")]
    Mismatch,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Hex digits to bytes (signatures are sent in hex).
pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn verify_hmac(secret: &[u8], body: &[u8], signature_hex: &str) -> Result<(), SignatureError> {
    let signature = decode_hex(signature_hex).ok_or(SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Malformed)?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks a push's signature against `secret`. Nothing of the body is parsed before this.
pub fn verify_signature(
    headers: &HeaderMap,
    body: &[u8],
    secret: &SecretString,
) -> Result<Forge, SignatureError> {
    let secret = secret.expose_secret().as_bytes();
    if let Some(value) = header(headers, "x-hub-signature-256") {
        let hex = value
            .strip_prefix("sha256=")
            .ok_or(SignatureError::Malformed)?;
        verify_hmac(secret, body, hex)?;
        return Ok(Forge::GitHub);
    }
    for name in [
        "x-gitea-signature",
        "x-forgejo-signature",
        "x-gogs-signature",
    ] {
        if let Some(value) = header(headers, name) {
            verify_hmac(secret, body, value)?;
            return Ok(Forge::Gitea);
        }
    }
    if let Some(token) = header(headers, "x-gitlab-token") {
        if bool::from(token.as_bytes().ct_eq(secret)) {
            return Ok(Forge::GitLab);
        }
        return Err(SignatureError::Mismatch);
    }
    Err(SignatureError::Missing)
}

fn event(headers: &HeaderMap, forge: Forge) -> String {
    let names: &[&str] = match forge {
        Forge::GitHub => &["x-github-event"],
        Forge::Gitea => &["x-gitea-event", "x-forgejo-event", "x-gogs-event"],
        Forge::GitLab => &["x-gitlab-event"],
    };
    names
        .iter()
        .find_map(|name| header(headers, name))
        .unwrap_or("push")
        .to_ascii_lowercase()
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

pub async fn git_webhook(
    State(webhook): State<Arc<GitWebhook>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = &webhook.secret else {
        tracing::warn!("git webhook received but webhook.secret is not configured; ignored");
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": "git webhooks are not enabled: set webhook.secret"}),
        );
    };
    let forge = match verify_signature(&headers, &body, secret) {
        Ok(forge) => forge,
        Err(error) => {
            tracing::warn!(%error, "git webhook rejected");
            return answer(
                StatusCode::UNAUTHORIZED,
                json!({"error": error.to_string()}),
            );
        }
    };
    let event = event(&headers, forge);
    if event == "ping" {
        return answer(StatusCode::OK, json!({"status": "pong"}));
    }
    if event != "push" && event != "push hook" {
        return answer(
            StatusCode::OK,
            json!({"status": "ignored", "reason": format!("`{event}` events do not change procedures")}),
        );
    }
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(error) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("the push payload is not JSON: {error}")}),
            );
        }
    };
    let wanted = format!("refs/heads/{}", webhook.branch);
    if let Some(pushed) = payload.get("ref").and_then(|r| r.as_str())
        && pushed != wanted
    {
        return answer(
            StatusCode::OK,
            json!({"status": "ignored", "reason": format!("{pushed} is not {wanted}")}),
        );
    }
    tracing::info!(?forge, "push received; syncing procedures");
    webhook.trigger.notify_one();
    answer(StatusCode::ACCEPTED, json!({"status": "sync scheduled"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signatures_match_the_documented_example() {
        // The example from GitHub's "Validating webhook deliveries" guide.
        let secret = SecretString::from("It's a Secret to Everybody");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            verify_signature(&headers, b"Hello, World!", &secret),
            Ok(Forge::GitHub)
        );
        assert_eq!(
            verify_signature(&headers, b"Hello, World?", &secret),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_and_missing_signatures_are_refused() {
        let secret = SecretString::from("s");
        let mut headers = HeaderMap::new();
        assert_eq!(
            verify_signature(&headers, b"{}", &secret),
            Err(SignatureError::Missing)
        );
        headers.insert("x-hub-signature-256", "sha1=abc".parse().unwrap());
        assert_eq!(
            verify_signature(&headers, b"{}", &secret),
            Err(SignatureError::Malformed)
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-gitea-signature", "zz".parse().unwrap());
        assert_eq!(
            verify_signature(&headers, b"{}", &secret),
            Err(SignatureError::Malformed)
        );
    }
}
