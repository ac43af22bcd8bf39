//! Procedure runs: a procedure version performed as a checklist in chat, with who did each
//! step and when, notes as evidence, and deviations. Pure: the run's state as data, the rules
//! for finishing it, the checklist message with its buttons, when scheduled runs fall due and
//! the reminders for overdue ones. The store keeps runs; the engine and scheduler drive them.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use crate::core::compose::{self, when};
use crate::core::directory::Directory;
use crate::core::message::{Button, ButtonStyle, Message};
use crate::core::procedure::{Email, Procedure, ProcedureId};
use crate::core::request::action;
use crate::core::schedule::Schedule;

/// Open steps shown with their own row of buttons; later ones are typed (`step …`). Four rows
/// of steps and one for Finish stay within every platform's limits (Discord's five rows).
pub const STEP_BUTTON_ROWS: usize = 4;
/// Characters kept of a note or reason.
pub const MAX_NOTE_CHARS: usize = 500;
/// A scheduled run is due by its next occurrence, and within a week at most.
pub const MAX_RUN_WINDOW_DAYS: i64 = 7;
/// Days overdue after which the owner and the assignees' managers are told, then the
/// security lead (weekly, like reviews).
pub const RUN_ESCALATION_DAYS: i64 = 2;
pub const RUN_LEAD_DAYS: i64 = 7;

/// What happened to one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepOutcome {
    Done,
    /// Skipped on purpose; needs a reason.
    NotApplicable,
    /// Tried, and something went wrong: a deviation.
    Problem,
}

impl StepOutcome {
    pub const ALL: [StepOutcome; 3] = [
        StepOutcome::Done,
        StepOutcome::NotApplicable,
        StepOutcome::Problem,
    ];

    /// As stored and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::NotApplicable => "not-applicable",
            StepOutcome::Problem => "problem",
        }
    }

    pub fn parse(text: &str) -> Option<StepOutcome> {
        StepOutcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// In button action ids.
    pub fn code(self) -> &'static str {
        match self {
            StepOutcome::Done => "ok",
            StepOutcome::NotApplicable => "na",
            StepOutcome::Problem => "pb",
        }
    }

    pub fn from_code(code: &str) -> Option<StepOutcome> {
        StepOutcome::ALL.into_iter().find(|o| o.code() == code)
    }

    /// What people type: `done`, `na`, `n/a`, `skip`, `problem`, …
    pub fn from_words(word: &str) -> Option<StepOutcome> {
        match word {
            "done" | "ok" | "did" | "completed" | "complete" | "yes" => Some(StepOutcome::Done),
            "na" | "n/a" | "skip" | "skipped" | "not-applicable" => {
                Some(StepOutcome::NotApplicable)
            }
            "problem" | "issue" | "failed" | "fail" | "pb" => Some(StepOutcome::Problem),
            _ => None,
        }
    }

    fn mark(self) -> &'static str {
        match self {
            StepOutcome::Done => "✅",
            StepOutcome::NotApplicable => "➖",
            StepOutcome::Problem => "⚠️",
        }
    }

    fn label(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::NotApplicable => "not applicable",
            StepOutcome::Problem => "problem",
        }
    }
}

/// How a run started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunTrigger {
    /// The procedure's `schedule` fell due.
    Schedule,
    /// Someone typed `/procedure run <id>`.
    Manual,
}

impl RunTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Schedule => "schedule",
            RunTrigger::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Option<RunTrigger> {
        match text {
            "schedule" => Some(RunTrigger::Schedule),
            "manual" => Some(RunTrigger::Manual),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStep {
    /// 1-based, as the procedure numbers it.
    pub number: usize,
    pub text: String,
    pub outcome: Option<StepOutcome>,
    pub note: Option<String>,
    pub by: Option<Email>,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub at: DateTime<Utc>,
    pub by: Email,
    /// Steps with a problem.
    pub deviations: usize,
}

/// One run as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub id: i64,
    pub procedure_id: ProcedureId,
    pub title: String,
    pub version: Option<String>,
    pub content_hash: String,
    pub commit_id: Option<String>,
    pub owner: Option<Email>,
    pub trigger: RunTrigger,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub started_by: Option<Email>,
    pub assignees: Vec<Email>,
    pub steps: Vec<RunStep>,
    pub finished: Option<Finished>,
}

/// Why a run cannot be finished yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishRefusal {
    AlreadyFinished,
    /// Steps with no outcome yet.
    OpenSteps(Vec<usize>),
    /// Steps marked not applicable without a reason.
    MissingReasons(Vec<usize>),
}

fn numbers(list: &[usize]) -> String {
    let texts: Vec<String> = list.iter().map(ToString::to_string).collect();
    match texts.as_slice() {
        [] => String::new(),
        [one] => format!("step {one}"),
        [rest @ .., last] => format!("steps {} and {last}", rest.join(", ")),
    }
}

impl Run {
    pub fn open_steps(&self) -> Vec<usize> {
        self.steps
            .iter()
            .filter(|s| s.outcome.is_none())
            .map(|s| s.number)
            .collect()
    }

    pub fn problems(&self) -> Vec<&RunStep> {
        self.steps
            .iter()
            .filter(|s| s.outcome == Some(StepOutcome::Problem))
            .collect()
    }

    /// Whether it may be finished now; `Ok` with the number of deviations.
    pub fn check_finish(&self) -> Result<usize, FinishRefusal> {
        if self.finished.is_some() {
            return Err(FinishRefusal::AlreadyFinished);
        }
        let open = self.open_steps();
        if !open.is_empty() {
            return Err(FinishRefusal::OpenSteps(open));
        }
        let missing: Vec<usize> = self
            .steps
            .iter()
            .filter(|s| {
                s.outcome == Some(StepOutcome::NotApplicable)
                    && s.note.as_deref().is_none_or(|n| n.trim().is_empty())
            })
            .map(|s| s.number)
            .collect();
        if !missing.is_empty() {
            return Err(FinishRefusal::MissingReasons(missing));
        }
        Ok(self.problems().len())
    }

    /// Who may act on the run: its assignees and the procedure's owner.
    pub fn may_act(&self, email: &Email) -> bool {
        self.assignees.contains(email) || self.owner.as_ref() == Some(email)
    }

    /// Whether it is past due and unfinished at `now`.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.finished.is_none() && self.due_at.is_some_and(|due| due <= now)
    }

    fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} v{v}", self.title),
            None => self.title.clone(),
        }
    }
}

/// What a refusal to finish says.
pub fn finish_refusal(run: &Run, refusal: &FinishRefusal) -> String {
    match refusal {
        FinishRefusal::AlreadyFinished => format!("Run #{} is already finished.", run.id),
        FinishRefusal::OpenSteps(open) => format!(
            "Run #{} cannot be finished yet: {} {} no outcome. Mark each done, not applicable (with a reason) or problem.",
            run.id,
            numbers(open),
            if open.len() == 1 { "has" } else { "have" }
        ),
        FinishRefusal::MissingReasons(missing) => format!(
            "Run #{} cannot be finished yet: {} {} marked not applicable without a reason. Type `note {} <step> <reason>`.",
            run.id,
            numbers(missing),
            if missing.len() == 1 { "is" } else { "are" },
            run.id
        ),
    }
}

/// The steps a run of `procedure` walks through: its top-level steps, nested items kept in
/// their parent's text.
pub fn run_steps(procedure: &Procedure) -> Vec<String> {
    compose::step_lines(procedure)
}

/// Cuts a note to `MAX_NOTE_CHARS` and flattens it to one line.
pub fn clean_note(text: &str) -> Option<String> {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_NOTE_CHARS)
        .collect();
    let trimmed = flat.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// The run as a checklist: every step with its state, buttons for the next open steps, and
/// Finish. A finished run shows its result and no buttons.
pub fn checklist(run: &Run, directory: Option<&Directory>) -> Message {
    let name = |email: &Email| {
        directory
            .and_then(|d| d.person(email))
            .map(|p| p.display_name().to_string())
            .unwrap_or_else(|| email.to_string())
    };
    let mut message = Message::new().header(format!("Run #{}: {}", run.id, run.label()));
    let mut context = match (run.trigger, run.scheduled_for) {
        (RunTrigger::Schedule, Some(at)) => format!("Scheduled for {}", when(at)),
        _ => format!("Started {}", when(run.started_at)),
    };
    if let Some(by) = &run.started_by {
        context.push_str(&format!(" by {}", name(by)));
    }
    if !run.assignees.is_empty() {
        let names: Vec<String> = run.assignees.iter().map(name).collect();
        context.push_str(&format!(" · assigned to {}", names.join(", ")));
    }
    if let (Some(due), None) = (run.due_at, &run.finished) {
        context.push_str(&format!(" · due {}", when(due)));
    }
    message = message.context(context);
    let lines: Vec<String> = run
        .steps
        .iter()
        .map(|step| {
            let mut line = match step.outcome {
                Some(outcome) => format!("{} {}. {}", outcome.mark(), step.number, step.text),
                None => format!("⬜ {}. {}", step.number, step.text),
            };
            if let (Some(outcome), Some(by)) = (step.outcome, &step.by) {
                line.push_str(&format!(" ({} by {}", outcome.label(), name(by)));
                if let Some(at) = step.at {
                    line.push_str(&format!(", {}", when(at)));
                }
                line.push(')');
            }
            if let Some(note) = &step.note {
                line.push_str(&format!(" — {note}"));
            }
            line
        })
        .collect();
    message = message.list(false, lines);
    if let Some(finished) = &run.finished {
        let duration = finished.at - run.started_at;
        let mut text = format!(
            "Finished {} by {} after {}.",
            when(finished.at),
            name(&finished.by),
            human_duration(duration)
        );
        if finished.deviations > 0 {
            text.push_str(&format!(
                " {} deviation{} recorded; the owner was told.",
                finished.deviations,
                if finished.deviations == 1 { "" } else { "s" }
            ));
        }
        return message.context(text);
    }
    for number in run.open_steps().into_iter().take(STEP_BUTTON_ROWS) {
        message = message.actions(
            StepOutcome::ALL
                .into_iter()
                .map(|outcome| {
                    let label = match outcome {
                        StepOutcome::Done => format!("Step {number}: done"),
                        StepOutcome::NotApplicable => "Not applicable".to_string(),
                        StepOutcome::Problem => "Problem".to_string(),
                    };
                    let mut button = Button::new(label, action::run_step(run.id, number, outcome));
                    if outcome == StepOutcome::Done {
                        button = button.primary();
                    }
                    button
                })
                .collect(),
        );
    }
    message = message.context(format!(
        "Add evidence to a step: `note {} <step> <text or link>`. Not applicable needs a reason. Type `step {} <n> done|na|problem [note]` for any step.",
        run.id, run.id
    ));
    message.actions(vec![Button {
        label: "Finish".to_string(),
        action_id: action::run_finish(run.id),
        style: ButtonStyle::Default,
    }])
}

/// For the owner: a run finished with problems.
pub fn deviation_notice(run: &Run) -> Message {
    let lines: Vec<String> = run
        .problems()
        .iter()
        .map(|step| {
            format!(
                "Step {}: {}{}",
                step.number,
                step.text,
                step.note
                    .as_ref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    Message::new()
        .header(format!("Deviation in run #{} of {}", run.id, run.label()))
        .text("The run was finished with a problem at these steps. It is recorded as a deviation; consider whether the procedure needs changing.")
        .list(false, lines)
}

fn human_duration(duration: Duration) -> String {
    let minutes = duration.num_minutes().max(0);
    match minutes {
        0 => "less than a minute".to_string(),
        1 => "1 minute".to_string(),
        m if m < 120 => format!("{m} minutes"),
        m if m < 48 * 60 => format!("{} hours", m / 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

/// The latest occurrence of `schedule` at or before `now`, and when a run for it is due: by
/// the next occurrence, within a week at most.
pub fn due_occurrence(
    schedule: &Schedule,
    time_zone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let local = now.with_timezone(&time_zone);
    let latest = schedule.latest_at_or_before(&local)?;
    let window = Duration::days(MAX_RUN_WINDOW_DAYS);
    let due = match schedule.next_after(&latest) {
        Some(next) => (next - latest).min(window),
        None => window,
    };
    let latest = latest.with_timezone(&Utc);
    Some((latest, latest + due))
}

/// Who performs a scheduled run: `run_by` resolved through the directory, else the owner.
pub fn assignees(procedure: &Procedure, directory: Option<&Directory>) -> Vec<Email> {
    if !procedure.run_by.is_empty()
        && let Some(directory) = directory
    {
        let people = directory.resolve(&procedure.run_by);
        if !people.is_empty() {
            return people.into_iter().collect();
        }
    }
    procedure.owner.iter().cloned().collect()
}

/// Whole weeks since `since` (0 in the first week), for weekly reminder keys.
pub fn weeks_since(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - since).num_days().max(0) / 7
}

/// The people an overdue run's escalation goes to: the owner (unless they are the one
/// running it) and each assignee's manager.
pub fn escalation_recipients(run: &Run, directory: &Directory) -> BTreeSet<Email> {
    let mut people: BTreeSet<Email> = run
        .assignees
        .iter()
        .filter_map(|a| directory.person(a).and_then(|p| p.manager.clone()))
        .collect();
    if let Some(owner) = &run.owner
        && !run.assignees.contains(owner)
    {
        people.insert(owner.clone());
    }
    for assignee in &run.assignees {
        people.remove(assignee);
    }
    people
}

/// A reminder to finish an overdue run; to anyone but its assignees a private procedure is
/// not named.
pub fn overdue_message(run: &Run, to_assignee: bool, private: bool) -> Message {
    let due = run.due_at.map(when).unwrap_or_default();
    let text = if to_assignee {
        format!(
            "Run #{} of {} was due {due} and is not finished. Open steps: {}.",
            run.id,
            run.label(),
            run.open_steps()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        let names: Vec<String> = run.assignees.iter().map(ToString::to_string).collect();
        let what = if private {
            "a confidential or restricted procedure".to_string()
        } else {
            run.label()
        };
        format!(
            "Run #{} of {what} (assigned to {}) was due {due} and is still not finished.",
            run.id,
            names.join(", ")
        )
    };
    let mut message = Message::new()
        .header("A procedure run is overdue")
        .text(text);
    if to_assignee {
        message = message.actions(vec![Button::new(
            "Show the checklist",
            action::run_show(run.id),
        )]);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap()
    }

    fn run(outcomes: &[(Option<StepOutcome>, Option<&str>)]) -> Run {
        Run {
            id: 7,
            procedure_id: ProcedureId::parse("backup").unwrap(),
            title: "Back up".into(),
            version: Some("1.2.0".into()),
            content_hash: "ab".repeat(32),
            commit_id: None,
            owner: Some(email("it-lead@example.com")),
            trigger: RunTrigger::Manual,
            scheduled_for: None,
            due_at: None,
            started_at: Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
            started_by: Some(email("sam@example.com")),
            assignees: vec![email("sam@example.com")],
            steps: outcomes
                .iter()
                .enumerate()
                .map(|(i, (outcome, note))| RunStep {
                    number: i + 1,
                    text: format!("Step text {}", i + 1),
                    outcome: *outcome,
                    note: note.map(str::to_string),
                    by: outcome.map(|_| email("sam@example.com")),
                    at: outcome.map(|_| Utc.with_ymd_and_hms(2026, 12, 1, 9, 5, 0).unwrap()),
                })
                .collect(),
            finished: None,
        }
    }

    #[test]
    fn finishing_needs_every_step_and_every_reason() {
        let open = run(&[(Some(StepOutcome::Done), None), (None, None), (None, None)]);
        assert_eq!(
            open.check_finish(),
            Err(FinishRefusal::OpenSteps(vec![2, 3]))
        );
        assert!(
            finish_refusal(&open, &open.check_finish().unwrap_err())
                .contains("steps 2 and 3 have no outcome")
        );
        let unexplained = run(&[
            (Some(StepOutcome::NotApplicable), None),
            (Some(StepOutcome::Done), None),
        ]);
        assert_eq!(
            unexplained.check_finish(),
            Err(FinishRefusal::MissingReasons(vec![1]))
        );
        let with_problem = run(&[
            (
                Some(StepOutcome::NotApplicable),
                Some("no new data this month"),
            ),
            (Some(StepOutcome::Problem), Some("disk full")),
        ]);
        assert_eq!(with_problem.check_finish(), Ok(1));
    }

    #[test]
    fn the_checklist_offers_buttons_for_the_next_open_steps_and_finish() {
        let outcomes: Vec<(Option<StepOutcome>, Option<&str>)> =
            std::iter::once((Some(StepOutcome::Done), Some("ticket OPS-1")))
                .chain(std::iter::repeat_n((None, None), 7))
                .collect();
        let message = checklist(&run(&outcomes), None);
        let ids: Vec<&str> = message.action_ids().collect();
        assert_eq!(ids.len(), STEP_BUTTON_ROWS * 3 + 1);
        assert_eq!(ids[0], "run/7/2/ok");
        assert_eq!(ids.last(), Some(&"run/7/fin"));
    }

    #[test]
    fn due_occurrences_follow_the_schedule_in_its_time_zone() {
        let schedule = Schedule::parse("0 9 * * MON").unwrap();
        let zone = chrono_tz::Europe::London;
        // Monday 1 June 2026, 08:30 UTC = 09:30 in London (summer time).
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 8, 30, 0).unwrap();
        let (occurrence, due) = due_occurrence(&schedule, zone, now).unwrap();
        assert_eq!(
            occurrence,
            Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap()
        );
        assert_eq!(due, occurrence + Duration::days(7));
        let daily = Schedule::parse("@daily").unwrap();
        let (occurrence, due) = due_occurrence(&daily, zone, now).unwrap();
        assert_eq!(due - occurrence, Duration::days(1));
    }
}
