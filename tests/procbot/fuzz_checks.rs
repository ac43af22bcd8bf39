//! The checks behind the fuzz targets in `fuzz/`: each takes one input, runs it through the
//! real parser or renderer, and panics when an invariant breaks. The fuzz targets include
//! this file, and `fuzz_regressions` replays every kept finding through it, so a finding
//! fixed once stays fixed under the ordinary `cargo test`.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use serde_json::Value;
use sha2::Sha256;

use procbot::adapters::discord::endpoint::verifier;
use procbot::adapters::discord::interaction::{MESSAGE_COMPONENT, parse as parse_interaction};
use procbot::adapters::discord::port::{parse_message_ref, snowflake};
use procbot::adapters::discord::render::{self as discord, DiscordMessage};
use procbot::adapters::slack::http::{
    allowed_response_url, parse_command_form, parse_interaction_form, parse_push_event,
    verify_signature,
};
use procbot::adapters::slack::inbound::without_mentions;
use procbot::adapters::slack::render::{self as slack, Rendered};
use procbot::core::check::{SourceContent, SourceFile};
use procbot::core::compose::procedure_view;
use procbot::core::directory::Directory;
use procbot::core::message::{Block, Button, Message};
use procbot::core::parse::parse_procedure;
use procbot::core::procedure::ProcedureId;
use procbot::core::request::{HASH_PREFIX_LEN, MAX_REQUEST_CHARS, Request, action};
use procbot::core::schedule::Schedule;
use procbot::core::snapshot::build_snapshot;

/// The day the checks run "as of", so results do not depend on the calendar.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default()
}

/// The moment signatures are checked at.
const NOW: i64 = 1_800_000_000;

/// Slack's mention and broadcast syntax: none of it may reach a `mrkdwn` text.
fn slack_mention(text: &str) -> Option<&'static str> {
    ["<!", "<@", "<#"]
        .into_iter()
        .find(|syntax| text.contains(syntax))
}

/// A broadcast word that would ping a whole channel, in any case (`@channels` is another
/// word, `@channel!` is not).
fn broadcast(text: &str) -> Option<&'static str> {
    let lowered = text.to_ascii_lowercase();
    ["@here", "@channel", "@everyone"].into_iter().find(|word| {
        lowered.match_indices(word).any(|(at, _)| {
            !lowered[at + word.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
        })
    })
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// A Slack text object's text, checked to be of `kind` and 1 to `limit` characters long.
fn slack_text<'v>(object: &'v Value, kind: &str, limit: usize, what: &str) -> &'v str {
    assert_eq!(object["type"], kind, "{what} is not {kind}: {object}");
    let text = object["text"].as_str().unwrap_or_default();
    let length = chars(text);
    assert!(
        (1..=limit).contains(&length),
        "{what} has {length} characters, not 1 to {limit}"
    );
    assert!(broadcast(text).is_none(), "{what} can broadcast: {text:?}");
    text
}

fn mrkdwn_is_inert(text: &str, what: &str) {
    // A link section is `<https://…|label>`: only its label is procedure text.
    let shown = match text.strip_prefix("<http") {
        Some(link) => link
            .split_once('|')
            .map_or(link, |(_, label)| label.strip_suffix('>').unwrap_or(label)),
        None => text,
    };
    assert!(
        slack_mention(shown).is_none(),
        "{what} has mention syntax: {text:?}"
    );
}

/// One Slack message: within Block Kit's limits, every text inert, every button kept.
pub(crate) fn slack_rendered(message: &Message, rendered: &Rendered) {
    assert!(
        rendered.blocks.len() <= slack::MAX_MESSAGE_BLOCKS,
        "{} blocks",
        rendered.blocks.len()
    );
    let fallback = &rendered.text;
    assert!(
        (1..=3000).contains(&chars(fallback)),
        "fallback {fallback:?}"
    );
    assert!(broadcast(fallback).is_none(), "fallback {fallback:?}");
    mrkdwn_is_inert(fallback, "the fallback text");
    slack_blocks(&rendered.blocks);
    let parsed: Vec<slack_morphism::prelude::SlackBlock> =
        serde_json::from_value(Value::Array(rendered.blocks.clone()))
            .unwrap_or_else(|error| panic!("slack-morphism cannot read the blocks: {error}"));
    assert!(
        !parsed
            .iter()
            .any(|b| matches!(b, slack_morphism::prelude::SlackBlock::Unknown(_))),
        "a block slack-morphism does not know"
    );
    let rows = rendered
        .blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .count();
    if rows < slack::MAX_MESSAGE_BLOCKS {
        let wanted = message
            .action_ids()
            .filter(|id| (1..=255).contains(&id.len()))
            .count();
        let kept: usize = rendered
            .blocks
            .iter()
            .filter(|b| b["type"] == "actions")
            .map(|b| b["elements"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(kept, wanted, "buttons were lost");
    }
}

fn slack_blocks(blocks: &[Value]) {
    for block in blocks {
        match block["type"].as_str().unwrap_or_default() {
            "header" => {
                slack_text(&block["text"], "plain_text", 150, "a header");
            }
            "section" => {
                if let Some(fields) = block.get("fields") {
                    let fields = fields.as_array().cloned().unwrap_or_default();
                    assert!((1..=10).contains(&fields.len()), "{} fields", fields.len());
                    for field in &fields {
                        let text = slack_text(field, "mrkdwn", 2000, "a field");
                        mrkdwn_is_inert(text, "a field");
                    }
                } else {
                    let text = slack_text(&block["text"], "mrkdwn", 3000, "a section");
                    mrkdwn_is_inert(text, "a section");
                }
            }
            "context" => {
                let elements = block["elements"].as_array().cloned().unwrap_or_default();
                assert!(
                    (1..=10).contains(&elements.len()),
                    "a context of {elements:?}"
                );
                for element in &elements {
                    let text = slack_text(element, "mrkdwn", 3000, "a context line");
                    mrkdwn_is_inert(text, "a context line");
                }
            }
            "actions" => {
                let elements = block["elements"].as_array().cloned().unwrap_or_default();
                assert!(
                    (1..=25).contains(&elements.len()),
                    "{} buttons",
                    elements.len()
                );
                for button in &elements {
                    slack_text(&button["text"], "plain_text", 75, "a button");
                    let id = button["action_id"].as_str().unwrap_or_default();
                    assert!((1..=255).contains(&id.len()), "action id {id:?}");
                    let value = button["value"].as_str().unwrap_or_default();
                    assert!(value.len() <= 2000, "button value of {}", value.len());
                }
            }
            "divider" => {}
            other => panic!("a block of type {other:?}"),
        }
    }
}

/// Discord's mention syntax and broadcasts: none may reach a message's text.
fn discord_mention(text: &str) -> Option<&'static str> {
    ["@everyone", "@here", "<@", "<#", "</"]
        .into_iter()
        .find(|syntax| text.contains(syntax))
}

fn discord_text(text: &str, limit: usize, what: &str) {
    let length = chars(text);
    assert!(
        (1..=limit).contains(&length),
        "{what} has {length} characters, not 1 to {limit}"
    );
    assert!(
        discord_mention(text).is_none(),
        "{what} has mention syntax: {text:?}"
    );
}

/// A message's Discord bodies: within Discord's limits, inert, pinging no one, buttons on
/// the last one only.
pub(crate) fn discord_rendered(message: &Message, parts: &[DiscordMessage]) {
    assert!(!parts.is_empty(), "no Discord message at all");
    let last = parts.len() - 1;
    for (index, part) in parts.iter().enumerate() {
        assert!(part.allowed_mentions.parse.is_empty(), "allowed_mentions");
        assert!(
            part.content.is_some() || !part.embeds.is_empty() || !part.components.is_empty(),
            "an empty Discord message"
        );
        if let Some(content) = &part.content {
            discord_text(content, discord::CONTENT_LIMIT, "the content");
        }
        assert!(part.embeds.len() <= discord::EMBEDS_PER_MESSAGE);
        assert!(
            part.embed_characters() <= discord::CHARACTERS_PER_MESSAGE,
            "{} embed characters",
            part.embed_characters()
        );
        for embed in &part.embeds {
            if let Some(title) = &embed.title {
                discord_text(title, discord::TITLE_LIMIT, "an embed title");
            }
            if let Some(description) = &embed.description {
                discord_text(description, discord::DESCRIPTION_LIMIT, "a description");
            }
            assert!(
                embed.title.is_some() || embed.description.is_some() || !embed.fields.is_empty(),
                "an empty embed"
            );
            assert!(embed.fields.len() <= discord::FIELDS_PER_EMBED);
            for field in &embed.fields {
                discord_text(&field.name, discord::FIELD_NAME_LIMIT, "a field name");
                discord_text(&field.value, discord::FIELD_VALUE_LIMIT, "a field value");
            }
        }
        if index != last {
            assert!(part.components.is_empty(), "buttons before the last part");
        }
        assert!(part.components.len() <= discord::ROWS_PER_MESSAGE);
        for row in &part.components {
            assert!((1..=discord::BUTTONS_PER_ROW).contains(&row.components.len()));
            for button in &row.components {
                let label = chars(&button.label);
                assert!(
                    (1..=discord::LABEL_LIMIT).contains(&label),
                    "a label of {label}"
                );
                let id = chars(&button.custom_id);
                assert!(
                    (1..=discord::CUSTOM_ID_LIMIT).contains(&id),
                    "a custom_id of {id}"
                );
                assert!(
                    message
                        .action_ids()
                        .any(|action| action.starts_with(&button.custom_id)),
                    "a custom_id no button had"
                );
            }
        }
    }
}

/// One procedure file: parsed without panicking, checked, built into a snapshot, shown on
/// both platforms within their limits.
pub(crate) fn procedure_file(bytes: &[u8]) {
    let parsed = parse_procedure("procedures/fuzz.md", bytes);
    assert!(
        parsed.procedure.is_some() || parsed.has_errors(),
        "refused without an error"
    );
    for diagnostic in &parsed.diagnostics {
        assert!(
            diagnostic.position.line >= 1 && diagnostic.position.column >= 1,
            "{diagnostic:?}"
        );
    }
    let snapshot = build_snapshot(
        vec![SourceFile {
            path: "procedures/fuzz.md".into(),
            content: SourceContent::Bytes(bytes.to_vec()),
        }],
        None,
        today(),
        None,
        None,
    );
    for entry in snapshot.procedures.values() {
        let procedure = &entry.procedure;
        let hash = entry.content_hash.to_hex();
        let buttons = vec![
            Button::new("Acknowledge", action::acknowledge(&procedure.id, &hash)).primary(),
            Button::new("Read", action::show(&procedure.id)),
        ];
        let message = procedure_view(
            procedure,
            buttons,
            Some(format!("https://git.example.com/p/src/{}", procedure.path)),
        );
        for id in message.action_ids() {
            assert!(
                !matches!(Request::from_action(id), Request::Unknown { .. }),
                "procbot cannot read its own button {id:?}"
            );
        }
        slack_rendered(&message, &slack::render(&message));
        discord_rendered(&message, &discord::render(&message));
    }
}

/// `directory.yaml` and schedules: parsed without panicking, and a schedule that parses
/// fires where it says, in UTC and in a zone with daylight saving.
pub(crate) fn directory(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let (directory, diagnostics) = Directory::parse("procedures/directory.yaml", &text);
    for diagnostic in &diagnostics {
        assert!(
            diagnostic.position.line >= 1 && diagnostic.position.column >= 1,
            "{diagnostic:?}"
        );
    }
    let everyone = directory.everyone();
    for members in directory.teams.values() {
        assert!(
            members.iter().all(|m| everyone.contains(m)),
            "a team member is no person"
        );
    }
    let at = Utc
        .with_ymd_and_hms(2026, 3, 29, 0, 30, 0)
        .single()
        .unwrap_or_default();
    for line in text.lines().take(4) {
        if let Ok(schedule) = Schedule::parse(line) {
            schedule_fires(&schedule, &at);
            schedule_fires(&schedule, &at.with_timezone(&chrono_tz::Europe::Berlin));
            assert!(
                Schedule::parse(schedule.as_str()).is_ok(),
                "a schedule does not read back"
            );
        }
    }
}

fn schedule_fires<Z: TimeZone>(schedule: &Schedule, at: &DateTime<Z>) {
    if let Some(next) = schedule.next_after(at) {
        assert!(next > *at, "next_after is not after");
    }
    if let Some(latest) = schedule.latest_at_or_before(at) {
        assert!(latest <= *at, "latest_at_or_before is after");
    }
}

/// What procbot wrote in a button, rebuilt from what it read back.
fn written_action(request: &Request) -> Option<String> {
    Some(match request {
        Request::Acknowledge {
            id,
            hash_prefix: Some(hash),
        } => format!("ack/{id}/{hash}"),
        Request::Show { id } => format!("show/{id}"),
        Request::Review {
            id,
            outcome,
            hash_prefix: Some(hash),
        } => {
            let code = match outcome.as_str() {
                "still-accurate" => "ok",
                "needs-changes" => "chg",
                _ => "snz",
            };
            format!("rv/{code}/{id}/{hash}")
        }
        Request::RunStep {
            run,
            step,
            outcome: Some(outcome),
            note: None,
        } => action::run_step(*run, *step, *outcome),
        Request::FinishRun { run } => action::run_finish(*run),
        Request::ShowRun { run } => action::run_show(*run),
        _ => return None,
    })
}

/// Chat text and button ids: text is cut, never refused; an action id is `Unknown` unless it
/// is exactly one procbot writes.
pub(crate) fn chat_request(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for request in [
        Request::from_text(&text),
        Request::from_text(&without_mentions(&text)),
    ] {
        match &request {
            Request::Lookup { query } => assert!(chars(query) <= MAX_REQUEST_CHARS),
            Request::Unknown { text } => assert!(chars(text) <= MAX_REQUEST_CHARS),
            Request::RunStep {
                note: Some(note), ..
            } => {
                assert!(chars(note) <= MAX_REQUEST_CHARS)
            }
            _ => {}
        }
    }
    match Request::from_action(&text) {
        Request::Unknown { text } => assert!(chars(&text) <= 100),
        request => {
            let written = written_action(&request)
                .unwrap_or_else(|| panic!("a button cannot ask {request:?}"));
            assert!(
                written.eq_ignore_ascii_case(&text),
                "{text:?} read as {request:?}, which procbot writes as {written:?}"
            );
        }
    }
    // What procbot writes, it reads back.
    if let Some(word) = text.split(['/', ' ', '\n']).find(|w| !w.is_empty())
        && let Ok(id) = ProcedureId::parse(word)
    {
        let hash = format!("{:0>64}", bytes.len());
        assert_eq!(
            Request::from_action(&action::show(&id)),
            Request::Show { id: id.to_string() }
        );
        assert_eq!(
            Request::from_action(&action::acknowledge(&id, &hash)),
            Request::Acknowledge {
                id: id.to_string(),
                hash_prefix: Some(hash[..HASH_PREFIX_LEN].to_string()),
            }
        );
    }
}

fn slack_sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| panic!("HMAC takes any key"));
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

/// A URL a payload names may only be posted to when it is Slack's, over https, or the
/// configured API's host.
fn response_url_is_restricted(text: &str) {
    let slack_api = url::Url::parse("https://slack.com/api/").ok();
    let fake_api = url::Url::parse("http://127.0.0.1:4040/api/").ok();
    for base in slack_api.iter().chain(fake_api.iter()) {
        let Some(allowed) = allowed_response_url(text, base) else {
            continue;
        };
        let host = allowed.host_str().unwrap_or_default();
        let slack = allowed.scheme() == "https"
            && (host == "slack.com" || host.ends_with(".slack.com"))
            && allowed.port().is_none();
        let configured = allowed.scheme() == base.scheme()
            && allowed.host() == base.host()
            && allowed.port_or_known_default() == base.port_or_known_default();
        assert!(
            slack || configured,
            "{text:?} is allowed as {allowed} with {base}"
        );
        assert!(
            allowed.username().is_empty() && allowed.password().is_none(),
            "{text:?} carries credentials"
        );
    }
}

/// Slack's three HTTP bodies. The first byte picks the body; a random signature never
/// verifies, the right one always does.
pub(crate) fn slack_payloads(bytes: &[u8]) {
    let Some((&kind, body)) = bytes.split_first() else {
        return;
    };
    let secret = SecretString::from("fuzz-signing-secret");
    let timestamp = NOW.to_string();
    let signed = slack_sign("fuzz-signing-secret", &timestamp, body);
    assert_eq!(
        verify_signature(&secret, NOW, Some(&timestamp), Some(&signed), body),
        Ok(())
    );
    let (header, rest) = body.split_at(body.len().min(72));
    let forged = String::from_utf8_lossy(header);
    let forged_timestamp = String::from_utf8_lossy(&rest[..rest.len().min(12)]);
    for timestamp in [timestamp.as_str(), &forged_timestamp] {
        if forged.trim() != signed {
            assert!(
                verify_signature(&secret, NOW, Some(timestamp), Some(&forged), body).is_err(),
                "a forged signature verified"
            );
        }
    }
    match kind % 5 {
        0 => {
            if let Ok(event) = parse_command_form(body) {
                let _ = Request::from_text(event.text.as_deref().unwrap_or_default());
                response_url_is_restricted(event.response_url.0.as_str());
            }
        }
        1 | 2 => {
            let form = if kind % 5 == 1 {
                body.to_vec()
            } else {
                // The payload JSON itself, as Slack form-encodes it.
                let mut form = b"payload=".to_vec();
                form.extend(url::form_urlencoded::byte_serialize(body).flat_map(str::bytes));
                form
            };
            if let Ok(slack_morphism::prelude::SlackInteractionEvent::BlockActions(event)) =
                parse_interaction_form(&form)
            {
                for action in event.actions.iter().flatten() {
                    let _ = Request::from_action(&action.action_id.0);
                }
                if let Some(url) = &event.response_url {
                    response_url_is_restricted(url.0.as_str());
                }
            }
        }
        3 => {
            let _ = parse_push_event(body);
        }
        _ => response_url_is_restricted(&String::from_utf8_lossy(body)),
    }
}

/// The key pair the Discord checks sign with (fixed, so findings replay).
fn discord_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Discord interaction bodies: a random signature never verifies, the right one does; a
/// body that parses names only well-formed ids, and a click reads its custom id.
pub(crate) fn discord_payloads(bytes: &[u8]) {
    use ed25519_dalek::Signer;
    let key = discord_key();
    let Ok(checker) = verifier(&hex(key.verifying_key().as_bytes())) else {
        panic!("the fixed public key is refused");
    };
    let timestamp = NOW.to_string();
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(bytes);
    let signature = hex(&key.sign(&signed).to_bytes());
    assert!(checker.verify(&signature, &timestamp, bytes).is_ok());
    let forged = String::from_utf8_lossy(&bytes[..bytes.len().min(128)]);
    if forged != signature {
        assert!(
            checker.verify(&forged, &timestamp, bytes).is_err(),
            "a forged signature verified"
        );
    }
    let _ = verifier(&forged);
    let Ok(interaction) = parse_interaction(bytes) else {
        return;
    };
    if let Some(actor) = interaction.actor() {
        assert!(snowflake(&actor.user_id).is_some(), "{actor:?}");
        assert!(actor.workspace == "dm" || snowflake(&actor.workspace).is_some());
    }
    if let Some(clicked) = interaction.clicked() {
        assert!(parse_message_ref(&clicked).is_some(), "{clicked:?}");
    }
    let _ = interaction.focused();
    if let Some((request, origin)) = interaction.request() {
        if interaction.kind == MESSAGE_COMPONENT {
            let custom_id = interaction
                .data
                .as_ref()
                .and_then(|d| d.custom_id.as_deref())
                .unwrap_or_default();
            assert_eq!(request, Request::from_action(custom_id));
            assert_eq!(origin.message_ref, interaction.clicked());
        } else {
            assert_eq!(origin.message_ref, None);
        }
    }
}

/// A message on Slack, and twice over on the App Home tab.
pub(crate) fn slack_render(message: &Message) {
    slack_rendered(message, &slack::render(message));
    let home = slack::render_home(&[message.clone(), message.clone()]);
    let blocks = home["blocks"].as_array().cloned().unwrap_or_default();
    assert!(
        blocks.len() <= slack::MAX_VIEW_BLOCKS,
        "{} blocks",
        blocks.len()
    );
    slack_blocks(&blocks);
}

/// A message on Discord; re-rendered after a click replaces a button row by its status line,
/// text stays in the same Discord message.
pub(crate) fn discord_render(message: &Message) {
    let parts = discord::render(message);
    discord_rendered(message, &parts);
    let mut clicked = message.clone();
    let Some(id) = message.action_ids().next().map(str::to_string) else {
        return;
    };
    if clicked.replace_actions_with(&id, "✅ Acknowledged v1.2.3 at 2026-12-01 09:00 UTC") {
        let after = discord::render(&clicked);
        discord_rendered(&clicked, &after);
        assert_eq!(
            after.len(),
            parts.len(),
            "a click moved text between messages"
        );
    }
}

/// Every block type once, for tests that want a message of each.
pub(crate) fn every_block() -> Message {
    Message {
        blocks: vec![
            Block::Header { text: "T".into() },
            Block::Text { text: "t".into() },
            Block::Fields {
                fields: vec![("a".into(), "b".into())],
            },
            Block::List {
                ordered: true,
                items: vec!["i".into()],
            },
            Block::Context { text: "c".into() },
            Block::Link {
                label: "l".into(),
                url: "https://example.com/".into(),
            },
            Block::Actions {
                buttons: vec![Button::new("B", "show/x")],
            },
            Block::Divider,
        ],
    }
}
