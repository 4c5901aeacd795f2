//! `sellerguard run`: the Kafka service. One loop owns the clients and the engine:
//!
//! reader message → [`Intake`](crate::intake::Intake) (decode; bad input → dead-letter batch) →
//! [`Engine::push`](crate::engine::Engine::push) → a batch of alerts to produce and the input
//! offsets it releases. Offsets are committed ([`commit`]) only after their batch is acknowledged:
//! at-least-once, or with `kafka.delivery = "exactly_once"` inside a Kafka transaction. The number
//! of batches in flight is capped, so a slow or absent broker pauses consumption instead of
//! growing memory. Ownership changes rebuild state ([`pipeline::Pipeline::rebuild`]).

mod commit;
mod ends;
mod pipeline;
pub mod reload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::StreamExt;
use rdkafka::consumer::Consumer as _;

use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::sink;
use crate::source;
use crate::telemetry::Metrics;

pub use pipeline::{Token, TokenKind};

/// Counters a caller (the demo, tests) can watch to know when the service has caught up.
#[derive(Debug, Default)]
pub struct Progress {
    /// Messages of owned partitions read live (not re-read for recovery).
    pub consumed: AtomicU64,
    pub completed: AtomicU64,
    pub buffered: AtomicU64,
    pub inflight: AtomicU64,
    pub alerts_delivered: AtomicU64,
    pub dead_letters: AtomicU64,
    pub standing_delivered: AtomicU64,
    /// Messages re-read to rebuild state (not counted in `consumed`).
    pub recovered: AtomicU64,
    /// Messages of partitions other instances own (cross-seller views only).
    pub observed: AtomicU64,
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

/// Runs a blocking client call (metadata, transactions) without stalling other async workers.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Fails fast, naming the key to fix, when a topic is missing: producing to a missing topic would
/// otherwise retry forever and consuming one would sit idle.
fn check_topics(consumer: &source::Reader, cfg: &Config) -> anyhow::Result<()> {
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

/// Reads the config file again and switches the engine to it, or keeps the running config and
/// says why. Logged and counted either way.
fn apply_reload(w: &mut reload::Watch, why: &str, lp: &mut pipeline::Pipeline, metrics: &Metrics) {
    let previous = lp.engine().config_version().to_string();
    match w.load().and_then(|c| lp.reload(&c)) {
        Ok(r) => {
            let result = if r.version == previous { "unchanged" } else { "applied" };
            metrics.config_reloads.with_label_values(&[result]).inc();
            let _ = metrics.config_info.remove_label_values(&[&previous]);
            metrics.config_info.with_label_values(&[&r.version]).set(1);
            metrics.config_restart_pending.set(i64::from(!r.restart_pending.is_empty()));
            tracing::info!(trigger = why, result, version = %r.version, previous = %previous, snoozes = r.snoozes, "config reloaded");
            if !r.restart_pending.is_empty() {
                tracing::warn!(sections = ?r.restart_pending, "these sections changed in the file but only apply at a restart; running with the old ones");
            }
        }
        Err(e) => {
            metrics.config_reloads.with_label_values(&["rejected"]).inc();
            tracing::error!(trigger = why, error = %e, version = %previous, "config reload rejected: the running config stays in force");
        }
    }
    w.settle(&lp.engine().config().alerts.snooze_file);
}

/// Runs the service until `shutdown` fires. Returns after in-flight batches are delivered (or
/// the drain timeout passed) and their offsets are committed.
pub async fn run(cfg: Config, metrics: Metrics, shutdown: Shutdown, progress: Arc<Progress>) -> anyhow::Result<()> {
    run_with_reload(cfg, None, metrics, shutdown, progress).await
}

/// [`run`], reloading rule settings and snoozes from `config_path` on SIGHUP or when it changes.
pub async fn run_with_reload(
    cfg: Config,
    config_path: Option<(std::path::PathBuf, reload::Overrides)>,
    metrics: Metrics,
    mut shutdown: Shutdown,
    progress: Arc<Progress>,
) -> anyhow::Result<()> {
    let mut watch = config_path.map(|(p, o)| reload::Watch::new(p, &cfg, o));
    if watch.is_none() {
        reload::ignore_hangups();
    }
    let (changes_tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let committable = Arc::new(Mutex::new(HashMap::new()));
    let lp_owned = Arc::new(Mutex::new(Default::default()));
    let membership = source::create_membership(&cfg.kafka, &metrics, committable.clone(), changes_tx)?;
    let disconnects = Arc::new(AtomicU64::new(0));
    let reader = source::create_reader(&cfg.kafka, &metrics, lp_owned.clone(), disconnects.clone())?;
    let probe = source::Probe {
        prober: Arc::new(source::create_prober(&cfg.kafka)?),
        disconnects,
        topic: std::ffi::CString::new(cfg.kafka.input_topic.as_str())?,
    };
    blocking(|| check_topics(&reader, &cfg))?;
    let producer = sink::create_producer(&cfg.kafka)?;
    let mut committer = commit::Committer::new(&cfg, producer.clone(), committable, &metrics)?;
    membership.subscribe(&[&cfg.kafka.input_topic])?;
    let mut lp = pipeline::Pipeline::new(&cfg, metrics.clone(), progress.clone(), producer, lp_owned, probe)?;
    metrics.config_info.with_label_values(&[lp.engine().config_version()]).set(1);
    let commit_every = Duration::from_millis(cfg.service.commit_interval_ms);
    let mut last_commit = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        topic = %cfg.kafka.input_topic,
        brokers = %cfg.kafka.brokers,
        group = %cfg.kafka.group_id,
        delivery = ?cfg.kafka.delivery,
        "consuming"
    );

    loop {
        let room = lp.inflight.len() < cfg.service.max_in_flight;
        tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            Some(done) = lp.inflight.next(), if !lp.inflight.is_empty() => lp.complete(done),
            Some(change) = changes.recv() => lp.on_change(change, &membership, &reader, &mut committer).await?,
            // Serves rebalances; the member fetches nothing (its partitions are paused).
            m = membership.recv() => {
                if let Err(e) = m {
                    metrics.kafka_errors.inc();
                    if let Some(held) = metrics.allow_log("group") {
                        tracing::warn!(error = %e, similar_held_back = held, "group consumer error");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            msg = reader.recv(), if room && lp.reading() => lp.on_message(msg, &reader).await,
            Some(Some(why)) = async { Some(watch.as_mut()?.next().await) }, if watch.is_some() => {
                if let Some(w) = watch.as_mut() {
                    apply_reload(w, why, &mut lp, &metrics);
                }
            }
            _ = tick.tick() => {
                metrics.beat();
                lp.on_tick(&reader);
                if last_commit.elapsed() >= commit_every {
                    last_commit = Instant::now();
                    if !committer.commit(&mut lp, &membership, false).await? {
                        lp.rebuild_owned(&membership, &reader, &mut committer).await?;
                    }
                }
            }
        }
    }

    // Graceful stop: no more fetching; finish deliveries, commit what they release.
    lp.drain(Duration::from_secs(30)).await;
    committer.commit(&mut lp, &membership, true).await?;
    lp.publish_gauges();
    tracing::info!(
        consumed = progress.consumed.load(Ordering::SeqCst),
        alerts = progress.alerts_delivered.load(Ordering::SeqCst),
        dead_letters = progress.dead_letters.load(Ordering::SeqCst),
        "stopped"
    );
    Ok(())
}
