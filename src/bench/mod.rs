//! `sellerguard bench`: the end-to-end measurement through Kafka, printed as one table.
//!
//! 1. A backlog of generated mixed traffic is produced to a fresh input topic.
//! 2. The ceiling: a plain consumer with the service reader's client settings reads it all.
//! 3. The service (the real `service::run`, at-least-once, alerts produced and acknowledged,
//!    offsets committed) processes the same backlog: its maximum sustained rate.
//! 4. Live runs at fractions of that rate: events are stamped with the wall clock as they are
//!    published, in order per partition; an alert reader notes when each alert arrives, and its
//!    latency is arrival − publication of the event that completed it (found by seller and event
//!    time). Timer alerts have no such event and are counted apart.
//!
//! Backlog rates are timed from the consumer's creation (the service's start) to its last message,
//! best of `repeat`; latencies go into an HdrHistogram (µs, 3 significant digits).

mod live;
mod load;
pub mod tansu;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Config;
use crate::gen::{generate, GenConfig};
use crate::service::{self, Progress};
use crate::telemetry::Metrics;
use live::{Live, PROBE, PROBE_NAME};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// An existing broker; `None` starts tansu on loopback.
    pub bootstrap: Option<String>,
    pub partitions: i32,
    pub sellers: usize,
    /// Backlog size for the maximum-rate runs.
    pub events: usize,
    /// Length of each live run.
    pub duration: Duration,
    /// Live loads as fractions of the measured maximum.
    pub loads: Vec<f64>,
    /// `input.allowed_lateness_ms` for the live runs: alerts wait this long (in event time) for
    /// out-of-order events, so it is the floor of their latency. The backlog keeps the config's.
    pub lateness_ms: i64,
    pub repeat: usize,
    pub seed: u64,
    /// Skip the search for the live maximum and use this rate (events/s) instead.
    pub live_rate: Option<f64>,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub events: usize,
    pub rate: f64,
    pub alerts: Option<usize>,
    pub latency: Option<Latency>,
}

/// Event → alert latency of one live run, in milliseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    pub samples: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    /// Alerts without a causing event (timers) or whose event was not found.
    pub unmatched: usize,
    /// p50 and p99 of the service's own `sellerguard_event_to_alert_seconds` (receipt of the event
    /// → the broker's acknowledgement of the alert), as a dashboard computes them from its buckets.
    pub service: [f64; 2],
}

#[derive(Debug, Clone)]
pub struct Report {
    pub header: String,
    pub rows: Vec<Row>,
    pub plain_rate: f64,
    pub max_rate: f64,
}

/// Creates `name` (an existing topic is accepted).
async fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().context("admin client")?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => anyhow::bail!("creating topic {t}: {code:?}"),
        }
    }
    Ok(())
}

/// The real service on its own topics, started in this process.
struct Running {
    metrics: Metrics,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    trigger: crate::shutdown::Trigger,
    progress: Arc<Progress>,
}

impl Running {
    async fn start(cfg: &Config, partitions: i32) -> anyhow::Result<Running> {
        let metrics = Metrics::new();
        let progress = Arc::new(Progress::default());
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(service::run(cfg.clone(), metrics.clone(), shutdown, progress.clone()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while metrics.partitions_owned.get() < partitions as i64 {
            anyhow::ensure!(!task.is_finished(), "the service stopped while joining its group");
            anyhow::ensure!(Instant::now() < deadline, "the service owned no partitions after 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Running { metrics, task, trigger, progress })
    }

    /// Waits until `expected` messages were consumed and everything consumed is processed and
    /// acknowledged; `false` if that took longer than `timeout`.
    async fn caught_up(&self, expected: usize, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        while !self.progress.caught_up(expected as u64) {
            anyhow::ensure!(!self.task.is_finished(), "the service stopped: {:?}", self.progress);
            if Instant::now() > deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(true)
    }

    fn alerts(&self) -> usize {
        self.progress.alerts_delivered.load(Ordering::SeqCst) as usize
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.trigger.fire();
        self.task.await.context("service task")?
    }
}

fn service_config(base: &Config, bootstrap: &str, run: &str, lateness_ms: i64) -> Config {
    let mut cfg = base.clone();
    let k = &mut cfg.kafka;
    k.brokers = bootstrap.to_string();
    k.input_topic = format!("bench-{run}-events");
    k.alerts_topic = format!("bench-{run}-alerts");
    k.dlq_topic = format!("bench-{run}-dlq");
    k.standing_topic = format!("bench-{run}-standing");
    k.group_id = format!("sellerguard-bench-{run}-{}", std::process::id());
    cfg.input.allowed_lateness_ms = lateness_ms;
    // tansu does not answer a waiting fetch when data arrives (Kafka does): with librdkafka's
    // 500 ms default every quiet moment would add up to half a second. Kept if the config sets it.
    cfg.kafka.consumer.entry("fetch.wait.max.ms".into()).or_insert_with(|| READER_FETCH_WAIT_MS.into());
    // The runs end by going quiet: release the last events after 2 s instead of 30.
    cfg.service.idle_flush_ms = IDLE_FLUSH_MS;
    cfg
}

const IDLE_FLUSH_MS: u64 = 2_000;
const LIVE_FRAUD_SHARE: f64 = 0.5;
const READER_FETCH_WAIT_MS: &str = "5";

async fn topics(cfg: &Config, partitions: i32) -> anyhow::Result<()> {
    let k = &cfg.kafka;
    create_topic(&k.brokers, &k.input_topic, partitions).await?;
    for t in [&k.alerts_topic, &k.dlq_topic, &k.standing_topic] {
        create_topic(&k.brokers, t, 1).await?;
    }
    Ok(())
}

fn traffic(opts: &BenchOptions, events: usize, fraud_share: f64) -> anyhow::Result<Vec<(String, String)>> {
    let gen = GenConfig {
        seed: opts.seed,
        sellers: opts.sellers,
        target_events: Some(events),
        fraud_share,
        ..GenConfig::default()
    };
    let mut lines = Vec::with_capacity(events + events / 10);
    generate(&gen, &mut |k, l| lines.push((k.to_string(), l.to_string())))
        .map_err(|e| anyhow::anyhow!("generator: {e}"))?;
    Ok(lines)
}

/// Live traffic: `events` generated events after the generator's warm-up days (listings and honest
/// trade only, no fraud yet), so that the live runs produce alerts to time.
fn live_traffic(opts: &BenchOptions, events: usize) -> anyhow::Result<Vec<load::Template>> {
    let g = GenConfig::default();
    let warm_end = g.start_ms + i64::from(g.warmup_days) * 86_400_000;
    let after = |l: &str| {
        let ts = l.split(r#""ts":""#).nth(1).and_then(|r| r.split('"').next());
        ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).is_some_and(|t| t.timestamp_millis() >= warm_end)
    };
    // The warm-up's size depends on the sellers, not on the target: ask for more until enough.
    let mut want = events * 2;
    loop {
        // Half the sellers cheat, so that a run of seconds has alerts enough to time.
        let lines = traffic(opts, want, LIVE_FRAUD_SHARE)?;
        let templates: Vec<load::Template> = lines
            .iter()
            .filter(|(_, l)| after(l))
            .take(events)
            .filter_map(|(k, l)| load::Template::new(k, l))
            .collect();
        if templates.len() == events {
            return Ok(templates);
        }
        anyhow::ensure!(want < events * 1_000, "generated {} live events of {events}", templates.len());
        want *= 4;
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name"))?.split(':').nth(1).map(|m| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// The broker each measurement runs against: the given one, or a fresh tansu per measurement
/// (its sqlite engine slows down as its database fills, which would bias later runs).
struct Brokers {
    given: Option<String>,
    current: Option<tansu::Tansu>,
}

impl Brokers {
    fn fresh(&mut self) -> anyhow::Result<String> {
        if let Some(b) = &self.given {
            return Ok(b.clone());
        }
        self.current = None;
        let t = tansu::Tansu::start()?;
        let b = t.bootstrap();
        self.current = Some(t);
        Ok(b)
    }
}

pub async fn run(base: &Config, opts: &BenchOptions) -> anyhow::Result<Report> {
    let mut brokers = Brokers { given: opts.bootstrap.clone(), current: None };
    let first = brokers.fresh()?;
    let broker_name = match &brokers.current {
        Some(t) => format!("{} (sqlite) on loopback, a fresh one per run", t.version()),
        None => format!("broker {first}"),
    };
    let header = format!(
        "sellerguard bench · {} · {} · {broker_name} · {} partitions · {} sellers · input.allowed_lateness_ms = {} live, {} backlog",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        opts.partitions,
        opts.sellers,
        opts.lateness_ms,
        base.input.allowed_lateness_ms
    );
    eprintln!("bench: {header}");

    // 1–3. Backlog: produced, read by a plain consumer, then by the service; best of `repeat`.
    let lines = Arc::new(traffic(opts, opts.events, GenConfig::default().fraud_share)?);
    // What the service must deliver: `sellerguard replay` of the same traffic.
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let replayed: u64 = crate::replay::replay(base, text.as_bytes(), |_| {})?.alerts.values().sum();
    drop(text);
    let (mut produce_rate, mut plain_rate, mut max_rate, mut max_alerts) = (0.0f64, 0.0f64, 0.0f64, 0);
    for i in 0..opts.repeat {
        let bootstrap = if i == 0 { first.clone() } else { brokers.fresh()? };
        // The backlog keeps the generator's event times, out of order by up to 4 minutes as the
        // event contract allows: the configured lateness applies, so its alerts are the replay's.
        let cfg = service_config(base, &bootstrap, "backlog", base.input.allowed_lateness_ms);
        topics(&cfg, opts.partitions).await?;
        let (input, l2) = (cfg.kafka.input_topic.clone(), lines.clone());
        let b2 = bootstrap.clone();
        let p = tokio::task::spawn_blocking(move || load::produce_backlog(&b2, &input, &l2)).await??;
        produce_rate = produce_rate.max(p);

        let mut plain = cfg.clone();
        plain.kafka.group_id.push_str("-plain");
        let client = crate::source::reader_config(&plain.kafka);
        let c = load::plain_consume(client, &cfg.kafka.input_topic, lines.len(), Duration::from_secs(300)).await?;
        plain_rate = plain_rate.max(c);

        let (r, alerts) = backlog_run(&cfg, opts.partitions, lines.len()).await?;
        // At least once: a clean run delivers each alert once, so the count must be the replay's.
        anyhow::ensure!(
            alerts as u64 == replayed,
            "backlog run {i}: the service delivered {alerts} alerts, replay of the same traffic gives {replayed}"
        );
        eprintln!(
            "bench: backlog run {i}: produce {p:.0}/s, plain consumer {c:.0}/s, sellerguard {r:.0}/s ({alerts} alerts)"
        );
        if r > max_rate {
            (max_rate, max_alerts) = (r, alerts);
        }
    }
    let n = lines.len();
    drop(lines);
    let mut rows = vec![
        Row {
            name: "produce the backlog (acks=all)".into(),
            events: n,
            rate: produce_rate,
            alerts: None,
            latency: None,
        },
        Row {
            name: "plain consumer (the service reader's settings)".into(),
            events: n,
            rate: plain_rate,
            alerts: None,
            latency: None,
        },
        Row {
            name: "sellerguard, backlog (maximum; alerts = replay's)".into(),
            events: n,
            rate: max_rate,
            alerts: Some(max_alerts),
            latency: None,
        },
    ];

    // 4. The live maximum: the highest rate at which producer, broker and service, sharing this
    // machine, keep up. Doubling from 1,000/s (up to the backlog maximum), then bisecting to within 15 %.
    let mut live = Live { templates: Vec::new(), opts: opts.clone() };
    let (mut good, mut bad) = (opts.live_rate.unwrap_or(0.0), None);
    let mut rate = 1_000.0f64;
    let mut probe = 0;
    while opts.live_rate.is_none() {
        let cfg = service_config(base, &brokers.fresh()?, "probe", opts.lateness_ms);
        probe += 1;
        topics(&cfg, opts.partitions).await?;
        let r = live.run(&cfg, rate, PROBE, PROBE_NAME).await?;
        eprintln!("bench: probe at {rate:.0}/s: {}", if r.kept_up { "kept up" } else { "fell behind" });
        if r.kept_up {
            good = rate;
        } else {
            bad = Some(rate);
        }
        rate = match bad {
            // The backlog maximum bounds the search: live runs also carry the producer's load.
            None if rate < max_rate => (rate * 2.0).min(max_rate),
            None => break,
            Some(b) if good == 0.0 && b > 100.0 => b / 2.0,
            Some(b) if good > 0.0 && b / good > 1.15 && probe < 12 => (b * good).sqrt(),
            Some(_) => break,
        };
    }
    anyhow::ensure!(good > 0.0, "the service could not keep up with 100 events/s live");
    let how = if opts.live_rate.is_some() {
        "given by --live-rate"
    } else {
        "producer + broker + sellerguard on this machine"
    };
    rows.push(Row { name: format!("live maximum ({how})"), events: 0, rate: good, alerts: None, latency: None });

    // 5. The broker's own floor: one hop (publish → a plain consumer sees it) at half the live
    // maximum. An alert takes two hops (the event in, the alert out) plus the service.
    let cfg = service_config(base, &brokers.fresh()?, "hop", opts.lateness_ms);
    topics(&cfg, opts.partitions).await?;
    rows.push(live.hop(&cfg, 0.5 * good, opts.duration).await?);

    // 6. Latency at fractions of the live maximum.
    for load in &opts.loads {
        let cfg = service_config(base, &brokers.fresh()?, "live", opts.lateness_ms);
        topics(&cfg, opts.partitions).await?;
        let name = format!("{:.0} % of the live maximum", load * 100.0);
        rows.push(live.run(&cfg, load * good, opts.duration, &name).await?.row);
    }
    Ok(Report { header, rows, plain_rate, max_rate })
}

/// The service through a backlog: events/s from its start until every message is through (done,
/// alerts acknowledged, or waiting for the watermark, which at the end of a stream moves only once
/// the partitions go idle), and the alerts it delivered.
async fn backlog_run(cfg: &Config, partitions: i32, n: usize) -> anyhow::Result<(f64, usize)> {
    let t0 = Instant::now();
    let svc = Running::start(cfg, partitions).await?;
    let deadline = t0 + Duration::from_secs(600);
    let through = |p: &Progress| p.completed.load(Ordering::SeqCst) + p.buffered.load(Ordering::SeqCst);
    while through(&svc.progress) < n as u64 {
        anyhow::ensure!(!svc.task.is_finished(), "the service stopped: {:?}", svc.progress);
        anyhow::ensure!(Instant::now() < deadline, "the service did not get through the backlog: {:?}", svc.progress);
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let r = n as f64 / t0.elapsed().as_secs_f64();
    anyhow::ensure!(svc.caught_up(n, Duration::from_secs(600)).await?, "the backlog never caught up");
    let alerts = svc.alerts();
    svc.stop().await?;
    Ok((r, alerts))
}

/// The table, in Markdown.
pub fn render(r: &Report) -> String {
    let mut out = format!("{}\n\n", r.header);
    out.push_str(&format!(
        "Rates: backlog rows from the consumer's creation (the service's start) to the last message, best of the runs. Live rows: generated \
         traffic ({:.0} % of sellers cheating) stamped at publication, producer linger 5 ms; latency = \
         alert seen by a reader − event handed to the producer (HdrHistogram); `service` = the service's \
         own sellerguard_event_to_alert_seconds (receipt → alert acknowledged) as histogram_quantile \
         reads it. Service settings: reader fetch.wait.max.ms = {READER_FETCH_WAIT_MS}, \
         service.idle_flush_ms = {IDLE_FLUSH_MS}.\n\n",
        LIVE_FRAUD_SHARE * 100.0
    ));
    out.push_str("| run | events | events/s | of plain consumer | alerts | p50 ms | p99 ms | p99.9 ms | max ms | latency samples | service p50 / p99 ms |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in &r.rows {
        let share =
            if r.plain_rate > 0.0 { format!("{:.0} %", 100.0 * row.rate / r.plain_rate) } else { String::new() };
        let alerts = row.alerts.map_or(String::new(), |a| a.to_string());
        let lat = match &row.latency {
            Some(l) => format!(
                "{:.2} | {:.2} | {:.2} | {:.2} | {} (+{} timer) | {:.2} / {:.2}",
                l.p50, l.p99, l.p999, l.max, l.samples, l.unmatched, l.service[0], l.service[1]
            ),
            None => " | | | | | ".into(),
        };
        out.push_str(&format!("| {} | {} | {:.0} | {share} | {alerts} | {lat} |\n", row.name, row.events, row.rate));
    }
    out
}
