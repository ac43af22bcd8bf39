//! Configuration: the TOML file, `PROCBOT_*` environment overrides and secret files, read
//! into validated settings. Unknown keys and bad values are refused with the key's path.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Environment variables starting with this and containing `__` override config keys.
pub const ENV_PREFIX: &str = "PROCBOT_";

/// Keys whose values are secrets: never accepted from the config file itself.
pub const SECRET_KEYS: &[&str] = &[
    "slack.bot_token",
    "slack.app_token",
    "slack.signing_secret",
    "discord.token",
    "discord.public_key",
    "webhook.secret",
    "dashboard.token",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("configuration key `{key}`{origin}: {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        origin: String::new(),
        message: message.into(),
    }
}

/// A duration written as `90s`, `5m`, `1h` or `1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl TryFrom<String> for HumanDuration {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration; write e.g. `30s`, `5m`, `1h`"))?;
        let seconds = match unit.trim() {
            "s" | "sec" | "secs" | "seconds" => number,
            "m" | "min" | "mins" | "minutes" => number.saturating_mul(60),
            "h" | "hour" | "hours" => number.saturating_mul(3600),
            "d" | "day" | "days" => number.saturating_mul(86_400),
            other => {
                return Err(format!(
                    "`{other}` is not a duration unit; use s, m, h or d"
                ));
            }
        };
        if seconds == 0 {
            return Err("the duration must be longer than zero".to_string());
        }
        Ok(HumanDuration(Duration::from_secs(seconds)))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HumanDuration::try_from(String::deserialize(deserializer)?)
            .map_err(serde::de::Error::custom)
    }
}

/// Where the store lives: a SQLite file (the default) or PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(url) | DatabaseUrl::Postgres(url) => url,
        }
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = String::deserialize(deserializer)?;
        if url.starts_with("sqlite:") {
            Ok(DatabaseUrl::Sqlite(url))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url))
        } else {
            Err(serde::de::Error::custom(
                "use `sqlite://FILE` or `postgres://user@host:5432/database`",
            ))
        }
    }
}

/// An `http(s)://` base URL for a platform API, for proxies and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(pub url::Url);

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let url = url::Url::parse(&text)
            .map_err(|error| serde::de::Error::custom(format!("`{text}` is not a URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(serde::de::Error::custom(format!(
                "`{text}` must be an http:// or https:// URL"
            )));
        }
        Ok(BaseUrl(url))
    }
}

/// A rate (per second), written as a number, or as text in an environment variable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(f64),
            Integer(i64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Number(rate) => Ok(Rate(rate)),
            #[allow(clippy::cast_precision_loss)]
            Written::Integer(rate) => Ok(Rate(rate as f64)),
            Written::Text(text) => text.trim().parse().map(Rate).map_err(|_| {
                serde::de::Error::custom(format!("`{text}` is not a number (messages a second)"))
            }),
        }
    }
}

/// A Discord snowflake id, written as a string of digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snowflake(pub String);

impl<'de> Deserialize<'de> for Snowflake {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!(
                "`{text}` is not a Discord id (digits, written in quotes)"
            )));
        }
        Ok(Snowflake(text))
    }
}

/// An IANA time zone such as `Europe/London`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an IANA time zone (e.g. `Europe/London`)"
            ))
        })
    }
}

/// Working hours such as `09:00-17:30`, in each person's own time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl TryFrom<&str> for WorkingHours {
    type Error = String;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        let bad = || format!("`{text}` is not a time range; write e.g. `09:00-17:30`");
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let start = NaiveTime::parse_from_str(start.trim(), "%H:%M").map_err(|_| bad())?;
        let end = NaiveTime::parse_from_str(end.trim(), "%H:%M").map_err(|_| bad())?;
        if start >= end {
            return Err(format!("`{text}` ends before it starts"));
        }
        Ok(WorkingHours { start, end })
    }
}

impl<'de> Deserialize<'de> for WorkingHours {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WorkingHours::try_from(String::deserialize(deserializer)?.as_str())
            .map_err(serde::de::Error::custom)
    }
}

/// Working days such as `Mon-Fri` or `Mon,Tue,Thu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkingDays(pub BTreeSet<u8>);

impl WorkingDays {
    pub fn contains(&self, day: Weekday) -> bool {
        self.0
            .contains(&u8::try_from(day.num_days_from_monday()).unwrap_or(0))
    }
}

impl TryFrom<&str> for WorkingDays {
    type Error = String;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        let day = |name: &str| -> Result<u8, String> {
            name.trim()
                .parse::<Weekday>()
                .map(|d| u8::try_from(d.num_days_from_monday()).unwrap_or(0))
                .map_err(|_| {
                    format!(
                        "`{}` is not a day; use Mon, Tue, Wed, Thu, Fri, Sat, Sun",
                        name.trim()
                    )
                })
        };
        let mut days = BTreeSet::new();
        for part in text.split(',') {
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (day(first)?, day(last)?);
                    let mut current = first;
                    loop {
                        days.insert(current);
                        if current == last {
                            break;
                        }
                        current = (current + 1) % 7;
                    }
                }
                None => {
                    days.insert(day(part)?);
                }
            }
        }
        Ok(WorkingDays(days))
    }
}

impl<'de> Deserialize<'de> for WorkingDays {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WorkingDays::try_from(String::deserialize(deserializer)?.as_str())
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProceduresConfig {
    /// A local folder, or the checkout procbot manages for `git_url`.
    pub path: PathBuf,
    pub git_url: Option<String>,
    pub branch: String,
    pub poll_every: HumanDuration,
    /// Relative to the repository root.
    pub directory: PathBuf,
    /// Where procbot remembers the last announced snapshot across restarts.
    pub state_file: PathBuf,
    /// The repository's web UI for one file, with `{path}` for the file's path
    /// (`https://git.example.com/acme/procedures/src/branch/main/{path}`); chat answers link
    /// to it.
    pub web_url: Option<WebUrlTemplate>,
}

/// An http(s) URL template holding `{path}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUrlTemplate(pub String);

impl<'de> Deserialize<'de> for WebUrlTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !text.contains("{path}") {
            return Err(serde::de::Error::custom(format!(
                "`{text}` must contain `{{path}}`, where the procedure file's path goes"
            )));
        }
        let example = text.replace("{path}", "operations/backup.md");
        match url::Url::parse(&example) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                Ok(WebUrlTemplate(text))
            }
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` must be an http:// or https:// URL with `{{path}}` in it"
            ))),
        }
    }
}

impl Default for ProceduresConfig {
    fn default() -> Self {
        ProceduresConfig {
            path: PathBuf::from("procedures"),
            git_url: None,
            branch: "main".to_string(),
            poll_every: HumanDuration(Duration::from_secs(300)),
            directory: PathBuf::from(crate::repo::DIRECTORY_FILE),
            state_file: PathBuf::from("procbot-state.json"),
            web_url: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: DatabaseUrl::Sqlite("sqlite://procbot.db".to_string()),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlackMode {
    #[default]
    Socket,
    Http,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    pub mode: SlackMode,
    pub announce_channel: String,
    pub api_base_url: Option<BaseUrl>,
    pub bot_token: Option<SecretString>,
    pub bot_token_file: Option<PathBuf>,
    pub app_token: Option<SecretString>,
    pub app_token_file: Option<PathBuf>,
    pub signing_secret: Option<SecretString>,
    pub signing_secret_file: Option<PathBuf>,
    /// How many messages procbot posts a second at most, across the workspace.
    pub max_messages_per_second: Rate,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            mode: SlackMode::Socket,
            announce_channel: "#procedures".to_string(),
            api_base_url: None,
            bot_token: None,
            bot_token_file: None,
            app_token: None,
            app_token_file: None,
            signing_secret: None,
            signing_secret_file: None,
            max_messages_per_second: Rate(crate::delivery::SLACK_MESSAGES_PER_SECOND),
        }
    }
}

impl SlackConfig {
    /// Slack is enabled when a bot token is present.
    pub fn enabled(&self) -> bool {
        self.bot_token.is_some()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscordMode {
    #[default]
    Gateway,
    Http,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    pub mode: DiscordMode,
    pub announce_channel_id: Option<Snowflake>,
    pub guild_ids: Vec<Snowflake>,
    pub api_base_url: Option<BaseUrl>,
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
    pub public_key: Option<SecretString>,
    pub public_key_file: Option<PathBuf>,
}

impl DiscordConfig {
    /// Discord is enabled when a bot token is present.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }
}

/// A 5-field crontab schedule, such as `0 9 * * Mon`.
#[derive(Clone, Debug, PartialEq)]
pub struct CronSchedule(pub crate::core::schedule::Schedule);

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::core::schedule::Schedule::parse(&String::deserialize(deserializer)?)
            .map(CronSchedule)
            .map_err(serde::de::Error::custom)
    }
}

/// An email address in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAddress(pub crate::core::procedure::Email);

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::core::procedure::Email::parse(&String::deserialize(deserializer)?)
            .map(EmailAddress)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub timezone: TimeZone,
    pub working_hours: WorkingHours,
    pub working_days: WorkingDays,
    /// When the weekly digest goes to the announce channel; in `timezone`.
    pub digest: CronSchedule,
    /// Told when an owner answers "needs changes", and sent the digest directly.
    pub security_lead: Option<EmailAddress>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            timezone: TimeZone(chrono_tz::UTC),
            working_hours: WorkingHours {
                start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
                end: NaiveTime::from_hms_opt(17, 30, 0).unwrap_or(NaiveTime::MIN),
            },
            working_days: WorkingDays((0..5).collect()),
            digest: CronSchedule(
                crate::core::schedule::Schedule::parse("0 9 * * Mon")
                    .unwrap_or_else(|_| unreachable!("the default digest schedule is valid")),
            ),
            security_lead: None,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub secret: Option<SecretString>,
    pub secret_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    pub token: Option<SecretString>,
    pub token_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `procbot=debug`; `RUST_LOG` wins over it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// All settings. Every section has defaults, so an empty file (or none) runs the bot on the
/// bundled procedures with a local SQLite database.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub procedures: ProceduresConfig,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub slack: SlackConfig,
    pub discord: DiscordConfig,
    pub schedule: ScheduleConfig,
    pub webhook: WebhookConfig,
    pub dashboard: DashboardConfig,
    pub log: LogConfig,
}

/// Turns an environment value into TOML: lists, tables and booleans are parsed, everything
/// else stays a string (so a Discord id of digits stays text).
fn env_value(raw: &str) -> toml::Value {
    let trimmed = raw.trim();
    let structured = trimmed.starts_with('[') || trimmed.starts_with('{');
    if (structured || trimmed == "true" || trimmed == "false")
        && let Ok(table) = toml::from_str::<toml::Table>(&format!("value = {trimmed}"))
        && let Some(value) = table.get("value")
    {
        return value.clone();
    }
    toml::Value::String(raw.to_string())
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".to_string());
    };
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is not a section"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let first = table.get(parts.next()?)?;
    parts.try_fold(first, |value, part| value.as_table()?.get(part))
}

/// Loads the configuration: `file` (if any), then environment overrides from `env`, then
/// secret files. Relative paths in the file are relative to the file's folder.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let (mut table, base) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let table: toml::Table =
                toml::from_str(&text).map_err(|error| ConfigError::Syntax {
                    path: path.display().to_string(),
                    message: error.to_string(),
                })?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            (table, base)
        }
        None => (toml::Table::new(), PathBuf::new()),
    };
    for key in SECRET_KEYS {
        if lookup(&table, key).is_some() {
            let env_name = format!(
                "{ENV_PREFIX}{}",
                key.to_ascii_uppercase().replace('.', "__")
            );
            return Err(invalid(
                key,
                format!(
                    "secrets must not be written in the configuration file; set {env_name} or `{key}_file`"
                ),
            ));
        }
    }

    let mut from_env = Vec::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // Only nested keys are overrides, so unrelated PROCBOT_* variables are left alone.
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let key = path.join(".");
        set_path(&mut table, &path, env_value(&raw)).map_err(|message| ConfigError::Invalid {
            key: key.clone(),
            origin: format!(" (from {name})"),
            message,
        })?;
        from_env.push((key, name));
    }

    let mut config: Config =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
            let key = error.path().to_string();
            let origin = from_env
                .iter()
                .find(|(env_key, _)| key.starts_with(env_key.as_str()) || env_key.starts_with(&key))
                .map(|(_, name)| format!(" (from {name})"))
                .unwrap_or_default();
            ConfigError::Invalid {
                key,
                origin,
                message: error.into_inner().to_string(),
            }
        })?;

    let relative_to_base = |path: &mut PathBuf| {
        if path.is_relative() && !base.as_os_str().is_empty() {
            *path = base.join(&*path);
        }
    };
    relative_to_base(&mut config.procedures.path);
    relative_to_base(&mut config.procedures.state_file);
    resolve_secrets(&mut config, &base)?;
    validate(&config)?;
    Ok(config)
}

fn read_secret(
    key: &str,
    value: &mut Option<SecretString>,
    file: &Option<PathBuf>,
    base: &Path,
) -> Result<(), ConfigError> {
    let Some(file) = file else { return Ok(()) };
    if value.is_some() {
        return Err(invalid(
            key,
            format!("is set both directly and through `{key}_file`; keep one"),
        ));
    }
    let path = if file.is_relative() {
        base.join(file)
    } else {
        file.clone()
    };
    let text = std::fs::read_to_string(&path).map_err(|error| {
        invalid(
            &format!("{key}_file"),
            format!("could not read {}: {error}", path.display()),
        )
    })?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.is_empty() {
        return Err(invalid(
            &format!("{key}_file"),
            format!("{} is empty", path.display()),
        ));
    }
    *value = Some(SecretString::from(secret));
    Ok(())
}

fn resolve_secrets(config: &mut Config, base: &Path) -> Result<(), ConfigError> {
    let slack = &mut config.slack;
    read_secret(
        "slack.bot_token",
        &mut slack.bot_token,
        &slack.bot_token_file,
        base,
    )?;
    read_secret(
        "slack.app_token",
        &mut slack.app_token,
        &slack.app_token_file,
        base,
    )?;
    read_secret(
        "slack.signing_secret",
        &mut slack.signing_secret,
        &slack.signing_secret_file,
        base,
    )?;
    let discord = &mut config.discord;
    read_secret(
        "discord.token",
        &mut discord.token,
        &discord.token_file,
        base,
    )?;
    read_secret(
        "discord.public_key",
        &mut discord.public_key,
        &discord.public_key_file,
        base,
    )?;
    read_secret(
        "webhook.secret",
        &mut config.webhook.secret,
        &config.webhook.secret_file,
        base,
    )?;
    read_secret(
        "dashboard.token",
        &mut config.dashboard.token,
        &config.dashboard.token_file,
        base,
    )?;
    Ok(())
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    let rate = config.slack.max_messages_per_second.0;
    if !(rate.is_finite() && (0.1..=1000.0).contains(&rate)) {
        return Err(invalid(
            "slack.max_messages_per_second",
            format!("{rate} is not a rate procbot can send at: give a number from 0.1 to 1000"),
        ));
    }
    let secrets = [
        ("slack.bot_token", &config.slack.bot_token),
        ("slack.app_token", &config.slack.app_token),
        ("slack.signing_secret", &config.slack.signing_secret),
        ("discord.token", &config.discord.token),
        ("discord.public_key", &config.discord.public_key),
        ("webhook.secret", &config.webhook.secret),
        ("dashboard.token", &config.dashboard.token),
    ];
    for (key, secret) in secrets {
        // An empty secret would let anyone compute a valid signature or send the token.
        if secret
            .as_ref()
            .is_some_and(|value| value.expose_secret().trim().is_empty())
        {
            return Err(invalid(
                key,
                "is set but empty; give it a value or unset it",
            ));
        }
    }
    let slack = &config.slack;
    if slack.enabled() {
        match slack.mode {
            SlackMode::Socket if slack.app_token.is_none() => {
                return Err(invalid(
                    "slack.app_token",
                    "Socket Mode needs an app-level token (xapp-…): set PROCBOT_SLACK__APP_TOKEN or slack.app_token_file, or use slack.mode = \"http\"",
                ));
            }
            SlackMode::Http if slack.signing_secret.is_none() => {
                return Err(invalid(
                    "slack.signing_secret",
                    "HTTP mode needs the signing secret to verify requests: set PROCBOT_SLACK__SIGNING_SECRET or slack.signing_secret_file",
                ));
            }
            _ => {}
        }
    }
    let discord = &config.discord;
    if discord.enabled() && discord.mode == DiscordMode::Http && discord.public_key.is_none() {
        return Err(invalid(
            "discord.public_key",
            "HTTP interactions need the application's public key: set PROCBOT_DISCORD__PUBLIC_KEY or discord.public_key_file",
        ));
    }
    if let Some(url) = &config.procedures.git_url {
        let looks_like_git = ["https://", "http://", "ssh://", "git://", "file://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
            || (url.contains('@') && url.contains(':'));
        if !looks_like_git {
            return Err(invalid(
                "procedures.git_url",
                format!("`{url}` is not a git URL (https://…, ssh://…, git@host:path or file://…)"),
            ));
        }
    }
    if config.procedures.branch.trim().is_empty()
        || config.procedures.branch.contains(char::is_whitespace)
    {
        return Err(invalid(
            "procedures.branch",
            "must be a branch name without spaces",
        ));
    }
    tracing_subscriber::EnvFilter::try_new(&config.log.level).map_err(|error| {
        invalid(
            "log.level",
            format!("`{}` is not a log filter: {error}", config.log.level),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("procbot.toml");
        std::fs::write(&path, text).unwrap();
        load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_need_no_file() {
        let config = load(None, Vec::new()).unwrap();
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database.url.as_str(), "sqlite://procbot.db");
        assert_eq!(config.procedures.path, PathBuf::from("procedures"));
        assert!(!config.slack.enabled());
    }

    #[test]
    fn the_example_file_loads() {
        let example = include_str!("../config.example.toml");
        let config = load_text(example, &[]).unwrap();
        assert_eq!(config.schedule.timezone.0, chrono_tz::Europe::London);
        assert!(config.schedule.working_days.contains(Weekday::Fri));
        assert!(!config.schedule.working_days.contains(Weekday::Sat));
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let error = load_text("[http]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n", &[]).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("http.listne") || message.contains("listne"),
            "{message}"
        );
        let error = load_text("[slak]\nmode = \"http\"\n", &[]).unwrap_err();
        assert!(error.to_string().contains("slak"), "{error}");
    }

    #[test]
    fn bad_values_name_their_path() {
        let cases = [
            ("[http]\nlisten = \"nowhere\"\n", "http.listen"),
            ("[database]\nurl = \"mysql://x\"\n", "database.url"),
            (
                "[schedule]\ntimezone = \"Mars/Base\"\n",
                "schedule.timezone",
            ),
            (
                "[schedule]\nworking_hours = \"17:00-09:00\"\n",
                "schedule.working_hours",
            ),
            (
                "[procedures]\npoll_every = \"soon\"\n",
                "procedures.poll_every",
            ),
            ("[slack]\nmode = \"carrier-pigeon\"\n", "slack.mode"),
            ("[discord]\nguild_ids = [\"abc\"]\n", "discord.guild_ids"),
            (
                "[slack]\nmax_messages_per_second = 0\n",
                "slack.max_messages_per_second",
            ),
            (
                "[slack]\nmax_messages_per_second = \"fast\"\n",
                "slack.max_messages_per_second",
            ),
        ];
        for (text, key) in cases {
            let message = load_text(text, &[]).unwrap_err().to_string();
            assert!(message.contains(key), "{text}: {message}");
        }
    }

    #[test]
    fn environment_overrides_the_file_and_says_so_when_wrong() {
        let config = load_text(
            "[http]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("PROCBOT_HTTP__LISTEN", "127.0.0.1:9999"),
                ("PROCBOT_DISCORD__GUILD_IDS", "[\"123\"]"),
                ("PROCBOT_DISCORD__ANNOUNCE_CHANNEL_ID", "123456789012345678"),
                ("PROCBOT_PLATFORM_FIXTURES", "/not/a/config/key"),
            ],
        )
        .unwrap();
        assert_eq!(config.http.listen.port(), 9999);
        assert_eq!(config.discord.guild_ids, [Snowflake("123".into())]);
        let rate = load_text("", &[("PROCBOT_SLACK__MAX_MESSAGES_PER_SECOND", "2.5")]).unwrap();
        assert_eq!(rate.slack.max_messages_per_second, Rate(2.5));
        let error = load_text("", &[("PROCBOT_HTTP__LISTEN", "bad")]).unwrap_err();
        assert!(
            error.to_string().contains("PROCBOT_HTTP__LISTEN"),
            "{error}"
        );
    }

    #[test]
    fn secrets_come_from_the_environment_or_files_never_the_file() {
        let error = load_text("[slack]\nbot_token = \"xoxb-1\"\n", &[]).unwrap_err();
        assert!(
            error.to_string().contains("PROCBOT_SLACK__BOT_TOKEN"),
            "{error}"
        );

        let config = load_text(
            "[slack]\nmode = \"http\"\n",
            &[
                ("PROCBOT_SLACK__BOT_TOKEN", "xoxb-1"),
                ("PROCBOT_SLACK__SIGNING_SECRET", "s3cret"),
            ],
        )
        .unwrap();
        assert_eq!(config.slack.bot_token.unwrap().expose_secret(), "xoxb-1");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "dashboard-secret\n").unwrap();
        let path = dir.path().join("procbot.toml");
        std::fs::write(&path, "[dashboard]\ntoken_file = \"token\"\n").unwrap();
        let config = load(Some(&path), Vec::new()).unwrap();
        assert_eq!(
            config.dashboard.token.unwrap().expose_secret(),
            "dashboard-secret"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let config = load(
            None,
            vec![("PROCBOT_WEBHOOK__SECRET".to_string(), "hunter2".to_string())],
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn empty_secrets_are_refused() {
        let error = load_text("", &[("PROCBOT_WEBHOOK__SECRET", "")]).unwrap_err();
        assert!(error.to_string().contains("webhook.secret"), "{error}");
        assert!(error.to_string().contains("empty"), "{error}");
    }

    #[test]
    fn an_enabled_platform_needs_its_other_secrets() {
        let error = load_text("", &[("PROCBOT_SLACK__BOT_TOKEN", "xoxb-1")]).unwrap_err();
        assert!(error.to_string().contains("slack.app_token"), "{error}");
    }
}
