//! The scheduler travelling through time on a manual clock: review nudges before and after the
//! due date with escalation, snoozes, acknowledgement reminders and escalation, time zones,
//! working hours, a restart in the middle, and two schedulers sharing one PostgreSQL database.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use procbot::adapters::console::Sent;
use procbot::config::EmailAddress;
use procbot::core::port::Destination;
use procbot::scheduler::Scheduler;
use procbot::startup::reminder_policy;
use tokio::sync::Notify;

use crate::bot::{TestBot, email, render};
use crate::db::TestDb;
use crate::git_fixture::GitFixture;
use crate::helpers::procedure_text;

const DIRECTORY: &str = "teams:\n  it-ops: [it-lead@example.com, sam@example.com, omar@example.com]\npeople:\n  it-lead@example.com: { name: Ida Lead, manager: cto@example.com, tz: Europe/Berlin }\n  sam@example.com: { name: Sam Ops, manager: it-lead@example.com }\n  omar@example.com: { name: Omar Haddad, manager: it-lead@example.com, tz: Asia/Dubai }\n  cto@example.com: { name: Chidi Okafor }\n  security-lead@example.com: { name: Sofia Reyes }\n";

fn reviewed_procedure(id: &str, last_reviewed: &str) -> String {
    let fields: Vec<(String, String)> = [
        ("id", id),
        ("title", &format!("Procedure {id}")),
        ("owner", "it-lead@example.com"),
        ("audience", "[it-ops]"),
        ("version", "1.0.0"),
        ("last_reviewed", last_reviewed),
        ("review_every", "12 months"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    procedure_text(
        &fields,
        &format!("# Procedure {id}\n\n## Purpose\nWhy.\n\n## Steps\n1. Do {id}.\n"),
    )
}

fn repository(procedures: &[(&str, &str)]) -> GitFixture {
    let fixture = GitFixture::at_root();
    fixture.write("directory.yaml", DIRECTORY);
    for (id, last_reviewed) in procedures {
        fixture.write(&format!("{id}.md"), &reviewed_procedure(id, last_reviewed));
    }
    fixture.publish("Procedures");
    fixture
}

/// What the bot sent, with when.
struct Log {
    entries: Vec<(DateTime<Utc>, Sent)>,
    seen: usize,
}

impl Log {
    fn new() -> Log {
        Log {
            entries: Vec::new(),
            seen: 0,
        }
    }

    fn collect(&mut self, bot: &TestBot) {
        let sent = bot.port.sent();
        for item in &sent[self.seen..] {
            self.entries.push((bot.clock.now(), item.clone()));
        }
        self.seen = sent.len();
    }

    /// New DMs to `who` whose text contains `needle`, with their times.
    fn dms(&self, who: &str, needle: &str) -> Vec<DateTime<Utc>> {
        self.entries
            .iter()
            .filter(|(_, s)| s.is_dm_to(&email(who)))
            .filter(|(_, s)| render(&[s.message().clone()]).contains(needle))
            .map(|(at, _)| *at)
            .collect()
    }

    fn channel(&self, needle: &str) -> Vec<DateTime<Utc>> {
        self.entries
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    Sent::Posted {
                        destination: Destination::Channel { .. },
                        ..
                    }
                )
            })
            .filter(|(_, s)| render(&[s.message().clone()]).contains(needle))
            .map(|(at, _)| *at)
            .collect()
    }
}

fn day(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

fn days(times: &[DateTime<Utc>]) -> Vec<String> {
    times.iter().map(day).collect()
}

use procbot::clock::Clock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_are_nudged_escalated_snoozed_and_recorded_through_a_year() {
    let fixture = repository(&[
        ("on-time", "2026-01-15"),
        ("lapsing", "2026-01-11"),
        ("snoozer", "2026-01-13"),
    ]);
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn_with(&fixture, &db, |config| {
        config.schedule.security_lead = Some(EmailAddress(email("security-lead@example.com")));
    })
    .await;
    bot.sync().await;
    bot.deliver().await;
    // Everyone acknowledges at once, so only review traffic remains.
    for person in ["it-lead@example.com", "sam@example.com", "omar@example.com"] {
        for id in ["on-time", "lapsing", "snoozer"] {
            bot.say(person, &format!("ack {id}")).await;
        }
    }
    let mut log = Log::new();
    log.collect(&bot);
    let owner = "it-lead@example.com";
    let mut snooze_answers = Vec::new();
    let mut reviewed_answer = String::new();
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap();
    // A year and three weeks, looking at the clock every two hours of the day.
    for hour in (0..(385 * 24)).step_by(2) {
        let now = start + Duration::hours(hour);
        if !(6..=18).contains(&now.hour()) {
            continue;
        }
        bot.clock.set(now);
        bot.tick().await;
        let before = log.entries.len();
        log.collect(&bot);
        for (_, sent) in &log.entries[before..] {
            if !sent.is_dm_to(&email(owner)) {
                continue;
            }
            let text = render(&[sent.message().clone()]);
            let buttons: Vec<String> = sent.message().action_ids().map(str::to_string).collect();
            if text.contains("Procedure on-time v1.0.0 is due for review on 2027-01-15 (in 7 days)")
            {
                let ok = buttons
                    .iter()
                    .find(|a| a.starts_with("rv/ok/on-time/"))
                    .unwrap();
                reviewed_answer = bot.click(owner, ok).await;
            }
            if text.contains("Procedure snoozer v1.0.0") {
                let snooze = buttons
                    .iter()
                    .find(|a| a.starts_with("rv/snz/snoozer/"))
                    .unwrap();
                snooze_answers.push(bot.click(owner, snooze).await);
            }
            if text.contains("Procedure lapsing v1.0.0 was due for review on 2027-01-11: 14 days") {
                let changes = buttons
                    .iter()
                    .find(|a| a.starts_with("rv/chg/lapsing/"))
                    .unwrap();
                bot.click(owner, changes).await;
            }
        }
        log.collect(&bot);
    }

    // On time: 30 and 7 days before, then reviewed; nothing more, nobody else told.
    assert_eq!(
        days(&log.dms(
            owner,
            "Procedure on-time v1.0.0 is due for review on 2027-01-15"
        )),
        ["2026-12-16", "2027-01-08"]
    );
    assert!(
        reviewed_answer.contains("Set `last_reviewed: 2027-01-08`"),
        "{reviewed_answer}"
    );
    assert!(log.dms("cto@example.com", "on-time").is_empty());

    // Lapsing: nudged before, on the day and weekly while overdue; the manager from a week
    // overdue, the channel from three weeks, weekly.
    let nudge_times = log.dms(owner, "Procedure lapsing v1.0.0");
    for pair in nudge_times[2..].windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::days(7), "{nudge_times:?}");
    }
    let nudges = days(&nudge_times);
    assert_eq!(
        nudges[..10],
        [
            "2026-12-14",
            "2027-01-04",
            "2027-01-11",
            "2027-01-18",
            "2027-01-25",
            "2027-02-01",
            "2027-02-08",
            "2027-02-15",
            "2027-02-22",
            "2027-03-01"
        ]
    );
    let manager = days(&log.dms("cto@example.com", "Procedure lapsing v1.0.0"));
    assert_eq!(manager[..3], ["2027-01-18", "2027-01-25", "2027-02-01"]);
    let channel = days(&log.channel("Procedure lapsing v1.0.0 (lapsing)"));
    assert_eq!(channel[..2], ["2027-02-01", "2027-02-08"]);
    // "Needs changes" told the security lead.
    assert_eq!(
        days(&log.dms("security-lead@example.com", "says it needs changes")),
        ["2027-01-25"]
    );

    // Snoozer: snoozed twice, then the third snooze is refused and nudges go on.
    assert!(snooze_answers[0].contains("Snoozed"), "{snooze_answers:?}");
    assert!(snooze_answers[1].contains("Snoozed"), "{snooze_answers:?}");
    assert!(
        snooze_answers[2].contains("snoozed 2 times already"),
        "{snooze_answers:?}"
    );
    let snoozer = log.dms(owner, "Procedure snoozer v1.0.0");
    for pair in snoozer.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::days(7), "{snoozer:?}");
    }

    // Every DM arrived within its recipient's working hours on a working day.
    for (at, sent) in &log.entries {
        if let Sent::Posted {
            destination: Destination::Person { email },
            ..
        } = sent
        {
            let zone = match email.as_str() {
                "it-lead@example.com" => chrono_tz::Europe::Berlin,
                "omar@example.com" => chrono_tz::Asia::Dubai,
                _ => chrono_tz::UTC,
            };
            let local = at.with_timezone(&zone);
            assert!(
                local.time() >= NaiveTime::from_hms_opt(9, 0, 0).unwrap()
                    && local.time() < NaiveTime::from_hms_opt(17, 30, 0).unwrap(),
                "{email} at {local}"
            );
        }
    }
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgement_reminders_respect_time_zones_survive_a_restart_and_escalate() {
    let fixture = repository(&[("backup", "2026-11-01")]);
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    // Tuesday 1 December 2026, 09:00 UTC: everyone in it-ops is asked to acknowledge.
    bot.sync().await;
    bot.deliver().await;
    let mut log = Log::new();
    log.collect(&bot);
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    for hour in 0..(30 * 24) {
        let now = start + Duration::hours(hour);
        bot.clock.set(now);
        if now == Utc.with_ymd_and_hms(2026, 12, 10, 12, 0, 0).unwrap() {
            bot.restart().await;
        }
        bot.tick().await;
        log.collect(&bot);
        let sam_reminders = log.dms("sam@example.com", "a reminder");
        if sam_reminders.len() == 2
            && bot
                .say("sam@example.com", "pending")
                .await
                .contains("backup")
        {
            bot.say("sam@example.com", "ack backup").await;
        }
    }
    let reminder = "a reminder: these procedures still need your acknowledgement";
    // Sam (UTC): after 2 and 5 working days, then acknowledged; nothing more.
    assert_eq!(
        days(&log.dms("sam@example.com", reminder)),
        ["2026-12-03", "2026-12-08"]
    );
    // Omar (Dubai): after 2, 5 and 10 working days, at 09:00 his time (05:00 UTC).
    let omar = log.dms("omar@example.com", reminder);
    assert_eq!(days(&omar), ["2026-12-03", "2026-12-08", "2026-12-15"]);
    assert!(omar.iter().all(|at| at.hour() == 5), "{omar:?}");
    // Then his manager is told, once, after 15 working days, in her morning (Berlin).
    let escalation = log.dms(
        "it-lead@example.com",
        "Omar Haddad has not acknowledged Procedure backup v1.0.0",
    );
    assert_eq!(days(&escalation), ["2026-12-22"]);
    assert_eq!(escalation[0].hour(), 8, "09:00 in Berlin");
    assert!(
        log.dms("it-lead@example.com", "Sam Ops has not acknowledged")
            .is_empty()
    );
    // Never more than one reminder a person a day, restart or not.
    let mut per_day: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (at, sent) in &log.entries {
        if let Sent::Posted {
            destination: Destination::Person { email },
            message,
            ..
        } = sent
            && render(std::slice::from_ref(message)).contains(reminder)
        {
            *per_day.entry((email.to_string(), day(at))).or_default() += 1;
        }
    }
    assert!(per_day.values().all(|n| *n == 1), "{per_day:?}");
    // The weekly digest, Mondays at 09:00 in the configured zone.
    let digests = log.channel("Weekly procedures digest");
    assert_eq!(
        days(&digests),
        ["2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28"]
    );
    assert!(digests.iter().all(|at| at.hour() == 9));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_on_one_postgres_database_send_each_reminder_once() {
    let fixture = repository(&[("backup", "2026-01-04")]);
    let db = TestDb::postgres().await;
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    bot.deliver().await;
    // Monday 7 December 2026, 10:00 UTC: reminders (4 working days on) and the digest are due.
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap());
    let planned = bot.services.scheduler.plan(bot.clock.now()).await.unwrap();
    assert!(planned.len() >= 3, "{planned:?}");
    let second = Scheduler::new(
        db.store().await,
        bot.clock.clone(),
        bot.services.library.clone(),
        vec![procbot::engine::Target {
            platform: procbot::core::port::Platform::Console,
            announce_channel: Some(crate::bot::ANNOUNCE_CHANNEL.into()),
        }],
        procbot::scheduler::ReminderPolicy {
            security_lead: None,
            ..reminder_policy(&bot.config)
        },
        Arc::new(Notify::new()),
    );
    let first = &bot.services.scheduler;
    let (a, b) = tokio::join!(first.tick(), second.tick());
    assert_eq!(a.unwrap() + b.unwrap(), planned.len());
    let before = bot.port.sent().len();
    bot.deliver().await;
    assert_eq!(bot.port.sent().len() - before, planned.len());
    assert_eq!(second.tick().await.unwrap(), 0);
    let now = bot.clock.now();
    assert!(bot.services.scheduler.plan(now).await.unwrap().is_empty());
    db.finish().await;
}
