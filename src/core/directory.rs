//! The directory: teams and people from `directory.yaml`, and audience resolution.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::diagnostic::{Diagnostic, DiagnosticCode, Position, Severity};
use crate::core::procedure::{AudienceMember, Email, TeamName};
use crate::core::yaml::{YamlNode, YamlValue, parse_yaml};

/// A person procbot may message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub email: Email,
    pub name: Option<String>,
    /// Slack user id (`U024BE7LH`); looked up by email when absent.
    pub slack: Option<String>,
    /// Discord user id (a snowflake).
    pub discord: Option<String>,
    pub manager: Option<Email>,
    /// IANA time zone; the configured default applies when absent.
    pub time_zone: Option<chrono_tz::Tz>,
}

impl Person {
    fn new(email: Email) -> Person {
        Person {
            email,
            name: None,
            slack: None,
            discord: None,
            manager: None,
            time_zone: None,
        }
    }

    /// The name to greet people by: the directory name, else the email.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.email.as_str())
    }
}

/// Who holds each Discord role, as Discord tells it: role id → the directory's people (by
/// their `discord:` id) who hold it.
pub type RoleMembers = BTreeMap<String, BTreeSet<Email>>;

/// Teams and people. Everyone named in a team is a person even without a `people:` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    pub teams: BTreeMap<TeamName, Vec<Email>>,
    pub people: BTreeMap<Email, Person>,
    /// Teams mapped to a Discord role (`{ discord_role: "…" }`): when a team lists no members,
    /// its members are the directory's people who hold the role.
    pub team_roles: BTreeMap<TeamName, String>,
    /// Who holds those roles now; filled from Discord, not from the file.
    pub role_members: RoleMembers,
}

impl Directory {
    /// Parses `directory.yaml`. Problems become diagnostics against `file`; what could be
    /// read is kept, so one bad entry does not empty the directory.
    pub fn parse(file: &str, text: &str) -> (Directory, Vec<Diagnostic>) {
        let mut parser = DirectoryParser {
            file,
            directory: Directory::default(),
            diagnostics: Vec::new(),
        };
        parser.parse(text);
        let DirectoryParser {
            directory,
            diagnostics,
            ..
        } = parser;
        (directory, diagnostics)
    }

    pub fn person(&self, email: &Email) -> Option<&Person> {
        self.people.get(email)
    }

    /// A person's own time zone, else `default`.
    pub fn time_zone_of(&self, email: &Email, default: chrono_tz::Tz) -> chrono_tz::Tz {
        self.person(email)
            .and_then(|p| p.time_zone)
            .unwrap_or(default)
    }

    /// Fills in the time zone of people the directory gives none, from their chat profiles.
    pub fn with_profile_time_zones(mut self, zones: &BTreeMap<Email, chrono_tz::Tz>) -> Directory {
        for person in self.people.values_mut() {
            if person.time_zone.is_none() {
                person.time_zone = zones.get(&person.email).copied();
            }
        }
        self
    }

    pub fn knows_person(&self, email: &Email) -> bool {
        self.people.contains_key(email)
    }

    pub fn has_team(&self, team: &TeamName) -> bool {
        self.teams.contains_key(team)
    }

    /// Everyone in the directory.
    pub fn everyone(&self) -> BTreeSet<Email> {
        self.people.keys().cloned().collect()
    }

    /// A team's people: those it lists, else (for a team mapped to a Discord role) the
    /// directory's people who hold the role.
    pub fn team_members(&self, team: &TeamName) -> BTreeSet<Email> {
        match self.teams.get(team) {
            Some(members) if !members.is_empty() => members.iter().cloned().collect(),
            _ => self
                .team_roles
                .get(team)
                .and_then(|role| self.role_members.get(role))
                .map(|holders| {
                    holders
                        .iter()
                        .filter(|email| self.knows_person(email))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Every Discord role a team is mapped to.
    pub fn mapped_roles(&self) -> BTreeSet<String> {
        self.team_roles.values().cloned().collect()
    }

    /// The people an audience names. Unknown teams and people resolve to nobody; `check`
    /// reports them.
    pub fn resolve(&self, audience: &[AudienceMember]) -> BTreeSet<Email> {
        let mut people = BTreeSet::new();
        for member in audience {
            match member {
                AudienceMember::Everyone => return self.everyone(),
                AudienceMember::Team(team) => people.extend(self.team_members(team)),
                AudienceMember::Person(email) => {
                    if self.knows_person(email) {
                        people.insert(email.clone());
                    }
                }
            }
        }
        people
    }
}

struct DirectoryParser<'a> {
    file: &'a str,
    directory: Directory,
    diagnostics: Vec<Diagnostic>,
}

impl DirectoryParser<'_> {
    fn report(&mut self, position: Position, message: String) {
        self.diagnostics.push(Diagnostic::new(
            self.file,
            position,
            DiagnosticCode::InvalidDirectory,
            message,
        ));
    }

    fn warn(&mut self, position: Position, message: String) {
        self.diagnostics.push(
            Diagnostic::new(
                self.file,
                position,
                DiagnosticCode::InvalidDirectory,
                message,
            )
            .with_severity(Severity::Warning),
        );
    }

    fn parse(&mut self, text: &str) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let root = match parse_yaml(text, 1) {
            Ok(Some(root)) => root,
            Ok(None) => return,
            Err(error) => {
                self.report(
                    error.position,
                    format!("directory.yaml is not valid YAML: {}", error.message),
                );
                return;
            }
        };
        let YamlValue::Mapping(entries) = &root.value else {
            self.report(
                root.position,
                format!(
                    "expected `teams:` and `people:`, found {}",
                    root.kind_name()
                ),
            );
            return;
        };
        let mut people_node = None;
        let mut teams_node = None;
        for (key, value) in entries {
            match key.as_scalar() {
                Some("people") => people_node = Some(value),
                Some("teams") => teams_node = Some(value),
                other => self.warn(
                    key.position,
                    format!(
                        "unknown key `{}`; directory.yaml has `teams:` and `people:`",
                        other.unwrap_or("?")
                    ),
                ),
            }
        }
        if let Some(people) = people_node {
            self.parse_people(people);
        }
        if let Some(teams) = teams_node {
            self.parse_teams(teams);
        }
        self.check_managers();
    }

    fn team_list(&mut self, items: &[YamlNode], emails: &mut Vec<Email>) {
        for item in items {
            if let Some(email) = self.email(item)
                && !emails.contains(&email)
            {
                emails.push(email);
            }
        }
    }

    fn email(&mut self, node: &YamlNode) -> Option<Email> {
        let Some(text) = node.as_scalar() else {
            self.report(
                node.position,
                format!("expected an email address, found {}", node.kind_name()),
            );
            return None;
        };
        match Email::parse(text) {
            Ok(email) => Some(email),
            Err(message) => {
                self.report(node.position, message);
                None
            }
        }
    }

    fn parse_people(&mut self, node: &YamlNode) {
        if node.is_null() {
            return;
        }
        let YamlValue::Mapping(entries) = &node.value else {
            self.report(
                node.position,
                format!(
                    "`people:` must map emails to details, found {}",
                    node.kind_name()
                ),
            );
            return;
        };
        for (key, details) in entries {
            let Some(email) = self.email(key) else {
                continue;
            };
            if self.directory.people.contains_key(&email) {
                self.report(
                    key.position,
                    format!("{email} is listed twice under `people:`"),
                );
                continue;
            }
            let mut person = Person::new(email.clone());
            match &details.value {
                _ if details.is_null() => {}
                YamlValue::Mapping(fields) => {
                    for (field, value) in fields {
                        let name = field.as_scalar().unwrap_or("?");
                        let text = match value.as_scalar() {
                            Some(text) if !value.is_null() => text.trim().to_string(),
                            _ => {
                                self.report(
                                    value.position,
                                    format!("`{name}` of {email} must be a text value"),
                                );
                                continue;
                            }
                        };
                        match name {
                            "name" => person.name = Some(text),
                            "slack" => person.slack = Some(text),
                            "discord" => {
                                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                                    self.report(value.position, format!("`discord` of {email} must be a Discord user id (digits, in quotes)"));
                                } else {
                                    person.discord = Some(text);
                                }
                            }
                            "manager" => match Email::parse(&text) {
                                Ok(manager) => person.manager = Some(manager),
                                Err(message) => self.report(value.position, message),
                            },
                            "tz" | "timezone" => match text.parse::<chrono_tz::Tz>() {
                                Ok(zone) => person.time_zone = Some(zone),
                                Err(_) => self.report(
                                    value.position,
                                    format!("`{text}` is not an IANA time zone (e.g. `Europe/Berlin`)"),
                                ),
                            },
                            other => self.warn(
                                field.position,
                                format!("unknown field `{other}` for {email}; people have name, slack, discord, manager, tz"),
                            ),
                        }
                    }
                }
                _ => self.report(
                    details.position,
                    format!(
                        "details of {email} must be a mapping like `{{ name: Ana }}`, found {}",
                        details.kind_name()
                    ),
                ),
            }
            self.directory.people.insert(email, person);
        }
    }

    fn parse_teams(&mut self, node: &YamlNode) {
        if node.is_null() {
            return;
        }
        let YamlValue::Mapping(entries) = &node.value else {
            self.report(
                node.position,
                format!(
                    "`teams:` must map team names to lists of emails, found {}",
                    node.kind_name()
                ),
            );
            return;
        };
        for (key, members) in entries {
            let team = match key.as_scalar().map(TeamName::parse) {
                Some(Ok(team)) => team,
                Some(Err(message)) => {
                    self.report(key.position, message);
                    continue;
                }
                None => {
                    self.report(key.position, "a team name must be a text value".to_string());
                    continue;
                }
            };
            if team.as_str() == "everyone" {
                self.report(
                    key.position,
                    "`everyone` is reserved: it means every person in the directory".to_string(),
                );
                continue;
            }
            if self.directory.teams.contains_key(&team) {
                self.report(key.position, format!("team `{team}` is listed twice"));
                continue;
            }
            let mut emails = Vec::new();
            match &members.value {
                _ if members.is_null() => {}
                YamlValue::Sequence(items) => self.team_list(items, &mut emails),
                // `{ members: [...], discord_role: "…" }`: a team mapped to a Discord role.
                YamlValue::Mapping(fields) => {
                    for (field, value) in fields {
                        match field.as_scalar() {
                            Some("members") => match &value.value {
                                YamlValue::Sequence(items) => self.team_list(items, &mut emails),
                                _ if value.is_null() => {}
                                _ => self.report(
                                    value.position,
                                    format!("`members` of `{team}` must be a list of emails"),
                                ),
                            },
                            Some("discord_role") => match value.as_scalar() {
                                Some(role)
                                    if !role.is_empty()
                                        && role.len() <= 20
                                        && role.bytes().all(|b| b.is_ascii_digit()) =>
                                {
                                    self.directory
                                        .team_roles
                                        .insert(team.clone(), role.to_string());
                                }
                                _ => self.report(
                                    value.position,
                                    format!(
                                        "`discord_role` of `{team}` must be a Discord role id (digits, in quotes)"
                                    ),
                                ),
                            },
                            other => self.warn(
                                field.position,
                                format!(
                                    "unknown field `{}` in team `{team}`; a team takes `members` and `discord_role`",
                                    other.unwrap_or("?")
                                ),
                            ),
                        }
                    }
                }
                _ => self.report(
                    members.position,
                    format!(
                        "members of `{team}` must be a list of emails, found {}",
                        members.kind_name()
                    ),
                ),
            }
            for email in &emails {
                self.directory
                    .people
                    .entry(email.clone())
                    .or_insert_with(|| Person::new(email.clone()));
            }
            self.directory.teams.insert(team, emails);
        }
    }

    fn check_managers(&mut self) {
        let unknown: Vec<(Email, Email)> = self
            .directory
            .people
            .values()
            .filter_map(|person| {
                let manager = person.manager.as_ref()?;
                (!self.directory.people.contains_key(manager))
                    .then(|| (person.email.clone(), manager.clone()))
            })
            .collect();
        for (person, manager) in unknown {
            self.report(
                Position::START,
                format!("the manager of {person}, {manager}, is not in the directory"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECTORY: &str = "teams:\n  it-ops: [it-lead@example.com, sam@example.com]\n  engineering: [cto@example.com, ana@example.com]\npeople:\n  it-lead@example.com: { name: Ida Lead, slack: U024BE7LH, discord: \"80351110224678912\", manager: cto@example.com, tz: Europe/Berlin }\n  sam@example.com: { name: Sam Ops }\n";

    #[test]
    fn a_team_may_be_a_discord_role() {
        let text = "teams:\n  engineering: { discord_role: \"777000000000000001\" }\n  it-ops: { members: [sam@example.com], discord_role: \"777000000000000002\" }\n  bad: { discord_role: \"@devs\", colour: blue }\npeople:\n  sam@example.com: { discord: \"4001\" }\n  ana@example.com: { discord: \"4002\" }\n";
        let (mut directory, diagnostics) = Directory::parse("directory.yaml", text);
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("`discord_role` of `bad` must be a Discord role id"));
        assert!(messages[1].contains("unknown field `colour`"));
        let engineering = TeamName::parse("engineering").unwrap();
        assert!(directory.has_team(&engineering));
        assert!(
            directory.team_members(&engineering).is_empty(),
            "nobody holds the role yet"
        );
        let ana = Email::parse("ana@example.com").unwrap();
        let stranger = Email::parse("stranger@example.com").unwrap();
        directory.role_members = RoleMembers::from([
            (
                "777000000000000001".to_string(),
                BTreeSet::from([ana.clone(), stranger]),
            ),
            (
                "777000000000000002".to_string(),
                BTreeSet::from([ana.clone()]),
            ),
        ]);
        assert_eq!(
            directory.resolve(&[AudienceMember::Team(engineering)]),
            BTreeSet::from([ana]),
            "role holders the directory knows"
        );
        let listed = directory.team_members(&TeamName::parse("it-ops").unwrap());
        assert_eq!(listed.len(), 1, "listed members win over the role");
        assert!(listed.contains(&Email::parse("sam@example.com").unwrap()));
    }

    #[test]
    fn the_spec_example_parses_cleanly() {
        let (directory, diagnostics) = Directory::parse("directory.yaml", DIRECTORY);
        assert_eq!(diagnostics, []);
        assert_eq!(directory.people.len(), 4);
        let ida = directory
            .person(&Email::parse("it-lead@example.com").unwrap())
            .unwrap();
        assert_eq!(ida.display_name(), "Ida Lead");
        assert_eq!(ida.time_zone, Some(chrono_tz::Europe::Berlin));
    }

    #[test]
    fn audiences_resolve_to_people() {
        let (directory, _) = Directory::parse("directory.yaml", DIRECTORY);
        let it_ops = directory.resolve(&[AudienceMember::parse("it-ops").unwrap()]);
        assert_eq!(it_ops.len(), 2);
        let mixed = directory.resolve(&[
            AudienceMember::parse("it-ops").unwrap(),
            AudienceMember::parse("ana@example.com").unwrap(),
            AudienceMember::parse("nobody@example.com").unwrap(),
        ]);
        assert_eq!(mixed.len(), 3);
        assert_eq!(directory.resolve(&[AudienceMember::Everyone]).len(), 4);
    }

    #[test]
    fn bad_entries_are_reported_and_the_rest_kept() {
        let text = "teams:\n  ops: [not-an-email, sam@example.com]\npeople:\n  sam@example.com: { tz: Mars/Olympus, manager: boss@example.com }\n";
        let (directory, diagnostics) = Directory::parse("directory.yaml", text);
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.contains("not-an-email")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("Mars/Olympus")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("boss@example.com")),
            "{messages:?}"
        );
        assert_eq!(directory.teams.values().next().unwrap().len(), 1);
    }
}
