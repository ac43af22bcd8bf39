//! `procbot import comply` on a comply-shaped project.

use crate::helpers::{TODAY, TestRepo, procbot, stdout_of};

const PATCH: &str = "id: \"patch\"\nname: \"Apply OS patches\"\ncron: \"0 0 0 15 * *\"\n---\n\n# OS Patch Procedure\n\nResolve this ticket by executing the following steps:\n\n- [ ] Pull the latest scripts from the Ops repository\n- [ ] Execute `ENV=staging patch-all.sh`\n- [ ] Inspect output\n    - [ ] Errors? Investigate and resolve\n- [ ] Execute `ENV=production patch-all.sh`\n- [ ] Attach log output to this ticket\n";
const WORKSTATION: &str = "id: \"workstation\"\nname: \"Collect Workstation Details\"\ncron: \"0 0 0 15 4 *\"\nsatisfies:\n  TSC:\n    - CC6.8\n---\n\n# Collect Workstation Details\n\nResolve this ticket by executing the following steps:\n\n- [ ] Send a link to the workstation survey to all staff\n- [ ] Attach the results to this ticket\n";
const ONBOARD: &str = "---\nid: \"onboard\"\nname: \"Onboard New User\"\nmajorRevisions:\n  - date: Jun 1 2018\n    comment: Initial document\n---\n\n# Onboard New User\n\n- [ ] Create accounts\n- [ ] Hand over equipment\n";
const OFFBOARD: &str = "id: \"offboard\"\nname: \"Offboard User\"\n---\n\n# Offboard User\n\n- [ ] Disable accounts\n- [ ] Collect equipment\n";

fn comply_project() -> TestRepo {
    let project = TestRepo::new();
    project.write("comply.yml", "name: Acme\nfilePrefix: Acme\n");
    project.write("procedures/patch.md", PATCH);
    project.write("procedures/workstation.md", WORKSTATION);
    project.write("procedures/onboarding.md", ONBOARD);
    project.write("procedures/offboarding.md", OFFBOARD);
    project.write("procedures/README.md", "# Procedures\n");
    project.write("policies/access.md", "name: Access\n---\n# Access policy\n");
    project
}

#[test]
fn a_comply_project_converts_into_procedures_that_check_cleanly_once_reviewed() {
    let project = comply_project();
    let destination = TestRepo::new();
    let output = procbot(&[
        "import",
        "comply",
        project.path().to_str().unwrap(),
        destination.path().to_str().unwrap(),
        "--owner",
        "it-lead@example.com",
        "--audience",
        "it-ops,engineering",
    ]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("imported 4 of 4 comply procedures"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`cron: 0 0 0 15 * *` became `schedule: 0 0 15 * *`"),
        "{stdout}"
    );
    assert!(stdout.contains("majorRevisions"), "{stdout}");
    assert!(stdout.contains("last_reviewed"), "{stdout}");
    for id in ["patch", "workstation", "onboard", "offboard"] {
        assert!(
            destination.path().join(format!("{id}.md")).is_file(),
            "{id}.md missing"
        );
    }
    assert!(
        !destination.path().join("access.md").exists(),
        "policies are not procedures"
    );

    // The only thing left for a human is the review date comply never recorded.
    let check = procbot(&[
        "check",
        destination.path().to_str().unwrap(),
        "--format",
        "json",
        "--today",
        TODAY,
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&check)).unwrap();
    let names: Vec<&str> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["missing-last-reviewed"; 4]);

    let workstation = std::fs::read_to_string(destination.path().join("workstation.md")).unwrap();
    assert!(
        workstation.contains("\"soc2\": [\"CC6.8\"]"),
        "{workstation}"
    );
    assert!(
        workstation.contains("schedule: \"0 0 15 4 *\""),
        "{workstation}"
    );
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let project = comply_project();
    let destination = TestRepo::new();
    let args = |force: bool| {
        let mut args = vec![
            "import".to_string(),
            "comply".to_string(),
            project.path().display().to_string(),
            destination.path().display().to_string(),
        ];
        if force {
            args.push("--force".to_string());
        }
        args
    };
    let first: Vec<String> = args(false);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    assert_eq!(procbot(&first).status.code(), Some(0));
    let second = procbot(&first);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stdout_of(&second).contains("already exists"),
        "{}",
        stdout_of(&second)
    );
    let forced: Vec<String> = args(true);
    let forced: Vec<&str> = forced.iter().map(String::as_str).collect();
    assert_eq!(procbot(&forced).status.code(), Some(0));
}

#[test]
fn broken_comply_files_are_named_and_the_rest_imported() {
    let project = TestRepo::new();
    project.write("patch.md", PATCH);
    project.write("no-delimiter.md", "# Only Markdown, no YAML\n");
    project.write("bad-yaml.md", "name: [unclosed\n---\n# X\n");
    let destination = TestRepo::new();
    let output = procbot(&[
        "import",
        "comply",
        project.path().to_str().unwrap(),
        destination.path().join("out").to_str().unwrap(),
    ]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no-delimiter.md: not imported"), "{stdout}");
    assert!(stdout.contains("bad-yaml.md: not imported"), "{stdout}");
    assert!(stdout.contains("imported 1 of 3"), "{stdout}");
    assert!(stdout.contains("--owner"), "{stdout}");
}

#[test]
fn a_missing_source_exits_2() {
    let destination = TestRepo::new();
    let output = procbot(&[
        "import",
        "comply",
        "/nonexistent/comply",
        destination.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
}
