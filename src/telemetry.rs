//! Telemetry: Prometheus metrics (`sellerguard_*`, counters `_total`, durations `_seconds`, labels
//! from closed sets only — never a seller id), the `/metrics` + `/healthz` endpoint, tracing set-up,
//! and a rate limiter so that a flood of bad input cannot flood the logs (the counters still see
//! every occurrence).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::alert::Severity;
use crate::decode::{EventType, RejectReason};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub events: IntCounterVec,
    pub rejected: IntCounterVec,
    pub late: IntCounter,
    pub alerts: IntCounterVec,
    pub suppressed: IntCounterVec,
    pub shadow_alerts: IntCounterVec,
    pub snoozed: IntCounterVec,
    /// 1 for the config version in force (label `version`), the old one removed on reload.
    pub config_info: IntGaugeVec,
    pub config_reloads: IntCounterVec,
    pub config_restart_pending: IntGauge,
    pub dead_letters: IntCounter,
    pub standing_updates: IntCounter,
    pub recovered: IntCounter,
    pub recovery_suppressed: IntCounter,
    pub recovery_lost_messages: IntCounter,
    pub recovery_truncated: IntCounter,
    pub observed: IntCounter,
    pub rebuilds: IntCounter,
    pub partitions_owned: IntGauge,
    pub transactions: IntCounterVec,
    pub produce_errors: IntCounterVec,
    pub kafka_errors: IntCounter,
    pub rebalances: IntCounterVec,
    /// Input partitions ceasing (`idle`) or resuming (`hold`) to hold the watermark back.
    pub partition_idle: IntCounterVec,
    pub event_to_alert: Histogram,
    pub sellers_tracked: IntGauge,
    pub buffered_events: IntGauge,
    pub timers_pending: IntGauge,
    pub inflight: IntGauge,
    pub watermark_lag: prometheus::Gauge,
    pub consumer_lag: IntGaugeVec,
    pub sellers_evicted: IntCounterVec,
    /// Seconds since the consumer loop last turned, set at each scrape: the stall watchdog.
    pub loop_stall: prometheus::Gauge,
    /// Unix ms of the consumer loop's last turn: `/healthz` fails when it stalls.
    pub heartbeat_ms: Arc<AtomicI64>,
    /// Shared limiter for error logs raised from many tasks at once (produce retries).
    error_log: Arc<std::sync::Mutex<RateLimitedLog>>,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("metric registered once");
    g
}

/// Every alert rule name, for pre-creating label values so dashboards show zeros, not gaps.
pub const RULES: [&str; 16] = [
    "fake_shipment",
    "rating_manipulation.suspicious_reviews",
    "rating_manipulation.burst",
    "rating_manipulation.ring",
    "rating_manipulation.drip",
    "price_dumping",
    "price_dumping.dump_and_raise",
    "shipping_fee_inflation",
    "false_transactions.order_brushing",
    "false_transactions.repeat_buyers",
    "false_transactions.scanless_delivery",
    "false_transactions.new_account_cluster",
    "phantom_listing",
    "late_dispatch",
    "small_parcel_restriction",
    "slow_response",
];

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let m = Metrics {
            events: counter_vec(&r, "sellerguard_events_total", "Valid input events by type.", &["type"]),
            rejected: counter_vec(
                &r,
                "sellerguard_events_rejected_total",
                "Input messages rejected (and dead-lettered) by reason.",
                &["reason"],
            ),
            late: counter(&r, "sellerguard_events_late_total", "Events that arrived below the watermark."),
            alerts: counter_vec(
                &r,
                "sellerguard_alerts_total",
                "Alerts delivered, by rule and severity.",
                &["rule", "severity"],
            ),
            suppressed: counter_vec(
                &r,
                "sellerguard_alerts_suppressed_total",
                "Alerts held back by the cooldown.",
                &["rule"],
            ),
            shadow_alerts: counter_vec(
                &r,
                "sellerguard_shadow_alerts_total",
                "Alerts of rules in shadow mode (alerts.shadow): evaluated, kept out of the feed.",
                &["rule"],
            ),
            snoozed: counter_vec(
                &r,
                "sellerguard_alerts_snoozed_total",
                "Alerts held back by an analyst's snooze (alerts.snooze_file).",
                &["rule"],
            ),
            config_info: {
                let g = IntGaugeVec::new(
                    Opts::new("sellerguard_config_info", "The config version in force (value 1; label version)."),
                    &["version"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            config_reloads: counter_vec(
                &r,
                "sellerguard_config_reloads_total",
                "Config reloads by result: applied, unchanged, rejected (the old config stays in force).",
                &["result"],
            ),
            config_restart_pending: gauge(
                &r,
                "sellerguard_config_restart_pending",
                "1 when the file's [kafka], [service] or [input] settings differ from those running (apply at restart).",
            ),
            dead_letters: counter(&r, "sellerguard_dead_letters_total", "Messages written to the dead-letter topic."),
            standing_updates: counter(&r, "sellerguard_standing_updates_total", "Seller standing records published."),
            recovered: counter(
                &r,
                "sellerguard_recovery_events_total",
                "Messages re-read after an assignment to rebuild state.",
            ),
            recovery_suppressed: counter(
                &r,
                "sellerguard_recovery_alerts_suppressed_total",
                "Alerts of re-read messages not sent again (sent before the crash or move).",
            ),
            recovery_lost_messages: counter(
                &r,
                "sellerguard_recovery_lost_messages_total",
                "Messages deleted by retention before the group processed them (committed offset older than the oldest retained).",
            ),
            recovery_truncated: counter(
                &r,
                "sellerguard_recovery_truncated_total",
                "Partitions rebuilt from their oldest retained message, younger than the lookback start: retention shorter than state.recovery_lookback_hours, windows start short.",
            ),
            observed: counter(
                &r,
                "sellerguard_observed_events_total",
                "Events of partitions other instances own, read only for the cross-seller views.",
            ),
            rebuilds: counter(
                &r,
                "sellerguard_state_rebuilds_total",
                "State rebuilt from the lookback after a change of owned partitions (start, crash, rebalance).",
            ),
            partitions_owned: gauge(
                &r,
                "sellerguard_partitions_owned",
                "Input partitions whose sellers this instance judges.",
            ),
            transactions: counter_vec(
                &r,
                "sellerguard_transactions_total",
                "Kafka transactions (kafka.delivery = exactly_once), by outcome.",
                &["outcome"],
            ),
            produce_errors: counter_vec(
                &r,
                "sellerguard_produce_errors_total",
                "Failed produce attempts (retried), by topic.",
                &["topic"],
            ),
            kafka_errors: counter(&r, "sellerguard_kafka_errors_total", "Errors reported by the Kafka client."),
            rebalances: counter_vec(
                &r,
                "sellerguard_rebalances_total",
                "Partition assignments and revocations.",
                &["kind"],
            ),
            partition_idle: counter_vec(
                &r,
                "sellerguard_partition_idle_transitions_total",
                "Input partitions that stopped holding the watermark (to=idle: known to be at their end) or hold it again (to=hold: more data fetched, or a broker connection dropped).",
                &["to"],
            ),
            event_to_alert: {
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "sellerguard_event_to_alert_seconds",
                        "From receipt of the event that completed the evidence to the broker's acknowledgement of the alert.",
                    )
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0]),
                )
                .expect("valid metric");
                r.register(Box::new(h.clone())).expect("metric registered once");
                h
            },
            sellers_tracked: gauge(&r, "sellerguard_sellers_tracked", "Sellers with state in memory."),
            buffered_events: gauge(&r, "sellerguard_buffered_events", "Events waiting for the watermark."),
            timers_pending: gauge(&r, "sellerguard_timers_pending", "Event-time timers scheduled."),
            inflight: gauge(&r, "sellerguard_inflight_batches", "Produce batches awaiting acknowledgement."),
            watermark_lag: {
                let g = prometheus::Gauge::new(
                    "sellerguard_watermark_lag_seconds",
                    "Wall clock minus the event-time watermark.",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("metric registered once");
                g
            },
            consumer_lag: {
                let g = IntGaugeVec::new(
                    Opts::new("sellerguard_consumer_lag_messages", "Messages behind the partition end, by partition."),
                    &["partition"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("metric registered once");
                g
            },
            sellers_evicted: counter_vec(
                &r,
                "sellerguard_sellers_evicted_total",
                "Sellers whose state was dropped: expired (idle) or cap (state.max_sellers reached).",
                &["reason"],
            ),
            loop_stall: {
                let g = prometheus::Gauge::new(
                    "sellerguard_consumer_loop_stall_seconds",
                    "Seconds since the consumer loop last turned (healthy: under 1; /healthz fails past 30).",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("metric registered once");
                g
            },
            heartbeat_ms: Arc::new(AtomicI64::new(now_ms())),
            error_log: Arc::new(std::sync::Mutex::new(RateLimitedLog::new(Duration::from_secs(1)))),
            registry: r,
        };
        for reason in ["expired", "cap"] {
            m.sellers_evicted.with_label_values(&[reason]);
        }
        // At 0 from the start: `increase()` misses the sample a series is born with, so an error
        // counter created at the first error hides it from alert rules.
        for d in crate::sink::Destination::ALL {
            m.produce_errors.with_label_values(&[d.label()]);
        }
        for to in ["idle", "hold"] {
            m.partition_idle.with_label_values(&[to]);
        }
        for t in EventType::ALL {
            m.events.with_label_values(&[t.as_str()]);
        }
        for r in RejectReason::ALL {
            m.rejected.with_label_values(&[r.as_str()]);
        }
        for result in ["applied", "unchanged", "rejected"] {
            m.config_reloads.with_label_values(&[result]);
        }
        for rule in RULES {
            m.suppressed.with_label_values(&[rule]);
            m.shadow_alerts.with_label_values(&[rule]);
            m.snoozed.with_label_values(&[rule]);
            for s in Severity::ALL {
                m.alerts.with_label_values(&[rule, s.as_str()]);
            }
        }
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = m.registry.register(Box::new(pc));
        }
        m
    }

    pub fn render(&self) -> String {
        self.loop_stall.set((now_ms() - self.heartbeat_ms.load(Ordering::Relaxed)).max(0) as f64 / 1000.0);
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// `Some(held_back)` when an error line for `key` may be logged now (at most one a second).
    pub fn allow_log(&self, key: &'static str) -> Option<u64> {
        self.error_log.lock().ok()?.allow(key)
    }

    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A consumer loop that has not turned for this long is reported unhealthy.
pub const STALL_AFTER: Duration = Duration::from_secs(30);

/// Serves `/metrics` and `/healthz` until the returned task is aborted. Returns the bound address
/// (port 0 picks a free one).
pub async fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::{http::StatusCode, routing::get, Router};
    let m1 = metrics.clone();
    let m2 = metrics;
    let app =
        Router::new()
            .route(
                "/metrics",
                get(move || {
                    let m = m1.clone();
                    async move {
                        ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render())
                    }
                }),
            )
            .route(
                "/healthz",
                get(move || {
                    let m = m2.clone();
                    async move {
                        let idle = now_ms() - m.heartbeat_ms.load(Ordering::Relaxed);
                        if idle <= STALL_AFTER.as_millis() as i64 {
                            (StatusCode::OK, "ok\n".to_string())
                        } else {
                            (StatusCode::SERVICE_UNAVAILABLE, format!("consumer loop stalled for {idle} ms\n"))
                        }
                    }
                }),
            );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

/// At most one log line per key per interval; reports how many were held back.
pub struct RateLimitedLog {
    interval: Duration,
    last: HashMap<&'static str, (Instant, u64)>,
}

impl RateLimitedLog {
    pub fn new(interval: Duration) -> Self {
        RateLimitedLog { interval, last: HashMap::new() }
    }

    /// Returns `Some(suppressed_since_last)` when a line may be written now.
    pub fn allow(&mut self, key: &'static str) -> Option<u64> {
        let now = Instant::now();
        match self.last.get_mut(key) {
            Some((at, held)) if now.duration_since(*at) < self.interval => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let n = *held;
                *at = now;
                *held = 0;
                Some(n)
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

/// `RUST_LOG`-driven logs to stderr (stdout carries replay's alerts).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions_and_render() {
        let m = Metrics::new();
        m.events.with_label_values(&["review"]).inc();
        let text = m.render();
        for line in text.lines().filter(|l| l.starts_with("# TYPE sellerguard_")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            match kind {
                "counter" => assert!(name.ends_with("_total"), "{name}"),
                "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
                _ => assert!(!name.ends_with("_total"), "{name}"),
            }
        }
        assert!(text.contains("sellerguard_events_total{type=\"review\"} 1"));
        assert!(text.contains("sellerguard_events_rejected_total{reason=\"invalid_json\"} 0"));
    }

    #[test]
    fn rate_limit_holds_back_and_reports() {
        let mut l = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(l.allow("a"), Some(0));
        assert_eq!(l.allow("a"), None);
        assert_eq!(l.allow("b"), Some(0));
        let mut l = RateLimitedLog::new(Duration::ZERO);
        assert_eq!(l.allow("a"), Some(0));
        assert_eq!(l.allow("a"), Some(0));
    }
}
