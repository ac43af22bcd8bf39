//! Several instances: two `procbot serve` processes on one PostgreSQL database and one git
//! repository, with Slack the fake. A first start, a version bump and an editorial change
//! are each announced once and DM each person once; one instance is killed with SIGKILL and
//! the other carries on syncing and announcing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::db::TestDb;
use crate::fake_slack::FakeSlack;
use crate::git_fixture::GitFixture;
use crate::helpers::{ServeProcess, procedure_text};

const PEOPLE: usize = 20;
const RECIPIENTS: usize = PEOPLE;

fn directory() -> String {
    let mut text = String::from("teams:\n  staff: [");
    text.push_str(
        &(0..PEOPLE)
            .map(|n| format!("p{n}@example.com"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    text.push_str("]\npeople:\n");
    for n in 0..PEOPLE {
        text.push_str(&format!(
            "  p{n}@example.com: {{ name: P{n}, slack: U{n:05} }}\n"
        ));
    }
    text
}

fn procedure(version: &str, summary: &str) -> String {
    let fields: Vec<(String, String)> = [
        ("id", "visitors"),
        ("title", "Sign visitors in"),
        ("summary", summary),
        ("owner", "p0@example.com"),
        ("audience", "[staff]"),
        ("version", version),
        ("last_reviewed", "2026-06-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    procedure_text(
        &fields,
        "# Sign visitors in\n\n## Steps\n1. Ask for ID.\n2. Print a badge.\n",
    )
}

fn env(
    fixture: &GitFixture,
    db: &TestDb,
    fake: &FakeSlack,
    data: &std::path::Path,
    name: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("PROCBOT_PROCEDURES__GIT_URL", fixture.remote_url()),
        (
            "PROCBOT_PROCEDURES__PATH",
            data.join(format!("{name}-checkout")).display().to_string(),
        ),
        (
            "PROCBOT_PROCEDURES__STATE_FILE",
            data.join(format!("{name}-state.json"))
                .display()
                .to_string(),
        ),
        ("PROCBOT_PROCEDURES__POLL_EVERY", "1s".to_string()),
        ("PROCBOT_DATABASE__URL", db.url.clone()),
        ("PROCBOT_SLACK__BOT_TOKEN", "xoxb-instances".to_string()),
        ("PROCBOT_SLACK__MODE", "http".to_string()),
        (
            "PROCBOT_SLACK__SIGNING_SECRET",
            "instances-signing-secret".to_string(),
        ),
        ("PROCBOT_SLACK__API_BASE_URL", fake.api_url()),
        ("PROCBOT_SLACK__MAX_MESSAGES_PER_SECOND", "100".to_string()),
        ("HOSTNAME", name.to_string()),
    ]
}

fn posts(fake: &FakeSlack) -> (usize, BTreeMap<String, usize>) {
    let mut channel = 0;
    let mut dms = BTreeMap::new();
    for request in fake.calls("chat.postMessage") {
        match request.args["channel"].as_str() {
            Some("#procedures") => channel += 1,
            Some(user) => *dms.entry(user.to_string()).or_insert(0) += 1,
            None => {}
        }
    }
    (channel, dms)
}

async fn settle(
    fake: &FakeSlack,
    instances: &mut [&mut ServeProcess],
    what: &str,
    done: impl Fn(usize, &BTreeMap<String, usize>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (channel, dms) = posts(fake);
        if done(channel, &dms) {
            // A moment more, for anything sent twice to show.
            tokio::time::sleep(Duration::from_secs(3)).await;
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = instances.iter_mut().map(|i| i.log().to_string()).collect();
            panic!(
                "timed out waiting for {what}: channel {channel}, DMs {dms:?}\n{}",
                logs.join("\n=====\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_announce_each_change_once() {
    let db = TestDb::postgres().await;
    let fake = FakeSlack::start(Vec::new()).await;
    let fixture = GitFixture::at_root();
    fixture.write("directory.yaml", &directory());
    fixture.write(
        "visitors.md",
        &procedure("1.0.0", "Everyone who visits is signed in."),
    );
    fixture.publish("Initial procedures");
    let data = tempfile::tempdir().unwrap();
    let start = |name: &'static str| {
        let env = env(&fixture, &db, &fake, data.path(), name);
        let dir = data.path().to_path_buf();
        tokio::task::spawn_blocking(move || ServeProcess::start(&dir, &env))
    };
    let mut a = start("instance-a").await.unwrap();
    let mut b = start("instance-b").await.unwrap();

    // First start: one welcome DM per person, nothing in the channel.
    settle(&fake, &mut [&mut a, &mut b], "the welcome DMs", |_, dms| {
        dms.len() == RECIPIENTS
    })
    .await;
    let (channel, dms) = posts(&fake);
    assert_eq!(channel, 0);
    assert!(
        dms.values().all(|n| *n == 1),
        "{dms:?}\n{}\n{}",
        a.log(),
        b.log()
    );

    // A version bump: one channel post, one DM each.
    fixture.write(
        "visitors.md",
        &procedure("1.1.0", "Everyone who visits is signed in."),
    );
    fixture.publish("Badges for visitors");
    settle(
        &fake,
        &mut [&mut a, &mut b],
        "the version bump",
        |channel, dms| channel == 1 && dms.len() == RECIPIENTS && dms.values().all(|n| *n == 2),
    )
    .await;
    let (channel, dms) = posts(&fake);
    assert_eq!(channel, 1, "one announcement in the channel");
    assert!(dms.values().all(|n| *n == 2), "{dms:?}");

    // An editorial change: announced once in the channel, no DM (the case a per-instance
    // state file got wrong).
    fixture.write(
        "visitors.md",
        &procedure("1.1.0", "Every visitor is signed in and out."),
    );
    fixture.publish("Wording");
    settle(
        &fake,
        &mut [&mut a, &mut b],
        "the editorial change",
        |channel, _| channel == 2,
    )
    .await;
    let (channel, dms) = posts(&fake);
    assert_eq!(channel, 2);
    assert!(dms.values().all(|n| *n == 2));

    // One instance dies; the other carries on.
    a.signal("KILL");
    fixture.write(
        "visitors.md",
        &procedure("1.2.0", "Every visitor is signed in and out."),
    );
    fixture.publish("Escorts");
    settle(
        &fake,
        &mut [&mut b],
        "the change after the kill",
        |channel, dms| channel == 3 && dms.len() == RECIPIENTS && dms.values().all(|n| *n == 3),
    )
    .await;
    let (channel, dms) = posts(&fake);
    assert_eq!(channel, 3);
    assert!(dms.values().all(|n| *n == 3), "{dms:?}\n{}", b.log());
    assert_eq!(b.signal("TERM").code(), Some(0), "{}", b.log());
    drop(a);
    db.finish().await;
}
