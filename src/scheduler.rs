//! The scheduler: at each tick, gathers the facts (served procedures, review answers, pending
//! acknowledgements, coverage), asks `core::reminders` what falls due now, and records each
//! reminder's job key together with its queued messages, so restarts and several instances on
//! one database send each reminder once. Time comes from the injected clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::core::compose::PendingItem;
use crate::core::port::Destination;
use crate::core::procedure::{Email, ProcedureId};
use crate::core::reminders::{
    Calendar, Coverage, PendingFact, Recipient, Reminder, ReminderInputs, ReviewRecord,
    ReviewSubject, candidate_reminders, review_subject,
};
use crate::core::request::ReviewOutcome;
use crate::core::schedule::Schedule;
use crate::core::snapshot::Snapshot;
use crate::engine::library::Library;
use crate::engine::{Engine, Target, choose_platform};
use crate::store::outbox::NewOutboxMessage;
use crate::store::{Store, StoreError};

/// How often the scheduler looks at the clock.
pub const TICK: Duration = Duration::from_secs(60);

/// When and to whom reminders go, from the `[schedule]` configuration.
#[derive(Clone, Debug)]
pub struct ReminderPolicy {
    pub calendar: Calendar,
    /// When the weekly digest fires; `None` for no digest.
    pub digest: Option<Schedule>,
    pub security_lead: Option<Email>,
}

pub struct Scheduler {
    store: Store,
    clock: Arc<dyn Clock>,
    library: Arc<Library>,
    targets: Vec<Target>,
    calendar: Calendar,
    digest: Option<Schedule>,
    security_lead: Option<Email>,
    outbox_wake: Arc<Notify>,
    /// Starts the runs procedures' schedules make due (absent in a dry run).
    runs: Option<Arc<Engine>>,
}

/// Review answers as the reminder rules read them.
pub fn review_records(
    history: &BTreeMap<String, Vec<crate::store::evidence::StoredReview>>,
    procedure_id: &str,
) -> Vec<ReviewRecord> {
    history
        .get(procedure_id)
        .map(|reviews| {
            reviews
                .iter()
                .filter_map(|r| {
                    Some(ReviewRecord {
                        content_hash: r.content_hash.clone(),
                        outcome: ReviewOutcome::parse(&r.outcome)?,
                        at: r.reviewed_at,
                        snooze_until: r.snooze_until,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every served procedure's review state: due one `review_every` after the later of its file's
/// `last_reviewed` and the last "still accurate" answer, dated in the owner's time zone.
pub fn review_subjects(
    snapshot: &Snapshot,
    history: &BTreeMap<String, Vec<crate::store::evidence::StoredReview>>,
    default_zone: chrono_tz::Tz,
) -> BTreeMap<ProcedureId, ReviewSubject> {
    let directory = snapshot.directory.clone().unwrap_or_default();
    snapshot
        .procedures
        .iter()
        .filter_map(|(id, entry)| {
            let zone = entry
                .procedure
                .owner
                .as_ref()
                .map_or(default_zone, |owner| {
                    directory.time_zone_of(owner, default_zone)
                });
            let subject = review_subject(
                &entry.procedure,
                &entry.content_hash.to_hex(),
                &review_records(history, id.as_str()),
                zone,
            )?;
            Some((id.clone(), subject))
        })
        .collect()
}

impl Scheduler {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        library: Arc<Library>,
        targets: Vec<Target>,
        policy: ReminderPolicy,
        outbox_wake: Arc<Notify>,
    ) -> Scheduler {
        Scheduler {
            store,
            clock,
            library,
            targets,
            calendar: policy.calendar,
            digest: policy.digest,
            security_lead: policy.security_lead,
            outbox_wake,
            runs: None,
        }
    }

    /// Lets each tick start the procedure runs that schedules make due, through `engine`.
    pub fn with_runs(mut self, engine: Arc<Engine>) -> Scheduler {
        self.runs = Some(engine);
        self
    }

    /// The reminders due at `at` that have not been sent: what a tick at `at` would send.
    pub async fn plan(&self, at: DateTime<Utc>) -> Result<Vec<Reminder>, StoreError> {
        match self.library.current() {
            Some(served) => self.plan_for(&served.snapshot, at).await,
            None => Ok(Vec::new()),
        }
    }

    /// The reminders due at `at` for the procedures of `snapshot` (a dry run needs no search
    /// index, only the procedures).
    pub async fn plan_for(
        &self,
        snapshot: &Snapshot,
        at: DateTime<Utc>,
    ) -> Result<Vec<Reminder>, StoreError> {
        // People the directory gives no time zone are reminded in their chat profile's.
        let directory = snapshot
            .directory
            .clone()
            .unwrap_or_default()
            .with_profile_time_zones(&self.store.profile_time_zones().await?);
        let history = self.store.review_history().await?;
        let reviews: Vec<ReviewSubject> =
            review_subjects(snapshot, &history, self.calendar.time_zone)
                .into_values()
                .collect();
        let progress = self.store.requirement_progress(None).await?;
        let coverage: Vec<Coverage> = snapshot
            .procedures
            .iter()
            .filter_map(|(id, entry)| {
                let progress = progress.get(id.as_str())?;
                Some(Coverage {
                    id: id.clone(),
                    title: entry.procedure.title.clone(),
                    version: progress.version.clone(),
                    required: progress.required,
                    acknowledged: progress.acknowledged,
                    private: entry.procedure.classification.is_private(),
                })
            })
            .collect();
        // Reminders concern people still in a procedure's audience: someone who left the team
        // is not chased (their requirement stays in the evidence).
        let audiences: BTreeMap<&ProcedureId, std::collections::BTreeSet<Email>> = snapshot
            .procedures
            .iter()
            .map(|(id, entry)| (id, directory.resolve(&entry.procedure.audience)))
            .collect();
        let mut pending: BTreeMap<Email, Vec<PendingFact>> = BTreeMap::new();
        for (email, items) in self.store.all_pending().await? {
            let Ok(email) = Email::parse(&email) else {
                continue;
            };
            // Reminders go to people still in the directory, about procedures still served.
            if !directory.knows_person(&email) {
                continue;
            }
            let facts: Vec<PendingFact> = items
                .into_iter()
                .filter_map(|item| {
                    let id = ProcedureId::parse(&item.procedure_id).ok()?;
                    let entry = snapshot.get(&id)?;
                    if !audiences.get(&id).is_some_and(|a| a.contains(&email)) {
                        return None;
                    }
                    Some(PendingFact {
                        item: PendingItem {
                            id,
                            title: entry.procedure.title.clone(),
                            version: item.version,
                            content_hash: item.content_hash,
                            since: item.required_since,
                        },
                        private: entry.procedure.classification.is_private(),
                    })
                })
                .collect();
            if !facts.is_empty() {
                pending.insert(email, facts);
            }
        }
        let open_runs = self.store.open_runs().await?;
        let private_procedures: std::collections::BTreeSet<ProcedureId> = snapshot
            .procedures
            .iter()
            .filter(|(_, entry)| entry.procedure.classification.is_private())
            .map(|(id, _)| id.clone())
            .collect();
        let inputs = ReminderInputs {
            now: at,
            calendar: &self.calendar,
            directory: &directory,
            reviews: &reviews,
            pending: &pending,
            coverage: &coverage,
            digest: self.digest.as_ref(),
            security_lead: self.security_lead.as_ref(),
            open_runs: &open_runs,
            private_procedures: &private_procedures,
        };
        let candidates = candidate_reminders(&inputs);
        let keys: Vec<String> = candidates.iter().flat_map(|r| r.keys().cloned()).collect();
        let done = self.store.jobs_done(&keys).await?;
        Ok(candidates.into_iter().filter(|r| r.is_due(&done)).collect())
    }

    fn messages(&self, snapshot: &Snapshot, reminder: &Reminder) -> Vec<NewOutboxMessage> {
        match &reminder.to {
            Recipient::Person(email) => choose_platform(&self.targets, snapshot, email)
                .map(|platform| NewOutboxMessage {
                    idempotency_key: format!("job/{}/{platform}", reminder.key),
                    platform,
                    destination: Destination::Person {
                        email: email.clone(),
                    },
                    message: reminder.message.clone(),
                })
                .into_iter()
                .collect(),
            Recipient::Channel => self
                .targets
                .iter()
                .filter_map(|target| {
                    Some(NewOutboxMessage {
                        idempotency_key: format!("job/{}/{}", reminder.key, target.platform),
                        platform: target.platform,
                        destination: Destination::Channel {
                            channel: target.announce_channel.clone()?,
                        },
                        message: reminder.message.clone(),
                    })
                })
                .collect(),
        }
    }

    /// Sends what is due now; returns how many reminders were recorded.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let Some(served) = self.library.current() else {
            return Ok(0);
        };
        if let Some(engine) = &self.runs {
            match engine.start_scheduled_runs(&served.snapshot, now).await {
                Ok(_) => {}
                Err(crate::engine::EngineError::Store(error)) => return Err(error),
            }
        }
        let mut sent = 0;
        for reminder in self.plan(now).await? {
            let messages = self.messages(&served.snapshot, &reminder);
            if messages.is_empty() {
                // No chat platform reaches the recipient (none configured yet): the job stays
                // undone, so it is sent once one is.
                continue;
            }
            let also: Vec<String> = reminder.triggers.clone();
            if self
                .store
                .record_job(now, &reminder.key, &also, &messages)
                .await?
            {
                tracing::info!(kind = reminder.kind.as_str(), to = %reminder.to.describe(), key = %reminder.key, "reminder queued");
                sent += 1;
            }
        }
        if sent > 0 {
            self.outbox_wake.notify_one();
        }
        Ok(sent)
    }

    /// Ticks every minute until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.targets.is_empty() {
            // No chat platform to send to: planning every minute would find everything due
            // and record nothing. Reminders start when a platform is configured.
            let _ = shutdown.wait_for(|stop| *stop).await;
            return;
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = self.tick().await {
                tracing::error!(%error, "the scheduler could not run; retrying next minute");
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
