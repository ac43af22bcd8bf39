//! `TestBot`: procbot assembled as `procbot chat` and `serve` assemble it (store, engine,
//! git sync, outbox), with the console adapter as the recording chat platform, a manual clock,
//! a temporary git remote of procedures and a fresh database. Tests drive it as people do.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use procbot::adapters::console::ConsolePort;
use procbot::clock::ManualClock;
use procbot::config::{Config, DatabaseUrl};
use procbot::core::message::Message;
use procbot::core::port::{ChatPort, Platform};
use procbot::core::procedure::Email;
use procbot::core::request::Request;
use procbot::delivery::Round;
use procbot::engine::{Actor, Origin, Reply};
use procbot::repo::sync::SyncOutcome;
use procbot::startup::Services;

use crate::db::TestDb;
use crate::git_fixture::GitFixture;

pub(crate) const ANNOUNCE_CHANNEL: &str = "#procedures";

pub(crate) struct TestBot {
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) port: Arc<ConsolePort>,
    pub(crate) services: Services,
    pub(crate) config: Config,
    _data: tempfile::TempDir,
}

pub(crate) fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

/// The configuration a test bot runs on: the fixture's remote, state and database in `data`.
pub(crate) fn bot_config(fixture: &GitFixture, data: &std::path::Path, db: &TestDb) -> Config {
    let mut config = Config::default();
    config.procedures.git_url = Some(fixture.remote_url());
    config.procedures.path = data.join("checkout");
    config.procedures.state_file = data.join("state.json");
    config.database.url = if db.url.starts_with("sqlite:") {
        DatabaseUrl::Sqlite(db.url.clone())
    } else {
        DatabaseUrl::Postgres(db.url.clone())
    };
    config
}

impl TestBot {
    pub(crate) async fn spawn(fixture: &GitFixture, db: &TestDb) -> TestBot {
        TestBot::spawn_with(fixture, db, |_| {}).await
    }

    /// A bot whose configuration `adjust` changes first.
    pub(crate) async fn spawn_with(
        fixture: &GitFixture,
        db: &TestDb,
        adjust: impl FnOnce(&mut Config),
    ) -> TestBot {
        let data = tempfile::tempdir().unwrap();
        let mut config = bot_config(fixture, data.path(), db);
        adjust(&mut config);
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
        ));
        let port = Arc::new(ConsolePort::new());
        let services = TestBot::services(&config, &clock, &port).await;
        TestBot {
            clock,
            port,
            services,
            config,
            _data: data,
        }
    }

    async fn services(
        config: &Config,
        clock: &Arc<ManualClock>,
        port: &Arc<ConsolePort>,
    ) -> Services {
        Services::build(
            config,
            clock.clone(),
            vec![(
                port.clone() as Arc<dyn ChatPort>,
                Some(ANNOUNCE_CHANNEL.to_string()),
            )],
            "test-instance",
        )
        .await
        .unwrap()
    }

    /// Stops and starts procbot again on the same state and database (the chat platform and
    /// the clock carry on).
    pub(crate) async fn restart(&mut self) {
        self.services.store.close().await;
        self.services = TestBot::services(&self.config, &self.clock, &self.port).await;
        self.sync().await;
    }

    pub(crate) fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use procbot::clock::Clock;
        self.clock.now()
    }

    /// One scheduler tick at the clock's time, then delivery.
    pub(crate) async fn tick(&mut self) -> usize {
        let sent = self.services.scheduler.tick().await.unwrap();
        self.deliver().await;
        sent
    }

    /// One sync, then the served procedures and their index are swapped in.
    pub(crate) async fn sync(&mut self) -> SyncOutcome {
        let outcome = self.services.syncer.sync_once().await;
        if let Some(snapshot) = self.services.syncer.served() {
            self.services.library.serve(snapshot).unwrap();
        }
        outcome
    }

    /// Delivers everything due.
    pub(crate) async fn deliver(&mut self) -> Round {
        let mut total = Round::default();
        loop {
            let round = self.services.outbox.deliver_due().await.unwrap();
            if round.claimed == 0 {
                return total;
            }
            total.claimed += round.claimed;
            total.delivered += round.delivered;
            total.retried += round.retried;
            total.failed += round.failed;
        }
    }

    /// `who` on the console, as the engine sees them.
    pub(crate) fn actor(who: &str) -> Actor {
        Actor {
            platform: Platform::Console,
            workspace: "local".into(),
            user_id: who.into(),
            email: Some(email(who)),
        }
    }

    async fn run(&self, who: &str, request: Request, origin: Origin) -> Vec<Message> {
        let replies = self
            .services
            .engine
            .handle(&TestBot::actor(who), request, &origin)
            .await;
        let mut private = Vec::new();
        for reply in replies {
            match reply {
                Reply::Private(message) | Reply::Shareable(message) => private.push(message),
                Reply::Update {
                    message_ref,
                    message,
                } => self.port.update(&message_ref, &message).await.unwrap(),
            }
        }
        private
    }

    /// `who` types `text`; returns the private replies as plain text.
    pub(crate) async fn say(&self, who: &str, text: &str) -> String {
        let replies = self
            .run(who, Request::from_text(text), Origin::default())
            .await;
        render(&replies)
    }

    /// `who` clicks the button `action_id` on the latest message that shows it.
    pub(crate) async fn click(&self, who: &str, action_id: &str) -> String {
        let origin = Origin {
            message_ref: Some(
                self.port
                    .find_action(Some(&email(who)), action_id)
                    .unwrap_or_else(|| panic!("no message shows the button {action_id}")),
            ),
        };
        let replies = self.run(who, Request::from_action(action_id), origin).await;
        render(&replies)
    }

    /// The action ids of the Acknowledge buttons in the DMs `who` received.
    pub(crate) fn ack_buttons_for(&self, who: &str) -> Vec<String> {
        self.port
            .dms_to(&email(who))
            .iter()
            .flat_map(|m| m.action_ids().map(str::to_string).collect::<Vec<_>>())
            .filter(|a| a.starts_with("ack/"))
            .collect()
    }
}

pub(crate) fn render(messages: &[Message]) -> String {
    messages
        .iter()
        .map(procbot::adapters::console::render_plain)
        .collect::<Vec<_>>()
        .join("\n")
}
