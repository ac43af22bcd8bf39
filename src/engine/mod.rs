//! The engine: turns a person's `Request` into replies (reading the served procedures and the
//! store, recording evidence), and a sync's changes into recorded announcements and queued
//! messages. Platform-free: adapters hand it requests and render what it returns.

pub mod library;
mod runs;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::core::announce::{acknowledgement_dm, plan_announcements};
use crate::core::change::ProcedureChange;
use crate::core::compose::{self, OwnedProcedure, PendingItem};
use crate::core::message::{Button, Message};
use crate::core::port::{Destination, MessageRef, Platform};
use crate::core::procedure::{Email, Procedure, ProcedureId};
use crate::core::request::{Request, ReviewOutcome, action};
use crate::core::snapshot::Snapshot;
use crate::search::Viewer;
use crate::store::evidence::{
    AckOutcome, BatchRecorded, LookupRecord, NewAcknowledgement, NewReview, StoredVersion,
};
use crate::store::outbox::NewOutboxMessage;
use crate::store::{Store, StoreError};
use library::{Library, Served};

/// How long a snoozed review reminder stays quiet.
pub const SNOOZE_DAYS: i64 = 7;
/// Results a chat lookup shows: the best in full, the rest as a list.
const LOOKUP_RESULTS: usize = 5;

/// A chat platform procbot delivers to, and its announce channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub platform: Platform,
    pub announce_channel: Option<String>,
}

/// Who is asking: their chat account and, when the adapter knows it, their email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub platform: Platform,
    /// The Slack workspace or Discord guild; `local` for the console.
    pub workspace: String,
    pub user_id: String,
    pub email: Option<Email>,
}

/// Where a request came from: the message whose button was clicked, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub message_ref: Option<MessageRef>,
}

/// What the adapter should do in answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Show only to the person who asked (ephemeral, or a DM).
    Private(Message),
    /// May be shown where the question was asked, a channel thread included: it names no
    /// confidential or restricted procedure and nothing about the person. Adapters that only
    /// answer privately treat it as `Private`.
    Shareable(Message),
    /// Replace the message whose button was clicked.
    Update {
        message_ref: MessageRef,
        message: Message,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    library: Arc<Library>,
    targets: Vec<Target>,
    outbox_wake: Arc<Notify>,
    references: AtomicU64,
    /// Told when an owner answers "needs changes".
    security_lead: Option<Email>,
    /// For dates people read (a review's date) when the directory gives no zone.
    time_zone: chrono_tz::Tz,
    /// `procedures.web_url`: where a procedure file is shown in the repository's web UI.
    web_url: Option<String>,
}

fn short_digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn stored_version(snapshot: &Snapshot, procedure: &Procedure, hash: &str) -> StoredVersion {
    StoredVersion {
        procedure_id: procedure.id.to_string(),
        content_hash: hash.to_string(),
        version: procedure.version.as_ref().map(ToString::to_string),
        title: procedure.title.clone(),
        owner: procedure.owner.as_ref().map(ToString::to_string),
        classification: procedure.classification.to_string(),
        path: procedure.path.clone(),
        commit_id: snapshot.commit.as_ref().map(|c| c.id.clone()),
        commit_author: snapshot
            .commit
            .as_ref()
            .map(|c| format!("{} <{}>", c.author_name, c.author_email)),
        committed_at: snapshot.commit.as_ref().map(|c| c.time),
    }
}

impl Engine {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        library: Arc<Library>,
        targets: Vec<Target>,
        outbox_wake: Arc<Notify>,
    ) -> Engine {
        Engine {
            store,
            clock,
            library,
            targets,
            outbox_wake,
            references: AtomicU64::new(0),
            security_lead: None,
            time_zone: chrono_tz::UTC,
            web_url: None,
        }
    }

    /// Links procedures to the repository's web UI: `template` holds `{path}`, replaced by
    /// the file's path in the repository.
    pub fn with_web_url(mut self, template: Option<String>) -> Engine {
        self.web_url = template;
        self
    }

    fn web_link(&self, procedure: &Procedure) -> Option<String> {
        let template = self.web_url.as_ref()?;
        Some(template.replace("{path}", &encode_path(&procedure.path)))
    }

    pub fn with_time_zone(mut self, time_zone: chrono_tz::Tz) -> Engine {
        self.time_zone = time_zone;
        self
    }

    pub fn with_security_lead(mut self, security_lead: Option<Email>) -> Engine {
        self.security_lead = security_lead;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    /// Records what a sync changed and queues the messages it calls for, in one transaction.
    /// Safe to repeat: a replayed sync records and queues nothing twice.
    pub async fn announce(
        &self,
        previous: Option<&Snapshot>,
        snapshot: &Snapshot,
        changes: &[ProcedureChange],
    ) -> Result<BatchRecorded, EngineError> {
        let now = self.clock.now();
        let current = self.store.current_requirements().await?;
        let plan = plan_announcements(previous, snapshot, changes, &current);
        if plan.announcements.is_empty() {
            return Ok(BatchRecorded::default());
        }
        let mut versions = Vec::new();
        for announcement in &plan.announcements {
            if let Some(entry) = snapshot.get(&announcement.id)
                && entry.content_hash.to_hex() == announcement.content_hash
            {
                versions.push(stored_version(
                    snapshot,
                    &entry.procedure,
                    &announcement.content_hash,
                ));
            }
        }
        let batch_key = short_digest(
            &plan
                .announcements
                .iter()
                .map(|a| a.key.as_str())
                .collect::<Vec<_>>(),
        );
        let mut messages = Vec::new();
        if let Some(post) = &plan.channel_post {
            for target in &self.targets {
                if let Some(channel) = &target.announce_channel {
                    messages.push(NewOutboxMessage {
                        idempotency_key: format!("post/{batch_key}/{}", target.platform),
                        platform: target.platform,
                        destination: Destination::Channel {
                            channel: channel.clone(),
                        },
                        message: post.clone(),
                    });
                }
            }
        }
        for (email, items) in &plan.direct {
            let Some(platform) = choose_platform(&self.targets, snapshot, email) else {
                continue;
            };
            let name = snapshot
                .directory
                .as_ref()
                .and_then(|d| d.person(email))
                .map(|p| p.display_name().to_string())
                .unwrap_or_else(|| email.to_string());
            let items_key = short_digest(
                &items
                    .iter()
                    .flat_map(|i| [i.id.as_str(), i.content_hash.as_str()])
                    .collect::<Vec<_>>(),
            );
            for (part, message) in acknowledgement_dm(&name, items).into_iter().enumerate() {
                messages.push(NewOutboxMessage {
                    idempotency_key: format!("dm/{email}/{items_key}/{part}/{platform}"),
                    platform,
                    destination: Destination::Person {
                        email: email.clone(),
                    },
                    message,
                });
            }
        }
        let recorded = self
            .store
            .record_announcements(now, &versions, &plan.announcements, &messages)
            .await?;
        if recorded.queued > 0 {
            self.outbox_wake.notify_one();
        }
        tracing::info!(
            announcements = recorded.announcements,
            queued = recorded.queued,
            people = plan.direct.len(),
            "announcements recorded"
        );
        Ok(recorded)
    }

    /// Answers one request. Never fails: internal errors are logged in full and the person
    /// gets a short apology with a reference to find them.
    pub async fn handle(&self, actor: &Actor, request: Request, origin: &Origin) -> Vec<Reply> {
        match self.try_handle(actor, &request, origin).await {
            Ok(replies) => replies,
            Err(error) => {
                let reference = format!(
                    "E{}-{}",
                    self.clock.now().format("%y%m%d%H%M%S"),
                    self.references.fetch_add(1, Ordering::Relaxed)
                );
                tracing::error!(%reference, %error, ?request, platform = %actor.platform, user = %actor.user_id, "request failed");
                vec![Reply::Private(compose::apology(&reference))]
            }
        }
    }

    /// The person an account belongs to: the adapter's email, a linked identity, or the
    /// directory's platform id.
    pub async fn person(&self, actor: &Actor) -> Result<Option<Email>, EngineError> {
        if let Some(email) = &actor.email {
            return Ok(Some(email.clone()));
        }
        let stored = self
            .store
            .identity_email(actor.platform, &actor.workspace, &actor.user_id)
            .await?;
        if let Some(email) = stored.and_then(|e| Email::parse(&e).ok()) {
            return Ok(Some(email));
        }
        // The directory may name the account directly.
        let served = self.library.current();
        let directory = served.as_ref().and_then(|s| s.snapshot.directory.as_ref());
        Ok(directory.and_then(|d| {
            d.people
                .values()
                .find(|p| match actor.platform {
                    Platform::Slack => p.slack.as_deref() == Some(actor.user_id.as_str()),
                    Platform::Discord => p.discord.as_deref() == Some(actor.user_id.as_str()),
                    Platform::Console => p.email.as_str() == actor.user_id,
                })
                .map(|p| p.email.clone())
        }))
    }

    async fn try_handle(
        &self,
        actor: &Actor,
        request: &Request,
        origin: &Origin,
    ) -> Result<Vec<Reply>, EngineError> {
        let Some(served) = self.library.current() else {
            return Ok(vec![Reply::Private(Message::new().text(
                "I am still loading the procedures. Try again in a minute.",
            ))]);
        };
        let email = self.person(actor).await?;
        let private = |message: Message| Ok(vec![Reply::Private(message)]);
        let shareable = |message: Message| Ok(vec![Reply::Shareable(message)]);
        match request {
            Request::Help => shareable(compose::help()),
            Request::Unknown { text } => shareable(compose::not_understood(text)),
            Request::Lookup { query } => self.lookup(actor, email.as_ref(), &served, query).await,
            Request::Show { id } => {
                let Some(procedure) = visible(&served, id, email.as_ref()) else {
                    return private(compose::not_found(id));
                };
                let buttons = match &email {
                    Some(email) => self.ack_button_if_pending(email, &procedure.id).await?,
                    None => Vec::new(),
                };
                let view = compose::procedure_view(procedure, buttons, self.web_link(procedure));
                if procedure.classification.is_private() {
                    private(view)
                } else {
                    shareable(view)
                }
            }
            Request::List => {
                let entries: Vec<(ProcedureId, String, Option<String>)> = served
                    .snapshot
                    .procedures
                    .values()
                    .map(|entry| &entry.procedure)
                    .filter(|p| may_see(&served.snapshot, p, email.as_ref()))
                    .map(|p| {
                        (
                            p.id.clone(),
                            p.title.clone(),
                            p.version.as_ref().map(ToString::to_string),
                        )
                    })
                    .collect();
                private(compose::procedure_list(&entries))
            }
            Request::Pending => {
                let Some(email) = email else {
                    return private(compose::unknown_person());
                };
                let pending = self.store.pending_for(email.as_str()).await?;
                let items: Vec<PendingItem> = pending
                    .into_iter()
                    .filter_map(|p| {
                        let id = ProcedureId::parse(&p.procedure_id).ok()?;
                        // Someone who left the audience is no longer asked.
                        let entry = served.snapshot.get(&id)?;
                        let audience = served
                            .snapshot
                            .directory
                            .as_ref()
                            .map(|d| d.resolve(&entry.procedure.audience))
                            .unwrap_or_default();
                        if !audience.contains(&email) {
                            return None;
                        }
                        let title = served
                            .snapshot
                            .get(&id)
                            .map(|e| e.procedure.title.clone())
                            .unwrap_or_else(|| p.procedure_id.clone());
                        Some(PendingItem {
                            id,
                            title,
                            version: p.version,
                            content_hash: p.content_hash,
                            since: p.required_since,
                        })
                    })
                    .collect();
                private(compose::pending_list(&items))
            }
            Request::Mine => {
                let Some(email) = email else {
                    return private(compose::unknown_person());
                };
                // The same review dates the reminders use: the file's, or a later answer.
                let history = self.store.review_history().await?;
                let reviews =
                    crate::scheduler::review_subjects(&served.snapshot, &history, self.time_zone);
                let progress = self.store.requirement_progress(None).await?;
                let owned: Vec<OwnedProcedure> = served
                    .snapshot
                    .procedures
                    .values()
                    .map(|entry| &entry.procedure)
                    .filter(|procedure| procedure.owner.as_ref() == Some(&email))
                    .map(|procedure| {
                        let progress = progress.get(procedure.id.as_str());
                        OwnedProcedure {
                            id: procedure.id.clone(),
                            title: procedure.title.clone(),
                            version: procedure.version.as_ref().map(ToString::to_string),
                            review_due: reviews.get(&procedure.id).map(|r| r.due),
                            acknowledged: progress.map_or(0, |p| p.acknowledged),
                            required: progress.map_or(0, |p| p.required),
                            last_review: history
                                .get(procedure.id.as_str())
                                .and_then(|answers| answers.last())
                                .map(|r| (r.outcome.clone(), r.reviewed_at)),
                        }
                    })
                    .collect();
                private(compose::owned_list(
                    &owned,
                    self.clock.now().with_timezone(&self.time_zone).date_naive(),
                ))
            }
            Request::Acknowledge { id, hash_prefix } => {
                let Some(email) = email else {
                    return private(compose::unknown_person());
                };
                self.acknowledge(actor, &email, &served, id, hash_prefix.as_deref(), origin)
                    .await
            }
            Request::StartRun { id } => self.start_run(actor, email.as_ref(), &served, id).await,
            Request::RunStep {
                run,
                step,
                outcome,
                note,
            } => {
                let Some(email) = email else {
                    return private(compose::unknown_person());
                };
                self.run_step(
                    actor,
                    &email,
                    &served,
                    *run,
                    *step,
                    *outcome,
                    note.as_deref(),
                    origin,
                )
                .await
            }
            Request::FinishRun { run } => {
                let Some(email) = email else {
                    return private(compose::unknown_person());
                };
                self.finish_run(actor, &email, &served, *run, origin).await
            }
            Request::ShowRun { run } => {
                let Some(email) = email else {
                    return private(compose::unknown_person());
                };
                self.show_run(&email, &served, *run).await
            }
            Request::Runs => {
                let Some(email) = email else {
                    return private(compose::unknown_person());
                };
                self.my_runs(&email).await
            }
            Request::Review {
                id,
                outcome,
                hash_prefix,
            } => {
                let Some(email) = email else {
                    return private(compose::unknown_person());
                };
                self.review(
                    actor,
                    &email,
                    &served,
                    id,
                    *outcome,
                    hash_prefix.as_deref(),
                    origin,
                )
                .await
            }
        }
    }

    async fn ack_button_if_pending(
        &self,
        email: &Email,
        id: &ProcedureId,
    ) -> Result<Vec<Button>, EngineError> {
        let pending = self.store.pending_for(email.as_str()).await?;
        Ok(pending
            .into_iter()
            .filter(|p| p.procedure_id == id.as_str())
            .map(|p| {
                Button::new(
                    match &p.version {
                        Some(v) => format!("Acknowledge v{v}"),
                        None => "Acknowledge".to_string(),
                    },
                    action::acknowledge(id, &p.content_hash),
                )
                .primary()
            })
            .collect())
    }

    async fn lookup(
        &self,
        actor: &Actor,
        email: Option<&Email>,
        served: &Served,
        query: &str,
    ) -> Result<Vec<Reply>, EngineError> {
        let viewer = Viewer::Person(email.cloned());
        let found = match served.index.lookup(query, &viewer, LOOKUP_RESULTS) {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(%error, "lookup failed");
                Default::default()
            }
        };
        let shown: Vec<(String, Option<String>)> = found
            .results
            .iter()
            .map(|hit| {
                (
                    hit.id.to_string(),
                    served
                        .snapshot
                        .get(&hit.id)
                        .and_then(|e| e.procedure.version.as_ref().map(ToString::to_string)),
                )
            })
            .collect();
        self.store
            .record_lookup(
                self.clock.now(),
                &LookupRecord {
                    platform: actor.platform,
                    user_id: actor.user_id.clone(),
                    email: email.map(ToString::to_string),
                    query: query.chars().take(200).collect(),
                    shown,
                },
            )
            .await?;
        let best = found
            .results
            .first()
            .and_then(|hit| served.snapshot.get(&hit.id));
        let message = match best {
            Some(best) => {
                let buttons = match email {
                    Some(email) => {
                        self.ack_button_if_pending(email, &best.procedure.id)
                            .await?
                    }
                    None => Vec::new(),
                };
                let others: Vec<(ProcedureId, String)> = found.results[1..]
                    .iter()
                    .map(|hit| (hit.id.clone(), hit.title.clone()))
                    .collect();
                compose::lookup_results(
                    &best.procedure,
                    buttons,
                    self.web_link(&best.procedure),
                    &others,
                )
            }
            None => compose::no_match(
                query,
                &found
                    .suggestions
                    .iter()
                    .map(|hit| (hit.id.clone(), hit.title.clone()))
                    .collect::<Vec<_>>(),
            ),
        };
        // An Acknowledge button acts for whoever clicks it, so it does not make an answer
        // personal; a private procedure among the results or suggestions does.
        let names_private = found
            .results
            .iter()
            .chain(&found.suggestions)
            .any(|hit| hit.private_only);
        Ok(vec![if names_private {
            Reply::Private(message)
        } else {
            Reply::Shareable(message)
        }])
    }

    /// Updates the clicked message so its button shows what happened.
    async fn update_clicked(
        &self,
        actor: &Actor,
        clicker: &Email,
        origin: &Origin,
        action_id: &str,
        text: &str,
    ) -> Result<Option<Reply>, EngineError> {
        let Some(message_ref) = &origin.message_ref else {
            return Ok(None);
        };
        let Some((row, destination, mut message)) = self
            .store
            .delivered_message(actor.platform, message_ref)
            .await?
        else {
            return Ok(None);
        };
        // Only the recipient's own DM (or a channel post) changes on their click.
        if let Destination::Person { email } = &destination
            && clicker != email
        {
            return Ok(None);
        }
        if !message.replace_actions_with(action_id, text) {
            return Ok(None);
        }
        self.store.set_delivered_message(row, &message).await?;
        Ok(Some(Reply::Update {
            message_ref: message_ref.clone(),
            message,
        }))
    }

    async fn acknowledge(
        &self,
        actor: &Actor,
        email: &Email,
        served: &Served,
        id: &str,
        hash_prefix: Option<&str>,
        origin: &Origin,
    ) -> Result<Vec<Reply>, EngineError> {
        let live = visible(served, id, Some(email));
        let stored = match hash_prefix {
            Some(prefix) => self.store.version_by_prefix(id, prefix).await?,
            None => None,
        };
        // Typed `ack <id>`: the version people are asked to acknowledge now.
        let (content_hash, version, title) = match (&stored, hash_prefix, live) {
            (Some(stored), _, _) => (
                stored.content_hash.clone(),
                stored.version.clone(),
                stored.title.clone(),
            ),
            (None, Some(_), _) => {
                return Ok(vec![Reply::Private(Message::new().text(format!(
                    "That button belongs to a version of `{id}` I no longer know. Type `ack {id}` to acknowledge the current version."
                )))]);
            }
            (None, None, Some(procedure)) => match self.store.current_requirement(id).await? {
                Some(current) => (
                    current.content_hash,
                    current.version,
                    procedure.title.clone(),
                ),
                None => {
                    let entry = served.snapshot.get(&procedure.id);
                    (
                        entry.map(|e| e.content_hash.to_hex()).unwrap_or_default(),
                        procedure.version.as_ref().map(ToString::to_string),
                        procedure.title.clone(),
                    )
                }
            },
            (None, None, None) => return Ok(vec![Reply::Private(compose::not_found(id))]),
        };
        let required = self
            .store
            .is_required(email.as_str(), id, &content_hash)
            .await?;
        // A private procedure is acknowledged only by people allowed to see it: those it is
        // served to now, or, once withdrawn, those who were asked to acknowledge it.
        let hidden_now = live.is_none()
            && served
                .snapshot
                .procedures
                .values()
                .any(|e| e.procedure.id.as_str() == id);
        let private_withdrawn = live.is_none()
            && stored.as_ref().is_some_and(|v| {
                crate::core::procedure::Classification::parse(&v.classification)
                    .map(|c| c.is_private())
                    .unwrap_or(true)
            })
            && !required;
        if hidden_now || private_withdrawn {
            return Ok(vec![Reply::Private(compose::not_found(id))]);
        }
        let outcome = self
            .store
            .acknowledge(
                self.clock.now(),
                &NewAcknowledgement {
                    email: email.to_string(),
                    procedure_id: id.to_string(),
                    version: version.clone().unwrap_or_default(),
                    content_hash: content_hash.clone(),
                    platform: actor.platform,
                    workspace: actor.workspace.clone(),
                    user_id: actor.user_id.clone(),
                    message_ref: origin.message_ref.as_ref().map(|r| r.0.clone()),
                    voluntary: !required,
                },
            )
            .await?;
        let label = match &version {
            Some(v) => format!("{title} v{v}"),
            None => title.clone(),
        };
        let short_version = version
            .as_ref()
            .map(|v| format!(" v{v}"))
            .unwrap_or_default();
        let mut text = match (outcome, required) {
            (AckOutcome::Recorded { at }, true) => {
                format!("Acknowledged {label} at {}. Thank you.", compose::when(at))
            }
            (AckOutcome::AlreadyRecorded { at }, _) => format!(
                "You already acknowledged {label} at {}; nothing more to do.",
                compose::when(at)
            ),
            (AckOutcome::Recorded { at }, false) => format!(
                "You are not in the audience of {label}, so no acknowledgement is asked of you. Your read is recorded at {} as voluntary.",
                compose::when(at)
            ),
        };
        let mut buttons = Vec::new();
        if let Some(current) = self.store.current_requirement(id).await?
            && current.content_hash != content_hash
        {
            let newer = current
                .version
                .as_ref()
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "a newer version".to_string());
            text.push_str(&format!(
                " Note: {newer} has replaced this version since; that acknowledgement is kept, but please read and acknowledge {newer} too."
            ));
            if let Ok(procedure_id) = ProcedureId::parse(id)
                && self
                    .store
                    .is_required(email.as_str(), id, &current.content_hash)
                    .await?
            {
                buttons.push(Button::new("Read", action::show(&procedure_id)));
                buttons.push(
                    Button::new(
                        format!("Acknowledge {newer}"),
                        action::acknowledge(&procedure_id, &current.content_hash),
                    )
                    .primary(),
                );
            }
        }
        let mut replies = Vec::new();
        if let Ok(procedure_id) = ProcedureId::parse(id) {
            let action_id = action::acknowledge(&procedure_id, &content_hash);
            let done = format!(
                "✅ Acknowledged{short_version} at {}",
                compose::when(outcome.at())
            );
            if let Some(update) = self
                .update_clicked(actor, email, origin, &action_id, &done)
                .await?
            {
                replies.push(update);
            }
        }
        replies.push(Reply::Private(Message::new().text(text).actions(buttons)));
        Ok(replies)
    }

    #[allow(clippy::too_many_arguments)]
    async fn review(
        &self,
        actor: &Actor,
        email: &Email,
        served: &Served,
        id: &str,
        outcome: ReviewOutcome,
        hash_prefix: Option<&str>,
        origin: &Origin,
    ) -> Result<Vec<Reply>, EngineError> {
        let Some(procedure) = visible(served, id, Some(email)) else {
            return Ok(vec![Reply::Private(compose::not_found(id))]);
        };
        let may_review =
            procedure.owner.as_ref() == Some(email) || procedure.approver.as_ref() == Some(email);
        if !may_review {
            let owner = procedure
                .owner
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "its owner".to_string());
            return Ok(vec![Reply::Private(Message::new().text(format!(
                "Only the owner ({owner}) or the approver can record a review of {}.",
                procedure.title
            )))]);
        }
        let entry = served.snapshot.get(&procedure.id);
        let content_hash = entry.map(|e| e.content_hash.to_hex()).unwrap_or_default();
        let now = self.clock.now();
        if outcome == ReviewOutcome::Snooze {
            let history = self.store.review_history().await?;
            let records = crate::scheduler::review_records(&history, procedure.id.as_str());
            if crate::core::reminders::snoozes_in_cycle(&records, &content_hash)
                >= crate::core::reminders::MAX_SNOOZES
            {
                return Ok(vec![Reply::Private(Message::new().text(format!(
                    "{} has been snoozed {} times already. Please review it now, or answer \"Needs changes\" if it is out of date.",
                    procedure.title,
                    crate::core::reminders::MAX_SNOOZES
                )))]);
            }
        }
        let snooze_until =
            (outcome == ReviewOutcome::Snooze).then(|| now + chrono::Duration::days(SNOOZE_DAYS));
        let mut messages = Vec::new();
        if outcome == ReviewOutcome::NeedsChanges
            && let Some(lead) = &self.security_lead
            && let Some(platform) = choose_platform(&self.targets, &served.snapshot, lead)
        {
            messages.push(NewOutboxMessage {
                idempotency_key: format!(
                    "needs-changes/{}/{content_hash}/{email}/{}",
                    procedure.id,
                    now.timestamp_millis()
                ),
                platform,
                destination: Destination::Person {
                    email: lead.clone(),
                },
                message: Message::new().header("A procedure needs changes").text(
                    if procedure.classification.is_private() {
                        format!(
                            "{email} reviewed a confidential or restricted procedure they own and says it needs changes."
                        )
                    } else {
                        format!(
                            "{email} reviewed {} ({}) and says it needs changes.",
                            procedure.title, procedure.id
                        )
                    },
                ),
            });
        }
        let recorded = self
            .store
            .record_review(
                now,
                &NewReview {
                    procedure_id: procedure.id.to_string(),
                    content_hash: content_hash.clone(),
                    version: procedure.version.as_ref().map(ToString::to_string),
                    email: email.to_string(),
                    outcome: outcome.as_str().to_string(),
                    snooze_until,
                },
                &messages,
            )
            .await?;
        if recorded && !messages.is_empty() {
            self.outbox_wake.notify_one();
        }
        let zone = served
            .snapshot
            .directory
            .as_ref()
            .map_or(self.time_zone, |d| d.time_zone_of(email, self.time_zone));
        let today = now.with_timezone(&zone).date_naive();
        let text = match outcome {
            ReviewOutcome::StillAccurate => format!(
                "Recorded: you reviewed {} on {today} and it is still accurate. Set `last_reviewed: {today}` in {} so the file says so too.",
                procedure.title, procedure.path
            ),
            ReviewOutcome::NeedsChanges => format!(
                "Recorded: {} needs changes. Edit {} and raise its version when done; its audience will be asked to acknowledge the new version.",
                procedure.title, procedure.path
            ),
            ReviewOutcome::Snooze => format!(
                "Snoozed: I will ask about {} again on {}.",
                procedure.title,
                (today + chrono::Duration::days(SNOOZE_DAYS))
            ),
        };
        let mut replies = Vec::new();
        let clicked = hash_prefix
            .map(|prefix| action::review(&procedure.id, outcome, prefix))
            .unwrap_or_default();
        if !clicked.is_empty() {
            // All three answer buttons share a row; replacing it records the answer given.
            let summary = format!("{} on {today}", outcome.as_str());
            if let Some(update) = self
                .update_clicked(actor, email, origin, &clicked, &summary)
                .await?
            {
                replies.push(update);
            }
        }
        replies.push(Reply::Private(Message::new().text(text)));
        Ok(replies)
    }

    /// Links a chat account to a person (after an adapter looked up its email), with the
    /// time zone of its profile when the platform gives one.
    pub async fn link_identity(
        &self,
        actor: &Actor,
        email: &Email,
        time_zone: Option<&str>,
    ) -> Result<(), EngineError> {
        self.store
            .link_identity(
                self.clock.now(),
                actor.platform,
                &actor.workspace,
                &actor.user_id,
                email.as_str(),
                time_zone,
            )
            .await?;
        Ok(())
    }
}

impl crate::repo::sync::Announcer for Engine {
    fn announce<'a>(
        &'a self,
        previous: Option<&'a Snapshot>,
        snapshot: &'a Snapshot,
        changes: &'a [ProcedureChange],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            Engine::announce(self, previous, snapshot, changes)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    }
}

/// The platform a person is messaged on: the first configured one where the directory names
/// their account; else the first that finds people by email (console, Slack).
pub fn choose_platform(targets: &[Target], snapshot: &Snapshot, email: &Email) -> Option<Platform> {
    let person = snapshot.directory.as_ref().and_then(|d| d.person(email));
    let named = |platform: Platform| match platform {
        Platform::Console => true,
        Platform::Slack => person.is_some_and(|p| p.slack.is_some()),
        Platform::Discord => person.is_some_and(|p| p.discord.is_some()),
    };
    targets
        .iter()
        .map(|t| t.platform)
        .find(|p| named(*p))
        .or_else(|| {
            targets
                .iter()
                .map(|t| t.platform)
                .find(|p| matches!(p, Platform::Console | Platform::Slack))
        })
        .or_else(|| targets.first().map(|t| t.platform))
}

/// A repository path as it goes into a URL: each segment percent-encoded, slashes kept.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .map(|segment| segment.replace('+', "%20"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `email` may see `procedure`: confidential and restricted ones only by their
/// audience and owner.
pub fn may_see(snapshot: &Snapshot, procedure: &Procedure, email: Option<&Email>) -> bool {
    if !procedure.classification.is_private() {
        return true;
    }
    let Some(email) = email else { return false };
    if procedure.owner.as_ref() == Some(email) || procedure.approver.as_ref() == Some(email) {
        return true;
    }
    snapshot
        .directory
        .as_ref()
        .is_some_and(|d| d.resolve(&procedure.audience).contains(email))
}

fn visible<'a>(served: &'a Served, id: &str, email: Option<&Email>) -> Option<&'a Procedure> {
    let id = ProcedureId::parse(id.trim()).ok()?;
    let procedure = &served.snapshot.get(&id)?.procedure;
    may_see(&served.snapshot, procedure, email).then_some(procedure)
}
