//! The Slack Web API as procbot uses it: a slack-morphism client on our own connector (so a
//! configured `api_base_url` may be plain http, for proxies and local fakes), the few methods
//! the adapter calls, and what a failure means for the outbox (rate limited, transient,
//! permanent).

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::core::port::DeliveryError;

pub type Client = SlackClient<SlackClientHyperHttpsConnector>;

/// Slack's own Web API.
pub const SLACK_API_URL: &str = "https://slack.com/api";
/// How long one Web API call may take before it counts as a temporary failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// When a 429 carries no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// API error codes that will not heal by retrying: the recipient, the channel, the token or
/// the message itself is wrong.
const PERMANENT_ERRORS: &[&str] = &[
    "account_inactive",
    "cannot_dm_bot",
    "channel_not_found",
    "invalid_auth",
    "invalid_blocks",
    "invalid_blocks_format",
    "is_archived",
    "message_not_found",
    "missing_scope",
    "msg_too_long",
    "no_permission",
    "no_text",
    "not_authed",
    "not_in_channel",
    "restricted_action",
    "token_revoked",
    "too_many_attachments",
    "user_disabled",
    "user_not_found",
    "users_not_found",
    "cant_update_message",
    "edit_window_closed",
    "not_allowed_token_type",
];

/// Every Web API method procbot calls with the bot token, and the scope it needs: the app
/// manifest asks for exactly these (and for what the inbound side needs, `INBOUND_SCOPES`).
pub const METHOD_SCOPES: &[(&str, &[&str])] = &[
    ("auth.test", &[]),
    ("chat.postMessage", &["chat:write"]),
    ("chat.update", &["chat:write"]),
    ("chat.postEphemeral", &["chat:write"]),
    // Reading back whether a message whose sender died mid-send reached Slack.
    ("conversations.open", &["im:write"]),
    ("conversations.history", &["im:history", "channels:history"]),
    ("users.info", &["users:read"]),
    ("users.lookupByEmail", &["users:read.email"]),
    ("views.publish", &[]),
];

/// Scopes of what procbot receives: the slash command, mentions, DMs to the bot, and the
/// emails in profiles it reads.
pub const INBOUND_SCOPES: &[&str] = &[
    "commands",
    "app_mentions:read",
    "im:history",
    "users:read.email",
];

/// The events procbot subscribes to.
pub const BOT_EVENTS: &[&str] = &["app_home_opened", "app_mention", "message.im"];

#[derive(Debug, thiserror::Error)]
pub enum SlackApiError {
    #[error("the Slack API URL `{0}` is not usable: {1}")]
    BadUrl(String, String),
    #[error("no TLS root certificates could be loaded: {0}")]
    Tls(String),
}

/// The Web API with procbot's bot token.
pub struct SlackApi {
    client: Arc<Client>,
    token: SlackApiToken,
    base_url: url::Url,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// An HTTPS connector that also speaks plain http (for a configured proxy or a local fake):
/// the platform's CA roots, else the bundled Mozilla roots on machines without any.
fn connector() -> SlackClientHyperHttpsConnector {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(builder) => builder,
        Err(error) => {
            tracing::warn!(%error, "no system CA certificates; using the bundled roots");
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
        }
    };
    builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build()
        .into()
}

impl SlackApi {
    pub fn new(
        base_url: Option<&url::Url>,
        bot_token: &SecretString,
    ) -> Result<SlackApi, SlackApiError> {
        let base = base_url
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .unwrap_or_else(|| SLACK_API_URL.to_string());
        let parsed = url::Url::parse(&base)
            .map_err(|error| SlackApiError::BadUrl(base.clone(), error.to_string()))?;
        let connector = connector().with_slack_api_url(&base);
        Ok(SlackApi {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(bot_token.expose_secret().to_string().into()),
            base_url: parsed,
        })
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The API's base URL (where requests go; `response_url`s may also point at its host).
    pub fn base_url(&self) -> &url::Url {
        &self.base_url
    }

    fn session(&self) -> SlackClientSession<'_, SlackClientHyperHttpsConnector> {
        self.client.open_session(&self.token)
    }

    pub async fn auth_test(&self) -> Result<SlackApiAuthTestResponse, SlackClientError> {
        timed(self.session().auth_test()).await
    }

    pub async fn post_message(
        &self,
        request: &SlackApiChatPostMessageRequest,
    ) -> Result<SlackApiChatPostMessageResponse, SlackClientError> {
        timed(self.session().chat_post_message(request)).await
    }

    pub async fn update_message(
        &self,
        request: &SlackApiChatUpdateRequest,
    ) -> Result<SlackApiChatUpdateResponse, SlackClientError> {
        timed(self.session().chat_update(request)).await
    }

    pub async fn post_ephemeral(
        &self,
        request: &SlackApiChatPostEphemeralRequest,
    ) -> Result<SlackApiChatPostEphemeralResponse, SlackClientError> {
        timed(self.session().chat_post_ephemeral(request)).await
    }

    /// The DM channel with `user` (to read back what was posted there).
    pub async fn open_dm(&self, user: &str) -> Result<String, SlackClientError> {
        let request =
            SlackApiConversationsOpenRequest::new().with_users(vec![SlackUserId(user.to_string())]);
        Ok(timed(self.session().conversations_open(&request))
            .await?
            .channel
            .id
            .0)
    }

    /// The latest messages of a conversation, newest first.
    pub async fn history(
        &self,
        channel: &str,
        limit: u16,
    ) -> Result<Vec<SlackHistoryMessage>, SlackClientError> {
        let request = SlackApiConversationsHistoryRequest::new()
            .with_channel(SlackChannelId(channel.to_string()))
            .with_limit(limit);
        Ok(timed(self.session().conversations_history(&request))
            .await?
            .messages)
    }

    pub async fn lookup_by_email(&self, email: &str) -> Result<SlackUser, SlackClientError> {
        let request = SlackApiUsersLookupByEmailRequest::new(EmailAddress(email.to_string()));
        Ok(timed(self.session().users_lookup_by_email(&request))
            .await?
            .user)
    }

    pub async fn user_info(&self, user: &str) -> Result<SlackUser, SlackClientError> {
        let request = SlackApiUsersInfoRequest::new(SlackUserId(user.to_string()));
        Ok(timed(self.session().users_info(&request)).await?.user)
    }

    pub async fn publish_home(&self, user: &str, view: SlackView) -> Result<(), SlackClientError> {
        let request = SlackApiViewsPublishRequest::new(SlackUserId(user.to_string()), view);
        timed(self.session().views_publish(&request)).await?;
        Ok(())
    }

    /// Posts to a `response_url` (already checked to be Slack's or the configured API's).
    pub async fn respond(
        &self,
        response_url: &url::Url,
        request: &SlackApiPostWebhookMessageRequest,
    ) -> Result<(), SlackClientError> {
        timed(self.client.post_webhook_message(response_url, request)).await?;
        Ok(())
    }
}

async fn timed<T>(
    call: impl std::future::Future<Output = Result<T, SlackClientError>>,
) -> Result<T, SlackClientError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(SlackClientError::SystemError(
            slack_morphism::errors::SlackClientSystemError::new()
                .with_message(format!("no answer within {} s", CALL_TIMEOUT.as_secs())),
        )),
    }
}

/// The Slack error code of an API error, if it is one.
pub fn api_error_code(error: &SlackClientError) -> Option<&str> {
    match error {
        SlackClientError::ApiError(api) => Some(api.code.as_str()),
        _ => None,
    }
}

/// What a failed call means for delivery.
pub fn delivery_error(error: &SlackClientError) -> DeliveryError {
    match error {
        SlackClientError::RateLimitError(limit) => DeliveryError::RateLimited {
            retry_after: limit
                .retry_after
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_RETRY_AFTER),
        },
        SlackClientError::ApiError(api) if api.code == "ratelimited" => {
            DeliveryError::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER,
            }
        }
        SlackClientError::ApiError(api) if PERMANENT_ERRORS.contains(&api.code.as_str()) => {
            DeliveryError::Permanent(format!("Slack said {}", api.code))
        }
        SlackClientError::ApiError(api) => {
            DeliveryError::Transient(format!("Slack said {}", api.code))
        }
        SlackClientError::HttpError(http) => {
            let status = http.status_code.as_u16();
            if status >= 500 || status == 408 {
                DeliveryError::Transient(format!("Slack answered HTTP {status}"))
            } else {
                DeliveryError::Permanent(format!("Slack answered HTTP {status}"))
            }
        }
        other => DeliveryError::Transient(one_line(&other.to_string())),
    }
}

/// The first line of an error (slack-morphism appends response bodies on later lines).
fn one_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: &str) -> SlackClientError {
        SlackClientError::ApiError(slack_morphism::errors::SlackClientApiError::new(
            code.to_string(),
        ))
    }

    #[test]
    fn failures_are_classified_for_the_outbox() {
        assert!(matches!(
            delivery_error(&api_error("channel_not_found")),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            delivery_error(&api_error("internal_error")),
            DeliveryError::Transient(_)
        ));
        assert_eq!(
            delivery_error(&api_error("ratelimited")),
            DeliveryError::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER
            }
        );
        let limited = SlackClientError::RateLimitError(
            slack_morphism::errors::SlackRateLimitError::new()
                .with_retry_after(Duration::from_secs(7)),
        );
        assert_eq!(
            delivery_error(&limited),
            DeliveryError::RateLimited {
                retry_after: Duration::from_secs(7)
            }
        );
    }
}
