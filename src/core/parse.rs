//! Reading one procedure file: bytes in, a `Procedure` and its diagnostics out.
//!
//! The parser never fails and never panics: every problem becomes a diagnostic, and the
//! procedure is returned whenever the file is readable enough to serve (it has an id and
//! its front matter, if any, is valid YAML). Repository-wide rules (unique ids, people in the
//! directory, overdue reviews) live in `core::check`, which needs more than one file.

use std::collections::BTreeMap;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::core::diagnostic::{Diagnostic, DiagnosticCode, Position, Severity};
use crate::core::procedure::{
    AudienceMember, Classification, ControlId, Email, Procedure, ProcedureId, ReviewInterval,
    Section, SectionKind, Step, Version, parse_iso_date,
};
use crate::core::schedule::Schedule;
use crate::core::yaml::{YamlNode, YamlValue, parse_yaml};

/// The front-matter fields procbot knows. Anything else is reported as a likely typo.
pub const KNOWN_FIELDS: &[&str] = &[
    "id",
    "title",
    "summary",
    "owner",
    "audience",
    "classification",
    "version",
    "last_reviewed",
    "review_every",
    "controls",
    "frameworks",
    "keywords",
    "schedule",
    "approver",
    "run_by",
];

/// Nested steps deeper than this are folded into their parent's text.
const MAX_STEP_DEPTH: usize = 8;

/// The result of reading one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedFile {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    /// `None` when the file cannot be served at all (unreadable, broken front matter, bad id).
    pub procedure: Option<Procedure>,
    pub diagnostics: Vec<Diagnostic>,
    /// Where each front-matter field was written, for diagnostics that need other files.
    pub field_positions: BTreeMap<&'static str, Position>,
}

impl ParsedFile {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn position_of(&self, field: &str) -> Position {
        self.field_positions
            .get(field)
            .copied()
            .unwrap_or(Position::START)
    }
}

/// The file stem of a `/`-separated path: `ops/backup.md` → `backup`.
pub fn file_stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind('.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    }
}

/// Converts byte offsets into 1-based line and character column.
struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    first_line: u32,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str, first_line: u32) -> LineIndex<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(index, _)| index + 1));
        LineIndex {
            text,
            line_starts,
            first_line,
        }
    }

    fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(line) => line,
            Err(next) => next - 1,
        };
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map(|prefix| prefix.chars().count())
            .unwrap_or(0);
        Position::new(
            u32::try_from(line)
                .unwrap_or(u32::MAX)
                .saturating_add(self.first_line),
            u32::try_from(column).unwrap_or(u32::MAX).saturating_add(1),
        )
    }
}

/// Line and column of a byte offset in raw bytes that may not be UTF-8.
fn byte_position(bytes: &[u8], offset: usize) -> Position {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Position::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

struct FileParser<'a> {
    path: &'a str,
    diagnostics: Vec<Diagnostic>,
    field_positions: BTreeMap<&'static str, Position>,
    /// Missing required fields are errors with front matter and warnings without it: a plain
    /// Markdown file is still served as a procedure.
    missing_severity: Severity,
}

impl FileParser<'_> {
    fn report(&mut self, position: Position, code: DiagnosticCode, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.path, position, code, message));
    }
}

/// Reads one procedure file.
pub fn parse_procedure(path: &str, bytes: &[u8]) -> ParsedFile {
    let mut parser = FileParser {
        path,
        diagnostics: Vec::new(),
        field_positions: BTreeMap::new(),
        missing_severity: Severity::Error,
    };
    let procedure = parse_into(&mut parser, bytes);
    ParsedFile {
        path: path.to_string(),
        procedure,
        diagnostics: parser.diagnostics,
        field_positions: parser.field_positions,
    }
}

fn parse_into(parser: &mut FileParser<'_>, bytes: &[u8]) -> Option<Procedure> {
    if bytes.is_empty() {
        parser.report(
            Position::START,
            DiagnosticCode::EmptyFile,
            "the file is empty",
        );
        return None;
    }
    if let Some(nul) = bytes.iter().position(|b| *b == 0) {
        parser.report(
            byte_position(bytes, nul),
            DiagnosticCode::BinaryFile,
            "the file contains NUL bytes: it looks like a binary file, not Markdown",
        );
        return None;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let offset = error.valid_up_to();
            parser.report(
                byte_position(bytes, offset),
                DiagnosticCode::NotUtf8,
                format!(
                    "the file is not valid UTF-8 (byte 0x{:02x} at offset {offset})",
                    bytes[offset]
                ),
            );
            return None;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalised;
    let text = if text.contains('\r') {
        normalised = text.replace("\r\n", "\n");
        normalised.as_str()
    } else {
        text
    };
    if text.trim().is_empty() {
        parser.report(
            Position::START,
            DiagnosticCode::EmptyFile,
            "the file has no content, only white space",
        );
        return None;
    }

    let (front_matter, body, body_first_line) = match split_front_matter(text) {
        FrontMatterSplit::None => (None, text, 1),
        FrontMatterSplit::Unterminated => {
            parser.report(
                Position::START,
                DiagnosticCode::UnterminatedFrontMatter,
                "the front matter opened on line 1 is never closed with a `---` line",
            );
            return None;
        }
        FrontMatterSplit::Found {
            yaml,
            body,
            body_first_line,
        } => (Some(yaml), body, body_first_line),
    };

    let fields = match front_matter {
        None => {
            parser.missing_severity = Severity::Warning;
            parser.report(
                Position::START,
                DiagnosticCode::MissingFrontMatter,
                "the file has no front matter; it is served with its title from the first heading and its id from the file name",
            );
            FrontMatter::default()
        }
        Some(yaml) => match parse_yaml(yaml, 2) {
            Ok(None) => FrontMatter::default(),
            Ok(Some(root)) => match &root.value {
                YamlValue::Mapping(entries) => read_front_matter(parser, entries),
                _ if root.is_null() => FrontMatter::default(),
                _ => {
                    parser.report(
                        root.position,
                        DiagnosticCode::WrongType,
                        format!(
                            "the front matter must be `key: value` lines, found {}",
                            root.kind_name()
                        ),
                    );
                    return None;
                }
            },
            Err(error) => {
                parser.report(
                    error.position,
                    DiagnosticCode::InvalidYaml,
                    format!("the front matter is not valid YAML: {}", error.message),
                );
                return None;
            }
        },
    };

    let body_view = read_body(body, body_first_line);
    let has_front_matter = front_matter.is_some();

    let id = match fields.id {
        FieldValue::Valid(id) => id,
        FieldValue::Invalid => return None,
        FieldValue::Missing => {
            let stem = file_stem(parser.path);
            match ProcedureId::parse(stem) {
                Ok(id) => id,
                Err(message) => {
                    parser.report(
                        Position::START,
                        DiagnosticCode::InvalidId,
                        format!("the id comes from the file name, and {message}; add an `id:` field or rename the file"),
                    );
                    return None;
                }
            }
        }
    };

    let severity = parser.missing_severity;
    let missing = |parser: &mut FileParser<'_>, code: DiagnosticCode, field: &str| {
        parser.diagnostics.push(
            Diagnostic::new(
                parser.path,
                Position::START,
                code,
                format!("the required field `{field}` is missing"),
            )
            .with_severity(severity),
        );
    };
    let title = match fields.title {
        FieldValue::Valid(title) => title,
        other => {
            if matches!(other, FieldValue::Missing) {
                missing(parser, DiagnosticCode::MissingTitle, "title");
            }
            body_view
                .title
                .clone()
                .unwrap_or_else(|| file_stem(parser.path).replace(['-', '_'], " "))
        }
    };
    if fields.owner.is_missing() {
        missing(parser, DiagnosticCode::MissingOwner, "owner");
    }
    if fields.audience.is_missing() {
        missing(parser, DiagnosticCode::MissingAudience, "audience");
    }
    if fields.version.is_missing() {
        missing(parser, DiagnosticCode::MissingVersion, "version");
    }
    if fields.last_reviewed.is_missing() {
        missing(parser, DiagnosticCode::MissingLastReviewed, "last_reviewed");
    }
    if body_view.steps.is_empty() {
        let (position, message) = match &body_view.steps_section_line {
            Some(line) if body_view.unnumbered_items > 0 => (
                Position::new(*line, 1),
                "the Steps section has bullet points but no numbered steps".to_string(),
            ),
            Some(line) => (
                Position::new(*line, 1),
                "the Steps section has no numbered steps".to_string(),
            ),
            None => (
                Position::new(body_first_line, 1),
                "there is no `## Steps` section (or `## Procedure`)".to_string(),
            ),
        };
        parser.diagnostics.push(
            Diagnostic::new(parser.path, position, DiagnosticCode::MissingSteps, message)
                .with_severity(severity),
        );
    }

    Some(Procedure {
        id,
        path: parser.path.to_string(),
        title,
        summary: fields.summary,
        owner: fields.owner.valid(),
        audience: fields.audience.valid().unwrap_or_default(),
        classification: fields.classification.unwrap_or_default(),
        version: fields.version.valid(),
        last_reviewed: fields.last_reviewed.valid(),
        review_every: fields.review_every.unwrap_or_default(),
        controls: fields.controls,
        frameworks: fields.frameworks,
        keywords: fields.keywords,
        schedule: fields.schedule,
        approver: fields.approver,
        run_by: fields.run_by,
        has_front_matter,
        sections: body_view.sections,
        steps: body_view.steps,
        body: body.to_string(),
    })
}

enum FrontMatterSplit<'a> {
    None,
    Unterminated,
    Found {
        yaml: &'a str,
        body: &'a str,
        body_first_line: u32,
    },
}

fn is_delimiter(line: &str) -> bool {
    line.trim_end() == "---"
}

fn split_front_matter(text: &str) -> FrontMatterSplit<'_> {
    let first_line_end = text.find('\n').unwrap_or(text.len());
    if !is_delimiter(&text[..first_line_end]) {
        return FrontMatterSplit::None;
    }
    let yaml_start = (first_line_end + 1).min(text.len());
    let mut line_start = yaml_start;
    let mut line_number: u32 = 2;
    while line_start < text.len() {
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i);
        if is_delimiter(&text[line_start..line_end]) {
            let body_start = (line_end + 1).min(text.len());
            return FrontMatterSplit::Found {
                yaml: &text[yaml_start..line_start],
                body: &text[body_start..],
                body_first_line: line_number + 1,
            };
        }
        line_start = line_end + 1;
        line_number = line_number.saturating_add(1);
    }
    FrontMatterSplit::Unterminated
}

/// A front-matter field: absent, present but refused (already reported), or valid.
#[derive(Default)]
enum FieldValue<T> {
    #[default]
    Missing,
    Invalid,
    Valid(T),
}

impl<T> FieldValue<T> {
    fn is_missing(&self) -> bool {
        matches!(self, FieldValue::Missing)
    }

    fn valid(self) -> Option<T> {
        match self {
            FieldValue::Valid(value) => Some(value),
            _ => None,
        }
    }
}

#[derive(Default)]
struct FrontMatter {
    id: FieldValue<ProcedureId>,
    title: FieldValue<String>,
    summary: Option<String>,
    owner: FieldValue<Email>,
    audience: FieldValue<Vec<AudienceMember>>,
    classification: Option<Classification>,
    version: FieldValue<Version>,
    last_reviewed: FieldValue<chrono::NaiveDate>,
    review_every: Option<ReviewInterval>,
    controls: Vec<ControlId>,
    frameworks: BTreeMap<String, Vec<String>>,
    keywords: Vec<String>,
    schedule: Option<Schedule>,
    approver: Option<Email>,
    run_by: Vec<AudienceMember>,
}

/// A scalar field's text, or a wrong-type diagnostic. Empty values count as missing.
fn scalar<'n>(parser: &mut FileParser<'_>, field: &str, node: &'n YamlNode) -> Option<&'n str> {
    if node.is_null() {
        return None;
    }
    match node.as_scalar() {
        Some(text) if text.trim().is_empty() => None,
        Some(text) => Some(text.trim()),
        None => {
            parser.report(
                node.position,
                DiagnosticCode::WrongType,
                format!(
                    "`{field}` must be a single value, found {}",
                    node.kind_name()
                ),
            );
            None
        }
    }
}

/// A list field's items: a YAML list, or one comma-separated value.
fn list<'n>(
    parser: &mut FileParser<'_>,
    field: &str,
    node: &'n YamlNode,
) -> Option<Vec<(&'n str, Position)>> {
    if node.is_null() {
        return Some(Vec::new());
    }
    match &node.value {
        YamlValue::Scalar { text, .. } => Some(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| (item, node.position))
                .collect(),
        ),
        YamlValue::Sequence(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match item.as_scalar() {
                    Some(text) if !item.is_null() => values.push((text.trim(), item.position)),
                    _ => parser.report(
                        item.position,
                        DiagnosticCode::WrongType,
                        format!(
                            "each entry of `{field}` must be a single value, found {}",
                            item.kind_name()
                        ),
                    ),
                }
            }
            Some(values)
        }
        YamlValue::Mapping(_) => {
            parser.report(
                node.position,
                DiagnosticCode::WrongType,
                format!("`{field}` must be a list like `[a, b]`, found a mapping"),
            );
            None
        }
    }
}

fn parse_field<T>(
    parser: &mut FileParser<'_>,
    field: &str,
    node: &YamlNode,
    code: DiagnosticCode,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> FieldValue<T> {
    let wrong_type = node.as_scalar().is_none();
    match scalar(parser, field, node) {
        None if wrong_type => FieldValue::Invalid,
        None => FieldValue::Missing,
        Some(text) => match parse(text) {
            Ok(value) => FieldValue::Valid(value),
            Err(message) => {
                parser.report(node.position, code, message);
                FieldValue::Invalid
            }
        },
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b_chars.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b_chars.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b_chars.len()]
}

fn suggest_field(unknown: &str) -> Option<&'static str> {
    let normalised = unknown.to_ascii_lowercase().replace(['-', ' '], "_");
    KNOWN_FIELDS
        .iter()
        .map(|known| (edit_distance(&normalised, known), *known))
        .filter(|(distance, known)| *distance <= 2.max(known.len() / 4))
        .min()
        .map(|(_, known)| known)
}

fn read_front_matter(parser: &mut FileParser<'_>, entries: &[(YamlNode, YamlNode)]) -> FrontMatter {
    let mut fields = FrontMatter::default();
    for (key, value) in entries {
        let Some(name) = key.as_scalar() else {
            parser.report(
                key.position,
                DiagnosticCode::WrongType,
                format!("field names must be plain words, found {}", key.kind_name()),
            );
            continue;
        };
        let Some(known) = KNOWN_FIELDS.iter().copied().find(|known| *known == name) else {
            let suggestion = suggest_field(name)
                .map(|known| format!("; did you mean `{known}`?"))
                .unwrap_or_default();
            parser.report(
                key.position,
                DiagnosticCode::UnknownField,
                format!("unknown field `{name}`{suggestion}"),
            );
            continue;
        };
        if parser.field_positions.contains_key(known) {
            parser.report(
                key.position,
                DiagnosticCode::DuplicateField,
                format!("the field `{known}` is written twice; the first one is used"),
            );
            continue;
        }
        parser.field_positions.insert(known, value.position);
        match known {
            "id" => {
                fields.id = parse_field(
                    parser,
                    known,
                    value,
                    DiagnosticCode::InvalidId,
                    ProcedureId::parse,
                );
            }
            "title" => {
                fields.title =
                    parse_field(parser, known, value, DiagnosticCode::WrongType, |text| {
                        Ok(text.to_string())
                    });
            }
            "summary" => fields.summary = scalar(parser, known, value).map(str::to_string),
            "owner" => {
                fields.owner = parse_field(
                    parser,
                    known,
                    value,
                    DiagnosticCode::InvalidEmail,
                    Email::parse,
                );
            }
            "approver" => {
                fields.approver = parse_field(
                    parser,
                    known,
                    value,
                    DiagnosticCode::InvalidEmail,
                    Email::parse,
                )
                .valid();
            }
            "classification" => {
                fields.classification = parse_field(
                    parser,
                    known,
                    value,
                    DiagnosticCode::UnknownClassification,
                    Classification::parse,
                )
                .valid();
            }
            "version" => {
                fields.version = parse_field(
                    parser,
                    known,
                    value,
                    DiagnosticCode::InvalidVersion,
                    Version::parse,
                );
            }
            "last_reviewed" => {
                fields.last_reviewed = parse_field(
                    parser,
                    known,
                    value,
                    DiagnosticCode::InvalidDate,
                    parse_iso_date,
                );
            }
            "review_every" => {
                fields.review_every = parse_field(
                    parser,
                    known,
                    value,
                    DiagnosticCode::InvalidReviewInterval,
                    ReviewInterval::parse,
                )
                .valid();
            }
            "schedule" => {
                fields.schedule = parse_field(
                    parser,
                    known,
                    value,
                    DiagnosticCode::InvalidSchedule,
                    Schedule::parse,
                )
                .valid();
            }
            "audience" => {
                fields.audience = match list(parser, known, value) {
                    None => FieldValue::Invalid,
                    Some(items) if items.is_empty() => FieldValue::Missing,
                    Some(items) => {
                        let mut members = Vec::new();
                        for (item, position) in items {
                            match AudienceMember::parse(item) {
                                Ok(member) if !members.contains(&member) => members.push(member),
                                Ok(_) => {}
                                Err(message) => parser.report(
                                    position,
                                    DiagnosticCode::UnknownAudience,
                                    message,
                                ),
                            }
                        }
                        if members.is_empty() {
                            FieldValue::Invalid
                        } else {
                            FieldValue::Valid(members)
                        }
                    }
                };
            }
            "run_by" => {
                for (item, position) in list(parser, known, value).unwrap_or_default() {
                    match AudienceMember::parse(item) {
                        Ok(member) if !fields.run_by.contains(&member) => {
                            fields.run_by.push(member)
                        }
                        Ok(_) => {}
                        Err(message) => {
                            parser.report(position, DiagnosticCode::UnknownAudience, message)
                        }
                    }
                }
            }
            "controls" => {
                for (item, position) in list(parser, known, value).unwrap_or_default() {
                    match ControlId::parse(item) {
                        Ok(control) if !fields.controls.contains(&control) => {
                            fields.controls.push(control)
                        }
                        Ok(_) => {}
                        Err(message) => {
                            parser.report(position, DiagnosticCode::UnknownControl, message)
                        }
                    }
                }
            }
            "keywords" => {
                for (item, _) in list(parser, known, value).unwrap_or_default() {
                    let keyword = item.to_string();
                    if !fields.keywords.contains(&keyword) {
                        fields.keywords.push(keyword);
                    }
                }
            }
            "frameworks" => read_frameworks(parser, value, &mut fields.frameworks),
            _ => {}
        }
    }
    fields
}

fn read_frameworks(
    parser: &mut FileParser<'_>,
    node: &YamlNode,
    frameworks: &mut BTreeMap<String, Vec<String>>,
) {
    if node.is_null() {
        return;
    }
    let YamlValue::Mapping(entries) = &node.value else {
        parser.report(
            node.position,
            DiagnosticCode::WrongType,
            format!(
                "`frameworks` must map a framework to its clauses, e.g. `soc2: [CC7.3]`, found {}",
                node.kind_name()
            ),
        );
        return;
    };
    for (key, value) in entries {
        let Some(framework) = key.as_scalar().filter(|name| !name.trim().is_empty()) else {
            parser.report(
                key.position,
                DiagnosticCode::WrongType,
                "framework names must be plain words like `soc2`",
            );
            continue;
        };
        let clauses = list(parser, "frameworks", value).unwrap_or_default();
        frameworks.insert(
            framework.trim().to_ascii_lowercase(),
            clauses
                .into_iter()
                .map(|(clause, _)| clause.to_string())
                .collect(),
        );
    }
}

/// What the Markdown body holds.
struct BodyView {
    title: Option<String>,
    sections: Vec<Section>,
    steps: Vec<Step>,
    steps_section_line: Option<u32>,
    /// Top-level bullet items (not numbered, not checklist) in the Steps section.
    unnumbered_items: usize,
}

struct StepBuilder {
    text: String,
    line: u32,
    is_task: bool,
    substeps: Vec<Step>,
}

fn finish_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn read_body(body: &str, first_line: u32) -> BodyView {
    let index = LineIndex::new(body, first_line);
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TASKLISTS);
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);

    let mut view = BodyView {
        title: None,
        sections: Vec::new(),
        steps: Vec::new(),
        steps_section_line: None,
        unnumbered_items: 0,
    };
    // The open section: kind, heading, heading line, where its content starts.
    let mut open_section: Option<(SectionKind, String, u32, usize)> = None;
    let mut heading: Option<(HeadingLevel, usize, String)> = None;
    let mut lists: Vec<bool> = Vec::new();
    let mut items: Vec<StepBuilder> = Vec::new();

    let close_section = |open: Option<(SectionKind, String, u32, usize)>,
                         end: usize,
                         sections: &mut Vec<Section>| {
        if let Some((kind, heading, line, start)) = open {
            sections.push(Section {
                kind,
                heading,
                markdown: body.get(start..end).unwrap_or("").trim().to_string(),
                line,
            });
        }
    };

    for (event, range) in Parser::new_ext(body, options).into_offset_iter() {
        if let Some((_, _, text)) = heading.as_mut() {
            match &event {
                Event::Text(t) | Event::Code(t) => {
                    text.push_str(t);
                    continue;
                }
                Event::End(TagEnd::Heading(_)) => {}
                _ => continue,
            }
        }
        match event {
            Event::Start(Tag::Heading { level, .. }) if lists.is_empty() => {
                heading = Some((level, range.start, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                let Some((level, start, text)) = heading.take() else {
                    continue;
                };
                let text = finish_text(&text);
                let kind = SectionKind::from_heading(&text);
                // An empty `#` line is no title: the title falls back to the file name.
                if level == HeadingLevel::H1
                    && view.title.is_none()
                    && kind == SectionKind::Other
                    && !text.is_empty()
                {
                    view.title = Some(text);
                    close_section(open_section.take(), start, &mut view.sections);
                    continue;
                }
                if level <= HeadingLevel::H2 || kind != SectionKind::Other {
                    close_section(open_section.take(), start, &mut view.sections);
                    let line = index.position(start).line;
                    if kind == SectionKind::Steps && view.steps_section_line.is_none() {
                        view.steps_section_line = Some(line);
                    }
                    open_section = Some((kind, text, line, range.end));
                }
            }
            _ if !matches!(open_section, Some((SectionKind::Steps, ..))) => {}
            Event::Start(Tag::List(start)) => lists.push(start.is_some()),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Item) => items.push(StepBuilder {
                text: String::new(),
                line: index.position(range.start).line,
                is_task: false,
                substeps: Vec::new(),
            }),
            Event::TaskListMarker(_) => {
                if let Some(item) = items.last_mut() {
                    item.is_task = true;
                }
            }
            Event::End(TagEnd::Item) => {
                let Some(item) = items.pop() else { continue };
                let ordered = lists.last().copied().unwrap_or(false);
                let step = Step {
                    number: 0,
                    text: finish_text(&item.text),
                    line: item.line,
                    substeps: item.substeps,
                };
                let depth = items.len();
                match items.last_mut() {
                    Some(parent) if depth < MAX_STEP_DEPTH => {
                        let mut step = step;
                        step.number = u32::try_from(parent.substeps.len() + 1).unwrap_or(u32::MAX);
                        parent.substeps.push(step);
                    }
                    Some(parent) => {
                        parent.text.push(' ');
                        parent.text.push_str(&step.text);
                    }
                    None if ordered || item.is_task => {
                        let mut step = step;
                        step.number = u32::try_from(view.steps.len() + 1).unwrap_or(u32::MAX);
                        view.steps.push(step);
                    }
                    None => view.unnumbered_items += 1,
                }
            }
            Event::Text(text) | Event::Html(text) | Event::InlineHtml(text) => {
                if let Some(item) = items.last_mut() {
                    item.text.push_str(&text);
                }
            }
            Event::Code(code) => {
                if let Some(item) = items.last_mut() {
                    item.text.push('`');
                    item.text.push_str(&code);
                    item.text.push('`');
                }
            }
            Event::SoftBreak | Event::HardBreak | Event::End(TagEnd::Paragraph) => {
                if let Some(item) = items.last_mut() {
                    item.text.push(' ');
                }
            }
            _ => {}
        }
    }
    close_section(open_section.take(), body.len(), &mut view.sections);
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\nid: backup-customer-data\ntitle: Back up the customer database\nsummary: Nightly backup.\nowner: it-lead@example.com\naudience: [it-ops, engineering]\nclassification: internal\nversion: 1.2.0\nlast_reviewed: 2026-02-01\nreview_every: 12 months\ncontrols: [A.8.13, A.5.37]\nframeworks:\n  soc2: [CC7.3]\n  gdpr: [Art. 32]\nkeywords: [backup, snapshot]\nschedule: \"0 9 * * MON\"\napprover: cto@example.com\n---\n\n# Back up the customer database\n\n## Purpose\nKeep data safe.\n\n## Roles\nIT.\n\n## Steps\n1. Log in to the backup console.\n2. Start a full backup.\n   - Check the `customer-db` job.\n   - Wait for it.\n3. Verify the backup.\n\n## If something goes wrong\nCall IT.\n\n## Records\nThe backup report.\n";

    #[test]
    fn the_spec_example_parses_cleanly() {
        let parsed = parse_procedure("ops/backup.md", GOOD.as_bytes());
        assert_eq!(parsed.diagnostics, []);
        let procedure = parsed.procedure.unwrap();
        assert_eq!(procedure.id.as_str(), "backup-customer-data");
        assert_eq!(procedure.title, "Back up the customer database");
        assert_eq!(procedure.version.unwrap().as_str(), "1.2.0");
        assert_eq!(procedure.controls.len(), 2);
        assert_eq!(procedure.frameworks["gdpr"], ["Art. 32"]);
        assert_eq!(procedure.steps.len(), 3);
        assert_eq!(procedure.steps[1].text, "Start a full backup.");
        assert_eq!(
            procedure.steps[1].substeps[0].text,
            "Check the `customer-db` job."
        );
        assert_eq!(procedure.steps[1].line, 30);
        let kinds: Vec<SectionKind> = procedure.sections.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                SectionKind::Purpose,
                SectionKind::Roles,
                SectionKind::Steps,
                SectionKind::IfSomethingGoesWrong,
                SectionKind::Records
            ]
        );
        assert_eq!(procedure.sections[0].markdown, "Keep data safe.");
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let crlf = format!("\u{feff}{}", GOOD.replace('\n', "\r\n"));
        let parsed = parse_procedure("backup.md", crlf.as_bytes());
        assert_eq!(parsed.diagnostics, []);
        assert_eq!(parsed.procedure.unwrap().steps.len(), 3);
    }

    #[test]
    fn checklists_and_synonyms_make_steps() {
        let text = "---\ntitle: Patch\nowner: a@example.com\naudience: everyone\nversion: 1\nlast_reviewed: 2026-01-01\n---\n# Patch\n\n## Procedure\n- [ ] Pull the scripts\n- [ ] Run them\n    - [ ] Errors? Investigate\n";
        let parsed = parse_procedure("patch.md", text.as_bytes());
        assert_eq!(parsed.diagnostics, []);
        let procedure = parsed.procedure.unwrap();
        assert_eq!(procedure.steps.len(), 2);
        assert_eq!(procedure.steps[1].substeps.len(), 1);
        assert_eq!(procedure.id.as_str(), "patch");
    }

    #[test]
    fn files_without_front_matter_are_procedures_with_warnings() {
        let parsed = parse_procedure(
            "people/leaver.md",
            b"# Offboard a leaver\n\n## Steps\n1. Disable the account.\n",
        );
        let procedure = parsed.procedure.as_ref().unwrap();
        assert_eq!(procedure.id.as_str(), "leaver");
        assert_eq!(procedure.title, "Offboard a leaver");
        assert!(!procedure.has_front_matter);
        assert!(
            parsed
                .diagnostics
                .iter()
                .all(|d| d.severity == Severity::Warning)
        );
        let codes: Vec<&str> = parsed.diagnostics.iter().map(|d| d.code.name()).collect();
        assert_eq!(
            codes,
            [
                "missing-front-matter",
                "missing-title",
                "missing-owner",
                "missing-audience",
                "missing-version",
                "missing-last-reviewed"
            ]
        );
    }

    #[test]
    fn a_numbered_list_outside_steps_is_not_a_step() {
        let text = "---\ntitle: X\n---\n## Purpose\n1. Not a step\n\n## Steps\n- a bullet\n";
        let parsed = parse_procedure("x.md", text.as_bytes());
        let missing = parsed
            .diagnostics
            .iter()
            .find(|d| d.code == DiagnosticCode::MissingSteps)
            .unwrap();
        assert!(
            missing.message.contains("bullet points"),
            "{}",
            missing.message
        );
        assert_eq!(missing.position.line, 7);
    }

    #[test]
    fn unknown_fields_suggest_the_known_one() {
        let text = "---\nownr: a@example.com\n---\n";
        let parsed = parse_procedure("x.md", text.as_bytes());
        let unknown = parsed
            .diagnostics
            .iter()
            .find(|d| d.code == DiagnosticCode::UnknownField)
            .unwrap();
        assert!(
            unknown.message.contains("did you mean `owner`"),
            "{}",
            unknown.message
        );
        assert_eq!(unknown.position, Position::new(2, 1));
    }

    #[test]
    fn positions_point_at_the_value() {
        let text = "---\ntitle: X\nclassification: secret\n---\n";
        let parsed = parse_procedure("x.md", text.as_bytes());
        let bad = parsed
            .diagnostics
            .iter()
            .find(|d| d.code == DiagnosticCode::UnknownClassification)
            .unwrap();
        assert_eq!(bad.position, Position::new(3, 17));
    }

    #[test]
    fn a_ten_megabyte_file_is_parsed() {
        let mut text = String::from(GOOD);
        let line = "Some long prose about backups that goes on and on, with `code` and **bold**.\n";
        while text.len() < 10 * 1024 * 1024 {
            text.push_str(line);
        }
        let parsed = parse_procedure("big.md", text.as_bytes());
        assert!(parsed.procedure.is_some());
    }
}
