//! The outbound port: the one trait every chat adapter implements (post to a channel, DM a
//! person, update a message, reply ephemerally), and the vocabulary around it. Defined with
//! std futures only, so the core stays free of any runtime or platform crate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::message::Message;
use crate::core::procedure::Email;

pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Console,
    Slack,
    Discord,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Console, Platform::Slack, Platform::Discord];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Console => "console",
            Platform::Slack => "slack",
            Platform::Discord => "discord",
        }
    }

    pub fn parse(text: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a new message goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Destination {
    /// A channel, as the configuration names it (`#procedures`, a Discord channel id).
    Channel { channel: String },
    /// A person's direct messages; the adapter finds their account (directory id, or email).
    Person { email: Email },
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Channel { channel } => write!(f, "channel {channel}"),
            Destination::Person { email } => write!(f, "DM to {email}"),
        }
    }
}

/// A platform's handle on a message it delivered (Slack `channel:ts`, a Discord
/// `channel_id/message_id`), so the message can be updated later.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef(pub String);

impl fmt::Display for MessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a delivery failed, which decides what the outbox does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryError {
    /// The platform said "slow down" (HTTP 429): wait `retry_after`, without counting an attempt.
    RateLimited { retry_after: Duration },
    /// It may work later (a timeout, a 5xx, a connection refused): retry with backoff.
    Transient(String),
    /// It will not heal (user gone, channel archived, no such account): record, never retry.
    Permanent(String),
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::RateLimited { retry_after } => {
                write!(
                    f,
                    "rate limited; retry after {} ms",
                    retry_after.as_millis()
                )
            }
            DeliveryError::Transient(reason) => write!(f, "temporary failure: {reason}"),
            DeliveryError::Permanent(reason) => write!(f, "permanent failure: {reason}"),
        }
    }
}

/// The outbound side of a chat platform.
pub trait ChatPort: Send + Sync {
    fn platform(&self) -> Platform;

    /// Posts a new message to a channel or a person's DMs.
    fn send<'a>(
        &'a self,
        destination: &'a Destination,
        message: &'a Message,
    ) -> PortFuture<'a, Result<MessageRef, DeliveryError>>;

    /// Posts a queued message exactly once. `key` is its outbox idempotency key;
    /// `maybe_sent` says an earlier attempt may have reached the platform (its worker died
    /// mid-send, or the send timed out), so an adapter that can look should find that message
    /// and return it instead of posting again. Adapters that cannot, post.
    fn send_once<'a>(
        &'a self,
        destination: &'a Destination,
        message: &'a Message,
        _key: &'a str,
        _maybe_sent: bool,
    ) -> PortFuture<'a, Result<MessageRef, DeliveryError>> {
        self.send(destination, message)
    }

    /// Replaces a message the bot sent earlier (the clicked announcement).
    fn update<'a>(
        &'a self,
        message_ref: &'a MessageRef,
        message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>>;

    /// A reply only `email` sees, in the conversation `context` names (a Slack channel, a
    /// Discord interaction). Adapters that cannot, DM instead.
    fn ephemeral<'a>(
        &'a self,
        context: &'a str,
        email: &'a Email,
        message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>>;
}
