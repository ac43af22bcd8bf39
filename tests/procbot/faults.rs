//! Faults procbot recovers from without a restart: the database going away for a while
//! (requests get an apology, syncs and deliveries wait, nothing recorded is lost), and then
//! everything carrying on where it stopped. Platform faults (429, 5xx, slow answers, dropped
//! connections) are in the Slack and Discord tests; an unreachable git remote in `sync.rs`.

use procbot::repo::sync::SyncOutcome;

use crate::bot::{TestBot, email};
use crate::db::TestDb;
use crate::git_fixture::{GitFixture, procedure};
use crate::helpers::DIRECTORY;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_loses_nothing_and_procbot_carries_on() {
    let fixture = GitFixture::at_root();
    fixture.write("directory.yaml", DIRECTORY);
    fixture.write(
        "backup.md",
        &procedure("backup", "1.0.0", &["Start.", "Check."]),
    );
    fixture.publish("Initial procedures");
    let db = TestDb::postgres().await;
    let mut bot = TestBot::spawn(&fixture, &db).await;
    bot.sync().await;
    bot.deliver().await;
    assert!(
        bot.say("sam@example.com", "ack backup")
            .await
            .contains("Acknowledged")
    );

    db.set_available(false).await;
    // A person asking gets a short apology with a reference, not an error page or a panic.
    let answer = bot.say("it-lead@example.com", "ack backup").await;
    assert!(answer.contains("Sorry") && answer.contains("E"), "{answer}");
    // A new version meanwhile: the sync cannot record it and keeps serving what it had.
    fixture.write(
        "backup.md",
        &procedure("backup", "1.1.0", &["Start.", "Check twice."]),
    );
    fixture.publish("Check twice");
    assert!(matches!(bot.sync().await, SyncOutcome::Failed { .. }));
    assert!(bot.services.outbox.deliver_due().await.is_err());
    assert!(bot.services.scheduler.tick().await.is_err());

    db.set_available(true).await;
    // Back: the same sync now records the change, deliveries resume, clicks are recorded.
    assert!(
        matches!(bot.sync().await, SyncOutcome::Changed(_)),
        "the change is announced once the database is back"
    );
    bot.deliver().await;
    let dms = crate::bot::render(&bot.port.dms_to(&email("sam@example.com")));
    assert!(dms.contains("v1.1.0"), "{dms}");
    assert!(
        bot.say("it-lead@example.com", "ack backup")
            .await
            .contains("Acknowledged")
    );
    // Nothing recorded before the outage was lost, and the ledger is whole.
    let store = db.store().await;
    let report = store.acknowledgement_report().await.unwrap();
    let sam_v1 = report
        .iter()
        .filter(|v| v.procedure_id == "backup" && v.version.as_deref() == Some("1.0.0"))
        .flat_map(|v| v.people.iter())
        .find(|p| p.email == "sam@example.com")
        .unwrap();
    assert!(sam_v1.acknowledged_at.is_some());
    assert!(store.verify_ledger().await.unwrap().problem.is_none());
    store.close().await;
    bot.services.store.close().await;
    db.finish().await;
}
