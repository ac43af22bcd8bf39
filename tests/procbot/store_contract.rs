//! The store's contract, run against SQLite and PostgreSQL alike: announcements recorded once,
//! acknowledgements idempotent and tied to versions, the outbox's leases, retries and
//! exactly-once delivery with two workers, and a ledger that detects tampering.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use procbot::adapters::console::{ConsolePort, Sent};
use procbot::clock::{Clock, ManualClock};
use procbot::core::announce::PlannedAnnouncement;
use procbot::core::message::Message;
use procbot::core::port::{Destination, MessageRef, Platform};
use procbot::core::procedure::Email;
use procbot::delivery::{OutboxWorker, Pace};
use procbot::store::Store;
use procbot::store::evidence::{AckOutcome, NewAcknowledgement, StoredVersion, VersionStatus};
use procbot::store::outbox::NewOutboxMessage;

use crate::db::{TestDb, on_both_backends};

on_both_backends!(
    migrations_are_applied_once_and_reopening_is_harmless,
    an_announcement_replayed_is_recorded_once,
    acknowledgements_are_idempotent_and_tied_to_versions,
    a_withdrawn_procedure_leaves_pending_lists_but_keeps_its_evidence,
    identities_link_and_relink,
    the_outbox_leases_rows_and_redelivers_after_a_crash,
    failing_deliveries_retry_then_fail_visibly,
    two_workers_deliver_each_message_exactly_once,
    the_ledger_names_the_first_altered_or_deleted_entry,
    concurrent_appends_keep_the_chain_whole,
    a_run_starts_once_records_its_steps_and_finishes_once,
    the_announce_lock_has_one_holder_at_a_time_and_expires,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn version(id: &str, hash: &str, v: &str) -> StoredVersion {
    StoredVersion {
        procedure_id: id.into(),
        content_hash: hash.into(),
        version: Some(v.into()),
        title: format!("Procedure {id}"),
        owner: Some("it-lead@example.com".into()),
        classification: "internal".into(),
        path: format!("{id}.md"),
        commit_id: None,
        commit_author: None,
        committed_at: None,
    }
}

fn announcement(
    id: &str,
    kind: &str,
    hash: &str,
    v: &str,
    audience: &[&str],
) -> PlannedAnnouncement {
    PlannedAnnouncement {
        key: format!("{id}/{kind}/{hash}"),
        id: procbot::core::procedure::ProcedureId::parse(id).unwrap(),
        kind: kind.into(),
        from_version: None,
        to_version: (!v.is_empty()).then(|| v.to_string()),
        content_hash: hash.into(),
        title: format!("Procedure {id}"),
        summary: format!("{kind} {v}"),
        commit_id: None,
        requires_ack: matches!(kind, "added" | "material" | "baseline"),
        must_acknowledge: audience.iter().map(|s| Email::parse(s).unwrap()).collect(),
    }
}

fn dm(key: &str, to: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        idempotency_key: key.into(),
        platform: Platform::Console,
        destination: Destination::Person {
            email: Email::parse(to).unwrap(),
        },
        message: Message::new().text(key),
    }
}

fn ack(email: &str, id: &str, hash: &str, v: &str, voluntary: bool) -> NewAcknowledgement {
    NewAcknowledgement {
        email: email.into(),
        procedure_id: id.into(),
        version: v.into(),
        content_hash: hash.into(),
        platform: Platform::Console,
        workspace: "local".into(),
        user_id: email.into(),
        message_ref: Some("console-1".into()),
        voluntary,
    }
}

async fn pending_ids(store: &Store, email: &str) -> Vec<(String, Option<String>)> {
    store
        .pending_for(email)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.procedure_id, p.version))
        .collect()
}

async fn migrations_are_applied_once_and_reopening_is_harmless(db: &TestDb) {
    let first = db.store().await;
    first
        .record_announcements(
            t0(),
            &[version("backup", "aa11", "1.0.0")],
            &[announcement(
                "backup",
                "added",
                "aa11",
                "1.0.0",
                &["ana@example.com"],
            )],
            &[],
        )
        .await
        .unwrap();
    let second = db.store().await;
    assert_eq!(pending_ids(&second, "ana@example.com").await.len(), 1);
    first.close().await;
    second.close().await;
}

async fn an_announcement_replayed_is_recorded_once(db: &TestDb) {
    let store = db.store().await;
    let versions = [version("backup", "aa11", "1.0.0")];
    let announcements = [announcement(
        "backup",
        "added",
        "aa11",
        "1.0.0",
        &["ana@example.com", "bo@example.com"],
    )];
    let messages = [
        dm("dm/ana/1", "ana@example.com"),
        dm("dm/bo/1", "bo@example.com"),
    ];
    let first = store
        .record_announcements(t0(), &versions, &announcements, &messages)
        .await
        .unwrap();
    assert_eq!((first.announcements, first.queued), (1, 2));
    let replay = store
        .record_announcements(
            t0() + Duration::minutes(5),
            &versions,
            &announcements,
            &messages,
        )
        .await
        .unwrap();
    assert_eq!((replay.announcements, replay.queued), (0, 0));
    assert_eq!(store.outbox_counts().await.unwrap().pending, 2);
    let verification = store.verify_ledger().await.unwrap();
    assert_eq!(verification.intact, 1);
    assert!(verification.problem.is_none());
    store.close().await;
}

async fn acknowledgements_are_idempotent_and_tied_to_versions(db: &TestDb) {
    let store = db.store().await;
    let audience = ["ana@example.com", "bo@example.com"];
    store
        .record_announcements(
            t0(),
            &[version("backup", "aa11", "1.0.0")],
            &[announcement("backup", "added", "aa11", "1.0.0", &audience)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        pending_ids(&store, "ana@example.com").await,
        [("backup".to_string(), Some("1.0.0".to_string()))]
    );

    let first = store
        .acknowledge(
            t0() + Duration::hours(1),
            &ack("ana@example.com", "backup", "aa11", "1.0.0", false),
        )
        .await
        .unwrap();
    assert_eq!(
        first,
        AckOutcome::Recorded {
            at: t0() + Duration::hours(1)
        }
    );
    // A double click, a retried delivery: the first record stands.
    let again = store
        .acknowledge(
            t0() + Duration::hours(2),
            &ack("ana@example.com", "backup", "aa11", "1.0.0", false),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        AckOutcome::AlreadyRecorded {
            at: t0() + Duration::hours(1)
        }
    );
    assert!(pending_ids(&store, "ana@example.com").await.is_empty());
    let progress = store
        .requirement_progress(Some("backup"))
        .await
        .unwrap()
        .remove("backup")
        .unwrap();
    assert_eq!((progress.required, progress.acknowledged), (2, 1));
    let current = store.current_requirement("backup").await.unwrap().unwrap();
    assert_eq!(current.content_hash, progress.content_hash);
    assert_eq!(current.version, progress.version);

    // Version 1.1.0 is material: everyone must acknowledge again.
    store
        .record_announcements(
            t0() + Duration::days(1),
            &[version("backup", "bb22", "1.1.0")],
            &[announcement(
                "backup", "material", "bb22", "1.1.0", &audience,
            )],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        pending_ids(&store, "ana@example.com").await,
        [("backup".to_string(), Some("1.1.0".to_string()))]
    );
    // Bo acknowledges the superseded 1.0.0 late: kept, but it does not count for 1.1.0.
    store
        .acknowledge(
            t0() + Duration::days(2),
            &ack("bo@example.com", "backup", "aa11", "1.0.0", false),
        )
        .await
        .unwrap();
    assert_eq!(pending_ids(&store, "bo@example.com").await.len(), 1);
    assert!(
        store
            .is_required("bo@example.com", "backup", "aa11")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .version_by_prefix("backup", "BB")
            .await
            .unwrap()
            .map(|v| v.version),
        Some(Some("1.1.0".to_string()))
    );
    assert_eq!(store.version_by_prefix("backup", "x%").await.unwrap(), None);

    // Someone outside the audience reads it: a voluntary read, reported apart.
    store
        .acknowledge(
            t0() + Duration::days(2),
            &ack("cy@example.com", "backup", "bb22", "1.1.0", true),
        )
        .await
        .unwrap();
    let report = store.acknowledgement_report().await.unwrap();
    assert_eq!(report.len(), 2);
    assert_eq!(report[0].status, VersionStatus::Superseded);
    assert_eq!(report[1].status, VersionStatus::Current);
    let current = &report[1];
    let people: BTreeMap<&str, (bool, bool)> = current
        .people
        .iter()
        .map(|p| (p.email.as_str(), (p.required, p.acknowledged_at.is_some())))
        .collect();
    assert_eq!(
        people,
        BTreeMap::from([
            ("ana@example.com", (true, false)),
            ("bo@example.com", (true, false)),
            ("cy@example.com", (false, true)),
        ])
    );
    assert_eq!(
        report[0]
            .people
            .iter()
            .filter(|p| p.acknowledged_at.is_some())
            .count(),
        2
    );
    store.close().await;
}

async fn a_withdrawn_procedure_leaves_pending_lists_but_keeps_its_evidence(db: &TestDb) {
    let store = db.store().await;
    store
        .record_announcements(
            t0(),
            &[version("old", "cc33", "1.0.0")],
            &[announcement(
                "old",
                "added",
                "cc33",
                "1.0.0",
                &["ana@example.com", "bo@example.com"],
            )],
            &[],
        )
        .await
        .unwrap();
    store
        .acknowledge(t0(), &ack("ana@example.com", "old", "cc33", "1.0.0", false))
        .await
        .unwrap();
    store
        .record_announcements(
            t0() + Duration::days(1),
            &[],
            &[announcement("old", "removed", "", "", &[])],
            &[],
        )
        .await
        .unwrap();
    assert!(pending_ids(&store, "bo@example.com").await.is_empty());
    assert!(store.current_requirement("old").await.unwrap().is_none());
    assert!(store.current_requirements().await.unwrap().is_empty());
    let report = store.acknowledgement_report().await.unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].status, VersionStatus::Withdrawn);
    assert_eq!(report[0].people.len(), 2);
    store.close().await;
}

async fn identities_link_and_relink(db: &TestDb) {
    let store = db.store().await;
    assert_eq!(
        store
            .identity_email(Platform::Slack, "T1", "U1")
            .await
            .unwrap(),
        None
    );
    store
        .link_identity(t0(), Platform::Slack, "T1", "U1", "ana@example.com", None)
        .await
        .unwrap();
    store
        .link_identity(
            t0(),
            Platform::Slack,
            "T1",
            "U1",
            "ana.costa@example.com",
            Some("Europe/Lisbon"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .identity_email(Platform::Slack, "T1", "U1")
            .await
            .unwrap(),
        Some("ana.costa@example.com".to_string())
    );
    assert_eq!(
        store
            .identity_email(Platform::Slack, "T2", "U1")
            .await
            .unwrap(),
        None
    );
    // The account is found from the email, and its profile's zone kept across a relink
    // that tells none.
    assert_eq!(
        store
            .identity_user_id(Platform::Slack, "ana.costa@example.com")
            .await
            .unwrap(),
        Some("U1".to_string())
    );
    store
        .link_identity(
            t0(),
            Platform::Slack,
            "T1",
            "U1",
            "ana.costa@example.com",
            None,
        )
        .await
        .unwrap();
    let zones = store.profile_time_zones().await.unwrap();
    assert_eq!(
        zones.get(&Email::parse("ana.costa@example.com").unwrap()),
        Some(&chrono_tz::Europe::Lisbon)
    );
    assert_eq!(
        store
            .identity_user_id(Platform::Discord, "ana.costa@example.com")
            .await
            .unwrap(),
        None
    );
    store.close().await;
}

async fn the_outbox_leases_rows_and_redelivers_after_a_crash(db: &TestDb) {
    let store = db.store().await;
    store
        .enqueue(
            t0(),
            &[
                dm("k1", "ana@example.com"),
                dm("k2", "ana@example.com"),
                dm("k3", "bo@example.com"),
            ],
        )
        .await
        .unwrap();
    // The same key again is a no-op.
    assert_eq!(
        store
            .enqueue(t0(), &[dm("k1", "ana@example.com")])
            .await
            .unwrap(),
        0
    );
    let lease = t0() + Duration::seconds(60);
    let claimed = store
        .claim_outbox(Platform::Console, "worker-a", t0(), lease, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|r| r.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2", "k3"]
    );
    assert!(claimed.iter().all(|r| r.attempts == 1));
    // While leased, nobody else gets them.
    assert!(
        store
            .claim_outbox(Platform::Console, "worker-b", t0(), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .mark_delivered(claimed[0].id, "worker-a", t0(), &MessageRef("m1".into()))
            .await
            .unwrap()
    );
    // worker-a dies here. After its lease runs out, worker-b takes the rest over.
    let later = t0() + Duration::seconds(61);
    let taken = store
        .claim_outbox(
            Platform::Console,
            "worker-b",
            later,
            later + Duration::seconds(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        taken
            .iter()
            .map(|r| r.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["k2", "k3"]
    );
    assert!(taken.iter().all(|r| r.attempts == 2));
    // A late answer from the dead worker cannot mark what it no longer holds.
    assert!(
        !store
            .mark_delivered(taken[0].id, "worker-a", later, &MessageRef("late".into()))
            .await
            .unwrap()
    );
    for row in &taken {
        assert!(
            store
                .mark_delivered(
                    row.id,
                    "worker-b",
                    later,
                    &MessageRef(format!("m{}", row.id))
                )
                .await
                .unwrap()
        );
    }
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.failed), (0, 3, 0));
    let (_, _, message) = store
        .delivered_message(Platform::Console, &MessageRef("m1".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message, Message::new().text("k1"));
    store.close().await;
}

async fn failing_deliveries_retry_then_fail_visibly(db: &TestDb) {
    let store = db.store().await;
    let clock = Arc::new(ManualClock::new(t0()));
    store
        .enqueue(t0(), &[dm("retry-me", "ana@example.com")])
        .await
        .unwrap();
    let port = Arc::new(ConsolePort::new());
    port.fail_with(Some(procbot::core::port::DeliveryError::Transient(
        "connection refused".into(),
    )));
    let mut worker = OutboxWorker::new(store.clone(), clock.clone(), "w")
        .with_port(port.clone(), Pace::for_platform(Platform::Console));
    let round = worker.deliver_due().await.unwrap();
    assert_eq!((round.claimed, round.retried), (1, 1));
    // Not due again until the backoff has passed.
    assert_eq!(worker.deliver_due().await.unwrap().claimed, 0);
    clock.advance(Duration::seconds(6));
    assert_eq!(worker.deliver_due().await.unwrap().retried, 1);
    // A rate limit does not count as an attempt.
    port.fail_with(Some(procbot::core::port::DeliveryError::RateLimited {
        retry_after: std::time::Duration::from_millis(100),
    }));
    clock.advance(Duration::seconds(11));
    assert_eq!(worker.deliver_due().await.unwrap().retried, 1);
    // A permanent failure stops retries and is kept, with its reason, for people to see.
    port.fail_with(Some(procbot::core::port::DeliveryError::Permanent(
        "user_not_found".into(),
    )));
    clock.advance(Duration::seconds(1));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let round = worker.deliver_due().await.unwrap();
    assert_eq!(round.failed, 1);
    let failed = store.failed_deliveries().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 3);
    assert!(
        failed[0].error.contains("user_not_found"),
        "{:?}",
        failed[0]
    );
    assert_eq!(store.outbox_counts().await.unwrap().failed, 1);
    assert!(port.sent().is_empty());
    store.close().await;
}

async fn two_workers_deliver_each_message_exactly_once(db: &TestDb) {
    let store_a = db.store().await;
    let store_b = db.store().await;
    let messages: Vec<NewOutboxMessage> = (0..200)
        .map(|n| dm(&format!("bulk-{n:03}"), "ana@example.com"))
        .collect();
    store_a.enqueue(t0(), &messages).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(t0()));
    let port_a = Arc::new(ConsolePort::new());
    let port_b = Arc::new(ConsolePort::new());
    let run = |store: Store, port: Arc<ConsolePort>, name: &'static str| {
        let clock = clock.clone();
        tokio::spawn(async move {
            let mut worker = OutboxWorker::new(store, clock, name)
                .with_port(port, Pace::for_platform(Platform::Console));
            loop {
                let round = worker.deliver_due().await.unwrap();
                if round.claimed == 0 {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let a = run(store_a.clone(), port_a.clone(), "instance-a");
    let b = run(store_b.clone(), port_b.clone(), "instance-b");
    a.await.unwrap();
    b.await.unwrap();
    let texts = |port: &ConsolePort| -> Vec<String> {
        port.sent()
            .iter()
            .map(|sent| match sent {
                Sent::Posted { message, .. } => message.summary_line(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    let mut all = texts(&port_a);
    all.extend(texts(&port_b));
    let sent = all.len();
    all.sort();
    all.dedup();
    assert_eq!(sent, 200, "every message delivered once, none twice");
    assert_eq!(all.len(), 200);
    assert_eq!(store_a.outbox_counts().await.unwrap().delivered, 200);
    store_a.close().await;
    store_b.close().await;
}

async fn the_ledger_names_the_first_altered_or_deleted_entry(db: &TestDb) {
    let store = db.store().await;
    store
        .record_announcements(
            t0(),
            &[version("backup", "aa11", "1.0.0")],
            &[announcement(
                "backup",
                "added",
                "aa11",
                "1.0.0",
                &["ana@example.com", "bo@example.com"],
            )],
            &[],
        )
        .await
        .unwrap();
    for (n, email) in [
        "ana@example.com",
        "bo@example.com",
        "cy@example.com",
        "di@example.com",
    ]
    .iter()
    .enumerate()
    {
        store
            .acknowledge(
                t0() + Duration::minutes(n as i64),
                &ack(email, "backup", "aa11", "1.0.0", n > 1),
            )
            .await
            .unwrap();
    }
    let intact = store.verify_ledger().await.unwrap();
    assert_eq!((intact.intact, intact.problem), (5, None));
    let entries = store.ledger_entries(1, 10).await.unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[1].prev_hash, entries[0].hash);

    // Someone edits who acknowledged.
    let original: String = entries[2].payload.clone();
    sqlx::query("UPDATE ledger SET payload = $1 WHERE seq = 3")
        .bind(original.replace("bo@example.com", "mallory@example.com"))
        .execute(store.pool())
        .await
        .unwrap();
    let altered = store.verify_ledger().await.unwrap();
    let problem = altered.problem.expect("the alteration is found");
    assert_eq!((problem.seq, altered.intact), (3, 2));
    assert!(problem.reason.contains("altered"), "{}", problem.reason);
    sqlx::query("UPDATE ledger SET payload = $1 WHERE seq = 3")
        .bind(&original)
        .execute(store.pool())
        .await
        .unwrap();
    assert!(store.verify_ledger().await.unwrap().problem.is_none());

    // Someone deletes an entry in the middle, then the last one.
    sqlx::query("DELETE FROM ledger WHERE seq = 2")
        .execute(store.pool())
        .await
        .unwrap();
    let deleted = store.verify_ledger().await.unwrap().problem.unwrap();
    assert_eq!(deleted.seq, 2);
    assert!(deleted.reason.contains("missing"), "{}", deleted.reason);

    let fresh = TestDb::sqlite();
    let other = fresh.store().await;
    other
        .acknowledge(t0(), &ack("ana@example.com", "x", "aa", "1", true))
        .await
        .unwrap();
    other
        .acknowledge(t0(), &ack("bo@example.com", "x", "aa", "1", true))
        .await
        .unwrap();
    sqlx::query("DELETE FROM ledger WHERE seq = 2")
        .execute(other.pool())
        .await
        .unwrap();
    let tail = other.verify_ledger().await.unwrap();
    assert_eq!(tail.intact, 1);
    assert_eq!(tail.problem.unwrap().seq, 2);
    other.close().await;
    store.close().await;
}

async fn concurrent_appends_keep_the_chain_whole(db: &TestDb) {
    let store_a = db.store().await;
    let store_b = db.store().await;
    let write = |store: Store, prefix: &'static str| {
        tokio::spawn(async move {
            for n in 0..25 {
                store
                    .acknowledge(
                        t0(),
                        &ack(
                            &format!("{prefix}{n}@example.com"),
                            "backup",
                            "aa11",
                            "1.0.0",
                            true,
                        ),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let a = write(store_a.clone(), "a");
    let b = write(store_b.clone(), "b");
    a.await.unwrap();
    b.await.unwrap();
    let verification = store_a.verify_ledger().await.unwrap();
    assert_eq!((verification.intact, verification.problem), (50, None));
    store_a.close().await;
    store_b.close().await;
}

async fn a_run_starts_once_records_its_steps_and_finishes_once(db: &TestDb) {
    use procbot::core::runs::{RunTrigger, StepOutcome};
    use procbot::store::runs::{NewRun, StepRecorded};
    let store = db.store().await;
    let sam = Email::parse("sam@example.com").unwrap();
    let new = NewRun {
        key: "schedule/backup/1796112000000".into(),
        procedure_id: procbot::core::procedure::ProcedureId::parse("backup").unwrap(),
        content_hash: "ab".repeat(32),
        version: Some("1.2.0".into()),
        commit_id: Some("c0ffee".into()),
        title: "Back up".into(),
        owner: Some(Email::parse("it-lead@example.com").unwrap()),
        trigger: RunTrigger::Schedule,
        scheduled_for: Some(t0()),
        due_at: Some(t0() + Duration::days(7)),
        started_by: None,
        assignees: vec![sam.clone()],
        steps: vec!["Start the job.".into(), "Check the report.".into()],
    };
    let first = store
        .start_run(t0(), &new, |id| {
            vec![dm(&format!("run/{id}/checklist"), "sam@example.com")]
        })
        .await
        .unwrap();
    let id = first.expect("the first start records the run");
    // A second instance, or the next tick, starting the same occurrence: nothing new.
    assert_eq!(
        store
            .start_run(t0(), &new, |_| vec![dm("again", "sam@example.com")])
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
    let at = t0() + Duration::minutes(5);
    let record = |step, outcome, note: Option<&'static str>| {
        let store = store.clone();
        let sam = sam.clone();
        async move {
            store
                .record_run_step(at, id, step, outcome, note, &sam)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        record(1, Some(StepOutcome::Done), None).await,
        StepRecorded::Recorded
    );
    assert_eq!(
        record(1, Some(StepOutcome::Done), None).await,
        StepRecorded::Unchanged
    );
    assert_eq!(
        record(2, Some(StepOutcome::Problem), None).await,
        StepRecorded::Recorded
    );
    assert_eq!(
        record(2, None, Some("checksum mismatch")).await,
        StepRecorded::Recorded
    );
    assert_eq!(
        record(3, Some(StepOutcome::Done), None).await,
        StepRecorded::NoSuchStep
    );
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!(run.steps[1].outcome, Some(StepOutcome::Problem));
    assert_eq!(run.steps[1].note.as_deref(), Some("checksum mismatch"));
    assert_eq!(run.steps[0].by.as_ref(), Some(&sam));
    assert_eq!(run.check_finish(), Ok(1));
    let finished_at = t0() + Duration::minutes(30);
    assert!(
        store
            .finish_run(
                finished_at,
                &run,
                &sam,
                1,
                &[dm("deviation", "it-lead@example.com")]
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_run(finished_at, &run, &sam, 1, &[])
            .await
            .unwrap(),
        "finished once"
    );
    assert_eq!(
        record(1, Some(StepOutcome::Problem), None).await,
        StepRecorded::Finished
    );
    let runs = store.runs(Some("backup")).await.unwrap();
    assert_eq!(runs.len(), 1);
    let finished = runs[0].finished.as_ref().unwrap();
    assert_eq!((finished.at, finished.deviations), (finished_at, 1));
    assert!(store.open_runs().await.unwrap().is_empty());
    // Started, three step records, finished: five ledger entries, chained.
    assert_eq!(store.ledger_counts().await.unwrap().get("run"), Some(&5));
    assert!(store.verify_ledger().await.unwrap().problem.is_none());
    store.close().await;
}

async fn the_announce_lock_has_one_holder_at_a_time_and_expires(db: &TestDb) {
    let store = db.store().await;
    let ttl = Duration::seconds(60);
    assert!(store.try_lock("announce", "a", t0(), ttl).await.unwrap());
    assert!(
        !store
            .try_lock("announce", "b", t0() + Duration::seconds(30), ttl)
            .await
            .unwrap()
    );
    // The holder renews it.
    assert!(
        store
            .try_lock("announce", "a", t0() + Duration::seconds(50), ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lock("announce", "b", t0() + Duration::seconds(100), ttl)
            .await
            .unwrap()
    );
    // A holder that died: its lock runs out.
    assert!(
        store
            .try_lock("announce", "b", t0() + Duration::seconds(111), ttl)
            .await
            .unwrap()
    );
    store.release_lock("announce", "a").await.unwrap();
    assert!(
        !store
            .try_lock("announce", "a", t0() + Duration::seconds(112), ttl)
            .await
            .unwrap(),
        "only the holder releases"
    );
    store.release_lock("announce", "b").await.unwrap();
    assert!(
        store
            .try_lock("announce", "a", t0() + Duration::seconds(113), ttl)
            .await
            .unwrap()
    );
    // The announced state: saved, replaced, set aside.
    assert_eq!(store.announced_state("procedures").await.unwrap(), None);
    store
        .save_announced_state(t0(), "procedures", "{\"format\": 1}")
        .await
        .unwrap();
    store
        .save_announced_state(t0(), "procedures", "{\"format\": 2}")
        .await
        .unwrap();
    assert_eq!(
        store
            .announced_state("procedures")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"format\": 2}")
    );
    store
        .set_announced_state_aside("procedures", "procedures.corrupt")
        .await
        .unwrap();
    assert_eq!(store.announced_state("procedures").await.unwrap(), None);
    assert!(
        store
            .announced_state("procedures.corrupt")
            .await
            .unwrap()
            .is_some()
    );
    store.close().await;
}
