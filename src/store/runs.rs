//! Procedure runs in the store: starting one (once per scheduled occurrence), recording each
//! step's outcome and note, finishing with its deviations, and reading runs back for chat,
//! the scheduler, `procbot runs`, the dashboard and the evidence pack. Every change is a
//! ledger entry written in the same transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::core::procedure::{Email, ProcedureId};
use crate::core::runs::{Finished, Run, RunStep, RunTrigger, StepOutcome};
use crate::store::ledger::{self, EntryKind};
use crate::store::outbox::{self, NewOutboxMessage, encode};
use crate::store::{Store, StoreError, from_millis, to_millis};

/// A run to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRun {
    /// `schedule/<id>/<occurrence>`: a scheduled occurrence starts once. Manual runs get a key
    /// of their own.
    pub key: String,
    pub procedure_id: ProcedureId,
    pub content_hash: String,
    pub version: Option<String>,
    pub commit_id: Option<String>,
    pub title: String,
    pub owner: Option<Email>,
    pub trigger: RunTrigger,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub started_by: Option<Email>,
    pub assignees: Vec<Email>,
    pub steps: Vec<String>,
}

/// What recording a step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepRecorded {
    Recorded,
    /// The step already stood exactly so (a double click): nothing new recorded.
    Unchanged,
    NoSuchRun,
    NoSuchStep,
    /// The run is finished; its record no longer changes.
    Finished,
}

const RUN_COLUMNS: &str = "id, procedure_id, content_hash, version, commit_id, title, owner, \
     run_trigger, scheduled_for, due_at, started_at, started_by, assignees, steps, finished_at, \
     finished_by, deviations";

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

fn email(text: Option<String>) -> Option<Email> {
    text.and_then(|t| Email::parse(&t).ok())
}

fn decode_run(row: &sqlx::any::AnyRow) -> Result<Run, StoreError> {
    let procedure_id: String = row.try_get("procedure_id")?;
    let assignees: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("assignees")?)
        .map_err(|e| corrupt("run assignees", e))?;
    let steps: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("steps")?)
        .map_err(|e| corrupt("run steps", e))?;
    let trigger: String = row.try_get("run_trigger")?;
    let finished_at: Option<i64> = row.try_get("finished_at")?;
    let finished = match (finished_at, email(row.try_get("finished_by")?)) {
        (Some(at), Some(by)) => Some(Finished {
            at: from_millis(at),
            by,
            deviations: usize::try_from(row.try_get::<Option<i64>, _>("deviations")?.unwrap_or(0))
                .unwrap_or(0),
        }),
        _ => None,
    };
    Ok(Run {
        id: row.try_get("id")?,
        procedure_id: ProcedureId::parse(&procedure_id)
            .map_err(|e| corrupt("run procedure id", e))?,
        title: row.try_get("title")?,
        version: row.try_get("version")?,
        content_hash: row.try_get("content_hash")?,
        commit_id: row.try_get("commit_id")?,
        owner: email(row.try_get("owner")?),
        trigger: RunTrigger::parse(&trigger).unwrap_or(RunTrigger::Manual),
        scheduled_for: row
            .try_get::<Option<i64>, _>("scheduled_for")?
            .map(from_millis),
        due_at: row.try_get::<Option<i64>, _>("due_at")?.map(from_millis),
        started_at: from_millis(row.try_get("started_at")?),
        started_by: email(row.try_get("started_by")?),
        assignees: assignees
            .iter()
            .filter_map(|a| Email::parse(a).ok())
            .collect(),
        steps: steps
            .into_iter()
            .enumerate()
            .map(|(index, text)| RunStep {
                number: index + 1,
                text,
                outcome: None,
                note: None,
                by: None,
                at: None,
            })
            .collect(),
        finished,
    })
}

impl Store {
    /// Starts a run and queues its checklist messages (`compose` writes them, knowing the new
    /// run's id), in one transaction. `None` when a run with this key exists already.
    pub async fn start_run(
        &self,
        now: DateTime<Utc>,
        run: &NewRun,
        compose: impl FnOnce(i64) -> Vec<NewOutboxMessage>,
    ) -> Result<Option<i64>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let assignees: Vec<&str> = run.assignees.iter().map(Email::as_str).collect();
        let inserted = sqlx::query(
            "INSERT INTO runs (run_key, procedure_id, content_hash, version, commit_id, title, \
             owner, run_trigger, scheduled_for, due_at, started_at, started_by, assignees, steps) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (run_key) DO NOTHING RETURNING id",
        )
        .bind(&run.key)
        .bind(run.procedure_id.as_str())
        .bind(&run.content_hash)
        .bind(run.version.as_deref())
        .bind(run.commit_id.as_deref())
        .bind(&run.title)
        .bind(run.owner.as_ref().map(Email::as_str))
        .bind(run.trigger.as_str())
        .bind(run.scheduled_for.map(to_millis))
        .bind(run.due_at.map(to_millis))
        .bind(to_millis(now))
        .bind(run.started_by.as_ref().map(Email::as_str))
        .bind(encode(&assignees)?)
        .bind(encode(&run.steps)?)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = inserted else {
            transaction.rollback().await?;
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        #[derive(Serialize)]
        struct Payload<'a> {
            event: &'static str,
            run: i64,
            version: Option<&'a str>,
            content_hash: &'a str,
            commit: Option<&'a str>,
            trigger: &'static str,
            scheduled_for: Option<DateTime<Utc>>,
            started_by: Option<&'a str>,
            assignees: &'a [&'a str],
        }
        ledger::append(
            &mut transaction,
            now,
            EntryKind::Run,
            run.procedure_id.as_str(),
            &Payload {
                event: "started",
                run: id,
                version: run.version.as_deref(),
                content_hash: &run.content_hash,
                commit: run.commit_id.as_deref(),
                trigger: run.trigger.as_str(),
                scheduled_for: run.scheduled_for,
                started_by: run.started_by.as_ref().map(Email::as_str),
                assignees: &assignees,
            },
        )
        .await?;
        outbox::enqueue_many(&mut transaction, now, &compose(id)).await?;
        transaction.commit().await?;
        Ok(Some(id))
    }

    /// One run with its steps' states.
    pub async fn run(&self, id: i64) -> Result<Option<Run>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut runs = vec![decode_run(&row)?];
        self.fill_steps(&mut runs).await?;
        Ok(runs.pop())
    }

    /// Runs, newest first: all of them, or one procedure's.
    pub async fn runs(&self, procedure_id: Option<&str>) -> Result<Vec<Run>, StoreError> {
        let rows = match procedure_id {
            Some(id) => {
                sqlx::query(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE procedure_id = $1 ORDER BY id DESC"
                ))
                .bind(id)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC"))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        let mut runs = rows.iter().map(decode_run).collect::<Result<Vec<_>, _>>()?;
        self.fill_steps(&mut runs).await?;
        Ok(runs)
    }

    /// Runs not yet finished, oldest first.
    pub async fn open_runs(&self) -> Result<Vec<Run>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE finished_at IS NULL ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut runs = rows.iter().map(decode_run).collect::<Result<Vec<_>, _>>()?;
        self.fill_steps(&mut runs).await?;
        Ok(runs)
    }

    async fn fill_steps(&self, runs: &mut [Run]) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        let mut by_run: BTreeMap<i64, &mut Run> = runs.iter_mut().map(|r| (r.id, r)).collect();
        let low = *by_run.keys().next().unwrap_or(&0);
        let high = *by_run.keys().next_back().unwrap_or(&0);
        let rows = sqlx::query(
            "SELECT run_id, step, outcome, note, email, recorded_at FROM run_steps \
             WHERE run_id >= $1 AND run_id <= $2",
        )
        .bind(low)
        .bind(high)
        .fetch_all(self.pool())
        .await?;
        for row in rows {
            let run_id: i64 = row.try_get("run_id")?;
            let Some(run) = by_run.get_mut(&run_id) else {
                continue;
            };
            let number = usize::try_from(row.try_get::<i64, _>("step")?).unwrap_or(0);
            let Some(step) = run.steps.iter_mut().find(|s| s.number == number) else {
                continue;
            };
            let outcome: Option<String> = row.try_get("outcome")?;
            step.outcome = outcome.as_deref().and_then(StepOutcome::parse);
            step.note = row.try_get("note")?;
            step.by = email(row.try_get("email")?);
            step.at = Some(from_millis(row.try_get("recorded_at")?));
        }
        Ok(())
    }

    /// Records a step's outcome and/or note (a `None` keeps what is there) by `by`.
    pub async fn record_run_step(
        &self,
        now: DateTime<Utc>,
        run_id: i64,
        step: usize,
        outcome: Option<StepOutcome>,
        note: Option<&str>,
        by: &Email,
    ) -> Result<StepRecorded, StoreError> {
        let mut transaction = self.begin_write().await?;
        let run = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(run_id)
            .fetch_optional(&mut *transaction)
            .await?;
        let Some(run) = run else {
            transaction.rollback().await?;
            return Ok(StepRecorded::NoSuchRun);
        };
        let run = decode_run(&run)?;
        if run.finished.is_some() {
            transaction.rollback().await?;
            return Ok(StepRecorded::Finished);
        }
        if step == 0 || step > run.steps.len() {
            transaction.rollback().await?;
            return Ok(StepRecorded::NoSuchStep);
        }
        let step_number = i64::try_from(step).unwrap_or(i64::MAX);
        let current =
            sqlx::query("SELECT outcome, note FROM run_steps WHERE run_id = $1 AND step = $2")
                .bind(run_id)
                .bind(step_number)
                .fetch_optional(&mut *transaction)
                .await?;
        let (old_outcome, old_note): (Option<String>, Option<String>) = match &current {
            Some(row) => (row.try_get("outcome")?, row.try_get("note")?),
            None => (None, None),
        };
        let new_outcome = outcome
            .map(|o| o.as_str().to_string())
            .or(old_outcome.clone());
        let new_note = note.map(str::to_string).or(old_note.clone());
        if current.is_some() && new_outcome == old_outcome && new_note == old_note {
            transaction.rollback().await?;
            return Ok(StepRecorded::Unchanged);
        }
        sqlx::query(
            "INSERT INTO run_steps (run_id, step, outcome, note, email, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, step) DO UPDATE SET \
             outcome = excluded.outcome, note = excluded.note, email = excluded.email, \
             recorded_at = excluded.recorded_at",
        )
        .bind(run_id)
        .bind(step_number)
        .bind(new_outcome.as_deref())
        .bind(new_note.as_deref())
        .bind(by.as_str())
        .bind(to_millis(now))
        .execute(&mut *transaction)
        .await?;
        #[derive(Serialize)]
        struct Payload<'a> {
            event: &'static str,
            run: i64,
            step: usize,
            outcome: Option<&'a str>,
            note: Option<&'a str>,
            by: &'a str,
        }
        ledger::append(
            &mut transaction,
            now,
            EntryKind::Run,
            run.procedure_id.as_str(),
            &Payload {
                event: "step",
                run: run_id,
                step,
                outcome: new_outcome.as_deref(),
                note: new_note.as_deref(),
                by: by.as_str(),
            },
        )
        .await?;
        transaction.commit().await?;
        Ok(StepRecorded::Recorded)
    }

    /// Finishes a run with its deviations and queues `messages` (the owner told of them), in
    /// one transaction; `false` when it was finished already.
    pub async fn finish_run(
        &self,
        now: DateTime<Utc>,
        run: &Run,
        by: &Email,
        deviations: usize,
        messages: &[NewOutboxMessage],
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let deviations_count = i64::try_from(deviations).unwrap_or(i64::MAX);
        let updated = sqlx::query(
            "UPDATE runs SET finished_at = $1, finished_by = $2, deviations = $3 \
             WHERE id = $4 AND finished_at IS NULL",
        )
        .bind(to_millis(now))
        .bind(by.as_str())
        .bind(deviations_count)
        .bind(run.id)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() != 1 {
            transaction.rollback().await?;
            return Ok(false);
        }
        #[derive(Serialize)]
        struct Payload<'a> {
            event: &'static str,
            run: i64,
            version: Option<&'a str>,
            content_hash: &'a str,
            by: &'a str,
            deviations: usize,
            duration_seconds: i64,
        }
        ledger::append(
            &mut transaction,
            now,
            EntryKind::Run,
            run.procedure_id.as_str(),
            &Payload {
                event: "finished",
                run: run.id,
                version: run.version.as_deref(),
                content_hash: &run.content_hash,
                by: by.as_str(),
                deviations,
                duration_seconds: (now - run.started_at).num_seconds(),
            },
        )
        .await?;
        outbox::enqueue_many(&mut transaction, now, messages).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// When each procedure was first recorded (its first announcement, the baseline included):
    /// scheduled runs never reach back before procbot knew a procedure.
    pub async fn first_announced(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StoreError> {
        let rows = sqlx::query(
            "SELECT procedure_id, MIN(created_at) AS first FROM announcements GROUP BY procedure_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("procedure_id")?,
                    from_millis(row.try_get("first")?),
                ))
            })
            .collect()
    }
}
