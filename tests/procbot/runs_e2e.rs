//! Procedure runs end to end through the console adapter: a scheduled run started at the
//! right moment in the configured time zone, worked through step by step with buttons and
//! typed notes, a deviation told to the owner, a run left unfinished and escalated, and the
//! runs in the evidence pack and `procbot runs` with the version they followed.

use chrono::{TimeZone, Utc};
use procbot::config::EmailAddress;
use procbot::core::message::Message;
use procbot::evidence::EvidencePack;

use crate::bot::{TestBot, email};
use crate::db::TestDb;
use crate::git_fixture::GitFixture;
use crate::helpers::{DIRECTORY, procbot_command, procedure_text, stdout_of};

fn restore_test(version: &str) -> String {
    let fields: Vec<(String, String)> = [
        ("id", "restore-test"),
        ("title", "Test a restore"),
        ("owner", "it-lead@example.com"),
        ("audience", "[it-ops]"),
        ("version", version),
        ("last_reviewed", "2026-06-01"),
        ("schedule", "\"0 9 * * MON\""),
        ("run_by", "[sam@example.com]"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    procedure_text(
        &fields,
        "# Test a restore\n\n## Purpose\nProve backups restore.\n\n## Steps\n1. Pick last night's backup.\n2. Restore it to the scratch server.\n3. Compare the checksums.\n",
    )
}

fn repository() -> GitFixture {
    let fixture = GitFixture::at_root();
    fixture.write("directory.yaml", DIRECTORY);
    fixture.write("restore-test.md", &restore_test("1.0.0"));
    fixture.publish("Initial procedures");
    fixture
}

/// A bot whose procedures' schedules are in New York time, with a security lead.
async fn bot(fixture: &GitFixture, db: &TestDb) -> TestBot {
    let mut bot = TestBot::spawn_with(fixture, db, |config| {
        config.schedule.timezone = procbot::config::TimeZone(chrono_tz::America::New_York);
        config.schedule.security_lead = Some(EmailAddress(email("cto@example.com")));
    })
    .await;
    bot.sync().await;
    bot.deliver().await;
    bot
}

fn checklists_to(bot: &TestBot, who: &str) -> Vec<Message> {
    bot.port
        .dms_to(&email(who))
        .into_iter()
        .filter(|m| m.summary_line().starts_with("Run #"))
        .collect()
}

fn run_id_of(message: &Message) -> i64 {
    let line = message.summary_line();
    line.trim_start_matches("Run #")
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_scheduled_run_starts_on_time_is_worked_through_and_a_deviation_reaches_the_owner() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = bot(&fixture, &db).await;
    // Monday 7 December, 09:00 in New York is 14:00 UTC. A minute before: nothing.
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 7, 13, 59, 0).unwrap());
    bot.tick().await;
    assert!(
        checklists_to(&bot, "sam@example.com").is_empty(),
        "the first Monday before procbot knew the procedure is not backfilled, and this one is not due yet"
    );
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 7, 14, 0, 0).unwrap());
    bot.tick().await;
    bot.tick().await;
    let checklists = checklists_to(&bot, "sam@example.com");
    assert_eq!(checklists.len(), 1, "run_by gets the checklist, once");
    assert!(checklists_to(&bot, "it-lead@example.com").is_empty());
    let run = run_id_of(&checklists[0]);
    let rendered = crate::bot::render(&checklists);
    assert!(
        rendered.contains("Scheduled for 2026-12-07 14:00 UTC"),
        "{rendered}"
    );
    assert!(
        rendered.contains("⬜ 1. Pick last night's backup."),
        "{rendered}"
    );

    // Step 1 done with a button; step 2 not applicable; Finish is refused without a reason.
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 7, 14, 10, 0).unwrap());
    bot.click("sam@example.com", &format!("run/{run}/1/ok"))
        .await;
    let answer = bot
        .click("sam@example.com", &format!("run/{run}/2/na"))
        .await;
    assert!(
        answer.contains(&format!("note {run} 2 <reason>")),
        "{answer}"
    );
    let refused = bot.say("sam@example.com", &format!("finish {run}")).await;
    assert!(refused.contains("step 3 has no outcome"), "{refused}");
    bot.say(
        "sam@example.com",
        &format!("note {run} 2 Scratch server is being rebuilt; used the DR host"),
    )
    .await;
    // Someone else cannot record steps of Sam's run.
    let outsider = bot
        .say("ana@example.com", &format!("step {run} 3 done"))
        .await;
    assert!(
        outsider.contains("is assigned to sam@example.com"),
        "{outsider}"
    );
    // Step 3 typed as a problem with its evidence, then Finish by button.
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 7, 14, 40, 0).unwrap());
    bot.say(
        "sam@example.com",
        &format!(
            "step {run} 3 problem Checksums differ, ticket https://tickets.example.com/OPS-88"
        ),
    )
    .await;
    let finished = bot
        .click("sam@example.com", &format!("run/{run}/fin"))
        .await;
    assert!(finished.contains("1 deviation"), "{finished}");
    bot.deliver().await;
    // The clicked checklist now shows the outcome and no buttons.
    let updated = bot
        .port
        .sent()
        .into_iter()
        .rev()
        .find_map(|s| match s {
            procbot::adapters::console::Sent::Updated { message, .. } => Some(message),
            _ => None,
        })
        .unwrap();
    let text = procbot::adapters::console::render_plain(&updated);
    assert!(
        text.contains("Finished 2026-12-07 14:40 UTC by Sam Ops after 40 minutes"),
        "{text}"
    );
    assert!(text.contains("⚠️ 3. Compare the checksums."), "{text}");
    assert_eq!(updated.action_ids().count(), 0);
    // The owner and the security lead are told of the deviation.
    for told in ["it-lead@example.com", "cto@example.com"] {
        let dms = crate::bot::render(&bot.port.dms_to(&email(told)));
        assert!(
            dms.contains(&format!("Deviation in run #{run} of Test a restore v1.0.0")),
            "{told}: {dms}"
        );
        assert!(dms.contains("OPS-88"), "{dms}");
    }

    // Evidence: the run, the version and content it followed, every step.
    let store = db.store().await;
    let pack = EvidencePack::gather(&store, bot.clock_now()).await.unwrap();
    let recorded = pack.runs.iter().find(|r| r.id == run).unwrap();
    assert_eq!(recorded.version.as_deref(), Some("1.0.0"));
    assert_eq!(recorded.status, "deviated");
    assert_eq!(recorded.trigger, "schedule");
    assert_eq!(recorded.duration_seconds, Some(40 * 60));
    let outcomes: Vec<Option<&str>> = recorded.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [Some("done"), Some("not-applicable"), Some("problem")]
    );
    assert!(
        recorded.steps[1]
            .note
            .as_deref()
            .unwrap()
            .contains("DR host")
    );
    let version_hash = pack
        .versions
        .iter()
        .find(|v| v.version.procedure_id == "restore-test")
        .unwrap()
        .version
        .content_hash
        .clone();
    assert_eq!(recorded.content_hash, version_hash);
    assert!(procbot::evidence::render_html(&pack, false).contains("Procedure runs"));
    assert!(store.verify_ledger().await.unwrap().problem.is_none());
    store.close().await;

    // `procbot runs` shows it, as JSON and for people.
    let output = procbot_command(&["runs", "--procedure", "restore-test", "--json"])
        .env("PROCBOT_DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(json["runs"][0]["id"], run);
    assert_eq!(json["runs"][0]["steps"][2]["outcome"], "problem");
    let human = procbot_command(&["runs"])
        .env("PROCBOT_DATABASE__URL", &db.url)
        .output()
        .unwrap();
    let human = stdout_of(&human);
    assert!(
        human.contains(&format!("#{run} Test a restore (restore-test) v1.0.0")),
        "{human}"
    );
    assert!(human.contains("deviated"), "{human}");

    // `procbot history --runs-from` lists the runs beside the version they followed.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), format!("[database]\nurl = \"{}\"\n", db.url)).unwrap();
    let history = procbot_command(&[
        "history",
        "restore-test",
        "--procedures",
        fixture.work().to_str().unwrap(),
        "--runs-from",
        config.path().to_str().unwrap(),
        "--json",
    ])
    .output()
    .unwrap();
    assert!(
        history.status.success(),
        "{}",
        String::from_utf8_lossy(&history.stderr)
    );
    let history: serde_json::Value = serde_json::from_str(&stdout_of(&history)).unwrap();
    assert_eq!(history["versions"][0]["version"], "1.0.0");
    assert_eq!(history["versions"][0]["runs"][0]["id"], run);
    assert_eq!(history["versions"][0]["runs"][0]["status"], "deviated");
}

#[tokio::test]
async fn an_unfinished_run_is_reminded_then_escalated_like_a_review() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let mut bot = bot(&fixture, &db).await;
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 7, 14, 0, 0).unwrap());
    bot.tick().await;
    let run = run_id_of(&checklists_to(&bot, "sam@example.com")[0]);
    bot.click("sam@example.com", &format!("run/{run}/1/ok"))
        .await;
    // Reminders about this run (the next Monday's run falls due on its own a week later).
    let reminders_to = |bot: &TestBot, who: &str| {
        bot.port
            .dms_to(&email(who))
            .into_iter()
            .filter(|m| {
                m.summary_line() == "A procedure run is overdue"
                    && procbot::adapters::console::render_plain(m)
                        .contains(&format!("Run #{run} of"))
            })
            .count()
    };
    // Due a week later, at the next occurrence: Sam is reminded, in New York working hours.
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 14, 13, 0, 0).unwrap());
    bot.tick().await;
    assert_eq!(reminders_to(&bot, "sam@example.com"), 0, "not due yet");
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 14, 15, 0, 0).unwrap());
    bot.tick().await;
    bot.tick().await;
    assert_eq!(reminders_to(&bot, "sam@example.com"), 1, "once");
    let reminder = crate::bot::render(&bot.port.dms_to(&email("sam@example.com")));
    assert!(reminder.contains("Open steps: 2, 3"), "{reminder}");
    assert!(
        reminder.contains(&format!("click run/{run}/show")),
        "{reminder}"
    );
    assert_eq!(reminders_to(&bot, "it-lead@example.com"), 0);
    // Two days overdue: the owner hears of it (in Berlin working hours).
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 16, 15, 0, 0).unwrap());
    bot.tick().await;
    assert_eq!(reminders_to(&bot, "it-lead@example.com"), 1);
    assert_eq!(reminders_to(&bot, "cto@example.com"), 0);
    // A week overdue: Sam again (weekly), and the security lead.
    bot.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 21, 15, 0, 0).unwrap());
    bot.tick().await;
    assert_eq!(reminders_to(&bot, "sam@example.com"), 2);
    assert_eq!(reminders_to(&bot, "cto@example.com"), 1);
    // The next occurrence started its own run meanwhile; the overdue one stays open.
    let store = db.store().await;
    let runs = store.runs(Some("restore-test")).await.unwrap();
    assert!(runs.len() >= 2, "{runs:?}");
    assert!(runs.iter().any(|r| r.id == run && r.finished.is_none()));
    store.close().await;
    // The overdue reminder's button shows the checklist.
    let shown = bot
        .click("sam@example.com", &format!("run/{run}/show"))
        .await;
    assert!(shown.contains("✅ 1. Pick last night's backup."), "{shown}");
}

#[tokio::test]
async fn a_run_started_by_hand_goes_to_whoever_asked() {
    let fixture = repository();
    let db = TestDb::sqlite();
    let bot = bot(&fixture, &db).await;
    let answer = bot
        .say("it-lead@example.com", "/procedure run restore-test")
        .await;
    assert!(answer.contains("started"), "{answer}");
    let mut bot = bot;
    bot.deliver().await;
    let checklists = checklists_to(&bot, "it-lead@example.com");
    assert_eq!(checklists.len(), 1);
    let run = run_id_of(&checklists[0]);
    let mine = bot.say("it-lead@example.com", "runs").await;
    assert!(
        mine.contains(&format!("Run #{run}: Test a restore (0 of 3 steps done)")),
        "{mine}"
    );
    // "run" followed by words that are no procedure id is a question.
    let question = bot
        .say("it-lead@example.com", "/procedure run the restore test")
        .await;
    assert!(question.contains("Test a restore"), "{question}");
    // A step that does not exist, a run that does not exist: said plainly.
    let missing = bot
        .say("it-lead@example.com", &format!("step {run} 9 done"))
        .await;
    assert!(missing.contains("there is no step 9"), "{missing}");
    let nothing = bot.say("it-lead@example.com", "finish 999").await;
    assert!(nothing.contains("There is no run #999"), "{nothing}");
}
