//! Discord interactions, whichever way they arrive (gateway or HTTP endpoint): the payload as
//! procbot reads it (only the fields it uses, so Discord adding fields breaks nothing), the
//! `/procedure` command's definition and autocomplete, and answering: the engine's replies
//! become an interaction response (ephemeral, or UPDATE_MESSAGE for the clicked message),
//! deferred when the engine is slower than Discord's 3 seconds allow, then follow-ups.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serenity::http::{LightMethod, Route};
use serenity::model::id::{ApplicationId, ChannelId, InteractionId};

use super::port::{parse_message_ref, snowflake};
use super::render::{DiscordMessage, render};
use super::rest::{Rest, RestError, codes};
use crate::core::message::Message;
use crate::core::port::{MessageRef, Platform};
use crate::core::request::Request;
use crate::engine::{Actor, Engine, Origin, Reply};
use crate::search::Viewer;

/// The slash command's name.
pub const COMMAND: &str = "procedure";
/// Autocomplete offers at most this many choices (Discord's limit).
pub const MAX_CHOICES: usize = 25;
/// Discord's limit for a choice's name and value.
const CHOICE_LIMIT: usize = 100;
/// Discord allows 3 s for the first response; the engine gets this long before procbot
/// defers and answers later.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);

pub const PING: u8 = 1;
pub const APPLICATION_COMMAND: u8 = 2;
pub const MESSAGE_COMPONENT: u8 = 3;
pub const AUTOCOMPLETE: u8 = 4;

/// Interaction response types.
const PONG: u8 = 1;
const CHANNEL_MESSAGE: u8 = 4;
const DEFERRED_CHANNEL_MESSAGE: u8 = 5;
const DEFERRED_UPDATE_MESSAGE: u8 = 6;
const UPDATE_MESSAGE: u8 = 7;
const AUTOCOMPLETE_RESULT: u8 = 8;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Interaction {
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub application_id: Option<String>,
    #[serde(default)]
    pub guild_id: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub member: Option<Member>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub data: Option<Data>,
    #[serde(default)]
    pub message: Option<ClickedMessage>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub user: Option<User>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub bot: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Data {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub options: Vec<CommandOption>,
    #[serde(default)]
    pub custom_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CommandOption {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: u8,
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    #[serde(default)]
    pub options: Vec<CommandOption>,
    #[serde(default)]
    pub focused: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClickedMessage {
    pub id: String,
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// Why an interaction cannot be answered at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unanswerable {
    #[error("the body is not a Discord interaction: {0}")]
    Malformed(String),
    #[error("interaction type {0} is not one procbot handles")]
    UnknownType(u8),
}

/// Reads an interaction from its JSON body.
pub fn parse(body: &[u8]) -> Result<Interaction, Unanswerable> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let interaction: Interaction = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| Unanswerable::Malformed(cut(&error.to_string(), 200)))?;
    match interaction.kind {
        PING | APPLICATION_COMMAND | MESSAGE_COMPONENT | AUTOCOMPLETE => Ok(interaction),
        other => Err(Unanswerable::UnknownType(other)),
    }
}

fn cut(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

impl Interaction {
    /// Who acted, as the engine sees them; `None` when the payload names no user.
    pub fn actor(&self) -> Option<Actor> {
        let user = self
            .member
            .as_ref()
            .and_then(|m| m.user.as_ref())
            .or(self.user.as_ref())?;
        snowflake(&user.id)?;
        Some(Actor {
            platform: Platform::Discord,
            workspace: self
                .guild_id
                .clone()
                .filter(|g| snowflake(g).is_some())
                .unwrap_or_else(|| "dm".to_string()),
            user_id: user.id.clone(),
            email: None,
        })
    }

    /// The clicked message, as the outbox recorded it: `"{channel}/{message}"`.
    pub fn clicked(&self) -> Option<MessageRef> {
        let message = self.message.as_ref()?;
        let channel = message.channel_id.as_ref().or(self.channel_id.as_ref())?;
        snowflake(channel)?;
        snowflake(&message.id)?;
        Some(MessageRef(format!("{channel}/{}", message.id)))
    }

    /// What a click or a `/procedure` command asks, and the message it was clicked on;
    /// `None` for a command other than `/procedure`.
    pub fn request(&self) -> Option<(Request, Origin)> {
        if self.kind == MESSAGE_COMPONENT {
            let custom_id = self
                .data
                .as_ref()
                .and_then(|d| d.custom_id.as_deref())
                .unwrap_or_default();
            return Some((
                Request::from_action(custom_id),
                Origin {
                    message_ref: self.clicked(),
                },
            ));
        }
        let text = self.command_text()?;
        let request = match text.strip_prefix('?') {
            Some(unknown) => Request::Unknown {
                text: format!("/{COMMAND} {unknown}"),
            },
            None => Request::from_text(&text),
        };
        Some((request, Origin::default()))
    }

    /// The `/procedure` subcommand and its options, as the text a person would type.
    fn command_text(&self) -> Option<String> {
        let data = self.data.as_ref()?;
        if data.name.as_deref() != Some(COMMAND) {
            return None;
        }
        let Some(sub) = data.options.first() else {
            return Some(String::new());
        };
        let value = |name: &str| {
            sub.options
                .iter()
                .find(|o| o.name == name)
                .and_then(|o| o.value.as_ref())
                .map(|v| match v.as_str() {
                    Some(text) => text.replace(['\n', '\r'], " "),
                    // Integer options (a run, a step) arrive as numbers.
                    None => v.to_string(),
                })
                .unwrap_or_default()
        };
        Some(match sub.name.as_str() {
            "run" => format!("run {}", value("id")),
            "step" => format!(
                "step {} {} {} {}",
                value("run"),
                value("step"),
                value("outcome"),
                value("note")
            )
            .trim_end()
            .to_string(),
            "note" => format!("note {} {} {}", value("run"), value("step"), value("text")),
            "finish" => format!("finish {}", value("run")),
            "runs" => "runs".to_string(),
            "find" => format!("find {}", value("query")),
            "show" => format!("show {}", value("id")),
            "ack" => format!("ack {}", value("id")),
            "review" => format!("review {} {}", value("id"), value("outcome")),
            "pending" | "mine" | "list" | "help" => sub.name.clone(),
            other => format!("?{other}"),
        })
    }

    /// The option being typed, for autocomplete: subcommand, option name, text so far.
    pub fn focused(&self) -> Option<(&str, &str, String)> {
        let data = self.data.as_ref()?;
        if data.name.as_deref() != Some(COMMAND) {
            return None;
        }
        let sub = data.options.first()?;
        let option = sub.options.iter().find(|o| o.focused)?;
        let text = option
            .value
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        Some((sub.name.as_str(), option.name.as_str(), cut(text, 200)))
    }
}

/// The `/procedure` command, as registered (bulk overwrite) per guild or globally.
pub fn command_definition() -> serde_json::Value {
    let id_option = |description: &str| {
        serde_json::json!({
            "type": 3, "name": "id", "description": description,
            "required": true, "autocomplete": true, "max_length": 80
        })
    };
    serde_json::json!({
        "name": COMMAND,
        "type": 1,
        "description": "Find and read procedures, and see what you have to acknowledge",
        // Guild channels and DMs with the bot.
        "contexts": [0, 1],
        "integration_types": [0],
        "options": [
            {"type": 1, "name": "find", "description": "Find the procedure that answers a question",
             "options": [{"type": 3, "name": "query", "description": "What you want to do, in words",
                          "required": true, "autocomplete": true, "max_length": 500}]},
            {"type": 1, "name": "show", "description": "Read a procedure",
             "options": [id_option("The procedure to read")]},
            {"type": 1, "name": "pending", "description": "What you still have to acknowledge"},
            {"type": 1, "name": "mine", "description": "The procedures you own: reviews and acknowledgements"},
            {"type": 1, "name": "list", "description": "Every procedure you can see"},
            {"type": 1, "name": "help", "description": "What procbot can do"},
            {"type": 1, "name": "ack", "description": "Acknowledge the current version of a procedure",
             "options": [id_option("The procedure to acknowledge")]},
            {"type": 1, "name": "review", "description": "Answer a review reminder for a procedure you own",
             "options": [id_option("The procedure you reviewed"),
                         {"type": 3, "name": "outcome", "description": "What you found", "required": true,
                          "choices": [{"name": "Still accurate", "value": "ok"},
                                      {"name": "Needs changes", "value": "changes"},
                                      {"name": "Snooze 7 days", "value": "snooze"}]}]},
            {"type": 1, "name": "run", "description": "Perform a procedure now, as a checklist",
             "options": [id_option("The procedure to perform")]},
            {"type": 1, "name": "runs", "description": "Your open procedure runs"},
            {"type": 1, "name": "step", "description": "Record a step of a run",
             "options": [{"type": 4, "name": "run", "description": "The run's number", "required": true, "min_value": 1},
                         {"type": 4, "name": "step", "description": "The step's number", "required": true, "min_value": 1, "max_value": 999},
                         {"type": 3, "name": "outcome", "description": "What happened", "required": true,
                          "choices": [{"name": "Done", "value": "done"},
                                      {"name": "Not applicable", "value": "na"},
                                      {"name": "Problem", "value": "problem"}]},
                         {"type": 3, "name": "note", "description": "A reason, a note or a link (evidence)", "max_length": 500}]},
            {"type": 1, "name": "note", "description": "Add a note or link to a step of a run",
             "options": [{"type": 4, "name": "run", "description": "The run's number", "required": true, "min_value": 1},
                         {"type": 4, "name": "step", "description": "The step's number", "required": true, "min_value": 1, "max_value": 999},
                         {"type": 3, "name": "text", "description": "The reason, note or link", "required": true, "max_length": 500}]},
            {"type": 1, "name": "finish", "description": "Finish a run",
             "options": [{"type": 4, "name": "run", "description": "The run's number", "required": true, "min_value": 1}]}
        ]
    })
}

/// Work left after the first response is sent: edits and follow-ups.
pub type AfterResponse = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The first response (the HTTP body, or what is posted to the callback route), and what to
/// do once Discord has it.
pub struct FirstResponse {
    pub body: serde_json::Value,
    pub after: Option<AfterResponse>,
}

/// Answers interactions with the engine.
pub struct Interactions {
    engine: Arc<Engine>,
    rest: Arc<Rest>,
    /// The application's id, learnt at start-up; interactions carry it too.
    application_id: Arc<OnceLock<String>>,
    answer_within: Duration,
}

/// An ephemeral message (flags 64) with nothing else, for refusals and apologies.
fn notice(text: &str) -> serde_json::Value {
    let message = render(&Message::new().text(text)).remove(0).ephemeral();
    serde_json::json!({ "type": CHANNEL_MESSAGE, "data": message })
}

/// What the engine's replies become on Discord.
struct Planned {
    /// The clicked message, re-rendered, when the engine updated it.
    clicked_update: Option<DiscordMessage>,
    /// Other messages the engine updated (not the clicked one): edited through the channel.
    other_updates: Vec<(MessageRef, Message)>,
    /// Ephemeral messages for the person, in order.
    private: Vec<DiscordMessage>,
}

fn plan(replies: Vec<Reply>, clicked: Option<&MessageRef>) -> Planned {
    let mut planned = Planned {
        clicked_update: None,
        other_updates: Vec::new(),
        private: Vec::new(),
    };
    for reply in replies {
        match reply {
            Reply::Update {
                message_ref,
                message,
            } => {
                if Some(&message_ref) == clicked && planned.clicked_update.is_none() {
                    // Buttons live on the last part, which is the message clicked.
                    planned.clicked_update = render(&message).pop();
                } else {
                    planned.other_updates.push((message_ref, message));
                }
            }
            // Slash command answers stay ephemeral, shareable or not: the person chose to ask.
            Reply::Private(message) | Reply::Shareable(message) => planned
                .private
                .extend(render(&message).into_iter().map(DiscordMessage::ephemeral)),
        }
    }
    planned
}

impl Interactions {
    pub fn new(
        engine: Arc<Engine>,
        rest: Arc<Rest>,
        application_id: Arc<OnceLock<String>>,
        answer_within: Duration,
    ) -> Interactions {
        Interactions {
            engine,
            rest,
            application_id,
            answer_within,
        }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn application_of(&self, interaction: &Interaction) -> Option<String> {
        interaction
            .application_id
            .clone()
            .filter(|id| snowflake(id).is_some())
            .or_else(|| self.application_id.get().cloned())
    }

    /// The first response to `interaction`, and the work after it.
    pub async fn answer(self: &Arc<Self>, interaction: Interaction) -> FirstResponse {
        match interaction.kind {
            PING => FirstResponse {
                body: serde_json::json!({ "type": PONG }),
                after: None,
            },
            AUTOCOMPLETE => FirstResponse {
                body: serde_json::json!({
                    "type": AUTOCOMPLETE_RESULT,
                    "data": { "choices": self.choices(&interaction).await }
                }),
                after: None,
            },
            APPLICATION_COMMAND | MESSAGE_COMPONENT => self.request(interaction).await,
            other => FirstResponse {
                body: notice(&format!(
                    "procbot does not handle interactions of type {other}."
                )),
                after: None,
            },
        }
    }

    async fn choices(&self, interaction: &Interaction) -> Vec<serde_json::Value> {
        let Some((sub, option, typed)) = interaction.focused() else {
            return Vec::new();
        };
        let Some(actor) = interaction.actor() else {
            return Vec::new();
        };
        let Some(served) = self.engine.library().current() else {
            return Vec::new();
        };
        let email = match self.engine.person(&actor).await {
            Ok(email) => email,
            Err(error) => {
                tracing::warn!(%error, "autocomplete could not identify the person");
                None
            }
        };
        let typed = typed.trim().to_string();
        // Found by words when there are words; else every procedure the person may see.
        let mut procedures: Vec<(String, String)> = if typed.is_empty() {
            served
                .snapshot
                .procedures
                .values()
                .map(|e| &e.procedure)
                .filter(|p| crate::engine::may_see(&served.snapshot, p, email.as_ref()))
                .map(|p| (p.id.to_string(), p.title.clone()))
                .collect()
        } else {
            served
                .index
                .lookup(&typed, &Viewer::Person(email.clone()), MAX_CHOICES)
                .map(|found| {
                    found
                        .results
                        .into_iter()
                        .chain(found.suggestions)
                        .map(|hit| (hit.id.to_string(), hit.title))
                        .collect()
                })
                .unwrap_or_default()
        };
        if !typed.is_empty() {
            // An id being typed: every visible procedure whose id starts with it, first.
            let lowered = typed.to_lowercase();
            let mut by_id: Vec<(String, String)> = served
                .snapshot
                .procedures
                .values()
                .map(|e| &e.procedure)
                .filter(|p| p.id.as_str().starts_with(&lowered))
                .filter(|p| crate::engine::may_see(&served.snapshot, p, email.as_ref()))
                .map(|p| (p.id.to_string(), p.title.clone()))
                .collect();
            by_id.append(&mut procedures);
            procedures = by_id;
        }
        let mut seen = std::collections::BTreeSet::new();
        procedures.retain(|(id, _)| seen.insert(id.clone()));
        procedures
            .into_iter()
            .take(MAX_CHOICES)
            .map(|(id, title)| {
                let value = if sub == "find" && option == "query" {
                    cut(&title, CHOICE_LIMIT)
                } else {
                    id.clone()
                };
                serde_json::json!({
                    "name": cut(&format!("{title} ({id})"), CHOICE_LIMIT),
                    "value": value,
                })
            })
            .collect()
    }

    async fn request(self: &Arc<Self>, interaction: Interaction) -> FirstResponse {
        let Some(actor) = interaction.actor() else {
            return FirstResponse {
                body: notice(
                    "This interaction names no Discord user, so procbot cannot answer it.",
                ),
                after: None,
            };
        };
        let component = interaction.kind == MESSAGE_COMPONENT;
        let (request, origin) = match interaction.request() {
            Some(asked) => asked,
            None => {
                let name = interaction
                    .data
                    .as_ref()
                    .and_then(|d| d.name.clone())
                    .unwrap_or_default();
                return FirstResponse {
                    body: notice(&format!(
                        "procbot answers `/{COMMAND}` only, not `/{}`.",
                        cut(&name, 32)
                    )),
                    after: None,
                };
            }
        };
        let engine = self.engine.clone();
        let clicked = origin.message_ref.clone();
        let mut handling = tokio::spawn(async move {
            let replies = engine.handle(&actor, request, &origin).await;
            plan(replies, clicked.as_ref())
        });
        let planned = if self.answer_within.is_zero() {
            None
        } else {
            match tokio::time::timeout(self.answer_within, &mut handling).await {
                Ok(Ok(planned)) => Some(planned),
                Ok(Err(error)) => {
                    tracing::error!(%error, "answering an interaction failed");
                    return FirstResponse {
                        body: notice(
                            "Sorry, something went wrong on my side. Try again in a minute.",
                        ),
                        after: None,
                    };
                }
                Err(_) => None,
            }
        };
        let target = self.followup_target(&interaction);
        match planned {
            Some(mut planned) => {
                let body = if let Some(update) = planned.clicked_update.take() {
                    serde_json::json!({ "type": UPDATE_MESSAGE, "data": update })
                } else if planned.private.is_empty() {
                    if component {
                        serde_json::json!({ "type": DEFERRED_UPDATE_MESSAGE })
                    } else {
                        notice("Done.")
                    }
                } else {
                    let first = planned.private.remove(0);
                    serde_json::json!({ "type": CHANNEL_MESSAGE, "data": first })
                };
                let after = (!planned.private.is_empty() || !planned.other_updates.is_empty())
                    .then(|| self.clone().after(target, planned, false));
                FirstResponse { body, after }
            }
            None => {
                // Deferred: a component keeps its message until the edit; a command shows
                // "procbot is thinking…" to the asker only.
                let body = if component {
                    serde_json::json!({ "type": DEFERRED_UPDATE_MESSAGE })
                } else {
                    serde_json::json!({ "type": DEFERRED_CHANNEL_MESSAGE, "data": { "flags": 64 } })
                };
                let this = self.clone();
                let after: AfterResponse = Box::pin(async move {
                    match handling.await {
                        Ok(planned) => this.after(target, planned, true).await,
                        Err(error) => tracing::error!(%error, "answering an interaction failed"),
                    }
                });
                FirstResponse {
                    body,
                    after: Some(after),
                }
            }
        }
    }

    fn followup_target(&self, interaction: &Interaction) -> Option<(String, String)> {
        let application = self.application_of(interaction)?;
        let token = interaction.token.clone()?;
        // The token goes into a URL path: Discord's are URL-safe; anything else is refused.
        if token.is_empty()
            || token.len() > 500
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return None;
        }
        Some((application, token))
    }

    /// Edits and follow-ups after the first response. `deferred`: the first response held
    /// no answer, so the first message edits the original response.
    fn after(
        self: Arc<Self>,
        target: Option<(String, String)>,
        mut planned: Planned,
        deferred: bool,
    ) -> AfterResponse {
        Box::pin(async move {
            for (message_ref, message) in &planned.other_updates {
                self.edit_channel_message(message_ref, message).await;
            }
            let Some((application, token)) = target else {
                if !planned.private.is_empty() || planned.clicked_update.is_some() {
                    tracing::warn!(
                        "an interaction's follow-up messages were dropped: no application id or token"
                    );
                }
                return;
            };
            let Some(application_id) = snowflake(&application).map(ApplicationId::new) else {
                return;
            };
            if deferred {
                // The deferred response becomes the clicked message's update, or the first
                // private message.
                let original = planned
                    .clicked_update
                    .take()
                    .or_else(|| (!planned.private.is_empty()).then(|| planned.private.remove(0)));
                if let Some(original) = original {
                    let body = serde_json::to_value(&original).unwrap_or_default();
                    let sent = self
                        .with_retry(LightMethod::Patch, &body, || {
                            Route::WebhookOriginalInteractionResponse {
                                application_id,
                                token: &token,
                            }
                        })
                        .await;
                    if let Err(error) = sent {
                        tracing::warn!(%error, "editing a deferred interaction response failed");
                    }
                }
            }
            for message in planned.private {
                let body = serde_json::to_value(&message).unwrap_or_default();
                let sent = self
                    .with_retry(LightMethod::Post, &body, || {
                        Route::WebhookFollowupMessages {
                            application_id,
                            token: &token,
                        }
                    })
                    .await;
                if let Err(error) = sent {
                    tracing::warn!(%error, "a follow-up message failed");
                    return;
                }
            }
        })
    }

    /// A follow-up can reach Discord before the first response it follows (HTTP mode answers
    /// in the response body): Discord then says the webhook is unknown. Try again shortly, a
    /// few times; any other failure is final.
    async fn with_retry<'r>(
        &self,
        method: LightMethod,
        body: &serde_json::Value,
        route: impl Fn() -> Route<'r>,
    ) -> Result<Option<serde_json::Value>, RestError> {
        let mut wait = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            match self.rest.call(method, route(), Some(body)).await {
                Err(RestError::Refused {
                    status: 404, code, ..
                }) if tries < 4 && code.is_none_or(|c| c == UNKNOWN_WEBHOOK) => {
                    tries += 1;
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(RestError::RateLimited(retry_after)) if tries < 4 => {
                    tries += 1;
                    tokio::time::sleep(retry_after.min(Duration::from_secs(5))).await;
                }
                other => return other,
            }
        }
    }

    async fn edit_channel_message(&self, message_ref: &MessageRef, message: &Message) {
        let Some((channel_id, message_id)) = parse_message_ref(message_ref) else {
            return;
        };
        let Some(last) = render(message).pop() else {
            return;
        };
        let edited = self
            .rest
            .call(
                LightMethod::Patch,
                Route::ChannelMessage {
                    channel_id,
                    message_id,
                },
                Some(&serde_json::to_value(&last).unwrap_or_default()),
            )
            .await;
        if let Err(error) = edited
            && error.code() != Some(codes::UNKNOWN_MESSAGE)
        {
            tracing::warn!(%error, %message_ref, "updating a message failed");
        }
    }

    /// Sends the first response through the callback route (the gateway's way), then the
    /// rest.
    pub async fn answer_over_rest(self: &Arc<Self>, interaction: Interaction) {
        let Some(id) = interaction.id.as_deref().and_then(snowflake) else {
            tracing::warn!("an interaction without an id cannot be answered");
            return;
        };
        let Some(token) = interaction.token.clone() else {
            tracing::warn!("an interaction without a token cannot be answered");
            return;
        };
        let response = self.answer(interaction).await;
        let sent = self
            .rest
            .call(
                LightMethod::Post,
                Route::InteractionResponse {
                    interaction_id: InteractionId::new(id),
                    token: &token,
                },
                Some(&response.body),
            )
            .await;
        match sent {
            Ok(_) => {
                if let Some(after) = response.after {
                    after.await;
                }
            }
            Err(error) => tracing::warn!(%error, "answering an interaction failed"),
        }
    }

    /// A typed DM to the bot (gateway only): answered in the same DM.
    pub async fn answer_direct_message(&self, user_id: &str, channel_id: &str, text: &str) {
        let (Some(_), Some(channel)) = (snowflake(user_id), snowflake(channel_id)) else {
            return;
        };
        let actor = Actor {
            platform: Platform::Discord,
            workspace: "dm".to_string(),
            user_id: user_id.to_string(),
            email: None,
        };
        let replies = self
            .engine
            .handle(&actor, Request::from_text(text), &Origin::default())
            .await;
        for reply in replies {
            let message = match reply {
                Reply::Private(message) | Reply::Shareable(message) => message,
                Reply::Update {
                    message_ref,
                    message,
                } => {
                    self.edit_channel_message(&message_ref, &message).await;
                    continue;
                }
            };
            for part in render(&message) {
                let sent = self
                    .rest
                    .call(
                        LightMethod::Post,
                        Route::ChannelMessages {
                            channel_id: ChannelId::new(channel),
                        },
                        Some(&serde_json::to_value(&part).unwrap_or_default()),
                    )
                    .await;
                if let Err(error) = sent {
                    tracing::warn!(%error, "answering a DM failed");
                    return;
                }
            }
        }
    }
}

/// Discord's "Unknown Webhook": the interaction has no response yet.
const UNKNOWN_WEBHOOK: i64 = 10015;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_read_as_typed_text() {
        let body = br#"{"type":2,"id":"1","token":"t","data":{"name":"procedure","options":[{"type":1,"name":"review","options":[{"type":3,"name":"id","value":"backup"},{"type":3,"name":"outcome","value":"changes"}]}]},"user":{"id":"42"}}"#;
        let interaction = parse(body).unwrap();
        assert_eq!(interaction.command_text().unwrap(), "review backup changes");
        assert_eq!(
            Request::from_text(&interaction.command_text().unwrap()),
            Request::Review {
                id: "backup".into(),
                outcome: crate::core::request::ReviewOutcome::NeedsChanges,
                hash_prefix: None
            }
        );
        let actor = interaction.actor().unwrap();
        assert_eq!(
            (actor.workspace.as_str(), actor.user_id.as_str()),
            ("dm", "42")
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        assert!(matches!(parse(b"{"), Err(Unanswerable::Malformed(_))));
        assert!(matches!(parse(b"[]"), Err(Unanswerable::Malformed(_))));
        assert!(matches!(
            parse(br#"{"type":"two"}"#),
            Err(Unanswerable::Malformed(m)) if m.contains("type")
        ));
        assert_eq!(
            parse(br#"{"type":9}"#).unwrap_err(),
            Unanswerable::UnknownType(9)
        );
    }

    #[test]
    fn a_click_names_the_clicked_message() {
        let body = br#"{"type":3,"id":"1","token":"t","channel_id":"5","message":{"id":"6"},"data":{"custom_id":"show/backup","component_type":2},"member":{"user":{"id":"42"}},"guild_id":"7"}"#;
        let interaction = parse(body).unwrap();
        assert_eq!(interaction.clicked(), Some(MessageRef("5/6".into())));
        assert_eq!(interaction.actor().unwrap().workspace, "7");
    }
}
