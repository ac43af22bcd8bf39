//! The neutral message model: what the bot says, before any platform renders it (Block Kit,
//! Discord components, plain text). No platform owns it; adapters render it.

use serde::{Deserialize, Serialize};

/// One message: a list of blocks, rendered top to bottom.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub blocks: Vec<Block>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// A title line.
    Header {
        text: String,
    },
    /// Running text. Plain text: renderers escape whatever their platform treats as markup.
    Text {
        text: String,
    },
    /// Label/value pairs (owner, version, classification).
    Fields {
        fields: Vec<(String, String)>,
    },
    /// A numbered or bulleted list (procedure steps, pending items).
    List {
        ordered: bool,
        items: Vec<String>,
    },
    /// Small print under the main content.
    Context {
        text: String,
    },
    /// A link out of chat (the procedure in the repository's web UI). `url` is http(s).
    Link {
        label: String,
        url: String,
    },
    /// Buttons in a row.
    Actions {
        buttons: Vec<Button>,
    },
    Divider,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    /// What the click means, as `core::request::Action` writes it (under 100 characters, so
    /// it fits Discord's `custom_id`).
    pub action_id: String,
    pub style: ButtonStyle,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonStyle {
    #[default]
    Default,
    Primary,
    Danger,
}

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    pub fn header(mut self, text: impl Into<String>) -> Message {
        self.blocks.push(Block::Header { text: text.into() });
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Message {
        self.blocks.push(Block::Text { text: text.into() });
        self
    }

    pub fn fields(mut self, fields: Vec<(String, String)>) -> Message {
        if !fields.is_empty() {
            self.blocks.push(Block::Fields { fields });
        }
        self
    }

    pub fn list(mut self, ordered: bool, items: Vec<String>) -> Message {
        if !items.is_empty() {
            self.blocks.push(Block::List { ordered, items });
        }
        self
    }

    pub fn context(mut self, text: impl Into<String>) -> Message {
        self.blocks.push(Block::Context { text: text.into() });
        self
    }

    /// Adds a link, if `url` is an http(s) URL; anything else is left out.
    pub fn link(mut self, label: impl Into<String>, url: Option<String>) -> Message {
        if let Some(url) = url.filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
            self.blocks.push(Block::Link {
                label: label.into(),
                url,
            });
        }
        self
    }

    pub fn actions(mut self, buttons: Vec<Button>) -> Message {
        if !buttons.is_empty() {
            self.blocks.push(Block::Actions { buttons });
        }
        self
    }

    pub fn divider(mut self) -> Message {
        self.blocks.push(Block::Divider);
        self
    }

    /// Every button's action id, in order.
    pub fn action_ids(&self) -> impl Iterator<Item = &str> {
        self.blocks.iter().flat_map(|block| match block {
            Block::Actions { buttons } => buttons.iter().map(|b| b.action_id.as_str()).collect(),
            _ => Vec::new(),
        })
    }

    /// Replaces the row of buttons holding `action_id` with a context line: how a message
    /// shows that its button has done its work ("Acknowledged v1.2 at …"). Returns whether
    /// such a row was found.
    pub fn replace_actions_with(&mut self, action_id: &str, text: &str) -> bool {
        for block in &mut self.blocks {
            if let Block::Actions { buttons } = block
                && buttons.iter().any(|b| b.action_id == action_id)
            {
                *block = Block::Context {
                    text: text.to_string(),
                };
                return true;
            }
        }
        false
    }

    /// The message as one line of plain text, for notifications and logs.
    pub fn summary_line(&self) -> String {
        self.blocks
            .iter()
            .find_map(|block| match block {
                Block::Header { text } | Block::Text { text } => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

impl Button {
    pub fn new(label: impl Into<String>, action_id: impl Into<String>) -> Button {
        Button {
            label: label.into(),
            action_id: action_id.into(),
            style: ButtonStyle::Default,
        }
    }

    pub fn primary(mut self) -> Button {
        self.style = ButtonStyle::Primary;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clicked_button_row_becomes_a_context_line() {
        let mut message = Message::new()
            .header("Backup")
            .actions(vec![Button::new("Acknowledge", "ack/backup/abc").primary()])
            .actions(vec![Button::new("Acknowledge", "ack/restore/def")]);
        assert!(message.replace_actions_with("ack/backup/abc", "Acknowledged"));
        assert_eq!(
            message.action_ids().collect::<Vec<_>>(),
            vec!["ack/restore/def"]
        );
        assert!(!message.replace_actions_with("ack/backup/abc", "again"));
    }

    #[test]
    fn messages_survive_a_round_trip_through_json() {
        let message = Message::new()
            .header("Title")
            .fields(vec![("Owner".into(), "a@example.com".into())])
            .list(true, vec!["one".into()])
            .divider();
        let json = serde_json::to_string(&message).unwrap();
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), message);
    }
}
