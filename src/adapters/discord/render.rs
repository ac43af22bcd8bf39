//! Discord rendering: the neutral `Message` as Discord message bodies (embeds and rows of
//! buttons) within Discord's limits, with every piece of text made inert so procedure files
//! cannot ping anyone or smuggle in markup. Pure: data in, JSON-ready values out.
//!
//! Layout rules:
//! - a `Header` starts an embed with that title, a `Divider` starts an untitled one; text,
//!   lists, context lines and links go to the embed's description, `Fields` to its fields;
//! - an embed that would break a limit (description 4096, 25 fields, title 256, 6000 per
//!   message) continues in the next embed; a message that would break the per-message limits
//!   (10 embeds, 6000 characters) continues in the next Discord message;
//! - every button goes on the LAST Discord message of a split, in at most 5 rows of 5, so the
//!   message a person clicks is the one whose id procbot keeps, and a click can update it;
//! - a button row and a context line weigh the same (`STATUS_WEIGHT`) when the layout is
//!   computed, so replacing a clicked row by its status line ("✅ Acknowledged …") never moves
//!   text from one Discord message to another.

use serde::Serialize;

use crate::core::message::{Block, ButtonStyle, Message};

pub const CONTENT_LIMIT: usize = 2000;
pub const TITLE_LIMIT: usize = 256;
pub const DESCRIPTION_LIMIT: usize = 4096;
pub const FIELD_NAME_LIMIT: usize = 256;
pub const FIELD_VALUE_LIMIT: usize = 1024;
pub const FIELDS_PER_EMBED: usize = 25;
pub const EMBEDS_PER_MESSAGE: usize = 10;
pub const CHARACTERS_PER_MESSAGE: usize = 6000;
pub const ROWS_PER_MESSAGE: usize = 5;
pub const BUTTONS_PER_ROW: usize = 5;
pub const LABEL_LIMIT: usize = 80;
pub const CUSTOM_ID_LIMIT: usize = 100;

/// What a button row or a context line counts for in the layout: more than any status line
/// the engine writes in place of a clicked row.
const STATUS_WEIGHT: usize = 100;
/// One piece of description is cut below this, so a piece always fits an embed.
const PIECE_LIMIT: usize = 3900;
/// An embed is closed below this, so any one embed fits a message's 6000 characters.
const EMBED_BUDGET: usize = 5800;
/// Inline fields sit side by side; only short values look right that way.
const INLINE_FIELD: usize = 40;

/// Discord's embed colour for procbot's cards (a calm blue).
const COLOUR: u32 = 0x3B82F6;

/// One Discord message body, as `POST /channels/{id}/messages`, an interaction response's
/// `data`, or an edit takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiscordMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub embeds: Vec<Embed>,
    /// Always present, so an edit removes the buttons a message no longer has.
    pub components: Vec<ActionRow>,
    pub allowed_mentions: AllowedMentions,
    /// 64 = EPHEMERAL (only the person who asked sees it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u64>,
}

/// `{"parse": []}`: nothing in the message may ping anyone, whatever its text says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AllowedMentions {
    pub parse: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Embed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub color: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<EmbedField>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmbedField {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

/// A row of buttons (component type 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionRow {
    #[serde(rename = "type")]
    pub kind: u8,
    pub components: Vec<DiscordButton>,
}

/// A button (component type 2) with a `custom_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiscordButton {
    #[serde(rename = "type")]
    pub kind: u8,
    /// 1 primary, 2 secondary, 4 danger.
    pub style: u8,
    pub label: String,
    pub custom_id: String,
}

impl DiscordMessage {
    /// The same body, shown only to the person who asked.
    pub fn ephemeral(mut self) -> DiscordMessage {
        self.flags = Some(64);
        self
    }

    /// Characters Discord counts against the 6000 per message.
    pub fn embed_characters(&self) -> usize {
        self.embeds.iter().map(Embed::characters).sum()
    }

    /// Every button's custom id, in order.
    pub fn custom_ids(&self) -> impl Iterator<Item = &str> {
        self.components
            .iter()
            .flat_map(|row| row.components.iter().map(|b| b.custom_id.as_str()))
    }
}

impl Embed {
    pub fn characters(&self) -> usize {
        self.title.as_deref().map_or(0, count)
            + self.description.as_deref().map_or(0, count)
            + self
                .fields
                .iter()
                .map(|f| count(&f.name) + count(&f.value))
                .sum::<usize>()
    }
}

fn count(text: &str) -> usize {
    text.chars().count()
}

/// Cuts `text` to `limit` characters, ending with `…` when it was longer.
fn cut(text: &str, limit: usize) -> String {
    if count(text) <= limit {
        return text.to_string();
    }
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    // Never leave a lone escaping backslash at the end: it would escape the ellipsis.
    if trailing_backslashes(&out) % 2 == 1 {
        out.pop();
    }
    out.push('…');
    out
}

fn trailing_backslashes(text: &str) -> usize {
    text.chars().rev().take_while(|c| *c == '\\').count()
}

/// Text as Discord shows it, inert: `@everyone`, `@here` and mention syntax (`<@id>`,
/// `<@!id>`, `<@&id>`, `<#id>`, `</command:id>`) broken with a zero-width space, and Markdown
/// markup outside `code spans` escaped. Code spans stay code: the bot's own wording uses them
/// (`/procedure list`), and Discord renders nothing inside them.
pub fn inert(text: &str) -> String {
    let neutral = text
        .replace("@everyone", "@\u{200B}everyone")
        .replace("@here", "@\u{200B}here")
        .replace("<@", "<\u{200B}@")
        .replace("<#", "<\u{200B}#")
        .replace("</", "<\u{200B}/");
    // An unmatched backtick opens no code span on Discord: escape it like other markup.
    let backticks = neutral.matches('`').count();
    let last_backtick = if backticks % 2 == 1 {
        neutral.rfind('`')
    } else {
        None
    };
    let mut out = String::with_capacity(neutral.len() + 8);
    let mut in_code = false;
    let mut at_line_start = true;
    for (index, c) in neutral.char_indices() {
        if c == '`' && Some(index) != last_backtick {
            in_code = !in_code;
            out.push(c);
            at_line_start = false;
            continue;
        }
        if !in_code {
            let escape = matches!(c, '\\' | '*' | '_' | '~' | '|' | '[' | ']' | '`')
                || (at_line_start && matches!(c, '>' | '#' | '-'));
            if escape {
                out.push('\\');
            }
        }
        out.push(c);
        at_line_start = c == '\n' || (at_line_start && c == ' ');
    }
    out
}

/// Text for a field's name or value, which Discord refuses empty: a blank one becomes a
/// zero-width space.
fn or_blank(text: &str) -> &str {
    if text.trim().is_empty() {
        "\u{200B}"
    } else {
        text
    }
}

/// A one-line, inert title.
fn inert_line(text: &str) -> String {
    inert(&text.replace(['\n', '\r'], " "))
}

/// A URL as a Markdown link target: characters that would end the link are encoded.
fn link_target(url: &str) -> String {
    url.replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
        .replace('<', "%3C")
        .replace('>', "%3E")
}

/// A piece of description: its text, the separator before it, and what it counts for.
#[derive(Clone, Debug)]
struct Piece {
    text: String,
    /// Joined to the previous piece with a blank line (paragraphs) or a line break (list
    /// items).
    tight: bool,
    weight: usize,
}

#[derive(Clone, Debug, Default)]
struct Section {
    title: Option<String>,
    pieces: Vec<Piece>,
    fields: Vec<EmbedField>,
}

impl Section {
    fn is_empty(&self) -> bool {
        self.title.is_none() && self.pieces.is_empty() && self.fields.is_empty()
    }
}

/// A group of buttons that belong together (one `Actions` block), labelled.
#[derive(Clone, Debug)]
struct Group {
    buttons: Vec<DiscordButton>,
}

/// An embed being built, with what it weighs in the layout.
#[derive(Clone, Debug, Default)]
struct EmbedDraft {
    title: Option<String>,
    description: String,
    description_weight: usize,
    fields: Vec<EmbedField>,
    weight: usize,
}

impl EmbedDraft {
    fn finish(self) -> Embed {
        Embed {
            title: self.title,
            description: (!self.description.is_empty()).then_some(self.description),
            color: COLOUR,
            fields: self.fields,
        }
    }

    fn is_empty(&self) -> bool {
        self.title.is_none() && self.description_weight == 0 && self.fields.is_empty()
    }
}

/// Splits a long piece at line breaks, else spaces, else anywhere, below `PIECE_LIMIT`.
fn split_long(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > PIECE_LIMIT {
        let window = &rest[..PIECE_LIMIT];
        let mut at = window
            .iter()
            .rposition(|c| *c == '\n')
            .or_else(|| window.iter().rposition(|c| *c == ' '))
            .filter(|at| *at > PIECE_LIMIT / 2)
            .unwrap_or(PIECE_LIMIT);
        // Keep an escaping backslash with the character it escapes.
        let head: String = rest[..at].iter().collect();
        if trailing_backslashes(&head) % 2 == 1 {
            at -= 1;
        }
        parts.push(rest[..at].iter().collect::<String>().trim_end().to_string());
        rest = rest[at..].to_vec();
        while rest.first().is_some_and(|c| *c == '\n') {
            rest.remove(0);
        }
    }
    parts.push(rest.into_iter().collect());
    parts
}

fn push_piece(section: &mut Section, text: String, tight: bool, minimum_weight: usize) {
    for (index, chunk) in split_long(&text).into_iter().enumerate() {
        let weight = count(&chunk).max(minimum_weight);
        section.pieces.push(Piece {
            text: chunk,
            tight: tight && index == 0,
            weight,
        });
    }
}

fn style_code(style: ButtonStyle) -> u8 {
    match style {
        ButtonStyle::Primary => 1,
        ButtonStyle::Default => 2,
        ButtonStyle::Danger => 4,
    }
}

/// What a message is made of on Discord: sections (future embeds) and button groups.
fn sections_of(message: &Message) -> (Vec<Section>, Vec<Group>) {
    let mut sections = Vec::new();
    let mut current = Section::default();
    let mut groups = Vec::new();
    // What a group of buttons acts on, for labels when the same label would appear twice:
    // its section's title, else the nearest paragraph above it.
    let mut subject: Option<String> = None;
    let mut raw_groups: Vec<(Vec<crate::core::message::Button>, Option<String>)> = Vec::new();
    for block in &message.blocks {
        match block {
            Block::Header { text } => {
                if !current.is_empty() {
                    sections.push(std::mem::take(&mut current));
                }
                // Discord refuses an empty title: a blank header only starts a new embed.
                current.title =
                    (!text.trim().is_empty()).then(|| cut(&inert_line(text), TITLE_LIMIT));
                subject = Some(text.clone());
            }
            Block::Divider => {
                if !current.is_empty() {
                    sections.push(std::mem::take(&mut current));
                }
                subject = None;
            }
            Block::Text { text } => {
                push_piece(&mut current, inert(text), false, 0);
                if current.title.is_none() {
                    subject = Some(text.clone());
                }
            }
            Block::List { ordered, items } => {
                for (index, item) in items.iter().enumerate() {
                    let marker = if *ordered {
                        format!("{}.", index + 1)
                    } else {
                        "•".to_string()
                    };
                    push_piece(
                        &mut current,
                        format!("{marker} {}", inert(item)),
                        index > 0,
                        0,
                    );
                }
            }
            Block::Context { text } => {
                push_piece(
                    &mut current,
                    format!("*{}*", inert(text)),
                    false,
                    STATUS_WEIGHT,
                );
            }
            Block::Link { label, url } => {
                push_piece(
                    &mut current,
                    format!("🔗 [{}]({})", inert_line(label), link_target(url)),
                    false,
                    0,
                );
            }
            Block::Fields { fields } => {
                for (name, value) in fields {
                    let value = cut(&inert(or_blank(value)), FIELD_VALUE_LIMIT);
                    current.fields.push(EmbedField {
                        name: cut(&inert_line(or_blank(name)), FIELD_NAME_LIMIT),
                        inline: count(&value) <= INLINE_FIELD,
                        value,
                    });
                }
            }
            Block::Actions { buttons } => {
                // The row itself is drawn at the bottom of the message; here it only holds
                // the place its status line takes after a click.
                current.pieces.push(Piece {
                    text: String::new(),
                    tight: false,
                    weight: STATUS_WEIGHT,
                });
                raw_groups.push((buttons.clone(), subject.clone()));
            }
        }
    }
    if !current.is_empty() {
        sections.push(current);
    }
    let mut labels: Vec<&str> = raw_groups
        .iter()
        .flat_map(|(buttons, _)| buttons.iter().map(|b| b.label.as_str()))
        .collect();
    labels.sort_unstable();
    let repeated = labels.windows(2).any(|pair| pair[0] == pair[1]);
    for (buttons, subject) in &raw_groups {
        groups.push(Group {
            // A button without an id could never be answered (and Discord refuses it).
            buttons: buttons
                .iter()
                .filter(|button| !button.action_id.is_empty())
                .map(|button| {
                    let label = match subject {
                        Some(subject) if repeated => {
                            format!("{} · {}", button.label, subject.replace(['\n', '\r'], " "))
                        }
                        _ => button.label.clone(),
                    };
                    let label = if label.trim().is_empty() {
                        "…".to_string()
                    } else {
                        label
                    };
                    DiscordButton {
                        kind: 2,
                        style: style_code(button.style),
                        label: cut(&label, LABEL_LIMIT),
                        custom_id: button.action_id.chars().take(CUSTOM_ID_LIMIT).collect(),
                    }
                })
                .collect(),
        });
    }
    (sections, groups)
}

/// Pieces as one text, and what they weigh together.
fn joined(pieces: &[Piece]) -> (String, usize) {
    let mut text = String::new();
    let mut weight = 0;
    for piece in pieces {
        if weight > 0 {
            weight += if piece.tight { 1 } else { 2 };
        }
        weight += piece.weight;
        if !piece.text.is_empty() {
            if !text.is_empty() {
                text.push_str(if piece.tight { "\n" } else { "\n\n" });
            }
            text.push_str(&piece.text);
        }
    }
    (text, weight)
}

/// A section's embeds, each within the per-embed limits and `EMBED_BUDGET`.
fn embeds_of(section: Section) -> Vec<EmbedDraft> {
    let mut embeds = Vec::new();
    let title_weight = section.title.as_deref().map_or(0, count);
    let mut draft = EmbedDraft {
        title: section.title,
        weight: title_weight,
        ..EmbedDraft::default()
    };
    for piece in section.pieces {
        let separator = if draft.description_weight == 0 {
            0
        } else if piece.tight {
            1
        } else {
            2
        };
        let added = separator + piece.weight;
        if draft.description_weight > 0
            && (draft.description_weight + added > DESCRIPTION_LIMIT
                || draft.weight + added > EMBED_BUDGET)
        {
            embeds.push(std::mem::take(&mut draft));
            draft.description_weight = piece.weight;
            draft.weight = piece.weight;
            draft.description = piece.text;
            continue;
        }
        if !piece.text.is_empty() {
            if !draft.description.is_empty() {
                draft
                    .description
                    .push_str(if piece.tight { "\n" } else { "\n\n" });
            }
            draft.description.push_str(&piece.text);
        }
        draft.description_weight += added;
        draft.weight += added;
    }
    for field in section.fields {
        let weight = count(&field.name) + count(&field.value);
        if draft.fields.len() == FIELDS_PER_EMBED || draft.weight + weight > EMBED_BUDGET {
            embeds.push(std::mem::take(&mut draft));
        }
        draft.weight += weight;
        draft.fields.push(field);
    }
    if !draft.is_empty() {
        embeds.push(draft);
    }
    embeds
}

/// Packs button groups into rows: a group stays in one row (a group of more than five is
/// cut into rows of five), at most `ROWS_PER_MESSAGE` rows. Returns the rows and how many
/// buttons did not fit.
fn rows_of(groups: Vec<Group>) -> (Vec<ActionRow>, usize) {
    let mut rows: Vec<Vec<DiscordButton>> = Vec::new();
    let mut left_out = 0;
    // Five groups or fewer: one row each, so each row reads as one thing.
    let pack = groups.len() > ROWS_PER_MESSAGE;
    for group in groups {
        for chunk in group.buttons.chunks(BUTTONS_PER_ROW) {
            let fits_last = pack
                && rows
                    .last()
                    .is_some_and(|row| row.len() + chunk.len() <= BUTTONS_PER_ROW);
            if fits_last {
                if let Some(row) = rows.last_mut() {
                    row.extend(chunk.iter().cloned());
                }
            } else if rows.len() < ROWS_PER_MESSAGE {
                rows.push(chunk.to_vec());
            } else {
                left_out += chunk.len();
            }
        }
    }
    let rows = rows
        .into_iter()
        .map(|components| ActionRow {
            kind: 1,
            components,
        })
        .collect();
    (rows, left_out)
}

/// Renders `message` as one or more Discord messages, in the order they are sent. Buttons
/// are on the last one.
pub fn render(message: &Message) -> Vec<DiscordMessage> {
    let (mut sections, groups) = sections_of(message);
    // Words before the first title (a greeting, a short answer) read best as the message's
    // own text, and leave the embeds for the procedures.
    let lead = match sections.first() {
        Some(first) if first.title.is_none() && first.fields.is_empty() => {
            let (text, weight) = joined(&first.pieces);
            (weight <= CONTENT_LIMIT).then_some(text)
        }
        _ => None,
    };
    if lead.is_some() {
        sections.remove(0);
    }
    let lead = lead.filter(|text| !text.is_empty());
    let embeds: Vec<EmbedDraft> = sections.into_iter().flat_map(embeds_of).collect();
    let mut parts: Vec<Vec<Embed>> = Vec::new();
    let mut current: Vec<Embed> = Vec::new();
    let mut weight = 0;
    for draft in embeds {
        if !current.is_empty()
            && (current.len() == EMBEDS_PER_MESSAGE
                || weight + draft.weight > CHARACTERS_PER_MESSAGE)
        {
            parts.push(std::mem::take(&mut current));
            weight = 0;
        }
        weight += draft.weight;
        current.push(draft.finish());
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    let mut lead = lead;
    let (rows, left_out) = rows_of(groups);
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(index, mut embeds)| {
            // An embed that held only a button row's place has nothing to show, and Discord
            // refuses an empty embed. Dropping it after the layout keeps every part in place.
            embeds.retain(|embed| {
                embed.title.is_some() || embed.description.is_some() || !embed.fields.is_empty()
            });
            let is_last = index == last;
            let note = (is_last && left_out > 0).then(|| {
                format!(
                    "{left_out} more buttons do not fit in one Discord message: type `ack <procedure>`, or use `/procedure pending`, for the rest."
                )
            });
            let content = match (lead.take(), note) {
                (Some(lead), Some(note)) => Some(cut(&format!("{lead}\n\n{note}"), CONTENT_LIMIT)),
                (Some(text), None) | (None, Some(text)) => Some(cut(&text, CONTENT_LIMIT)),
                (None, None) => None,
            };
            if embeds.is_empty() && content.is_none() {
                // Discord refuses a message with nothing in it.
                embeds.push(Embed {
                    description: Some("…".to_string()),
                    color: COLOUR,
                    ..Embed::default()
                });
            }
            DiscordMessage {
                content,
                embeds,
                components: if is_last { rows.clone() } else { Vec::new() },
                allowed_mentions: AllowedMentions::default(),
                flags: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::announce::{AckItem, AskReason, ITEMS_PER_MESSAGE, acknowledgement_dm};
    use crate::core::compose::{self, PendingItem};
    use crate::core::message::Button;
    use crate::core::procedure::ProcedureId;

    fn check_limits(parts: &[DiscordMessage]) {
        for part in parts {
            assert!(part.embeds.len() <= EMBEDS_PER_MESSAGE);
            assert!(part.embed_characters() <= CHARACTERS_PER_MESSAGE);
            assert!(part.components.len() <= ROWS_PER_MESSAGE);
            assert!(part.content.as_deref().map_or(0, count) <= CONTENT_LIMIT);
            assert!(!part.embeds.is_empty() || part.content.is_some());
            for embed in &part.embeds {
                assert!(embed.title.as_deref().map_or(0, count) <= TITLE_LIMIT);
                assert!(embed.description.as_deref().map_or(0, count) <= DESCRIPTION_LIMIT);
                assert!(embed.fields.len() <= FIELDS_PER_EMBED);
                for field in &embed.fields {
                    assert!(count(&field.name) <= FIELD_NAME_LIMIT);
                    assert!(count(&field.value) <= FIELD_VALUE_LIMIT);
                }
            }
            for row in &part.components {
                assert!(!row.components.is_empty() && row.components.len() <= BUTTONS_PER_ROW);
                for button in &row.components {
                    assert!(count(&button.label) <= LABEL_LIMIT);
                    assert!(button.custom_id.len() <= CUSTOM_ID_LIMIT);
                }
            }
            assert_eq!(part.allowed_mentions, AllowedMentions::default());
        }
        for part in &parts[..parts.len() - 1] {
            assert!(part.components.is_empty(), "buttons only on the last part");
        }
    }

    fn json(parts: &[DiscordMessage]) -> String {
        serde_json::to_string_pretty(parts).unwrap()
    }

    fn item(n: usize, summary: Option<String>) -> AckItem {
        AckItem {
            id: ProcedureId::parse(&format!("procedure-{n}")).unwrap(),
            title: format!("Procedure number {n}"),
            version: Some("1.0.0".into()),
            content_hash: format!("{n:02}").repeat(32),
            owner: Some("it-lead@example.com".into()),
            summary,
            reason: AskReason::Changed,
        }
    }

    #[test]
    fn mentions_and_markup_in_procedure_text_are_inert() {
        let text = "Ping @everyone and @here, <@123>, <@!123>, <@&456>, <#789> and </procedure:1>; *bold* __under__ ~~gone~~ ||spoiler|| [click](https://evil.example) `keep <@1> *code*`\n> quote\n# heading\n-# small";
        let rendered = inert(text);
        insta::assert_snapshot!(rendered);
        for live in ["@everyone", "@here", "<@1", "<@!", "<@&", "<#7", "</p"] {
            assert!(!rendered.contains(live), "{live} survived in {rendered}");
        }
        // An unmatched backtick is escaped, so nothing after it hides from escaping.
        assert_eq!(inert("a ` b *c*"), "a \\` b \\*c\\*");
    }

    #[test]
    fn a_procedure_view_renders_as_an_embed_with_fields() {
        let parsed = crate::core::parse::parse_procedure(
            "procedures/backup.md",
            b"---\nid: backup-customer-data\ntitle: Back up the customer database\nowner: it-lead@example.com\naudience: [it-ops]\nclassification: confidential\nversion: 1.3.0\nlast_reviewed: 2026-06-01\nreview_every: 12 months\ncontrols: [A.8.13]\n---\n# Back up\n\n## Purpose\nKeep customer data recoverable. Tell @everyone in <#123> and <@456>.\n\n## Steps\n1. Log in to the backup console.\n2. Start a *full* backup.\n   - Wait for it.\n3. Check the report.\n",
        );
        let procedure = parsed.procedure.expect("the test procedure parses");
        let view = compose::procedure_view(
            &procedure,
            vec![
                Button::new(
                    "Acknowledge v1.3.0",
                    "ack/backup-customer-data/0123456789ab",
                )
                .primary(),
            ],
            Some("https://git.example.com/acme/procedures/src/main/backup (1).md".into()),
        );
        let parts = render(&view);
        check_limits(&parts);
        assert_eq!(parts.len(), 1);
        insta::assert_snapshot!(json(&parts));
    }

    #[test]
    fn a_full_acknowledgement_dm_fits_one_message_with_packed_buttons() {
        let items: Vec<AckItem> = (1..=ITEMS_PER_MESSAGE)
            .map(|n| item(n, Some(format!("v0.9.0 → v1.0.0. Step {n} changed."))))
            .collect();
        let messages = acknowledgement_dm("Sam Ops", &items);
        assert_eq!(messages.len(), 1);
        let parts = render(&messages[0]);
        check_limits(&parts);
        assert_eq!(parts.len(), 1);
        let ids: Vec<&str> = parts[0].custom_ids().collect();
        assert_eq!(ids.len(), 2 * ITEMS_PER_MESSAGE, "every button is kept");
        assert_eq!(
            ids,
            messages[0].action_ids().collect::<Vec<_>>(),
            "in the message's order"
        );
        // The same label twice would be ambiguous: each names what it acts on.
        let labels: Vec<&str> = parts[0]
            .components
            .iter()
            .flat_map(|r| r.components.iter().map(|b| b.label.as_str()))
            .collect();
        assert_eq!(labels[0], "Read · Procedure number 1 (v1.0.0)");
        assert_eq!(
            labels[1],
            "Acknowledge v1.0.0 · Procedure number 1 (v1.0.0)"
        );
        insta::assert_snapshot!(json(&parts));
    }

    #[test]
    fn a_long_acknowledgement_dm_splits_with_buttons_on_the_last_part_and_a_click_moves_nothing() {
        let long = "A step changed in a way that is long to explain. ".repeat(14);
        let items: Vec<AckItem> = (1..=ITEMS_PER_MESSAGE)
            .map(|n| item(n, Some(long.clone())))
            .collect();
        let message = acknowledgement_dm("Sam Ops", &items).remove(0);
        let parts = render(&message);
        check_limits(&parts);
        assert!(parts.len() > 1, "this much text needs several messages");
        let last = parts.last().unwrap();
        assert_eq!(last.custom_ids().count(), 2 * ITEMS_PER_MESSAGE);
        // Clicking an item in the first part replaces its row with a status line, as the
        // engine does: the text parts stay exactly as they were, only the last one changes.
        let first_ack = message.action_ids().nth(1).unwrap().to_string();
        let mut clicked = message.clone();
        assert!(
            clicked
                .replace_actions_with(&first_ack, "✅ Acknowledged v1.0.0 at 2026-12-01 09:00 UTC")
        );
        let after = render(&clicked);
        check_limits(&after);
        let titles = |parts: &[DiscordMessage]| -> Vec<Vec<Option<String>>> {
            parts
                .iter()
                .map(|p| p.embeds.iter().map(|e| e.title.clone()).collect())
                .collect()
        };
        assert_eq!(titles(&after), titles(&parts), "no embed moves");
        // Only the clicked (last) message is edited: every part after the clicked item's is
        // unchanged but for its buttons; the status line lands beside the item's text.
        let last = after.len() - 1;
        assert_eq!(after[last].embeds, parts[last].embeds);
        assert_eq!(after[last].custom_ids().count(), 2 * ITEMS_PER_MESSAGE - 2);
        assert!(!after[last].custom_ids().any(|id| id == first_ack));
        assert!(format!("{:?}", after[0]).contains("✅ Acknowledged v1.0.0"));
    }

    #[test]
    fn a_long_procedure_is_split_across_embeds_and_messages_within_every_limit() {
        let steps: Vec<String> = (1..=120)
            .map(|n| {
                format!(
                    "Step {n}: {}",
                    "do the careful thing and write it down ".repeat(3)
                )
            })
            .collect();
        let message = Message::new()
            .header("x".repeat(400))
            .text("y".repeat(9000))
            .list(true, steps)
            .fields(
                (0..40)
                    .map(|n| (format!("Field {n}"), "v".repeat(1500)))
                    .collect(),
            )
            .actions(vec![Button::new("l".repeat(200), "show/a")]);
        let parts = render(&message);
        check_limits(&parts);
        assert!(parts.len() >= 3);
        let first = &parts[0].embeds[0];
        assert_eq!(first.title.as_deref().map(count), Some(TITLE_LIMIT));
        let text: String = parts
            .iter()
            .flat_map(|p| p.embeds.iter().filter_map(|e| e.description.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(text.matches('y').count(), 9000, "no text is lost");
        assert!(text.contains("120. Step 120"));
        assert_eq!(
            parts.last().unwrap().custom_ids().collect::<Vec<_>>(),
            ["show/a"]
        );
    }

    #[test]
    fn more_buttons_than_a_message_holds_are_left_out_with_a_note() {
        let items: Vec<PendingItem> = (1..=30)
            .map(|n| PendingItem {
                id: ProcedureId::parse(&format!("p{n}")).unwrap(),
                title: format!("P{n}"),
                version: None,
                content_hash: "ab".repeat(32),
                since: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
            })
            .collect();
        let parts = render(&compose::pending_list(&items));
        check_limits(&parts);
        let last = parts.last().unwrap();
        assert_eq!(last.custom_ids().count(), 20, "5 rows of two pairs");
        assert!(
            last.content
                .as_deref()
                .unwrap()
                .starts_with("40 more buttons")
        );
    }

    #[test]
    fn review_nudges_and_help_render() {
        let nudge = Message::new()
            .header("Review reminder")
            .text("Hi Ida, Back up v1.2.0 is due for review today. Is it still accurate?")
            .fields(vec![("Procedure".into(), "backup-customer-data".into())])
            .actions(vec![
                Button::new(
                    "Reviewed – still accurate",
                    "rv/ok/backup-customer-data/0123456789ab",
                )
                .primary(),
                Button::new("Needs changes", "rv/chg/backup-customer-data/0123456789ab"),
                Button::new("Snooze 7 days", "rv/snz/backup-customer-data/0123456789ab"),
            ])
            .context("Or type `review backup-customer-data ok|changes|snooze`.");
        let parts = render(&nudge);
        check_limits(&parts);
        insta::assert_snapshot!(json(&parts));
        insta::assert_snapshot!(json(&render(&compose::help())));
    }

    #[test]
    fn an_empty_message_still_renders_something_discord_accepts() {
        let parts = render(&Message::new());
        check_limits(&parts);
        assert_eq!(parts.len(), 1);
    }
}
