//! Discord's REST API as procbot calls it: serenity's `Http` (its rate limiter in production)
//! carrying JSON bodies procbot renders itself, and Discord's answers mapped to what the
//! outbox and the interaction handlers need (rate limited, temporary, permanent).
//!
//! With `discord.api_base_url` set (a proxy, or the tests' fake Discord), serenity's rate
//! limiter is turned off: serenity 0.12 drops the proxy for every request that goes through
//! its limiter and would send it to discord.com instead. Requests are then built by serenity
//! (same routes, headers and token) and sent here, so a 429's `retry_after` reaches the outbox.

use std::sync::Arc;
use std::time::Duration;

use serenity::http::{Http, HttpBuilder, LightMethod, Request, Route};

/// What went wrong with a REST call.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RestError {
    #[error("Discord asked to slow down (retry after {} ms)", .0.as_millis())]
    RateLimited(Duration),
    /// Discord answered with an error status; `code` is Discord's JSON error code.
    #[error("Discord answered {status}{}: {message}", .code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Refused {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// No usable answer: connection refused, timeout, a body that is not JSON.
    #[error("could not reach Discord: {0}")]
    Network(String),
}

/// Discord JSON error codes procbot reacts to.
pub mod codes {
    pub const UNKNOWN_CHANNEL: i64 = 10003;
    pub const UNKNOWN_MESSAGE: i64 = 10008;
    pub const UNKNOWN_USER: i64 = 10013;
    pub const MISSING_ACCESS: i64 = 50001;
    pub const CANNOT_DM: i64 = 50007;
    pub const MISSING_PERMISSIONS: i64 = 50013;
}

impl RestError {
    pub fn code(&self) -> Option<i64> {
        match self {
            RestError::Refused { code, .. } => *code,
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Refused { status, .. } => Some(*status),
            RestError::RateLimited(_) => Some(429),
            RestError::Network(_) => None,
        }
    }
}

/// serenity's `Http` and, when a base URL replaces discord.com, the client that sends there.
pub struct Rest {
    http: Arc<Http>,
    direct: Option<Direct>,
}

struct Direct {
    client: reqwest::Client,
    /// What replaces `https://discord.com` in serenity's routes.
    origin: String,
}

/// How long one REST call may take before it counts as a network failure.
const TIMEOUT: Duration = Duration::from_secs(20);

impl Rest {
    /// `origin` replaces `https://discord.com` (it is `api_base_url` without its `/api`).
    pub fn new(token: &str, origin: Option<&str>) -> Result<Rest, String> {
        let direct = match origin {
            Some(origin) => Some(Direct {
                client: reqwest::Client::builder()
                    .timeout(TIMEOUT)
                    .build()
                    .map_err(|e| format!("building the HTTP client: {e}"))?,
                origin: origin.trim_end_matches('/').to_string(),
            }),
            None => None,
        };
        let mut builder = HttpBuilder::new(token);
        if let Some(direct) = &direct {
            builder = builder
                .proxy(direct.origin.clone())
                .ratelimiter_disabled(true);
        }
        Ok(Rest {
            http: Arc::new(builder.build()),
            direct,
        })
    }

    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// One call; `Ok(None)` for an answer without a body (204).
    pub async fn call(
        &self,
        method: LightMethod,
        route: Route<'_>,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, RestError> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| RestError::Network(format!("encoding the body: {e}")))?;
        let request = Request::new(route, method).body(bytes);
        let response = match &self.direct {
            Some(direct) => {
                let built = request
                    .build(&direct.client, self.http.token(), Some(&direct.origin))
                    .map_err(|e| RestError::Network(e.to_string()))?
                    .build()
                    .map_err(|e| RestError::Network(e.to_string()))?;
                direct
                    .client
                    .execute(built)
                    .await
                    .map_err(|e| RestError::Network(e.to_string()))?
            }
            None => match self.http.request(request).await {
                Ok(response) => response,
                Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(
                    failure,
                ))) => {
                    let status = failure.status_code.as_u16();
                    if status == 429 {
                        // The limiter already waited and retried; when it still gives up,
                        // the outbox waits a little more.
                        return Err(RestError::RateLimited(Duration::from_secs(1)));
                    }
                    return Err(RestError::Refused {
                        status,
                        code: Some(failure.error.code as i64),
                        message: failure.error.message,
                    });
                }
                Err(other) => return Err(RestError::Network(other.to_string())),
            },
        };
        read(response).await
    }
}

async fn read(response: reqwest::Response) -> Result<Option<serde_json::Value>, RestError> {
    let status = response.status().as_u16();
    let retry_header = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let bytes = response
        .bytes()
        .await
        .map_err(|e| RestError::Network(e.to_string()))?;
    let json: Option<serde_json::Value> = if bytes.is_empty() {
        None
    } else {
        serde_json::from_slice(&bytes).ok()
    };
    if (200..300).contains(&status) {
        if !bytes.is_empty() && json.is_none() {
            return Err(RestError::Network(format!(
                "Discord answered {status} with a body that is not JSON"
            )));
        }
        return Ok(json);
    }
    if status == 429 {
        // The body's `retry_after` (seconds, fractional) is the precise one; the header is
        // whole seconds.
        let seconds = json
            .as_ref()
            .and_then(|j| j.get("retry_after"))
            .and_then(serde_json::Value::as_f64)
            .or(retry_header)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(1.0)
            .min(3600.0);
        return Err(RestError::RateLimited(Duration::from_secs_f64(seconds)));
    }
    let code = json
        .as_ref()
        .and_then(|j| j.get("code"))
        .and_then(serde_json::Value::as_i64);
    let message = json
        .as_ref()
        .and_then(|j| j.get("message"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("no message")
        .chars()
        .take(300)
        .collect();
    Err(RestError::Refused {
        status,
        code,
        message,
    })
}
