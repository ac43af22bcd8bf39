//! The Slack adapter: the `ChatPort` that posts, updates and DMs through the Web API, the
//! people behind Slack accounts (directory ids, linked identities, `users.lookupByEmail`), and
//! the inbound side in either mode of `slack.mode`: Socket Mode (`socket.rs`) or signed HTTP
//! endpoints (`http.rs`), both answered by `inbound.rs`.

pub mod api;
pub mod http;
pub mod inbound;
pub mod render;
pub mod socket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context;
use slack_morphism::prelude::*;

use crate::adapters::{Connection, Inbound};
use crate::clock::Clock;
use crate::config::{SlackConfig, SlackMode};
use crate::core::message::Message;
use crate::core::port::{ChatPort, DeliveryError, Destination, MessageRef, Platform, PortFuture};
use crate::core::procedure::Email;
use crate::engine::Engine;
use api::{SlackApi, api_error_code, delivery_error};

/// Slack's `chat.postMessage` allows about one message a second per channel.
const CHANNEL_INTERVAL: Duration = Duration::from_secs(1);
/// Messages of a conversation read back when checking for a message sent before a crash.
const RECENT_MESSAGES: u16 = 100;
/// Until `auth.test` has told the workspace's id, identities are linked under this name.
const UNKNOWN_WORKSPACE: &str = "slack";

/// What the port and the inbound side share: the Web API, the engine (set when the inbound
/// side starts, before anything is delivered), and what was learnt about accounts.
pub struct SlackShared {
    api: SlackApi,
    engine: OnceLock<Arc<Engine>>,
    clock: Arc<dyn Clock>,
    /// The workspace (team id) and the bot's own user id, from `auth.test`.
    workspace: RwLock<Option<String>>,
    bot_user: RwLock<Option<String>>,
    /// Email → Slack user id, and back, as learnt.
    accounts: Mutex<HashMap<Email, String>>,
    emails: Mutex<HashMap<String, Email>>,
    /// When each channel may next be posted to.
    channel_pace: tokio::sync::Mutex<HashMap<String, tokio::time::Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T: Clone>(lock: &RwLock<Option<T>>) -> Option<T> {
    lock.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A Block Kit message body from a neutral message.
pub fn content(message: &Message) -> SlackMessageContent {
    let rendered = render::render(message);
    // The renderer writes Block Kit JSON; slack-morphism keeps any block it does not model
    // verbatim, so this conversion cannot lose one.
    let blocks: Vec<SlackBlock> =
        serde_json::from_value(serde_json::Value::Array(rendered.blocks)).unwrap_or_default();
    SlackMessageContent::new()
        .with_text(rendered.text)
        .with_blocks(blocks)
}

/// The first block's `block_id` on a message queued with `key`: how procbot recognises, in a
/// conversation's history, a message it posted before a crash.
pub fn delivery_tag(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("procbot-{hex}")
}

/// A message body whose first block carries `tag`.
fn tagged_content(message: &Message, tag: &str) -> SlackMessageContent {
    let mut rendered = render::render(message);
    if let Some(first) = rendered.blocks.first_mut() {
        first["block_id"] = serde_json::Value::String(tag.to_string());
    }
    let blocks: Vec<SlackBlock> =
        serde_json::from_value(serde_json::Value::Array(rendered.blocks)).unwrap_or_default();
    SlackMessageContent::new()
        .with_text(rendered.text)
        .with_blocks(blocks)
}

/// Whether a message of a conversation's history carries `tag` as a block id.
fn carries_tag(message: &SlackHistoryMessage, tag: &str) -> bool {
    message
        .content
        .blocks
        .iter()
        .flatten()
        .any(|block| serde_json::to_value(block).is_ok_and(|b| b["block_id"] == tag))
}

/// A Slack message handle as procbot stores it: `channel:ts`.
pub fn message_ref(channel: &str, ts: &str) -> MessageRef {
    MessageRef(format!("{channel}:{ts}"))
}

fn split_ref(message_ref: &MessageRef) -> Result<(String, String), DeliveryError> {
    message_ref
        .0
        .split_once(':')
        .map(|(channel, ts)| (channel.to_string(), ts.to_string()))
        .ok_or_else(|| DeliveryError::Permanent(format!("`{message_ref}` is not a Slack message")))
}

impl SlackShared {
    fn engine(&self) -> Option<&Arc<Engine>> {
        self.engine.get()
    }

    pub fn workspace(&self) -> String {
        read(&self.workspace).unwrap_or_else(|| UNKNOWN_WORKSPACE.to_string())
    }

    pub fn bot_user(&self) -> Option<String> {
        read(&self.bot_user)
    }

    pub fn api(&self) -> &SlackApi {
        &self.api
    }

    /// Learns the workspace and the bot's own id (`auth.test`). A rejected token is an error
    /// that will not heal; anything else is retried by the caller.
    pub async fn identify(&self) -> Result<(), slack_morphism::errors::SlackClientError> {
        let me = self.api.auth_test().await?;
        tracing::info!(team = %me.team_id, bot = %me.user_id, "connected to Slack");
        *self
            .workspace
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(me.team_id.0);
        *self
            .bot_user
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(me.user_id.0);
        Ok(())
    }

    fn remember(&self, email: &Email, user: &str) {
        lock(&self.accounts).insert(email.clone(), user.to_string());
        lock(&self.emails).insert(user.to_string(), email.clone());
    }

    async fn link(&self, user: &SlackUser, email: &Email) {
        self.remember(email, &user.id.0);
        let Some(engine) = self.engine() else { return };
        if let Err(error) = engine
            .store()
            .link_identity(
                self.clock.now(),
                Platform::Slack,
                &self.workspace(),
                &user.id.0,
                email.as_str(),
                user.tz.as_deref(),
            )
            .await
        {
            tracing::warn!(%error, "could not record a Slack identity");
        }
    }

    /// The Slack account to DM `email` at: the directory's id, a linked identity, or Slack's
    /// own lookup by email (then remembered).
    pub async fn account_for(&self, email: &Email) -> Result<String, DeliveryError> {
        if let Some(user) = lock(&self.accounts).get(email) {
            return Ok(user.clone());
        }
        if let Some(engine) = self.engine() {
            // Until the procedures (and their directory) are loaded, nobody can be placed.
            let Some(served) = engine.library().current() else {
                return Err(DeliveryError::Transient(
                    "the procedures and directory are not loaded yet".to_string(),
                ));
            };
            let named = served
                .snapshot
                .directory
                .as_ref()
                .and_then(|d| d.person(email))
                .and_then(|p| p.slack.clone());
            if let Some(user) = named {
                self.remember(email, &user);
                return Ok(user);
            }
            let linked = engine
                .store()
                .identity_user_id(Platform::Slack, email.as_str())
                .await
                .map_err(|error| DeliveryError::Transient(error.to_string()))?;
            if let Some(user) = linked {
                self.remember(email, &user);
                return Ok(user);
            }
        }
        match self.api.lookup_by_email(email.as_str()).await {
            Ok(user) if user.deleted == Some(true) => Err(DeliveryError::Permanent(format!(
                "the Slack account of {email} is deactivated"
            ))),
            Ok(user) => {
                self.link(&user, email).await;
                Ok(user.id.0)
            }
            Err(error) if api_error_code(&error) == Some("users_not_found") => Err(
                DeliveryError::Permanent(format!("no Slack account uses the email {email}")),
            ),
            Err(error) => Err(delivery_error(&error)),
        }
    }

    /// The person behind a Slack account, if procbot can tell: the directory, a linked
    /// identity, or the account's profile email (needs `users:read.email`).
    pub async fn email_of(&self, user: &str) -> Option<Email> {
        if let Some(email) = lock(&self.emails).get(user) {
            return Some(email.clone());
        }
        let engine = self.engine()?;
        let named = engine.library().current().and_then(|served| {
            served.snapshot.directory.as_ref().and_then(|d| {
                d.people
                    .values()
                    .find(|p| p.slack.as_deref() == Some(user))
                    .map(|p| p.email.clone())
            })
        });
        if let Some(email) = named {
            self.remember(&email, user);
            return Some(email);
        }
        match engine
            .store()
            .identity_email(Platform::Slack, &self.workspace(), user)
            .await
        {
            Ok(Some(stored)) => {
                if let Ok(email) = Email::parse(&stored) {
                    self.remember(&email, user);
                    return Some(email);
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not read Slack identities"),
        }
        match self.api.user_info(user).await {
            Ok(info) => {
                let email = info
                    .profile
                    .as_ref()
                    .and_then(|p| p.email.as_ref())
                    .and_then(|e| Email::parse(&e.0).ok())?;
                self.link(&info, &email).await;
                Some(email)
            }
            Err(error) => {
                tracing::warn!(user, error = %error.to_string().lines().next().unwrap_or_default(), "could not look up a Slack account");
                None
            }
        }
    }

    /// The message tagged `tag` among the latest of the conversation `destination` leads to,
    /// if it is there. An error means procbot could not tell (better to wait than to risk a
    /// second copy).
    async fn find_delivered(
        &self,
        destination: &Destination,
        channel: &str,
        tag: &str,
    ) -> Result<Option<MessageRef>, DeliveryError> {
        let conversation = match destination {
            Destination::Person { .. } => Some(
                self.api
                    .open_dm(channel)
                    .await
                    .map_err(|e| delivery_error(&e))?,
            ),
            Destination::Channel { channel } if !channel.starts_with('#') => Some(channel.clone()),
            Destination::Channel { .. } => match self.engine() {
                // A channel configured by name: the id Slack gave back for an earlier post.
                Some(engine) => engine
                    .store()
                    .last_delivered_ref(Platform::Slack, destination)
                    .await
                    .map_err(|e| DeliveryError::Transient(e.to_string()))?
                    .and_then(|r| r.0.split_once(':').map(|(c, _)| c.to_string())),
                None => None,
            },
        };
        let Some(conversation) = conversation else {
            return Ok(None);
        };
        let messages = self
            .api
            .history(&conversation, RECENT_MESSAGES)
            .await
            .map_err(|e| delivery_error(&e))?;
        Ok(messages
            .iter()
            .find(|m| carries_tag(m, tag))
            .map(|m| message_ref(&conversation, &m.origin.ts.0)))
    }

    /// Waits until `channel` may be posted to again, and books the next slot.
    async fn pace(&self, channel: &str) {
        let wait_until = {
            let mut pace = self.channel_pace.lock().await;
            let now = tokio::time::Instant::now();
            let slot = pace
                .get(channel)
                .copied()
                .filter(|t| *t > now)
                .unwrap_or(now);
            pace.insert(channel.to_string(), slot + CHANNEL_INTERVAL);
            if pace.len() > 10_000 {
                pace.retain(|_, next| *next > now);
            }
            slot
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

/// The outbound port: posts, DMs (to the person's user id, which opens the DM), updates and
/// ephemeral replies.
pub struct SlackPort {
    shared: Arc<SlackShared>,
}

impl ChatPort for SlackPort {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn send<'a>(
        &'a self,
        destination: &'a Destination,
        message: &'a Message,
    ) -> PortFuture<'a, Result<MessageRef, DeliveryError>> {
        Box::pin(async move {
            let channel = match destination {
                Destination::Channel { channel } => channel.clone(),
                Destination::Person { email } => self.shared.account_for(email).await?,
            };
            self.shared.pace(&channel).await;
            let request = SlackApiChatPostMessageRequest::new(channel.into(), content(message))
                .with_unfurl_links(false)
                .with_unfurl_media(false);
            let posted = self
                .shared
                .api
                .post_message(&request)
                .await
                .map_err(|e| delivery_error(&e))?;
            Ok(message_ref(&posted.channel.0, &posted.ts.0))
        })
    }

    fn send_once<'a>(
        &'a self,
        destination: &'a Destination,
        message: &'a Message,
        key: &'a str,
        maybe_sent: bool,
    ) -> PortFuture<'a, Result<MessageRef, DeliveryError>> {
        Box::pin(async move {
            let channel = match destination {
                Destination::Channel { channel } => channel.clone(),
                Destination::Person { email } => self.shared.account_for(email).await?,
            };
            let tag = delivery_tag(key);
            if maybe_sent
                && let Some(found) = self
                    .shared
                    .find_delivered(destination, &channel, &tag)
                    .await?
            {
                tracing::info!(key, %found, "already delivered before a restart; not sent again");
                return Ok(found);
            }
            self.shared.pace(&channel).await;
            let request =
                SlackApiChatPostMessageRequest::new(channel.into(), tagged_content(message, &tag))
                    .with_unfurl_links(false)
                    .with_unfurl_media(false);
            let posted = self
                .shared
                .api
                .post_message(&request)
                .await
                .map_err(|e| delivery_error(&e))?;
            Ok(message_ref(&posted.channel.0, &posted.ts.0))
        })
    }

    fn update<'a>(
        &'a self,
        message_ref: &'a MessageRef,
        message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let (channel, ts) = split_ref(message_ref)?;
            let request =
                SlackApiChatUpdateRequest::new(channel.into(), content(message), ts.into());
            self.shared
                .api
                .update_message(&request)
                .await
                .map_err(|e| delivery_error(&e))?;
            Ok(())
        })
    }

    fn ephemeral<'a>(
        &'a self,
        context: &'a str,
        email: &'a Email,
        message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let user = self.shared.account_for(email).await?;
            let request = SlackApiChatPostEphemeralRequest::new(
                context.to_string().into(),
                user.into(),
                content(message),
            );
            self.shared
                .api
                .post_ephemeral(&request)
                .await
                .map_err(|e| delivery_error(&e))?;
            Ok(())
        })
    }
}

/// Slack as the configuration describes it: the port now, the inbound side (Socket Mode or
/// the HTTP endpoints) once the engine exists. Nothing here touches the network.
pub fn connect(config: &SlackConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Connection> {
    let bot_token = config
        .bot_token
        .as_ref()
        .context("Slack needs a bot token (PROCBOT_SLACK__BOT_TOKEN or slack.bot_token_file)")?;
    let api = SlackApi::new(config.api_base_url.as_ref().map(|u| &u.0), bot_token)
        .context("setting up the Slack Web API client")?;
    let shared = Arc::new(SlackShared {
        api,
        engine: OnceLock::new(),
        clock: clock.clone(),
        workspace: RwLock::new(None),
        bot_user: RwLock::new(None),
        accounts: Mutex::new(HashMap::new()),
        emails: Mutex::new(HashMap::new()),
        channel_pace: tokio::sync::Mutex::new(HashMap::new()),
    });
    let port = Arc::new(SlackPort {
        shared: shared.clone(),
    });
    let mode = config.mode;
    let signing_secret = config.signing_secret.clone();
    let app_token = config.app_token.clone();
    Ok(Connection {
        port,
        announce_channel: Some(config.announce_channel.clone()),
        start: Box::new(move |context: crate::adapters::InboundContext| {
            let engine = context.engine;
            let _ = shared.engine.set(engine.clone());
            let inbound = Arc::new(inbound::SlackInbound::new(shared.clone(), engine));
            match mode {
                SlackMode::Http => Inbound {
                    routes: signing_secret
                        .map(|secret| http::routes(inbound.clone(), secret, clock)),
                    task: Some((
                        "Slack",
                        Box::new(move |stop| Box::pin(socket::identify_then_wait(shared, stop))),
                    )),
                },
                SlackMode::Socket => Inbound {
                    routes: None,
                    task: Some((
                        "Slack Socket Mode",
                        Box::new(move |stop| Box::pin(socket::run(inbound, app_token, stop))),
                    )),
                },
            }
        }),
    })
}
