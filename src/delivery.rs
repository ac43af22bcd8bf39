//! The outbox worker: claims due rows with a lease, delivers them through each platform's
//! `ChatPort` at that platform's pace, and records the outcome: delivered, retried later
//! (capped exponential backoff, or the platform's `Retry-After`), or failed for good.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::core::port::{ChatPort, DeliveryError, Platform};
use crate::store::outbox::OutboxRow;
use crate::store::{Store, StoreError};

/// Rows claimed per platform per round.
const BATCH: i64 = 20;
/// The first retry after a temporary failure waits this long; each further one doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(600);
/// A send that takes longer than this is abandoned and retried.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// After this many attempts a message is marked failed.
pub const MAX_ATTEMPTS: i64 = 10;
/// How long the worker sleeps at most when nothing is due (new rows also wake it).
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// Slack's default pace: `chat.postMessage` allows about one message a second per channel
/// (the adapter keeps to that) with bursts, and several hundred a minute per workspace.
pub const SLACK_MESSAGES_PER_SECOND: f64 = 5.0;

/// How fast a platform may be sent to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Sends per second; `None` for no limit (the console).
    pub per_second: Option<f64>,
}

impl Pace {
    /// Defaults under each platform's documented limits: Slack's chat.postMessage allows
    /// about one message per second per channel with bursts and several hundred a minute per
    /// workspace; Discord allows 50 requests a second per bot.
    pub fn for_platform(platform: Platform) -> Pace {
        match platform {
            Platform::Console => Pace { per_second: None },
            Platform::Slack => Pace {
                per_second: Some(SLACK_MESSAGES_PER_SECOND),
            },
            Platform::Discord => Pace {
                per_second: Some(40.0),
            },
        }
    }

    fn interval(self) -> Duration {
        match self.per_second {
            Some(rate) if rate > 0.0 => Duration::from_secs_f64(1.0 / rate),
            _ => Duration::ZERO,
        }
    }
}

/// When each send to one platform may go: one interval after the previous send was
/// scheduled, never sooner.
#[derive(Clone, Copy, Debug)]
struct Pacer {
    interval: Duration,
    next_send: Instant,
}

impl Pacer {
    /// Books the next send, asked at `now` (before sleeping), and returns when it may go.
    /// Counted from the booked moment, not from when the timer fired: timers fire up to a
    /// millisecond late, and counting from the wake-up added that to every interval (a
    /// 200-a-second pace ran at 163). After a pause, or a send slower than the interval, the
    /// schedule starts again from `now`: no catching up in a burst.
    fn book(&mut self, now: Instant) -> Instant {
        let slot = self.next_send.max(now);
        self.next_send = slot + self.interval;
        slot
    }
}

struct Lane {
    port: Arc<dyn ChatPort>,
    pacer: Pacer,
    /// Set by a 429: nothing is sent to this platform before then.
    paused_until: Option<Instant>,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
    /// Deliveries whose lease another worker took over meanwhile (this one was too slow).
    pub lease_lost: usize,
}

pub fn retry_delay(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_RETRY.saturating_mul(1 << exponent).min(MAX_RETRY)
}

pub struct OutboxWorker {
    store: Store,
    clock: Arc<dyn Clock>,
    owner: String,
    lanes: BTreeMap<Platform, Lane>,
    lease: Duration,
}

impl OutboxWorker {
    /// `owner` names this worker in leases; it must differ between instances.
    pub fn new(store: Store, clock: Arc<dyn Clock>, owner: impl Into<String>) -> OutboxWorker {
        OutboxWorker {
            store,
            clock,
            owner: owner.into(),
            lanes: BTreeMap::new(),
            lease: Duration::from_secs(60),
        }
    }

    /// Delivers `platform`'s rows through `port` at `pace`.
    pub fn with_port(mut self, port: Arc<dyn ChatPort>, pace: Pace) -> OutboxWorker {
        let interval = pace.interval();
        // The lease must outlast a whole batch sent at this pace, with room for slow sends.
        let batch_time = interval.saturating_mul(u32::try_from(BATCH).unwrap_or(20));
        self.lease = self.lease.max(batch_time * 2 + SEND_TIMEOUT);
        self.lanes.insert(
            port.platform(),
            Lane {
                port,
                pacer: Pacer {
                    interval,
                    next_send: Instant::now(),
                },
                paused_until: None,
            },
        );
        self
    }

    pub fn has_ports(&self) -> bool {
        !self.lanes.is_empty()
    }

    /// One round: for each platform not paused, claim due rows and deliver them.
    pub async fn deliver_due(&mut self) -> Result<Round, StoreError> {
        let mut round = Round::default();
        let platforms: Vec<Platform> = self.lanes.keys().copied().collect();
        for platform in platforms {
            if let Some(lane) = self.lanes.get_mut(&platform)
                && let Some(until) = lane.paused_until
            {
                if Instant::now() < until {
                    continue;
                }
                lane.paused_until = None;
            }
            let now = self.clock.now();
            let lease_until = now
                + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(60));
            let rows = self
                .store
                .claim_outbox(platform, &self.owner, now, lease_until, BATCH)
                .await?;
            round.claimed += rows.len();
            let mut rows = rows.into_iter();
            while let Some(row) = rows.next() {
                match self.deliver(platform, &row, &mut round).await? {
                    Flow::Continue => {}
                    Flow::PauseLane(until) => {
                        // Hand the rest back untouched; they go when the pause ends.
                        for rest in rows.by_ref() {
                            self.store
                                .reschedule(
                                    rest.id,
                                    &self.owner,
                                    until,
                                    "rate limited",
                                    false,
                                    false,
                                )
                                .await?;
                        }
                    }
                }
            }
        }
        Ok(round)
    }

    async fn deliver(
        &mut self,
        platform: Platform,
        row: &OutboxRow,
        round: &mut Round,
    ) -> Result<Flow, StoreError> {
        let Some(lane) = self.lanes.get_mut(&platform) else {
            return Ok(Flow::Continue);
        };
        tokio::time::sleep_until(lane.pacer.book(Instant::now())).await;
        let port = lane.port.clone();
        // Slow sends earlier in the batch may have used up the lease: renew it for this row,
        // and leave the row alone if another worker has taken it over meanwhile.
        let now = self.clock.now();
        let until =
            now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(60));
        if !self
            .store
            .renew_lease(row.id, &self.owner, now, until)
            .await?
        {
            round.lease_lost += 1;
            tracing::warn!(id = row.id, key = %row.idempotency_key, "lease lost before sending; another worker has the row");
            return Ok(Flow::Continue);
        }
        let sent = tokio::time::timeout(
            SEND_TIMEOUT,
            port.send_once(
                &row.destination,
                &row.message,
                &row.idempotency_key,
                row.maybe_sent,
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(DeliveryError::Transient(format!(
                "no answer within {} s",
                SEND_TIMEOUT.as_secs()
            )))
        });
        let now = self.clock.now();
        match sent {
            Ok(message_ref) => {
                if self
                    .store
                    .mark_delivered(row.id, &self.owner, now, &message_ref)
                    .await?
                {
                    round.delivered += 1;
                } else {
                    round.lease_lost += 1;
                    tracing::warn!(id = row.id, key = %row.idempotency_key, "delivered after the lease ran out; another worker may deliver it again");
                }
                Ok(Flow::Continue)
            }
            Err(DeliveryError::RateLimited { retry_after }) => {
                let retry_after = retry_after.max(Duration::from_millis(100));
                tracing::warn!(%platform, retry_after_ms = retry_after.as_millis() as u64, "rate limited; pausing deliveries");
                let until = now
                    + chrono::Duration::from_std(retry_after)
                        .unwrap_or(chrono::Duration::seconds(60));
                self.store
                    .reschedule(row.id, &self.owner, until, "rate limited", false, true)
                    .await?;
                if let Some(lane) = self.lanes.get_mut(&platform) {
                    lane.paused_until = Some(Instant::now() + retry_after);
                }
                round.retried += 1;
                Ok(Flow::PauseLane(until))
            }
            Err(DeliveryError::Transient(reason)) if row.attempts < MAX_ATTEMPTS => {
                let delay = retry_delay(row.attempts);
                tracing::warn!(id = row.id, %platform, attempts = row.attempts, retry_in_seconds = delay.as_secs(), %reason, "delivery failed; will retry");
                let next = now
                    + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(600));
                self.store
                    .reschedule(row.id, &self.owner, next, &reason, true, false)
                    .await?;
                round.retried += 1;
                Ok(Flow::Continue)
            }
            Err(error) => {
                let reason = match &error {
                    DeliveryError::Transient(reason) => {
                        format!("gave up after {} attempts: {reason}", row.attempts)
                    }
                    other => other.to_string(),
                };
                tracing::error!(id = row.id, %platform, destination = %row.destination, %reason, "delivery failed for good");
                self.store
                    .mark_failed(row.id, &self.owner, now, &reason)
                    .await?;
                round.failed += 1;
                Ok(Flow::Continue)
            }
        }
    }

    /// Delivers until `shutdown` turns true, finishing the round in flight first. `wake` is
    /// notified when new rows are queued.
    pub async fn run(mut self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        if !self.has_ports() {
            // Nothing to deliver to (no chat platform configured): idle until shutdown.
            let _ = shutdown.wait_for(|stop| *stop).await;
            return;
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.deliver_due().await {
                Ok(round) if round.claimed > 0 => continue,
                Ok(_) => self.until_next_due().await,
                Err(error) => {
                    tracing::error!(%error, "the outbox could not be read; retrying");
                    IDLE_WAIT
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        let now = self.clock.now();
        let mut wait = IDLE_WAIT;
        for platform in self.lanes.keys() {
            if let Ok(Some(due)) = self.store.next_outbox_due(*platform).await {
                let until = (due - now).to_std().unwrap_or(Duration::ZERO);
                wait = wait.min(until.max(Duration::from_millis(50)));
            }
        }
        wait
    }
}

enum Flow {
    Continue,
    PauseLane(chrono::DateTime<chrono::Utc>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_are_capped() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(retry_delay(i64::MAX), MAX_RETRY);
        assert_eq!(retry_delay(-3), FIRST_RETRY);
    }

    #[test]
    fn late_timers_do_not_slow_the_pace_and_slow_sends_do_not_burst() {
        let start = Instant::now();
        let interval = Duration::from_millis(5);
        let late = Duration::from_micros(900);
        // Each timer fires 0.9 ms late and the send itself takes no time: 1,000 sends still
        // take 1,000 intervals.
        let mut pacer = Pacer {
            interval,
            next_send: start,
        };
        let mut now = start;
        let mut slots = Vec::new();
        for _ in 0..1_000 {
            let slot = pacer.book(now);
            slots.push(slot);
            now = slot + late;
        }
        assert_eq!(slots[999] - start, interval * 999);
        // Sends slower than the interval (6 ms) are paced by themselves: each one is booked
        // when asked, never earlier than one interval after the last.
        let mut pacer = Pacer {
            interval,
            next_send: start,
        };
        let mut now = start;
        let mut previous: Option<Instant> = None;
        for _ in 0..100 {
            let slot = pacer.book(now);
            assert!(slot >= now);
            if let Some(previous) = previous {
                assert!(slot - previous >= interval);
            }
            previous = Some(slot);
            now = slot + late + Duration::from_millis(6);
        }
        // After a long pause, the next send goes at once, and the one after it an interval on.
        now += Duration::from_secs(10);
        let after_pause = pacer.book(now);
        assert_eq!(after_pause, now);
        assert_eq!(pacer.book(now), now + interval);
    }

    #[test]
    fn paces_follow_the_platforms() {
        assert_eq!(
            Pace::for_platform(Platform::Console).interval(),
            Duration::ZERO
        );
        assert_eq!(
            Pace::for_platform(Platform::Slack).interval(),
            Duration::from_millis(200)
        );
    }
}
