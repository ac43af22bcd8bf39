//! `schedule:` in front matter: standard 5-field crontab, evaluated with the `cron` crate.
//!
//! Authors write crontab as every sysadmin knows it (`min hour dom month dow`, 0 or 7 =
//! Sunday, and Vixie cron's rule that a restricted day-of-month and a restricted day-of-week
//! are ORed). The `cron` crate wants a seconds field, numbers Sunday as 1 and ANDs the two day
//! fields, so we parse crontab ourselves (which also gives authors precise messages) and hand
//! the crate explicit, unambiguous expressions.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone};

const WEEKDAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
/// The longest each month can be (February in a leap year), indexed from January.
const MONTH_MAX_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// When a procedure must be performed, in the configured time zone.
#[derive(Clone)]
pub struct Schedule {
    source: String,
    /// One expression, or two when day-of-month and day-of-week are both restricted
    /// (crontab fires when either matches).
    expressions: Vec<cron::Schedule>,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.source).finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Schedule {}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

struct Field {
    values: Vec<u32>,
    /// Crontab treats a field starting with `*` as unrestricted for the day-of-month /
    /// day-of-week OR rule, even with a step (`*/2`).
    starred: bool,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Where the first name counts from (Sunday = 0, January = 1).
    names_start: u32,
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_start: 0,
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_start: 0,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_start: 0,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    names_start: 1,
};
/// 7 is accepted as Sunday, then folded onto 0.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &WEEKDAY_NAMES,
    names_start: 0,
};

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if let Ok(number) = text.parse::<u32>() {
        if number < spec.min || number > spec.max {
            return Err(format!(
                "{} `{number}` is out of range ({}-{})",
                spec.name, spec.min, spec.max
            ));
        }
        return Ok(number);
    }
    let lower = text.to_ascii_lowercase();
    if let Some(index) = spec.names.iter().position(|name| *name == lower) {
        return Ok(u32::try_from(index).unwrap_or(0) + spec.names_start);
    }
    if spec.names.is_empty() {
        Err(format!(
            "`{text}` is not a number in the {} field",
            spec.name
        ))
    } else {
        Err(format!(
            "`{text}` is not a {} (use {}-{} or names like `{}`)",
            spec.name, spec.min, spec.max, spec.names[1]
        ))
    }
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<Field, String> {
    let mut present = vec![false; spec.max as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| {
                    format!(
                        "`{step}` in `{part}` is not a step (a whole number) in the {} field",
                        spec.name
                    )
                })?;
                if step == 0 || step > spec.max {
                    return Err(format!(
                        "step `/{step}` is out of range in the {} field",
                        spec.name
                    ));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((first, last)) = range.split_once('-') {
            let (first, last) = (parse_value(first, spec)?, parse_value(last, spec)?);
            if first > last {
                return Err(format!(
                    "range `{range}` in the {} field runs backwards; write it as `{last}-{first}` or a list",
                    spec.name
                ));
            }
            (first, last)
        } else if range.is_empty() {
            return Err(format!("the {} field has an empty entry", spec.name));
        } else {
            let value = parse_value(range, spec)?;
            // `5/10` means "from 5 every 10", as in Vixie cron.
            (value, if step > 1 { spec.max } else { value })
        };
        let mut value = start;
        while value <= end {
            present[value as usize] = true;
            value += step;
        }
    }
    let mut values: Vec<u32> = (spec.min..=spec.max)
        .filter(|v| present[*v as usize])
        .collect();
    if spec.name == DAY_OF_WEEK.name && values.last() == Some(&7) {
        values.pop();
        if values.first() != Some(&0) {
            values.insert(0, 0);
        }
    }
    Ok(Field {
        values,
        starred: text.starts_with('*'),
    })
}

fn render_numbers(field: &Field, spec: &FieldSpec) -> String {
    let full = (spec.min..=spec.max.min(if spec.name == DAY_OF_WEEK.name {
        6
    } else {
        spec.max
    }))
        .count();
    if field.values.len() == full {
        return "*".to_string();
    }
    field
        .values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn render_weekdays(field: &Field) -> String {
    if field.values.len() == 7 {
        return "*".to_string();
    }
    // Names, not numbers: the cron crate counts Sunday as 1, crontab as 0.
    field
        .values
        .iter()
        .map(|day| {
            let name = WEEKDAY_NAMES[*day as usize];
            let mut chars = name.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn expand_macro(text: &str) -> Result<Option<&'static str>, String> {
    let expanded = match text.to_ascii_lowercase().as_str() {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@quarterly" => "0 0 1 1,4,7,10 *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        other if other.starts_with('@') => {
            return Err(format!(
                "`{text}` is not a known shorthand; use @daily, @weekly, @monthly, @quarterly or @yearly"
            ));
        }
        _ => return Ok(None),
    };
    Ok(Some(expanded))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let source = text.trim();
        let crontab = expand_macro(source)?.unwrap_or(source);
        let fields: Vec<&str> = crontab.split_whitespace().collect();
        if fields.len() != 5 {
            let seconds_hint = if fields.len() == 6 {
                " (procbot schedules have no seconds field: drop the first one)"
            } else {
                ""
            };
            return Err(format!(
                "`{source}` has {} fields; crontab has 5: minute hour day-of-month month day-of-week{seconds_hint}",
                fields.len()
            ));
        }
        let minute = parse_field(fields[0], &MINUTE)?;
        let hour = parse_field(fields[1], &HOUR)?;
        let day_of_month = parse_field(fields[2], &DAY_OF_MONTH)?;
        let month = parse_field(fields[3], &MONTH)?;
        let day_of_week = parse_field(fields[4], &DAY_OF_WEEK)?;

        let both_days_restricted = !day_of_month.starred && !day_of_week.starred;
        if !both_days_restricted
            && !month.values.iter().any(|m| {
                day_of_month
                    .values
                    .iter()
                    .any(|d| *d <= MONTH_MAX_DAYS[(*m - 1) as usize])
            })
        {
            return Err(format!(
                "`{source}` never fires: none of the chosen months has that day of the month"
            ));
        }

        let minute = render_numbers(&minute, &MINUTE);
        let hour = render_numbers(&hour, &HOUR);
        let month = render_numbers(&month, &MONTH);
        let mut expressions = Vec::new();
        let day_pairs = if both_days_restricted {
            vec![
                (
                    render_numbers(&day_of_month, &DAY_OF_MONTH),
                    "*".to_string(),
                ),
                ("*".to_string(), render_weekdays(&day_of_week)),
            ]
        } else {
            vec![(
                render_numbers(&day_of_month, &DAY_OF_MONTH),
                render_weekdays(&day_of_week),
            )]
        };
        for (day_of_month, day_of_week) in day_pairs {
            let expression = format!("0 {minute} {hour} {day_of_month} {month} {day_of_week}");
            let schedule = cron::Schedule::from_str(&expression)
                .map_err(|error| format!("`{source}` could not be scheduled: {error}"))?;
            expressions.push(schedule);
        }
        Ok(Schedule {
            source: source.to_string(),
            expressions,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The latest time at or before `at`, in `at`'s time zone: the run a scheduler that was
    /// down should still make, once.
    pub fn latest_at_or_before<Z: TimeZone>(&self, at: &DateTime<Z>) -> Option<DateTime<Z>> {
        let just_after = at.clone() + chrono::Duration::seconds(1);
        self.expressions
            .iter()
            .filter_map(|expression| expression.after(&just_after).next_back())
            .filter(|time| time <= at)
            .max()
    }

    /// The first time strictly after `after`, in `after`'s time zone.
    pub fn next_after<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<DateTime<Z>> {
        self.expressions
            .iter()
            .filter_map(|expression| expression.after(after).next())
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Utc, Weekday};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_latest_run_at_or_before_a_moment() {
        let schedule = Schedule::parse("0 9 * * MON").unwrap();
        // Sunday 29 November 2026: the latest Monday 09:00 is the 23rd.
        assert_eq!(
            schedule.latest_at_or_before(&at("2026-11-29T10:00:00Z")),
            Some(at("2026-11-23T09:00:00Z"))
        );
        assert_eq!(
            schedule.latest_at_or_before(&at("2026-11-30T09:00:00Z")),
            Some(at("2026-11-30T09:00:00Z"))
        );
    }

    #[test]
    fn monday_morning_means_monday() {
        let schedule = Schedule::parse("0 9 * * MON").unwrap();
        let next = schedule.next_after(&at("2026-11-29T10:00:00Z")).unwrap();
        assert_eq!(next, at("2026-11-30T09:00:00Z"));
        assert_eq!(next.weekday(), Weekday::Mon);
    }

    #[test]
    fn weekday_numbers_follow_crontab_with_zero_and_seven_as_sunday() {
        for text in ["30 8 * * 0", "30 8 * * 7", "30 8 * * sun"] {
            let next = Schedule::parse(text)
                .unwrap()
                .next_after(&at("2026-11-30T00:00:00Z"))
                .unwrap();
            assert_eq!(next.weekday(), Weekday::Sun, "{text}");
        }
        let workdays: Vec<Weekday> = {
            let schedule = Schedule::parse("0 9 * * 1-5").unwrap();
            let mut from = at("2026-11-29T12:00:00Z");
            (0..5)
                .map(|_| {
                    from = schedule.next_after(&from).unwrap();
                    from.weekday()
                })
                .collect()
        };
        assert_eq!(
            workdays,
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
    }

    #[test]
    fn restricted_day_of_month_and_day_of_week_are_ored_like_crontab() {
        let schedule = Schedule::parse("0 9 15 * FRI").unwrap();
        let next = schedule.next_after(&at("2026-12-01T00:00:00Z")).unwrap();
        assert_eq!(
            next,
            at("2026-12-04T09:00:00Z"),
            "the first Friday comes before the 15th"
        );
        let after_friday = schedule.next_after(&at("2026-12-12T00:00:00Z")).unwrap();
        assert_eq!(after_friday, at("2026-12-15T09:00:00Z"));
    }

    #[test]
    fn shorthands_expand() {
        let quarterly = Schedule::parse("@quarterly").unwrap();
        let next = quarterly.next_after(&at("2026-11-29T00:00:00Z")).unwrap();
        assert_eq!(next, at("2027-01-01T00:00:00Z"));
        let weekly = Schedule::parse("@weekly").unwrap();
        assert_eq!(
            weekly.next_after(&at("2026-11-29T00:00:00Z")).unwrap(),
            at("2026-12-06T00:00:00Z")
        );
    }

    #[test]
    fn steps_and_lists_work() {
        let schedule = Schedule::parse("*/15 10,14 1 */3 *").unwrap();
        let next = schedule.next_after(&at("2026-11-29T00:00:00Z")).unwrap();
        assert_eq!(next, at("2027-01-01T10:00:00Z"));
        assert_eq!(schedule.next_after(&next).unwrap().minute(), 15);
    }

    #[test]
    fn time_zones_are_respected() {
        let schedule = Schedule::parse("0 9 * * *").unwrap();
        let london = chrono_tz::Europe::London;
        let from = london.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        let next = schedule.next_after(&from).unwrap();
        assert_eq!(next.hour(), 9);
        assert_eq!(next.with_timezone(&Utc), at("2026-07-02T08:00:00Z"));
    }

    #[test]
    fn bad_schedules_get_specific_messages() {
        let cases = [
            ("0 9 * *", "has 4 fields"),
            ("0 0 9 * * MON", "no seconds field"),
            ("60 9 * * *", "minute `60` is out of range"),
            ("0 24 * * *", "hour `24` is out of range"),
            ("0 9 * * FUNDAY", "not a day-of-week"),
            ("0 9 5-1 * *", "runs backwards"),
            ("0 9 30 2 *", "never fires"),
            ("0 9 */0 * *", "out of range"),
            ("@reboot", "not a known shorthand"),
            ("0 9 1,,2 * *", "empty entry"),
        ];
        for (text, expected) in cases {
            let error = Schedule::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
