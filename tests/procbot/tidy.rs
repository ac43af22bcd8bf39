//! House rules that the compiler cannot check: module docs, and the core's isolation.

use std::path::Path;

use crate::helpers::project_root;

fn rust_files(folder: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_module_starts_with_a_doc_line_saying_what_it_owns() {
    let mut files = Vec::new();
    rust_files(&project_root().join("src"), &mut files);
    rust_files(&project_root().join("tests"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//! "),
            "{} does not start with a `//!` line",
            file.display()
        );
    }
}

#[test]
fn core_does_no_io_and_imports_no_platform_crate() {
    let mut files = Vec::new();
    rust_files(&project_root().join("src/core"), &mut files);
    let forbidden = [
        "slack_morphism",
        "serenity",
        "sqlx",
        "axum",
        "reqwest",
        "tokio",
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "crate::repo",
        "crate::http",
        "crate::config",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Comments may name what the core stays away from; code may not use it.
        let code: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for word in forbidden {
            assert!(!code.contains(word), "{} uses `{word}`", file.display());
        }
    }
}

#[test]
fn no_ignored_tests_or_placeholders() {
    let mut files = Vec::new();
    rust_files(&project_root().join("src"), &mut files);
    rust_files(&project_root().join("tests"), &mut files);
    let ignore = ["#[", "ignore"].concat();
    let todo = ["todo", "!("].concat();
    let unimplemented = ["unimplemented", "!("].concat();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in [&ignore, &todo, &unimplemented] {
            assert!(
                !text.contains(word.as_str()),
                "{} contains `{word}`",
                file.display()
            );
        }
    }
}
