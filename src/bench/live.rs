//! Live runs: traffic published at a fixed rate, stamped at publication, and each alert timed
//! against the event that completed it; the search for the live maximum uses the same runs.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{live_traffic, load, BenchOptions, Latency, Row, Running};
use crate::config::Config;

/// How long a probe of the live maximum runs.
pub(super) const PROBE: Duration = Duration::from_secs(5);
pub(super) const PROBE_NAME: &str = "probe";
/// How long a timed reader may take, after the run, to see what was published or delivered.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How far behind the end of production a run may finish and still count as keeping up.
const SLACK: Duration = Duration::from_millis(250);

pub(super) struct Live {
    pub(super) templates: Vec<load::Template>,
    pub(super) opts: BenchOptions,
}

pub(super) struct LiveResult {
    pub(super) row: Row,
    /// The producer reached its rate and the service caught up within a second of its end.
    pub(super) kept_up: bool,
}

impl Live {
    async fn ensure(&mut self, rate: f64, duration: Duration) -> anyhow::Result<()> {
        let needed = (rate * duration.as_secs_f64()) as usize + 1;
        if self.templates.len() < needed {
            self.templates = live_traffic(&self.opts, needed.max(2 * self.templates.len()))?;
        }
        Ok(())
    }

    /// Publishes the templates to the input topic at `rate` for `duration`, off the async workers.
    async fn publish(&mut self, cfg: &Config, rate: f64, duration: Duration) -> anyhow::Result<load::LiveSent> {
        let templates = std::mem::take(&mut self.templates);
        let (b, topic) = (cfg.kafka.brokers.clone(), cfg.kafka.input_topic.clone());
        let (templates, produced) = tokio::task::spawn_blocking(move || {
            let r = load::produce_live(&b, &topic, &templates, rate, duration);
            (templates, r)
        })
        .await?;
        self.templates = templates;
        produced
    }

    /// Publishes at `rate` and times a plain consumer of the same topic: no service in between.
    pub(super) async fn hop(&mut self, cfg: &Config, rate: f64, duration: Duration) -> anyhow::Result<Row> {
        self.ensure(rate, duration).await?;
        let reader = load::read_timed(&cfg.kafka.brokers, &cfg.kafka.input_topic, load::parse_event)?;
        let sent = self.publish(cfg, rate, duration).await?;
        let seen = tokio::task::spawn_blocking(move || reader.finish(sent.sent, READ_TIMEOUT)).await??;
        anyhow::ensure!(seen.len() >= sent.sent, "the plain consumer saw {} of {} events", seen.len(), sent.sent);
        let latency = latency(&seen, &sent.published)?;
        eprintln!("bench: one hop at {:.0}/s: {latency:?}", sent.achieved);
        Ok(Row {
            name: "broker alone: publish → plain consumer (one hop), 50 % of the live maximum".into(),
            events: sent.sent,
            rate: sent.achieved,
            alerts: None,
            latency: Some(latency),
        })
    }

    pub(super) async fn run(
        &mut self,
        cfg: &Config,
        rate: f64,
        duration: Duration,
        name: &str,
    ) -> anyhow::Result<LiveResult> {
        self.ensure(rate, duration).await?;
        let reader = load::read_timed(&cfg.kafka.brokers, &cfg.kafka.alerts_topic, load::parse_alert)?;
        let svc = Running::start(cfg, self.opts.partitions).await?;
        let load::LiveSent { sent, achieved, flush_lag, published } = self.publish(cfg, rate, duration).await?;
        // Kept up: the broker took everything within SLACK of the last send, and the service read it
        // within SLACK more; a queue that grows during the run shows at its end. (The last events
        // of each partition then wait for the partitions to go idle: the end of a stream, not lag.)
        let deadline = Instant::now() + SLACK;
        while (svc.progress.consumed.load(Ordering::SeqCst) as usize) < sent && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let read_all = svc.progress.consumed.load(Ordering::SeqCst) as usize >= sent;
        let kept_up = flush_lag < SLACK && read_all && achieved >= 0.95 * rate;
        let timed = name != PROBE_NAME;
        // A probe that fell behind stops at once; a measured run is read to its end either way.
        let row = if (kept_up || timed) && svc.caught_up(sent, Duration::from_secs(60)).await? {
            // The last alerts are acknowledged: the reader stops once it has seen them all.
            let alerts = svc.alerts();
            let service = [0.5, 0.99].map(|q| histogram_quantile(&svc.metrics.event_to_alert, q) * 1000.0);
            svc.stop().await?;
            let seen = tokio::task::spawn_blocking(move || reader.finish(alerts, READ_TIMEOUT)).await??;
            anyhow::ensure!(seen.len() >= alerts, "the reader saw {} of {alerts} alerts", seen.len());
            let mut latency = latency(&seen, &published)?;
            latency.service = service;
            eprintln!("bench: live {name} ({achieved:.0}/s): {alerts} alerts, {latency:?}");
            let behind = if kept_up { "" } else { " (fell behind)" };
            Row {
                name: format!("sellerguard, live at {name}{behind}"),
                events: sent,
                rate: achieved,
                alerts: Some(alerts),
                latency: Some(latency),
            }
        } else {
            svc.stop().await?;
            let _ = tokio::task::spawn_blocking(move || reader.finish(0, READ_TIMEOUT)).await;
            // A measured run that did not catch up in a minute: say so rather than show no figures.
            let name = if timed { format!("sellerguard, live at {name} (did not catch up)") } else { name.into() };
            Row { name, events: sent, rate: achieved, alerts: None, latency: None }
        };
        Ok(LiveResult { row, kept_up })
    }
}

/// Event → alert latency: each alert against the publication of the event that completed it.
fn latency(seen: &[load::Seen], published: &load::Published) -> anyhow::Result<Latency> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut unmatched = 0;
    for s in seen {
        match s.event_ms.and_then(|ms| published.get(&(s.seller.clone(), ms))) {
            Some(at) => h.saturating_record(s.at.saturating_duration_since(*at).as_micros().max(1) as u64),
            None => unmatched += 1,
        }
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(Latency {
        samples: h.len(),
        p50: ms(0.5),
        p99: ms(0.99),
        p999: ms(0.999),
        max: h.max() as f64 / 1000.0,
        unmatched,
        service: [f64::NAN; 2],
    })
}

/// A quantile of a Prometheus histogram, interpolated within its bucket as PromQL's
/// `histogram_quantile` does: what a dashboard on this service would show.
fn histogram_quantile(h: &prometheus::Histogram, q: f64) -> f64 {
    use prometheus::core::Collector;
    let Some(m) = h.collect().into_iter().next().and_then(|f| f.get_metric().first().cloned()) else { return f64::NAN };
    let hist = m.get_histogram();
    let total = hist.get_sample_count() as f64;
    if total == 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for b in hist.get_bucket() {
        let (upper, count) = (b.upper_bound(), b.cumulative_count() as f64);
        if count >= rank {
            return lower + (upper - lower) * (rank - below) / (count - below).max(1.0);
        }
        (lower, below) = (upper, count);
    }
    lower
}
