//! One table test per diagnostic code: a repository that shows the problem, and the code,
//! file, position and severity `check` must report for it.

use std::collections::BTreeSet;

use procbot::core::check::{SourceContent, SourceFile, check_repository};
use procbot::core::diagnostic::{DiagnosticCode, Severity};

use crate::helpers::{DIRECTORY, clean_procedure, procedure_text, procedure_with, today};

struct Case {
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    expected_file: &'static str,
    code: DiagnosticCode,
    severity: Severity,
    /// The line the diagnostic must point at, when it matters.
    line: Option<u32>,
}

fn case(
    name: &'static str,
    files: Vec<(&'static str, String)>,
    expected_file: &'static str,
    code: DiagnosticCode,
    line: Option<u32>,
) -> Case {
    Case {
        name,
        files: files
            .into_iter()
            .map(|(p, t)| (p, t.into_bytes()))
            .collect(),
        expected_file,
        code,
        severity: code.default_severity(),
        line,
    }
}

fn cases() -> Vec<Case> {
    use DiagnosticCode::*;
    let mut cases = vec![
        case(
            "invalid yaml",
            vec![("a.md", "---\ntitle: [unclosed\nowner: x\n---\n# A\n".into())],
            "a.md",
            InvalidYaml,
            None,
        ),
        case(
            "unterminated front matter",
            vec![("a.md", "---\ntitle: A\n# A\n## Steps\n1. x\n".into())],
            "a.md",
            UnterminatedFrontMatter,
            Some(1),
        ),
        case(
            "missing owner",
            vec![("a.md", procedure_with("a", "owner", None))],
            "a.md",
            MissingOwner,
            Some(1),
        ),
        case(
            "missing title",
            vec![("a.md", procedure_with("a", "title", None))],
            "a.md",
            MissingTitle,
            Some(1),
        ),
        case(
            "missing audience",
            vec![("a.md", procedure_with("a", "audience", None))],
            "a.md",
            MissingAudience,
            Some(1),
        ),
        case(
            "empty audience",
            vec![("a.md", procedure_with("a", "audience", Some("[]")))],
            "a.md",
            MissingAudience,
            Some(1),
        ),
        case(
            "missing version",
            vec![("a.md", procedure_with("a", "version", None))],
            "a.md",
            MissingVersion,
            Some(1),
        ),
        case(
            "missing last_reviewed",
            vec![("a.md", procedure_with("a", "last_reviewed", None))],
            "a.md",
            MissingLastReviewed,
            Some(1),
        ),
        case(
            "no steps section",
            vec![(
                "a.md",
                procedure_text(
                    &crate::helpers::clean_fields("a"),
                    "# A\n\n## Purpose\nWhy.\n",
                ),
            )],
            "a.md",
            MissingSteps,
            None,
        ),
        case(
            "steps without numbers",
            vec![(
                "a.md",
                procedure_text(
                    &crate::helpers::clean_fields("a"),
                    "# A\n\n## Steps\n- do this\n- then that\n",
                ),
            )],
            "a.md",
            MissingSteps,
            None,
        ),
        case(
            "duplicate id across files",
            vec![
                ("a.md", clean_procedure("backup")),
                ("b/c.md", clean_procedure("backup")),
            ],
            "a.md",
            DuplicateId,
            Some(2),
        ),
        case(
            "unsafe id",
            vec![("a.md", procedure_with("x", "id", Some("\"../Etc Passwd\"")))],
            "a.md",
            InvalidId,
            Some(2),
        ),
        case(
            "unsafe id from the file name",
            vec![("Backup Plan.md", "# Backup\n\n## Steps\n1. x\n".into())],
            "Backup Plan.md",
            InvalidId,
            Some(1),
        ),
        case(
            "unknown classification",
            vec![(
                "a.md",
                procedure_with("a", "classification", Some("secret")),
            )],
            "a.md",
            UnknownClassification,
            Some(7),
        ),
        case(
            "impossible date",
            vec![(
                "a.md",
                procedure_with("a", "last_reviewed", Some("2026-02-30")),
            )],
            "a.md",
            InvalidDate,
            Some(9),
        ),
        case(
            "not a date",
            vec![(
                "a.md",
                procedure_with("a", "last_reviewed", Some("last spring")),
            )],
            "a.md",
            InvalidDate,
            Some(9),
        ),
        case(
            "unparsable review_every",
            vec![(
                "a.md",
                procedure_with("a", "review_every", Some("every so often")),
            )],
            "a.md",
            InvalidReviewInterval,
            Some(10),
        ),
        case(
            "unparsable schedule",
            vec![(
                "a.md",
                procedure_with("a", "schedule", Some("\"0 25 * * *\"")),
            )],
            "a.md",
            InvalidSchedule,
            Some(13),
        ),
        case(
            "six-field schedule",
            vec![(
                "a.md",
                procedure_with("a", "schedule", Some("\"0 0 9 * * MON\"")),
            )],
            "a.md",
            InvalidSchedule,
            Some(13),
        ),
        case(
            "bad version",
            vec![("a.md", procedure_with("a", "version", Some("one")))],
            "a.md",
            InvalidVersion,
            Some(8),
        ),
        case(
            "owner not in directory",
            vec![(
                "a.md",
                procedure_with("a", "owner", Some("ghost@example.com")),
            )],
            "a.md",
            UnknownOwner,
            Some(5),
        ),
        case(
            "audience team not in directory",
            vec![(
                "a.md",
                procedure_with("a", "audience", Some("[it-ops, finance]")),
            )],
            "a.md",
            UnknownAudience,
            Some(6),
        ),
        case(
            "audience person not in directory",
            vec![(
                "a.md",
                procedure_with("a", "audience", Some("[ghost@example.com]")),
            )],
            "a.md",
            UnknownAudience,
            Some(6),
        ),
        case(
            "review overdue",
            vec![(
                "a.md",
                procedure_with("a", "last_reviewed", Some("2025-01-15")),
            )],
            "a.md",
            ReviewOverdue,
            Some(9),
        ),
        case(
            "empty file",
            vec![("a.md", String::new())],
            "a.md",
            EmptyFile,
            Some(1),
        ),
        case(
            "white space only",
            vec![("a.md", " \n\n\t\n".into())],
            "a.md",
            EmptyFile,
            Some(1),
        ),
        case(
            "wrong type",
            vec![(
                "a.md",
                procedure_with("a", "owner", Some("[a@example.com, b@example.com]")),
            )],
            "a.md",
            WrongType,
            Some(5),
        ),
        case(
            "front matter is a list",
            vec![("a.md", "---\n- a\n- b\n---\n# A\n".into())],
            "a.md",
            WrongType,
            Some(2),
        ),
        case(
            "unknown field",
            vec![(
                "a.md",
                procedure_with("a", "ownr", Some("it-lead@example.com")),
            )],
            "a.md",
            UnknownField,
            Some(13),
        ),
        case(
            "owner not an email",
            vec![("a.md", procedure_with("a", "owner", Some("Ida Lead")))],
            "a.md",
            InvalidEmail,
            Some(5),
        ),
        case(
            "unknown control",
            vec![(
                "a.md",
                procedure_with("a", "controls", Some("[A.8.13, A.12.3.1]")),
            )],
            "a.md",
            UnknownControl,
            Some(11),
        ),
        case(
            "no front matter",
            vec![("a.md", "# A\n\n## Steps\n1. x\n".into())],
            "a.md",
            MissingFrontMatter,
            Some(1),
        ),
        case(
            "review in the future",
            vec![(
                "a.md",
                procedure_with("a", "last_reviewed", Some("2027-03-01")),
            )],
            "a.md",
            LastReviewedInFuture,
            Some(9),
        ),
        case(
            "approver not in directory",
            vec![(
                "a.md",
                procedure_with("a", "approver", Some("ghost@example.com")),
            )],
            "a.md",
            UnknownApprover,
            Some(13),
        ),
        case(
            "field written twice",
            vec![("a.md", procedure_with("a", "title", Some("A\ntitle: B")))],
            "a.md",
            DuplicateField,
            Some(4),
        ),
        case(
            "run_by without a schedule",
            vec![("a.md", procedure_with("a", "run_by", Some("[it-ops]")))],
            "a.md",
            RunByWithoutSchedule,
            Some(13),
        ),
    ];
    cases.push(Case {
        name: "binary file",
        files: vec![("logo.md", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec())],
        expected_file: "logo.md",
        code: BinaryFile,
        severity: Severity::Error,
        line: Some(3),
    });
    cases.push(Case {
        name: "not UTF-8",
        files: vec![("a.md", b"---\ntitle: Caf\xe9\n---\n".to_vec())],
        expected_file: "a.md",
        code: NotUtf8,
        severity: Severity::Error,
        line: Some(2),
    });
    cases
}

#[test]
fn every_diagnostic_code_has_a_table_case_that_triggers_it() {
    let mut covered = BTreeSet::new();
    for case in cases() {
        let sources = case
            .files
            .iter()
            .map(|(path, bytes)| SourceFile {
                path: path.to_string(),
                content: SourceContent::Bytes(bytes.clone()),
            })
            .collect();
        let directory = SourceFile {
            path: "directory.yaml".into(),
            content: SourceContent::Bytes(DIRECTORY.as_bytes().to_vec()),
        };
        let report = check_repository(sources, Some(directory), today());
        let found = report
            .diagnostics
            .iter()
            .find(|d| d.code == case.code && d.file == case.expected_file);
        let Some(found) = found else {
            panic!(
                "{}: expected {} in {}, got {:#?}",
                case.name, case.code, case.expected_file, report.diagnostics
            );
        };
        assert_eq!(found.severity, case.severity, "{}: {found:?}", case.name);
        if let Some(line) = case.line {
            assert_eq!(found.position.line, line, "{}: {found:?}", case.name);
        }
        assert!(
            !found.message.is_empty() && !found.hint().is_empty(),
            "{}",
            case.name
        );
        covered.insert(case.code);
    }
    // Directory problems and unreadable files have their own cases below.
    covered.insert(DiagnosticCode::InvalidDirectory);
    covered.insert(DiagnosticCode::UnreadableFile);
    let missing: Vec<_> = DiagnosticCode::ALL
        .iter()
        .filter(|code| !covered.contains(code))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a table case: {missing:?}"
    );
}

#[test]
fn a_clean_procedure_has_no_diagnostics() {
    let sources = vec![SourceFile {
        path: "ops/backup.md".into(),
        content: SourceContent::Bytes(clean_procedure("backup").into_bytes()),
    }];
    let directory = SourceFile {
        path: "directory.yaml".into(),
        content: SourceContent::Bytes(DIRECTORY.as_bytes().to_vec()),
    };
    let report = check_repository(sources, Some(directory), today());
    assert_eq!(report.diagnostics, []);
    assert_eq!(report.procedures().count(), 1);
}

#[test]
fn directory_problems_are_reported_against_directory_yaml() {
    let cases = [
        ("teams: [not, a, mapping]\n", "must map team names"),
        ("people:\n  not-an-email: { name: X }\n", "not-an-email"),
        ("teams:\n  ops: [a@example.com\n", "not valid YAML"),
        (
            "people:\n  a@example.com: { manager: boss@example.com }\n",
            "boss@example.com",
        ),
    ];
    for (text, expected) in cases {
        let directory = SourceFile {
            path: "directory.yaml".into(),
            content: SourceContent::Bytes(text.as_bytes().to_vec()),
        };
        let report = check_repository(Vec::new(), Some(directory), today());
        let found = report
            .diagnostics
            .iter()
            .find(|d| d.code == DiagnosticCode::InvalidDirectory && d.file == "directory.yaml")
            .unwrap_or_else(|| panic!("{text}: {:?}", report.diagnostics));
        assert!(
            found.message.contains(expected),
            "{text}: {}",
            found.message
        );
        assert!(found.is_error());
    }
}

#[test]
fn unreadable_files_are_reported_and_do_not_hide_others() {
    let sources = vec![
        SourceFile {
            path: "a.md".into(),
            content: SourceContent::Unreadable("permission denied".into()),
        },
        SourceFile {
            path: "b.md".into(),
            content: SourceContent::Bytes(procedure_with("b", "owner", None).into_bytes()),
        },
    ];
    let report = check_repository(sources, None, today());
    let codes: Vec<(&str, DiagnosticCode)> = report
        .diagnostics
        .iter()
        .map(|d| (d.file.as_str(), d.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("a.md", DiagnosticCode::UnreadableFile),
            ("b.md", DiagnosticCode::MissingOwner)
        ]
    );
}

#[test]
fn without_a_directory_people_and_teams_are_not_checked() {
    let sources = vec![SourceFile {
        path: "a.md".into(),
        content: SourceContent::Bytes(
            procedure_with("a", "owner", Some("anyone@example.com")).into_bytes(),
        ),
    }];
    let report = check_repository(sources, None, today());
    assert_eq!(report.diagnostics, []);
}

#[test]
fn codes_and_names_are_unique_and_stable() {
    let codes: BTreeSet<&str> = DiagnosticCode::ALL.iter().map(|c| c.code()).collect();
    let names: BTreeSet<&str> = DiagnosticCode::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(codes.len(), DiagnosticCode::ALL.len());
    assert_eq!(names.len(), DiagnosticCode::ALL.len());
    assert_eq!(
        DiagnosticCode::MissingOwner.to_string(),
        "P003 missing-owner"
    );
    for (index, code) in DiagnosticCode::ALL.iter().enumerate() {
        assert_eq!(code.code(), format!("P{:03}", index + 1));
    }
}
