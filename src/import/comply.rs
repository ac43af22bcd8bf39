//! Converting strongdm/comply procedures into procbot's format.
//!
//! comply files are YAML, a `---`, then Markdown; its loader splits on *every* `---` and
//! rejoins the rest as the body, drops an empty first piece (Jekyll-style leading `---`), and
//! reads `cron` with robfig/cron v1 (a leading seconds field; five fields mean no weekday).
//! We mirror those rules so a file comply accepted converts the same way here.

use std::collections::BTreeMap;

use crate::core::diagnostic::Severity;
use crate::core::parse::{file_stem, parse_procedure};
use crate::core::procedure::{AudienceMember, ControlId, Email, ProcedureId, SectionKind};
use crate::core::schedule::Schedule;
use crate::core::yaml::{YamlNode, YamlValue, parse_yaml};

/// What the operator knows that comply files do not say.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    pub owner: Option<Email>,
    pub audience: Vec<AudienceMember>,
}

/// One converted procedure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    pub id: ProcedureId,
    /// The Markdown file to write, in procbot's format.
    pub markdown: String,
    /// What was changed, dropped or still needs a human, one line each.
    pub notes: Vec<String>,
}

fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug.truncate(ProcedureId::MAX_LEN);
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

fn quoted(text: &str) -> String {
    // JSON strings are valid YAML double-quoted scalars.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|item| quoted(item.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// Converts a robfig/cron v1 expression (seconds first) into 5-field crontab.
fn convert_cron(expression: &str, notes: &mut Vec<String>) -> Option<String> {
    let trimmed = expression.trim();
    if trimmed.starts_with("@every") {
        notes.push(format!(
            "`cron: {trimmed}` (an interval from start-up) has no crontab equivalent: set `schedule` by hand"
        ));
        return None;
    }
    let crontab = if trimmed.starts_with('@') {
        trimmed.to_string()
    } else {
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let (seconds, rest) = match fields.as_slice() {
            [seconds, minute, hour, dom, month] => {
                (*seconds, vec![*minute, *hour, *dom, *month, "*"])
            }
            [seconds, minute, hour, dom, month, dow] => {
                (*seconds, vec![*minute, *hour, *dom, *month, *dow])
            }
            _ => {
                notes.push(format!(
                    "`cron: {trimmed}` is not a comply schedule (5 or 6 fields starting with seconds): set `schedule` by hand"
                ));
                return None;
            }
        };
        if seconds != "0" {
            notes.push(format!(
                "`cron: {trimmed}` fires at second {seconds}; procbot schedules by the minute"
            ));
        }
        rest.iter()
            .map(|field| if *field == "?" { "*" } else { field })
            .collect::<Vec<_>>()
            .join(" ")
    };
    match Schedule::parse(&crontab) {
        Ok(_) => {
            notes.push(format!("`cron: {trimmed}` became `schedule: {crontab}`"));
            Some(crontab)
        }
        Err(message) => {
            notes.push(format!(
                "`cron: {trimmed}` could not be converted ({message}): set `schedule` by hand"
            ));
            None
        }
    }
}

fn scalar_list(node: &YamlNode) -> Vec<String> {
    match &node.value {
        YamlValue::Scalar { text, .. } if !node.is_null() => vec![text.trim().to_string()],
        YamlValue::Sequence(items) => items
            .iter()
            .filter_map(|item| item.as_scalar().map(|text| text.trim().to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Splits like comply's `loadMDMD`: returns (YAML, body).
fn split_comply(text: &str) -> Option<(&str, String)> {
    let mut pieces: Vec<&str> = text.split("---").collect();
    if pieces.first().is_some_and(|first| first.trim().is_empty()) {
        pieces.remove(0);
    }
    if pieces.len() < 2 {
        return None;
    }
    Some((pieces[0], pieces[1..].join("---")))
}

/// Finds Markdown headings outside code fences: (line index, level, text).
fn headings(body: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let mut in_fence = false;
    for (index, line) in body.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || line.starts_with("    ") {
            continue;
        }
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && trimmed[level..].starts_with(' ') {
            found.push((
                index,
                level,
                trimmed[level..]
                    .trim()
                    .trim_end_matches('#')
                    .trim()
                    .to_string(),
            ));
        }
    }
    found
}

/// Converts one comply procedure file. `file_name` is its name in the comply folder.
pub fn convert(file_name: &str, text: &str, options: &ImportOptions) -> Result<Conversion, String> {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let (yaml, body) = split_comply(&text).ok_or_else(|| {
        "comply files must be YAML, then a `---` line, then Markdown; no `---` was found"
            .to_string()
    })?;
    let root = parse_yaml(yaml, 1).map_err(|error| {
        format!(
            "line {}: the YAML is invalid: {}",
            error.position.line, error.message
        )
    })?;
    let entries = match root {
        Some(YamlNode {
            value: YamlValue::Mapping(entries),
            ..
        }) => entries,
        None => Vec::new(),
        Some(other) => {
            return Err(format!(
                "the YAML must be `key: value` lines, found {}",
                other.kind_name()
            ));
        }
    };
    let mut fields: BTreeMap<String, YamlNode> = BTreeMap::new();
    for (key, value) in entries {
        if let Some(name) = key.as_scalar() {
            fields.entry(name.to_string()).or_insert(value);
        }
    }
    let mut notes = Vec::new();
    let body_headings = headings(&body);

    let comply_id = fields
        .get("id")
        .and_then(YamlNode::as_scalar)
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let id_source = comply_id.unwrap_or_else(|| file_stem(file_name));
    let id = ProcedureId::parse(&slugify(id_source))
        .map_err(|message| format!("no usable id could be made from `{id_source}`: {message}"))?;
    match comply_id {
        Some(original) if original != id.as_str() => {
            notes.push(format!(
                "id `{original}` became `{id}` (ids are lowercase slugs)"
            ));
        }
        None => notes.push(format!("no `id` in comply; used `{id}` from the file name")),
        _ => {}
    }

    let title = match fields
        .get("name")
        .and_then(YamlNode::as_scalar)
        .map(str::trim)
    {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            let from_heading = body_headings
                .iter()
                .find(|(_, level, _)| *level == 1)
                .map(|(_, _, text)| text.clone());
            let title =
                from_heading.unwrap_or_else(|| file_stem(file_name).replace(['-', '_'], " "));
            notes.push(format!("no `name` in comply; the title is `{title}`"));
            title
        }
    };

    let schedule = fields
        .get("cron")
        .and_then(YamlNode::as_scalar)
        .filter(|cron| !cron.trim().is_empty())
        .and_then(|cron| convert_cron(cron, &mut notes));

    let mut controls: Vec<String> = Vec::new();
    let mut frameworks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(satisfies) = fields.get("satisfies") {
        match &satisfies.value {
            YamlValue::Mapping(standards) => {
                for (standard, ids) in standards {
                    let standard = standard.as_scalar().unwrap_or("").trim();
                    let ids = scalar_list(ids);
                    let lower = standard.to_ascii_lowercase();
                    if lower.contains("27001") || lower.starts_with("iso") {
                        for control in ids {
                            match ControlId::parse(&control) {
                                Ok(control) => controls.push(control.to_string()),
                                Err(_) => {
                                    notes.push(format!(
                                        "`{standard}: {control}` is not an ISO/IEC 27001:2022 Annex A id; kept under `frameworks: iso27001` (map it to a 2022 control by hand)"
                                    ));
                                    frameworks
                                        .entry("iso27001".to_string())
                                        .or_default()
                                        .push(control);
                                }
                            }
                        }
                        continue;
                    }
                    let key = match lower.as_str() {
                        "tsc" | "soc2" | "soc 2" | "aicpa tsc" => "soc2".to_string(),
                        other => slugify(other),
                    };
                    if key.is_empty() {
                        continue;
                    }
                    frameworks.entry(key).or_default().extend(ids);
                }
            }
            _ if satisfies.is_null() => {}
            _ => notes.push(
                "`satisfies` is not a mapping of standards to control ids; not imported"
                    .to_string(),
            ),
        }
    }

    for key in fields.keys() {
        if !["id", "name", "cron", "satisfies", "majorRevisions"].contains(&key.as_str()) {
            notes.push(format!(
                "comply field `{key}` has no procbot equivalent; not imported"
            ));
        }
    }

    let mut revision_history = Vec::new();
    if let Some(YamlNode {
        value: YamlValue::Sequence(revisions),
        ..
    }) = fields.get("majorRevisions")
    {
        for revision in revisions {
            if let YamlValue::Mapping(entries) = &revision.value {
                let field = |name: &str| {
                    entries
                        .iter()
                        .find(|(key, _)| key.as_scalar() == Some(name))
                        .and_then(|(_, value)| value.as_scalar())
                        .unwrap_or("")
                        .trim()
                        .to_string()
                };
                revision_history.push(format!("- {}: {}", field("date"), field("comment")));
            }
        }
        if !revision_history.is_empty() {
            notes.push(format!(
                "{} `majorRevisions` kept as a \"Revision history\" section; from now on git history records versions",
                revision_history.len()
            ));
        }
    }

    if body.contains("{{") {
        notes.push(
            "the body contains `{{ }}` comply templates; procbot shows them as written".to_string(),
        );
    }

    let mut markdown = String::from("---\n");
    markdown.push_str(&format!("id: {id}\ntitle: {}\n", quoted(&title)));
    match &options.owner {
        Some(owner) => markdown.push_str(&format!("owner: {}\n", quoted(owner.as_str()))),
        None => notes
            .push("comply has no owner: add `owner:` (or import with --owner EMAIL)".to_string()),
    }
    if options.audience.is_empty() {
        notes.push(
            "comply has no audience: add `audience:` (or import with --audience TEAMS)".to_string(),
        );
    } else {
        let audience: Vec<String> = options.audience.iter().map(ToString::to_string).collect();
        markdown.push_str(&format!("audience: {}\n", quoted_list(&audience)));
    }
    markdown.push_str("classification: internal\nversion: 1.0.0\n");
    notes.push(
        "set `last_reviewed:` to the date the owner last confirmed the procedure; comply does not record reviews"
            .to_string(),
    );
    if !controls.is_empty() {
        markdown.push_str(&format!("controls: {}\n", quoted_list(&controls)));
    }
    if !frameworks.is_empty() {
        markdown.push_str("frameworks:\n");
        for (framework, ids) in &frameworks {
            markdown.push_str(&format!("  {}: {}\n", quoted(framework), quoted_list(ids)));
        }
    }
    if let Some(schedule) = &schedule {
        markdown.push_str(&format!("schedule: {}\n", quoted(schedule)));
    }
    markdown.push_str("---\n");

    let has_steps_heading = body_headings
        .iter()
        .any(|(_, _, text)| SectionKind::from_heading(text) == SectionKind::Steps);
    let body = body.trim_start_matches('\n');
    if has_steps_heading {
        markdown.push_str(body);
    } else {
        // comply bodies are a ticket: a heading, an instruction line and a checklist. Put
        // everything after the title under `## Steps` so its checklist items become steps.
        let lines: Vec<&str> = body.lines().collect();
        let title_line = headings(body)
            .into_iter()
            .find(|(_, level, _)| *level == 1)
            .map(|(index, _, _)| index);
        let split = title_line.map_or(0, |index| index + 1);
        if split == 0 {
            markdown.push_str(&format!("# {title}\n"));
        } else {
            markdown.push_str(&lines[..split].join("\n"));
            markdown.push('\n');
        }
        markdown.push_str("\n## Steps\n\n");
        markdown.push_str(lines[split..].join("\n").trim_matches('\n'));
        markdown.push('\n');
    }
    if !revision_history.is_empty() {
        if !markdown.ends_with('\n') {
            markdown.push('\n');
        }
        markdown.push_str("\n## Revision history\n\n");
        markdown.push_str(&revision_history.join("\n"));
        markdown.push('\n');
    }
    if !markdown.ends_with('\n') {
        markdown.push('\n');
    }

    let parsed = parse_procedure(&format!("{id}.md"), markdown.as_bytes());
    for diagnostic in parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
    {
        let already_noted = matches!(
            diagnostic.code.name(),
            "missing-owner" | "missing-audience" | "missing-last-reviewed"
        );
        if !already_noted {
            notes.push(format!(
                "still to fix: {} ({})",
                diagnostic.message, diagnostic.code
            ));
        }
    }
    Ok(Conversion {
        id,
        markdown,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "id: \"patch\"\nname: \"Apply OS patches\"\ncron: \"0 0 0 15 * *\"\n---\n\n# OS Patch Procedure\n\nResolve this ticket by executing the following steps:\n\n- [ ] Pull the latest scripts from the Ops repository\n- [ ] Execute `ENV=staging patch-all.sh`\n- [ ] Inspect output\n    - [ ] Errors? Investigate and resolve\n- [ ] Execute `ENV=production patch-all.sh`\n- [ ] Attach log output to this ticket\n";

    #[test]
    fn the_comply_patch_sample_converts() {
        let options = ImportOptions {
            owner: Some(Email::parse("it-lead@example.com").unwrap()),
            audience: vec![AudienceMember::parse("it-ops").unwrap()],
        };
        let conversion = convert("patch.md", PATCH, &options).unwrap();
        assert_eq!(conversion.id.as_str(), "patch");
        let parsed = parse_procedure("patch.md", conversion.markdown.as_bytes());
        let procedure = parsed.procedure.unwrap();
        assert_eq!(procedure.title, "Apply OS patches");
        assert_eq!(procedure.schedule.unwrap().as_str(), "0 0 15 * *");
        assert_eq!(procedure.steps.len(), 5);
        assert_eq!(procedure.steps[2].substeps.len(), 1);
        let codes: Vec<&str> = parsed.diagnostics.iter().map(|d| d.code.name()).collect();
        assert_eq!(codes, ["missing-last-reviewed"]);
        assert!(conversion.notes.iter().any(|n| n.contains("last_reviewed")));
    }

    #[test]
    fn five_field_comply_cron_has_no_weekday() {
        let mut notes = Vec::new();
        assert_eq!(
            convert_cron("0 30 9 1 *", &mut notes).as_deref(),
            Some("30 9 1 * *")
        );
        assert_eq!(
            convert_cron("15 0 0 * * ?", &mut notes).as_deref(),
            Some("0 0 * * *")
        );
        assert!(notes.iter().any(|n| n.contains("second 15")));
        assert_eq!(convert_cron("@every 1h", &mut notes), None);
    }

    #[test]
    fn satisfies_maps_to_controls_and_frameworks() {
        let text = "name: Access\nid: Access Review\nsatisfies:\n  TSC: [CC6.1, CC6.2]\n  ISO27001: [A.5.15, A.9.2.1]\nmajorRevisions:\n  - date: Jun 1 2018\n    comment: Initial document\nacronym: AR\n---\n# Access review\n\n1. Export users.\n";
        let conversion = convert("access.md", text, &ImportOptions::default()).unwrap();
        assert_eq!(conversion.id.as_str(), "access-review");
        assert!(
            conversion.markdown.contains("controls: [\"A.5.15\"]"),
            "{}",
            conversion.markdown
        );
        assert!(
            conversion
                .markdown
                .contains("\"soc2\": [\"CC6.1\", \"CC6.2\"]"),
            "{}",
            conversion.markdown
        );
        assert!(
            conversion
                .markdown
                .contains("- Jun 1 2018: Initial document")
        );
        let notes = conversion.notes.join("\n");
        assert!(notes.contains("A.9.2.1"), "{notes}");
        assert!(
            conversion.markdown.contains("\"iso27001\": [\"A.9.2.1\"]"),
            "{}",
            conversion.markdown
        );
        assert!(notes.contains("`acronym`"), "{notes}");
        assert!(notes.contains("--owner"), "{notes}");
    }

    #[test]
    fn a_leading_jekyll_delimiter_and_body_rules_survive() {
        let text = "---\nid: onboard\nname: Onboard New User\n---\n# Onboard\n\n- [ ] Create account\n\n---\n\nFooter after a rule.\n";
        let conversion = convert("onboarding.md", text, &ImportOptions::default()).unwrap();
        assert_eq!(conversion.id.as_str(), "onboard");
        assert!(conversion.markdown.contains("Footer after a rule."));
        assert!(conversion.markdown.contains("\n---\n\nFooter"));
    }

    #[test]
    fn files_without_a_delimiter_are_refused_like_comply_does() {
        let error = convert("x.md", "# Just markdown\n", &ImportOptions::default()).unwrap_err();
        assert!(error.contains("no `---`"), "{error}");
        let error = convert(
            "x.md",
            "name: [unclosed\n---\nbody",
            &ImportOptions::default(),
        )
        .unwrap_err();
        assert!(error.contains("YAML is invalid"), "{error}");
    }
}
