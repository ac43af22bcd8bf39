//! Block Kit rendering of the neutral `Message`: pure functions from a message to the JSON
//! Slack receives (blocks and fallback text), within Block Kit's limits, with every piece of
//! procedure text escaped so it can never mention `@here`, `@channel` or anyone.

use serde_json::{Value, json};

use crate::core::message::{Block, ButtonStyle, Message};

/// Blocks in one message (Block Kit's limit), and in a Home tab view.
pub const MAX_MESSAGE_BLOCKS: usize = 50;
pub const MAX_VIEW_BLOCKS: usize = 100;
/// Characters in a section's text.
pub const MAX_SECTION_TEXT: usize = 3000;
const MAX_HEADER_TEXT: usize = 150;
const MAX_BUTTON_TEXT: usize = 75;
const MAX_FIELDS_PER_SECTION: usize = 10;
const MAX_FIELD_TEXT: usize = 2000;
const MAX_CONTEXT_TEXT: usize = 3000;
const MAX_ACTION_ID: usize = 255;
const MAX_BUTTONS_PER_BLOCK: usize = 25;
/// The notification text; Slack truncates far later, but a notification is one line.
const MAX_FALLBACK_TEXT: usize = 3000;

/// One message as Slack takes it: `text` for notifications and screen readers, `blocks` for
/// the layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub blocks: Vec<Value>,
}

/// A Zero-width word joiner, put after the `@` of a broadcast word so it reads the same and
/// pings no one.
const WORD_JOINER: char = '\u{2060}';

/// Breaks `@here`, `@channel` and `@everyone` (any case) so that no client or legacy parse
/// mode turns them into a broadcast.
fn defuse_broadcasts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let word: String = rest
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect::<String>()
            .to_ascii_lowercase();
        if matches!(word.as_str(), "here" | "channel" | "everyone") {
            out.push(WORD_JOINER);
        }
    }
    out.push_str(rest);
    out
}

/// Text for a `mrkdwn` object: Slack's three control characters escaped (so `<!channel>`,
/// `<@U123>` and `<http://x|y>` stay literal text) and broadcasts defused.
pub fn escape_mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in defuse_broadcasts(text).chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// One character of `mrkdwn` text, with Slack's control characters escaped.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

/// Text for a `plain_text` object: Slack shows it as written (no escaping), but broadcasts are
/// defused all the same and newlines, which headers and buttons cannot show, become spaces.
fn plain(text: &str, limit: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    cut_rendered(&one_line, limit, defuse_broadcasts)
}

/// `text` as `render` makes it (escaped, broadcasts defused), in at most `limit` characters.
/// The source is cut, never the rendered text: a cut cannot split an escape, nor end a longer
/// word just after `@here` and so make a broadcast of it.
fn cut_rendered(text: &str, limit: usize, render: impl Fn(&str) -> String) -> String {
    let mut budget = limit;
    loop {
        let rendered = render(&truncate(text, budget));
        let length = rendered.chars().count();
        if length <= limit || budget == 0 {
            return rendered;
        }
        budget = budget.saturating_sub((length - limit).max(1));
    }
}

/// Cuts `text` to at most `limit` characters, ending with "…" when cut.
fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Escaped `text` in pieces of at most `limit` characters, cut at line ends where possible
/// and never inside an escape sequence.
fn escaped_chunks(text: &str, limit: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.split_inclusive('\n') {
        let escaped = escape_mrkdwn(line);
        let len = escaped.chars().count();
        if current_len + len <= limit {
            current.push_str(&escaped);
            current_len += len;
            continue;
        }
        if !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if len <= limit {
            current = escaped;
            current_len = len;
            continue;
        }
        // One line longer than a section: cut it between escaped characters, its broadcasts
        // defused first (defusing one character at a time would see no word after an `@`).
        for c in defuse_broadcasts(line).chars() {
            let mut piece = String::new();
            push_escaped(&mut piece, c);
            let piece_len = piece.chars().count();
            if current_len + piece_len > limit {
                chunks.push(std::mem::take(&mut current));
                current_len = 0;
            }
            current.push_str(&piece);
            current_len += piece_len;
        }
    }
    if !current.trim().is_empty() {
        chunks.push(current);
    }
    chunks
        .into_iter()
        .map(|c| c.trim_end_matches('\n').to_string())
        .filter(|c| !c.trim().is_empty())
        .collect()
}

/// A button's label, or `…` for a blank one (a button needs a label).
fn label_or_ellipsis(label: &str) -> &str {
    if label.trim().is_empty() {
        "…"
    } else {
        label
    }
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// A link's target as Slack's `<url|label>` syntax takes it: only http(s), and without the
/// characters that would end the link early.
fn link_target(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let text = parsed.as_str();
    (!text.contains(['|', '<', '>', ' '])).then(|| text.replace('&', "&amp;"))
}

fn blocks_of(block: &Block) -> Vec<Value> {
    match block {
        // Block Kit refuses an empty text object: a blank header or context line is left out.
        Block::Header { text } if text.trim().is_empty() => Vec::new(),
        Block::Header { text } => vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": plain(text, MAX_HEADER_TEXT), "emoji": true},
        })],
        Block::Text { text } => escaped_chunks(text, MAX_SECTION_TEXT)
            .into_iter()
            .map(section)
            .collect(),
        Block::Fields { fields } => fields
            .chunks(MAX_FIELDS_PER_SECTION)
            .map(|chunk| {
                let fields: Vec<Value> = chunk
                    .iter()
                    .map(|(label, value)| {
                        // `*` and the line break are not escaped: escaping the whole is
                        // escaping each part.
                        let text = format!("*{}*\n{value}", label.replace('*', ""));
                        json!({"type": "mrkdwn", "text": cut_rendered(&text, MAX_FIELD_TEXT, escape_mrkdwn)})
                    })
                    .collect();
                json!({"type": "section", "fields": fields})
            })
            .collect(),
        Block::List { ordered, items } => {
            let lines: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let marker = if *ordered {
                        format!("{}.", index + 1)
                    } else {
                        "•".to_string()
                    };
                    format!("{marker} {item}")
                })
                .collect();
            escaped_chunks(&lines.join("\n"), MAX_SECTION_TEXT)
                .into_iter()
                .map(section)
                .collect()
        }
        Block::Context { text } if text.trim().is_empty() => Vec::new(),
        Block::Context { text } => vec![json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": cut_rendered(text, MAX_CONTEXT_TEXT, escape_mrkdwn)}],
        })],
        Block::Link { label, url } => match link_target(url) {
            Some(target) => vec![section(format!(
                "<{target}|{}>",
                escape_mrkdwn(&label.replace('|', "/"))
            ))],
            None => Vec::new(),
        },
        Block::Actions { buttons } => {
            let elements: Vec<Value> = buttons
                .iter()
                .filter(|b| !b.action_id.is_empty() && b.action_id.len() <= MAX_ACTION_ID)
                .map(|button| {
                    let mut element = json!({
                        "type": "button",
                        "text": {"type": "plain_text", "text": plain(label_or_ellipsis(&button.label), MAX_BUTTON_TEXT), "emoji": true},
                        "action_id": button.action_id,
                        "value": button.action_id,
                    });
                    match button.style {
                        ButtonStyle::Primary => element["style"] = json!("primary"),
                        ButtonStyle::Danger => element["style"] = json!("danger"),
                        ButtonStyle::Default => {}
                    }
                    element
                })
                .collect();
            elements
                .chunks(MAX_BUTTONS_PER_BLOCK)
                .map(|chunk| json!({"type": "actions", "elements": chunk}))
                .collect()
        }
        Block::Divider => vec![json!({"type": "divider"})],
    }
}

fn is_text_section(block: &Value) -> bool {
    block["type"] == "section" && block.get("fields").is_none() && block.get("text").is_some()
}

/// Fits `blocks` into `limit`: first without dividers, then with neighbouring text sections
/// merged, and only as a last resort cut, with a note saying so. Buttons are kept to the end.
fn fit(mut blocks: Vec<Value>, limit: usize) -> Vec<Value> {
    if blocks.len() <= limit {
        return blocks;
    }
    blocks.retain(|b| b["type"] != "divider");
    if blocks.len() > limit {
        let mut merged: Vec<Value> = Vec::with_capacity(blocks.len());
        for block in blocks {
            if let Some(last) = merged.last_mut()
                && is_text_section(last)
                && is_text_section(&block)
            {
                let joined = format!(
                    "{}\n\n{}",
                    last["text"]["text"].as_str().unwrap_or_default(),
                    block["text"]["text"].as_str().unwrap_or_default()
                );
                if joined.chars().count() <= MAX_SECTION_TEXT {
                    last["text"]["text"] = json!(joined);
                    continue;
                }
            }
            merged.push(block);
        }
        blocks = merged;
    }
    if blocks.len() > limit {
        // Keep every row of buttons (what the message asks of the reader) and as much of
        // the rest, in order, as fits beside them and the note.
        let actions = blocks.iter().filter(|b| b["type"] == "actions").count();
        let mut room = limit.saturating_sub(actions + 1);
        blocks.retain(|b| {
            if b["type"] == "actions" {
                return true;
            }
            if room > 0 {
                room -= 1;
                return true;
            }
            false
        });
        blocks.truncate(limit.saturating_sub(1));
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "This message was shortened to fit Slack. Type `/procedure show <id>` to read a procedure in full."}],
        }));
    }
    blocks
}

/// A message's notification text: its first header or text line.
fn fallback_text(message: &Message) -> String {
    let line = message.summary_line();
    let line = if line.is_empty() {
        "procbot".to_string()
    } else {
        line
    };
    cut_rendered(&line, MAX_FALLBACK_TEXT, escape_mrkdwn)
}

/// A message as one Slack message: at most 50 blocks, each within its own limits.
pub fn render(message: &Message) -> Rendered {
    let blocks: Vec<Value> = message.blocks.iter().flat_map(blocks_of).collect();
    Rendered {
        text: fallback_text(message),
        blocks: fit(blocks, MAX_MESSAGE_BLOCKS),
    }
}

/// The App Home tab: the given messages one after another, divided, within a view's 100
/// blocks.
pub fn render_home(parts: &[Message]) -> Value {
    let mut blocks = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            blocks.push(json!({"type": "divider"}));
        }
        blocks.extend(part.blocks.iter().flat_map(blocks_of));
    }
    json!({"type": "home", "blocks": fit(blocks, MAX_VIEW_BLOCKS)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::announce::{AckItem, AskReason, acknowledgement_dm};
    use crate::core::compose;
    use crate::core::message::Button;
    use crate::core::procedure::ProcedureId;

    fn texts(rendered: &Rendered) -> String {
        serde_json::to_string(&rendered.blocks).unwrap()
    }

    #[test]
    fn procedure_text_cannot_mention_anyone() {
        let message = Message::new()
            .header("Ping @here now")
            .text("<!channel> please read, <@U024BE7LH> too, @Everyone & <!here|here>")
            .fields(vec![("Owner".into(), "<@U1>".into())])
            .list(true, vec!["tell @channel".into()])
            .context("<!subteam^S1>")
            .actions(vec![Button::new("@here ack", "ack/backup/0123456789ab")]);
        let rendered = render(&message);
        let json = texts(&rendered);
        for raw in ["<!channel>", "<@U024BE7LH>", "<!here", "<@U1>", "<!subteam"] {
            assert!(!json.contains(raw), "{raw} survived: {json}");
        }
        for word in ["@here", "@channel", "@Everyone"] {
            assert!(!json.contains(word), "{word} survived: {json}");
        }
        assert!(json.contains("&lt;!channel&gt;"), "{json}");
        assert!(rendered.text.contains("Ping @\u{2060}here"));
        insta::assert_json_snapshot!(rendered.blocks);
    }

    #[test]
    fn an_acknowledgement_dm_renders_with_its_buttons() {
        let items = vec![
            AckItem {
                id: ProcedureId::parse("backup-customer-data").unwrap(),
                title: "Back up the customer database".into(),
                version: Some("1.3.0".into()),
                content_hash: "0123456789abcdef".repeat(4),
                owner: Some("it-lead@example.com".into()),
                summary: Some("v1.2.0 → v1.3.0. Step 2 changed: Start a full backup.".into()),
                reason: AskReason::Changed,
            },
            AckItem {
                id: ProcedureId::parse("incident-response").unwrap(),
                title: "Respond to a security incident".into(),
                version: Some("2.0.0".into()),
                content_hash: "fedcba9876543210".repeat(4),
                owner: None,
                summary: None,
                reason: AskReason::NewToThem,
            },
        ];
        let rendered: Vec<Value> = acknowledgement_dm("Sam Ops", &items)
            .iter()
            .map(|m| json!({"text": render(m).text, "blocks": render(m).blocks}))
            .collect();
        insta::assert_json_snapshot!(rendered);
    }

    #[test]
    fn a_full_acknowledgement_dm_fits_one_message() {
        let items: Vec<AckItem> = (0..crate::core::announce::ITEMS_PER_MESSAGE)
            .map(|n| AckItem {
                id: ProcedureId::parse(&format!("procedure-{n}")).unwrap(),
                title: format!("Procedure number {n}"),
                version: Some("1.0.0".into()),
                content_hash: format!("{n:02}").repeat(32),
                owner: Some("it-lead@example.com".into()),
                summary: Some("Step 2 changed: something long enough to read.".into()),
                reason: AskReason::Changed,
            })
            .collect();
        for message in acknowledgement_dm("Sam Ops", &items) {
            let rendered = render(&message);
            assert!(rendered.blocks.len() <= MAX_MESSAGE_BLOCKS);
            let buttons: Vec<&str> = rendered
                .blocks
                .iter()
                .filter(|b| b["type"] == "actions")
                .flat_map(|b| b["elements"].as_array().unwrap())
                .map(|e| e["action_id"].as_str().unwrap())
                .collect();
            assert_eq!(
                buttons.len(),
                message.action_ids().count(),
                "every button survives"
            );
        }
    }

    #[test]
    fn a_long_procedure_is_split_within_block_kit_limits() {
        let steps: Vec<String> = (1..=1500)
            .map(|n| {
                format!(
                    "Step {n}: {}",
                    "do the careful thing & check it. ".repeat(4)
                )
            })
            .collect();
        let message = Message::new()
            .header("H".repeat(400))
            .text("x".repeat(7000))
            .list(true, steps)
            .actions(vec![Button::new("Acknowledge", "ack/backup/0123456789ab")]);
        let rendered = render(&message);
        assert!(rendered.blocks.len() <= MAX_MESSAGE_BLOCKS);
        for block in &rendered.blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                let limit = if block["type"] == "header" {
                    MAX_HEADER_TEXT
                } else {
                    MAX_SECTION_TEXT
                };
                assert!(text.chars().count() <= limit, "{}", text.len());
                assert!(!text.ends_with("&am"), "an entity was cut");
            }
        }
        let last_actions = rendered.blocks.iter().rposition(|b| b["type"] == "actions");
        assert!(last_actions.is_some(), "the Acknowledge button is kept");
        let all = texts(&rendered);
        assert!(all.contains("Step 1:") && all.contains("shortened to fit Slack"));
    }

    #[test]
    fn links_are_only_http_and_cannot_break_out() {
        let ok = render(&Message::new().link(
            "Open <b>",
            Some("https://git.example.com/p/src/a&b.md".into()),
        ));
        assert_eq!(
            ok.blocks[0]["text"]["text"],
            "<https://git.example.com/p/src/a&amp;b.md|Open &lt;b&gt;>"
        );
        let broken = render(&Message {
            blocks: vec![Block::Link {
                label: "x".into(),
                url: "javascript:alert(1)".into(),
            }],
        });
        assert!(broken.blocks.is_empty());
    }

    #[test]
    fn help_renders_as_block_kit() {
        insta::assert_json_snapshot!(render(&compose::help()).blocks);
    }

    #[test]
    fn rendered_blocks_parse_as_slack_morphism_blocks() {
        let message = compose::help()
            .fields(vec![("Owner".into(), "a@example.com".into())])
            .context("small print")
            .link("Open", Some("https://example.com/x".into()))
            .divider()
            .actions(vec![Button::new("Go", "show/backup").primary()]);
        let blocks: Vec<slack_morphism::prelude::SlackBlock> =
            serde_json::from_value(Value::Array(render(&message).blocks)).unwrap();
        assert!(
            !blocks
                .iter()
                .any(|b| matches!(b, slack_morphism::prelude::SlackBlock::Unknown(_)))
        );
    }
}
