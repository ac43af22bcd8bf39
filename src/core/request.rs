//! What people ask of the bot: typed text and button clicks, from any platform, become one
//! closed `Request` enum. Button action ids are written and read here, so every adapter and
//! the engine agree on them.

use std::fmt;

use crate::core::procedure::ProcedureId;
use crate::core::runs::{StepOutcome, clean_note};

/// The longest text taken from a chat message; longer input is cut, never refused with a panic.
pub const MAX_REQUEST_CHARS: usize = 500;

/// Hex digits of a content hash carried in a button (48 bits: unique among one procedure's
/// versions, and short enough for Discord's 100-character `custom_id`).
pub const HASH_PREFIX_LEN: usize = 12;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// "how do I…", `/procedure backup`.
    Lookup {
        query: String,
    },
    /// `/procedure show backup-customer-data`, or a "Read" button.
    Show {
        id: String,
    },
    /// `/procedure list`: every procedure the person may see.
    List,
    /// `/procedure pending`: what the person still has to acknowledge.
    Pending,
    /// `/procedure mine`: the procedures the person owns, and their state.
    Mine,
    /// `ack backup`, or an Acknowledge button (which names the exact version).
    Acknowledge {
        id: String,
        /// The content hash prefix the button carried; `None` when typed.
        hash_prefix: Option<String>,
    },
    /// An owner's answer to a review nudge.
    Review {
        id: String,
        outcome: ReviewOutcome,
        hash_prefix: Option<String>,
    },
    /// `/procedure run backup`: perform a procedure now, as a checklist. When no procedure
    /// has that id, the engine treats the text as a question.
    StartRun {
        id: String,
    },
    /// A step's outcome (a checklist button, or `step 12 3 done [note]`), or a note added to
    /// a step (`note 12 3 <text>`, outcome `None`).
    RunStep {
        run: i64,
        step: usize,
        outcome: Option<StepOutcome>,
        note: Option<String>,
    },
    /// Finish a run (its Finish button, or `finish 12`).
    FinishRun {
        run: i64,
    },
    /// Show a run's checklist again (`run 12`'s button in a reminder, or `checklist 12`).
    ShowRun {
        run: i64,
    },
    /// `/procedure runs`: the runs the person has open.
    Runs,
    Help,
    /// Text the bot did not understand (an empty `/procedure`, a stray word).
    Unknown {
        text: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// "Reviewed – still accurate".
    StillAccurate,
    /// "Needs changes".
    NeedsChanges,
    /// "Snooze": ask again in a week.
    Snooze,
}

impl ReviewOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::StillAccurate => "still-accurate",
            ReviewOutcome::NeedsChanges => "needs-changes",
            ReviewOutcome::Snooze => "snooze",
        }
    }

    /// Reads what `as_str` wrote.
    pub fn parse(text: &str) -> Option<ReviewOutcome> {
        [
            ReviewOutcome::StillAccurate,
            ReviewOutcome::NeedsChanges,
            ReviewOutcome::Snooze,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }

    fn code(self) -> &'static str {
        match self {
            ReviewOutcome::StillAccurate => "ok",
            ReviewOutcome::NeedsChanges => "chg",
            ReviewOutcome::Snooze => "snz",
        }
    }

    fn from_code(code: &str) -> Option<ReviewOutcome> {
        match code {
            "ok" => Some(ReviewOutcome::StillAccurate),
            "chg" => Some(ReviewOutcome::NeedsChanges),
            "snz" => Some(ReviewOutcome::Snooze),
            _ => None,
        }
    }

    fn from_words(words: &str) -> Option<ReviewOutcome> {
        match words {
            "ok" | "accurate" | "still-accurate" | "still accurate" | "done" => {
                Some(ReviewOutcome::StillAccurate)
            }
            "changes" | "needs-changes" | "needs changes" | "change" => {
                Some(ReviewOutcome::NeedsChanges)
            }
            "snooze" | "later" => Some(ReviewOutcome::Snooze),
            _ => None,
        }
    }
}

impl fmt::Display for ReviewOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Button action ids.
pub mod action {
    use super::{HASH_PREFIX_LEN, ProcedureId, ReviewOutcome};

    fn short(hash_hex: &str) -> &str {
        hash_hex.get(..HASH_PREFIX_LEN).unwrap_or(hash_hex)
    }

    /// "Acknowledge" for one version of a procedure.
    pub fn acknowledge(id: &ProcedureId, hash_hex: &str) -> String {
        format!("ack/{id}/{}", short(hash_hex))
    }

    /// "Read" a procedure.
    pub fn show(id: &ProcedureId) -> String {
        format!("show/{id}")
    }

    /// An owner's answer to a review nudge.
    pub fn review(id: &ProcedureId, outcome: ReviewOutcome, hash_hex: &str) -> String {
        format!("rv/{}/{id}/{}", outcome.code(), short(hash_hex))
    }

    /// A step's outcome in a run's checklist.
    pub fn run_step(run: i64, step: usize, outcome: super::StepOutcome) -> String {
        format!("run/{run}/{step}/{}", outcome.code())
    }

    /// A run's Finish button.
    pub fn run_finish(run: i64) -> String {
        format!("run/{run}/fin")
    }

    /// Shows a run's checklist.
    pub fn run_show(run: i64) -> String {
        format!("run/{run}/show")
    }
}

/// A run id as typed or carried by a button: a positive number.
fn run_id(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|id| *id > 0)
}

/// A step number: 1 to 999.
fn step_number(text: &str) -> Option<usize> {
    text.parse::<usize>().ok().filter(|n| (1..1000).contains(n))
}

/// A number as procbot writes it in a button: decimal digits, no sign, no leading zero. A
/// button id is read only in the form it is written, so `run/012/fin` is nobody's button.
fn written_number(text: &str) -> bool {
    !text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit())
}

/// A content hash as buttons carry it: at least `HASH_PREFIX_LEN` hex digits, at most 64.
fn is_hash_prefix(text: &str) -> bool {
    (HASH_PREFIX_LEN..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Request {
    /// A button click. Unknown or malformed action ids become `Unknown`, never an error: they
    /// may come from an older version of procbot or from a forged payload.
    pub fn from_action(action_id: &str) -> Request {
        let parts: Vec<&str> = action_id.split('/').collect();
        let valid_id = |id: &str| ProcedureId::parse(id).is_ok();
        if let ["run", run, rest @ ..] = parts.as_slice()
            && (!written_number(run) || (rest.len() == 2 && !written_number(rest[0])))
        {
            return Request::Unknown {
                text: action_id.chars().take(100).collect(),
            };
        }
        match parts.as_slice() {
            ["ack", id, hash] if valid_id(id) && is_hash_prefix(hash) => Request::Acknowledge {
                id: (*id).to_string(),
                hash_prefix: Some(hash.to_ascii_lowercase()),
            },
            ["show", id] if valid_id(id) => Request::Show {
                id: (*id).to_string(),
            },
            ["run", run, "fin"] if run_id(run).is_some() => Request::FinishRun {
                run: run_id(run).unwrap_or_default(),
            },
            ["run", run, "show"] if run_id(run).is_some() => Request::ShowRun {
                run: run_id(run).unwrap_or_default(),
            },
            ["run", run, step, code] => {
                match (run_id(run), step_number(step), StepOutcome::from_code(code)) {
                    (Some(run), Some(step), Some(outcome)) => Request::RunStep {
                        run,
                        step,
                        outcome: Some(outcome),
                        note: None,
                    },
                    _ => Request::Unknown {
                        text: action_id.chars().take(100).collect(),
                    },
                }
            }
            ["rv", code, id, hash] if valid_id(id) && is_hash_prefix(hash) => {
                match ReviewOutcome::from_code(code) {
                    Some(outcome) => Request::Review {
                        id: (*id).to_string(),
                        outcome,
                        hash_prefix: Some(hash.to_ascii_lowercase()),
                    },
                    None => Request::Unknown {
                        text: action_id.chars().take(100).collect(),
                    },
                }
            }
            _ => Request::Unknown {
                text: action_id.chars().take(100).collect(),
            },
        }
    }

    /// A line of chat text, as typed in a DM, a mention, or after `/procedure`.
    pub fn from_text(text: &str) -> Request {
        let cut: String = text.chars().take(MAX_REQUEST_CHARS).collect();
        let cleaned: String = cut
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let trimmed = cleaned.trim();
        let body = trimmed
            .strip_prefix("/procedures")
            .or_else(|| trimmed.strip_prefix("/procedure"))
            .filter(|rest| rest.is_empty() || rest.starts_with(' '))
            .unwrap_or(trimmed)
            .trim();
        let lowered = body.to_lowercase();
        let (verb, rest) = match lowered.split_once(char::is_whitespace) {
            Some((verb, rest)) => (verb, rest.trim()),
            None => (lowered.as_str(), ""),
        };
        match (verb, rest) {
            ("", _) => Request::Help,
            ("help" | "?" | "commands", "") => Request::Help,
            ("list" | "all", "") => Request::List,
            ("pending" | "todo" | "outstanding", "") => Request::Pending,
            ("mine" | "owned", "") => Request::Mine,
            ("show" | "read" | "open", id) if !id.is_empty() => {
                Request::Show { id: id.to_string() }
            }
            ("ack" | "acknowledge", id) if !id.is_empty() && !id.contains(' ') => {
                Request::Acknowledge {
                    id: id.to_string(),
                    hash_prefix: None,
                }
            }
            ("review" | "reviewed", rest) if !rest.is_empty() => {
                let (id, outcome_words) = rest.split_once(' ').unwrap_or((rest, "ok"));
                match ReviewOutcome::from_words(outcome_words.trim()) {
                    Some(outcome) => Request::Review {
                        id: id.to_string(),
                        outcome,
                        hash_prefix: None,
                    },
                    None => Request::Unknown {
                        text: body.to_string(),
                    },
                }
            }
            ("runs", "") => Request::Runs,
            ("checklist" | "run", run) if run_id(run).is_some() => Request::ShowRun {
                run: run_id(run).unwrap_or_default(),
            },
            ("run" | "start", id) if ProcedureId::parse(id).is_ok() => {
                Request::StartRun { id: id.to_string() }
            }
            ("finish" | "done", run) if run_id(run).is_some() => Request::FinishRun {
                run: run_id(run).unwrap_or_default(),
            },
            ("step" | "note", rest) if !rest.is_empty() => {
                // The note keeps the case it was typed in.
                let original: Vec<&str> = body.splitn(5, char::is_whitespace).collect();
                let words: Vec<&str> = rest.splitn(4, char::is_whitespace).collect();
                let is_note = verb == "note";
                let parsed = match (
                    words.first().and_then(|w| run_id(w)),
                    words.get(1).and_then(|w| step_number(w)),
                ) {
                    (Some(run), Some(step)) if is_note => {
                        let note = original.get(3..).map(|w| w.join(" ")).unwrap_or_default();
                        clean_note(&note).map(|note| Request::RunStep {
                            run,
                            step,
                            outcome: None,
                            note: Some(note),
                        })
                    }
                    (Some(run), Some(step)) => words
                        .get(2)
                        .and_then(|w| StepOutcome::from_words(w))
                        .map(|outcome| {
                            let note = original.get(4..).map(|w| w.join(" ")).unwrap_or_default();
                            Request::RunStep {
                                run,
                                step,
                                outcome: Some(outcome),
                                note: clean_note(&note),
                            }
                        }),
                    _ => None,
                };
                parsed.unwrap_or_else(|| Request::Unknown {
                    text: body.to_string(),
                })
            }
            ("search" | "find" | "lookup", query) if !query.is_empty() => Request::Lookup {
                query: body
                    .split_once(char::is_whitespace)
                    .map(|(_, q)| q.trim().to_string())
                    .unwrap_or_default(),
            },
            _ if body.chars().any(char::is_alphanumeric) => Request::Lookup {
                query: body.to_string(),
            },
            _ => Request::Unknown {
                text: body.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> ProcedureId {
        ProcedureId::parse(text).unwrap()
    }

    #[test]
    fn slash_commands_and_plain_text_become_requests() {
        assert_eq!(Request::from_text("/procedure"), Request::Help);
        assert_eq!(Request::from_text("/procedure pending"), Request::Pending);
        assert_eq!(Request::from_text("  PENDING "), Request::Pending);
        assert_eq!(Request::from_text("/procedure mine"), Request::Mine);
        assert_eq!(Request::from_text("/procedure list"), Request::List);
        assert_eq!(
            Request::from_text("/procedure backup"),
            Request::Lookup {
                query: "backup".into()
            }
        );
        assert_eq!(
            Request::from_text("how do I rotate a key?"),
            Request::Lookup {
                query: "how do I rotate a key?".into()
            }
        );
        assert_eq!(
            Request::from_text("ack backup-customer-data"),
            Request::Acknowledge {
                id: "backup-customer-data".into(),
                hash_prefix: None
            }
        );
        assert_eq!(
            Request::from_text("/procedure show access-review"),
            Request::Show {
                id: "access-review".into()
            }
        );
        assert_eq!(
            Request::from_text("review access-review needs changes"),
            Request::Review {
                id: "access-review".into(),
                outcome: ReviewOutcome::NeedsChanges,
                hash_prefix: None
            }
        );
        assert_eq!(
            Request::from_text("/proceduresx"),
            Request::Lookup {
                query: "/proceduresx".into()
            }
        );
        assert_eq!(
            Request::from_text("?!"),
            Request::Unknown { text: "?!".into() }
        );
    }

    #[test]
    fn action_ids_round_trip() {
        let hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let backup = id("backup");
        assert_eq!(
            Request::from_action(&action::acknowledge(&backup, hash)),
            Request::Acknowledge {
                id: "backup".into(),
                hash_prefix: Some("0123456789ab".into())
            }
        );
        assert_eq!(
            Request::from_action(&action::show(&backup)),
            Request::Show {
                id: "backup".into()
            }
        );
        assert_eq!(
            Request::from_action(&action::review(&backup, ReviewOutcome::Snooze, hash)),
            Request::Review {
                id: "backup".into(),
                outcome: ReviewOutcome::Snooze,
                hash_prefix: Some("0123456789ab".into())
            }
        );
        let longest = id(&"a".repeat(ProcedureId::MAX_LEN));
        assert!(action::review(&longest, ReviewOutcome::NeedsChanges, hash).len() <= 100);
    }

    #[test]
    fn run_commands_and_buttons_become_requests() {
        assert_eq!(
            Request::from_text("/procedure run backup"),
            Request::StartRun {
                id: "backup".into()
            }
        );
        assert_eq!(Request::from_text("run 12"), Request::ShowRun { run: 12 });
        assert_eq!(Request::from_text("runs"), Request::Runs);
        assert_eq!(
            Request::from_text("finish 12"),
            Request::FinishRun { run: 12 }
        );
        assert_eq!(
            Request::from_text("step 12 3 n/a No new Data this month"),
            Request::RunStep {
                run: 12,
                step: 3,
                outcome: Some(StepOutcome::NotApplicable),
                note: Some("No new Data this month".into())
            }
        );
        assert_eq!(
            Request::from_text("note 12 2 https://tickets.example.com/OPS-7"),
            Request::RunStep {
                run: 12,
                step: 2,
                outcome: None,
                note: Some("https://tickets.example.com/OPS-7".into())
            }
        );
        assert!(matches!(
            Request::from_text("note 12 2"),
            Request::Unknown { .. }
        ));
        assert!(matches!(
            Request::from_text("step 12 x done"),
            Request::Unknown { .. }
        ));
        assert!(matches!(
            Request::from_text("step 12 2 maybe"),
            Request::Unknown { .. }
        ));
        assert!(matches!(
            Request::from_text("run the payroll please"),
            Request::Lookup { .. }
        ));
        for outcome in StepOutcome::ALL {
            assert_eq!(
                Request::from_action(&action::run_step(7, 3, outcome)),
                Request::RunStep {
                    run: 7,
                    step: 3,
                    outcome: Some(outcome),
                    note: None
                }
            );
        }
        assert_eq!(
            Request::from_action(&action::run_finish(7)),
            Request::FinishRun { run: 7 }
        );
        assert_eq!(
            Request::from_action(&action::run_show(7)),
            Request::ShowRun { run: 7 }
        );
        for forged in [
            "run/0/fin",
            "run/-1/2/ok",
            "run/7/0/ok",
            "run/7/2/zz",
            "run/x/fin",
            "run/7",
        ] {
            assert!(
                matches!(Request::from_action(forged), Request::Unknown { .. }),
                "{forged}"
            );
        }
    }

    #[test]
    fn hostile_action_ids_are_unknown() {
        for forged in [
            "",
            "ack",
            "ack/../etc/zz",
            "ack/backup/not-hex",
            "ack/backup/0",
            "rv/xx/backup/abc",
            "show/Back Up",
            &"x".repeat(10_000),
        ] {
            assert!(
                matches!(Request::from_action(forged), Request::Unknown { .. }),
                "{forged}"
            );
        }
    }

    #[test]
    fn long_and_control_laden_text_is_cut_and_cleaned() {
        let long = format!("backup {}", "x".repeat(10_000));
        match Request::from_text(&long) {
            Request::Lookup { query } => assert_eq!(query.chars().count(), MAX_REQUEST_CHARS),
            other => panic!("{other:?}"),
        }
        assert_eq!(Request::from_text("pending\u{0}\u{7}"), Request::Pending);
    }
}
