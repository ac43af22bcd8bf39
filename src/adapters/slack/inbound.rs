//! What people do in Slack, turned into requests and answered: `/procedure` commands, button
//! clicks (in messages and in the App Home tab), mentions and DMs, the Home tab opening. The
//! same answers serve Socket Mode and the HTTP endpoints.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use slack_morphism::prelude::*;

use super::{SlackShared, content, message_ref, render};
use crate::core::message::Message;
use crate::core::port::Platform;
use crate::core::request::Request;
use crate::engine::{Actor, Engine, Origin, Reply};

/// Event ids remembered to drop Slack's redeliveries (it retries an event it thinks was not
/// acknowledged in time).
const REMEMBERED_EVENTS: usize = 1000;

pub struct SlackInbound {
    shared: Arc<SlackShared>,
    engine: Arc<Engine>,
    seen_events: Mutex<(HashSet<String>, VecDeque<String>)>,
}

/// Where an answer goes when it is not a reply in the HTTP response or Socket Mode ack.
#[derive(Clone, Debug)]
enum Conversation {
    /// A channel or DM, optionally in a thread.
    Channel {
        channel: String,
        thread_ts: Option<String>,
        /// A DM with the bot: everything may be said there, privately.
        direct: bool,
    },
    /// The App Home tab: answers go to the person's DMs, and the tab is refreshed.
    Home,
}

/// One message made of several replies (a command usually has one).
fn combined(messages: Vec<Message>) -> Option<Message> {
    let mut messages = messages.into_iter();
    let mut first = messages.next()?;
    for message in messages {
        first = first.divider();
        first.blocks.extend(message.blocks);
    }
    Some(first)
}

/// A mention's text without the leading `<@BOT>` it starts with.
pub fn without_mentions(text: &str) -> String {
    let mut rest = text.trim();
    while let Some(after) = rest.strip_prefix("<@") {
        match after.find('>') {
            Some(end) => rest = after[end + 1..].trim_start(),
            None => break,
        }
    }
    rest.to_string()
}

impl SlackInbound {
    pub fn new(shared: Arc<SlackShared>, engine: Arc<Engine>) -> SlackInbound {
        SlackInbound {
            shared,
            engine,
            seen_events: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    pub fn shared(&self) -> &Arc<SlackShared> {
        &self.shared
    }

    async fn actor(&self, team: &str, user: &str) -> Actor {
        Actor {
            platform: Platform::Slack,
            workspace: if team.is_empty() {
                self.shared.workspace()
            } else {
                team.to_string()
            },
            user_id: user.to_string(),
            email: self.shared.email_of(user).await,
        }
    }

    /// Whether an event was seen before (and remembers it).
    fn first_time(&self, event_id: &str) -> bool {
        let mut seen = self
            .seen_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *seen;
        if !set.insert(event_id.to_string()) {
            return false;
        }
        order.push_back(event_id.to_string());
        if order.len() > REMEMBERED_EVENTS
            && let Some(oldest) = order.pop_front()
        {
            set.remove(&oldest);
        }
        true
    }

    /// `/procedure …`: the answer, ephemeral.
    pub async fn command(&self, event: &SlackCommandEvent) -> SlackCommandEventResponse {
        let actor = self.actor(&event.team_id.0, &event.user_id.0).await;
        let text = event.text.clone().unwrap_or_default();
        let replies = self
            .engine
            .handle(&actor, Request::from_text(&text), &Origin::default())
            .await;
        let mut shown = Vec::new();
        for reply in replies {
            match reply {
                Reply::Private(message) | Reply::Shareable(message) => shown.push(message),
                Reply::Update {
                    message_ref,
                    message,
                } => self.update(&message_ref.0, &message).await,
            }
        }
        let message = combined(shown).unwrap_or_else(|| Message::new().text("Done."));
        SlackCommandEventResponse::new(content(&message))
            .with_response_type(SlackMessageResponseType::Ephemeral)
    }

    /// A button click (or several, as Slack may batch them).
    pub async fn block_actions(&self, event: &SlackInteractionBlockActionsEvent) {
        let Some(user) = event.user.as_ref().map(|u| u.id.0.clone()) else {
            tracing::warn!("a Slack block action without a user was ignored");
            return;
        };
        let actor = self.actor(&event.team.id.0, &user).await;
        let (conversation, origin) = match &event.container {
            SlackInteractionActionContainer::Message(container) => {
                let channel = container
                    .channel_id
                    .as_ref()
                    .map(|c| c.0.clone())
                    .or_else(|| event.channel.as_ref().map(|c| c.id.0.clone()));
                match channel {
                    Some(channel) => {
                        let ephemeral = container.is_ephemeral == Some(true);
                        (
                            Conversation::Channel {
                                direct: channel.starts_with('D'),
                                channel: channel.clone(),
                                thread_ts: None,
                            },
                            Origin {
                                message_ref: (!ephemeral)
                                    .then(|| message_ref(&channel, &container.message_ts.0)),
                            },
                        )
                    }
                    None => (Conversation::Home, Origin::default()),
                }
            }
            SlackInteractionActionContainer::MessageAttachment(container) => (
                match &container.channel_id {
                    Some(channel) => Conversation::Channel {
                        direct: channel.0.starts_with('D'),
                        channel: channel.0.clone(),
                        thread_ts: None,
                    },
                    None => Conversation::Home,
                },
                Origin::default(),
            ),
            SlackInteractionActionContainer::View(_) => (Conversation::Home, Origin::default()),
        };
        for action in event.actions.iter().flatten() {
            let request = Request::from_action(&action.action_id.0);
            let replies = self.engine.handle(&actor, request, &origin).await;
            self.deliver(&actor, &conversation, replies).await;
        }
        if matches!(conversation, Conversation::Home) {
            self.publish_home(&event.team.id.0, &user).await;
        }
    }

    /// An Events API event: mentions, DMs to the bot, the Home tab opening.
    pub async fn push(&self, callback: &SlackPushEventCallback) {
        if !self.first_time(&callback.event_id.0) {
            tracing::debug!(event = %callback.event_id.0, "a redelivered Slack event was dropped");
            return;
        }
        let team = callback.team_id.0.clone();
        match &callback.event {
            SlackEventCallbackBody::AppMention(mention) => {
                let text = mention.content.text.clone().unwrap_or_default();
                let actor = self.actor(&team, &mention.user.0).await;
                let request = Request::from_text(&without_mentions(&text));
                let replies = self
                    .engine
                    .handle(&actor, request, &Origin::default())
                    .await;
                let thread = mention
                    .origin
                    .thread_ts
                    .clone()
                    .unwrap_or_else(|| mention.origin.ts.clone());
                let conversation = Conversation::Channel {
                    channel: mention.channel.0.clone(),
                    thread_ts: Some(thread.0),
                    direct: mention.channel.0.starts_with('D'),
                };
                self.deliver(&actor, &conversation, replies).await;
            }
            SlackEventCallbackBody::Message(message) => {
                let direct =
                    message.origin.channel_type.as_ref().map(|t| t.0.as_str()) == Some("im");
                // Only what a person types to the bot in its DMs: no edits, joins, or bots
                // (the bot's own messages included).
                if !direct || message.subtype.is_some() || message.sender.bot_id.is_some() {
                    return;
                }
                let (Some(user), Some(channel)) = (
                    message.sender.user.as_ref(),
                    message.origin.channel.as_ref(),
                ) else {
                    return;
                };
                if Some(user.0.clone()) == self.shared.bot_user() {
                    return;
                }
                let text = message
                    .content
                    .as_ref()
                    .and_then(|c| c.text.clone())
                    .unwrap_or_default();
                let actor = self.actor(&team, &user.0).await;
                let replies = self
                    .engine
                    .handle(
                        &actor,
                        Request::from_text(&without_mentions(&text)),
                        &Origin::default(),
                    )
                    .await;
                let thread = message
                    .origin
                    .thread_ts
                    .clone()
                    .unwrap_or_else(|| message.origin.ts.clone());
                let conversation = Conversation::Channel {
                    channel: channel.0.clone(),
                    thread_ts: Some(thread.0),
                    direct: true,
                };
                self.deliver(&actor, &conversation, replies).await;
            }
            SlackEventCallbackBody::AppHomeOpened(opened)
                if opened.tab.as_deref().unwrap_or("home") == "home" =>
            {
                self.publish_home(&team, &opened.user.0).await;
            }
            _ => {}
        }
    }

    /// Sends the engine's replies where they belong: updates to the clicked message, private
    /// answers ephemerally (or in a DM), shareable ones in the thread.
    async fn deliver(&self, actor: &Actor, conversation: &Conversation, replies: Vec<Reply>) {
        for reply in replies {
            match reply {
                Reply::Update {
                    message_ref,
                    message,
                } => self.update(&message_ref.0, &message).await,
                Reply::Private(message) | Reply::Shareable(message)
                    if matches!(conversation, Conversation::Home) =>
                {
                    self.post(&actor.user_id, None, &message).await;
                }
                Reply::Shareable(message) => {
                    if let Conversation::Channel {
                        channel, thread_ts, ..
                    } = conversation
                    {
                        self.post(channel, thread_ts.as_deref(), &message).await;
                    }
                }
                Reply::Private(message) => {
                    if let Conversation::Channel {
                        channel,
                        thread_ts,
                        direct,
                    } = conversation
                    {
                        if *direct {
                            self.post(channel, thread_ts.as_deref(), &message).await;
                        } else {
                            self.ephemeral(channel, &actor.user_id, thread_ts.as_deref(), &message)
                                .await;
                        }
                    }
                }
            }
        }
    }

    async fn post(&self, channel: &str, thread_ts: Option<&str>, message: &Message) {
        let mut request =
            SlackApiChatPostMessageRequest::new(channel.to_string().into(), content(message))
                .with_unfurl_links(false)
                .with_unfurl_media(false);
        if let Some(thread) = thread_ts {
            request = request.with_thread_ts(thread.to_string().into());
        }
        if let Err(error) = self.shared.api().post_message(&request).await {
            tracing::warn!(channel, error = %first_line(&error), "a Slack answer could not be posted");
        }
    }

    async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        thread_ts: Option<&str>,
        message: &Message,
    ) {
        let mut request = SlackApiChatPostEphemeralRequest::new(
            channel.to_string().into(),
            user.to_string().into(),
            content(message),
        );
        if let Some(thread) = thread_ts {
            request = request.with_thread_ts(thread.to_string().into());
        }
        if let Err(error) = self.shared.api().post_ephemeral(&request).await {
            tracing::warn!(channel, error = %first_line(&error), "a private Slack answer could not be posted");
        }
    }

    async fn update(&self, message_ref: &str, message: &Message) {
        let Some((channel, ts)) = message_ref.split_once(':') else {
            return;
        };
        let request = SlackApiChatUpdateRequest::new(
            channel.to_string().into(),
            content(message),
            ts.to_string().into(),
        );
        if let Err(error) = self.shared.api().update_message(&request).await {
            tracing::warn!(channel, error = %first_line(&error), "a clicked Slack message could not be updated");
        }
    }

    /// The App Home tab: pending acknowledgements with their buttons, and the procedures the
    /// person owns with their review dates.
    pub async fn publish_home(&self, team: &str, user: &str) {
        let actor = self.actor(team, user).await;
        let mut parts = vec![Message::new().header("Your procedures").context(
            "Type /procedure followed by a question anywhere in Slack to find a procedure.",
        )];
        for request in [Request::Pending, Request::Mine] {
            for reply in self
                .engine
                .handle(&actor, request, &Origin::default())
                .await
            {
                if let Reply::Private(message) | Reply::Shareable(message) = reply {
                    parts.push(message);
                }
            }
        }
        let view_json = render::render_home(&parts);
        let view: SlackView = match serde_json::from_value(view_json) {
            Ok(view) => view,
            Err(error) => {
                tracing::error!(%error, "the Home tab did not render as a Slack view");
                return;
            }
        };
        if let Err(error) = self.shared.api().publish_home(user, view).await {
            tracing::warn!(user, error = %first_line(&error), "the Slack Home tab could not be published");
        }
    }

    /// Answers a command late, through its `response_url` (when the answer took longer than
    /// Slack's 3 seconds).
    pub async fn respond_later(
        &self,
        response_url: &url::Url,
        response: SlackCommandEventResponse,
    ) {
        let request = SlackApiPostWebhookMessageRequest::new(response.content);
        if let Err(error) = self.shared.api().respond(response_url, &request).await {
            tracing::warn!(error = %first_line(&error), "a late Slack answer could not be sent");
        }
    }
}

fn first_line(error: &impl std::fmt::Display) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped_from_the_start_only() {
        assert_eq!(
            without_mentions("<@U0LAN0Z89> how do I back up? <@U1>"),
            "how do I back up? <@U1>"
        );
        assert_eq!(without_mentions("  <@U1> <@U2>  pending"), "pending");
        assert_eq!(without_mentions("<@broken"), "<@broken");
    }
}
