//! `procbot report` (per procedure and version: audience, who acknowledged when and where, who
//! is pending, and deliveries that failed) and `procbot audit verify` (the ledger's chain).

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::Store;

pub use crate::evidence::render_csv;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
    Html,
}

/// Writes the evidence pack; returns the exit code.
pub async fn report(
    store: &Store,
    now: DateTime<Utc>,
    format: ReportFormat,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let text = match format {
        ReportFormat::Csv => render_csv(&store.acknowledgement_report().await?),
        ReportFormat::Json => {
            crate::evidence::render_json(&crate::evidence::EvidencePack::gather(store, now).await?)
        }
        ReportFormat::Html => crate::evidence::render_html(
            &crate::evidence::EvidencePack::gather(store, now).await?,
            false,
        ),
    };
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    Ok(0)
}

/// Prints what the chain check found; exit 0 intact, 1 broken.
pub async fn verify(store: &Store, out: &mut dyn Write) -> anyhow::Result<u8> {
    let verification = store.verify_ledger().await?;
    match &verification.problem {
        None => {
            writeln!(
                out,
                "ledger intact: {} entries, every hash recomputed and chained",
                verification.intact
            )?;
            Ok(0)
        }
        Some(problem) => {
            writeln!(
                out,
                "ledger BROKEN at entry {}: {}\n{} entries before it are intact",
                problem.seq, problem.reason, verification.intact
            )?;
            Ok(1)
        }
    }
}

#[derive(Serialize)]
struct JsonReminder<'a> {
    kind: &'a str,
    to: String,
    procedures: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonReminders<'a> {
    at: DateTime<Utc>,
    messages: Vec<JsonReminder<'a>>,
}

/// `{"at": "...", "messages": [{"kind", "to", "procedures"}]}`.
pub fn render_reminders_json(
    at: DateTime<Utc>,
    reminders: &[crate::core::reminders::Reminder],
) -> String {
    serde_json::to_string_pretty(&JsonReminders {
        at,
        messages: reminders
            .iter()
            .map(|r| JsonReminder {
                kind: r.kind.as_str(),
                to: r.to.describe(),
                procedures: r.procedures.iter().map(|p| p.as_str()).collect(),
            })
            .collect(),
    })
    .unwrap_or_default()
}

pub fn render_reminders_human(
    at: DateTime<Utc>,
    reminders: &[crate::core::reminders::Reminder],
) -> String {
    let mut out = format!("At {at}: {} messages would be sent\n", reminders.len());
    for reminder in reminders {
        let procedures: Vec<&str> = reminder.procedures.iter().map(|p| p.as_str()).collect();
        out.push_str(&format!(
            "  {} → {}: {}\n",
            reminder.kind.as_str(),
            reminder.to.describe(),
            if procedures.is_empty() {
                "-".to_string()
            } else {
                procedures.join(", ")
            }
        ));
    }
    out
}

/// Parses `--at`: RFC 3339, or a local date and time (`2027-03-01 09:30`, `2027-03-01T09:30`)
/// in `zone`, or a date alone (09:00 local).
pub fn parse_moment(text: &str, zone: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(time.with_timezone(&Utc));
    }
    let text = text.trim().replace('T', " ");
    let naive = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(&text, format).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(9, 0, 0))
        })
        .ok_or_else(|| {
            format!("`{text}` is not a moment; write 2027-03-01T09:30:00Z, 2027-03-01 09:30 or 2027-03-01")
        })?;
    use chrono::TimeZone;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("`{text}` does not exist in {zone} (a clock change)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_parse_in_the_configured_zone() {
        let london = chrono_tz::Europe::London;
        assert_eq!(
            parse_moment("2027-07-01 09:30", london)
                .unwrap()
                .to_rfc3339(),
            "2027-07-01T08:30:00+00:00"
        );
        assert_eq!(
            parse_moment("2027-01-04", london).unwrap().to_rfc3339(),
            "2027-01-04T09:00:00+00:00"
        );
        assert_eq!(
            parse_moment("2027-01-04T10:00:00+01:00", london)
                .unwrap()
                .to_rfc3339(),
            "2027-01-04T09:00:00+00:00"
        );
        assert!(parse_moment("next tuesday", london).is_err());
    }

    #[test]
    fn cells_are_quoted_and_never_formulas() {
        use crate::evidence::csv_cell;
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }
}
