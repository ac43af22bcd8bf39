//! The Discord adapter end to end: procbot started as `serve` starts it (HTTP interactions
//! mode, a fresh database, a folder of procedures, a manual clock) against the fake Discord;
//! signed interactions posted to `/discord/interactions`; DMs, clicks, acknowledgements, rate
//! limits, the gateway's callback route, the real payload fixtures and Discord's OpenAPI.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use procbot::adapters::discord::interaction::{self, Interactions};
use procbot::adapters::discord::port::DiscordPort;
use procbot::adapters::discord::rest::Rest;
use procbot::clock::{Clock, ManualClock};
use procbot::config::{BaseUrl, Config, DatabaseUrl, DiscordMode, Snowflake};
use procbot::core::message::{Button, Message};
use procbot::core::port::{ChatPort, DeliveryError, Destination, MessageRef};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::db::{TestDb, on_both_backends};
use crate::discord_fake::{
    APPLICATION_ID, FakeDiscord, OpenApi, Recorded, TOKEN, fixtures, path_matches, public_key_hex,
    read_fixture, sign, signing_key, summary,
};
use crate::helpers::{TestRepo, clean_procedure, http_request, procedure_with};

const SAM: &str = "4001";
const IDA: &str = "4002";
const STRANGER: &str = "4999";
const GUILD: &str = "111000000000000001";
const ANNOUNCE: &str = "900000000000000001";
/// Sam's and Ida's DM channels, as the fake opens them.
const SAM_DM: &str = "9001";
const IDA_DM: &str = "9002";

const DIRECTORY: &str = "teams:\n  it-ops: [it-lead@example.com, sam@example.com]\n  engineering: [ana@example.com]\npeople:\n  it-lead@example.com: { name: Ida Lead, discord: \"4002\" }\n  sam@example.com: { name: Sam Ops, discord: \"4001\" }\n  ana@example.com: { name: Ana }\n";

/// procbot in HTTP interactions mode against a fake Discord.
struct DiscordBot {
    fake: FakeDiscord,
    clock: Arc<ManualClock>,
    address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    config: Config,
    _repo: TestRepo,
    _data: tempfile::TempDir,
}

fn repository() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("directory.yaml", DIRECTORY);
    repo.write("backup.md", clean_procedure("backup-customer-data"));
    let mut payroll = procedure_with("payroll-run", "classification", Some("confidential"));
    payroll = payroll
        .replace(
            "title: Back up the customer database",
            "title: Run the monthly payroll",
        )
        .replace("audience: [it-ops, engineering]", "audience: [it-ops]")
        .replace(
            "Keep customer data recoverable.",
            "Pay people on time. Tell @everyone in <#123> and ping <@123> when done.",
        );
    repo.write("payroll.md", payroll);
    repo
}

fn config_for(fake: &FakeDiscord, repo: &TestRepo, data: &std::path::Path, db: &TestDb) -> Config {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.procedures.path = repo.path().to_path_buf();
    config.procedures.state_file = data.join("state.json");
    config.database.url = if db.url.starts_with("sqlite:") {
        DatabaseUrl::Sqlite(db.url.clone())
    } else {
        DatabaseUrl::Postgres(db.url.clone())
    };
    config.discord.mode = DiscordMode::Http;
    config.discord.token = Some(SecretString::from(TOKEN));
    config.discord.public_key = Some(SecretString::from(public_key_hex()));
    config.discord.api_base_url = Some(BaseUrl(url::Url::parse(&fake.api_base_url()).unwrap()));
    config.discord.announce_channel_id = Some(Snowflake(ANNOUNCE.into()));
    config.discord.guild_ids = vec![Snowflake(GUILD.into())];
    config
}

impl DiscordBot {
    async fn start(db: &TestDb) -> DiscordBot {
        DiscordBot::start_with(db, |_| {}, |_| {}).await
    }

    /// `prepare` scripts the fake before procbot starts; `adjust` changes the configuration.
    async fn start_with(
        db: &TestDb,
        prepare: impl FnOnce(&FakeDiscord),
        adjust: impl FnOnce(&mut Config),
    ) -> DiscordBot {
        let fake = FakeDiscord::start().await;
        prepare(&fake);
        let repo = repository();
        let data = tempfile::tempdir().unwrap();
        let mut config = config_for(&fake, &repo, data.path(), db);
        adjust(&mut config);
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
        ));
        let application = procbot::startup::Application::build(config.clone(), clock.clone())
            .await
            .unwrap();
        let address = application.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        DiscordBot {
            fake,
            clock,
            address,
            stop,
            server,
            config,
            _repo: repo,
            _data: data,
        }
    }

    async fn stop(self) -> Vec<Recorded> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.fake.recorded()
    }

    /// Posts `body` with `headers` to the interactions endpoint.
    async fn post(&self, headers: Vec<(String, String)>, body: String) -> (u16, String) {
        let address = self.address;
        tokio::task::spawn_blocking(move || {
            let mut head =
                "POST /discord/interactions HTTP/1.1\r\ncontent-type: application/json".to_string();
            for (name, value) in headers {
                head.push_str(&format!("\r\n{name}: {value}"));
            }
            http_request(address, &head, &body)
        })
        .await
        .unwrap()
    }

    /// Posts `body` signed as Discord signs it, timestamped by procbot's clock.
    async fn interact(&self, body: &str) -> (u16, Value) {
        let timestamp = self.clock.now().timestamp().to_string();
        let (status, text) = self
            .post(signed_headers(&timestamp, body), body.to_string())
            .await;
        let json = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (status, json)
    }

    async fn store(&self) -> procbot::store::Store {
        procbot::store::Store::connect(self.config.database.url.as_str())
            .await
            .unwrap()
    }

    /// The outbox counts once nothing is pending (polling, at most 10 s).
    async fn settled_outbox(&self) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let outbox = self.readiness().await["outbox"].clone();
            if outbox["pending"] == 0 || tokio::time::Instant::now() > deadline {
                return outbox;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn readiness(&self) -> Value {
        let address = self.address;
        let (_, body) =
            tokio::task::spawn_blocking(move || crate::helpers::http_get(address, "/readyz"))
                .await
                .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// The DM posts procbot made to `channel`, answered with success.
    fn dms(&self, channel: &str) -> Vec<Recorded> {
        self.fake
            .matching("POST", &format!("/api/v10/channels/{channel}/messages"))
            .into_iter()
            .filter(|r| r.status == 200)
            .collect()
    }

    async fn baseline_delivered(&self) {
        self.fake
            .wait_for("the welcome DMs to Sam and Ida", |recorded| {
                [SAM_DM, IDA_DM].iter().all(|dm| {
                    recorded.iter().any(|r| {
                        r.method == "POST"
                            && r.status == 200
                            && r.path == format!("/api/v10/channels/{dm}/messages")
                    })
                })
            })
            .await;
    }
}

fn signed_headers(timestamp: &str, body: &str) -> Vec<(String, String)> {
    vec![
        (
            "x-signature-ed25519".into(),
            sign(&signing_key(), timestamp, body),
        ),
        ("x-signature-timestamp".into(), timestamp.into()),
    ]
}

fn custom_ids(body: &Value) -> Vec<String> {
    body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|button| button["custom_id"].as_str().map(str::to_string))
        .collect()
}

fn click(user: &str, channel: &str, message: &str, custom_id: &str) -> String {
    json!({
        "id": "850000000000000001", "application_id": APPLICATION_ID, "type": 3,
        "token": "click-token", "version": 1, "channel_id": channel,
        "user": {"id": user, "username": "someone", "discriminator": "0", "avatar": null},
        "message": {"id": message, "channel_id": channel, "type": 0, "content": "", "embeds": [], "components": []},
        "data": {"custom_id": custom_id, "component_type": 2},
        "locale": "en-GB", "entitlements": [], "attachment_size_limit": 8388608
    })
    .to_string()
}

fn command(user: &str, subcommand: Value) -> String {
    json!({
        "id": "860000000000000001", "application_id": APPLICATION_ID, "type": 2,
        "token": "command-token", "version": 1, "guild_id": GUILD, "channel_id": "555000000000000001",
        "member": {"user": {"id": user, "username": "someone", "discriminator": "0", "avatar": null},
                   "roles": [], "joined_at": "2026-01-01T00:00:00+00:00", "deaf": false, "mute": false},
        "data": {"id": "870000000000000001", "name": "procedure", "type": 1, "options": [subcommand]},
        "locale": "en-GB", "entitlements": [], "attachment_size_limit": 8388608
    })
    .to_string()
}

fn text_of(body: &Value) -> String {
    serde_json::to_string(body).unwrap()
}

async fn an_announcement_reaches_people_by_dm_and_a_click_acknowledges_and_updates_it(db: &TestDb) {
    let bot = DiscordBot::start(db).await;
    bot.baseline_delivered().await;
    // Ana has no Discord id: her DM fails for good, with the reason recorded. (The weekly
    // digest to the announce channel is delivered too.)
    let outbox = bot.settled_outbox().await;
    assert_eq!(outbox["failed"], 1, "{outbox}");
    assert_eq!(outbox["pending"], 0, "{outbox}");

    let opened = bot.fake.matching("POST", "/api/v10/users/@me/channels");
    let recipients: Vec<&str> = opened
        .iter()
        .filter_map(|r| r.body.as_ref()?.get("recipient_id")?.as_str())
        .collect();
    assert_eq!(recipients.len(), 2);
    assert!(recipients.contains(&SAM) && recipients.contains(&IDA));

    let sams = bot.dms(SAM_DM);
    assert_eq!(sams.len(), 1, "one consolidated welcome DM");
    let dm = sams[0].body.clone().unwrap();
    assert_eq!(dm["allowed_mentions"], json!({"parse": []}));
    let text = text_of(&dm);
    assert!(
        text.contains("Run the monthly payroll"),
        "Sam is in the payroll audience"
    );
    let ack = custom_ids(&dm)
        .into_iter()
        .find(|id| id.starts_with("ack/backup-customer-data/"))
        .expect("an Acknowledge button for the backup procedure");
    let message_id = sams[0].created_id.clone().unwrap();

    // Sam clicks Acknowledge: the clicked DM is updated in place (type 7), the
    // confirmation is his alone (an ephemeral follow-up).
    let (status, response) = bot.interact(&click(SAM, SAM_DM, &message_id, &ack)).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["type"], 7, "{response}");
    let updated = &response["data"];
    assert!(!custom_ids(updated).contains(&ack));
    assert!(text_of(updated).contains("✅ Acknowledged v1.2.0"));
    assert_eq!(updated["allowed_mentions"], json!({"parse": []}));
    bot.fake
        .wait_for("the ephemeral confirmation", |recorded| {
            recorded
                .iter()
                .any(|r| r.method == "POST" && r.path.ends_with("/click-token"))
        })
        .await;
    let followup = bot.fake.matching(
        "POST",
        &format!("/api/v10/webhooks/{APPLICATION_ID}/click-token"),
    );
    let followup = followup[0].body.clone().unwrap();
    assert_eq!(followup["flags"], 64);
    assert!(text_of(&followup).contains("Thank you"));

    let store = bot.store().await;
    assert!(
        !store
            .pending_for("sam@example.com")
            .await
            .unwrap()
            .iter()
            .any(|p| p.procedure_id == "backup-customer-data")
    );
    let report = store.acknowledgement_report().await.unwrap();
    let backup = report
        .iter()
        .find(|v| v.procedure_id == "backup-customer-data")
        .unwrap();
    let sam = backup
        .people
        .iter()
        .find(|p| p.email == "sam@example.com")
        .unwrap();
    assert!(sam.acknowledged_at.is_some());
    assert_eq!(sam.platform.as_deref(), Some("discord"));
    assert_eq!(sam.user_id.as_deref(), Some(SAM));
    assert_eq!(
        sam.message_ref.clone(),
        Some(format!("{SAM_DM}/{message_id}"))
    );
    let ida = backup
        .people
        .iter()
        .find(|p| p.email == "it-lead@example.com")
        .unwrap();
    assert!(ida.acknowledged_at.is_none());

    // Ida clicking a button on Sam's DM (a forged or forwarded payload) acts for Ida only and
    // leaves Sam's message alone.
    let (_, response) = bot.interact(&click(IDA, SAM_DM, &message_id, &ack)).await;
    assert_eq!(response["type"], 4, "{response}");
    assert_eq!(response["data"]["flags"], 64);

    // The same click again records nothing new.
    let (_, again) = bot.interact(&click(SAM, SAM_DM, &message_id, &ack)).await;
    assert!(text_of(&again).contains("already acknowledged"), "{again}");
    let report = store.acknowledgement_report().await.unwrap();
    let acknowledged = report
        .iter()
        .flat_map(|v| &v.people)
        .filter(|p| p.acknowledged_at.is_some())
        .count();
    assert_eq!(acknowledged, 2, "Sam's and Ida's, once each");
    store.close().await;
    bot.stop().await;
}

async fn signatures_and_bad_input_are_refused_and_change_nothing(db: &TestDb) {
    let bot = DiscordBot::start(db).await;
    bot.baseline_delivered().await;
    let outbox_before = bot.settled_outbox().await;
    let ping = r#"{"id":"787053080478613555","token":"ThisIsATokenFromDiscordThatIsVeryLong","type":1,"version":1}"#;
    let now = bot.clock.now().timestamp();
    let (status, pong) = bot.interact(ping).await;
    assert_eq!((status, pong), (200, json!({"type": 1})));

    let forged_key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let ts = now.to_string();
    let forged = vec![
        (
            "x-signature-ed25519".to_string(),
            sign(&forged_key, &ts, ping),
        ),
        ("x-signature-timestamp".to_string(), ts.clone()),
    ];
    assert_eq!(bot.post(forged, ping.into()).await.0, 401, "forged");
    for skew in [-301, 301] {
        let stale = (now + skew).to_string();
        let (status, _) = bot.post(signed_headers(&stale, ping), ping.into()).await;
        assert_eq!(status, 401, "a timestamp {skew} s away");
    }
    let within = (now - 299).to_string();
    assert_eq!(
        bot.post(signed_headers(&within, ping), ping.into()).await.0,
        200
    );
    assert_eq!(bot.post(Vec::new(), ping.into()).await.0, 401, "unsigned");
    let tampered = ping.replace("\"type\":1", "\"type\":2");
    assert_eq!(
        bot.post(signed_headers(&ts, ping), tampered).await.0,
        401,
        "tampered"
    );
    let garbage_signature = vec![
        ("x-signature-ed25519".to_string(), "zz".repeat(64)),
        ("x-signature-timestamp".to_string(), ts.clone()),
    ];
    assert_eq!(
        bot.post(garbage_signature.clone(), ping.into()).await.0,
        401
    );

    let huge = format!("{{\"type\":1,\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    assert_eq!(
        bot.post(signed_headers(&ts, &huge), huge.clone()).await.0,
        413
    );
    assert_eq!(bot.post(Vec::new(), huge).await.0, 413, "unsigned and huge");
    // A body that would not parse is refused for its signature first: 401, not 400.
    assert_eq!(
        bot.post(garbage_signature.clone(), "{\"type\": 2, \"data\": ".into())
            .await
            .0,
        401
    );

    let (status, malformed) = bot.interact("{\"type\": 2, \"data\": ").await;
    assert_eq!(status, 400);
    assert!(
        malformed["error"]
            .as_str()
            .unwrap()
            .contains("not a Discord interaction")
    );
    let (status, unknown) = bot
        .interact(r#"{"type": 42, "id": "1", "token": "t"}"#)
        .await;
    assert_eq!(status, 400);
    assert!(unknown["error"].as_str().unwrap().contains("type 42"));

    for nowhere in [
        "ack/nope/zzzzzzzzzzzz",
        "ack/backup-customer-data/000000000000",
        "../../etc",
        "",
    ] {
        let (status, answer) = bot.interact(&click(SAM, SAM_DM, "1234", nowhere)).await;
        assert_eq!(status, 200, "{nowhere}");
        assert_eq!(answer["type"], 4, "{answer}");
        assert_eq!(answer["data"]["flags"], 64);
    }
    let no_user = r#"{"type":2,"id":"1","token":"t","data":{"name":"procedure","options":[]}}"#;
    let (_, answer) = bot.interact(no_user).await;
    assert!(text_of(&answer).contains("names no Discord user"));

    let store = bot.store().await;
    let acknowledged = store
        .acknowledgement_report()
        .await
        .unwrap()
        .iter()
        .flat_map(|v| v.people.clone())
        .filter(|p| p.acknowledged_at.is_some())
        .count();
    assert_eq!(acknowledged, 0, "nothing was acknowledged by any of that");
    store.close().await;
    assert_eq!(
        bot.settled_outbox().await,
        outbox_before,
        "nothing queued or sent"
    );
    bot.stop().await;
}

async fn slash_commands_answer_ephemerally_and_autocomplete_filters_by_access(db: &TestDb) {
    let bot = DiscordBot::start(db).await;
    bot.baseline_delivered().await;
    bot.fake
        .wait_for("the command registration", |recorded| {
            recorded.iter().any(|r| r.method == "PUT")
        })
        .await;
    let registered = bot.fake.matching(
        "PUT",
        &format!("/api/v10/applications/{APPLICATION_ID}/guilds/{GUILD}/commands"),
    );
    assert_eq!(registered.len(), 1, "{:?}", summary(&bot.fake.recorded()));
    let definition = &registered[0].body.as_ref().unwrap()[0];
    assert_eq!(definition["name"], "procedure");
    let subcommands: Vec<&str> = definition["options"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    for expected in ["find", "pending", "mine", "show", "list", "help"] {
        assert!(subcommands.contains(&expected), "{expected}");
    }

    let find = json!({"type": 1, "name": "find", "options": [{"type": 3, "name": "query", "value": "back up the database"}]});
    let (status, answer) = bot.interact(&command(SAM, find)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["type"], 4, "{answer}");
    assert_eq!(answer["data"]["flags"], 64, "answers are ephemeral");
    assert_eq!(
        answer["data"]["embeds"][0]["title"],
        "Back up the customer database v1.2.0"
    );
    assert_eq!(answer["data"]["allowed_mentions"], json!({"parse": []}));

    let show = json!({"type": 1, "name": "show", "options": [{"type": 3, "name": "id", "value": "payroll-run"}]});
    let (_, shown) = bot.interact(&command(SAM, show.clone())).await;
    let text = text_of(&shown);
    assert!(text.contains("Run the monthly payroll"), "{text}");
    assert!(
        text.contains("@\\u200beveryone") || text.contains("@\u{200b}everyone"),
        "{text}"
    );
    assert!(!text.contains("@everyone") && !text.contains("<@123>") && !text.contains("<#123>"));
    let (_, hidden) = bot.interact(&command(STRANGER, show)).await;
    assert!(
        !text_of(&hidden).contains("Run the monthly payroll"),
        "confidential stays hidden"
    );

    let (_, pending) = bot
        .interact(&command(SAM, json!({"type": 1, "name": "pending"})))
        .await;
    assert!(
        custom_ids(&pending["data"])
            .iter()
            .any(|id| id.starts_with("ack/payroll-run/"))
    );
    let (_, help) = bot
        .interact(&command(SAM, json!({"type": 1, "name": "help"})))
        .await;
    assert!(text_of(&help).contains("/procedure"));

    let complete = |user: &str, sub: &str, option: &str, typed: &str| {
        let mut body: Value = serde_json::from_str(&command(
            user,
            json!({"type": 1, "name": sub, "options": [{"type": 3, "name": option, "value": typed, "focused": true}]}),
        ))
        .unwrap();
        body["type"] = json!(4);
        body.to_string()
    };
    let (_, choices) = bot.interact(&complete(SAM, "find", "query", "pay")).await;
    assert_eq!(choices["type"], 8);
    let names = text_of(&choices["data"]["choices"]);
    assert!(names.contains("Run the monthly payroll"), "{names}");
    let (_, choices) = bot
        .interact(&complete(STRANGER, "find", "query", "pay"))
        .await;
    assert!(!text_of(&choices).contains("payroll"), "{choices}");
    let (_, ids) = bot.interact(&complete(SAM, "show", "id", "")).await;
    let list = ids["data"]["choices"].as_array().unwrap();
    assert!(!list.is_empty() && list.len() <= interaction::MAX_CHOICES);
    assert!(list.iter().any(|c| c["value"] == "backup-customer-data"));
    let (_, ids) = bot.interact(&complete(STRANGER, "show", "id", "")).await;
    assert!(!text_of(&ids).contains("payroll-run"));

    let (_, other) = bot
        .interact(&command(SAM, json!({"type": 1, "name": "frobnicate"})))
        .await;
    assert!(text_of(&other).contains("did not understand"), "{other}");
    bot.stop().await;
}

async fn a_rate_limited_dm_is_delivered_exactly_once(db: &TestDb) {
    let bot = DiscordBot::start_with(
        db,
        |fake| {
            fake.fail(
                "POST",
                &format!("/channels/{SAM_DM}/messages"),
                429,
                json!({"message": "You are being rate limited.", "retry_after": 0.05, "global": false}),
                1,
            )
        },
        |_| {},
    )
    .await;
    bot.fake
        .wait_for("the 429", |recorded| {
            recorded.iter().any(|r| r.status == 429)
        })
        .await;
    // The outbox waits for the retry time on procbot's clock.
    bot.clock.advance(chrono::Duration::seconds(2));
    bot.baseline_delivered().await;
    let attempts = bot
        .fake
        .matching("POST", &format!("/api/v10/channels/{SAM_DM}/messages"));
    assert_eq!(attempts.len(), 2, "one refused, one delivered");
    // Both attempts carry the same enforced nonce, so a repeat Discord had already taken
    // would return that message rather than post a second.
    let nonces: Vec<&Value> = attempts
        .iter()
        .map(|a| &a.body.as_ref().unwrap()["nonce"])
        .collect();
    assert!(
        nonces[0].is_string() && nonces[0] == nonces[1],
        "{nonces:?}"
    );
    assert!(nonces[0].as_str().unwrap().len() <= 25);
    assert_eq!(attempts[1].body.as_ref().unwrap()["enforce_nonce"], true);
    assert_eq!(bot.dms(SAM_DM).len(), 1, "exactly one DM delivered");
    assert_eq!(bot.dms(IDA_DM).len(), 1);
    assert_eq!(
        bot.settled_outbox().await["failed"],
        1,
        "only Ana's, who has no Discord id"
    );
    bot.stop().await;
}

on_both_backends!(
    an_announcement_reaches_people_by_dm_and_a_click_acknowledges_and_updates_it,
    slash_commands_answer_ephemerally_and_autocomplete_filters_by_access,
    a_rate_limited_dm_is_delivered_exactly_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_and_bad_input_are_refused_and_change_nothing_on_sqlite() {
    let db = TestDb::sqlite();
    signatures_and_bad_input_are_refused_and_change_nothing(&db).await;
}

/// procbot's services with a Discord port, and `Interactions` answering with them: the parts
/// the gateway and deferred answers use, with timing chosen by the test.
struct Harness {
    fake: FakeDiscord,
    services: procbot::startup::Services,
    rest: Arc<Rest>,
    port: Arc<DiscordPort>,
    _repo: TestRepo,
    _data: tempfile::TempDir,
    _db: TestDb,
}

impl Harness {
    async fn new() -> Harness {
        let fake = FakeDiscord::start().await;
        let db = TestDb::sqlite();
        let repo = repository();
        let data = tempfile::tempdir().unwrap();
        let config = config_for(&fake, &repo, data.path(), &db);
        let origin = procbot::adapters::discord::origin_of(&fake.api_base_url()).unwrap();
        let rest = Arc::new(Rest::new(TOKEN, Some(&origin)).unwrap());
        let engine_cell = Arc::new(OnceLock::new());
        let port = Arc::new(DiscordPort::new(rest.clone(), engine_cell.clone()));
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
        ));
        let services = procbot::startup::Services::build(
            &config,
            clock,
            vec![(
                port.clone() as Arc<dyn ChatPort>,
                Some(ANNOUNCE.to_string()),
            )],
            "harness",
        )
        .await
        .unwrap();
        let _ = engine_cell.set(services.engine.clone());
        Harness {
            fake,
            services,
            rest,
            port,
            _repo: repo,
            _data: data,
            _db: db,
        }
    }

    fn interactions(&self, answer_within: Duration) -> Arc<Interactions> {
        let application = Arc::new(OnceLock::new());
        let _ = application.set(APPLICATION_ID.to_string());
        Arc::new(Interactions::new(
            self.services.engine.clone(),
            self.rest.clone(),
            application,
            answer_within,
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_are_deferred_then_edited_in() {
    let mut harness = Harness::new().await;
    let interactions = harness.interactions(Duration::ZERO);
    let find = command(
        SAM,
        json!({"type": 1, "name": "find", "options": [{"type": 3, "name": "query", "value": "backup"}]}),
    );
    let first = interactions
        .answer(interaction::parse(find.as_bytes()).unwrap())
        .await;
    assert_eq!(first.body, json!({"type": 5, "data": {"flags": 64}}));
    first.after.expect("the answer follows").await;
    let edits = harness.fake.matching(
        "PATCH",
        &format!("/api/v10/webhooks/{APPLICATION_ID}/command-token/messages/@original"),
    );
    assert_eq!(edits.len(), 1, "{:?}", summary(&harness.fake.recorded()));
    assert!(text_of(edits[0].body.as_ref().unwrap()).contains("Back up the customer database"));

    // A deferred click keeps its message (type 6) until the edit replaces it.
    harness.services.outbox.deliver_due().await.unwrap();
    let dm = harness
        .fake
        .matching("POST", &format!("/api/v10/channels/{SAM_DM}/messages"))
        .remove(0);
    let ack = custom_ids(dm.body.as_ref().unwrap())
        .into_iter()
        .find(|id| id.starts_with("ack/backup-customer-data/"))
        .unwrap();
    let clicked = click(SAM, SAM_DM, dm.created_id.as_deref().unwrap(), &ack);
    let first = interactions
        .answer(interaction::parse(clicked.as_bytes()).unwrap())
        .await;
    assert_eq!(first.body, json!({"type": 6}));
    first.after.unwrap().await;
    let edits = harness.fake.matching(
        "PATCH",
        &format!("/api/v10/webhooks/{APPLICATION_ID}/click-token/messages/@original"),
    );
    assert_eq!(edits.len(), 1);
    let edited = edits[0].body.clone().unwrap();
    assert!(!custom_ids(&edited).contains(&ack));
    assert!(text_of(&edited).contains("✅ Acknowledged"));
    let followups = harness.fake.matching(
        "POST",
        &format!("/api/v10/webhooks/{APPLICATION_ID}/click-token"),
    );
    assert_eq!(followups[0].body.as_ref().unwrap()["flags"], 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_interactions_are_answered_through_the_callback_route() {
    let harness = Harness::new().await;
    let interactions = harness.interactions(interaction::ANSWER_WITHIN);
    // An INTERACTION_CREATE dispatch's `d`, shaped as Discord sends it over the gateway.
    let dispatch = json!({"t": "INTERACTION_CREATE", "s": 3, "op": 0, "d": serde_json::from_str::<Value>(&command(
        SAM,
        json!({"type": 1, "name": "list"}),
    )).unwrap()});
    let d = serde_json::to_vec(&dispatch["d"]).unwrap();
    interactions
        .answer_over_rest(interaction::parse(&d).unwrap())
        .await;
    let callbacks = harness.fake.matching(
        "POST",
        "/api/v10/interactions/860000000000000001/command-token/callback",
    );
    assert_eq!(
        callbacks.len(),
        1,
        "{:?}",
        summary(&harness.fake.recorded())
    );
    let body = callbacks[0].body.clone().unwrap();
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64);
    assert!(text_of(&body).contains("procedures"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_message_resumes_after_a_rate_limit_without_reposting() {
    let harness = Harness::new().await;
    let steps: Vec<String> = (1..=60)
        .map(|n| format!("Step {n}: {}", "check the thing and note it ".repeat(6)))
        .collect();
    let message = Message::new()
        .header("A long announcement")
        .list(true, steps)
        .actions(vec![Button::new("Read", "show/backup-customer-data")]);
    let parts = procbot::adapters::discord::render::render(&message);
    assert!(parts.len() >= 2);
    let path = format!("/channels/{ANNOUNCE}/messages");
    let destination = Destination::Channel {
        channel: ANNOUNCE.to_string(),
    };
    // The first part goes through; the second is refused once.
    harness.fake.fail(
        "POST",
        &path,
        200,
        json!({"id": "810000000000000001", "channel_id": ANNOUNCE, "type": 0, "content": "", "embeds": [],
               "author": {"id": "1", "username": "procbot", "discriminator": "0", "avatar": null},
               "timestamp": "2026-12-01T09:00:00+00:00", "edited_timestamp": null, "tts": false,
               "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "pinned": false}),
        1,
    );
    harness.fake.fail(
        "POST",
        &path,
        429,
        json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false}),
        1,
    );
    let refused = harness.port.send(&destination, &message).await;
    assert_eq!(
        refused,
        Err(DeliveryError::RateLimited {
            retry_after: Duration::from_millis(1500)
        })
    );
    let delivered = harness.port.send(&destination, &message).await.unwrap();
    let posts = harness.fake.matching("POST", &format!("/api/v10{path}"));
    assert_eq!(
        posts.len(),
        parts.len() + 1,
        "only the refused part is posted again"
    );
    let ok: Vec<&Recorded> = posts.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), parts.len());
    let last = ok.last().unwrap();
    assert_eq!(
        delivered,
        MessageRef(format!("{ANNOUNCE}/{}", last.created_id.clone().unwrap()))
    );
    assert_eq!(
        custom_ids(last.body.as_ref().unwrap()),
        ["show/backup-customer-data"]
    );
    // Updating it edits the message with the buttons.
    harness.port.update(&delivered, &message).await.unwrap();
    assert_eq!(
        harness
            .fake
            .matching("PATCH", &format!("/api/v10/channels/{ANNOUNCE}/messages/*"))
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_failures_map_to_what_the_outbox_does_next() {
    let harness = Harness::new().await;
    let message = Message::new().text("Hello");
    let channel = |id: &str| Destination::Channel {
        channel: id.to_string(),
    };
    harness.fake.fail(
        "POST",
        "/channels/1001/",
        403,
        json!({"code": 50007, "message": "Cannot send messages to this user"}),
        1,
    );
    harness.fake.fail(
        "POST",
        "/channels/1002/",
        500,
        json!({"message": "oops"}),
        1,
    );
    harness.fake.fail(
        "POST",
        "/channels/1003/",
        404,
        json!({"code": 10003, "message": "Unknown Channel"}),
        1,
    );
    harness.fake.fail(
        "POST",
        "/channels/1004/",
        403,
        json!({"code": 50001, "message": "Missing Access"}),
        1,
    );
    harness.fake.rate_limit_with_header("/channels/1005/", "3");
    let outcome = |result: Result<MessageRef, DeliveryError>| match result {
        Ok(_) => "delivered".to_string(),
        Err(DeliveryError::Permanent(reason)) => format!("permanent: {reason}"),
        Err(DeliveryError::Transient(reason)) => format!("transient: {reason}"),
        Err(DeliveryError::RateLimited { retry_after }) => {
            format!("rate limited {}", retry_after.as_secs())
        }
    };
    let dm_refused = outcome(harness.port.send(&channel("1001"), &message).await);
    assert!(
        dm_refused.starts_with("permanent:") && dm_refused.contains("50007"),
        "{dm_refused}"
    );
    assert!(outcome(harness.port.send(&channel("1002"), &message).await).starts_with("transient:"));
    assert!(outcome(harness.port.send(&channel("1003"), &message).await).starts_with("permanent:"));
    assert!(
        outcome(harness.port.send(&channel("1004"), &message).await).contains("missing access")
    );
    assert_eq!(
        outcome(harness.port.send(&channel("1005"), &message).await),
        "rate limited 3"
    );
    assert!(
        outcome(harness.port.send(&channel("#procedures"), &message).await)
            .contains("not a Discord channel id")
    );
    let nobody = Destination::Person {
        email: procbot::core::procedure::Email::parse("ana@example.com").unwrap(),
    };
    let ana = outcome(harness.port.send(&nobody, &message).await);
    assert!(ana.contains("has no Discord account"), "{ana}");
    // A linked identity is enough to reach someone the directory gives no Discord id.
    harness
        .services
        .store
        .link_identity(
            Utc::now(),
            procbot::core::port::Platform::Discord,
            GUILD,
            "4003",
            "ana@example.com",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome(harness.port.send(&nobody, &message).await),
        "delivered"
    );
    assert!(
        harness
            .fake
            .recorded()
            .iter()
            .any(|r| r.path == "/api/v10/users/@me/channels"
                && r.body.as_ref().and_then(|b| b["recipient_id"].as_str()) == Some("4003"))
    );
    // Network failures are temporary.
    let unreachable = Arc::new(Rest::new(TOKEN, Some("http://127.0.0.1:9")).unwrap());
    let port = DiscordPort::new(unreachable, Arc::new(OnceLock::new()));
    assert!(outcome(port.send(&channel("1001"), &message).await).starts_with("transient:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_stops_procbot_with_a_clear_error() {
    let db = TestDb::sqlite();
    let bot = DiscordBot::start_with(
        &db,
        |fake| {
            fake.fail(
                "GET",
                "/oauth2/applications/@me",
                401,
                json!({"code": 0, "message": "401: Unauthorized"}),
                1,
            )
        },
        |_| {},
    )
    .await;
    let result = tokio::time::timeout(Duration::from_secs(10), bot.server)
        .await
        .unwrap()
        .unwrap();
    let error = format!("{:#}", result.unwrap_err());
    assert!(error.contains("Discord start-up task stopped"), "{error}");
    drop(bot.stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_mode_starts_without_a_public_url_and_stops_cleanly() {
    let db = TestDb::sqlite();
    let bot = DiscordBot::start_with(
        &db,
        |_| {},
        |config| {
            config.discord.mode = DiscordMode::Gateway;
            config.discord.public_key = None;
            config.discord.guild_ids.clear();
        },
    )
    .await;
    bot.fake
        .wait_for(
            "the gateway address asked of the configured API",
            |recorded| recorded.iter().any(|r| r.path == "/api/v10/gateway"),
        )
        .await;
    let global = bot.fake.matching(
        "PUT",
        &format!("/api/v10/applications/{APPLICATION_ID}/commands"),
    );
    assert_eq!(global.len(), 1, "registered globally without guild ids");
    // No interactions endpoint in gateway mode.
    let (status, _) = bot.post(Vec::new(), "{}".into()).await;
    assert_eq!(status, 404);
    bot.baseline_delivered().await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_fixture_payloads_are_parsed_and_answered() {
    let Some(dir) = fixtures("platform_fixture_payloads_are_parsed_and_answered") else {
        return;
    };
    let db = TestDb::sqlite();
    let bot = DiscordBot::start(&db).await;
    bot.baseline_delivered().await;
    let expectations: [(&str, u64, &str); 5] = [
        ("payloads/interactions/ping.json", 1, ""),
        (
            "payloads/interactions/application_command.slash.json",
            4,
            "answers `/procedure` only",
        ),
        ("payloads/interactions/autocomplete.json", 8, ""),
        ("payloads/interactions/autocomplete.docs.json", 8, ""),
        (
            "payloads/interactions/message_component.button.json",
            4,
            "did not understand",
        ),
    ];
    for (file, response_type, says) in expectations {
        let body = read_fixture(&dir, file);
        let (status, answer) = bot.interact(&body).await;
        assert_eq!(status, 200, "{file}: {answer}");
        assert_eq!(answer["type"], response_type, "{file}: {answer}");
        assert!(text_of(&answer).contains(says), "{file}: {answer}");
        if response_type == 4 {
            assert_eq!(answer["data"]["flags"], 64, "{file}");
        }
        if response_type == 8 {
            assert_eq!(
                answer["data"]["choices"],
                json!([]),
                "{file}: not our command"
            );
        }
    }
    // Gateway dispatches carry the same interaction object in `d`.
    for file in [
        "payloads/gateway/interaction_create.application_command.json",
        "payloads/gateway/interaction_create.subcommand_group.json",
    ] {
        let dispatch: Value = serde_json::from_str(&read_fixture(&dir, file)).unwrap();
        assert_eq!(dispatch["t"], "INTERACTION_CREATE");
        let d = dispatch["d"].to_string();
        let (status, answer) = bot.interact(&d).await;
        assert_eq!(
            (status, answer["type"].clone()),
            (200, json!(4)),
            "{file}: {answer}"
        );
        assert!(
            text_of(&answer).contains("answers `/procedure` only"),
            "{file}"
        );
    }
    bot.stop().await;
    // And over the gateway's callback route.
    let harness = Harness::new().await;
    let interactions = harness.interactions(interaction::ANSWER_WITHIN);
    let dispatch: Value = serde_json::from_str(&read_fixture(
        &dir,
        "payloads/gateway/interaction_create.subcommand_group.json",
    ))
    .unwrap();
    interactions
        .answer_over_rest(interaction::parse(dispatch["d"].to_string().as_bytes()).unwrap())
        .await;
    let callbacks = harness.fake.matching(
        "POST",
        "/api/v10/interactions/817823320820547654/hunter2/callback",
    );
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].body.as_ref().unwrap()["type"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_procbot_sends_matches_discords_openapi() {
    let Some(dir) = fixtures("every_request_procbot_sends_matches_discords_openapi") else {
        return;
    };
    let openapi = OpenApi::load(&dir);
    let mut recorded = Vec::new();

    // As users run it: start-up, welcome DMs, a click, commands, autocomplete.
    let db = TestDb::sqlite();
    let bot = DiscordBot::start(&db).await;
    bot.baseline_delivered().await;
    let dm = bot.dms(SAM_DM).remove(0);
    let ack = custom_ids(dm.body.as_ref().unwrap())
        .into_iter()
        .find(|id| id.starts_with("ack/"))
        .unwrap();
    bot.interact(&click(SAM, SAM_DM, dm.created_id.as_deref().unwrap(), &ack))
        .await;
    for sub in ["pending", "list", "mine", "help"] {
        bot.interact(&command(SAM, json!({"type": 1, "name": sub})))
            .await;
    }
    bot.fake
        .wait_for("the click's follow-up", |recorded| {
            recorded.iter().any(|r| r.path.ends_with("/click-token"))
        })
        .await;
    recorded.extend(bot.stop().await);

    // The gateway's start-up, the callback route, deferred edits, long messages.
    let gateway_db = TestDb::sqlite();
    let gateway = DiscordBot::start_with(
        &gateway_db,
        |_| {},
        |config| {
            config.discord.mode = DiscordMode::Gateway;
            config.discord.guild_ids.clear();
        },
    )
    .await;
    gateway
        .fake
        .wait_for("the gateway address", |recorded| {
            recorded.iter().any(|r| r.path == "/api/v10/gateway")
        })
        .await;
    recorded.extend(gateway.stop().await);
    let harness = Harness::new().await;
    let interactions = harness.interactions(Duration::ZERO);
    let find = command(
        SAM,
        json!({"type": 1, "name": "find", "options": [{"type": 3, "name": "query", "value": "backup"}]}),
    );
    let first = interactions
        .answer(interaction::parse(find.as_bytes()).unwrap())
        .await;
    first.after.unwrap().await;
    let over_rest = harness.interactions(interaction::ANSWER_WITHIN);
    over_rest
        .answer_over_rest(
            interaction::parse(command(SAM, json!({"type": 1, "name": "list"})).as_bytes())
                .unwrap(),
        )
        .await;
    let long = Message::new()
        .header("Long")
        .list(
            true,
            (1..=80)
                .map(|n| format!("Step {n}: {}", "words ".repeat(40)))
                .collect(),
        )
        .actions(vec![Button::new("Read", "show/backup-customer-data")]);
    let sent = harness
        .port
        .send(
            &Destination::Channel {
                channel: ANNOUNCE.into(),
            },
            &long,
        )
        .await
        .unwrap();
    harness.port.update(&sent, &long).await.unwrap();
    recorded.extend(harness.fake.recorded());

    // The checker itself refuses what Discord would refuse.
    let wrong = Recorded {
        method: "POST".into(),
        path: "/api/v10/channels/1/messages".into(),
        authorization: Some(format!("Bot {TOKEN}")),
        content_type: Some("application/json".into()),
        body: Some(json!({"embeds": [{"title": 5, "colour": 1}], "flags": "64"})),
        status: 200,
        created_id: None,
    };
    let found = openapi.problems(&wrong);
    assert!(found.iter().any(|p| p.contains("$.flags")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("title")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("colour")), "{found:?}");
    let unknown_route = Recorded {
        path: "/api/v10/channels/1/nonsense".into(),
        ..wrong.clone()
    };
    assert!(!openapi.problems(&unknown_route).is_empty());
    let wrong_method = Recorded {
        method: "DELETE".into(),
        path: "/api/v10/users/@me/channels".into(),
        ..wrong
    };
    assert!(!openapi.problems(&wrong_method).is_empty());

    let mut problems = Vec::new();
    for request in &recorded {
        problems.extend(openapi.problems(request));
    }
    let seen = summary(&recorded);
    for route in [
        "/api/v10/users/@me/channels",
        "/api/v10/oauth2/applications/@me",
        "/api/v10/gateway",
    ] {
        assert!(
            seen.keys().any(|k| k.ends_with(route)),
            "{route} was exercised: {seen:#?}"
        );
    }
    for pattern in [
        "POST /api/v10/channels/*/messages",
        "PATCH /api/v10/channels/*/messages/*",
        "POST /api/v10/interactions/*/*/callback",
        "POST /api/v10/webhooks/*/*",
        "PATCH /api/v10/webhooks/*/*/messages/@original",
        "PUT /api/v10/applications/*/commands",
        "PUT /api/v10/applications/*/guilds/*/commands",
    ] {
        let (method, path) = pattern.split_once(' ').unwrap();
        assert!(
            recorded
                .iter()
                .any(|r| r.method == method && path_matches(path, &r.path)),
            "{pattern} was exercised: {seen:#?}"
        );
    }
    assert!(
        problems.is_empty(),
        "requests Discord's API would refuse:\n{}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_procedure_run_is_a_checklist_worked_through_with_discord_buttons() {
    let db = TestDb::sqlite();
    let bot = DiscordBot::start(&db).await;
    bot.baseline_delivered().await;
    let before = bot.dms(SAM_DM).len();
    let (status, response) = bot
        .interact(&command(
            SAM,
            json!({"type": 1, "name": "run", "options": [{"type": 3, "name": "id", "value": "backup-customer-data"}]}),
        ))
        .await;
    assert_eq!(status, 200, "{response}");
    assert!(text_of(&response).contains("started"), "{response}");
    assert_eq!(response["data"]["flags"], 64, "answered privately");
    bot.fake
        .wait_for("the checklist DM", |_| bot.dms(SAM_DM).len() > before)
        .await;
    let posted = bot.dms(SAM_DM).pop().unwrap();
    let checklist = posted.body.clone().unwrap();
    assert!(text_of(&checklist).contains("Run #"), "{checklist}");
    let ids = custom_ids(&checklist);
    let run = ids[0].split('/').nth(1).unwrap().to_string();
    assert!(ids.contains(&format!("run/{run}/fin")), "{ids:?}");
    assert!(checklist["components"].as_array().unwrap().len() <= 5);
    let message = posted.created_id.clone().unwrap();
    // Steps by button (type 7 updates the checklist in place), the last typed as a problem
    // with a note through the command, then Finish.
    for step in ["1", "2"] {
        let (status, response) = bot
            .interact(&click(
                SAM,
                SAM_DM,
                &message,
                &format!("run/{run}/{step}/ok"),
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(response["type"], 7, "{response}");
        assert!(!custom_ids(&response["data"]).contains(&format!("run/{run}/{step}/ok")));
    }
    let (_, response) = bot
        .interact(&command(
            SAM,
            json!({"type": 1, "name": "step", "options": [
                {"type": 4, "name": "run", "value": run.parse::<i64>().unwrap()},
                {"type": 4, "name": "step", "value": 3},
                {"type": 3, "name": "outcome", "value": "problem"},
                {"type": 3, "name": "note", "value": "Report missing, ticket OPS-9"}]}),
        ))
        .await;
    assert!(text_of(&response).contains("OPS-9"), "{response}");
    let (_, response) = bot
        .interact(&click(SAM, SAM_DM, &message, &format!("run/{run}/fin")))
        .await;
    assert_eq!(response["type"], 7, "{response}");
    let finished = text_of(&response["data"]);
    assert!(
        finished.contains("Finished") && finished.contains("1 deviation"),
        "{finished}"
    );
    assert!(custom_ids(&response["data"]).is_empty());
    let store = bot.store().await;
    let runs = store.runs(Some("backup-customer-data")).await.unwrap();
    assert_eq!(runs[0].finished.as_ref().map(|f| f.deviations), Some(1));
    assert_eq!(
        runs[0].steps[2].note.as_deref(),
        Some("Report missing, ticket OPS-9")
    );
    store.close().await;
    bot.stop().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_mapped_to_a_discord_role_follows_who_holds_it() {
    let db = TestDb::sqlite();
    let bot = DiscordBot::start_with(
        &db,
        |fake| fake.set_member_roles(SAM, &["777000000000000001", "123"]),
        |config| {
            let path = config.procedures.path.clone();
            std::fs::write(
                path.join("directory.yaml"),
                DIRECTORY.replace(
                    "teams:\n",
                    "teams:\n  devs: { discord_role: \"777000000000000001\" }\n",
                ),
            )
            .unwrap();
            std::fs::write(
                path.join("deploy.md"),
                procedure_with("deploy-to-production", "audience", Some("[devs]")).replace(
                    "title: Back up the customer database",
                    "title: Deploy to production",
                ),
            )
            .unwrap();
        },
    )
    .await;
    // The role's holder is read, the team gains Sam, and Sam alone is asked about it.
    bot.fake
        .wait_for("Sam asked about the deploy procedure", |_| {
            bot.dms(SAM_DM)
                .iter()
                .any(|r| text_of(r.body.as_ref().unwrap()).contains("Deploy to production"))
        })
        .await;
    let members = bot.fake.matching("GET", "/api/v10/guilds/*/members/*");
    assert!(!members.is_empty(), "role holders read per person");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !bot.dms(IDA_DM)
            .iter()
            .any(|r| text_of(r.body.as_ref().unwrap()).contains("Deploy to production")),
        "Ida does not hold the role"
    );
    let store = bot.store().await;
    let pending = store.pending_for("sam@example.com").await.unwrap();
    assert!(
        pending
            .iter()
            .any(|p| p.procedure_id == "deploy-to-production")
    );
    store.close().await;
    bot.stop().await;
}
