//! The console adapter: the bot in a terminal (`procbot chat`), and the recording `ChatPort`
//! that integration tests assert on. Renders messages as plain text; a button shows the line to
//! type to click it (`click ack/backup/…`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::message::{Block, Message};
use crate::core::port::{ChatPort, DeliveryError, Destination, MessageRef, Platform, PortFuture};
use crate::core::procedure::Email;

/// Renders a message as plain text for a terminal.
pub fn render_plain(message: &Message) -> String {
    let mut out = String::new();
    for block in &message.blocks {
        match block {
            Block::Header { text } => {
                out.push_str(&format!("== {} ==\n", one_line(text)));
            }
            Block::Text { text } => {
                out.push_str(text);
                out.push('\n');
            }
            Block::Fields { fields } => {
                for (label, value) in fields {
                    out.push_str(&format!("{label}: {value}\n"));
                }
            }
            Block::List { ordered, items } => {
                for (index, item) in items.iter().enumerate() {
                    let marker = if *ordered {
                        format!("{}.", index + 1)
                    } else {
                        "-".to_string()
                    };
                    out.push_str(&format!("  {marker} {item}\n"));
                }
            }
            Block::Context { text } => {
                out.push_str(&format!("({text})\n"));
            }
            Block::Link { label, url } => {
                out.push_str(&format!("{}: {url}\n", one_line(label)));
            }
            Block::Actions { buttons } => {
                for button in buttons {
                    out.push_str(&format!(
                        "  [{}]  type: click {}\n",
                        one_line(&button.label),
                        button.action_id
                    ));
                }
            }
            Block::Divider => out.push_str("--\n"),
        }
    }
    out
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Where a recorded message went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    Posted {
        message_ref: MessageRef,
        destination: Destination,
        message: Message,
    },
    Updated {
        message_ref: MessageRef,
        message: Message,
    },
    Ephemeral {
        email: Email,
        message: Message,
    },
}

impl Sent {
    pub fn message(&self) -> &Message {
        match self {
            Sent::Posted { message, .. }
            | Sent::Updated { message, .. }
            | Sent::Ephemeral { message, .. } => message,
        }
    }

    /// Whether this is a new message to `email`'s DMs.
    pub fn is_dm_to(&self, email: &Email) -> bool {
        matches!(self, Sent::Posted { destination: Destination::Person { email: to }, .. } if to == email)
    }
}

type Printer = Box<dyn Fn(&Sent) + Send + Sync>;

/// Records every message; optionally prints each as it is sent.
pub struct ConsolePort {
    sent: Mutex<Vec<Sent>>,
    next_ref: AtomicU64,
    printer: Option<Printer>,
    /// Deliveries fail with this until cleared, to test retries.
    failure: Mutex<Option<DeliveryError>>,
}

impl Default for ConsolePort {
    fn default() -> Self {
        ConsolePort::new()
    }
}

impl ConsolePort {
    pub fn new() -> ConsolePort {
        ConsolePort {
            sent: Mutex::new(Vec::new()),
            next_ref: AtomicU64::new(1),
            printer: None,
            failure: Mutex::new(None),
        }
    }

    pub fn with_printer(printer: impl Fn(&Sent) + Send + Sync + 'static) -> ConsolePort {
        ConsolePort {
            printer: Some(Box::new(printer)),
            ..ConsolePort::new()
        }
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// New DMs to `email`, in order.
    pub fn dms_to(&self, email: &Email) -> Vec<Message> {
        self.sent()
            .into_iter()
            .filter(|s| s.is_dm_to(email))
            .map(|s| s.message().clone())
            .collect()
    }

    /// Posts to a channel, in order.
    pub fn channel_posts(&self) -> Vec<Message> {
        self.sent()
            .into_iter()
            .filter(|s| {
                matches!(
                    s,
                    Sent::Posted {
                        destination: Destination::Channel { .. },
                        ..
                    }
                )
            })
            .map(|s| s.message().clone())
            .collect()
    }

    /// The latest message `viewer` can see (their DMs, channel posts) holding a button with
    /// `action_id`, to click it. Other people's DMs are never clicked through.
    pub fn find_action(&self, viewer: Option<&Email>, action_id: &str) -> Option<MessageRef> {
        let sent = self.sent();
        let visible: std::collections::HashSet<&MessageRef> = sent
            .iter()
            .filter_map(|s| match s {
                Sent::Posted {
                    message_ref,
                    destination,
                    ..
                } => match destination {
                    Destination::Channel { .. } => Some(message_ref),
                    Destination::Person { email } => (Some(email) == viewer).then_some(message_ref),
                },
                _ => None,
            })
            .collect();
        sent.iter().rev().find_map(|sent| match sent {
            Sent::Posted {
                message_ref,
                message,
                ..
            }
            | Sent::Updated {
                message_ref,
                message,
            } if visible.contains(message_ref) && message.action_ids().any(|a| a == action_id) => {
                Some(message_ref.clone())
            }
            _ => None,
        })
    }

    /// Makes every delivery fail with `failure` (or succeed again with `None`).
    pub fn fail_with(&self, failure: Option<DeliveryError>) {
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = failure;
    }

    fn record(&self, sent: Sent) {
        if let Some(printer) = &self.printer {
            printer(&sent);
        }
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(sent);
    }

    fn failure(&self) -> Option<DeliveryError> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl ChatPort for ConsolePort {
    fn platform(&self) -> Platform {
        Platform::Console
    }

    fn send<'a>(
        &'a self,
        destination: &'a Destination,
        message: &'a Message,
    ) -> PortFuture<'a, Result<MessageRef, DeliveryError>> {
        Box::pin(async move {
            if let Some(failure) = self.failure() {
                return Err(failure);
            }
            let message_ref = MessageRef(format!(
                "console-{}",
                self.next_ref.fetch_add(1, Ordering::Relaxed)
            ));
            self.record(Sent::Posted {
                message_ref: message_ref.clone(),
                destination: destination.clone(),
                message: message.clone(),
            });
            Ok(message_ref)
        })
    }

    fn update<'a>(
        &'a self,
        message_ref: &'a MessageRef,
        message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.record(Sent::Updated {
                message_ref: message_ref.clone(),
                message: message.clone(),
            });
            Ok(())
        })
    }

    fn ephemeral<'a>(
        &'a self,
        _context: &'a str,
        email: &'a Email,
        message: &'a Message,
    ) -> PortFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.record(Sent::Ephemeral {
                email: email.clone(),
                message: message.clone(),
            });
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::announce::{AckItem, AskReason, acknowledgement_dm};
    use crate::core::compose;
    use crate::core::procedure::ProcedureId;

    #[test]
    fn an_acknowledgement_dm_renders_as_plain_text() {
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
                id: ProcedureId::parse("access-review").unwrap(),
                title: "Quarterly access review".into(),
                version: None,
                content_hash: "fedcba9876543210".repeat(4),
                owner: None,
                summary: None,
                reason: AskReason::NewToThem,
            },
        ];
        let rendered: Vec<String> = acknowledgement_dm("Sam Ops", &items)
            .iter()
            .map(render_plain)
            .collect();
        insta::assert_snapshot!(rendered.join("\n~~~\n"));
    }

    #[test]
    fn a_run_checklist_renders_with_its_state_and_buttons() {
        use crate::core::procedure::Email;
        use crate::core::runs::{Run, RunStep, RunTrigger, StepOutcome, checklist};
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
        let sam = Email::parse("sam@example.com").unwrap();
        let step = |number: usize, outcome: Option<StepOutcome>, note: Option<&str>| RunStep {
            number,
            text: format!("Step number {number}"),
            outcome,
            note: note.map(str::to_string),
            by: outcome.map(|_| sam.clone()),
            at: outcome.map(|_| at + chrono::Duration::minutes(number as i64)),
        };
        let run = Run {
            id: 3,
            procedure_id: ProcedureId::parse("restore-test").unwrap(),
            title: "Test a restore".into(),
            version: Some("1.1.0".into()),
            content_hash: "ab".repeat(32),
            commit_id: None,
            owner: Some(Email::parse("it-lead@example.com").unwrap()),
            trigger: RunTrigger::Schedule,
            scheduled_for: Some(at),
            due_at: Some(at + chrono::Duration::days(7)),
            started_at: at,
            started_by: None,
            assignees: vec![sam.clone()],
            steps: vec![
                step(1, Some(StepOutcome::Done), Some("ticket OPS-12")),
                step(
                    2,
                    Some(StepOutcome::NotApplicable),
                    Some("no new backups this week"),
                ),
                step(3, Some(StepOutcome::Problem), Some("checksum mismatch")),
                step(4, None, None),
            ],
            finished: None,
        };
        insta::assert_snapshot!(render_plain(&checklist(&run, None)));
    }

    #[test]
    fn help_and_apology_render() {
        insta::assert_snapshot!(render_plain(&compose::help()));
        insta::assert_snapshot!(render_plain(&compose::apology("E261201-7")));
    }
}
