//! The engine's side of procedure runs: starting one by hand, recording a step's outcome or
//! note, finishing (the owner told of deviations), showing a checklist, listing open runs,
//! and starting the runs that a procedure's `schedule` makes due. Checklists go out through
//! the outbox; a click re-renders the clicked checklist.

use chrono::{DateTime, Utc};

use super::{Actor, Engine, EngineError, Origin, Reply, choose_platform, visible};
use crate::core::message::Message;
use crate::core::port::{Destination, Platform};
use crate::core::procedure::{Email, Procedure};
use crate::core::runs::{self, Run, RunTrigger, StepOutcome};
use crate::core::snapshot::Snapshot;
use crate::engine::library::Served;
use crate::store::outbox::NewOutboxMessage;
use crate::store::runs::{NewRun, StepRecorded};

/// How a run starts: its key, what started it, when it was scheduled and due, who.
struct Start {
    key: String,
    trigger: RunTrigger,
    scheduled: Option<(DateTime<Utc>, DateTime<Utc>)>,
    started_by: Option<Email>,
    assignees: Vec<Email>,
}

/// The run to record for `procedure` as served in `snapshot`.
fn new_run(snapshot: &Snapshot, procedure: &Procedure, start: Start) -> NewRun {
    NewRun {
        key: start.key,
        procedure_id: procedure.id.clone(),
        content_hash: snapshot
            .get(&procedure.id)
            .map(|e| e.content_hash.to_hex())
            .unwrap_or_default(),
        version: procedure.version.as_ref().map(ToString::to_string),
        commit_id: snapshot.commit.as_ref().map(|c| c.id.clone()),
        title: procedure.title.clone(),
        owner: procedure.owner.clone(),
        trigger: start.trigger,
        scheduled_for: start.scheduled.map(|(at, _)| at),
        due_at: start.scheduled.map(|(_, due)| due),
        started_by: start.started_by,
        assignees: start.assignees,
        steps: runs::run_steps(procedure),
    }
}

fn private(message: Message) -> Result<Vec<Reply>, EngineError> {
    Ok(vec![Reply::Private(message)])
}

fn say(text: impl Into<String>) -> Result<Vec<Reply>, EngineError> {
    private(Message::new().text(text))
}

impl Engine {
    /// The platform a person's checklist goes to: where they asked, if procbot delivers
    /// there, else their usual one.
    fn platform_for(
        &self,
        snapshot: &Snapshot,
        email: &Email,
        asked_on: Option<Platform>,
    ) -> Option<Platform> {
        asked_on
            .filter(|p| self.targets.iter().any(|t| t.platform == *p))
            .or_else(|| choose_platform(&self.targets, snapshot, email))
    }

    fn checklist_messages(
        &self,
        snapshot: &Snapshot,
        run: &Run,
        asked_on: Option<Platform>,
    ) -> Vec<NewOutboxMessage> {
        let message = runs::checklist(run, snapshot.directory.as_ref());
        run.assignees
            .iter()
            .filter_map(|email| {
                let platform = self.platform_for(snapshot, email, asked_on)?;
                Some(NewOutboxMessage {
                    idempotency_key: format!("run/{}/checklist/{email}/{platform}", run.id),
                    platform,
                    destination: Destination::Person {
                        email: email.clone(),
                    },
                    message: message.clone(),
                })
            })
            .collect()
    }

    /// The run as the people who may see it may see it: `None` for a run of a procedure
    /// hidden from `email`.
    async fn visible_run(
        &self,
        served: &Served,
        id: i64,
        email: &Email,
    ) -> Result<Option<Run>, EngineError> {
        let Some(run) = self.store.run(id).await? else {
            return Ok(None);
        };
        let hidden = served
            .snapshot
            .get(&run.procedure_id)
            .is_some_and(|_| visible(served, run.procedure_id.as_str(), Some(email)).is_none());
        Ok((!hidden || run.may_act(email)).then_some(run))
    }

    /// `/procedure run <id>`: a run now, assigned to whoever asked, its checklist in their
    /// DMs. An id that names no procedure is a question ("run payroll").
    pub(super) async fn start_run(
        &self,
        actor: &Actor,
        email: Option<&Email>,
        served: &Served,
        id: &str,
    ) -> Result<Vec<Reply>, EngineError> {
        let Some(procedure) = visible(served, id, email) else {
            return self
                .lookup(actor, email, served, &format!("run {id}"))
                .await;
        };
        let Some(email) = email else {
            return private(crate::core::compose::unknown_person());
        };
        if procedure.steps.is_empty() {
            return say(format!(
                "{} has no numbered steps to run as a checklist.",
                procedure.title
            ));
        }
        let now = self.clock.now();
        let new = new_run(
            &served.snapshot,
            procedure,
            Start {
                key: format!("manual/{}/{email}/{}", procedure.id, now.timestamp_millis()),
                trigger: RunTrigger::Manual,
                scheduled: None,
                started_by: Some(email.clone()),
                assignees: vec![email.clone()],
            },
        );
        let snapshot = &served.snapshot;
        let asked_on = Some(actor.platform);
        let started = self
            .store
            .start_run(now, &new, |run_id| {
                let run = run_of(&new, run_id, now);
                self.checklist_messages(snapshot, &run, asked_on)
            })
            .await?;
        let Some(run_id) = started else {
            return say("That run was started already.");
        };
        self.outbox_wake.notify_one();
        tracing::info!(run = run_id, procedure = %procedure.id, by = %email, "run started");
        say(format!(
            "Run #{run_id} of {} started. Its checklist is in your direct messages: mark each step done, not applicable or problem, then Finish.",
            procedure.title
        ))
    }

    /// A step's outcome or note; a click re-renders the clicked checklist.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_step(
        &self,
        actor: &Actor,
        email: &Email,
        served: &Served,
        run_id: i64,
        step: usize,
        outcome: Option<StepOutcome>,
        note: Option<&str>,
        origin: &Origin,
    ) -> Result<Vec<Reply>, EngineError> {
        let Some(run) = self.visible_run(served, run_id, email).await? else {
            return say(format!("There is no run #{run_id} you can see."));
        };
        if !run.may_act(email) {
            return say(not_yours(&run));
        }
        let recorded = self
            .store
            .record_run_step(self.clock.now(), run_id, step, outcome, note, email)
            .await?;
        match recorded {
            StepRecorded::NoSuchRun => return say(format!("There is no run #{run_id}.")),
            StepRecorded::NoSuchStep => {
                return say(format!(
                    "Run #{run_id} has steps 1 to {}; there is no step {step}.",
                    run.steps.len()
                ));
            }
            StepRecorded::Finished => {
                return say(format!(
                    "Run #{run_id} is finished; its record no longer changes."
                ));
            }
            StepRecorded::Recorded | StepRecorded::Unchanged => {}
        }
        let run = self.store.run(run_id).await?.unwrap_or(run);
        let mut replies = self
            .rerender(actor.platform, &served.snapshot, &run, origin)
            .await?;
        let needs_reason = run.steps.iter().any(|s| {
            s.number == step
                && s.outcome == Some(StepOutcome::NotApplicable)
                && s.note.as_deref().is_none_or(|n| n.trim().is_empty())
        });
        let text = if needs_reason {
            Some(format!(
                "Step {step} is marked not applicable. Give the reason (needed to finish): type `note {run_id} {step} <reason>`."
            ))
        } else if outcome == Some(StepOutcome::Problem) && note.is_none() {
            Some(format!(
                "Step {step} is marked as a problem. Say what went wrong, or link the ticket: `note {run_id} {step} <text>`."
            ))
        } else if replies.is_empty() {
            // Typed, not clicked: show where the run stands.
            replies.push(Reply::Private(runs::checklist(
                &run,
                served.snapshot.directory.as_ref(),
            )));
            None
        } else {
            None
        };
        if let Some(text) = text {
            replies.push(Reply::Private(Message::new().text(text)));
        }
        Ok(replies)
    }

    /// Finish: refused while steps are open or a "not applicable" lacks its reason; problems
    /// are recorded as deviations and the owner is told.
    pub(super) async fn finish_run(
        &self,
        actor: &Actor,
        email: &Email,
        served: &Served,
        run_id: i64,
        origin: &Origin,
    ) -> Result<Vec<Reply>, EngineError> {
        let Some(run) = self.visible_run(served, run_id, email).await? else {
            return say(format!("There is no run #{run_id} you can see."));
        };
        if !run.may_act(email) {
            return say(not_yours(&run));
        }
        let deviations = match run.check_finish() {
            Ok(deviations) => deviations,
            Err(refusal) => return say(runs::finish_refusal(&run, &refusal)),
        };
        let now = self.clock.now();
        let mut messages = Vec::new();
        if deviations > 0 {
            let mut finished = run.clone();
            finished.finished = Some(runs::Finished {
                at: now,
                by: email.clone(),
                deviations,
            });
            let notice = runs::deviation_notice(&finished);
            let mut told: Vec<&Email> = run.owner.iter().collect();
            if let Some(lead) = &self.security_lead
                && !told.contains(&lead)
            {
                told.push(lead);
            }
            for person in told {
                if let Some(platform) = choose_platform(&self.targets, &served.snapshot, person) {
                    messages.push(NewOutboxMessage {
                        idempotency_key: format!("run/{run_id}/deviation/{person}/{platform}"),
                        platform,
                        destination: Destination::Person {
                            email: person.clone(),
                        },
                        message: notice.clone(),
                    });
                }
            }
        }
        if !self
            .store
            .finish_run(now, &run, email, deviations, &messages)
            .await?
        {
            return say(format!("Run #{run_id} is already finished."));
        }
        if !messages.is_empty() {
            self.outbox_wake.notify_one();
        }
        tracing::info!(run = run_id, procedure = %run.procedure_id, deviations, "run finished");
        let run = self.store.run(run_id).await?.unwrap_or(run);
        let mut replies = self
            .rerender(actor.platform, &served.snapshot, &run, origin)
            .await?;
        replies.push(Reply::Private(Message::new().text(if deviations == 0 {
            format!("Run #{run_id} of {} is finished and recorded. Thank you.", run.title)
        } else {
            format!(
                "Run #{run_id} of {} is finished with {deviations} deviation{}; the owner has been told.",
                run.title,
                if deviations == 1 { "" } else { "s" }
            )
        })));
        Ok(replies)
    }

    pub(super) async fn show_run(
        &self,
        email: &Email,
        served: &Served,
        run_id: i64,
    ) -> Result<Vec<Reply>, EngineError> {
        match self.visible_run(served, run_id, email).await? {
            Some(run) => private(runs::checklist(&run, served.snapshot.directory.as_ref())),
            None => say(format!("There is no run #{run_id} you can see.")),
        }
    }

    /// The open runs a person may work on.
    pub(super) async fn my_runs(&self, email: &Email) -> Result<Vec<Reply>, EngineError> {
        let open: Vec<Run> = self
            .store
            .open_runs()
            .await?
            .into_iter()
            .filter(|r| r.may_act(email))
            .collect();
        if open.is_empty() {
            return say("You have no open procedure runs. Start one with `/procedure run <id>`.");
        }
        let lines: Vec<String> = open
            .iter()
            .map(|run| {
                let due = run
                    .due_at
                    .map(|d| format!(", due {}", crate::core::compose::when(d)))
                    .unwrap_or_default();
                format!(
                    "Run #{}: {} ({} of {} steps done{due}) — `checklist {}`",
                    run.id,
                    run.title,
                    run.steps.iter().filter(|s| s.outcome.is_some()).count(),
                    run.steps.len(),
                    run.id
                )
            })
            .collect();
        private(Message::new().header("Your open runs").list(false, lines))
    }

    /// The clicked checklist, re-rendered from the run's state (its outbox row keeps the
    /// current form).
    async fn rerender(
        &self,
        platform: Platform,
        snapshot: &Snapshot,
        run: &Run,
        origin: &Origin,
    ) -> Result<Vec<Reply>, EngineError> {
        let Some(message_ref) = &origin.message_ref else {
            return Ok(Vec::new());
        };
        let message = runs::checklist(run, snapshot.directory.as_ref());
        if let Some((row, _, _)) = self.store.delivered_message(platform, message_ref).await? {
            self.store.set_delivered_message(row, &message).await?;
        }
        Ok(vec![Reply::Update {
            message_ref: message_ref.clone(),
            message,
        }])
    }

    /// Starts the runs a procedure's `schedule` makes due at `now` (once per occurrence),
    /// assigned to `run_by` or the owner, their checklists queued. Occurrences before procbot
    /// first knew a procedure are not started. Returns how many started.
    pub async fn start_scheduled_runs(
        &self,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let first_known = self.store.first_announced().await?;
        let mut started = 0;
        for entry in snapshot.procedures.values() {
            let procedure = &entry.procedure;
            let Some(schedule) = &procedure.schedule else {
                continue;
            };
            if procedure.steps.is_empty() {
                continue;
            }
            let Some((occurrence, due)) = runs::due_occurrence(schedule, self.time_zone, now)
            else {
                continue;
            };
            let known_since = first_known.get(procedure.id.as_str());
            if known_since.is_none_or(|since| occurrence < *since) {
                continue;
            }
            let assignees: Vec<Email> = runs::assignees(procedure, snapshot.directory.as_ref())
                .into_iter()
                .filter(|email| {
                    snapshot
                        .directory
                        .as_ref()
                        .is_some_and(|d| d.knows_person(email))
                })
                .collect();
            if assignees.is_empty() {
                tracing::warn!(procedure = %procedure.id, "a scheduled run is due but nobody in the directory can run it (owner or run_by)");
                continue;
            }
            let new = new_run(
                snapshot,
                procedure,
                Start {
                    key: format!(
                        "schedule/{}/{}",
                        procedure.id,
                        occurrence.timestamp_millis()
                    ),
                    trigger: RunTrigger::Schedule,
                    scheduled: Some((occurrence, due)),
                    started_by: None,
                    assignees,
                },
            );
            let id = self
                .store
                .start_run(now, &new, |run_id| {
                    let run = run_of(&new, run_id, now);
                    self.checklist_messages(snapshot, &run, None)
                })
                .await?;
            if let Some(id) = id {
                tracing::info!(run = id, procedure = %procedure.id, %occurrence, "scheduled run started");
                started += 1;
            }
        }
        if started > 0 {
            self.outbox_wake.notify_one();
        }
        Ok(started)
    }
}

/// A run as it stands the moment it starts.
fn run_of(new: &NewRun, id: i64, now: DateTime<Utc>) -> Run {
    Run {
        id,
        procedure_id: new.procedure_id.clone(),
        title: new.title.clone(),
        version: new.version.clone(),
        content_hash: new.content_hash.clone(),
        commit_id: new.commit_id.clone(),
        owner: new.owner.clone(),
        trigger: new.trigger,
        scheduled_for: new.scheduled_for,
        due_at: new.due_at,
        started_at: now,
        started_by: new.started_by.clone(),
        assignees: new.assignees.clone(),
        steps: new
            .steps
            .iter()
            .enumerate()
            .map(|(index, text)| runs::RunStep {
                number: index + 1,
                text: text.clone(),
                outcome: None,
                note: None,
                by: None,
                at: None,
            })
            .collect(),
        finished: None,
    }
}

fn not_yours(run: &Run) -> String {
    let names: Vec<String> = run.assignees.iter().map(ToString::to_string).collect();
    format!(
        "Run #{} is assigned to {}; they or the procedure's owner can record its steps.",
        run.id,
        names.join(", ")
    )
}
