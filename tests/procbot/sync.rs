//! Repository sync against a real git remote over file://: baseline, changes, broken commits,
//! force-pushes, outages and restarts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use procbot::clock::ManualClock;
use procbot::core::change::ChangeKind;
use procbot::core::procedure::ProcedureId;
use procbot::repo::state::AnnouncedState;
use procbot::repo::sync::{Source, SyncOutcome, Syncer};

use crate::git_fixture::{GitFixture, procedure};

const STEPS: [&str; 3] = [
    "Log in to the console.",
    "Copy the backup to the first region.",
    "Check the report.",
];

/// A syncer for `source` keeping its state in `data`, on a clock that stands still.
fn make_syncer(source: Source, data: &Path) -> Syncer {
    Syncer::new(
        source,
        AnnouncedState::new(data.join("state.json")),
        Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
        )),
        chrono_tz::UTC,
        Duration::from_secs(300),
    )
}

fn git_source(url: String, branch: &str, data: &Path) -> Source {
    Source::Git {
        url,
        branch: branch.into(),
        checkout: data.join("checkout"),
        directory: "directory.yaml".into(),
    }
}

fn folder_source(folder: &Path) -> Source {
    Source::Folder {
        path: folder.to_path_buf(),
        directory: "directory.yaml".into(),
    }
}

fn git_syncer(fixture: &GitFixture, data: &Path) -> Syncer {
    make_syncer(git_source(fixture.remote_url(), "main", data), data)
}

fn root_fixture() -> GitFixture {
    GitFixture::at_root()
}

fn publish(fixture: &GitFixture, message: &str) -> String {
    fixture.publish(message)
}

fn changes(outcome: SyncOutcome) -> Vec<(String, ChangeKind)> {
    match outcome {
        SyncOutcome::Changed(changes) => changes
            .into_iter()
            .map(|c| (c.id.as_str().to_string(), c.kind))
            .collect(),
        other => panic!("expected changes, got {other:?}"),
    }
}

#[tokio::test]
async fn first_sync_is_a_baseline_then_pushes_are_detected_and_survive_a_restart() {
    let fixture = root_fixture();
    let data = tempfile::tempdir().unwrap();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    publish(&fixture, "Initial");

    let mut syncer = git_syncer(&fixture, data.path());
    syncer.restore().await;
    assert!(matches!(
        syncer.sync_once().await,
        SyncOutcome::Baseline { procedures: 1 }
    ));
    assert!(matches!(syncer.sync_once().await, SyncOutcome::Unchanged));

    fixture.write("backup.md", &procedure("backup", "1.1.0", &STEPS));
    fixture.write("restore.md", &procedure("restore", "1.0.0", &STEPS));
    publish(&fixture, "Bump backup, add restore");
    assert_eq!(
        changes(syncer.sync_once().await),
        [
            ("backup".to_string(), ChangeKind::Material),
            ("restore".to_string(), ChangeKind::Added)
        ]
    );
    drop(syncer);

    // Changed while procbot was down: announced after the restart, and only that.
    fixture.write(
        "restore.md",
        &procedure("restore", "1.0.0", &STEPS)
            .replace("Why restore matters.", "Why restores matter."),
    );
    publish(&fixture, "Reword");
    let mut restarted = git_syncer(&fixture, data.path());
    restarted.restore().await;
    let served = restarted
        .served()
        .expect("the announced snapshot is served before the first sync");
    assert_eq!(served.procedures.len(), 2);
    assert_eq!(
        changes(restarted.sync_once().await),
        [("restore".to_string(), ChangeKind::Editorial)]
    );
    assert!(matches!(
        restarted.sync_once().await,
        SyncOutcome::Unchanged
    ));
}

#[tokio::test]
async fn a_broken_commit_keeps_the_last_good_version_served() {
    let fixture = root_fixture();
    let data = tempfile::tempdir().unwrap();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    publish(&fixture, "Initial");
    let mut syncer = git_syncer(&fixture, data.path());
    syncer.sync_once().await;

    fixture.write("backup.md", "---\nid: backup\ntitle: [unclosed\n---\n");
    publish(&fixture, "Broken");
    assert!(matches!(syncer.sync_once().await, SyncOutcome::Unchanged));
    let served = syncer.served().unwrap();
    let entry = served.get(&ProcedureId::parse("backup").unwrap()).unwrap();
    assert!(entry.kept_despite_errors);
    assert_eq!(entry.procedure.version.as_ref().unwrap().as_str(), "1.0.0");
    assert_eq!(served.error_count(), 1);
    assert_eq!(served.diagnostics[0].file, "backup.md");

    fixture.write("backup.md", &procedure("backup", "1.1.0", &STEPS));
    publish(&fixture, "Fixed");
    assert_eq!(
        changes(syncer.sync_once().await),
        [("backup".to_string(), ChangeKind::Material)]
    );
}

#[tokio::test]
async fn a_force_push_is_followed() {
    let fixture = root_fixture();
    let data = tempfile::tempdir().unwrap();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    publish(&fixture, "Initial");
    let mut syncer = git_syncer(&fixture, data.path());
    syncer.sync_once().await;
    fixture.write("backup.md", &procedure("backup", "1.1.0", &STEPS));
    publish(&fixture, "A version that will be rewritten away");
    syncer.sync_once().await;

    // Rewrite history: a new root commit with different content replaces the branch.
    fixture.write("backup.md", &procedure("backup", "2.0.0", &STEPS));
    let rewritten = fixture.rewrite_history("Rewritten history");
    assert_eq!(
        changes(syncer.sync_once().await),
        [("backup".to_string(), ChangeKind::Material)]
    );
    assert_eq!(
        syncer.served().unwrap().commit.as_ref().unwrap().id,
        rewritten
    );
}

#[tokio::test]
async fn an_unreachable_remote_is_reported_once_and_recovery_is_automatic() {
    let fixture = root_fixture();
    let data = tempfile::tempdir().unwrap();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    publish(&fixture, "Initial");
    let mut syncer = git_syncer(&fixture, data.path());
    syncer.sync_once().await;

    let hidden = fixture.root.path().join("hidden.git");
    std::fs::rename(fixture.remote(), &hidden).unwrap();
    let first = syncer.sync_once().await;
    assert!(
        matches!(
            first,
            SyncOutcome::Failed {
                first_in_outage: true,
                ..
            }
        ),
        "{first:?}"
    );
    let second = syncer.sync_once().await;
    assert!(
        matches!(
            second,
            SyncOutcome::Failed {
                first_in_outage: false,
                ..
            }
        ),
        "{second:?}"
    );
    assert!(syncer.in_outage());
    assert_eq!(
        syncer.next_delay(),
        Duration::from_secs(10),
        "the retry delay doubles"
    );
    assert_eq!(
        syncer.served().unwrap().procedures.len(),
        1,
        "the last good snapshot stays served"
    );

    std::fs::rename(&hidden, fixture.remote()).unwrap();
    fixture.write("backup.md", &procedure("backup", "1.1.0", &STEPS));
    publish(&fixture, "While it was down");
    assert_eq!(
        changes(syncer.sync_once().await),
        [("backup".to_string(), ChangeKind::Material)]
    );
    assert!(!syncer.in_outage());
    assert_eq!(syncer.next_delay(), Duration::from_secs(300));
}

#[tokio::test]
async fn a_remote_that_never_existed_does_not_stop_the_syncer() {
    let data = tempfile::tempdir().unwrap();
    let mut syncer = make_syncer(
        git_source(
            format!("file://{}/nowhere.git", data.path().display()),
            "main",
            data.path(),
        ),
        data.path(),
    );
    assert!(matches!(
        syncer.sync_once().await,
        SyncOutcome::Failed {
            first_in_outage: true,
            ..
        }
    ));
    assert!(syncer.served().is_none());
}

#[tokio::test]
async fn a_folder_source_is_re_read_and_a_corrupt_state_file_is_set_aside() {
    let folder = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("a.md"), procedure("a", "1.0.0", &STEPS)).unwrap();
    std::fs::write(data.path().join("state.json"), "{ not json").unwrap();
    let make = || make_syncer(folder_source(folder.path()), data.path());
    let mut syncer = make();
    syncer.restore().await;
    let aside: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("corrupt"))
        .collect();
    assert_eq!(aside.len(), 1, "the unreadable state file is kept aside");
    assert!(matches!(
        syncer.sync_once().await,
        SyncOutcome::Baseline { procedures: 1 }
    ));
    std::fs::write(folder.path().join("a.md"), procedure("a", "1.1.0", &STEPS)).unwrap();
    assert_eq!(
        changes(syncer.sync_once().await),
        [("a".to_string(), ChangeKind::Material)]
    );
    std::fs::remove_file(folder.path().join("a.md")).unwrap();
    assert_eq!(
        changes(syncer.sync_once().await),
        [("a".to_string(), ChangeKind::Removed)]
    );
}

#[tokio::test]
async fn a_failed_save_is_retried_rather_than_forgotten() {
    let fixture = root_fixture();
    let data = tempfile::tempdir().unwrap();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    publish(&fixture, "Initial");
    let mut syncer = git_syncer(&fixture, data.path());
    syncer.sync_once().await;

    // A folder where the state file should be: saving fails.
    let state = data.path().join("state.json");
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    fixture.write("backup.md", &procedure("backup", "1.1.0", &STEPS));
    publish(&fixture, "Bump");
    assert!(matches!(
        syncer.sync_once().await,
        SyncOutcome::Failed { .. }
    ));

    std::fs::remove_dir(&state).unwrap();
    assert_eq!(
        changes(syncer.sync_once().await),
        [("backup".to_string(), ChangeKind::Material)]
    );
    assert!(state.is_file());
}

#[tokio::test]
async fn a_folder_procbot_did_not_make_is_never_deleted() {
    let fixture = root_fixture();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    publish(&fixture, "Initial");
    let data = tempfile::tempdir().unwrap();
    let checkout = data.path().join("checkout");
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::write(checkout.join("precious.txt"), "keep me").unwrap();
    let mut syncer = git_syncer(&fixture, data.path());
    let outcome = syncer.sync_once().await;
    assert!(
        matches!(&outcome, SyncOutcome::Failed { error, .. } if error.contains("not a clone procbot made")),
        "{outcome:?}"
    );
    assert!(checkout.join("precious.txt").is_file());
}

#[tokio::test]
async fn a_changed_branch_is_cloned_again() {
    let fixture = root_fixture();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    publish(&fixture, "Initial");
    crate::git_fixture::git(
        &fixture.work(),
        &["push", "-q", "origin", "HEAD:refs/heads/release"],
    );
    let data = tempfile::tempdir().unwrap();
    let mut syncer = git_syncer(&fixture, data.path());
    assert!(matches!(
        syncer.sync_once().await,
        SyncOutcome::Baseline { .. }
    ));
    drop(syncer);
    let mut release = make_syncer(
        git_source(fixture.remote_url(), "release", data.path()),
        data.path(),
    );
    release.restore().await;
    let outcome = release.sync_once().await;
    assert!(matches!(outcome, SyncOutcome::Unchanged), "{outcome:?}");
    assert_eq!(release.served().unwrap().procedures.len(), 1);
}

#[tokio::test]
async fn a_kept_version_survives_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let directory = "teams:\n  it-ops: [it-lead@example.com]\n";
    std::fs::write(folder.path().join("directory.yaml"), directory).unwrap();
    std::fs::write(folder.path().join("a.md"), procedure("a", "1.0.0", &STEPS)).unwrap();
    let make = || make_syncer(folder_source(folder.path()), data.path());
    let mut syncer = make();
    assert!(matches!(
        syncer.sync_once().await,
        SyncOutcome::Baseline { procedures: 1 }
    ));
    // The owner leaves the directory: the procedure now has an error, its last good version
    // stays served.
    std::fs::write(
        folder.path().join("directory.yaml"),
        "teams:\n  it-ops: [someone-else@example.com]\n",
    )
    .unwrap();
    syncer.sync_once().await;
    assert!(
        syncer
            .served()
            .unwrap()
            .get(&ProcedureId::parse("a").unwrap())
            .unwrap()
            .kept_despite_errors
    );
    drop(syncer);

    let mut restarted = make();
    restarted.restore().await;
    let served = restarted.served().unwrap();
    assert!(
        served.get(&ProcedureId::parse("a").unwrap()).is_some(),
        "the kept version was lost on restart"
    );
    assert!(
        !matches!(restarted.sync_once().await, SyncOutcome::Changed(_)),
        "nothing was withdrawn"
    );
}

#[tokio::test]
async fn an_acknowledgement_asked_for_in_a_broken_commit_is_asked_when_fixed_even_after_a_restart()
{
    let fixture = root_fixture();
    let data = tempfile::tempdir().unwrap();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &STEPS));
    publish(&fixture, "Initial");
    let mut syncer = git_syncer(&fixture, data.path());
    syncer.sync_once().await;

    fixture.write("backup.md", "---\nid: backup\ntitle: [broken\n---\n");
    publish(&fixture, "Everyone must reread this\n\nAck-Required: yes");
    assert!(matches!(syncer.sync_once().await, SyncOutcome::Unchanged));
    drop(syncer);

    let mut restarted = git_syncer(&fixture, data.path());
    restarted.restore().await;
    let fixed = procedure(
        "backup",
        "1.0.0",
        &["Log in with a hardware key.", STEPS[1], STEPS[2]],
    );
    fixture.write("backup.md", &fixed);
    publish(&fixture, "Fix the front matter");
    assert_eq!(
        changes(restarted.sync_once().await),
        [("backup".to_string(), ChangeKind::Material)]
    );
}
