//! Slack end to end: `procbot serve` with the real slack-morphism client pointed at the fake
//! Slack. Announcements become DMs with buttons, a `block_actions` click records the
//! acknowledgement and updates the message, slash commands need valid signatures, mentions and
//! DMs are answered in thread, the Home tab lists what is pending, Socket Mode answers and
//! reconnects, and a 429 delays without losing or duplicating anything.

use std::collections::BTreeMap;
use std::time::Duration;

use procbot::config::SlackMode;
use serde_json::{Value, json};

use crate::fake_slack::{Failure, Recorded};
use crate::slack_app::{SlackApp, ack_buttons, backup, payroll, text_of};

/// The successful `chat.postMessage` calls per channel.
fn posts_by_channel(requests: &[Recorded]) -> BTreeMap<String, Vec<Value>> {
    let mut by_channel: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for request in requests.iter().filter(|r| r.method == "chat.postMessage") {
        by_channel
            .entry(
                request.args["channel"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default()
            .push(request.args.clone());
    }
    by_channel
}

fn dm_channel(user: &str) -> String {
    format!("D{}", user.trim_start_matches('U'))
}

/// The four welcome DMs of the first start (everyone in an audience).
async fn welcome_dms(app: &SlackApp) {
    app.fake
        .wait_for("four welcome DMs", |requests| {
            let posts = posts_by_channel(requests);
            ["U0IDA", "U0SAM", "U0CTO", "U0ANA"]
                .iter()
                .all(|u| posts.contains_key(*u))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_reach_slack_dms_and_a_click_acknowledges_and_updates_the_message() {
    let app = SlackApp::spawn(SlackMode::Http).await;
    welcome_dms(&app).await;
    let requests = app.fake.requests();
    // Every Web API call carries the bot token, and nothing goes to the announce channel on
    // a first start.
    assert!(requests.iter().all(|r| r.method == "respond"
        || r.authorization.as_deref() == Some("Bearer xoxb-test-bot-token")));
    assert!(!posts_by_channel(&requests).contains_key("#procedures"));
    // Sam has no Slack id in the directory: found by email, once.
    assert_eq!(app.fake.calls("users.lookupByEmail").len(), 1);
    assert_eq!(
        app.fake.calls("users.lookupByEmail")[0].args["email"],
        "sam@example.com"
    );
    let posts = posts_by_channel(&requests);
    assert_eq!(posts["U0SAM"].len(), 1, "one welcome DM each");
    let sam_dm = &posts["U0SAM"][0];
    let buttons = ack_buttons(sam_dm);
    assert_eq!(buttons.len(), 1, "{sam_dm:#}");
    assert!(buttons[0].starts_with("ack/backup/"));
    assert!(
        !text_of(sam_dm).contains("payroll"),
        "Sam is not in engineering"
    );
    assert!(
        sam_dm["text"].as_str().is_some_and(|t| !t.is_empty()),
        "fallback text"
    );

    // Sam clicks Acknowledge in the DM the fake delivered (its channel and ts).
    let delivered = app.fake.posted_to("U0SAM").remove(0);
    assert_eq!(delivered.channel, dm_channel("U0SAM"));
    let ts = delivered.ts.clone();
    let (status, _) = app
        .click("U0SAM", &delivered.channel, &ts, &buttons[0])
        .await;
    assert_eq!(status, 200);
    app.fake
        .wait_for("the clicked DM to be updated", |requests| {
            requests.iter().any(|r| r.method == "chat.update")
        })
        .await;
    let update = &app.fake.calls("chat.update")[0];
    assert_eq!(update.args["channel"], dm_channel("U0SAM"));
    assert_eq!(update.args["ts"], ts);
    let updated = text_of(&update.args);
    assert!(updated.contains("Acknowledged v1.0.0"), "{updated}");
    assert!(ack_buttons(&update.args).is_empty(), "the button is gone");
    // The acknowledgement is evidence, with the Slack account and message.
    let store = app.store().await;
    assert!(
        store
            .pending_for("sam@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    let report = store.acknowledgement_report().await.unwrap();
    let sam = report
        .iter()
        .filter(|v| v.procedure_id == "backup")
        .flat_map(|v| v.people.iter())
        .find(|p| p.email == "sam@example.com")
        .unwrap();
    assert!(sam.acknowledged_at.is_some());
    assert_eq!(sam.platform.as_deref(), Some("slack"));
    assert_eq!(sam.user_id.as_deref(), Some("U0SAM"));
    assert_eq!(
        sam.message_ref.as_deref(),
        Some(format!("{}:{ts}", dm_channel("U0SAM")).as_str())
    );
    store.close().await;
    // The click also told Sam privately, in the DM.
    app.fake
        .wait_for("the private confirmation", |requests| {
            requests.iter().any(|r| {
                r.method == "chat.postMessage"
                    && r.args["channel"] == dm_channel("U0SAM")
                    && text_of(&r.args).contains("Thank you")
            })
        })
        .await;

    // A version bump reaches its audience (Ida and Sam) once, and the channel.
    let before = app.fake.requests().len();
    app.push("backup.md", &backup("1.1.0", "Check the report twice."))
        .await;
    app.fake
        .wait_for("the announcement", |requests| {
            let posts = posts_by_channel(&requests[before..]);
            posts.contains_key("#procedures")
                && posts.contains_key("U0IDA")
                && posts.contains_key("U0SAM")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts = posts_by_channel(&app.fake.requests()[before..]);
    assert_eq!(posts["U0IDA"].len(), 1);
    assert_eq!(posts["U0SAM"].len(), 1);
    assert!(!posts.contains_key("U0CTO") && !posts.contains_key("U0ANA"));
    let dm = text_of(&posts["U0SAM"][0]);
    assert!(
        dm.contains("v1.1.0") && dm.contains("Step 2 changed"),
        "{dm}"
    );
    assert_eq!(
        app.fake.calls("users.lookupByEmail").len(),
        1,
        "Sam's id was remembered"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_over_http_need_a_valid_fresh_signature() {
    let app = SlackApp::spawn(SlackMode::Http).await;
    let (status, body) = app
        .slash_command("U0IDA", "how do I back up the database?")
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    let text = text_of(&answer);
    assert!(text.contains("Back up the customer database"), "{text}");
    assert!(text.contains("1. Start the backup job."), "{text}");
    assert!(
        text.contains("<https://git.example.com/acme/procedures/src/branch/main/backup.md|"),
        "{text}"
    );
    let lookups_before = app.lookups_recorded().await;

    let body = crate::slack_app::form(&[
        ("team_id", "T0ACME"),
        ("channel_id", "C0GENERAL"),
        ("user_id", "U0IDA"),
        ("command", "/procedure"),
        ("text", "backup"),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0ACME/1/x",
        ),
        ("trigger_id", "1.2.3"),
    ]);
    let now = app.clock_now();
    // Forged: signed with another secret.
    let (ts, forged) = crate::slack_app::sign("not-the-secret", &now.to_string(), &body);
    let forged_status = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &[
                ("x-slack-request-timestamp", ts.clone()),
                ("x-slack-signature", forged),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(forged_status.0, 401, "{forged_status:?}");
    // Stale: a real signature, six minutes old.
    let old = (now - 360).to_string();
    let (ts_old, stale) = crate::slack_app::sign(crate::slack_app::SIGNING_SECRET, &old, &body);
    let stale_status = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &[
                ("x-slack-request-timestamp", ts_old),
                ("x-slack-signature", stale),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(stale_status.0, 401);
    assert!(stale_status.1.contains("5 minutes"), "{stale_status:?}");
    // Missing.
    let missing = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &[],
            body.clone(),
        )
        .await;
    assert_eq!(missing.0, 401);
    // A valid signature over a different body.
    let (ts, signature) =
        crate::slack_app::sign(crate::slack_app::SIGNING_SECRET, &now.to_string(), &body);
    let tampered = body.replace("backup", "payroll");
    let tampered_status = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &[
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", signature),
            ],
            tampered,
        )
        .await;
    assert_eq!(tampered_status.0, 401);
    // None of them was answered or recorded.
    assert_eq!(app.lookups_recorded().await, lookups_before);

    // Someone outside engineering does not learn of the confidential procedure.
    let (_, body) = app.slash_command("U0IDA", "how do I run payroll").await;
    assert!(!text_of(&serde_json::from_str(&body).unwrap()).contains("Send the payroll file"));
    let (_, body) = app.slash_command("U0CTO", "how do I run payroll").await;
    assert!(text_of(&serde_json::from_str(&body).unwrap()).contains("Send the payroll file"));
    // An account procbot cannot place is told so, in words.
    let (_, body) = app.slash_command("U0NOBODY", "pending").await;
    let text = text_of(&serde_json::from_str(&body).unwrap());
    assert!(text.to_lowercase().contains("directory"), "{text}");

    // A payload that is signed but is not a command gets a clear 400, not a panic.
    let (status, body) = app
        .post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            "text=only".to_string(),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("slash command"), "{body}");
    // An oversized body is refused before it is read, signed or not, on every endpoint.
    let huge = "x".repeat(2 * 1024 * 1024);
    for path in ["/slack/events", "/slack/commands", "/slack/interactions"] {
        let (status, _) = app
            .post_signed(path, "application/json", huge.clone())
            .await;
        assert_eq!(status, 413, "{path}");
        let (status, _) = app.post(path, "application/json", &[], huge.clone()).await;
        assert_eq!(status, 413, "{path}, unsigned");
        // A body that would not parse is refused for its signature first: 401, not 400.
        let (status, body) = app
            .post(
                path,
                "application/x-www-form-urlencoded",
                &[
                    ("x-slack-request-timestamp", now.to_string()),
                    ("x-slack-signature", format!("v0={}", "0".repeat(64))),
                ],
                "payload={not json".to_string(),
            )
            .await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_dms_and_the_home_tab_are_answered() {
    let app = SlackApp::spawn(SlackMode::Http).await;
    welcome_dms(&app).await;
    // Slack checks the events URL with a challenge.
    let (status, body) = app
        .post_signed("/slack/events", "application/json", json!({"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string())
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"));

    // A mention in a channel: a public answer in the thread.
    let mention = json!({"type": "app_mention", "user": "U0IDA", "text": "<@UBOT> how do I back up the database?", "ts": "1700000500.000100", "channel": "C0GENERAL", "event_ts": "1700000500.000100"});
    assert_eq!(app.event("Ev01", mention.clone()).await.0, 200);
    // Slack redelivers an event it thinks was missed: answered once.
    assert_eq!(app.event("Ev01", mention).await.0, 200);
    app.fake
        .wait_for("the threaded answer", |requests| {
            requests.iter().any(|r| {
                r.method == "chat.postMessage" && r.args["thread_ts"] == "1700000500.000100"
            })
        })
        .await;
    // A mention about a confidential procedure: only the asker sees the answer.
    let secret = json!({"type": "app_mention", "user": "U0CTO", "text": "<@UBOT> run payroll", "ts": "1700000600.000100", "channel": "C0GENERAL", "event_ts": "1700000600.000100"});
    app.event("Ev02", secret).await;
    app.fake
        .wait_for("the private answer", |requests| {
            requests.iter().any(|r| r.method == "chat.postEphemeral")
        })
        .await;
    let ephemeral = &app.fake.calls("chat.postEphemeral")[0];
    assert_eq!(ephemeral.args["user"], "U0CTO");
    assert_eq!(ephemeral.args["thread_ts"], "1700000600.000100");
    assert!(text_of(&ephemeral.args).contains("Run payroll"));
    // A DM to the bot, from Zoe whom only Slack knows: answered in the DM's thread.
    let dm = json!({"type": "message", "channel": "D0ZOE", "user": "U0ZOE", "text": "how do I back up the database?", "ts": "1700000700.000100", "event_ts": "1700000700.000100", "channel_type": "im"});
    app.event("Ev03", dm).await;
    // The bot's own message in that DM is not answered.
    let own = json!({"type": "message", "channel": "D0ZOE", "bot_id": "B1", "user": "UBOT", "text": "hello", "ts": "1700000701.000100", "event_ts": "1700000701.000100", "channel_type": "im"});
    app.event("Ev04", own).await;
    app.fake
        .wait_for("the DM answer", |requests| {
            requests
                .iter()
                .any(|r| r.method == "chat.postMessage" && r.args["channel"] == "D0ZOE")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = app.fake.requests();
    let threaded: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "chat.postMessage" && r.args.get("thread_ts").is_some())
        .collect();
    assert_eq!(threaded.len(), 2, "one per question: {threaded:#?}");
    // Zoe's profile email was looked up and is remembered with her time zone.
    assert!(
        app.fake
            .calls("users.info")
            .iter()
            .any(|r| r.args["user"] == "U0ZOE")
    );
    let zones = app.store().await.profile_time_zones().await.unwrap();
    assert_eq!(
        zones.get(&procbot::core::procedure::Email::parse("zoe@example.com").unwrap()),
        Some(&chrono_tz::Europe::Dublin)
    );

    // Sam opens the Home tab: what Sam must acknowledge, with its button.
    let home = json!({"type": "app_home_opened", "user": "U0SAM", "channel": "D0SAM", "tab": "home", "event_ts": "1700000800.000100"});
    app.event("Ev05", home).await;
    app.fake
        .wait_for("the Home tab", |requests| {
            requests.iter().any(|r| r.method == "views.publish")
        })
        .await;
    let published = &app.fake.calls("views.publish")[0];
    assert_eq!(published.args["user_id"], "U0SAM");
    assert_eq!(published.args["view"]["type"], "home");
    let view_blocks = json!({"blocks": published.args["view"]["blocks"].clone()});
    let buttons = ack_buttons(&view_blocks);
    assert_eq!(buttons.len(), 1, "{view_blocks:#}");
    // A click in the Home tab records the acknowledgement and refreshes the tab.
    let payload = json!({
        "type": "block_actions", "user": {"id": "U0SAM", "team_id": "T0ACME"}, "api_app_id": "A0PROCBOT",
        "container": {"type": "view", "view_id": "V0HOME"}, "trigger_id": "1.2.3", "team": {"id": "T0ACME"},
        "view": {"id": "V0HOME", "type": "home", "blocks": [], "team_id": "T0ACME", "app_id": "A0PROCBOT", "bot_id": "B1", "hash": "1"},
        "actions": [{"action_id": buttons[0], "block_id": "b", "value": buttons[0], "type": "button", "action_ts": "1700000900.1"}]
    });
    let body = crate::slack_app::form(&[("payload", &payload.to_string())]);
    assert_eq!(
        app.post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body
        )
        .await
        .0,
        200
    );
    app.fake
        .wait_for("the Home tab refreshed", |requests| {
            requests
                .iter()
                .filter(|r| r.method == "views.publish")
                .count()
                == 2
        })
        .await;
    let refreshed = &app.fake.calls("views.publish")[1];
    assert!(ack_buttons(&json!({"blocks": refreshed.args["view"]["blocks"].clone()})).is_empty());
    assert!(
        app.store()
            .await
            .pending_for("sam@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_answers_commands_in_the_ack_and_reconnects() {
    let app = SlackApp::spawn(SlackMode::Socket).await;
    app.fake.wait_for_socket(1).await;
    let opened = app.fake.calls("apps.connections.open");
    assert_eq!(
        opened[0].authorization.as_deref(),
        Some("Bearer xapp-test-app-token")
    );
    let command = json!({
        "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": true,
        "payload": {"token": "t", "team_id": "T0ACME", "team_domain": "acme", "channel_id": "C0GENERAL", "channel_name": "general",
                    "user_id": "U0IDA", "user_name": "ida", "command": "/procedure", "text": "bakcup", "api_app_id": "A0PROCBOT",
                    "response_url": app.fake.response_url("socket"), "trigger_id": "1.2.3"}
    });
    assert!(app.fake.push_envelope(&command).await);
    let ack = wait_for_ack(&app, "env-1").await;
    let text = text_of(&ack["payload"]);
    assert!(text.contains("Back up the customer database"), "{ack:#}");
    assert_eq!(ack["payload"]["response_type"], "ephemeral");

    // Slack asks the client to reconnect: it opens a new connection and carries on.
    let disconnect = json!({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "fake"}});
    assert!(app.fake.push_envelope(&disconnect).await);
    app.fake.wait_for_socket(2).await;
    welcome_dms(&app).await;
    let delivered = app.fake.posted_to("U0SAM").remove(0);
    let button = ack_buttons(&delivered.args)[0].clone();
    let click = json!({
        "envelope_id": "env-2", "type": "interactive", "accepts_response_payload": false,
        "payload": crate::slack_app::block_actions("U0SAM", &delivered.channel, &delivered.ts, &button, &app.fake.response_url("socket-click"))
    });
    assert!(app.fake.push_envelope(&click).await);
    wait_for_ack(&app, "env-2").await;
    app.fake
        .wait_for("the update after a Socket Mode click", |requests| {
            requests.iter().any(|r| r.method == "chat.update")
        })
        .await;
    assert!(
        app.store()
            .await
            .pending_for("sam@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_slack_took_the_message_does_not_send_it_twice() {
    let app = SlackApp::spawn_behind_proxy(|fake| fake.drop_next_post_answers(1)).await;
    app.fake
        .wait_for("the dropped answer", |requests| {
            requests.iter().any(|r| r.method == "chat.postMessage")
        })
        .await;
    // The failed send is retried with backoff on procbot's clock.
    for _ in 0..40 {
        if app.fake.calls("conversations.history").len() == 1 {
            break;
        }
        app.clock.advance(chrono::Duration::seconds(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    welcome_dms(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts = posts_by_channel(&app.fake.requests());
    for user in ["U0IDA", "U0SAM", "U0CTO", "U0ANA"] {
        assert_eq!(posts[user].len(), 1, "{user} got one DM: {posts:#?}");
    }
    assert_eq!(
        app.fake.calls("conversations.history").len(),
        1,
        "read back once"
    );
    let store = app.store().await;
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.failed), (0, 4, 0));
    store.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_limit_slows_delivery_without_a_storm_of_429s() {
    // Slack lets one message a second through; procbot's pace is five.
    let app = SlackApp::spawn_with(SlackMode::Http, |fake| fake.enforce_post_rate(1.0)).await;
    for _ in 0..100 {
        if ["U0IDA", "U0SAM", "U0CTO", "U0ANA"]
            .iter()
            .all(|u| !app.fake.posted_to(u).is_empty())
        {
            break;
        }
        app.clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    welcome_dms(&app).await;
    let posts = posts_by_channel(&app.fake.requests());
    let attempts: usize = posts.values().map(Vec::len).sum();
    let refused = app.fake.rate_limited();
    assert_eq!(attempts - refused, 4, "each DM delivered once");
    assert!(
        refused <= 4,
        "each 429 pauses delivery instead of retrying at once: {refused}"
    );
    for user in ["U0IDA", "U0SAM", "U0CTO", "U0ANA"] {
        assert_eq!(app.fake.posted_to(user).len(), 1);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_slack_refuses_for_good_is_kept_as_failed_with_its_reason() {
    let app = SlackApp::spawn_with(SlackMode::Http, |fake| {
        fake.fail_next("chat.postMessage", Failure::ApiError("cannot_dm_bot"));
    })
    .await;
    app.fake
        .wait_for("every first attempt", |requests| {
            requests
                .iter()
                .filter(|r| r.method == "chat.postMessage")
                .count()
                >= 4
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let store = app.store().await;
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.failed), (0, 3, 1));
    let failed = store.failed_deliveries().await.unwrap();
    assert!(failed[0].error.contains("cannot_dm_bot"), "{failed:?}");
    store.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_command_is_acknowledged_at_once_and_answered_through_its_response_url() {
    // Looking up an unknown account takes Slack 4 s today: longer than Slack waits.
    let app = SlackApp::spawn_with(SlackMode::Http, |fake| {
        fake.fail_next("users.info", Failure::Slow(Duration::from_secs(4)));
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = app
        .slash_command("U0ZOE", "how do I back up the database?")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within Slack's 3 s"
    );
    assert_eq!(status, 200);
    assert!(body.contains("Looking that up"), "{body}");
    app.fake
        .wait_for("the answer through response_url", |requests| {
            requests.iter().any(|r| r.method == "respond")
        })
        .await;
    let late = &app.fake.calls("respond")[0];
    assert!(
        text_of(&late.args).contains("Back up the customer database"),
        "{:#}",
        late.args
    );
    app.stop().await;
}

async fn wait_for_ack(app: &SlackApp, envelope: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(ack) = app
            .fake
            .socket_acks()
            .into_iter()
            .find(|a| a["envelope_id"] == envelope)
        {
            return ack;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ack for {envelope}: {:?}",
            app.fake.socket_acks()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_delays_but_never_loses_or_duplicates() {
    let app = SlackApp::spawn_with(SlackMode::Http, |fake| {
        fake.fail_next("chat.postMessage", Failure::RateLimited(1));
        fake.fail_next("chat.postMessage", Failure::ServerError);
    })
    .await;
    app.fake
        .wait_for("the first attempt", |requests| {
            requests.iter().any(|r| r.method == "chat.postMessage")
        })
        .await;
    // The 429 paused Slack for its Retry-After; the 500 is retried with backoff. Time moves on.
    for _ in 0..40 {
        app.clock.advance(chrono::Duration::seconds(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let posts = posts_by_channel(&app.fake.requests());
        if ["U0IDA", "U0SAM", "U0CTO", "U0ANA"]
            .iter()
            .all(|u| posts.contains_key(*u))
        {
            break;
        }
    }
    welcome_dms(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = app.fake.requests();
    let attempts = requests
        .iter()
        .filter(|r| r.method == "chat.postMessage")
        .count();
    assert_eq!(attempts, 6, "four DMs, one 429 and one 500 retried");
    // Exactly one delivered DM per person: the two failed attempts were not recorded as sent.
    let store = app.store().await;
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.failed), (0, 4, 0));
    store.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_change_is_never_named_in_the_channel_and_payloads_are_escaped() {
    let app = SlackApp::spawn(SlackMode::Http).await;
    welcome_dms(&app).await;
    let before = app.fake.requests().len();
    // One push changes a confidential procedure and a public one.
    app.repo.write("payroll.md", payroll("1.1.0"));
    app.push(
        "backup.md",
        &backup(
            "1.1.0",
            "Tell <!channel> and @here that it is done, <@U0CTO> & co.",
        ),
    )
    .await;
    app.fake
        .wait_for("the channel post", |requests| {
            posts_by_channel(&requests[before..]).contains_key("#procedures")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = app.fake.requests();
    for post in requests[before..]
        .iter()
        .filter(|r| r.method == "chat.postMessage")
    {
        let wire = serde_json::to_string(&post.args).unwrap();
        for raw in ["<!channel>", "@here", "<@U0CTO>"] {
            assert!(!wire.contains(raw), "{raw} reached Slack: {wire}");
        }
        if post.args["channel"] == "#procedures" {
            assert!(
                !wire.contains("Run payroll") && !wire.contains("payroll"),
                "{wire}"
            );
        }
    }
    // The channel's Block Kit, as Slack received it.
    let channel_posts = app.fake.posted_to("#procedures");
    assert_eq!(channel_posts.len(), 1);
    insta::assert_json_snapshot!(
        "confidential_change_in_the_announce_channel",
        channel_posts[0].args["blocks"]
    );
    app.stop().await;
}

/// The list items under `key:` in the manifest (one level of YAML, as the file is written).
fn manifest_list(text: &str, key: &str) -> Vec<String> {
    let mut lines = text.lines().skip_while(|l| l.trim() != format!("{key}:"));
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let indent = header.len() - header.trim_start().len();
    lines
        .take_while(|l| l.len() - l.trim_start().len() > indent || l.trim().is_empty())
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- ")
                .map(|item| item.trim().to_string())
        })
        .collect()
}

#[test]
fn the_app_manifest_asks_for_exactly_what_procbot_uses() {
    use procbot::adapters::slack::api::{BOT_EVENTS, INBOUND_SCOPES, METHOD_SCOPES};
    let text =
        std::fs::read_to_string(crate::helpers::project_root().join("slack-app-manifest.yaml"))
            .unwrap();
    let mut wanted: Vec<String> = METHOD_SCOPES
        .iter()
        .flat_map(|(_, scopes)| scopes.iter().copied())
        .chain(INBOUND_SCOPES.iter().copied())
        .map(str::to_string)
        .collect();
    wanted.sort();
    wanted.dedup();
    let mut scopes = manifest_list(&text, "bot");
    scopes.sort();
    assert_eq!(scopes, wanted);
    let mut events = manifest_list(&text, "bot_events");
    events.sort();
    assert_eq!(events, BOT_EVENTS);
    assert!(text.contains("command: /procedure"));
    assert!(text.contains("home_tab_enabled: true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_procedure_run_is_a_checklist_worked_through_with_slack_buttons() {
    let app = SlackApp::spawn(SlackMode::Http).await;
    welcome_dms(&app).await;
    let (status, body) = app.slash_command("U0IDA", "run backup").await;
    assert_eq!(status, 200);
    assert!(body.contains("started"), "{body}");
    app.fake
        .wait_for("the checklist DM", |_| {
            app.fake
                .posted_to("U0IDA")
                .iter()
                .any(|p| text_of(&p.args).contains("Run #"))
        })
        .await;
    let checklist = app
        .fake
        .posted_to("U0IDA")
        .into_iter()
        .find(|p| text_of(&p.args).contains("Run #"))
        .unwrap();
    let buttons: Vec<String> = crate::slack_app::blocks_of(&checklist.args)
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["action_id"].as_str().map(str::to_string))
        .collect();
    let run = buttons[0].split('/').nth(1).unwrap().to_string();
    assert_eq!(
        buttons,
        [
            format!("run/{run}/1/ok"),
            format!("run/{run}/1/na"),
            format!("run/{run}/1/pb"),
            format!("run/{run}/2/ok"),
            format!("run/{run}/2/na"),
            format!("run/{run}/2/pb"),
            format!("run/{run}/fin"),
        ]
    );
    for (index, action) in [
        format!("run/{run}/1/ok"),
        format!("run/{run}/2/ok"),
        format!("run/{run}/fin"),
    ]
    .iter()
    .enumerate()
    {
        let (status, _) = app
            .click("U0IDA", &checklist.channel, &checklist.ts, action)
            .await;
        assert_eq!(status, 200);
        app.fake
            .wait_for("the checklist updated", |requests| {
                requests
                    .iter()
                    .filter(|r| r.method == "chat.update")
                    .count()
                    > index
            })
            .await;
    }
    let last = app.fake.calls("chat.update").pop().unwrap();
    assert_eq!(last.args["ts"], checklist.ts.as_str());
    let text = text_of(&last.args);
    assert!(
        text.contains("✅ 1. Start the backup job.") && text.contains("Finished"),
        "{text}"
    );
    assert!(ack_buttons(&last.args).is_empty());
    let store = app.store().await;
    let runs = store.runs(Some("backup")).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].finished.as_ref().is_some_and(|f| f.deviations == 0));
    assert_eq!(
        runs[0].steps[0].by.as_ref().map(|e| e.as_str()),
        Some("it-lead@example.com")
    );
    store.close().await;
    app.stop().await;
}
