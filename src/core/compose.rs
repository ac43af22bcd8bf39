//! The bot's replies as neutral messages: a procedure, lookup results, pending lists, help,
//! confirmations and apologies. Pure functions of data; wording lives here, once.

use chrono::{DateTime, NaiveDate, Utc};

use crate::core::message::{Button, Message};
use crate::core::procedure::{Procedure, ProcedureId, SectionKind, Step};
use crate::core::request::action;

/// Lines of a list shown at most; longer lists say how many more there are.
pub const MAX_LIST_LINES: usize = 50;

/// A time as people read it in chat, in UTC (chat clients show their own local time when they
/// can; the text stays unambiguous).
pub fn when(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn version_label(version: Option<&str>) -> String {
    version.map(|v| format!(" v{v}")).unwrap_or_default()
}

pub fn help() -> Message {
    Message::new().header("procbot: your procedures, in chat").list(
        false,
        vec![
            "`/procedure <question>`: find the procedure that answers it (\"how do I back up the database?\")".into(),
            "`/procedure show <id>`: read a procedure".into(),
            "`/procedure list`: every procedure you can see".into(),
            "`/procedure pending`: what you still have to acknowledge".into(),
            "`/procedure mine`: the procedures you own, their reviews and acknowledgements".into(),
            "`ack <id>`: acknowledge the current version of a procedure (same as its button)".into(),
            "`review <id> ok|changes|snooze`: answer a review reminder for a procedure you own".into(),
            "`/procedure run <id>`: perform a procedure now, as a checklist (`runs` lists your open runs)".into(),
            "`step <run> <n> done|na|problem [note]`, `note <run> <n> <text>`, `finish <run>`: work through a run by typing".into(),
        ],
    )
}

fn flatten_steps(steps: &[Step], prefix: &str, out: &mut Vec<String>) {
    for step in steps {
        let number = format!("{prefix}{}", step.number);
        if prefix.is_empty() {
            out.push(step.text.clone());
        } else {
            out.push(format!("{number}. {}", step.text));
        }
        if !step.substeps.is_empty() {
            let mut nested = Vec::new();
            flatten_steps(&step.substeps, &format!("{number}."), &mut nested);
            if let Some(last) = out.last_mut() {
                for line in nested {
                    last.push_str(&format!("\n   {line}"));
                }
            }
        }
    }
}

/// A procedure's top-level steps as lines, nested items kept in their parent's line.
pub fn step_lines(procedure: &Procedure) -> Vec<String> {
    let mut lines = Vec::new();
    flatten_steps(&procedure.steps, "", &mut lines);
    lines
}

/// The first paragraph of a section's Markdown, as plain text.
fn first_paragraph(markdown: &str) -> Option<String> {
    let paragraph: Vec<&str> = markdown
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect();
    (!paragraph.is_empty()).then(|| paragraph.join(" "))
}

/// A procedure in full: title, purpose, numbered steps, owner, version, classification, and
/// a link to it in the repository's web UI when one is configured.
pub fn procedure_view(
    procedure: &Procedure,
    extra_buttons: Vec<Button>,
    link: Option<String>,
) -> Message {
    let mut message = Message::new().header(format!(
        "{}{}",
        procedure.title,
        version_label(
            procedure
                .version
                .as_ref()
                .map(ToString::to_string)
                .as_deref()
        )
    ));
    let purpose = procedure
        .section(SectionKind::Purpose)
        .and_then(|s| first_paragraph(&s.markdown))
        .or_else(|| procedure.summary.clone());
    if let Some(purpose) = purpose {
        message = message.text(purpose);
    }
    message = message.list(true, step_lines(procedure));
    if let Some(section) = procedure.section(SectionKind::IfSomethingGoesWrong)
        && let Some(text) = first_paragraph(&section.markdown)
    {
        message = message.text(format!("If something goes wrong: {text}"));
    }
    let mut fields = vec![("Procedure".to_string(), procedure.id.to_string())];
    if let Some(owner) = &procedure.owner {
        fields.push(("Owner".to_string(), owner.to_string()));
    }
    fields.push((
        "Classification".to_string(),
        procedure.classification.to_string(),
    ));
    if let Some(reviewed) = procedure.last_reviewed {
        fields.push(("Last reviewed".to_string(), reviewed.to_string()));
    }
    if !procedure.controls.is_empty() {
        fields.push((
            "Controls".to_string(),
            procedure
                .controls
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    message = message.fields(fields);
    message = message.context(format!("Source: {}", procedure.path));
    message = message.link("Open in the repository", link);
    message.actions(extra_buttons)
}

/// One line naming a procedure, for lists.
pub fn procedure_line(id: &ProcedureId, title: &str, version: Option<&str>) -> String {
    format!("{title}{} ({id})", version_label(version))
}

/// A lookup that found something: the best match in full, then the others.
pub fn lookup_results(
    best: &Procedure,
    best_buttons: Vec<Button>,
    link: Option<String>,
    others: &[(ProcedureId, String)],
) -> Message {
    let mut message = procedure_view(best, best_buttons, link);
    if !others.is_empty() {
        message = message.divider().text("Other matches:").list(
            false,
            others
                .iter()
                .map(|(id, title)| procedure_line(id, title, None))
                .collect(),
        );
        message = message.actions(
            others
                .iter()
                .take(5)
                .map(|(id, title)| Button::new(format!("Read: {title}"), action::show(id)))
                .collect(),
        );
    }
    message
}

/// A lookup that found nothing good enough.
pub fn no_match(query: &str, suggestions: &[(ProcedureId, String)]) -> Message {
    let shown: String = query.chars().take(100).collect();
    let mut message = Message::new().text(format!("No procedure matches “{shown}”."));
    if !suggestions.is_empty() {
        message = message.text("Did you mean:").actions(
            suggestions
                .iter()
                .take(5)
                .map(|(id, title)| Button::new(title.clone(), action::show(id)))
                .collect(),
        );
    }
    message
        .context("Try other words, `/procedure list` to see every procedure, or `/procedure help`.")
}

pub fn not_found(id: &str) -> Message {
    let shown: String = id.chars().take(100).collect();
    Message::new().text(format!(
        "No procedure you can see has the id `{shown}`. `/procedure list` shows them all, or ask in words: `/procedure how do I …`."
    ))
}

/// Every procedure a person can see.
pub fn procedure_list(entries: &[(ProcedureId, String, Option<String>)]) -> Message {
    if entries.is_empty() {
        return Message::new().text("There are no procedures to show yet.");
    }
    let mut lines: Vec<String> = entries
        .iter()
        .take(MAX_LIST_LINES)
        .map(|(id, title, version)| procedure_line(id, title, version.as_deref()))
        .collect();
    if entries.len() > MAX_LIST_LINES {
        lines.push(format!(
            "… and {} more: ask for one by name",
            entries.len() - MAX_LIST_LINES
        ));
    }
    Message::new()
        .header(format!("{} procedures", entries.len()))
        .list(false, lines)
}

/// A version someone still has to acknowledge, for `pending`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingItem {
    pub id: ProcedureId,
    pub title: String,
    pub version: Option<String>,
    pub content_hash: String,
    pub since: DateTime<Utc>,
}

pub fn pending_list(items: &[PendingItem]) -> Message {
    if items.is_empty() {
        return Message::new().text("You're all caught up: nothing to acknowledge.");
    }
    let mut message = Message::new().header(if items.len() == 1 {
        "1 procedure to acknowledge".to_string()
    } else {
        format!("{} procedures to acknowledge", items.len())
    });
    for item in items.iter().take(MAX_LIST_LINES) {
        message = message
            .text(format!(
                "{} — asked {}",
                procedure_line(&item.id, &item.title, item.version.as_deref()),
                item.since.format("%Y-%m-%d")
            ))
            .actions(vec![
                Button::new("Read", action::show(&item.id)),
                Button::new(
                    format!("Acknowledge{}", version_label(item.version.as_deref())),
                    action::acknowledge(&item.id, &item.content_hash),
                )
                .primary(),
            ]);
    }
    if items.len() > MAX_LIST_LINES {
        message = message.context(format!(
            "… and {} more; acknowledge these first.",
            items.len() - MAX_LIST_LINES
        ));
    }
    message
}

/// One owned procedure's state, for `mine`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedProcedure {
    pub id: ProcedureId,
    pub title: String,
    pub version: Option<String>,
    pub review_due: Option<NaiveDate>,
    pub acknowledged: i64,
    pub required: i64,
    pub last_review: Option<(String, DateTime<Utc>)>,
}

pub fn owned_list(owned: &[OwnedProcedure], today: NaiveDate) -> Message {
    if owned.is_empty() {
        return Message::new()
            .text("You own no procedures. Owners are set by `owner:` in each procedure file.");
    }
    let lines = owned
        .iter()
        .take(MAX_LIST_LINES)
        .map(|p| {
            let review = match p.review_due {
                Some(due) if due < today => format!("review overdue since {due}"),
                Some(due) => format!("review due {due}"),
                None => "no review date".to_string(),
            };
            let acks = if p.required > 0 {
                format!("{}/{} acknowledged", p.acknowledged, p.required)
            } else {
                "no acknowledgements asked".to_string()
            };
            let last = p
                .last_review
                .as_ref()
                .map(|(outcome, at)| {
                    format!("; last answer {outcome} on {}", at.format("%Y-%m-%d"))
                })
                .unwrap_or_default();
            format!(
                "{}: {review}; {acks}{last}",
                procedure_line(&p.id, &p.title, p.version.as_deref())
            )
        })
        .collect();
    Message::new()
        .header(format!("Procedures you own ({})", owned.len()))
        .list(false, lines)
}

/// An apology for an internal error, with the reference the log carries.
pub fn apology(reference: &str) -> Message {
    Message::new().text(format!(
        "Sorry, something went wrong on my side. Nothing you did caused it, and nothing already recorded is lost. If it keeps happening, give your admin this reference: {reference}."
    ))
}

pub fn not_understood(text: &str) -> Message {
    let shown: String = text.chars().take(100).collect();
    Message::new().text(format!(
        "I did not understand “{shown}”. Type `/procedure help` to see what I can do."
    ))
}

/// For people procbot cannot match to the directory.
pub fn unknown_person() -> Message {
    Message::new().text(
        "I don't know who you are yet, so I cannot record anything for you. Ask whoever maintains directory.yaml in the procedures repository to add your email (and your chat account id).",
    )
}
