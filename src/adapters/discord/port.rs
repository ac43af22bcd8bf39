//! The Discord `ChatPort`: posts to channels and DMs people by their Discord id (from the
//! directory, or a linked identity), one or more Discord messages per procbot message, and
//! edits the clicked message. Never retries on its own: failures go back to the outbox as
//! rate limited, temporary or permanent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serenity::http::{LightMethod, Route};
use serenity::model::id::{ChannelId, MessageId};
use sha2::{Digest, Sha256};

use super::render::{DiscordMessage, render};
use super::rest::{Rest, RestError, codes};
use crate::core::message::Message;
use crate::core::port::{ChatPort, DeliveryError, Destination, MessageRef, Platform, PortFuture};
use crate::core::procedure::Email;
use crate::engine::Engine;

/// Partly delivered messages remembered at most; beyond that the oldest progress is dropped.
const MAX_IN_PROGRESS: usize = 1000;

pub struct DiscordPort {
    rest: Arc<Rest>,
    /// Set when the inbound side starts: the served directory and the store find people.
    engine: Arc<OnceLock<Arc<Engine>>>,
    /// Discord user id → DM channel id, so each person's DM channel is opened once.
    dm_channels: Mutex<HashMap<String, String>>,
    /// A message split over several Discord messages whose delivery stopped part-way (a 429,
    /// a 5xx): the ids of the parts already posted, so the outbox's retry posts only the rest.
    in_progress: Mutex<Vec<(String, Vec<String>)>>,
}

/// Where a Discord `MessageRef` points: `"{channel_id}/{message_id}"`.
pub fn parse_message_ref(message_ref: &MessageRef) -> Option<(ChannelId, MessageId)> {
    let (channel, message) = message_ref.0.split_once('/')?;
    Some((snowflake(channel)?.into(), snowflake(message)?.into()))
}

/// A Discord id: digits, not zero.
pub fn snowflake(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|id| *id != 0)
}

/// What a failed REST call means for the outbox.
pub fn delivery_error(error: RestError) -> DeliveryError {
    match &error {
        RestError::RateLimited(retry_after) => DeliveryError::RateLimited {
            retry_after: *retry_after,
        },
        RestError::Network(_) => DeliveryError::Transient(error.to_string()),
        RestError::Refused { status, code, .. } => match (*status, *code) {
            (_, Some(codes::CANNOT_DM)) => DeliveryError::Permanent(format!(
                "the person does not accept DMs from procbot (Discord code 50007): {error}"
            )),
            (_, Some(codes::MISSING_ACCESS | codes::MISSING_PERMISSIONS)) => {
                DeliveryError::Permanent(format!(
                    "procbot may not post there (missing access or permissions): {error}"
                ))
            }
            (_, Some(codes::UNKNOWN_CHANNEL | codes::UNKNOWN_USER | codes::UNKNOWN_MESSAGE)) => {
                DeliveryError::Permanent(error.to_string())
            }
            // A rejected token heals when someone fixes it: keep the messages.
            (401, _) => DeliveryError::Transient(format!(
                "Discord rejected the bot token (discord.token): {error}"
            )),
            (status, _) if status >= 500 => DeliveryError::Transient(error.to_string()),
            _ => DeliveryError::Permanent(error.to_string()),
        },
    }
}

enum PostError {
    Refused(DeliveryError),
    Rest(RestError),
}

impl PostError {
    fn into_delivery(self) -> DeliveryError {
        match self {
            PostError::Refused(error) => error,
            PostError::Rest(error) => delivery_error(error),
        }
    }
}

fn body(message: &DiscordMessage) -> serde_json::Value {
    serde_json::to_value(message).unwrap_or_default()
}

fn progress_key(channel: &str, message: &Message) -> String {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_bytes());
    hasher.update(b"\n");
    hasher.update(serde_json::to_vec(message).unwrap_or_default());
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl DiscordPort {
    pub fn new(rest: Arc<Rest>, engine: Arc<OnceLock<Arc<Engine>>>) -> DiscordPort {
        DiscordPort {
            rest,
            engine,
            dm_channels: Mutex::new(HashMap::new()),
            in_progress: Mutex::new(Vec::new()),
        }
    }

    /// The Discord user id procbot DMs `email` at.
    async fn user_id_of(&self, email: &Email) -> Result<String, DeliveryError> {
        let Some(engine) = self.engine.get() else {
            return Err(DeliveryError::Transient(
                "the Discord adapter has not started yet".to_string(),
            ));
        };
        // Until the procedures (and their directory) are loaded, nobody can be placed.
        let Some(served) = engine.library().current() else {
            return Err(DeliveryError::Transient(
                "the procedures and directory are not loaded yet".to_string(),
            ));
        };
        let from_directory = served
            .snapshot
            .directory
            .as_ref()
            .and_then(|d| d.person(email))
            .and_then(|p| p.discord.clone());
        if let Some(id) = from_directory {
            return Ok(id);
        }
        match engine
            .store()
            .identity_user_id(Platform::Discord, email.as_str())
            .await
        {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(DeliveryError::Permanent(format!(
                "{email} has no Discord account: give them a `discord:` id in directory.yaml"
            ))),
            Err(error) => Err(DeliveryError::Transient(format!(
                "reading linked identities: {error}"
            ))),
        }
    }

    async fn dm_channel(&self, user_id: &str) -> Result<String, DeliveryError> {
        if snowflake(user_id).is_none() {
            return Err(DeliveryError::Permanent(format!(
                "`{user_id}` is not a Discord user id"
            )));
        }
        if let Some(channel) = self.cached_dm(user_id) {
            return Ok(channel);
        }
        let opened = self
            .rest
            .call(
                LightMethod::Post,
                Route::UserMeDmChannels,
                Some(&serde_json::json!({ "recipient_id": user_id })),
            )
            .await
            .map_err(delivery_error)?;
        let channel = opened
            .as_ref()
            .and_then(|c| c.get("id"))
            .and_then(serde_json::Value::as_str)
            .filter(|id| snowflake(id).is_some())
            .ok_or_else(|| {
                DeliveryError::Transient("Discord opened a DM channel without an id".to_string())
            })?
            .to_string();
        self.dm_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(user_id.to_string(), channel.clone());
        Ok(channel)
    }

    fn cached_dm(&self, user_id: &str) -> Option<String> {
        self.dm_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(user_id)
            .cloned()
    }

    fn forget_dm(&self, user_id: &str) {
        self.dm_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(user_id);
    }

    fn progress(&self, key: &str) -> Vec<String> {
        self.in_progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default()
    }

    fn set_progress(&self, key: &str, ids: Option<Vec<String>>) {
        let mut progress = self
            .in_progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        progress.retain(|(k, _)| k != key);
        if let Some(ids) = ids {
            if progress.len() >= MAX_IN_PROGRESS {
                progress.remove(0);
            }
            progress.push((key.to_string(), ids));
        }
    }

    /// Posts every part of `message` to `channel`, resuming after the parts a failed attempt
    /// already posted. The reference is the last part's: the one with the buttons.
    ///
    /// With the outbox's `key`, each part carries a nonce Discord enforces: a part posted
    /// again within minutes (its sender died before hearing back) returns the message already
    /// there instead of a second copy.
    async fn post(
        &self,
        channel: &str,
        message: &Message,
        outbox_key: Option<&str>,
    ) -> Result<MessageRef, PostError> {
        let Some(channel_id) = snowflake(channel) else {
            return Err(PostError::Refused(DeliveryError::Permanent(format!(
                "`{channel}` is not a Discord channel id (discord.announce_channel_id takes the channel's numeric id)"
            ))));
        };
        let parts = render(message);
        let key = progress_key(channel, message);
        let mut posted = self.progress(&key);
        for (index, part) in parts.iter().enumerate().skip(posted.len()) {
            let mut json = body(part);
            if let (Some(outbox_key), Some(fields)) = (outbox_key, json.as_object_mut()) {
                fields.insert("nonce".into(), nonce(outbox_key, index).into());
                fields.insert("enforce_nonce".into(), true.into());
            }
            let sent = self
                .rest
                .call(
                    LightMethod::Post,
                    Route::ChannelMessages {
                        channel_id: channel_id.into(),
                    },
                    Some(&json),
                )
                .await;
            let id = match sent {
                Ok(answer) => answer
                    .as_ref()
                    .and_then(|m| m.get("id"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
                Err(error) => {
                    if !posted.is_empty() {
                        self.set_progress(&key, Some(posted.clone()));
                    }
                    return Err(PostError::Rest(error));
                }
            };
            let Some(id) = id.filter(|id| snowflake(id).is_some()) else {
                // Posted, but without an id it cannot be updated; record it as delivered all
                // the same rather than post it twice.
                tracing::warn!(channel, "Discord accepted a message but returned no id");
                posted.push("0".to_string());
                continue;
            };
            posted.push(id);
        }
        self.set_progress(&key, None);
        let last = posted.last().cloned().unwrap_or_else(|| "0".to_string());
        Ok(MessageRef(format!("{channel}/{last}")))
    }
}

impl DiscordPort {
    async fn deliver(
        &self,
        destination: &Destination,
        message: &Message,
        key: Option<&str>,
    ) -> Result<MessageRef, DeliveryError> {
        match destination {
            Destination::Channel { channel } => self
                .post(channel, message, key)
                .await
                .map_err(PostError::into_delivery),
            Destination::Person { email } => {
                let user_id = self.user_id_of(email).await?;
                let channel = self.dm_channel(&user_id).await?;
                match self.post(&channel, message, key).await {
                    // A DM channel Discord no longer knows: open a new one next time.
                    Err(PostError::Rest(error)) if error.code() == Some(codes::UNKNOWN_CHANNEL) => {
                        self.forget_dm(&user_id);
                        Err(DeliveryError::Transient(error.to_string()))
                    }
                    other => other.map_err(PostError::into_delivery),
                }
            }
        }
    }
}

/// A part's nonce (Discord takes 25 characters at most): the outbox key and part, hashed.
fn nonce(key: &str, part: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{key}\n{part}").as_bytes());
    let hex: String = digest[..11].iter().map(|b| format!("{b:02x}")).collect();
    format!("pb{hex}")
}

impl ChatPort for DiscordPort {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    fn send<'a>(
        &'a self,
        destination: &'a Destination,
        message: &'a Message,
    ) -> PortFuture<'a, Result<MessageRef, DeliveryError>> {
        Box::pin(self.deliver(destination, message, None))
    }

    fn send_once<'a>(
        &'a self,
        destination: &'a Destination,
        message: &'a Message,
        key: &'a str,
        _maybe_sent: bool,
    ) -> PortFuture<'a, Result<MessageRef, DeliveryError>> {
        // The nonce makes every attempt safe to repeat; no need to look first.
        Box::pin(self.deliver(destination, message, Some(key)))
    }

    fn update<'a>(
        &'a self,
        message_ref: &'a MessageRef,
        message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let Some((channel_id, message_id)) = parse_message_ref(message_ref) else {
                return Err(DeliveryError::Permanent(format!(
                    "`{message_ref}` is not a Discord message reference"
                )));
            };
            let last = render(message).pop().unwrap_or_else(|| DiscordMessage {
                content: None,
                embeds: Vec::new(),
                components: Vec::new(),
                allowed_mentions: Default::default(),
                flags: None,
            });
            self.rest
                .call(
                    LightMethod::Patch,
                    Route::ChannelMessage {
                        channel_id,
                        message_id,
                    },
                    Some(&body(&last)),
                )
                .await
                .map(|_| ())
                .map_err(delivery_error)
        })
    }

    fn ephemeral<'a>(
        &'a self,
        _context: &'a str,
        email: &'a Email,
        message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>> {
        // Ephemeral messages exist only as answers to an interaction; outside one, a DM.
        Box::pin(async move {
            self.send(
                &Destination::Person {
                    email: email.clone(),
                },
                message,
            )
            .await
            .map(|_| ())
        })
    }
}
