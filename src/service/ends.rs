//! The service's side of [`crate::source::idle`]: feeds the tracker what the Kafka clients report
//! (end of partition, the high watermarks librdkafka keeps from fetches, connection drops) and asks
//! the broker, off the service loop, to confirm partitions' ends after a drop. Returns which
//! partitions hold the watermark again and which stop holding it; the pipeline applies them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;

use crate::source::idle::{Confirmation, IdleTracker, Transitions};
use crate::source::{self, Probe, Reader};

/// How often the broker is asked to confirm partitions' ends after a connection drop, and how long
/// an answer may take: a broker that is still down answers nothing, and is asked again.
const CONFIRM_EVERY: Duration = Duration::from_secs(1);
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// The broker's answer about partitions' ends ([`source::end_offsets`]).
type EndsAnswer = tokio::task::JoinHandle<Vec<(i32, Option<i64>)>>;

pub struct Ends {
    tracker: IdleTracker,
    probe: Probe,
    /// Connection drops already applied to the tracker.
    seen_disconnects: u64,
    confirming: Option<(Confirmation, EndsAnswer)>,
    last_confirm: Option<Instant>,
}

impl Ends {
    pub fn new(grace: Duration, probe: Probe) -> Self {
        Ends {
            tracker: IdleTracker::new(grace),
            seen_disconnects: probe.disconnects.load(Ordering::SeqCst),
            probe,
            confirming: None,
            last_confirm: None,
        }
    }

    /// A new assignment, each partition read from its start offset.
    pub fn reset(&mut self, starts: impl IntoIterator<Item = (i32, i64)>) {
        self.tracker.reset(starts);
        self.confirming = None;
    }

    /// Each partition's state ([`IdleTracker::describe`]).
    pub fn describe(&self) -> String {
        self.tracker.describe()
    }

    pub fn end_of_partition(&mut self, reader: &Reader, partition: i32) {
        let end = source::fetched_high_watermark(reader, &self.probe.topic, partition);
        self.tracker.reached_end(partition, end, Instant::now());
    }

    /// A poll error: a connection drop makes every partition unconfirmed. Returns the partitions to hold.
    pub fn error(&mut self, e: &KafkaError) -> Vec<i32> {
        if source::is_disconnect(e) {
            self.probe.disconnects.fetch_add(1, Ordering::SeqCst);
        }
        self.disconnects()
    }

    /// A message was read. Returns the partitions to hold before its event is pushed: drops
    /// reported before it was fetched, and idle partitions the same fetch found more data on.
    pub fn delivered(&mut self, reader: &Reader, partition: i32, offset: i64) -> Vec<i32> {
        let mut hold = self.disconnects();
        self.tracker.delivered(partition, offset);
        if self.tracker.any_idle() {
            hold.extend(self.fetched(reader));
        }
        hold
    }

    /// The periodic look: drops, fetched high watermarks, the broker's confirmations, and which
    /// partitions have been at their end for the grace period.
    pub fn tick(&mut self, reader: &Reader) -> Transitions {
        let mut hold = self.disconnects();
        hold.extend(self.fetched(reader));
        self.confirm();
        Transitions { hold, idle: self.tracker.due(Instant::now()).idle }
    }

    fn disconnects(&mut self) -> Vec<i32> {
        let n = self.probe.disconnects.load(Ordering::SeqCst);
        if n == self.seen_disconnects {
            return Vec::new();
        }
        self.seen_disconnects = n;
        let hold = self.tracker.disconnected(Instant::now()).hold;
        if !hold.is_empty() {
            tracing::info!(partitions = ?hold, "broker connection dropped: idle partitions hold the watermark until the broker confirms their end");
        }
        hold
    }

    fn fetched(&mut self, reader: &Reader) -> Vec<i32> {
        let idle: Vec<i32> = self.tracker.idle_partitions().collect();
        let mut hold = Vec::new();
        for p in idle {
            if let Some(high) = source::fetched_high_watermark(reader, &self.probe.topic, p) {
                hold.extend(self.tracker.fetch_reported(p, high).hold);
            }
        }
        hold
    }

    fn confirm(&mut self) {
        if let Some((_, handle)) = &self.confirming {
            if !handle.is_finished() {
                return;
            }
            if let Some((asked, handle)) = self.confirming.take() {
                if let Some(Ok(ends)) = futures::FutureExt::now_or_never(handle) {
                    self.tracker.confirmed(&asked, &ends);
                }
            }
        }
        if self.last_confirm.is_some_and(|t| t.elapsed() < CONFIRM_EVERY) {
            return;
        }
        if let Some(asked) = self.tracker.to_confirm(Instant::now()) {
            self.last_confirm = Some(Instant::now());
            let topic = self.probe.topic.to_string_lossy().into_owned();
            let (prober, parts) = (self.probe.prober.clone(), asked.partitions.clone());
            let handle =
                tokio::task::spawn_blocking(move || source::end_offsets(&prober, &topic, &parts, CONFIRM_TIMEOUT));
            self.confirming = Some((asked, handle));
        }
    }
}
