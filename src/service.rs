//! `sellerguard run`: the Kafka service. One loop owns the consumer and the engine:
//!
//! message → [`Intake`] (decode; bad input → dead-letter batch) → [`Engine::push`] → a batch of
//! alerts to produce and the input offsets they release. A batch's offsets are stored (and then
//! auto-committed) only after all its records are acknowledged: at-least-once. The number of
//! batches in flight is capped, so a slow or absent broker pauses consumption instead of growing
//! memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;

use crate::config::Config;
use crate::decode::DecodeLimits;
use crate::engine::{Engine, Step};
use crate::intake::Intake;
use crate::shutdown::Shutdown;
use crate::sink::{self, Destination, Record};
use crate::source::offsets::OffsetTracker;
use crate::source::{self, PartitionChange};
use crate::telemetry::{now_ms, Metrics};

/// Where an event came from, carried through the engine.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    pub partition: i32,
    pub offset: i64,
    pub received: Instant,
    /// Re-read to rebuild state after an assignment: processed before, its alerts already sent.
    pub recovery: bool,
}

/// Counters a caller (the demo, tests) can watch to know when the service has caught up.
#[derive(Debug, Default)]
pub struct Progress {
    pub consumed: AtomicU64,
    pub completed: AtomicU64,
    pub buffered: AtomicU64,
    pub inflight: AtomicU64,
    pub alerts_delivered: AtomicU64,
    pub dead_letters: AtomicU64,
    pub standing_delivered: AtomicU64,
    /// Messages re-read to rebuild state (not counted in `consumed`).
    pub recovered: AtomicU64,
}

impl Progress {
    /// Everything consumed so far is processed and acknowledged.
    pub fn caught_up(&self, expected: u64) -> bool {
        self.consumed.load(Ordering::SeqCst) >= expected
            && self.completed.load(Ordering::SeqCst) >= expected
            && self.buffered.load(Ordering::SeqCst) == 0
            && self.inflight.load(Ordering::SeqCst) == 0
    }
}

type Batch = Pin<Box<dyn Future<Output = Vec<(i32, i64)>> + Send>>;

/// Produces a batch of records and resolves to the input offsets it releases.
fn batch(
    producer: &FutureProducer,
    cfg: &Config,
    records: Vec<(Record, Option<Instant>)>,
    offsets: Vec<(i32, i64)>,
    metrics: &Metrics,
    progress: &Arc<Progress>,
) -> Batch {
    let (producer, metrics, progress) = (producer.clone(), metrics.clone(), progress.clone());
    let alerts_topic = cfg.kafka.alerts_topic.clone();
    let dlq_topic = cfg.kafka.dlq_topic.clone();
    let standing_topic = cfg.kafka.standing_topic.clone();
    Box::pin(async move {
        let sends = records.iter().map(|(rec, since)| {
            let topic = match rec.destination {
                Destination::Alerts => &alerts_topic,
                Destination::DeadLetter => &dlq_topic,
                Destination::Standing => &standing_topic,
            };
            let (producer, metrics, progress) = (&producer, &metrics, &progress);
            async move {
                sink::deliver(producer, topic, rec, metrics).await;
                match rec.destination {
                    Destination::Alerts => {
                        if let Some(t) = since {
                            metrics.event_to_alert.observe(t.elapsed().as_secs_f64());
                        }
                        let h = |k: &str| {
                            rec.headers
                                .iter()
                                .find(|(n, _)| *n == k)
                                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                        };
                        let (rule, sev) = (h("rule").unwrap_or_default(), h("severity").unwrap_or_default());
                        metrics.alerts.with_label_values(&[&rule, &sev]).inc();
                        progress.alerts_delivered.fetch_add(1, Ordering::SeqCst);
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
        });
        futures::future::join_all(sends).await;
        offsets
    })
}

struct Loop {
    cfg: Config,
    metrics: Metrics,
    progress: Arc<Progress>,
    producer: FutureProducer,
    engine: Engine<Token>,
    tracker: OffsetTracker,
    inflight: FuturesUnordered<Batch>,
    last_late: u64,
    last_suppressed: std::collections::HashMap<&'static str, u64>,
    last_evicted: (u64, u64),
}

impl Loop {
    /// Turns an engine step (plus an optional dead letter) into a batch, or completes its offsets
    /// at once when there is nothing to produce.
    fn dispatch(&mut self, step: Step<Token>, current: Option<Token>, dead_letter: Option<Record>) {
        let mut offsets: Vec<(i32, i64)> =
            step.done.iter().filter(|t| !t.recovery).map(|t| (t.partition, t.offset)).collect();
        let mut records = Vec::with_capacity(step.alerts.len() + 1);
        for (alert, cause) in step.alerts.iter().zip(&step.causes) {
            // An alert of a re-read message was delivered before its offset was committed.
            if cause.is_some_and(|i| step.done[i].recovery) {
                self.metrics.recovery_suppressed.inc();
                continue;
            }
            let since = cause.map(|i| step.done[i].received).or(current.map(|t| t.received));
            records.push((sink::alert_record(alert), since));
        }
        if publishes_standing(&self.cfg) {
            records.extend(step.standing.iter().map(|s| (sink::standing_record(s), None)));
        }
        if let Some(dl) = dead_letter.filter(|_| !current.is_some_and(|t| t.recovery)) {
            records.push((dl, None));
            if let Some(t) = current {
                offsets.push((t.partition, t.offset));
            }
        }
        if records.is_empty() {
            self.complete(&offsets);
        } else {
            let b = batch(&self.producer, &self.cfg, records, offsets, &self.metrics, &self.progress);
            self.inflight.push(b);
        }
    }

    fn complete(&mut self, offsets: &[(i32, i64)]) {
        for (p, o) in offsets {
            self.tracker.complete(*p, *o);
        }
        self.progress.completed.fetch_add(offsets.len() as u64, Ordering::SeqCst);
    }

    fn store_offsets(&mut self, consumer: &source::Consumer) {
        for (p, o) in self.tracker.take_storable() {
            if let Err(e) = consumer.store_offset(&self.cfg.kafka.input_topic, p, o) {
                // The partition may have just been revoked; its new owner re-reads from the commit.
                tracing::debug!(partition = p, offset = o, error = %e, "store_offset failed");
            }
        }
    }

    fn publish_gauges(&mut self) {
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
        m.late.inc_by(late - self.last_late);
        self.last_late = late;
        let stats = &self.engine.detector().stats;
        for (rule, n) in &stats.suppressed_by_rule {
            let prev = self.last_suppressed.insert(rule, *n).unwrap_or(0);
            m.suppressed.with_label_values(&[rule]).inc_by(n - prev);
        }
        m.sellers_evicted.with_label_values(&["expired"]).inc_by(stats.sellers_evicted - self.last_evicted.0);
        m.sellers_evicted.with_label_values(&["cap"]).inc_by(stats.sellers_capped - self.last_evicted.1);
        self.last_evicted = (stats.sellers_evicted, stats.sellers_capped);
        self.progress.buffered.store(self.engine.buffered() as u64, Ordering::SeqCst);
        self.progress.inflight.store(self.inflight.len() as u64, Ordering::SeqCst);
    }
}

fn publishes_standing(cfg: &Config) -> bool {
    cfg.standing.enabled && !cfg.kafka.standing_topic.is_empty()
}

/// Fails fast, naming the key to fix, when a topic is missing: producing to a missing topic would
/// otherwise retry forever and consuming one would sit idle.
fn check_topics(consumer: &source::Consumer, cfg: &Config) -> anyhow::Result<()> {
    let k = &cfg.kafka;
    for (key, topic) in [
        ("kafka.input_topic", &k.input_topic),
        ("kafka.alerts_topic", &k.alerts_topic),
        ("kafka.dlq_topic", &k.dlq_topic),
    ] {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(15))
            .map_err(|e| anyhow::anyhow!("cannot reach Kafka at {} (kafka.brokers): {e}", k.brokers))?;
        let ok =
            md.topics().iter().any(|t| t.name() == topic.as_str() && t.error().is_none() && !t.partitions().is_empty());
        anyhow::ensure!(
            ok,
            "topic `{topic}` ({key}) does not exist on {}: create it (the input topic keyed by seller_id, one partition or more per instance) or set {key}",
            k.brokers
        );
    }
    Ok(())
}

/// Runs the service until `shutdown` fires. Returns after in-flight batches are delivered (or
/// `drain_timeout` passed) and stored offsets are committed.
pub async fn run(cfg: Config, metrics: Metrics, mut shutdown: Shutdown, progress: Arc<Progress>) -> anyhow::Result<()> {
    let (changes_tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let lookback = crate::decode::hours_ms(cfg.state.recovery_lookback_hours);
    let consumer = source::create_consumer(&cfg.kafka, lookback, &metrics, changes_tx)?;
    // Metadata calls block: keep them off the async workers where the runtime allows it.
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| check_topics(&consumer, &cfg))?,
        _ => check_topics(&consumer, &cfg)?,
    }
    consumer.subscribe(&[&cfg.kafka.input_topic])?;
    let producer = sink::create_producer(&cfg.kafka)?;
    let mut intake = Intake::new(
        DecodeLimits::from_config(&cfg.input),
        metrics.clone(),
        Duration::from_millis(cfg.service.error_log_interval_ms),
    );
    let mut lp = Loop {
        engine: Engine::new(&cfg)?,
        cfg: cfg.clone(),
        metrics: metrics.clone(),
        progress: progress.clone(),
        producer,
        tracker: OffsetTracker::default(),
        inflight: FuturesUnordered::new(),
        last_late: 0,
        last_suppressed: Default::default(),
        last_evicted: (0, 0),
    };
    let idle_flush = Duration::from_millis(cfg.service.idle_flush_ms);
    let idle_partition = Duration::from_millis(cfg.service.idle_partition_ms);
    let mut at_end: std::collections::HashMap<i32, Instant> = Default::default();
    // Partitions being re-read after assignment: messages below the offset rebuild state only.
    let mut recovering: std::collections::HashMap<i32, i64> = Default::default();
    let mut last_input = Instant::now();
    let mut last_report = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(topic = %cfg.kafka.input_topic, brokers = %cfg.kafka.brokers, group = %cfg.kafka.group_id, "consuming");

    loop {
        let room = lp.inflight.len() < cfg.service.max_in_flight;
        tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            Some(offsets) = lp.inflight.next(), if !lp.inflight.is_empty() => {
                lp.complete(&offsets);
                lp.store_offsets(&consumer);
            }
            Some(change) = changes.recv() => {
                let mut step = Step::default();
                match change {
                    PartitionChange::Assigned(parts, recovery) => {
                        parts.iter().for_each(|p| lp.engine.assign(*p));
                        recovering.extend(recovery);
                    }
                    PartitionChange::Revoked(parts) => {
                        for p in parts {
                            lp.tracker.forget(p);
                            at_end.remove(&p);
                            recovering.remove(&p);
                            let dropped = lp.engine.revoke(p, |t| t.partition == p, &mut step);
                            tracing::info!(partition = p, dropped_buffered = dropped, "partition revoked");
                        }
                    }
                }
                lp.dispatch(step, None, None);
            }
            msg = consumer.recv(), if room => {
                let mut step = Step::default();
                match msg {
                    Ok(m) => {
                        last_input = Instant::now();
                        let (partition, offset) = (m.partition(), m.offset());
                        let recovery = recovering.get(&partition).is_some_and(|c| offset < *c);
                        if !recovery && recovering.remove(&partition).is_some() {
                            tracing::info!(partition, offset, "partition recovered: back to live processing");
                        }
                        let tok = Token { partition, offset, received: last_input, recovery };
                        at_end.remove(&tok.partition);
                        if recovery {
                            progress.recovered.fetch_add(1, Ordering::SeqCst);
                            metrics.recovered.inc();
                        } else {
                            lp.tracker.received(tok.partition, tok.offset);
                            progress.consumed.fetch_add(1, Ordering::SeqCst);
                        }
                        let payload = m.payload().unwrap_or(&[]);
                        let origin = || format!("{}/{}@{}", m.topic(), tok.partition, tok.offset);
                        match intake.take_admitted(payload, origin, |ev| lp.engine.admit(ev)) {
                            Ok(ev) => {
                                lp.engine.push(tok.partition, ev, tok, &mut step);
                                lp.dispatch(step, Some(tok), None);
                            }
                            Err(e) => {
                                let dl = sink::dead_letter_record(m.key(), payload, &e, m.topic(), tok.partition, tok.offset);
                                lp.dispatch(step, Some(tok), Some(dl));
                            }
                        }
                    }
                    Err(KafkaError::PartitionEOF(p)) => {
                        at_end.entry(p).or_insert_with(Instant::now);
                    }
                    Err(e) => {
                        metrics.kafka_errors.inc();
                        if let Some(held) = metrics.allow_log("consume") {
                            tracing::warn!(error = %e, similar_held_back = held, "consume error");
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            _ = tick.tick() => {
                metrics.beat();
                if last_report.elapsed() >= Duration::from_secs(10) {
                    last_report = Instant::now();
                    tracing::info!(
                        consumed = progress.consumed.load(Ordering::SeqCst),
                        completed = progress.completed.load(Ordering::SeqCst),
                        buffered = lp.engine.buffered(),
                        inflight = lp.inflight.len(),
                        sellers = lp.engine.sellers_tracked(),
                        "progress"
                    );
                }
                // Partitions at their end for the grace period stop holding the watermark.
                let idle: Vec<i32> = at_end.iter().filter(|(_, t)| t.elapsed() >= idle_partition).map(|(p, _)| *p).collect();
                for p in idle {
                    at_end.remove(&p);
                    let mut step = Step::default();
                    lp.engine.mark_idle(p, &mut step);
                    lp.dispatch(step, None, None);
                }
                if lp.engine.buffered() > 0 && last_input.elapsed() >= idle_flush {
                    let mut step = Step::default();
                    lp.engine.flush(&mut step);
                    lp.dispatch(step, None, None);
                }
                lp.store_offsets(&consumer);
                lp.publish_gauges();
            }
        }
    }

    // Graceful stop: no more fetching; finish deliveries, store and commit what they release.
    let drain_timeout = Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + drain_timeout;
    while !lp.inflight.is_empty() {
        match tokio::time::timeout_at(deadline, lp.inflight.next()).await {
            Ok(Some(offsets)) => lp.complete(&offsets),
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(
                    batches = lp.inflight.len(),
                    "shutdown: deliveries still pending; their input will be re-read"
                );
                break;
            }
        }
    }
    lp.store_offsets(&consumer);
    lp.publish_gauges();
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        // NoOffset just means nothing new to commit.
        tracing::debug!(error = %e, "final commit");
    }
    tracing::info!(
        consumed = progress.consumed.load(Ordering::SeqCst),
        alerts = progress.alerts_delivered.load(Ordering::SeqCst),
        dead_letters = progress.dead_letters.load(Ordering::SeqCst),
        "stopped"
    );
    Ok(())
}
