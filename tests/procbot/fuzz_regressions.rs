//! The fuzz targets' findings, kept: every file under `tests/fuzz-regressions/<target>/` is
//! an input that once broke an invariant, replayed through the same check the target runs
//! (`fuzz_checks`). Inputs of the byte targets are the raw bytes; inputs of the renderer
//! targets are the message as JSON (what `cargo fuzz fmt` prints). The starter procedures
//! and the fuzzers' seeds go through the same checks.

use std::path::{Path, PathBuf};

use procbot::core::compose;
use procbot::core::message::Message;

use crate::fuzz_checks;
use crate::helpers::project_root;

/// How a target replays one kept input.
type Replay = fn(&[u8]);

/// The targets, and how each replays one kept input.
const TARGETS: &[(&str, Replay)] = &[
    ("procedure_file", fuzz_checks::procedure_file),
    ("directory", fuzz_checks::directory),
    ("chat_request", fuzz_checks::chat_request),
    ("slack_payloads", fuzz_checks::slack_payloads),
    ("discord_payloads", fuzz_checks::discord_payloads),
    ("slack_render", |bytes| {
        fuzz_checks::slack_render(&message(bytes))
    }),
    ("discord_render", |bytes| {
        fuzz_checks::discord_render(&message(bytes))
    }),
];

fn message(bytes: &[u8]) -> Message {
    serde_json::from_slice(bytes).unwrap_or_else(|error| panic!("not a message: {error}"))
}

fn files_in(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(folder: &Path) -> usize {
    let mut replayed = 0;
    for (target, check) in TARGETS {
        for file in files_in(&folder.join(target)) {
            let bytes = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{} fails again", file.display());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn every_kept_finding_stays_fixed() {
    let folder = project_root().join("tests/fuzz-regressions");
    let replayed = replay(&folder);
    assert!(replayed > 0, "no finding was replayed");
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !path.is_dir() || TARGETS.iter().any(|(target, _)| *target == name),
            "{} is no fuzz target's folder",
            path.display()
        );
    }
}

#[test]
fn the_seed_corpora_pass_the_checks() {
    let seeds = project_root().join("fuzz/seeds");
    assert!(replay(&seeds) >= 10, "the seed corpora are missing");
}

#[test]
fn the_starter_procedures_pass_the_procedure_file_checks() {
    let mut files = Vec::new();
    let mut folders = vec![project_root().join("procedures")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md")
                && path.file_name().is_some_and(|n| n != "README.md")
            {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 20, "{} procedures", files.len());
    for file in files {
        fuzz_checks::procedure_file(&std::fs::read(file).unwrap());
    }
    fuzz_checks::directory(
        &std::fs::read(project_root().join("procedures/directory.yaml")).unwrap(),
    );
}

#[test]
fn ordinary_messages_pass_the_render_checks() {
    for message in [fuzz_checks::every_block(), compose::help(), Message::new()] {
        fuzz_checks::slack_render(&message);
        fuzz_checks::discord_render(&message);
    }
}

#[test]
fn the_payload_seeds_are_payloads_procbot_reads() {
    use procbot::adapters::slack::http::{
        allowed_response_url, parse_command_form, parse_interaction_form, parse_push_event,
    };
    let seeds = project_root().join("fuzz/seeds");
    for file in files_in(&seeds.join("slack_payloads")) {
        let bytes = std::fs::read(&file).unwrap();
        let (kind, body) = bytes.split_first().unwrap();
        let read = match kind {
            0 => parse_command_form(body).map(|_| ()),
            1 => parse_interaction_form(body).map(|_| ()),
            2 => serde_json::from_slice::<slack_morphism::prelude::SlackInteractionEvent>(body)
                .map(|_| ())
                .map_err(Into::into),
            3 => parse_push_event(body).map(|_| ()),
            _ => {
                let base = url::Url::parse("https://slack.com/api/").unwrap();
                let url = String::from_utf8_lossy(body);
                assert!(allowed_response_url(&url, &base).is_some(), "{url}");
                Ok(())
            }
        };
        assert!(read.is_ok(), "{}: {read:?}", file.display());
    }
    for file in files_in(&seeds.join("discord_payloads")) {
        let bytes = std::fs::read(&file).unwrap();
        let interaction = procbot::adapters::discord::interaction::parse(&bytes);
        assert!(interaction.is_ok(), "{}: {interaction:?}", file.display());
    }
}
