//! Diagnostics: the problems `procbot check` and the sync report, with stable codes.
//!
//! Codes are a contract with the people who read them in CI logs and with tools that parse
//! `check --format json`: a code keeps its number and its name forever; new problems get new
//! codes at the end of the list.

use std::fmt;

/// How bad a problem is: errors fail `procbot check`, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! diagnostic_codes {
    ($($variant:ident = $code:literal, $name:literal, $severity:ident, $hint:literal;)*) => {
        /// Every problem procbot can report about a procedures repository.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum DiagnosticCode {
            $($variant,)*
        }

        impl DiagnosticCode {
            /// All codes, in code order.
            pub const ALL: &'static [DiagnosticCode] = &[$(DiagnosticCode::$variant,)*];

            /// The stable code, e.g. `P003`.
            pub fn code(self) -> &'static str {
                match self { $(DiagnosticCode::$variant => $code,)* }
            }

            /// The stable name, e.g. `missing-owner`.
            pub fn name(self) -> &'static str {
                match self { $(DiagnosticCode::$variant => $name,)* }
            }

            /// The severity the problem has unless the check says otherwise.
            pub fn default_severity(self) -> Severity {
                match self { $(DiagnosticCode::$variant => Severity::$severity,)* }
            }

            /// A one-line hint telling the author how to fix the problem.
            pub fn hint(self) -> &'static str {
                match self { $(DiagnosticCode::$variant => $hint,)* }
            }
        }
    };
}

diagnostic_codes! {
    InvalidYaml = "P001", "invalid-yaml", Error,
        "fix the YAML syntax between the two `---` lines (quote values that contain `: ` or start with `[`, `{`, `*`, `&`, `!`, `|`, `>`, `%`, `@`)";
    UnterminatedFrontMatter = "P002", "unterminated-front-matter", Error,
        "close the front matter with a line containing only `---`";
    MissingOwner = "P003", "missing-owner", Error,
        "add `owner: someone@example.com` (the person who keeps this procedure up to date) to the front matter";
    MissingTitle = "P004", "missing-title", Error,
        "add `title: ...` to the front matter";
    MissingAudience = "P005", "missing-audience", Error,
        "add `audience: [team-name]` (teams or people who must know it, or `everyone`) to the front matter";
    MissingVersion = "P006", "missing-version", Error,
        "add `version: 1.0.0` to the front matter; bump it when staff must acknowledge a change";
    MissingLastReviewed = "P007", "missing-last-reviewed", Error,
        "add `last_reviewed: YYYY-MM-DD` (the date the owner last confirmed it is accurate)";
    MissingSteps = "P008", "missing-steps", Error,
        "add a `## Steps` section with a numbered list (`1. Do this`) or a checklist (`- [ ] Do this`)";
    DuplicateId = "P009", "duplicate-id", Error,
        "give each procedure its own `id:`; ids must be unique across the repository";
    InvalidId = "P010", "invalid-id", Error,
        "use a lowercase slug for `id` (letters a-z, digits and single hyphens, e.g. `backup-customer-data`)";
    UnknownClassification = "P011", "unknown-classification", Error,
        "use one of `public`, `internal`, `confidential`, `restricted`";
    InvalidDate = "P012", "invalid-date", Error,
        "write a real calendar date as YYYY-MM-DD, e.g. `2026-02-01`";
    InvalidReviewInterval = "P013", "invalid-review-interval", Error,
        "write `review_every` as `N days`, `N weeks`, `N months` or `N years`, e.g. `12 months`";
    InvalidSchedule = "P014", "invalid-schedule", Error,
        "write `schedule` as a 5-field crontab (`min hour day-of-month month day-of-week`, e.g. `0 9 * * MON`) or `@daily`, `@weekly`, `@monthly`, `@quarterly`, `@yearly`";
    InvalidVersion = "P015", "invalid-version", Error,
        "write `version` as numbers separated by dots, e.g. `1.2.0`";
    UnknownOwner = "P016", "unknown-owner", Error,
        "add this person to directory.yaml under `people:` (or fix the spelling of the email)";
    UnknownAudience = "P017", "unknown-audience", Error,
        "name a team from directory.yaml, a person's email from it, or `everyone`";
    ReviewOverdue = "P018", "review-overdue", Warning,
        "review the procedure with its owner, then set `last_reviewed` to the review date";
    EmptyFile = "P019", "empty-file", Error,
        "write the procedure, or delete the file";
    BinaryFile = "P020", "binary-file", Error,
        "procedures are Markdown text; move binary files out of the procedures repository or into a folder starting with `_`";
    NotUtf8 = "P021", "not-utf8", Error,
        "save the file as UTF-8 (most editors: \"Save with encoding\" → UTF-8)";
    WrongType = "P022", "wrong-type", Error,
        "give the field the shape shown in procedures/README.md (a text, a list `[a, b]`, or a mapping)";
    UnknownField = "P023", "unknown-field", Warning,
        "remove the field or fix its spelling; procbot ignores fields it does not know";
    InvalidEmail = "P024", "invalid-email", Error,
        "people are named by email address, e.g. `it-lead@example.com`";
    UnknownControl = "P025", "unknown-control", Warning,
        "use ISO/IEC 27001:2022 Annex A ids: A.5.1-A.5.37, A.6.1-A.6.8, A.7.1-A.7.14, A.8.1-A.8.34";
    MissingFrontMatter = "P026", "missing-front-matter", Warning,
        "start the file with a `---` line, the fields (`id`, `title`, `owner`, ...), and another `---` line";
    LastReviewedInFuture = "P027", "last-reviewed-in-future", Warning,
        "set `last_reviewed` to the date the review actually happened";
    UnknownApprover = "P028", "unknown-approver", Error,
        "add this person to directory.yaml under `people:` (or fix the spelling of the email)";
    InvalidDirectory = "P029", "invalid-directory", Error,
        "fix directory.yaml: `teams:` maps team names to lists of emails, `people:` maps emails to `{ name, slack, discord, manager, tz }`";
    UnreadableFile = "P030", "unreadable-file", Error,
        "check the file's permissions";
    DuplicateField = "P031", "duplicate-field", Error,
        "write each field once; remove the repeated one";
    RunByWithoutSchedule = "P032", "run-by-without-schedule", Warning,
        "add a `schedule` (when the procedure must be performed), or remove `run_by`";
}

impl fmt::Display for DiagnosticCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

/// A position in a file, 1-based like editors show it. Columns count characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    pub const START: Position = Position { line: 1, column: 1 };

    pub fn new(line: u32, column: u32) -> Position {
        Position {
            line: line.max(1),
            column: column.max(1),
        }
    }
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Path relative to the repository root, with `/` separators.
    pub file: String,
    pub position: Position,
    pub code: DiagnosticCode,
    pub severity: Severity,
    /// What is wrong, specific to this occurrence ("`owner` is missing").
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<String>,
        position: Position,
        code: DiagnosticCode,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            position,
            code,
            severity: code.default_severity(),
            message: message.into(),
        }
    }

    pub fn with_severity(mut self, severity: Severity) -> Diagnostic {
        self.severity = severity;
        self
    }

    pub fn hint(&self) -> &'static str {
        self.code.hint()
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics the way people read them: by file, then position, then code.
pub fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.file, a.position, a.code, &a.message).cmp(&(&b.file, b.position, b.code, &b.message))
    });
}
