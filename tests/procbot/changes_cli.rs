//! `procbot changes` and `procbot history` against real git repositories.

use std::collections::BTreeMap;

use crate::git_fixture::{GitFixture, procedure};
use crate::helpers::{procbot, stdout_of};

const STEPS: [&str; 3] = [
    "Log in to the console.",
    "Copy the backup to the first region.",
    "Check the report.",
];

fn changes_json(fixture: &GitFixture, from: &str, to: &str) -> serde_json::Value {
    let output = procbot(&[
        "changes",
        "--procedures",
        fixture.procedures().to_str().unwrap(),
        "--from",
        from,
        "--to",
        to,
        "--json",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout_of(&output)).unwrap()
}

fn kinds(json: &serde_json::Value) -> BTreeMap<String, String> {
    json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_change_kind_is_detected_between_two_commits() {
    let fixture = GitFixture::new();
    fixture.write("bump.md", &procedure("bump", "1.1.0", &STEPS));
    fixture.write("typo.md", &procedure("typo", "1.0.0", &STEPS));
    fixture.write("gone.md", &procedure("gone", "1.0.0", &STEPS));
    fixture.write("moved.md", &procedure("moved", "1.0.0", &STEPS));
    fixture.write("README.md", "# Procedures\n");
    let first = fixture.commit("Initial procedures");

    let mut new_steps = STEPS;
    new_steps[1] = "Copy the backup to the second region.";
    fixture.write("bump.md", &procedure("bump", "1.2.0", &new_steps));
    fixture.write(
        "typo.md",
        &procedure("typo", "1.0.0", &STEPS)
            .replace("Check the report.", "Check the backup report."),
    );
    fixture.remove("gone.md");
    fixture.rename("moved.md", "ops/moved.md");
    fixture.write("new.md", &procedure("new", "1.0.0", &STEPS));
    fixture.write("README.md", "# Procedures, with a longer README\n");
    let second = fixture.commit("Second region, new procedure, tidy-up");

    let json = changes_json(&fixture, &first, &second);
    assert_eq!(json["from"], first);
    assert_eq!(json["to"], second);
    let expected: BTreeMap<String, String> = [
        ("bump", "material"),
        ("gone", "removed"),
        ("moved", "renamed"),
        ("new", "added"),
        ("typo", "editorial"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds(&json), expected);

    let bump = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "bump")
        .unwrap();
    assert_eq!(bump["from_version"], "1.1.0");
    assert_eq!(bump["to_version"], "1.2.0");
    assert_eq!(
        bump["summary"],
        "v1.1.0 → v1.2.0. Step 2 changed: Copy the backup to the second region."
    );
    let new = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "new")
        .unwrap();
    assert_eq!(new["from_version"], serde_json::Value::Null);
    let gone = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "gone")
        .unwrap();
    assert_eq!(gone["to_version"], serde_json::Value::Null);
    let moved = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "moved")
        .unwrap();
    assert_eq!(moved["summary"], "Moved from moved.md to ops/moved.md.");
}

#[test]
fn ack_required_trailers_override_versions_across_a_multi_commit_range() {
    let fixture = GitFixture::new();
    fixture.write("editorial.md", &procedure("editorial", "1.0.0", &STEPS));
    fixture.write("bumped.md", &procedure("bumped", "1.0.0", &STEPS));
    fixture.write("plain.md", &procedure("plain", "1.0.0", &STEPS));
    let first = fixture.commit("Initial");

    fixture.write(
        "editorial.md",
        &procedure(
            "editorial",
            "1.0.0",
            &["Log in with your hardware key.", STEPS[1], STEPS[2]],
        ),
    );
    fixture.commit("Require hardware keys\n\nAck-Required: yes");
    fixture.write(
        "bumped.md",
        &procedure("bumped", "1.0.1", &STEPS).replace("Why bumped matters.", "Why this matters."),
    );
    fixture.commit("Reword the purpose\n\nAck-Required: no");
    fixture.write("plain.md", &procedure("plain", "2.0.0", &STEPS));
    let last = fixture.commit("New major version of plain");

    let json = changes_json(&fixture, &first, &last);
    let expected: BTreeMap<String, String> = [
        ("bumped", "editorial"),
        ("editorial", "material"),
        ("plain", "material"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds(&json), expected);

    // Only the commits of the range count: from the middle, the `yes` trailer is outside it.
    let middle = crate::git_fixture::git(&fixture.work(), &["rev-parse", "HEAD~2"]);
    let json = changes_json(&fixture, &middle, &last);
    assert!(!kinds(&json).contains_key("editorial"), "{json}");
}

#[test]
fn a_broken_file_in_the_new_revision_keeps_its_last_good_version() {
    let fixture = GitFixture::new();
    fixture.write("a.md", &procedure("a", "1.0.0", &STEPS));
    let first = fixture.commit("Initial");
    fixture.write("a.md", "---\nid: a\ntitle: [unclosed\n---\n");
    let broken = fixture.commit("Broken edit");
    let json = changes_json(&fixture, &first, &broken);
    assert_eq!(json["changes"], serde_json::json!([]));
}

#[test]
fn human_output_and_errors() {
    let fixture = GitFixture::new();
    fixture.write("a.md", &procedure("a", "1.0.0", &STEPS));
    let first = fixture.commit("Initial");
    fixture.write("a.md", &procedure("a", "1.1.0", &STEPS[..2]));
    fixture.commit("Drop the report check");
    let output = procbot(&[
        "changes",
        "--procedures",
        fixture.procedures().to_str().unwrap(),
        "--from",
        &first,
    ]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("1 (1 to acknowledge)"), "{stdout}");
    assert!(stdout.contains("material  a (1.0.0 → 1.1.0)"), "{stdout}");
    assert!(
        stdout.contains("Step 3 removed (was: Check the report.)"),
        "{stdout}"
    );

    let output = procbot(&[
        "changes",
        "--procedures",
        fixture.procedures().to_str().unwrap(),
        "--from",
        "no-such-rev",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`no-such-rev` is not a commit"));

    let plain = tempfile::tempdir().unwrap();
    let output = procbot(&[
        "changes",
        "--procedures",
        plain.path().to_str().unwrap(),
        "--from",
        "HEAD",
    ]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn history_follows_a_procedure_across_a_rename() {
    let fixture = GitFixture::new();
    fixture.write("ops/backup.md", &procedure("backup", "1.0.0", &STEPS));
    fixture.write("other.md", &procedure("other", "1.0.0", &STEPS));
    fixture.commit("Add the backup procedure");
    fixture.write(
        "ops/backup.md",
        &procedure("backup", "1.1.0", &["Log in.", STEPS[1], STEPS[2]]),
    );
    fixture.commit("Shorter login step");
    fixture.write("other.md", &procedure("other", "2.0.0", &STEPS));
    fixture.commit("Unrelated change");
    fixture.rename("ops/backup.md", "operations/backup.md");
    fixture.commit("Move into operations/");
    fixture.write(
        "operations/backup.md",
        &procedure(
            "backup",
            "1.1.0",
            &["Log in.", STEPS[1], "Check the backup report."],
        ),
    );
    fixture.commit("Clarify the report");

    let output = procbot(&[
        "history",
        "backup",
        "--procedures",
        fixture.procedures().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    let versions = json["versions"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str, &str)> = versions
        .iter()
        .map(|v| {
            (
                v["kind"].as_str().unwrap(),
                v["version"].as_str().unwrap(),
                v["path"].as_str().unwrap(),
                v["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "added",
                "1.0.0",
                "ops/backup.md",
                "Add the backup procedure"
            ),
            ("material", "1.1.0", "ops/backup.md", "Shorter login step"),
            (
                "renamed",
                "1.1.0",
                "operations/backup.md",
                "Move into operations/"
            ),
            (
                "editorial",
                "1.1.0",
                "operations/backup.md",
                "Clarify the report"
            ),
        ]
    );
    assert_eq!(versions[0]["author"], "Ida Lead");
    assert_eq!(versions[0]["committer_email"], "it-lead@example.com");
    assert_eq!(versions[0]["date"], "2026-11-02T10:00:00+00:00");
    assert_eq!(versions[0]["content_hash"].as_str().unwrap().len(), 64);

    let output = procbot(&[
        "history",
        "backup",
        "--procedures",
        fixture.procedures().to_str().unwrap(),
    ]);
    let stdout = stdout_of(&output);
    assert!(stdout.starts_with("backup: Procedure backup\n"), "{stdout}");
    assert!(
        stdout.contains(
            "v1.1.0    renamed   Ida Lead <it-lead@example.com>  \"Move into operations/\""
        ),
        "{stdout}"
    );

    let output = procbot(&[
        "history",
        "nothing-here",
        "--procedures",
        fixture.procedures().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn trailers_on_merge_commits_count() {
    let fixture = GitFixture::new();
    fixture.write("a.md", &procedure("a", "1.0.0", &STEPS));
    let first = fixture.commit("Initial");
    let main = crate::git_fixture::git(&fixture.work(), &["rev-parse", "--abbrev-ref", "HEAD"]);
    crate::git_fixture::git(&fixture.work(), &["checkout", "-q", "-b", "feature"]);
    fixture.write(
        "a.md",
        &procedure("a", "1.0.1", &STEPS).replace("Why a matters.", "Why this matters."),
    );
    fixture.commit("Reword");
    crate::git_fixture::git(&fixture.work(), &["checkout", "-q", &main]);
    crate::git_fixture::git(
        &fixture.work(),
        &[
            "merge",
            "-q",
            "--no-ff",
            "feature",
            "-m",
            "Merge the rewording\n\nAck-Required: no",
        ],
    );
    let merged = crate::git_fixture::git(&fixture.work(), &["rev-parse", "HEAD"]);
    let json = changes_json(&fixture, &first, &merged);
    assert_eq!(kinds(&json)["a"], "editorial", "{json}");
}
