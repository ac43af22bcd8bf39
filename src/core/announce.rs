//! Planning announcements: from one sync's changes, the served snapshot and what people were
//! already asked to acknowledge, decide what to record and whom to tell. Pure: the engine
//! stores the plan and queues its messages.
//!
//! Rules: a change to many procedures is one consolidated DM per person; editorial changes and
//! removals go to the channel only; a confidential or restricted procedure is never named in a
//! channel; a procedure nobody was ever asked about (first start), and a person newly in an
//! audience, produce a welcome-style request in the same DM instead of a flood.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::core::change::{ChangeKind, ProcedureChange};
use crate::core::message::{Button, Message};
use crate::core::procedure::{Email, Procedure, ProcedureId};
use crate::core::request::action;
use crate::core::snapshot::Snapshot;

/// Procedures listed per DM; more are split over several messages, so every platform's
/// block and button limits hold.
pub const ITEMS_PER_MESSAGE: usize = 10;

/// What people were last asked to acknowledge for one procedure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentRequirement {
    pub content_hash: String,
    /// The version people were asked about (it stays, whatever editorial changes follow).
    pub version: Option<String>,
    pub audience: BTreeSet<Email>,
}

/// One announcement to record, with the people who must acknowledge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedAnnouncement {
    /// Identifies the change (procedure, kind, versions and content), so a replayed sync
    /// records it once.
    pub key: String,
    pub id: ProcedureId,
    /// A `ChangeKind`, or `baseline` (first asked), or `audience` (new audience members).
    pub kind: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    /// Empty for a removed procedure.
    pub content_hash: String,
    pub title: String,
    pub summary: String,
    pub commit_id: Option<String>,
    /// Whether this announcement sets the version people must acknowledge (a new or
    /// materially changed procedure, or one first asked about), even of nobody.
    pub requires_ack: bool,
    /// Who must acknowledge (empty when none must).
    pub must_acknowledge: BTreeSet<Email>,
}

/// Why a person is asked to acknowledge a procedure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AskReason {
    /// It changed in a way that matters.
    Changed,
    /// They have not been asked before (first start, new to the audience, new procedure).
    NewToThem,
}

/// One procedure in a person's DM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckItem {
    pub id: ProcedureId,
    pub title: String,
    pub version: Option<String>,
    pub content_hash: String,
    pub owner: Option<String>,
    pub summary: Option<String>,
    pub reason: AskReason,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnouncementPlan {
    pub announcements: Vec<PlannedAnnouncement>,
    /// The post for the announce channel, when there is anything to say there.
    pub channel_post: Option<Message>,
    /// What each person must acknowledge now.
    pub direct: BTreeMap<Email, Vec<AckItem>>,
}

fn version_text(procedure: &Procedure) -> Option<String> {
    procedure.version.as_ref().map(ToString::to_string)
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Plans what one sync announces. `current` holds, per procedure id, what people were last
/// asked to acknowledge (from the store).
pub fn plan_announcements(
    previous: Option<&Snapshot>,
    snapshot: &Snapshot,
    changes: &[ProcedureChange],
    current: &BTreeMap<String, CurrentRequirement>,
) -> AnnouncementPlan {
    let directory = snapshot.directory.clone().unwrap_or_default();
    let commit = snapshot
        .commit
        .as_ref()
        .map(|c| c.id.as_str())
        .unwrap_or("-");
    let mut plan = AnnouncementPlan::default();
    let mut handled: BTreeSet<&ProcedureId> = BTreeSet::new();

    let mut announced_changes = Vec::new();
    for change in changes {
        handled.insert(&change.id);
        let entry = snapshot.get(&change.id);
        let content_hash = change.content_hash.map(|h| h.to_hex()).unwrap_or_default();
        let requirement = current.get(change.id.as_str());
        // A sync replayed after a crash, or a second instance that saw other commits, may
        // present a change already announced: people were asked about this very version, or
        // the procedure is already withdrawn. Announce nothing twice.
        let already = match change.kind {
            ChangeKind::Added | ChangeKind::Material => {
                requirement.is_some_and(|r| r.content_hash == content_hash)
            }
            ChangeKind::Removed => requirement.is_none(),
            ChangeKind::Editorial | ChangeKind::Renamed => false,
        };
        if already {
            continue;
        }
        announced_changes.push(change.clone());
        let must_acknowledge = match (change.kind.requires_acknowledgement(), entry) {
            (true, Some(entry)) => directory.resolve(&entry.procedure.audience),
            _ => BTreeSet::new(),
        };
        plan.announcements.push(PlannedAnnouncement {
            key: format!(
                "{}/{}/{}/{}/{commit}",
                change.id,
                change.kind,
                change
                    .from_version
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "-".into()),
                if content_hash.is_empty() {
                    "-"
                } else {
                    &content_hash
                }
            ),
            id: change.id.clone(),
            kind: change.kind.as_str().to_string(),
            from_version: change.from_version.as_ref().map(ToString::to_string),
            to_version: change.to_version.as_ref().map(ToString::to_string),
            content_hash: content_hash.clone(),
            title: change.title.clone(),
            summary: change.summary.clone(),
            commit_id: snapshot.commit.as_ref().map(|c| c.id.clone()),
            requires_ack: change.kind.requires_acknowledgement(),
            must_acknowledge: must_acknowledge.clone(),
        });
        if let Some(entry) = entry {
            for email in must_acknowledge {
                plan.direct.entry(email).or_default().push(AckItem {
                    id: change.id.clone(),
                    title: entry.procedure.title.clone(),
                    version: version_text(&entry.procedure),
                    content_hash: content_hash.clone(),
                    owner: entry.procedure.owner.as_ref().map(ToString::to_string),
                    summary: (change.kind == ChangeKind::Material).then(|| change.summary.clone()),
                    reason: if change.kind == ChangeKind::Material {
                        AskReason::Changed
                    } else {
                        AskReason::NewToThem
                    },
                });
            }
        }
    }

    // Procedures not changed in this sync: make sure everyone now in the audience was asked
    // about the version people currently acknowledge.
    for (id, entry) in &snapshot.procedures {
        if handled.contains(id) {
            continue;
        }
        let audience = directory.resolve(&entry.procedure.audience);
        let hash = entry.content_hash.to_hex();
        let (kind, requirement_hash, version, newcomers): (
            &str,
            String,
            Option<String>,
            BTreeSet<Email>,
        ) = match current.get(id.as_str()) {
            None => (
                "baseline",
                hash.clone(),
                version_text(&entry.procedure),
                audience,
            ),
            Some(requirement) => (
                "audience",
                requirement.content_hash.clone(),
                requirement.version.clone(),
                audience
                    .difference(&requirement.audience)
                    .cloned()
                    .collect(),
            ),
        };
        if newcomers.is_empty() && kind == "audience" {
            continue;
        }
        let people_key = short_hash(
            &newcomers
                .iter()
                .map(Email::as_str)
                .collect::<Vec<_>>()
                .join(","),
        );
        // The version asked about is the one people acknowledge now; a later editorial change
        // to the file does not make them acknowledge again.
        plan.announcements.push(PlannedAnnouncement {
            key: format!("{id}/{kind}/{requirement_hash}/{people_key}"),
            id: id.clone(),
            kind: kind.to_string(),
            from_version: None,
            to_version: version.clone(),
            content_hash: requirement_hash.clone(),
            title: entry.procedure.title.clone(),
            summary: if kind == "baseline" {
                "first announced: everyone in the audience is asked to acknowledge it".to_string()
            } else {
                format!("{} more people in the audience", newcomers.len())
            },
            commit_id: snapshot.commit.as_ref().map(|c| c.id.clone()),
            requires_ack: true,
            must_acknowledge: newcomers.clone(),
        });
        for email in newcomers {
            plan.direct.entry(email).or_default().push(AckItem {
                id: id.clone(),
                title: entry.procedure.title.clone(),
                version: version.clone(),
                content_hash: requirement_hash.clone(),
                owner: entry.procedure.owner.as_ref().map(ToString::to_string),
                summary: None,
                reason: AskReason::NewToThem,
            });
        }
    }

    plan.channel_post = channel_post(previous, snapshot, &announced_changes);
    plan
}

/// Whether a change concerns a confidential or restricted procedure, before or after it.
/// A removed procedure whose last version is unknown counts as private: the safe side.
fn is_private(previous: Option<&Snapshot>, snapshot: &Snapshot, change: &ProcedureChange) -> bool {
    let before = previous.and_then(|p| p.get(&change.id));
    let after = snapshot.get(&change.id);
    if before.is_none() && after.is_none() {
        return true;
    }
    [before, after]
        .into_iter()
        .flatten()
        .any(|entry| entry.procedure.classification.is_private())
}

/// The announce channel's post: what changed, without naming confidential or restricted
/// procedures.
pub fn channel_post(
    previous: Option<&Snapshot>,
    snapshot: &Snapshot,
    changes: &[ProcedureChange],
) -> Option<Message> {
    if changes.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    let mut private = 0usize;
    for change in changes {
        if is_private(previous, snapshot, change) {
            private += 1;
            continue;
        }
        let version = match (&change.from_version, &change.to_version) {
            (Some(from), Some(to)) if from != to => format!(" v{from} → v{to}"),
            (_, Some(to)) => format!(" v{to}"),
            _ => String::new(),
        };
        let what = match change.kind {
            ChangeKind::Added => "new; its audience is asked to acknowledge it",
            ChangeKind::Material => "changed; its audience is asked to acknowledge it",
            ChangeKind::Editorial => "editorial change, nothing to acknowledge",
            ChangeKind::Removed => "withdrawn; its records are kept",
            ChangeKind::Renamed => "moved to a new file, nothing to acknowledge",
        };
        lines.push(format!(
            "{}{version} ({}): {what}. {}",
            change.title, change.id, change.summary
        ));
    }
    let mut message = Message::new().header(if changes.len() == 1 {
        "Procedure update".to_string()
    } else {
        format!("{} procedure updates", changes.len())
    });
    message = message.list(false, lines);
    if private > 0 {
        message = message.text(if private == 1 {
            "1 confidential or restricted procedure changed; the people concerned were told directly.".to_string()
        } else {
            format!(
                "{private} confidential or restricted procedures changed; the people concerned were told directly."
            )
        });
    }
    Some(message)
}

/// A person's DM asking them to acknowledge `items`: one message per `ITEMS_PER_MESSAGE`.
pub fn acknowledgement_dm(name: &str, items: &[AckItem]) -> Vec<Message> {
    let changed = items.iter().any(|i| i.reason == AskReason::Changed);
    let chunks: Vec<&[AckItem]> = items.chunks(ITEMS_PER_MESSAGE).collect();
    let parts = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut message = Message::new();
            if index == 0 {
                let intro = match (changed, items.len()) {
                    (true, 1) => format!("Hi {name}, a procedure you follow has changed. Please read it and acknowledge."),
                    (true, n) => format!("Hi {name}, {n} procedures you follow need your acknowledgement."),
                    (false, 1) => format!("Hi {name}, there is a procedure for you to read and acknowledge."),
                    (false, n) => format!("Hi {name}, there are {n} procedures for you to read and acknowledge."),
                };
                message = message.text(intro);
            }
            if parts > 1 {
                message = message.context(format!("Part {} of {parts}", index + 1));
            }
            for item in chunk {
                message = message.divider().header(match &item.version {
                    Some(version) => format!("{} (v{version})", item.title),
                    None => item.title.clone(),
                });
                if let Some(summary) = &item.summary {
                    message = message.text(summary.clone());
                }
                let mut fields = vec![("Procedure".to_string(), item.id.to_string())];
                if let Some(owner) = &item.owner {
                    fields.push(("Owner".to_string(), owner.clone()));
                }
                message = message.fields(fields).actions(vec![
                    Button::new("Read", action::show(&item.id)),
                    Button::new(
                        match &item.version {
                            Some(version) => format!("Acknowledge v{version}"),
                            None => "Acknowledge".to_string(),
                        },
                        action::acknowledge(&item.id, &item.content_hash),
                    )
                    .primary(),
                ]);
            }
            if index + 1 == parts {
                message = message.context(
                    "Or type `ack <procedure>`. `/procedure pending` lists what is left.",
                );
            }
            message
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::change::detect_changes;
    use crate::core::check::{SourceContent, SourceFile};
    use crate::core::snapshot::build_snapshot;

    const DIRECTORY: &str = "teams:\n  ops: [ana@example.com, bo@example.com]\n  hr: [cy@example.com]\npeople:\n  ana@example.com: { name: Ana }\n";

    fn file(
        id: &str,
        version: &str,
        audience: &str,
        classification: &str,
        step: &str,
    ) -> SourceFile {
        SourceFile {
            path: format!("{id}.md"),
            content: SourceContent::Bytes(
                format!(
                    "---\nid: {id}\ntitle: Title of {id}\nowner: ana@example.com\naudience: [{audience}]\nclassification: {classification}\nversion: {version}\nlast_reviewed: 2026-06-01\nreview_every: 12 months\n---\n# T\n\n## Purpose\nWhy.\n\n## Steps\n1. {step}\n"
                )
                .into_bytes(),
            ),
        }
    }

    fn snapshot(files: Vec<SourceFile>) -> Snapshot {
        build_snapshot(
            files,
            Some(SourceFile {
                path: "directory.yaml".into(),
                content: SourceContent::Bytes(DIRECTORY.as_bytes().to_vec()),
            }),
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            None,
            None,
        )
    }

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap()
    }

    #[test]
    fn first_start_asks_everyone_once_in_one_dm_and_posts_nothing() {
        let snap = snapshot(vec![
            file("backup", "1.0.0", "ops", "internal", "Back up."),
            file("payroll", "1.0.0", "hr, ops", "confidential", "Pay."),
        ]);
        let plan = plan_announcements(None, &snap, &[], &BTreeMap::new());
        assert!(plan.channel_post.is_none());
        assert_eq!(plan.announcements.len(), 2);
        assert!(plan.announcements.iter().all(|a| a.kind == "baseline"));
        let ana = &plan.direct[&email("ana@example.com")];
        assert_eq!(ana.len(), 2);
        assert_eq!(plan.direct[&email("cy@example.com")].len(), 1);
    }

    #[test]
    fn a_material_change_asks_its_audience_and_an_editorial_one_nobody() {
        let old = snapshot(vec![
            file("backup", "1.0.0", "ops", "internal", "Back up."),
            file("payroll", "1.0.0", "hr", "restricted", "Pay."),
        ]);
        let new = snapshot(vec![
            file("backup", "1.1.0", "ops", "internal", "Back up twice."),
            file("payroll", "1.0.0", "hr", "restricted", "Pay on time."),
        ]);
        let changes = detect_changes(&old, &new, &BTreeMap::new());
        let current: BTreeMap<String, CurrentRequirement> = old
            .procedures
            .iter()
            .map(|(id, entry)| {
                (
                    id.to_string(),
                    CurrentRequirement {
                        content_hash: entry.content_hash.to_hex(),
                        version: Some("1.0.0".into()),
                        audience: old
                            .directory
                            .as_ref()
                            .unwrap()
                            .resolve(&entry.procedure.audience),
                    },
                )
            })
            .collect();
        let plan = plan_announcements(Some(&old), &new, &changes, &current);
        assert_eq!(
            plan.direct.keys().map(Email::as_str).collect::<Vec<_>>(),
            vec!["ana@example.com", "bo@example.com"]
        );
        let post = plan.channel_post.expect("a channel post");
        let text = format!("{post:?}");
        assert!(text.contains("backup"));
        assert!(!text.contains("payroll"), "{text}");
        assert!(!text.contains("Pay on time"), "{text}");
        assert!(text.contains("1 confidential or restricted procedure changed"));
    }

    #[test]
    fn a_newcomer_to_an_audience_is_asked_about_the_current_version() {
        let snap = snapshot(vec![file("backup", "1.0.0", "ops", "internal", "Back up.")]);
        let entry = snap.procedures.values().next().unwrap();
        let current = BTreeMap::from([(
            "backup".to_string(),
            CurrentRequirement {
                content_hash: "abc123".into(),
                version: Some("0.9.0".into()),
                audience: BTreeSet::from([email("ana@example.com")]),
            },
        )]);
        let plan = plan_announcements(None, &snap, &[], &current);
        assert_eq!(plan.direct.len(), 1);
        let bo = &plan.direct[&email("bo@example.com")];
        assert_eq!(bo[0].content_hash, "abc123");
        assert_eq!(bo[0].version.as_deref(), Some("0.9.0"));
        assert_ne!(entry.content_hash.to_hex(), "abc123");
        // Asking again with everyone already asked plans nothing.
        let everyone = BTreeMap::from([(
            "backup".to_string(),
            CurrentRequirement {
                content_hash: "abc123".into(),
                version: Some("0.9.0".into()),
                audience: BTreeSet::from([email("ana@example.com"), email("bo@example.com")]),
            },
        )]);
        assert_eq!(
            plan_announcements(None, &snap, &[], &everyone),
            AnnouncementPlan::default()
        );
    }

    #[test]
    fn long_dms_are_split() {
        let items: Vec<AckItem> = (0..23)
            .map(|n| AckItem {
                id: ProcedureId::parse(&format!("p{n}")).unwrap(),
                title: format!("P{n}"),
                version: Some("1.0.0".into()),
                content_hash: "ab".repeat(32),
                owner: None,
                summary: None,
                reason: AskReason::NewToThem,
            })
            .collect();
        let messages = acknowledgement_dm("Ana", &items);
        assert_eq!(messages.len(), 3);
        let buttons: usize = messages.iter().map(|m| m.action_ids().count()).sum();
        assert_eq!(buttons, 46);
    }
}
