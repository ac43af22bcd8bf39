//! The procedure domain types: what a parsed, validated procedure file is.
//!
//! Every type here is built by a `parse` function that refuses bad input with a message
//! written for the author ("parse, don't validate"); holding a value means it is valid.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Months, NaiveDate};

use crate::core::schedule::Schedule;

/// A procedure's stable identifier: a lowercase slug such as `backup-customer-data`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcedureId(String);

impl ProcedureId {
    pub const MAX_LEN: usize = 80;

    pub fn parse(text: &str) -> Result<ProcedureId, String> {
        if text.is_empty() {
            return Err("the id is empty".to_string());
        }
        if text.len() > Self::MAX_LEN {
            return Err(format!(
                "the id is {} characters long; keep it under {}",
                text.len(),
                Self::MAX_LEN
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "`{text}` is not a safe id: `{}` is not allowed (use a-z, 0-9 and `-`)",
                bad.escape_debug()
            ));
        }
        if text.starts_with('-') || text.ends_with('-') || text.contains("--") {
            return Err(format!(
                "`{text}` is not a safe id: hyphens go between words, one at a time"
            ));
        }
        Ok(ProcedureId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ProcedureId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProcedureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who may see a procedure, and where it may be shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Classification {
    Public,
    #[default]
    Internal,
    Confidential,
    Restricted,
}

impl Classification {
    pub const ALL: [Classification; 4] = [
        Classification::Public,
        Classification::Internal,
        Classification::Confidential,
        Classification::Restricted,
    ];

    pub fn parse(text: &str) -> Result<Classification, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Classification::Public),
            "internal" => Ok(Classification::Internal),
            "confidential" => Ok(Classification::Confidential),
            "restricted" => Ok(Classification::Restricted),
            _ => Err(format!(
                "`{text}` is not a classification; use public, internal, confidential or restricted"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
            Classification::Restricted => "restricted",
        }
    }

    /// Confidential and restricted procedures are shown only to their audience, and only
    /// privately (ephemeral reply or DM), never in a channel.
    pub fn is_private(self) -> bool {
        matches!(
            self,
            Classification::Confidential | Classification::Restricted
        )
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A procedure version such as `1.2.0`: one to three dot-separated numbers, optionally
/// followed by a pre-release tag (`2.0.0-draft`). Kept as written for display.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    text: String,
    numbers: Vec<u64>,
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, String> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let (core, pre_release) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if core.is_empty() || parts.len() > 3 {
            return Err(format!(
                "`{text}` is not a version; use one to three numbers like `1.2.0`"
            ));
        }
        let mut numbers = Vec::with_capacity(3);
        for part in parts {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "`{text}` is not a version; use numbers separated by dots like `1.2.0`"
                ));
            }
            let number = part
                .parse::<u64>()
                .map_err(|_| format!("`{part}` in version `{text}` is too large"))?;
            numbers.push(number);
        }
        if let Some(pre) = pre_release
            && (pre.is_empty()
                || !pre
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        {
            return Err(format!(
                "`{text}` is not a version; after `-` use letters, digits and dots, e.g. `2.0.0-draft`"
            ));
        }
        Ok(Version {
            text: text.to_string(),
            numbers,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The numbers padded to three (`1.2` is `[1, 2, 0]`), for ordering.
    pub fn numbers(&self) -> [u64; 3] {
        let mut padded = [0; 3];
        for (slot, number) in padded.iter_mut().zip(&self.numbers) {
            *slot = *number;
        }
        padded
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The unit of a review interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntervalUnit {
    Days,
    Weeks,
    Months,
    Years,
}

/// How often a procedure must be reviewed, e.g. `12 months`. Defaults to 12 months.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReviewInterval {
    pub count: u32,
    pub unit: IntervalUnit,
}

impl Default for ReviewInterval {
    fn default() -> Self {
        ReviewInterval {
            count: 12,
            unit: IntervalUnit::Months,
        }
    }
}

impl ReviewInterval {
    pub fn parse(text: &str) -> Result<ReviewInterval, String> {
        let normalised = text.trim().to_ascii_lowercase();
        let named = match normalised.as_str() {
            "daily" => Some((1, IntervalUnit::Days)),
            "weekly" => Some((1, IntervalUnit::Weeks)),
            "monthly" => Some((1, IntervalUnit::Months)),
            "quarterly" => Some((3, IntervalUnit::Months)),
            "yearly" | "annually" => Some((1, IntervalUnit::Years)),
            _ => None,
        };
        let (count, unit) = match named {
            Some(named) => named,
            None => {
                let mut words = normalised.split_whitespace();
                let (Some(count), Some(unit), None) = (words.next(), words.next(), words.next())
                else {
                    return Err(format!(
                        "`{text}` is not an interval; write a number and a unit, e.g. `12 months`"
                    ));
                };
                let count: u32 = count.parse().map_err(|_| {
                    format!("`{count}` in `{text}` is not a whole number of days, weeks, months or years")
                })?;
                let unit = match unit {
                    "day" | "days" => IntervalUnit::Days,
                    "week" | "weeks" => IntervalUnit::Weeks,
                    "month" | "months" => IntervalUnit::Months,
                    "year" | "years" => IntervalUnit::Years,
                    other => {
                        return Err(format!(
                            "`{other}` is not a unit; use days, weeks, months or years"
                        ));
                    }
                };
                (count, unit)
            }
        };
        let interval = ReviewInterval { count, unit };
        if count == 0 {
            return Err("a review interval of zero would always be overdue".to_string());
        }
        if interval.approximate_days() > 5 * 366 {
            return Err(format!(
                "`{text}` is longer than five years; ISO/IEC 27001 expects reviews at planned intervals, usually yearly"
            ));
        }
        Ok(interval)
    }

    fn approximate_days(self) -> u64 {
        let per_unit = match self.unit {
            IntervalUnit::Days => 1,
            IntervalUnit::Weeks => 7,
            IntervalUnit::Months => 31,
            IntervalUnit::Years => 366,
        };
        u64::from(self.count) * per_unit
    }

    /// The date a review is due when the last one was on `last_reviewed`. A month step that
    /// lands past the end of a month lands on its last day (31 Jan + 1 month = 28/29 Feb).
    pub fn next_due(self, last_reviewed: NaiveDate) -> Option<NaiveDate> {
        match self.unit {
            IntervalUnit::Days => {
                last_reviewed.checked_add_days(chrono::Days::new(self.count.into()))
            }
            IntervalUnit::Weeks => {
                last_reviewed.checked_add_days(chrono::Days::new(u64::from(self.count) * 7))
            }
            IntervalUnit::Months => last_reviewed.checked_add_months(Months::new(self.count)),
            IntervalUnit::Years => {
                last_reviewed.checked_add_months(Months::new(self.count.checked_mul(12)?))
            }
        }
    }
}

impl fmt::Display for ReviewInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match (self.unit, self.count == 1) {
            (IntervalUnit::Days, true) => "day",
            (IntervalUnit::Days, false) => "days",
            (IntervalUnit::Weeks, true) => "week",
            (IntervalUnit::Weeks, false) => "weeks",
            (IntervalUnit::Months, true) => "month",
            (IntervalUnit::Months, false) => "months",
            (IntervalUnit::Years, true) => "year",
            (IntervalUnit::Years, false) => "years",
        };
        write!(f, "{} {unit}", self.count)
    }
}

/// Parses an ISO date (`2026-02-01`) and explains impossible ones.
pub fn parse_iso_date(text: &str) -> Result<NaiveDate, String> {
    let text = text.trim();
    let parts: Vec<&str> = text.split('-').collect();
    let shaped = parts.len() == 3
        && parts[0].len() == 4
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if !shaped {
        return Err(format!("`{text}` is not a date in the form YYYY-MM-DD"));
    }
    let year: i32 = parts[0]
        .parse()
        .map_err(|_| format!("`{text}` has a bad year"))?;
    let month: u32 = parts[1]
        .parse()
        .map_err(|_| format!("`{text}` has a bad month"))?;
    let day: u32 = parts[2]
        .parse()
        .map_err(|_| format!("`{text}` has a bad day"))?;
    if !(1..=12).contains(&month) {
        return Err(format!(
            "`{text}` is not a real date: there is no month {month}"
        ));
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        let days_in_month = NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|first| first.checked_add_months(Months::new(1)))
            .and_then(|next| next.pred_opt())
            .map(|last| last.day())
            .unwrap_or(31);
        let month_name = NaiveDate::from_ymd_opt(year, month, 1)
            .map(|d| d.format("%B %Y").to_string())
            .unwrap_or_else(|| format!("month {month}"));
        format!("`{text}` is not a real date: {month_name} has {days_in_month} days")
    })
}

/// A person's email address, lowercased: the identity procbot uses for people.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = String;

    fn try_from(text: String) -> Result<Email, String> {
        Email::parse(&text)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl Email {
    pub fn parse(text: &str) -> Result<Email, String> {
        let trimmed = text.trim();
        let valid = match trimmed.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !trimmed
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]".contains(c))
            }
            None => false,
        };
        if !valid {
            return Err(format!("`{trimmed}` is not an email address"));
        }
        Ok(Email(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A team name from `directory.yaml`, a slug like `it-ops`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(text: &str) -> Result<TeamName, String> {
        let trimmed = text.trim();
        let valid = !trimmed.is_empty()
            && trimmed.len() <= 80
            && trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !valid {
            return Err(format!(
                "`{trimmed}` is not a team name; use letters, digits, `-`, `_` or `.` (e.g. `it-ops`)"
            ));
        }
        Ok(TeamName(trimmed.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry of a procedure's `audience`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AudienceMember {
    Everyone,
    Team(TeamName),
    Person(Email),
}

impl AudienceMember {
    pub fn parse(text: &str) -> Result<AudienceMember, String> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("everyone") || trimmed.eq_ignore_ascii_case("all") {
            return Ok(AudienceMember::Everyone);
        }
        if trimmed.contains('@') {
            return Email::parse(trimmed).map(AudienceMember::Person);
        }
        TeamName::parse(trimmed).map(AudienceMember::Team)
    }
}

impl fmt::Display for AudienceMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudienceMember::Everyone => f.write_str("everyone"),
            AudienceMember::Team(team) => team.fmt(f),
            AudienceMember::Person(email) => email.fmt(f),
        }
    }
}

/// An ISO/IEC 27001:2022 Annex A control id such as `A.8.13`. Accepts `8.13` and
/// `A 8.13` and normalises to `A.8.13`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ControlId {
    theme: u8,
    number: u8,
}

impl ControlId {
    /// The number of controls in each theme of Annex A:2022 (5 organisational,
    /// 6 people, 7 physical, 8 technological).
    const THEMES: [(u8, u8); 4] = [(5, 37), (6, 8), (7, 14), (8, 34)];

    /// Every Annex A:2022 control, in order (A.5.1 … A.8.34).
    pub fn all() -> Vec<ControlId> {
        Self::THEMES
            .iter()
            .flat_map(|(theme, count)| {
                (1..=*count).map(move |number| ControlId {
                    theme: *theme,
                    number,
                })
            })
            .collect()
    }

    pub fn parse(text: &str) -> Result<ControlId, String> {
        let trimmed = text.trim();
        let rest = trimmed
            .strip_prefix("A.")
            .or_else(|| trimmed.strip_prefix("a."))
            .or_else(|| trimmed.strip_prefix("A "))
            .or_else(|| trimmed.strip_prefix('A'))
            .unwrap_or(trimmed)
            .trim();
        let not_a_control = || {
            format!("`{trimmed}` is not an ISO/IEC 27001:2022 Annex A control id (e.g. `A.8.13`)")
        };
        let (theme, number) = rest.split_once('.').ok_or_else(not_a_control)?;
        let theme: u8 = theme.parse().map_err(|_| not_a_control())?;
        let number: u8 = number.parse().map_err(|_| not_a_control())?;
        let Some((_, count)) = Self::THEMES.iter().find(|(t, _)| *t == theme) else {
            return Err(format!(
                "`{trimmed}`: Annex A:2022 has themes 5 to 8 only (A.5 organisational, A.6 people, A.7 physical, A.8 technological)"
            ));
        };
        if number == 0 || number > *count {
            return Err(format!(
                "`{trimmed}`: theme A.{theme} has controls A.{theme}.1 to A.{theme}.{count}"
            ));
        }
        Ok(ControlId { theme, number })
    }
}

impl fmt::Display for ControlId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A.{}.{}", self.theme, self.number)
    }
}

/// The role a section plays, recognised from its heading and its synonyms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Purpose,
    Scope,
    Roles,
    Steps,
    IfSomethingGoesWrong,
    Records,
    Related,
    Other,
}

impl SectionKind {
    /// Recognises a heading, case-insensitively, with the synonyms the format allows.
    pub fn from_heading(heading: &str) -> SectionKind {
        let normalised: String = heading
            .trim()
            .trim_end_matches(':')
            .trim()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match normalised.as_str() {
            "purpose" | "goal" | "goals" | "objective" | "objectives" | "aim" | "why" => {
                SectionKind::Purpose
            }
            "scope" | "applicability" | "applies to" => SectionKind::Scope,
            "roles"
            | "responsibilities"
            | "roles and responsibilities"
            | "roles & responsibilities"
            | "who" => SectionKind::Roles,
            "steps" | "procedure" | "the procedure" | "process" | "instructions" | "how to"
            | "checklist" | "procedure steps" => SectionKind::Steps,
            "if something goes wrong"
            | "exceptions"
            | "escalation"
            | "exceptions and escalation"
            | "exceptions & escalation"
            | "when something goes wrong"
            | "what if something goes wrong"
            | "troubleshooting"
            | "problems" => SectionKind::IfSomethingGoesWrong,
            "records" | "evidence" | "records and evidence" | "records & evidence" | "outputs" => {
                SectionKind::Records
            }
            "related procedures" | "related" | "see also" | "references" => SectionKind::Related,
            _ => SectionKind::Other,
        }
    }

    /// The canonical heading, as the format spec writes it.
    pub fn canonical_heading(self) -> &'static str {
        match self {
            SectionKind::Purpose => "Purpose",
            SectionKind::Scope => "Scope",
            SectionKind::Roles => "Roles",
            SectionKind::Steps => "Steps",
            SectionKind::IfSomethingGoesWrong => "If something goes wrong",
            SectionKind::Records => "Records",
            SectionKind::Related => "Related procedures",
            SectionKind::Other => "Other",
        }
    }
}

/// A `##` section of the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    /// The heading as written.
    pub heading: String,
    /// The section's Markdown source, without its heading.
    pub markdown: String,
    /// The 1-based line of the heading.
    pub line: u32,
}

/// One step of the Steps section, with its nested items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based position among its siblings (not the number written in the file).
    pub number: u32,
    /// The step's own text (inline Markdown flattened to text; code keeps its backticks).
    pub text: String,
    pub line: u32,
    pub substeps: Vec<Step>,
}

/// A procedure as read from one file. Optional fields are `None` when absent or invalid;
/// the diagnostics produced alongside say which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Procedure {
    pub id: ProcedureId,
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    pub title: String,
    pub summary: Option<String>,
    pub owner: Option<Email>,
    pub audience: Vec<AudienceMember>,
    pub classification: Classification,
    pub version: Option<Version>,
    pub last_reviewed: Option<NaiveDate>,
    pub review_every: ReviewInterval,
    pub controls: Vec<ControlId>,
    /// Other regimes (`soc2`, `gdpr`, ...) mapped to their clause ids, as written.
    pub frameworks: BTreeMap<String, Vec<String>>,
    pub keywords: Vec<String>,
    pub schedule: Option<Schedule>,
    pub approver: Option<Email>,
    /// Who performs the scheduled runs (people, teams, `everyone`); empty means the owner.
    pub run_by: Vec<AudienceMember>,
    pub has_front_matter: bool,
    pub sections: Vec<Section>,
    pub steps: Vec<Step>,
    /// The Markdown body after the front matter.
    pub body: String,
}

impl Procedure {
    pub fn section(&self, kind: SectionKind) -> Option<&Section> {
        self.sections.iter().find(|section| section.kind == kind)
    }

    /// The date the next review falls due, when the last review date is known.
    pub fn review_due(&self) -> Option<NaiveDate> {
        self.review_every.next_due(self.last_reviewed?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_safe_slugs() {
        assert!(ProcedureId::parse("backup-customer-data").is_ok());
        assert!(ProcedureId::parse("a1").is_ok());
        for bad in [
            "", "Backup", "back up", "-x", "x-", "a--b", "../etc", "é", "a_b",
        ] {
            assert!(ProcedureId::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn versions_accept_one_to_three_numbers() {
        assert_eq!(Version::parse("1.2.0").unwrap().numbers(), [1, 2, 0]);
        assert_eq!(Version::parse("1.10").unwrap().numbers(), [1, 10, 0]);
        assert_eq!(Version::parse("3").unwrap().as_str(), "3");
        assert!(Version::parse("2.0.0-draft").is_ok());
        for bad in ["", "1.2.3.4", "one", "1..2", "1.2-", "1.x"] {
            assert!(Version::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn review_intervals_parse_and_step_dates() {
        let interval = ReviewInterval::parse("12 months").unwrap();
        assert_eq!(interval, ReviewInterval::default());
        let last = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(
            ReviewInterval::parse("1 month").unwrap().next_due(last),
            NaiveDate::from_ymd_opt(2026, 2, 28)
        );
        assert_eq!(
            ReviewInterval::parse("2 weeks").unwrap().next_due(last),
            NaiveDate::from_ymd_opt(2026, 2, 14)
        );
        assert_eq!(ReviewInterval::parse("Quarterly").unwrap().count, 3);
        for bad in [
            "",
            "12",
            "twelve months",
            "0 days",
            "12 fortnights",
            "99 years",
            "1 month extra",
        ] {
            assert!(
                ReviewInterval::parse(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn impossible_dates_are_explained() {
        assert!(parse_iso_date("2026-02-01").is_ok());
        let error = parse_iso_date("2026-02-30").unwrap_err();
        assert!(error.contains("February 2026 has 28 days"), "{error}");
        assert!(
            parse_iso_date("2026-13-01")
                .unwrap_err()
                .contains("no month 13")
        );
        assert!(parse_iso_date("1 Feb 2026").is_err());
        assert!(parse_iso_date("2024-02-29").is_ok());
    }

    #[test]
    fn controls_are_annex_a_2022() {
        assert_eq!(ControlId::parse("A.8.13").unwrap().to_string(), "A.8.13");
        assert_eq!(ControlId::parse("8.13").unwrap().to_string(), "A.8.13");
        assert_eq!(ControlId::parse("A.5.37").unwrap().to_string(), "A.5.37");
        for bad in ["A.5.38", "A.9.1", "A.12.3.1", "CC6.1", "A.8.0"] {
            assert!(ControlId::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn section_synonyms_are_recognised() {
        assert_eq!(SectionKind::from_heading("Goal"), SectionKind::Purpose);
        assert_eq!(SectionKind::from_heading("PROCEDURE"), SectionKind::Steps);
        assert_eq!(
            SectionKind::from_heading("Responsibilities"),
            SectionKind::Roles
        );
        assert_eq!(
            SectionKind::from_heading("Escalation:"),
            SectionKind::IfSomethingGoesWrong
        );
        assert_eq!(SectionKind::from_heading("Evidence"), SectionKind::Records);
        assert_eq!(SectionKind::from_heading("Background"), SectionKind::Other);
    }

    #[test]
    fn audience_members_are_teams_people_or_everyone() {
        assert_eq!(
            AudienceMember::parse("everyone").unwrap(),
            AudienceMember::Everyone
        );
        assert!(matches!(
            AudienceMember::parse("it-ops").unwrap(),
            AudienceMember::Team(_)
        ));
        assert!(matches!(
            AudienceMember::parse("Ana@Example.com").unwrap(),
            AudienceMember::Person(email) if email.as_str() == "ana@example.com"
        ));
        assert!(AudienceMember::parse("bad@").is_err());
        assert!(AudienceMember::parse("two words").is_err());
    }
}
