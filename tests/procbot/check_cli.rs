//! `procbot check` as a user runs it: the binary on a repository with good and broken files.

use crate::helpers::{
    DIRECTORY, TODAY, TestRepo, clean_procedure, procbot, procedure_with, stdout_of,
};

/// A repository with two good procedures and one broken file per kind of problem.
fn mixed_repository() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("directory.yaml", DIRECTORY);
    repo.write("README.md", "# Our procedures\n\nNot a procedure.\n");
    repo.write("ops/backup.md", clean_procedure("backup"));
    repo.write(
        "people/onboarding.md",
        "\u{feff}---\r\nid: onboarding\r\ntitle: Onboard a new starter\r\nowner: cto@example.com\r\naudience: everyone\r\nversion: 2\r\nlast_reviewed: 2026-09-01\r\n---\r\n# Onboard a new starter\r\n\r\n## Procedure\r\n- [ ] Create the account\r\n- [ ] Hand over the laptop\r\n",
    );
    repo.write("_drafts/half-done.md", "not checked");
    repo.write(
        "broken/no-owner.md",
        procedure_with("no-owner", "owner", None),
    );
    repo.write(
        "broken/bad-yaml.md",
        "---\nid: bad-yaml\ntitle: \"unclosed\nowner: x\n---\n# X\n",
    );
    repo.write(
        "broken/unterminated.md",
        "---\nid: unterminated\ntitle: Never closed\n",
    );
    repo.write("broken/duplicate-a.md", clean_procedure("twin"));
    repo.write("broken/duplicate-b.md", clean_procedure("twin"));
    repo.write(
        "broken/bad-values.md",
        procedure_with("bad-values", "classification", Some("top-secret"))
            .replace("last_reviewed: 2026-06-01", "last_reviewed: 2026-02-30")
            .replace("review_every: 12 months", "review_every: fortnightly")
            .replace("owner: it-lead@example.com", "owner: ghost@example.com")
            .replace(
                "audience: [it-ops, engineering]",
                "audience: [it-ops, marketing]",
            ),
    );
    repo.write("broken/empty.md", "");
    repo.write("broken/binary.md", b"GIF89a\x01\0\x01\0\0\0\0;");
    repo.write("broken/latin1.md", b"# Caf\xe9\n");
    repo.write(
        "broken/overdue.md",
        procedure_with("overdue", "last_reviewed", Some("2024-11-01")),
    );
    repo
}

const BROKEN: [&str; 10] = [
    "broken/no-owner.md",
    "broken/bad-yaml.md",
    "broken/unterminated.md",
    "broken/duplicate-a.md",
    "broken/duplicate-b.md",
    "broken/bad-values.md",
    "broken/empty.md",
    "broken/binary.md",
    "broken/latin1.md",
    "broken/overdue.md",
];

#[test]
fn a_broken_repository_exits_1_and_names_every_broken_file_and_no_good_one() {
    let repo = mixed_repository();
    let output = procbot(&["check", repo.path().to_str().unwrap(), "--today", TODAY]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for file in BROKEN {
        assert!(
            stdout.contains(&format!("--> {file}:")),
            "{file} not named:\n{stdout}"
        );
    }
    for good in [
        "ops/backup.md",
        "people/onboarding.md",
        "README.md",
        "_drafts/half-done.md",
    ] {
        assert!(!stdout.contains(good), "{good} was flagged:\n{stdout}");
    }
    assert!(
        stdout
            .ends_with("checked 12 procedure files (6 procedures served): 13 errors, 1 warning\n"),
        "{stdout}"
    );
}

#[test]
fn human_output_matches_the_snapshot() {
    let repo = mixed_repository();
    let output = procbot(&["check", repo.path().to_str().unwrap(), "--today", TODAY]);
    insta::assert_snapshot!("check_human", stdout_of(&output));
}

#[test]
fn json_output_matches_the_snapshot_and_parses() {
    let repo = mixed_repository();
    let output = procbot(&[
        "check",
        repo.path().to_str().unwrap(),
        "--format",
        "json",
        "--today",
        TODAY,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = stdout_of(&output);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["errors"], 13);
    assert_eq!(json["diagnostics"][0]["file"], "broken/bad-values.md");
    insta::assert_snapshot!("check_json", stdout);
}

#[test]
fn a_clean_repository_exits_0() {
    let repo = TestRepo::new();
    repo.write("directory.yaml", DIRECTORY);
    repo.write("backup.md", clean_procedure("backup"));
    let output = procbot(&["check", repo.path().to_str().unwrap(), "--today", TODAY]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout_of(&output),
        "checked 1 procedure file (1 procedure served): no problems found\n"
    );
}

#[test]
fn warnings_alone_exit_0() {
    let repo = TestRepo::new();
    repo.write(
        "backup.md",
        procedure_with("backup", "last_reviewed", Some("2020-01-01")),
    );
    let output = procbot(&["check", repo.path().to_str().unwrap(), "--today", TODAY]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("warning[P018 review-overdue]"));
}

#[test]
fn a_missing_folder_exits_2_with_a_message() {
    let output = procbot(&["check", "/nonexistent/procedures"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/procedures does not exist"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_exit_2() {
    let output = procbot(&["check", ".", "--format", "xml"]);
    assert_eq!(output.status.code(), Some(2));
    let output = procbot(&["check", ".", "--today", "2026-02-30"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("February 2026 has 28 days"));
}

#[test]
fn a_ten_megabyte_procedure_is_checked() {
    let repo = TestRepo::new();
    let mut text = clean_procedure("big");
    let paragraph = "Lorem ipsum dolor sit amet, with `inline code`, **bold** and [links](https://example.com).\n\n";
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(paragraph);
    }
    repo.write("big.md", text);
    let started = std::time::Instant::now();
    let output = procbot(&["check", repo.path().to_str().unwrap(), "--today", TODAY]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    // Generous bound for a debug build on a loaded CI machine; BENCHMARKS.md has the figure.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
