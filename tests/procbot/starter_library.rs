//! The bundled `procedures/` folder: clean, complete and covering what the product promises.

use std::collections::BTreeSet;

use procbot::core::check::check_repository;
use procbot::core::procedure::SectionKind;
use procbot::repo::{DIRECTORY_FILE, read_folder};

use crate::helpers::{TODAY, procbot, project_root, stdout_of, today};

#[test]
fn procbot_check_procedures_is_clean() {
    let folder = project_root().join("procedures");
    let output = procbot(&["check", folder.to_str().unwrap(), "--today", TODAY]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.ends_with("no problems found\n"), "{stdout}");
}

#[test]
fn the_library_covers_the_promised_controls_and_topics() {
    let files = read_folder(
        &project_root().join("procedures"),
        std::path::Path::new(DIRECTORY_FILE),
    )
    .unwrap();
    let report = check_repository(files.procedures, files.directory, today());
    let procedures: Vec<_> = report.procedures().collect();
    assert!(
        procedures.len() >= 20,
        "only {} procedures",
        procedures.len()
    );

    let controls: BTreeSet<String> = procedures
        .iter()
        .flat_map(|p| p.controls.iter().map(ToString::to_string))
        .collect();
    for control in [
        "A.5.37", "A.8.9", "A.5.22", "A.8.13", "A.8.1", "A.8.2", "A.8.25", "A.5.10", "A.5.15",
        "A.5.16",
    ] {
        assert!(controls.contains(control), "no procedure covers {control}");
    }
    let ids: BTreeSet<&str> = procedures.iter().map(|p| p.id.as_str()).collect();
    for id in [
        "onboarding-new-starter",
        "offboarding-leaver",
        "incident-response",
        "training-data-handling",
        "restore-testing",
        "secure-deletion",
    ] {
        assert!(ids.contains(id), "missing {id}");
    }
    for procedure in &procedures {
        for kind in [
            SectionKind::Purpose,
            SectionKind::Roles,
            SectionKind::Steps,
            SectionKind::IfSomethingGoesWrong,
            SectionKind::Records,
        ] {
            assert!(
                procedure.section(kind).is_some(),
                "{} has no {kind:?} section",
                procedure.id
            );
        }
        assert!(
            procedure.steps.len() >= 3,
            "{} has {} steps",
            procedure.id,
            procedure.steps.len()
        );
        assert!(
            !procedure.keywords.is_empty(),
            "{} has no keywords",
            procedure.id
        );
        assert!(
            procedure.summary.is_some(),
            "{} has no summary",
            procedure.id
        );
    }
    assert!(procedures.iter().any(|p| p.classification.is_private()));
    assert!(procedures.iter().any(|p| p.schedule.is_some()));
}
