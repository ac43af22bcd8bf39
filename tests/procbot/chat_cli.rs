//! `procbot chat`, `procbot report` and `procbot audit verify` as a person runs them: the
//! binary, a folder of procedures, a SQLite file, lines on standard input.

use std::io::Write;
use std::process::{Output, Stdio};

use crate::helpers::{DIRECTORY, TestRepo, clean_procedure, procbot_command, stdout_of};

struct Workspace {
    repo: TestRepo,
    data: TestRepo,
}

impl Workspace {
    fn new() -> Workspace {
        let repo = TestRepo::new();
        repo.write("directory.yaml", DIRECTORY);
        repo.write("backup.md", clean_procedure("backup"));
        Workspace {
            repo,
            data: TestRepo::new(),
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = procbot_command(args);
        command
            .current_dir(self.data.path())
            .env("PROCBOT_PROCEDURES__PATH", self.repo.path())
            .env(
                "PROCBOT_DATABASE__URL",
                format!(
                    "sqlite://{}",
                    self.data.path().join("evidence.db").display()
                ),
            );
        command
    }

    fn chat(&self, who: &str, input: &str) -> Output {
        let mut child = self
            .command(&["chat", "--as", who])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

#[test]
fn a_person_reads_acknowledges_and_the_evidence_is_reported_and_verified() {
    let workspace = Workspace::new();
    let output = workspace.chat(
        "sam@example.com",
        "/procedure pending\nhow do I take the nightly backup?\nack backup\nack backup\n/procedure pending\nquit\n",
    );
    assert_eq!(output.status.code(), Some(0));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("You are Sam Ops."), "{stdout}");
    assert!(
        stdout.contains(
            "[DM] procbot:\nHi Sam Ops, there is a procedure for you to read and acknowledge."
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("== Back up the customer database v1.2.0 =="),
        "{stdout}"
    );
    assert!(
        stdout.contains("  1. Log in to the backup console."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Acknowledged Back up the customer database v1.2.0 at "),
        "{stdout}"
    );
    assert!(stdout.contains("You already acknowledged"), "{stdout}");
    assert!(stdout.contains("all caught up"), "{stdout}");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("INFO"),
        "chat logs warnings only"
    );

    // The next start announces nothing again.
    let again = workspace.chat("sam@example.com", "pending\n");
    let again = stdout_of(&again);
    assert!(!again.contains("[DM]"), "{again}");
    assert!(again.contains("all caught up"), "{again}");

    let csv = workspace.run(&["report", "--format", "csv"]);
    assert_eq!(
        csv.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&csv.stderr)
    );
    let csv = stdout_of(&csv);
    assert!(
        csv.starts_with("procedure_id,title,version,content_hash,status,"),
        "{csv}"
    );
    let sam = csv.lines().find(|l| l.contains("sam@example.com")).unwrap();
    assert!(
        sam.contains(",1.2.0,") && sam.contains(",true,acknowledged,"),
        "{sam}"
    );
    assert!(sam.contains(",console,sam@example.com,"), "{sam}");
    let lead = csv
        .lines()
        .find(|l| l.contains("it-lead@example.com"))
        .unwrap();
    assert!(lead.contains(",true,pending,"), "{lead}");

    let report_file = workspace.data.path().join("report.json");
    let json = workspace.run(&[
        "report",
        "--format",
        "json",
        "--out",
        report_file.to_str().unwrap(),
    ]);
    assert_eq!(json.status.code(), Some(0));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    let version = &json["versions"][0];
    assert_eq!(version["procedure_id"], "backup");
    assert_eq!(version["required"], 4);
    assert_eq!(version["acknowledged"], 1);
    assert_eq!(
        version["pending"],
        serde_json::json!(["ana@example.com", "cto@example.com", "it-lead@example.com"])
    );
    assert_eq!(
        json["ledger"]["verification"]["problem"],
        serde_json::Value::Null
    );
    assert!(json["ledger"]["entries"].as_i64().unwrap() >= 3);
    assert_eq!(json["ledger"]["head_hash"].as_str().unwrap().len(), 64);

    let html = workspace.run(&["report", "--format", "html"]);
    assert_eq!(html.status.code(), Some(0));
    let html = stdout_of(&html);
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(
        html.contains("Back up the customer database v1.2.0"),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"pending\">pending</td>"),
        "{html}"
    );
    assert!(html.contains("@page { size: A4") || html.contains("/static/style.css"));

    // The CSV's header and one row, as auditors' spreadsheets see them.
    let header_and_sam: Vec<String> = csv
        .lines()
        .take(1)
        .chain(csv.lines().filter(|l| l.contains("sam@example.com")))
        .map(|line| {
            // The hash and the times change from run to run.
            line.split(',')
                .enumerate()
                .map(|(n, cell)| match n {
                    3 if cell.len() == 64 => "<hash>".to_string(),
                    5 | 9 if cell.contains('T') => "<time>".to_string(),
                    _ => cell.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    insta::assert_snapshot!(header_and_sam.join("\n"));

    let verify = workspace.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0));
    assert!(
        stdout_of(&verify).starts_with("ledger intact: "),
        "{}",
        stdout_of(&verify)
    );
}

#[test]
fn audit_verify_names_a_tampered_entry_and_exits_1() {
    let workspace = Workspace::new();
    workspace.chat("sam@example.com", "ack backup\n");
    workspace.chat("it-lead@example.com", "ack backup\n");
    let database = workspace.data.path().join("evidence.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = procbot::store::Store::connect(&format!("sqlite://{}", database.display()))
            .await
            .unwrap();
        let entries = store.ledger_entries(1, 100).await.unwrap();
        let sam = entries
            .iter()
            .find(|e| e.kind == "acknowledgement" && e.payload.contains("sam@example.com"))
            .unwrap();
        sqlx::query("UPDATE ledger SET recorded_at = recorded_at - 86400000 WHERE seq = $1")
            .bind(sam.seq)
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
    });
    let verify = workspace.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let text = stdout_of(&verify);
    assert!(text.contains("ledger BROKEN at entry"), "{text}");
    assert!(text.contains("was altered"), "{text}");
}

#[test]
fn hostile_chat_input_gets_answers_not_crashes() {
    let workspace = Workspace::new();
    let long = "x".repeat(100_000);
    let input = format!(
        "click ack/../../etc/passwd\nclick rv/zz/backup/00\nclick\n\u{0}\u{7}pending\n{long}\n@everyone <!channel> help\nshow ../backup\nack\nreview backup\n/procedure\n"
    );
    let output = workspace.chat("nobody@example.com", &input);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = stdout_of(&output);
    assert!(stdout.contains("I did not understand"), "{stdout}");
    assert!(stdout.contains("No procedure matches"), "{stdout}");
    assert!(
        stdout.contains("== procbot: your procedures, in chat =="),
        "{stdout}"
    );
    assert!(
        stdout.contains("Only the owner (it-lead@example.com)"),
        "{stdout}"
    );
    assert!(!stdout.contains("panicked"), "{stdout}");
}

#[test]
fn an_unreachable_or_unsupported_database_is_a_clear_error() {
    let workspace = Workspace::new();
    let output = workspace
        .command(&["chat"])
        .env(
            "PROCBOT_DATABASE__URL",
            "postgres://procbot@127.0.0.1:1/none",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("opening the database (database.url)"),
        "{stderr}"
    );
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");

    let output = workspace
        .command(&["report"])
        .env("PROCBOT_DATABASE__URL", "mysql://x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("database.url"));
}

#[test]
fn reminders_at_a_moment_is_a_dry_run_in_the_documented_shape() {
    let workspace = Workspace::new();
    workspace.chat("sam@example.com", "pending\n");
    let later = (chrono::Utc::now() + chrono::Duration::days(35))
        .format("%Y-%m-%d")
        .to_string();
    // A weekday at 10:00 five weeks on: every pending acknowledgement is past its escalation
    // (15 working days) by then. Three weeks was exactly 15 working days, one short when the
    // test ran late in the UTC evening and Ida's Berlin date had already turned.
    let moment = (0..7)
        .map(|n| {
            chrono::NaiveDate::parse_from_str(&later, "%Y-%m-%d").unwrap()
                + chrono::Duration::days(n)
        })
        .find(|d| chrono::Datelike::weekday(d).num_days_from_monday() < 5)
        .unwrap();
    let at = format!("{moment}T10:00:00Z");
    let run = || workspace.run(&["reminders", "--at", &at, "--json"]);
    let output = run();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(json["at"], format!("{moment}T10:00:00Z"));
    let messages = json["messages"].as_array().unwrap();
    let sam = messages
        .iter()
        .find(|m| m["kind"] == "ack_reminder" && m["to"] == "sam@example.com")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(sam["procedures"], serde_json::json!(["backup"]));
    // Sam's manager is nobody, Ida's is the CTO: escalations go to managers only.
    assert!(
        messages
            .iter()
            .any(|m| m["kind"] == "ack_escalation" && m["to"] == "cto@example.com")
    );
    // A dry run sends and records nothing: the same moment plans the same again.
    assert_eq!(stdout_of(&run()), stdout_of(&output));
    let bad = workspace.run(&["reminders", "--at", "tomorrow-ish"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a moment"));
}
