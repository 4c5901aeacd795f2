//! The service's state between the clients: the engine, the offsets in flight, and what an
//! ownership change does to them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

use super::commit::Committer;
use super::ends::Ends;
use super::{blocking, Progress};
use crate::config::Config;
use crate::decode::{decode, hours_ms, DecodeLimits};
use crate::engine::{Engine, Step};
use crate::intake::Intake;
use crate::rules::snooze::Snoozes;
use crate::sink::{self, Destination, Record};
use crate::source::offsets::OffsetTracker;
use crate::source::{self, Membership, PartitionChange, Probe, Reader};
use crate::telemetry::{now_ms, Metrics};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An owned partition's message read for the first time: judged, committed once done.
    Live,
    /// An owned partition's message below its committed offset: rebuilds state; its alerts were
    /// delivered before the commit.
    Recovery,
    /// Another instance's partition: feeds the cross-seller views only.
    Observed,
}

/// Where an event came from, carried through the engine.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    pub partition: i32,
    pub offset: i64,
    pub received: Instant,
    pub kind: TokenKind,
}

/// What a produce batch resolves to.
pub struct Done {
    epoch: u64,
    offsets: Vec<(i32, i64)>,
    holds: Vec<(i32, i64)>,
    delivered: bool,
}

type Batch = Pin<Box<dyn Future<Output = Done> + Send>>;

pub struct Pipeline {
    cfg: Config,
    metrics: Metrics,
    progress: Arc<Progress>,
    producer: FutureProducer,
    intake: Intake,
    limits: DecodeLimits,
    engine: Engine<Token>,
    tracker: OffsetTracker,
    pub inflight: FuturesUnordered<Batch>,
    /// Bumped by every rebuild: batches of an older epoch no longer count.
    epoch: u64,
    owned: BTreeSet<i32>,
    /// `owned`, shared with the reader's statistics callback (lag gauge).
    shared_owned: Arc<std::sync::Mutex<HashSet<i32>>>,
    /// State exists for `owned` (false before the first assignment).
    built: bool,
    reading: bool,
    /// Per owned partition, the committed offset this epoch started from.
    recover_until: HashMap<i32, i64>,
    back_live: HashSet<i32>,
    /// Highest offset processed per partition in this epoch (the engine's order, not arrival).
    frontier: HashMap<i32, i64>,
    /// Partitions whose first message tells how much lookback history retention removed.
    history_checks: HashSet<i32>,
    since: i64,
    /// Which partitions may stop holding the watermark.
    ends: Ends,
    last_input: Instant,
    last_report: Instant,
    produced: bool,
    delivery_failed: bool,
    last_late: u64,
    last_suppressed: HashMap<&'static str, u64>,
    last_snoozed: HashMap<String, u64>,
    last_evicted: (u64, u64),
}

impl Pipeline {
    pub fn new(
        cfg: &Config,
        metrics: Metrics,
        progress: Arc<Progress>,
        producer: FutureProducer,
        shared_owned: Arc<std::sync::Mutex<HashSet<i32>>>,
        probe: Probe,
    ) -> anyhow::Result<Self> {
        let limits = DecodeLimits::from_config(&cfg.input);
        Ok(Pipeline {
            intake: Intake::new(
                limits.clone(),
                metrics.clone(),
                Duration::from_millis(cfg.service.error_log_interval_ms),
            ),
            limits,
            engine: Engine::new(cfg, Snoozes::for_config(cfg)?)?.with_clock(Box::new(now_ms)),
            cfg: cfg.clone(),
            metrics,
            progress,
            producer,
            tracker: OffsetTracker::default(),
            inflight: FuturesUnordered::new(),
            epoch: 0,
            owned: BTreeSet::new(),
            shared_owned,
            built: false,
            reading: false,
            recover_until: HashMap::new(),
            back_live: HashSet::new(),
            frontier: HashMap::new(),
            history_checks: HashSet::new(),
            since: 0,
            ends: Ends::new(Duration::from_millis(cfg.service.idle_partition_ms), probe),
            last_input: Instant::now(),
            last_report: Instant::now(),
            produced: false,
            delivery_failed: false,
            last_late: 0,
            last_suppressed: HashMap::new(),
            last_snoozed: HashMap::new(),
            last_evicted: (0, 0),
        })
    }

    pub fn engine(&self) -> &Engine<Token> {
        &self.engine
    }

    /// Hot reload (see [`Engine::reload`]); later rebuilds start from the reloaded settings. The
    /// snooze counts carry over: they are the engine's, and the engine (its state) stays.
    pub fn reload(&mut self, file: &Config) -> Result<crate::engine::Reloaded, crate::config::ConfigError> {
        let r = self.engine.reload(file, Snoozes::for_config(file)?)?;
        self.cfg = self.engine.config().clone();
        Ok(r)
    }

    pub fn reading(&self) -> bool {
        self.reading
    }

    pub fn owns(&self, partition: i32) -> bool {
        self.owned.contains(&partition)
    }

    pub fn take_storable(&mut self) -> Vec<(i32, i64)> {
        self.tracker.take_storable()
    }

    pub fn take_produced(&mut self) -> bool {
        std::mem::take(&mut self.produced)
    }

    pub fn take_delivery_failed(&mut self) -> bool {
        std::mem::take(&mut self.delivery_failed)
    }

    /// Eager rebalancing revokes everything, then assigns. The same partitions back (a broker
    /// restart, another member joining and leaving) keep their state; any other set rebuilds.
    pub async fn on_change(
        &mut self,
        change: PartitionChange,
        membership: &Membership,
        reader: &Reader,
        committer: &mut Committer,
    ) -> anyhow::Result<()> {
        match change {
            PartitionChange::Revoked(parts) => {
                tracing::info!(?parts, "partitions revoked: reading paused until the new assignment");
                self.reading = false;
            }
            PartitionChange::Assigned(parts) => {
                let owned: BTreeSet<i32> = parts.into_iter().collect();
                if self.built && owned == self.owned {
                    tracing::info!(?owned, "same partitions assigned: state kept");
                    self.reading = true;
                } else {
                    self.rebuild(owned, membership, reader, committer).await?;
                }
            }
        }
        Ok(())
    }

    /// A transaction was aborted: re-read the owned partitions from their last commit.
    pub async fn rebuild_owned(
        &mut self,
        membership: &Membership,
        reader: &Reader,
        committer: &mut Committer,
    ) -> anyhow::Result<()> {
        let owned = self.owned.clone();
        // Nothing may be committed first: the aborted transaction's offsets are not done.
        self.built = false;
        self.rebuild(owned, membership, reader, committer).await
    }

    /// Drops all state and re-reads every partition from the lookback ([`source::plan`]): owned
    /// partitions rebuild their sellers (alerts suppressed up to the commit), the others the
    /// cross-seller views. Same as a restart, so a moved partition is exactly as a restarted one.
    async fn rebuild(
        &mut self,
        owned: BTreeSet<i32>,
        membership: &Membership,
        reader: &Reader,
        committer: &mut Committer,
    ) -> anyhow::Result<()> {
        // What is in flight may still be ours to commit (partitions kept across the rebalance).
        if self.built {
            self.drain(Duration::from_secs(30)).await;
            self.owned = self.owned.intersection(&owned).copied().collect();
            committer.commit(self, membership, true).await?;
        }
        let topic = self.cfg.kafka.input_topic.clone();
        let lookback = hours_ms(self.cfg.state.recovery_lookback_hours);
        let mut attempt = 0;
        let pos = loop {
            match blocking(|| source::positions(membership, reader, &topic, lookback, now_ms())) {
                Ok(p) => break p,
                Err(e) if attempt < 30 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "cannot read partition positions; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => anyhow::bail!("cannot read partition positions to rebuild state: {e}"),
            }
        };
        let plan = source::plan(&pos, &owned.iter().copied().collect());
        let mut engine = Engine::new(&self.cfg, self.engine.snoozes().clone())?.with_clock(Box::new(now_ms));
        engine.set_owned(owned.iter().copied());
        let mut tpl = TopicPartitionList::new();
        self.recover_until.clear();
        self.history_checks.clear();
        for pp in &plan {
            engine.assign(pp.partition);
            tpl.add_partition_offset(&topic, pp.partition, Offset::Offset(pp.start))?;
            if let Some(c) = pp.recover_until {
                self.recover_until.insert(pp.partition, c);
            }
            if pp.check_history && pp.owned {
                self.history_checks.insert(pp.partition);
            }
            if pp.lost_unread > 0 && pp.owned {
                self.metrics.recovery_lost_messages.inc_by(pp.lost_unread as u64);
                tracing::warn!(
                    partition = pp.partition,
                    lost = pp.lost_unread,
                    oldest_retained = pp.start,
                    "messages were deleted by retention before they were processed: lost (raise the topic's retention)"
                );
            }
        }
        reader.assign(&tpl)?;
        self.engine = engine;
        // The new engine counts from zero: so do the deltas exported from its counts.
        (self.last_late, self.last_evicted) = (0, (0, 0));
        self.last_suppressed.clear();
        self.last_snoozed.clear();
        self.tracker = OffsetTracker::default();
        self.frontier.clear();
        self.back_live.clear();
        self.ends.reset(plan.iter().map(|p| (p.partition, p.start)));
        self.since = pos.since;
        self.epoch += 1;
        if let Ok(mut o) = self.shared_owned.lock() {
            *o = owned.iter().copied().collect();
        }
        self.owned = owned;
        self.built = true;
        self.reading = true;
        self.produced = false;
        self.metrics.rebuilds.inc();
        self.metrics.partitions_owned.set(self.owned.len() as i64);
        let starts: Vec<(i32, i64, Option<i64>)> =
            plan.iter().map(|p| (p.partition, p.start, p.recover_until)).collect();
        tracing::info!(owned = ?self.owned, ?starts, "state rebuild: partitions re-read from the lookback");
        Ok(())
    }

    pub async fn on_message(&mut self, msg: Result<BorrowedMessage<'_>, KafkaError>, reader: &Reader) {
        let m = match msg {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(p)) => {
                self.ends.end_of_partition(reader, p);
                return;
            }
            Err(e) => {
                let hold = self.ends.error(&e);
                self.hold(&hold);
                self.metrics.kafka_errors.inc();
                if let Some(held) = self.metrics.allow_log("consume") {
                    tracing::warn!(error = %e, similar_held_back = held, "consume error");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
        };
        self.last_input = Instant::now();
        let (partition, offset) = (m.partition(), m.offset());
        // Partitions that may have unread events after all hold the watermark before this event
        // can move it.
        let hold = self.ends.delivered(reader, partition, offset);
        self.hold(&hold);
        if self.history_checks.remove(&partition) {
            self.check_history(partition, m.timestamp().to_millis());
        }
        let payload = m.payload().unwrap_or(&[]);
        let mut step = Step::default();
        if !self.owned.contains(&partition) {
            self.progress.observed.fetch_add(1, Ordering::SeqCst);
            self.metrics.observed.inc();
            // Its owner dead-letters and counts bad messages; here they are only skipped.
            let tok = Token { partition, offset, received: self.last_input, kind: TokenKind::Observed };
            if let Some(ev) = decode(payload, &self.limits).ok().filter(|ev| self.engine.admit(ev).is_ok()) {
                self.engine.push(partition, ev, tok, &mut step);
                self.dispatch(step, Some(tok), None);
            }
            return;
        }
        let recovery = self.recover_until.get(&partition).is_some_and(|c| offset < *c);
        if !recovery && self.recover_until.contains_key(&partition) && self.back_live.insert(partition) {
            tracing::info!(partition, offset, "partition recovered: back to live processing");
        }
        let kind = if recovery { TokenKind::Recovery } else { TokenKind::Live };
        let tok = Token { partition, offset, received: self.last_input, kind };
        if recovery {
            self.progress.recovered.fetch_add(1, Ordering::SeqCst);
            self.metrics.recovered.inc();
        } else {
            self.tracker.received(partition, offset);
            self.progress.consumed.fetch_add(1, Ordering::SeqCst);
        }
        let origin = || format!("{}/{partition}@{offset}", m.topic());
        let engine = &self.engine;
        match self.intake.take_admitted(payload, origin, |ev| engine.admit(ev)) {
            Ok(ev) => {
                self.engine.push(partition, ev, tok, &mut step);
                self.dispatch(step, Some(tok), None);
            }
            Err(e) => {
                let dl = sink::dead_letter_record(m.key(), m.payload(), &e, m.topic(), partition, offset);
                self.dispatch(step, Some(tok), Some(dl));
            }
        }
    }

    /// The rebuild began at the oldest retained message: if it is younger than the lookback start,
    /// that much history is gone (windows start short). Counted and logged; processing goes on.
    fn check_history(&mut self, partition: i32, first_ts: Option<i64>) {
        let Some(ts) = first_ts else { return };
        let missing_ms = ts - self.since;
        if missing_ms > 0 {
            self.metrics.recovery_truncated.inc();
            tracing::warn!(
                partition,
                oldest_retained = %crate::alert::rfc3339(ts),
                lookback_start = %crate::alert::rfc3339(self.since),
                "retention is shorter than state.recovery_lookback_hours: windows rebuilt without the oldest history"
            );
        }
    }

    /// Turns an engine step (plus an optional dead letter) into a batch, or completes its offsets
    /// at once when there is nothing to produce. Decides, per alert, whether it was delivered
    /// before the commit this epoch started from (then it is not sent again).
    fn dispatch(&mut self, step: Step<Token>, current: Option<Token>, dead_letter: Option<Record>) {
        let mut offsets: Vec<(i32, i64)> =
            step.done.iter().filter(|t| t.kind == TokenKind::Live).map(|t| (t.partition, t.offset)).collect();
        let mut holds = Vec::new();
        let mut records = Vec::with_capacity(step.alerts.len() + 1);
        let mut next = 0;
        for (alert, cause) in step.alerts.iter().zip(&step.causes) {
            for t in &step.done[next..cause.map_or(step.done.len(), |i| i + 1)] {
                let f = self.frontier.entry(t.partition).or_insert(-1);
                *f = (*f).max(t.offset);
            }
            next = next.max(cause.map_or(step.done.len(), |i| i + 1));
            let cause = cause.map(|i| step.done[i]);
            let part = self.engine.detector().seller_partition(&alert.seller_id).or(cause.map(|t| t.partition));
            match (part, cause) {
                // Caused by the seller's own message: its offset is released with this batch.
                (Some(p), Some(t)) if t.partition == p && t.kind == TokenKind::Recovery => {
                    self.metrics.recovery_suppressed.inc();
                    continue;
                }
                (Some(p), Some(t)) if t.partition == p => {}
                // A timer, or a ring completed on another partition: judged by how far the seller's
                // partition had been processed, and held there until delivered.
                (Some(p), _) if self.owned.contains(&p) => {
                    let f = self.frontier.get(&p).copied().unwrap_or(-1);
                    if self.recover_until.get(&p).is_some_and(|c| f + 1 < *c) {
                        self.metrics.recovery_suppressed.inc();
                        continue;
                    }
                    self.tracker.hold(p, f);
                    holds.push((p, f));
                }
                _ => {}
            }
            if alert.shadow && self.cfg.kafka.shadow_topic.is_empty() {
                // Shadow mode without a shadow topic: evaluated and counted, sent nowhere.
                self.metrics.shadow_alerts.with_label_values(&[&alert.rule]).inc();
                continue;
            }
            let since = cause.map(|t| t.received).or(current.map(|t| t.received));
            records.push((sink::alert_record(alert), since));
        }
        for t in step.done.get(next..).unwrap_or_default() {
            let f = self.frontier.entry(t.partition).or_insert(-1);
            *f = (*f).max(t.offset);
        }
        if self.cfg.standing.enabled && !self.cfg.kafka.standing_topic.is_empty() {
            records.extend(step.standing.iter().map(|s| (sink::standing_record(s), None)));
        }
        if let Some(t) = current.filter(|t| t.kind == TokenKind::Live) {
            if let Some(dl) = dead_letter {
                records.push((dl, None));
                offsets.push((t.partition, t.offset));
            }
        }
        let done = Done { epoch: self.epoch, offsets, holds, delivered: true };
        if records.is_empty() {
            self.complete(done);
        } else {
            self.produced = true;
            self.inflight.push(self.batch(records, done));
        }
    }

    /// Produces a batch of records and resolves to the input offsets it releases.
    fn batch(&self, records: Vec<(Record, Option<Instant>)>, mut done: Done) -> Batch {
        let (producer, metrics, progress) = (self.producer.clone(), self.metrics.clone(), self.progress.clone());
        let k = &self.cfg.kafka;
        let topics = [k.alerts_topic.clone(), k.dlq_topic.clone(), k.standing_topic.clone(), k.shadow_topic.clone()];
        let retry = !k.exactly_once();
        Box::pin(async move {
            let sends = records.iter().map(|(rec, since)| {
                let topic = match rec.destination {
                    Destination::Alerts => &topics[0],
                    Destination::DeadLetter => &topics[1],
                    Destination::Standing => &topics[2],
                    Destination::Shadow => &topics[3],
                };
                let (producer, metrics, progress) = (&producer, &metrics, &progress);
                async move {
                    let ok = sink::deliver(producer, topic, rec, metrics, retry).await;
                    if ok {
                        acknowledged(rec, *since, metrics, progress);
                    }
                    ok
                }
            });
            done.delivered = futures::future::join_all(sends).await.into_iter().all(|ok| ok);
            done
        })
    }

    pub fn complete(&mut self, done: Done) {
        if done.epoch != self.epoch {
            return;
        }
        self.delivery_failed |= !done.delivered;
        for (p, o) in &done.offsets {
            self.tracker.complete(*p, *o);
        }
        for (p, f) in &done.holds {
            self.tracker.release(*p, *f);
        }
        self.progress.completed.fetch_add(done.offsets.len() as u64, Ordering::SeqCst);
    }

    /// Waits for in-flight batches (at most `timeout`).
    pub async fn drain(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, self.inflight.next()).await {
                Ok(Some(done)) => self.complete(done),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        batches = self.inflight.len(),
                        "deliveries still pending; their input will be re-read"
                    );
                    break;
                }
            }
        }
    }

    fn hold(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.engine.hold(*p);
            self.metrics.partition_idle.with_label_values(&["hold"]).inc();
        }
    }

    pub fn on_tick(&mut self, reader: &Reader) {
        if self.last_report.elapsed() >= Duration::from_secs(10) {
            self.last_report = Instant::now();
            let p = &self.progress;
            tracing::info!(
                consumed = p.consumed.load(Ordering::SeqCst),
                completed = p.completed.load(Ordering::SeqCst),
                observed = p.observed.load(Ordering::SeqCst),
                buffered = self.engine.buffered(),
                inflight = self.inflight.len(),
                sellers = self.engine.sellers_tracked(),
                watermark = %crate::alert::rfc3339(self.engine.watermark().max(0)),
                partitions = %self.ends.describe(),
                "progress"
            );
        }
        // Partitions known to be at their end for the grace period stop holding the watermark.
        let ends = self.ends.tick(reader);
        self.hold(&ends.hold);
        for p in ends.idle {
            self.metrics.partition_idle.with_label_values(&["idle"]).inc();
            let mut step = Step::default();
            self.engine.mark_idle(p, &mut step);
            self.dispatch(step, None, None);
        }
        // Only a quiet input flushes: reading paused by backpressure or a broker outage also
        // delivers nothing, and flushing then would make every later event late.
        if self.engine.buffered() > 0
            && self.engine.input_idle()
            && self.last_input.elapsed() >= Duration::from_millis(self.cfg.service.idle_flush_ms)
        {
            let mut step = Step::default();
            self.engine.flush(&mut step);
            self.dispatch(step, None, None);
        }
        self.publish_gauges();
    }

    pub fn publish_gauges(&mut self) {
        let m = &self.metrics;
        m.sellers_tracked.set(self.engine.sellers_tracked() as i64);
        m.buffered_events.set(self.engine.buffered() as i64);
        m.timers_pending.set(self.engine.detector().timers_pending() as i64);
        m.inflight.set(self.inflight.len() as i64);
        let wm = self.engine.watermark();
        if wm > i64::MIN {
            m.watermark_lag.set((now_ms() - wm) as f64 / 1000.0);
        }
        let late = self.engine.stats.late;
        m.late.inc_by(late.saturating_sub(self.last_late));
        self.last_late = late;
        let stats = &self.engine.detector().stats;
        for (rule, n) in &stats.suppressed_by_rule {
            let prev = self.last_suppressed.insert(rule, *n).unwrap_or(0);
            m.suppressed.with_label_values(&[rule]).inc_by(n.saturating_sub(prev));
        }
        for (rule, n) in &self.engine.stats.snoozed_by_rule {
            let prev = self.last_snoozed.insert(rule.clone(), *n).unwrap_or(0);
            m.snoozed.with_label_values(&[rule]).inc_by(n.saturating_sub(prev));
        }
        let (expired, capped) = (stats.sellers_evicted, stats.sellers_capped);
        m.sellers_evicted.with_label_values(&["expired"]).inc_by(expired.saturating_sub(self.last_evicted.0));
        m.sellers_evicted.with_label_values(&["cap"]).inc_by(capped.saturating_sub(self.last_evicted.1));
        self.last_evicted = (expired, capped);
        self.progress.buffered.store(self.engine.buffered() as u64, Ordering::SeqCst);
        self.progress.inflight.store(self.inflight.len() as u64, Ordering::SeqCst);
    }
}

/// Counts an acknowledged record (and the event-to-alert latency of an alert).
fn acknowledged(rec: &Record, since: Option<Instant>, metrics: &Metrics, progress: &Progress) {
    match rec.destination {
        Destination::Alerts => {
            if let Some(t) = since {
                metrics.event_to_alert.observe(t.elapsed().as_secs_f64());
            }
            let h = |k: &str| {
                rec.headers.iter().find(|(n, _)| *n == k).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            };
            let (rule, sev) = (h("rule").unwrap_or_default(), h("severity").unwrap_or_default());
            metrics.alerts.with_label_values(&[&rule, &sev]).inc();
            progress.alerts_delivered.fetch_add(1, Ordering::SeqCst);
        }
        Destination::Shadow => {
            let rule = rec.headers.iter().find(|(n, _)| *n == "rule").map(|(_, v)| String::from_utf8_lossy(v));
            metrics.shadow_alerts.with_label_values(&[&rule.unwrap_or_default()]).inc();
        }
        Destination::DeadLetter => {
            metrics.dead_letters.inc();
            progress.dead_letters.fetch_add(1, Ordering::SeqCst);
        }
        Destination::Standing => {
            metrics.standing_updates.inc();
            progress.standing_delivered.fetch_add(1, Ordering::SeqCst);
        }
    }
}
