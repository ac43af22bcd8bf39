//! `procbot check`: renders a check report for people (compiler-style) and for tools (JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::core::check::CheckReport;
use crate::core::diagnostic::Diagnostic;

/// Longest source line shown under a diagnostic; longer ones are cut around the column.
const SNIPPET_WIDTH: usize = 100;

fn plural(count: usize, word: &str) -> String {
    if count == 1 {
        format!("1 {word}")
    } else {
        format!("{count} {word}s")
    }
}

/// The closing summary line.
pub fn summary(report: &CheckReport) -> String {
    let files = report.files.len();
    let procedures = report.procedures().count();
    let problems = match (report.error_count(), report.warning_count()) {
        (0, 0) => "no problems found".to_string(),
        (errors, warnings) => format!(
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    };
    format!(
        "checked {} ({} served): {problems}",
        plural(files, "procedure file"),
        plural(procedures, "procedure")
    )
}

fn snippet(line_text: &str, column: u32) -> (String, usize) {
    let chars: Vec<char> = line_text.chars().collect();
    let column = (column as usize).saturating_sub(1).min(chars.len());
    if chars.len() <= SNIPPET_WIDTH {
        return (line_text.to_string(), column);
    }
    let start = column.saturating_sub(SNIPPET_WIDTH / 2);
    let end = (start + SNIPPET_WIDTH).min(chars.len());
    let mut text: String = chars[start..end].iter().collect();
    let mut caret = column - start;
    if start > 0 {
        text.insert(0, '…');
        caret += 1;
    }
    if end < chars.len() {
        text.push('…');
    }
    (text, caret)
}

fn render_one(output: &mut String, diagnostic: &Diagnostic, sources: &BTreeMap<String, String>) {
    let position = diagnostic.position;
    let _ = writeln!(
        output,
        "{}[{} {}]: {}",
        diagnostic.severity,
        diagnostic.code.code(),
        diagnostic.code.name(),
        diagnostic.message
    );
    let line_text = sources
        .get(&diagnostic.file)
        .and_then(|text| text.lines().nth(position.line as usize - 1))
        .map(|line| {
            // Binary and control characters would garble the terminal.
            line.trim_end_matches('\r')
                .chars()
                .map(|c| match c {
                    '\t' => ' ',
                    c if c.is_control() => '\u{fffd}',
                    c => c,
                })
                .collect::<String>()
        });
    let gutter = position.line.to_string().len();
    let _ = writeln!(
        output,
        "{:gutter$}--> {}:{}:{}",
        "", diagnostic.file, position.line, position.column
    );
    if let Some(line_text) = line_text.filter(|text| !text.trim().is_empty()) {
        let (text, caret) = snippet(&line_text, position.column);
        let _ = writeln!(output, "{:gutter$} |", "");
        let _ = writeln!(output, "{} | {text}", position.line);
        let _ = writeln!(output, "{:gutter$} | {:caret$}^", "", "");
    }
    let _ = writeln!(output, "{:gutter$} = help: {}", "", diagnostic.hint());
    output.push('\n');
}

/// Renders the report for a terminal. `sources` maps file paths to their text, for the
/// line shown under each diagnostic.
pub fn render_human(report: &CheckReport, sources: &BTreeMap<String, String>) -> String {
    let mut output = String::new();
    for diagnostic in &report.diagnostics {
        render_one(&mut output, diagnostic, sources);
    }
    output.push_str(&summary(report));
    output.push('\n');
    output
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    code: &'static str,
    name: &'static str,
    severity: &'static str,
    message: &'a str,
    hint: &'static str,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    files_checked: usize,
    procedures: usize,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

/// Renders the report as one JSON document, for tools.
pub fn render_json(report: &CheckReport) -> String {
    let json = JsonReport {
        files_checked: report.files.len(),
        procedures: report.procedures().count(),
        errors: report.error_count(),
        warnings: report.warning_count(),
        diagnostics: report
            .diagnostics
            .iter()
            .map(|diagnostic| JsonDiagnostic {
                file: &diagnostic.file,
                line: diagnostic.position.line,
                column: diagnostic.position.column,
                code: diagnostic.code.code(),
                name: diagnostic.code.name(),
                severity: diagnostic.severity.as_str(),
                message: &diagnostic.message,
                hint: diagnostic.hint(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&json)
        .unwrap_or_else(|error| format!("{{\"error\": \"could not render the report: {error}\"}}"));
    text.push('\n');
    text
}
