//! Crash safety: `procbot serve` announcing to 1,000 people through the fake Slack is killed
//! with SIGKILL mid-delivery, while Slack holds the answer to a message it has already
//! posted; restarted, procbot delivers the rest, finds that message in the DM instead of
//! sending it again, and every person has exactly one DM. The ledger verifies.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::fake_slack::{Failure, FakeSlack};
use crate::helpers::{ServeProcess, TestRepo, procbot_command};

const PEOPLE: usize = 1_000;
/// The message whose answer Slack holds back when procbot is killed.
const KILLED_AT: usize = 300;

fn repository() -> TestRepo {
    let repo = TestRepo::new();
    let mut directory = String::from("people:\n");
    for n in 0..PEOPLE {
        directory.push_str(&format!(
            "  person{n}@example.com: {{ name: Person {n}, slack: U{n:05} }}\n"
        ));
    }
    repo.write("procedures/directory.yaml", directory);
    repo.write(
        "procedures/clean-desk.md",
        "---\nid: clean-desk\ntitle: Keep a clean desk\nowner: person0@example.com\naudience: [everyone]\nversion: 1.0.0\nlast_reviewed: 2026-06-01\n---\n# Keep a clean desk\n\n## Steps\n1. Lock your screen when you leave.\n2. Put papers away at night.\n",
    );
    repo
}

fn env(repo: &TestRepo, fake: &FakeSlack) -> Vec<(&'static str, String)> {
    vec![
        (
            "PROCBOT_PROCEDURES__PATH",
            repo.path().join("procedures").display().to_string(),
        ),
        (
            "PROCBOT_PROCEDURES__STATE_FILE",
            repo.path().join("state.json").display().to_string(),
        ),
        (
            "PROCBOT_DATABASE__URL",
            format!("sqlite://{}", repo.path().join("procbot.db").display()),
        ),
        ("PROCBOT_SLACK__BOT_TOKEN", "xoxb-crash-test".to_string()),
        ("PROCBOT_SLACK__MODE", "http".to_string()),
        (
            "PROCBOT_SLACK__SIGNING_SECRET",
            "crash-test-signing-secret".to_string(),
        ),
        ("PROCBOT_SLACK__API_BASE_URL", fake.api_url()),
        // The fake has no workspace limits; a high pace keeps the test short.
        ("PROCBOT_SLACK__MAX_MESSAGES_PER_SECOND", "400".to_string()),
    ]
}

fn dms_per_person(fake: &FakeSlack) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in fake.calls("chat.postMessage") {
        if let Some(user) = request.args["channel"]
            .as_str()
            .filter(|c| c.starts_with('U'))
        {
            *counts.entry(user.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_delivery_loses_and_duplicates_nothing() {
    let fake = FakeSlack::start(Vec::new()).await;
    for _ in 1..KILLED_AT {
        fake.fail_next("chat.postMessage", Failure::Slow(Duration::ZERO));
    }
    fake.fail_next(
        "chat.postMessage",
        Failure::AnswerLost(Duration::from_secs(600)),
    );
    let repo = repository();
    let env = env(&repo, &fake);

    let mut first = tokio::task::spawn_blocking({
        let env = env.clone();
        let dir = repo.path().to_path_buf();
        move || ServeProcess::start(&dir, &env)
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.posted_count() < KILLED_AT {
        assert!(
            Instant::now() < deadline,
            "delivery never reached {KILLED_AT}: {}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Slack has message 300 and is holding its answer: kill -9 now.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let exit = first.signal("KILL");
    assert!(!exit.success());
    let delivered_before = fake.posted_count();
    assert!(
        delivered_before < PEOPLE,
        "killed mid-delivery ({delivered_before} sent)"
    );

    let mut second = tokio::task::spawn_blocking({
        let env = env.clone();
        let dir = repo.path().to_path_buf();
        move || ServeProcess::start(&dir, &env)
    })
    .await
    .unwrap();
    // The rest goes at once; the rows the dead process had claimed come back when its lease
    // runs out (a minute).
    let deadline = Instant::now() + Duration::from_secs(150);
    while dms_per_person(&fake).len() < PEOPLE || second_pending(&second).await > 0 {
        assert!(
            Instant::now() < deadline,
            "not everyone got their DM: {} of {PEOPLE}\n{}",
            dms_per_person(&fake).len(),
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counts = dms_per_person(&fake);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "DMed more than once: {twice:?}");
    assert_eq!(counts.len(), PEOPLE);
    assert_eq!(
        fake.posted_count(),
        PEOPLE,
        "no channel post on a first start, one DM each"
    );
    // The held message was found in its DM instead of being sent again.
    assert!(
        !fake.calls("conversations.history").is_empty(),
        "the restarted procbot looked before resending"
    );
    assert!(second.log().contains("already delivered before a restart"));
    assert_eq!(second.signal("TERM").code(), Some(0), "{}", second.log());

    let verify = procbot_command(&["audit", "verify"])
        .env("PROCBOT_DATABASE__URL", &env[2].1)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Messages still waiting, from the running procbot's readiness.
async fn second_pending(process: &ServeProcess) -> i64 {
    let address = process.address;
    let (_, body) =
        tokio::task::spawn_blocking(move || crate::helpers::http_get(address, "/readyz"))
            .await
            .unwrap();
    serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()["outbox"]["pending"]
        .as_i64()
        .unwrap_or(1)
}
