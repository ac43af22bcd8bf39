//! The parser never panics, whatever bytes it is given.

use proptest::prelude::*;

use procbot::core::check::{SourceContent, SourceFile, check_repository};
use procbot::core::directory::Directory;
use procbot::core::parse::parse_procedure;

use crate::helpers::{clean_procedure, today};

/// Fragments that steer random input into the interesting parts of the parser.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("---\n".to_string()),
        Just("\r\n".to_string()),
        Just("\u{feff}".to_string()),
        Just("id: x\n".to_string()),
        Just("title: T\n".to_string()),
        Just("audience: [a, b@c.d, everyone]\n".to_string()),
        Just("schedule: \"*/5 1-3 * JAN-MAR 7\"\n".to_string()),
        Just("last_reviewed: 2026-02-29\n".to_string()),
        Just("a: &x [*x]\n".to_string()),
        Just("## Steps\n".to_string()),
        Just("1. step\n".to_string()),
        Just("   - [ ] sub\n".to_string()),
        Just("```\n".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("# ".to_string()),
        "[^\\x00]{0,20}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let parsed = parse_procedure("fuzz.md", &bytes);
        prop_assert!(parsed.procedure.is_some() || parsed.has_errors());
    }

    #[test]
    fn structured_noise_never_panics(fragments in proptest::collection::vec(fragment(), 0..24)) {
        let text = fragments.concat();
        let parsed = parse_procedure("fuzz.md", text.as_bytes());
        for diagnostic in &parsed.diagnostics {
            prop_assert!(diagnostic.position.line >= 1 && diagnostic.position.column >= 1);
        }
        let _ = Directory::parse("directory.yaml", &text);
    }

    #[test]
    fn mutated_procedures_never_panic(position in 0usize..600, byte in any::<u8>(), cut in 0usize..700) {
        let mut bytes = clean_procedure("mutant").into_bytes();
        let position = position.min(bytes.len() - 1);
        bytes[position] = byte;
        bytes.truncate(cut.max(1));
        let report = check_repository(
            vec![SourceFile { path: "m.md".into(), content: SourceContent::Bytes(bytes) }],
            None,
            today(),
        );
        prop_assert!(report.files.len() == 1);
    }
}

#[test]
fn pathological_inputs_are_handled() {
    let cases: Vec<Vec<u8>> = vec![
        format!("---\n{}\n---\n", "[".repeat(200_000)).into_bytes(),
        format!("---\na: {}\n---\n", "{".repeat(200_000)).into_bytes(),
        format!("# T\n\n## Steps\n{}", "1. a\n".repeat(100_000)).into_bytes(),
        format!(
            "# T\n\n## Steps\n{}",
            (0..5_000)
                .map(|depth| format!("{}- [ ] x\n", "  ".repeat(depth)))
                .collect::<String>()
        )
        .into_bytes(),
        format!("# T\n\n## Steps\n{}", ">".repeat(100_000)).into_bytes(),
        "---\n".repeat(100_000).into_bytes(),
        vec![b'\n'; 1_000_000],
    ];
    for bytes in cases {
        let _ = parse_procedure("p.md", &bytes);
    }
}
