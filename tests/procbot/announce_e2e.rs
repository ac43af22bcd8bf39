//! End to end through the console adapter: a temporary git repository of procedures, a fresh
//! database, commits people make, and what the bot then sends, records and reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Duration;
use procbot::adapters::console::ConsolePort;
use procbot::cli::report::render_csv;
use procbot::clock::Clock;
use procbot::core::message::Message;
use procbot::core::port::{ChatPort, DeliveryError, Destination, MessageRef, Platform, PortFuture};
use procbot::core::procedure::Email;
use procbot::delivery::{OutboxWorker, Pace};
use procbot::repo::sync::SyncOutcome;

use crate::bot::{TestBot, email, render};
use crate::db::TestDb;
use crate::git_fixture::{GitFixture, procedure};
use crate::helpers::{DIRECTORY, procedure_text};

const STEPS: [&str; 2] = ["Start the backup job.", "Check the report."];

fn confidential(id: &str, version: &str, step: &str) -> String {
    let fields: Vec<(String, String)> = [
        ("id", id),
        ("title", "Run payroll"),
        ("owner", "cto@example.com"),
        ("audience", "[engineering]"),
        ("classification", "confidential"),
        ("version", version),
        ("last_reviewed", "2026-06-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    procedure_text(
        &fields,
        &format!("# Run payroll\n\n## Purpose\nPay people.\n\n## Steps\n1. {step}\n"),
    )
}

fn repository() -> GitFixture {
    let fixture = GitFixture::at_root();
    fixture.write("directory.yaml", DIRECTORY);
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    fixture.write(
        "payroll.md",
        &confidential("payroll", "1.0.0", "Export the hours."),
    );
    fixture.publish("Initial procedures");
    fixture
}

const IT_OPS: [&str; 2] = ["it-lead@example.com", "sam@example.com"];
const ENGINEERING: [&str; 2] = ["cto@example.com", "ana@example.com"];

#[tokio::test]
async fn a_version_bump_reaches_its_audience_once_and_acknowledgements_are_evidence() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;

    // First start: no flood, one welcome DM per person, nothing in the channel.
    assert!(matches!(
        bot.sync().await,
        SyncOutcome::Baseline { procedures: 2 }
    ));
    bot.deliver().await;
    assert!(bot.port.channel_posts().is_empty());
    for person in IT_OPS.iter().chain(&ENGINEERING) {
        assert_eq!(bot.port.dms_to(&email(person)).len(), 1, "{person}");
    }
    for person in IT_OPS {
        let pending = bot.say(person, "/procedure pending").await;
        assert!(pending.contains("Procedure backup v1.0.0"), "{pending}");
        assert!(!pending.contains("payroll"), "{pending}");
        bot.say(person, "ack backup").await;
    }
    let before = bot.port.sent().len();

    // The IT lead bumps the backup procedure to 1.1.0 with a changed step.
    fixture.write(
        "backup.md",
        &procedure(
            "backup",
            "1.1.0",
            &["Start the backup job in both regions.", STEPS[1]],
        ),
    );
    fixture.publish("Backup: copy to both regions");
    bot.clock.advance(Duration::hours(1));
    assert!(matches!(bot.sync().await, SyncOutcome::Changed(_)));
    let round = bot.deliver().await;
    assert_eq!(round.delivered, 3, "one post and one DM per it-ops member");
    let new: Vec<_> = bot.port.sent()[before..].to_vec();
    for person in IT_OPS {
        let dms: Vec<&Message> = new
            .iter()
            .filter(|s| s.is_dm_to(&email(person)))
            .map(|s| s.message())
            .collect();
        assert_eq!(dms.len(), 1, "{person} gets exactly one DM");
        let text = render(&[dms[0].clone()]);
        assert!(text.contains("Procedure backup (v1.1.0)"), "{text}");
        assert!(text.contains("both regions"), "the change summary: {text}");
        assert!(text.contains("it-lead@example.com"), "the owner: {text}");
        assert!(text.contains("Acknowledge v1.1.0"), "{text}");
    }
    for person in ENGINEERING {
        assert!(!new.iter().any(|s| s.is_dm_to(&email(person))), "{person}");
    }
    let post = render(&bot.port.channel_posts());
    assert!(post.contains("Procedure backup v1.0.0 → v1.1.0"), "{post}");

    // Sam clicks Acknowledge, twice; the message shows it; the record is made once.
    let button = bot
        .ack_buttons_for("sam@example.com")
        .into_iter()
        .last()
        .unwrap();
    let first = bot.click("sam@example.com", &button).await;
    assert!(
        first.contains("Acknowledged Procedure backup v1.1.0 at 2026-12-01 10:00 UTC"),
        "{first}"
    );
    let updated = bot.port.sent().last().cloned().unwrap();
    let updated_text = render(&[updated.message().clone()]);
    assert!(
        updated_text.contains("✅ Acknowledged v1.1.0 at 2026-12-01 10:00 UTC"),
        "{updated_text}"
    );
    assert!(!updated_text.contains("click ack/"), "{updated_text}");
    bot.clock.advance(Duration::minutes(5));
    let second = bot.say("sam@example.com", "ack backup").await;
    assert!(second.contains("already acknowledged"), "{second}");
    assert!(
        second.contains("10:00 UTC"),
        "the first time stands: {second}"
    );

    // The IT lead types it; Ana (engineering) reads it voluntarily.
    bot.say("it-lead@example.com", "acknowledge backup").await;
    let voluntary = bot.say("ana@example.com", "ack backup").await;
    assert!(voluntary.contains("not in the audience"), "{voluntary}");
    for person in IT_OPS {
        let pending = bot.say(person, "/procedure pending").await;
        assert!(pending.contains("all caught up"), "{person}: {pending}");
    }

    // The report: per version, who had to, who did, when and where.
    let report = render_csv(&bot.services.store.acknowledgement_report().await.unwrap());
    let row = |who: &str, version: &str| {
        report
            .lines()
            .find(|l| {
                l.starts_with("backup,") && l.contains(who) && l.contains(&format!(",{version},"))
            })
            .unwrap_or_else(|| panic!("no row for {who} {version} in\n{report}"))
            .to_string()
    };
    assert!(
        row("sam@example.com", "1.1.0")
            .contains(",true,acknowledged,2026-12-01T10:00:00+00:00,console,")
    );
    assert!(row("sam@example.com", "1.0.0").contains(",superseded,"));
    assert!(row("ana@example.com", "1.1.0").contains(",false,voluntary,"));
    let ledger = bot.services.store.verify_ledger().await.unwrap();
    assert!(ledger.problem.is_none());
    assert!(ledger.intact >= 8, "{ledger:?}");
    db.finish().await;
}

#[tokio::test]
async fn a_replayed_sync_and_redelivered_clicks_change_nothing() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    let previous = bot.services.syncer.served().unwrap();
    fixture.write("backup.md", &procedure("backup", "2.0.0", &STEPS));
    fixture.publish("Backup 2.0.0");
    let SyncOutcome::Changed(changes) = bot.sync().await else {
        panic!("the bump is a change");
    };
    let served = bot.services.syncer.served().unwrap();
    let queued = bot.services.store.outbox_counts().await.unwrap().pending;
    // A crash between recording and saving the announced state replays the same sync.
    let replay = bot
        .services
        .engine
        .announce(Some(&previous), &served, &changes)
        .await
        .unwrap();
    assert_eq!((replay.announcements, replay.queued), (0, 0));
    assert_eq!(
        bot.services.store.outbox_counts().await.unwrap().pending,
        queued
    );
    bot.deliver().await;
    let sam = "sam@example.com";
    let button = bot.ack_buttons_for(sam).into_iter().last().unwrap();
    assert!(button.starts_with("ack/backup/"));
    // Slack and Discord redeliver interactions they think were lost.
    for _ in 0..3 {
        bot.click(sam, &button).await;
    }
    let report = bot.services.store.acknowledgement_report().await.unwrap();
    let current = report
        .iter()
        .find(|v| v.version.as_deref() == Some("2.0.0"))
        .unwrap();
    assert_eq!(
        current
            .people
            .iter()
            .filter(|p| p.acknowledged_at.is_some())
            .count(),
        1
    );
    // An old button of a superseded version: kept, and the person is told about the new one.
    let old_button = bot
        .ack_buttons_for(sam)
        .into_iter()
        .find(|a| a != &button)
        .unwrap();
    let old = bot.click(sam, &old_button).await;
    assert!(old.contains("v2.0.0 has replaced this version"), "{old}");
    db.finish().await;
}

#[tokio::test]
async fn confidential_procedures_stay_out_of_channels_and_out_of_sight() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    bot.deliver().await;
    fixture.write(
        "payroll.md",
        &confidential("payroll", "1.1.0", "Export the hours twice."),
    );
    fixture.publish("Payroll 1.1.0");
    bot.sync().await;
    bot.deliver().await;
    let post = render(&bot.port.channel_posts());
    assert!(
        post.contains("1 confidential or restricted procedure changed"),
        "{post}"
    );
    assert!(
        !post.contains("payroll") && !post.contains("Run payroll") && !post.contains("twice"),
        "{post}"
    );
    for person in ENGINEERING {
        let dms = render(&bot.port.dms_to(&email(person)));
        assert!(dms.contains("Run payroll (v1.1.0)"), "{person}: {dms}");
    }
    for person in IT_OPS {
        assert!(!render(&bot.port.dms_to(&email(person))).contains("payroll"));
    }
    let sam = "sam@example.com";
    assert!(
        bot.say(sam, "show payroll")
            .await
            .contains("No procedure you can see")
    );
    assert!(
        !bot.say(sam, "/procedure payroll")
            .await
            .contains("Run payroll")
    );
    assert!(!bot.say(sam, "/procedure list").await.contains("payroll"));
    assert!(
        bot.say(sam, "ack payroll")
            .await
            .contains("No procedure you can see")
    );
    assert!(
        bot.say("ana@example.com", "show payroll")
            .await
            .contains("Export the hours twice.")
    );
    db.finish().await;
}

#[tokio::test]
async fn a_withdrawn_procedure_is_announced_and_its_evidence_kept() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    bot.deliver().await;
    bot.say("sam@example.com", "ack backup").await;
    fixture.remove("backup.md");
    fixture.publish("Retire the backup procedure");
    bot.sync().await;
    bot.deliver().await;
    let post = render(&bot.port.channel_posts());
    assert!(post.contains("withdrawn"), "{post}");
    assert!(
        bot.say("it-lead@example.com", "pending")
            .await
            .contains("all caught up")
    );
    let report = render_csv(&bot.services.store.acknowledgement_report().await.unwrap());
    assert!(
        report.contains("backup,Procedure backup,1.0.0,"),
        "{report}"
    );
    assert!(report.contains(",withdrawn,"), "{report}");
    db.finish().await;
}

#[tokio::test]
async fn a_person_new_to_the_directory_gets_one_welcome_dm() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    bot.deliver().await;
    let before = bot.port.sent().len();
    fixture.write(
        "directory.yaml",
        &DIRECTORY.replace(
            "[it-lead@example.com, sam@example.com]",
            "[it-lead@example.com, sam@example.com, kim@example.com]",
        ),
    );
    fixture.publish("Kim joins IT ops");
    bot.sync().await;
    bot.deliver().await;
    let new = &bot.port.sent()[before..];
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(new[0].is_dm_to(&email("kim@example.com")));
    assert!(render(&[new[0].message().clone()]).contains("Procedure backup (v1.0.0)"));
    assert!(
        bot.say("kim@example.com", "pending")
            .await
            .contains("Procedure backup v1.0.0")
    );
    db.finish().await;
}

/// A chat platform that accepts the request and never answers: a worker stuck in a send when
/// it is killed.
struct HangingPort {
    calls: AtomicUsize,
}

impl ChatPort for HangingPort {
    fn platform(&self) -> Platform {
        Platform::Console
    }

    fn send<'a>(
        &'a self,
        _destination: &'a Destination,
        _message: &'a Message,
    ) -> PortFuture<'a, Result<MessageRef, DeliveryError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }

    fn update<'a>(
        &'a self,
        _message_ref: &'a MessageRef,
        _message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>> {
        Box::pin(std::future::pending())
    }

    fn ephemeral<'a>(
        &'a self,
        _context: &'a str,
        _email: &'a Email,
        _message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_is_taken_over_without_duplicates() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    let queued = bot.services.store.outbox_counts().await.unwrap().pending;
    assert_eq!(queued, 4, "one welcome DM per person");

    let hanging = Arc::new(HangingPort {
        calls: AtomicUsize::new(0),
    });
    let mut doomed = OutboxWorker::new(bot.services.store.clone(), bot.clock.clone(), "doomed")
        .with_port(hanging.clone(), Pace::for_platform(Platform::Console));
    let stuck = tokio::spawn(async move { doomed.deliver_due().await });
    while hanging.calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    stuck.abort();
    assert!(stuck.await.unwrap_err().is_cancelled());

    // Its rows stay leased until the lease runs out; then a healthy worker delivers them all.
    let healthy_port = Arc::new(ConsolePort::new());
    let mut healthy = OutboxWorker::new(bot.services.store.clone(), bot.clock.clone(), "healthy")
        .with_port(healthy_port.clone(), Pace::for_platform(Platform::Console));
    assert_eq!(healthy.deliver_due().await.unwrap().claimed, 0);
    bot.clock.advance(Duration::minutes(2));
    let mut delivered = 0;
    loop {
        let round = healthy.deliver_due().await.unwrap();
        if round.claimed == 0 {
            break;
        }
        delivered += round.delivered;
    }
    assert_eq!(delivered, 4);
    let mut people: Vec<String> = healthy_port
        .sent()
        .iter()
        .filter_map(|s| match s {
            procbot::adapters::console::Sent::Posted {
                destination: Destination::Person { email },
                ..
            } => Some(email.to_string()),
            _ => None,
        })
        .collect();
    people.sort();
    assert_eq!(
        people,
        [
            "ana@example.com",
            "cto@example.com",
            "it-lead@example.com",
            "sam@example.com"
        ]
    );
    assert_eq!(bot.services.store.outbox_counts().await.unwrap().pending, 0);
    db.finish().await;
}

#[tokio::test]
async fn a_change_seen_again_under_another_commit_is_not_announced_twice() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    let previous = bot.services.syncer.served().unwrap();
    fixture.write("backup.md", &procedure("backup", "3.0.0", &STEPS));
    fixture.publish("Backup 3.0.0");
    let SyncOutcome::Changed(changes) = bot.sync().await else {
        panic!("the bump is a change");
    };
    bot.deliver().await;
    let sent = bot.port.sent().len();
    // A second instance (or this one after a crash) sees the same change from a later commit.
    let mut later = (*bot.services.syncer.served().unwrap()).clone();
    if let Some(commit) = later.commit.as_mut() {
        commit.id = "f".repeat(40);
    }
    let again = bot
        .services
        .engine
        .announce(Some(&previous), &later, &changes)
        .await
        .unwrap();
    assert_eq!((again.announcements, again.queued), (0, 0));
    bot.deliver().await;
    assert_eq!(bot.port.sent().len(), sent);
    db.finish().await;
}

#[tokio::test]
async fn people_who_leave_an_audience_are_no_longer_chased_and_others_dms_stay_theirs() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    bot.deliver().await;
    // Someone else clicking Sam's button changes neither Sam's message nor Sam's record.
    let sam_button = bot.ack_buttons_for("sam@example.com").remove(0);
    let sam_message = bot
        .port
        .find_action(Some(&email("sam@example.com")), &sam_button)
        .unwrap();
    let replies = bot
        .services
        .engine
        .handle(
            &TestBot::actor("cto@example.com"),
            procbot::core::request::Request::from_action(&sam_button),
            &procbot::engine::Origin {
                message_ref: Some(sam_message),
            },
        )
        .await;
    assert!(
        replies
            .iter()
            .all(|r| matches!(r, procbot::engine::Reply::Private(_))),
        "{replies:?}"
    );
    assert!(
        bot.say("sam@example.com", "pending")
            .await
            .contains("Procedure backup")
    );

    fixture.write(
        "directory.yaml",
        &DIRECTORY.replace(
            "it-ops: [it-lead@example.com, sam@example.com]",
            "it-ops: [it-lead@example.com]",
        ),
    );
    fixture.publish("Sam moves to another team");
    bot.sync().await;
    assert!(
        bot.say("sam@example.com", "pending")
            .await
            .contains("all caught up")
    );
    bot.clock.advance(Duration::days(14));
    let planned = bot.services.scheduler.plan(bot.clock.now()).await.unwrap();
    assert!(
        !planned
            .iter()
            .any(|r| r.to == procbot::core::reminders::Recipient::Person(email("sam@example.com"))),
        "{planned:?}"
    );
    db.finish().await;
}

#[tokio::test]
async fn a_withdrawn_confidential_procedure_stays_hidden_from_outsiders() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    bot.deliver().await;
    let button = bot
        .ack_buttons_for("ana@example.com")
        .into_iter()
        .find(|a| a.starts_with("ack/payroll/"))
        .unwrap();
    fixture.remove("payroll.md");
    fixture.publish("Retire payroll");
    bot.sync().await;
    // Sam never saw it; a forged click with its id and hash tells Sam nothing.
    let replies = bot
        .services
        .engine
        .handle(
            &TestBot::actor("sam@example.com"),
            procbot::core::request::Request::from_action(&button),
            &procbot::engine::Origin::default(),
        )
        .await;
    let text = format!("{replies:?}");
    assert!(text.contains("No procedure you can see"), "{text}");
    assert!(!text.contains("Run payroll"), "{text}");
    // Ana, who was asked, can still acknowledge what she read.
    assert!(
        bot.click("ana@example.com", &button)
            .await
            .contains("Acknowledged Run payroll")
    );
    db.finish().await;
}
