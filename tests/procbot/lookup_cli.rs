//! `procbot lookup` as people and tools run it.

use crate::helpers::{procbot, project_root, stdout_of};

fn procedures() -> String {
    project_root().join("procedures").display().to_string()
}

fn lookup_json(args: &[&str]) -> serde_json::Value {
    let procedures = procedures();
    let mut all = vec!["lookup", "--procedures", &procedures, "--json"];
    all.extend_from_slice(args);
    let output = procbot(&all);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout_of(&output)).unwrap()
}

#[test]
fn json_output_has_the_documented_shape_best_first() {
    let json = lookup_json(&["how", "do", "I", "back", "up", "the", "database?"]);
    assert_eq!(json["query"], "how do I back up the database?");
    let results = json["results"].as_array().unwrap();
    assert_eq!(results[0]["id"], "backup-customer-data");
    assert_eq!(results[0]["title"], "Back up the customer database");
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|pair| pair[0] >= pair[1]),
        "{scores:?}"
    );
    for result in results {
        let mut keys: Vec<&String> = result.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "score", "title"]);
    }
}

#[test]
fn typos_jargon_and_control_ids_find_the_procedure() {
    for (query, expected) in [
        ("bakcup", "backup-customer-data"),
        ("leaver", "offboarding-leaver"),
        ("new starter laptop", "onboarding-new-starter"),
        ("we've been hacked", "incident-response"),
        (
            "someone sent me a weird link",
            "phishing-and-suspicious-messages",
        ),
        (
            "someone gave me a weird link",
            "phishing-and-suspicious-messages",
        ),
        ("A.8.13", "backup-customer-data"),
        ("8.2", "privileged-access"),
    ] {
        let json = lookup_json(&[query]);
        assert_eq!(json["results"][0]["id"], expected, "{query}: {json}");
    }
}

#[test]
fn unrelated_questions_get_no_results() {
    let json = lookup_json(&["order", "pizza", "for", "the", "team"]);
    assert_eq!(json["results"], serde_json::json!([]));
    let output = procbot(&[
        "lookup",
        "--procedures",
        &procedures(),
        "order pizza for the team",
    ]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout.starts_with("No procedure matches “order pizza for the team”."),
        "{stdout}"
    );
}

#[test]
fn private_procedures_are_shown_only_to_their_audience() {
    // privileged-access is restricted to it-ops and security.
    let operator = lookup_json(&["break glass admin account"]);
    assert_eq!(operator["results"][0]["id"], "privileged-access");
    let insider = lookup_json(&["--as", "sam@example.com", "break glass admin account"]);
    assert_eq!(insider["results"][0]["id"], "privileged-access");
    let outsider = lookup_json(&["--as", "jo@example.com", "break glass admin account"]);
    let ids: Vec<&str> = outsider["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"privileged-access"), "{ids:?}");
    let stranger = lookup_json(&[
        "--as",
        "nobody@elsewhere.example",
        "break glass admin account",
    ]);
    assert!(!stranger.to_string().contains("privileged-access"));

    let output = procbot(&[
        "lookup",
        "--procedures",
        &procedures(),
        "break glass admin account",
    ]);
    assert!(stdout_of(&output).contains("[private: show only in a DM]"));
}

#[test]
fn limit_caps_the_results() {
    let json = lookup_json(&["--limit", "1", "backup"]);
    assert_eq!(json["results"].as_array().unwrap().len(), 1);
}

#[test]
fn batch_mode_prints_one_json_line_per_query() {
    use std::io::Write;
    let mut child =
        crate::helpers::procbot_command(&["lookup", "--procedures", &procedures(), "--batch"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"bakcup\n\norder pizza\nleaver\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout_of(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["results"][0]["id"], "backup-customer-data");
    assert_eq!(lines[1]["query"], "order pizza");
    assert_eq!(lines[1]["results"], serde_json::json!([]));
    assert_eq!(lines[2]["results"][0]["id"], "offboarding-leaver");
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(
        procbot(&["lookup", "--procedures", &procedures()])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        procbot(&["lookup", "--as", "not-an-email", "backup"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        procbot(&["lookup", "--procedures", "/nonexistent", "backup"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_repository_can_add_its_own_synonyms() {
    let repo = crate::helpers::TestRepo::new();
    repo.write("backup.md", crate::helpers::clean_procedure("backup"));
    let before = procbot(&[
        "lookup",
        "--procedures",
        repo.path().to_str().unwrap(),
        "--json",
        "tardis",
    ]);
    let before: serde_json::Value = serde_json::from_str(&stdout_of(&before)).unwrap();
    assert_eq!(before["results"], serde_json::json!([]));
    repo.write("synonyms.txt", "# our own words\nbackup, tardis\n");
    let after = procbot(&[
        "lookup",
        "--procedures",
        repo.path().to_str().unwrap(),
        "--json",
        "tardis",
    ]);
    let after: serde_json::Value = serde_json::from_str(&stdout_of(&after)).unwrap();
    assert_eq!(after["results"][0]["id"], "backup");
}
