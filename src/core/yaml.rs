//! A small position-keeping YAML tree, built from saphyr-parser events.
//!
//! Front matter and `directory.yaml` need the line and column of every value so that
//! diagnostics can point at it, and they need the text of scalars exactly as written
//! (`version: 1.10` is not the float 1.1). Building our own tree from parser events gives
//! both, and lets us bound nesting and alias expansion so hostile input cannot exhaust the
//! stack or memory.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::core::diagnostic::Position;

/// Deeper nesting than this is refused: no procedure field needs more than three levels.
const MAX_DEPTH: usize = 64;
/// Upper bound on nodes after alias expansion, against "billion laughs" documents.
const MAX_NODES: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlNode {
    pub position: Position,
    pub value: YamlValue,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum YamlValue {
    /// A scalar as written (after YAML unescaping); `quoted` tells `"1.0"` from `1.0`.
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<YamlNode>),
    /// Entries in document order; duplicates are kept so callers can report them.
    Mapping(Vec<(YamlNode, YamlNode)>),
}

impl YamlNode {
    /// A plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        match &self.value {
            YamlValue::Scalar {
                text,
                quoted: false,
            } => matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"),
            _ => false,
        }
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            YamlValue::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// What kind of value this is, for messages ("expected a list, found a mapping").
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            YamlValue::Scalar { .. } if self.is_null() => "an empty value",
            YamlValue::Scalar { .. } => "a text value",
            YamlValue::Sequence(_) => "a list",
            YamlValue::Mapping(_) => "a mapping",
        }
    }

    fn count_nodes(&self) -> usize {
        match &self.value {
            YamlValue::Scalar { .. } => 1,
            YamlValue::Sequence(items) => {
                1 + items.iter().map(YamlNode::count_nodes).sum::<usize>()
            }
            YamlValue::Mapping(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.count_nodes() + v.count_nodes())
                    .sum::<usize>()
            }
        }
    }
}

/// A YAML syntax error at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub position: Position,
    pub message: String,
}

enum Frame {
    Sequence {
        position: Position,
        anchor: usize,
        items: Vec<YamlNode>,
    },
    Mapping {
        position: Position,
        anchor: usize,
        entries: Vec<(YamlNode, YamlNode)>,
        pending_key: Option<YamlNode>,
    },
}

struct TreeBuilder {
    first_line: u32,
    stack: Vec<Frame>,
    anchors: HashMap<usize, YamlNode>,
    nodes: usize,
    root: Option<YamlNode>,
}

impl TreeBuilder {
    fn position(&self, span: &Span) -> Position {
        let line = u32::try_from(span.start.line()).unwrap_or(u32::MAX);
        let column = u32::try_from(span.start.col()).unwrap_or(u32::MAX - 1);
        Position::new(
            line.saturating_add(self.first_line).saturating_sub(1),
            column.saturating_add(1),
        )
    }

    fn count(&mut self, added: usize, position: Position) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(added);
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                position,
                message: format!(
                    "the YAML expands to more than {MAX_NODES} values (too many aliases?)"
                ),
            });
        }
        Ok(())
    }

    fn finish(&mut self, node: YamlNode, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }

    fn open(&mut self, frame: Frame, position: Position) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                position,
                message: format!("the YAML is nested more than {MAX_DEPTH} levels deep"),
            });
        }
        self.count(1, position)?;
        self.stack.push(frame);
        Ok(())
    }
}

/// Parses one YAML document. `first_line` is the file line the text starts on, so positions
/// point into the file rather than into the snippet. Returns `Ok(None)` for an empty document.
pub fn parse_yaml(text: &str, first_line: u32) -> Result<Option<YamlNode>, YamlError> {
    let mut builder = TreeBuilder {
        first_line,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
    };
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|error| {
            let marker = error.marker();
            let line = u32::try_from(marker.line()).unwrap_or(u32::MAX);
            let column = u32::try_from(marker.col()).unwrap_or(u32::MAX - 1);
            YamlError {
                position: Position::new(
                    line.saturating_add(first_line).saturating_sub(1),
                    column.saturating_add(1),
                ),
                message: error.info().to_string(),
            }
        })?;
        let position = builder.position(&span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        position,
                        message: "only one YAML document is allowed here".to_string(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                builder.count(1, position)?;
                let node = YamlNode {
                    position,
                    value: YamlValue::Scalar {
                        text: text.into_owned(),
                        quoted: !matches!(style, ScalarStyle::Plain),
                    },
                };
                builder.finish(node, anchor);
            }
            Event::Alias(anchor) => {
                let Some(node) = builder.anchors.get(&anchor).cloned() else {
                    return Err(YamlError {
                        position,
                        message: "this alias refers to an anchor that is not defined".to_string(),
                    });
                };
                builder.count(node.count_nodes(), position)?;
                builder.finish(YamlNode { position, ..node }, 0);
            }
            Event::SequenceStart(anchor, _tag) => builder.open(
                Frame::Sequence {
                    position,
                    anchor,
                    items: Vec::new(),
                },
                position,
            )?,
            Event::MappingStart(anchor, _tag) => builder.open(
                Frame::Mapping {
                    position,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                },
                position,
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match builder.stack.pop() {
                    Some(Frame::Sequence {
                        position,
                        anchor,
                        items,
                    }) => (
                        YamlNode {
                            position,
                            value: YamlValue::Sequence(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Mapping {
                        position,
                        anchor,
                        entries,
                        ..
                    }) => (
                        YamlNode {
                            position,
                            value: YamlValue::Mapping(entries),
                        },
                        anchor,
                    ),
                    None => continue,
                };
                builder.finish(node, anchor);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
    Ok(builder.root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_their_text_and_position() {
        let root = parse_yaml("version: 1.10\nid: 'x'\n", 2).unwrap().unwrap();
        let YamlValue::Mapping(entries) = root.value else {
            panic!("expected a mapping")
        };
        assert_eq!(entries[0].1.as_scalar(), Some("1.10"));
        assert_eq!(entries[0].1.position, Position::new(2, 10));
        assert_eq!(
            entries[1].1.value,
            YamlValue::Scalar {
                text: "x".into(),
                quoted: true
            }
        );
        assert_eq!(entries[1].0.position, Position::new(3, 1));
    }

    #[test]
    fn syntax_errors_carry_the_file_position() {
        let error = parse_yaml("a: b\nc: [d\n", 5).unwrap_err();
        assert!(error.position.line >= 6, "{error:?}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut previous = 'a';
        for name in 'b'..='k' {
            text.push_str(&format!(
                "{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
            ));
            previous = name;
        }
        let error = parse_yaml(&text, 1).unwrap_err();
        assert!(error.message.contains("aliases"), "{error:?}");
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let text = "[".repeat(100_000);
        assert!(parse_yaml(&text, 1).is_err());
    }

    #[test]
    fn empty_documents_are_none() {
        assert_eq!(parse_yaml("", 1).unwrap(), None);
        assert_eq!(parse_yaml("# only a comment\n", 1).unwrap(), None);
    }
}
