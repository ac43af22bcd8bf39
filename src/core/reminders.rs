//! What falls due at a moment: review nudges (30 and 7 days before, on the day, weekly while
//! overdue), their escalation (the owner's manager, then the announce channel), acknowledgement
//! reminders (after 2, 5 and 10 working days, consolidated, at most one a day) and their
//! escalation to the manager, and the weekly digest. Pure: the scheduler supplies the facts and
//! records which jobs were done; every reminder names the job keys that make it happen once.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use serde::Serialize;

use crate::core::compose::{self, PendingItem};
use crate::core::directory::Directory;
use crate::core::message::{Button, Message};
use crate::core::procedure::{Email, ProcedureId};
use crate::core::request::{ReviewOutcome, action};
use crate::core::runs::{self, Run};
use crate::core::schedule::Schedule;

/// Working days after which a pending acknowledgement is reminded.
pub const ACK_REMINDER_DAYS: [i64; 3] = [2, 5, 10];
/// Working days after which the person's manager is told.
pub const ACK_ESCALATION_DAYS: i64 = 15;
/// Days before the due date on which owners are nudged.
pub const REVIEW_NUDGE_DAYS: [i64; 2] = [30, 7];
/// Days overdue after which the owner's manager, then the announce channel, is told (weekly).
pub const REVIEW_MANAGER_DAYS: i64 = 7;
pub const REVIEW_CHANNEL_DAYS: i64 = 21;

/// When people may be messaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    /// For people without their own time zone, and for channels.
    pub time_zone: chrono_tz::Tz,
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// Monday = 0.
    pub working_days: BTreeSet<u8>,
}

impl Calendar {
    fn is_working_day(&self, day: Weekday) -> bool {
        self.working_days
            .contains(&u8::try_from(day.num_days_from_monday()).unwrap_or(0))
    }

    /// Whether `now` is within working hours on a working day in `zone`.
    pub fn is_working_time(&self, now: DateTime<Utc>, zone: chrono_tz::Tz) -> bool {
        let local = now.with_timezone(&zone);
        let time = local.time();
        self.is_working_day(local.weekday()) && time >= self.start && time < self.end
    }

    /// Working days in (`from`, `to`].
    pub fn working_days_after(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = match day.succ_opt() {
                Some(next) => next,
                None => break,
            };
            if self.is_working_day(day.weekday()) {
                count += 1;
            }
        }
        count
    }
}

/// A procedure whose review is tracked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewSubject {
    pub id: ProcedureId,
    pub title: String,
    pub version: Option<String>,
    pub content_hash: String,
    pub owner: Email,
    pub due: NaiveDate,
    pub private: bool,
    /// A snooze still running.
    pub snoozed_until: Option<DateTime<Utc>>,
}

/// An owner's answer to a review reminder, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewRecord {
    pub content_hash: String,
    pub outcome: ReviewOutcome,
    pub at: DateTime<Utc>,
    pub snooze_until: Option<DateTime<Utc>>,
}

/// The records since the last "still accurate" answer for this version: the current cycle.
fn current_cycle<'a>(history: &'a [ReviewRecord], content_hash: &str) -> Vec<&'a ReviewRecord> {
    let mut cycle = Vec::new();
    for record in history.iter().filter(|r| r.content_hash == content_hash) {
        if record.outcome == ReviewOutcome::StillAccurate {
            cycle.clear();
        } else {
            cycle.push(record);
        }
    }
    cycle
}

/// Snoozes used in the current review cycle of this version (at most `MAX_SNOOZES`).
pub fn snoozes_in_cycle(history: &[ReviewRecord], content_hash: &str) -> usize {
    current_cycle(history, content_hash)
        .iter()
        .filter(|r| r.outcome == ReviewOutcome::Snooze)
        .count()
}

/// Snoozes allowed per review cycle.
pub const MAX_SNOOZES: usize = 2;

/// A procedure's review state: due one `review_every` after the later of the file's
/// `last_reviewed` and the last "still accurate" answer recorded for this version.
/// Answers are dated in `owner_zone`, the owner's own calendar.
pub fn review_subject(
    procedure: &crate::core::procedure::Procedure,
    content_hash: &str,
    history: &[ReviewRecord],
    owner_zone: chrono_tz::Tz,
) -> Option<ReviewSubject> {
    let owner = procedure.owner.clone()?;
    let confirmed = history
        .iter()
        .filter(|r| r.content_hash == content_hash && r.outcome == ReviewOutcome::StillAccurate)
        .map(|r| r.at.with_timezone(&owner_zone).date_naive())
        .max();
    let effective = match (procedure.last_reviewed, confirmed) {
        (Some(file), Some(bot)) => Some(file.max(bot)),
        (file, bot) => file.or(bot),
    }?;
    let due = procedure.review_every.next_due(effective)?;
    let snoozed_until = current_cycle(history, content_hash)
        .iter()
        .filter_map(|r| r.snooze_until)
        .max();
    Some(ReviewSubject {
        id: procedure.id.clone(),
        title: procedure.title.clone(),
        version: procedure.version.as_ref().map(ToString::to_string),
        content_hash: content_hash.to_string(),
        owner,
        due,
        private: procedure.classification.is_private(),
        snoozed_until,
    })
}

/// A version's acknowledgement coverage, for the digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub id: ProcedureId,
    pub title: String,
    pub version: Option<String>,
    pub required: i64,
    pub acknowledged: i64,
    pub private: bool,
}

/// A pending acknowledgement, with whether its procedure may be named to others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingFact {
    pub item: PendingItem,
    pub private: bool,
}

pub struct ReminderInputs<'a> {
    pub now: DateTime<Utc>,
    pub calendar: &'a Calendar,
    pub directory: &'a Directory,
    pub reviews: &'a [ReviewSubject],
    pub pending: &'a BTreeMap<Email, Vec<PendingFact>>,
    pub coverage: &'a [Coverage],
    pub digest: Option<&'a Schedule>,
    /// Told of "needs changes" answers and sent the digest directly.
    pub security_lead: Option<&'a Email>,
    /// Procedure runs not yet finished.
    pub open_runs: &'a [Run],
    /// Confidential and restricted procedures: escalations about their runs do not name them.
    pub private_procedures: &'a BTreeSet<ProcedureId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    ReviewUpcoming,
    ReviewDue,
    ReviewOverdue,
    AckReminder,
    AckEscalation,
    Digest,
    RunOverdue,
    RunEscalation,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::ReviewUpcoming => "review_upcoming",
            ReminderKind::ReviewDue => "review_due",
            ReminderKind::ReviewOverdue => "review_overdue",
            ReminderKind::AckReminder => "ack_reminder",
            ReminderKind::AckEscalation => "ack_escalation",
            ReminderKind::Digest => "digest",
            ReminderKind::RunOverdue => "run_overdue",
            ReminderKind::RunEscalation => "run_escalation",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recipient {
    Person(Email),
    /// The announce channel.
    Channel,
}

impl Recipient {
    /// An email, or `channel`.
    pub fn describe(&self) -> String {
        match self {
            Recipient::Person(email) => email.to_string(),
            Recipient::Channel => "channel".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reminder {
    pub kind: ReminderKind,
    pub to: Recipient,
    pub procedures: Vec<ProcedureId>,
    /// The job this reminder is; recorded when sent, so it is sent once.
    pub key: String,
    /// Milestones this reminder covers: when present, it is due only if one of them is not yet
    /// done (an acknowledgement reminder goes out when some item reached a new milestone).
    pub triggers: Vec<String>,
    pub message: Message,
}

impl Reminder {
    /// Whether it still has to be sent, given the job keys already done.
    pub fn is_due(&self, done: &BTreeSet<String>) -> bool {
        !done.contains(&self.key)
            && (self.triggers.is_empty() || self.triggers.iter().any(|t| !done.contains(t)))
    }

    /// Every job key this reminder accounts for.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.key).chain(self.triggers.iter())
    }
}

fn zone_of(directory: &Directory, calendar: &Calendar, email: &Email) -> chrono_tz::Tz {
    directory.time_zone_of(email, calendar.time_zone)
}

fn name_of(directory: &Directory, email: &Email) -> String {
    directory
        .person(email)
        .map(|p| p.display_name().to_string())
        .unwrap_or_else(|| email.to_string())
}

fn label(title: &str, version: Option<&str>) -> String {
    match version {
        Some(version) => format!("{title} v{version}"),
        None => title.to_string(),
    }
}

fn review_buttons(subject: &ReviewSubject) -> Vec<Button> {
    vec![
        Button::new(
            "Reviewed – still accurate",
            action::review(
                &subject.id,
                ReviewOutcome::StillAccurate,
                &subject.content_hash,
            ),
        )
        .primary(),
        Button::new(
            "Needs changes",
            action::review(
                &subject.id,
                ReviewOutcome::NeedsChanges,
                &subject.content_hash,
            ),
        ),
        Button::new(
            "Snooze 7 days",
            action::review(&subject.id, ReviewOutcome::Snooze, &subject.content_hash),
        ),
    ]
}

/// Every reminder that would be due at `inputs.now` if nothing had been sent yet; filter with
/// `Reminder::is_due`.
pub fn candidate_reminders(inputs: &ReminderInputs<'_>) -> Vec<Reminder> {
    let mut reminders = Vec::new();
    review_reminders(inputs, &mut reminders);
    ack_reminders(inputs, &mut reminders);
    run_reminders(inputs, &mut reminders);
    digest(inputs, &mut reminders);
    reminders
}

/// Overdue runs, like overdue reviews: the assignees when the run falls due and weekly after;
/// the owner and the assignees' managers from `RUN_ESCALATION_DAYS` overdue, the security lead
/// from `RUN_LEAD_DAYS`, weekly. Each in their own working hours.
fn run_reminders(inputs: &ReminderInputs<'_>, out: &mut Vec<Reminder>) {
    let calendar = inputs.calendar;
    for run in inputs.open_runs {
        let Some(due) = run.due_at.filter(|due| *due <= inputs.now) else {
            continue;
        };
        let week = runs::weeks_since(due, inputs.now);
        let private = inputs.private_procedures.contains(&run.procedure_id);
        let days = (inputs.now - due).num_days();
        for assignee in &run.assignees {
            if !inputs.directory.knows_person(assignee)
                || !calendar
                    .is_working_time(inputs.now, zone_of(inputs.directory, calendar, assignee))
            {
                continue;
            }
            out.push(Reminder {
                kind: ReminderKind::RunOverdue,
                to: Recipient::Person(assignee.clone()),
                procedures: vec![run.procedure_id.clone()],
                key: format!("run-overdue/{}/{assignee}/{week}", run.id),
                triggers: Vec::new(),
                message: runs::overdue_message(run, true, false),
            });
        }
        if days >= runs::RUN_ESCALATION_DAYS {
            let escalation_week = (days - runs::RUN_ESCALATION_DAYS) / 7;
            for person in runs::escalation_recipients(run, inputs.directory) {
                if !calendar
                    .is_working_time(inputs.now, zone_of(inputs.directory, calendar, &person))
                {
                    continue;
                }
                out.push(Reminder {
                    kind: ReminderKind::RunEscalation,
                    to: Recipient::Person(person.clone()),
                    procedures: vec![run.procedure_id.clone()],
                    key: format!("run-escalate/{}/{person}/{escalation_week}", run.id),
                    triggers: Vec::new(),
                    message: runs::overdue_message(run, false, private),
                });
            }
        }
        if days >= runs::RUN_LEAD_DAYS
            && let Some(lead) = inputs.security_lead
            && !run.assignees.contains(lead)
            && calendar.is_working_time(inputs.now, zone_of(inputs.directory, calendar, lead))
        {
            out.push(Reminder {
                kind: ReminderKind::RunEscalation,
                to: Recipient::Person(lead.clone()),
                procedures: vec![run.procedure_id.clone()],
                key: format!("run-lead/{}/{}", run.id, (days - runs::RUN_LEAD_DAYS) / 7),
                triggers: Vec::new(),
                message: runs::overdue_message(run, false, private),
            });
        }
    }
}

fn review_reminders(inputs: &ReminderInputs<'_>, out: &mut Vec<Reminder>) {
    let calendar = inputs.calendar;
    let default_today = inputs.now.with_timezone(&calendar.time_zone).date_naive();
    for subject in inputs.reviews {
        if subject
            .snoozed_until
            .is_some_and(|until| until > inputs.now)
        {
            continue;
        }
        let owner_zone = zone_of(inputs.directory, calendar, &subject.owner);
        let today = inputs.now.with_timezone(&owner_zone).date_naive();
        let days = (today - subject.due).num_days();
        let milestone = if days >= 7 {
            Some((days / 7) * 7)
        } else if days >= 0 {
            Some(0)
        } else if days >= -REVIEW_NUDGE_DAYS[1] {
            Some(-REVIEW_NUDGE_DAYS[1])
        } else if days >= -REVIEW_NUDGE_DAYS[0] {
            Some(-REVIEW_NUDGE_DAYS[0])
        } else {
            None
        };
        let what = label(&subject.title, subject.version.as_deref());
        if let Some(milestone) = milestone
            && calendar.is_working_time(inputs.now, owner_zone)
        {
            let (kind, text) = match days {
                d if d < 0 => (
                    ReminderKind::ReviewUpcoming,
                    format!(
                        "{what} is due for review on {} (in {} days).",
                        subject.due, -d
                    ),
                ),
                0 => (
                    ReminderKind::ReviewDue,
                    format!("{what} is due for review today."),
                ),
                d => (
                    ReminderKind::ReviewOverdue,
                    format!(
                        "{what} was due for review on {}: {d} days overdue.",
                        subject.due
                    ),
                ),
            };
            out.push(Reminder {
                kind,
                to: Recipient::Person(subject.owner.clone()),
                procedures: vec![subject.id.clone()],
                key: format!("review/{}/{}/{milestone}", subject.id, subject.due),
                triggers: Vec::new(),
                message: Message::new()
                    .header("Review reminder")
                    .text(format!(
                        "Hi {}, {text} Is it still accurate?",
                        name_of(inputs.directory, &subject.owner)
                    ))
                    .fields(vec![("Procedure".into(), subject.id.to_string())])
                    .actions(review_buttons(subject))
                    .context(format!(
                        "Or type `review {} ok|changes|snooze`.",
                        subject.id
                    )),
            });
        }
        if days >= REVIEW_MANAGER_DAYS
            && let Some(manager) = inputs
                .directory
                .person(&subject.owner)
                .and_then(|p| p.manager.clone())
        {
            let zone = zone_of(inputs.directory, calendar, &manager);
            if calendar.is_working_time(inputs.now, zone) {
                let shown = if subject.private {
                    "A confidential or restricted procedure".to_string()
                } else {
                    what.clone()
                };
                out.push(Reminder {
                    kind: ReminderKind::ReviewOverdue,
                    to: Recipient::Person(manager.clone()),
                    procedures: vec![subject.id.clone()],
                    key: format!("review-manager/{}/{}/{}", subject.id, subject.due, days / 7),
                    triggers: Vec::new(),
                    message: Message::new().header("Overdue review").text(format!(
                        "Hi {}, {shown}, owned by {}, was due for review on {} and is {days} days overdue.",
                        name_of(inputs.directory, &manager),
                        name_of(inputs.directory, &subject.owner),
                        subject.due
                    )),
                });
            }
        }
        if days >= REVIEW_CHANNEL_DAYS && calendar.is_working_time(inputs.now, calendar.time_zone) {
            let shown = if subject.private {
                "A confidential or restricted procedure".to_string()
            } else {
                format!("{what} ({})", subject.id)
            };
            let overdue_days = (default_today - subject.due).num_days().max(days);
            out.push(Reminder {
                kind: ReminderKind::ReviewOverdue,
                to: Recipient::Channel,
                procedures: vec![subject.id.clone()],
                key: format!("review-channel/{}/{}/{}", subject.id, subject.due, days / 7),
                triggers: Vec::new(),
                message: Message::new().header("Overdue review").text(format!(
                    "{shown} is {overdue_days} days overdue for review (owner: {}).",
                    subject.owner
                )),
            });
        }
    }
}

fn ack_reminders(inputs: &ReminderInputs<'_>, out: &mut Vec<Reminder>) {
    let calendar = inputs.calendar;
    let mut escalations: BTreeMap<Email, Vec<(Email, PendingFact)>> = BTreeMap::new();
    for (person, facts) in inputs.pending {
        let zone = zone_of(inputs.directory, calendar, person);
        let today = inputs.now.with_timezone(&zone).date_naive();
        let mut triggers = Vec::new();
        for fact in facts {
            let since = fact.item.since.with_timezone(&zone).date_naive();
            let age = calendar.working_days_after(since, today);
            if let Some(milestone) = ACK_REMINDER_DAYS.iter().rev().find(|m| age >= **m) {
                triggers.push(format!(
                    "ack/{person}/{}/{}/{milestone}",
                    fact.item.id, fact.item.content_hash
                ));
            }
            if age >= ACK_ESCALATION_DAYS
                && let Some(manager) = inputs
                    .directory
                    .person(person)
                    .and_then(|p| p.manager.clone())
            {
                escalations
                    .entry(manager)
                    .or_default()
                    .push((person.clone(), fact.clone()));
            }
        }
        if triggers.is_empty() || !calendar.is_working_time(inputs.now, zone) {
            continue;
        }
        let items: Vec<PendingItem> = facts.iter().map(|f| f.item.clone()).collect();
        let mut message = Message::new().text(format!(
            "Hi {}, a reminder: these procedures still need your acknowledgement.",
            name_of(inputs.directory, person)
        ));
        message.blocks.extend(compose::pending_list(&items).blocks);
        out.push(Reminder {
            kind: ReminderKind::AckReminder,
            to: Recipient::Person(person.clone()),
            procedures: items.iter().map(|i| i.id.clone()).collect(),
            key: format!("ack-day/{person}/{today}"),
            triggers,
            message,
        });
    }
    for (manager, overdue) in escalations {
        let zone = zone_of(inputs.directory, calendar, &manager);
        if !calendar.is_working_time(inputs.now, zone) {
            continue;
        }
        let today = inputs.now.with_timezone(&zone).date_naive();
        let lines: Vec<String> = overdue
            .iter()
            .map(|(person, fact)| {
                let what = if fact.private {
                    "a confidential or restricted procedure".to_string()
                } else {
                    label(&fact.item.title, fact.item.version.as_deref())
                };
                format!(
                    "{} has not acknowledged {what}, asked on {}",
                    name_of(inputs.directory, person),
                    fact.item.since.format("%Y-%m-%d")
                )
            })
            .collect();
        out.push(Reminder {
            kind: ReminderKind::AckEscalation,
            to: Recipient::Person(manager.clone()),
            procedures: overdue.iter().map(|(_, f)| f.item.id.clone()).collect(),
            key: format!("ack-manager-day/{manager}/{today}"),
            triggers: overdue
                .iter()
                .map(|(person, fact)| {
                    format!(
                        "ack-manager/{person}/{}/{}",
                        fact.item.id, fact.item.content_hash
                    )
                })
                .collect(),
            message: Message::new()
                .header("Acknowledgements overdue in your team")
                .text(format!(
                    "Hi {}, these have been waiting for more than {ACK_ESCALATION_DAYS} working days:",
                    name_of(inputs.directory, &manager)
                ))
                .list(false, lines),
        });
    }
}

fn digest(inputs: &ReminderInputs<'_>, out: &mut Vec<Reminder>) {
    let Some(schedule) = inputs.digest else {
        return;
    };
    let local_now = inputs.now.with_timezone(&inputs.calendar.time_zone);
    let Some(fired) = schedule.latest_at_or_before(&local_now) else {
        return;
    };
    // A digest missed by more than a day (procbot was down) waits for the next one; the
    // security lead's copy waits for their working hours, up to three days.
    let age = local_now - fired;
    let to_channel = age <= chrono::Duration::days(1);
    let to_lead = inputs.security_lead.filter(|lead| {
        age <= chrono::Duration::days(3)
            && inputs
                .calendar
                .is_working_time(inputs.now, zone_of(inputs.directory, inputs.calendar, lead))
    });
    if !to_channel && to_lead.is_none() {
        return;
    }
    let today = local_now.date_naive();
    let mut coverage_lines = Vec::new();
    let mut private_versions = 0;
    let (mut required, mut acknowledged) = (0i64, 0i64);
    for version in inputs.coverage {
        required += version.required;
        acknowledged += version.acknowledged;
        if version.private {
            private_versions += 1;
            continue;
        }
        if version.required > version.acknowledged {
            coverage_lines.push(format!(
                "{}: {}/{} acknowledged",
                label(&version.title, version.version.as_deref()),
                version.acknowledged,
                version.required
            ));
        }
    }
    let overdue_reviews: Vec<String> = inputs
        .reviews
        .iter()
        .filter(|r| r.due < today)
        .map(|r| {
            if r.private {
                format!(
                    "a confidential procedure (owner {}), due {}",
                    r.owner, r.due
                )
            } else {
                format!("{} (owner {}), due {}", r.title, r.owner, r.due)
            }
        })
        .collect();
    let overdue_people: Vec<String> = inputs
        .pending
        .iter()
        .filter_map(|(person, facts)| {
            let zone = zone_of(inputs.directory, inputs.calendar, person);
            let today = inputs.now.with_timezone(&zone).date_naive();
            let late = facts
                .iter()
                .filter(|f| {
                    inputs
                        .calendar
                        .working_days_after(f.item.since.with_timezone(&zone).date_naive(), today)
                        >= ACK_REMINDER_DAYS[2]
                })
                .count();
            (late > 0).then(|| format!("{person}: {late} overdue"))
        })
        .collect();
    let percent = if required == 0 {
        100
    } else {
        acknowledged * 100 / required
    };
    let mut message = Message::new()
        .header(format!("Weekly procedures digest, {today}"))
        .text(format!(
            "Acknowledgement coverage of current versions: {percent}% ({acknowledged} of {required})."
        ));
    if !coverage_lines.is_empty() {
        message = message
            .text("Still being acknowledged:")
            .list(false, coverage_lines);
    }
    if private_versions > 0 {
        message = message.context(format!(
            "{private_versions} confidential or restricted procedures are counted but not named."
        ));
    }
    message = if overdue_reviews.is_empty() {
        message.text("No review is overdue.")
    } else {
        message
            .text("Overdue reviews:")
            .list(false, overdue_reviews)
    };
    message = if overdue_people.is_empty() {
        message.text("No acknowledgement is more than 10 working days late.")
    } else {
        message
            .text("Acknowledgements more than 10 working days late:")
            .list(false, overdue_people)
    };
    let key = format!("digest/{}", fired.to_rfc3339());
    if to_channel {
        out.push(Reminder {
            kind: ReminderKind::Digest,
            to: Recipient::Channel,
            procedures: Vec::new(),
            key: key.clone(),
            triggers: Vec::new(),
            message: message.clone(),
        });
    }
    if let Some(lead) = to_lead {
        out.push(Reminder {
            kind: ReminderKind::Digest,
            to: Recipient::Person(lead.clone()),
            procedures: Vec::new(),
            key: format!("{key}/{lead}"),
            triggers: Vec::new(),
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn calendar() -> Calendar {
        Calendar {
            time_zone: chrono_tz::Europe::London,
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 30, 0).unwrap(),
            working_days: (0..5).collect(),
        }
    }

    #[test]
    fn working_days_skip_weekends() {
        let c = calendar();
        let friday = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let tuesday = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
        assert_eq!(c.working_days_after(friday, tuesday), 2);
        assert_eq!(c.working_days_after(tuesday, friday), 0);
        assert!(c.is_working_time(
            Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap(),
            chrono_tz::Europe::London
        ));
        // Saturday, and 08:00 in London.
        assert!(!c.is_working_time(
            Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap(),
            chrono_tz::Europe::London
        ));
        assert!(!c.is_working_time(
            Utc.with_ymd_and_hms(2026, 12, 4, 8, 0, 0).unwrap(),
            chrono_tz::Europe::London
        ));
        // 10:00 UTC is 14:00 in Dubai: working time there too.
        assert!(c.is_working_time(
            Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap(),
            chrono_tz::Asia::Dubai
        ));
    }

    #[test]
    fn an_acknowledgement_reminder_is_due_only_for_a_new_milestone() {
        let reminder = Reminder {
            kind: ReminderKind::AckReminder,
            to: Recipient::Channel,
            procedures: Vec::new(),
            key: "ack-day/a/2026-12-03".into(),
            triggers: vec!["ack/a/p/h/2".into()],
            message: Message::new(),
        };
        let mut done = BTreeSet::new();
        assert!(reminder.is_due(&done));
        done.insert("ack/a/p/h/2".to_string());
        assert!(!reminder.is_due(&done));
        done.clear();
        done.insert("ack-day/a/2026-12-03".to_string());
        assert!(!reminder.is_due(&done));
    }
}
