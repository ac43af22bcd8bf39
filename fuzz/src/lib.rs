//! What the renderer fuzz targets share: a `Message` built from the fuzzer's bytes, with text
//! biased toward what breaks renderers (mention syntax, escapes, Markdown, long lines).
//!
//! The checks themselves live in `tests/procbot/fuzz_checks.rs`, which every target includes,
//! so the regression tests replay findings through exactly the same code.

use std::fmt;

use arbitrary::{Arbitrary, Result, Unstructured};
use procbot::core::message::{Block, Button, ButtonStyle, Message};

/// Pieces that steer random text into the escaping and splitting code.
const FRAGMENTS: &[&str] = &[
    "@here",
    "@channel",
    "@everyone",
    "@HeRe",
    "<!channel>",
    "<!here|here>",
    "<!subteam^S1>",
    "<@U024BE7LH>",
    "<@!1234>",
    "<@&1234>",
    "<#C1>",
    "</procedure:1>",
    "<https://example.com|x>",
    "&",
    "&amp;",
    "&lt;",
    "<",
    ">",
    "@",
    "!",
    "`",
    "```",
    "\\",
    "*",
    "_",
    "~",
    "|",
    "[",
    "]",
    "(",
    ")",
    "#",
    "-",
    "> ",
    "\n",
    "\r\n",
    "\n\n",
    " ",
    "\u{2060}",
    "\u{200B}",
    "é",
    "🔗",
    "İ",
    "x",
    "word ",
];

/// Button ids as procbot writes them, and some it does not.
const ACTION_IDS: &[&str] = &[
    "ack/backup-customer-data/0123456789ab",
    "show/backup-customer-data",
    "rv/ok/backup-customer-data/0123456789ab",
    "run/12/3/ok",
    "run/12/fin",
    "run/12/show",
    "",
];

const URLS: &[&str] = &[
    "https://git.example.com/p/src/",
    "http://example.com/",
    "https://example.com/a?b=c&d=e#f",
    "javascript:alert(1)//",
    "",
];

/// Bytes of repeated text one message may hold: enough to pass every platform limit, few
/// enough to keep the fuzzer fast.
const REPEAT_BUDGET: usize = 64 * 1024;

/// Text of up to roughly 20,000 characters; long repeats draw on `budget`.
fn text(u: &mut Unstructured<'_>, budget: &mut usize) -> Result<String> {
    let mut out = String::new();
    let pieces = u.int_in_range(0..=12)?;
    for _ in 0..pieces {
        match u.int_in_range(0..=7)? {
            0..=3 => out.push_str(u.choose(FRAGMENTS)?),
            4 | 5 => out.push_str(<&str>::arbitrary(u)?),
            _ => {
                let fragment = u.choose(FRAGMENTS)?;
                let times = u
                    .int_in_range(1..=5000)?
                    .min(*budget / fragment.len().max(1));
                *budget -= times * fragment.len();
                out.push_str(&fragment.repeat(times));
            }
        }
        if out.len() > 20_000 {
            break;
        }
    }
    Ok(out)
}

fn short_text(u: &mut Unstructured<'_>) -> Result<String> {
    let mut out = String::new();
    for _ in 0..u.int_in_range(0..=3)? {
        if bool::arbitrary(u)? {
            out.push_str(u.choose(FRAGMENTS)?);
        } else {
            out.push_str(<&str>::arbitrary(u)?);
        }
    }
    Ok(out)
}

fn many<T>(
    u: &mut Unstructured<'_>,
    most: usize,
    mut one: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=most)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(one(u)?);
    }
    Ok(items)
}

fn button(u: &mut Unstructured<'_>) -> Result<Button> {
    let action_id = if bool::arbitrary(u)? {
        u.choose(ACTION_IDS)?.to_string()
    } else {
        short_text(u)?
    };
    Ok(Button {
        label: short_text(u)?,
        action_id,
        style: *u.choose(&[
            ButtonStyle::Default,
            ButtonStyle::Primary,
            ButtonStyle::Danger,
        ])?,
    })
}

fn block(u: &mut Unstructured<'_>, budget: &mut usize) -> Result<Block> {
    Ok(match u.int_in_range(0..=7)? {
        0 => Block::Header {
            text: text(u, budget)?,
        },
        1 => Block::Text {
            text: text(u, budget)?,
        },
        2 => Block::Fields {
            fields: many(u, 30, |u| Ok((short_text(u)?, text(u, budget)?)))?,
        },
        3 => Block::List {
            ordered: bool::arbitrary(u)?,
            items: many(u, 300, |u| {
                if bool::arbitrary(u)? {
                    text(u, budget)
                } else {
                    short_text(u)
                }
            })?,
        },
        4 => Block::Context {
            text: text(u, budget)?,
        },
        5 => Block::Link {
            label: short_text(u)?,
            // Link targets are the repository's web UI, not procedure text: no `@` in them.
            url: format!("{}{}", u.choose(URLS)?, short_text(u)?).replace('@', ""),
        },
        6 => Block::Actions {
            buttons: many(u, 30, button)?,
        },
        _ => Block::Divider,
    })
}

/// A message from fuzzer bytes. Its `Debug` is the message's JSON, which is what a
/// regression test under `tests/fuzz-regressions/` keeps (`cargo fuzz fmt` prints it).
pub struct FuzzMessage(pub Message);

impl<'a> Arbitrary<'a> for FuzzMessage {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<FuzzMessage> {
        Ok(FuzzMessage(Message {
            blocks: {
                let mut budget = REPEAT_BUDGET;
                many(u, 70, |u| block(u, &mut budget))?
            },
        }))
    }
}

impl fmt::Debug for FuzzMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(&self.0) {
            Ok(json) => f.write_str(&json),
            Err(error) => write!(f, "unserialisable message: {error}"),
        }
    }
}
