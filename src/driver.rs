//! One engine driver: input lines (or events decoded elsewhere) in, steps out. `replay`, `eval`,
//! `backtest`, the benches, the examples and the rule tests all feed the engine through it, so
//! decoding, the event-time bounds and the rejection accounting cannot drift apart between them
//! (`eval` once skipped the event-time bounds). Only the Kafka service drives the engine itself:
//! it has partitions, offsets as tokens, and idle and held partitions.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::decode::{DecodeLimits, Event};
use crate::engine::{Engine, Step};
use crate::intake::Intake;
use crate::rules::snooze::Snoozes;
use crate::telemetry::Metrics;

/// The engine behind an intake, fed one line or event at a time. Each event's token is its input
/// line number (events fed with [`Driver::event`] count as lines too).
pub struct Driver {
    engine: Engine<u64>,
    intake: Intake,
    step: Step<u64>,
    lines: u64,
    /// Prefix of the input position in rejection logs ("baseline" → "baseline line 12").
    role: &'static str,
    /// Sellers of accepted events, when asked for ([`Driver::track_sellers`]).
    sellers: Option<BTreeSet<String>>,
}

impl Driver {
    pub fn new(cfg: &Config) -> Result<Driver, ConfigError> {
        Ok(Driver::with_engine(Engine::new(cfg, Snoozes::for_config(cfg)?)?, cfg))
    }

    /// Drives an engine built by the caller (a test clock, say).
    pub fn with_engine(engine: Engine<u64>, cfg: &Config) -> Driver {
        let intake = Intake::new(
            DecodeLimits::from_config(&cfg.input),
            Metrics::new(),
            Duration::from_millis(cfg.service.error_log_interval_ms),
        );
        Driver { engine, intake, step: Step::default(), lines: 0, role: "", sellers: None }
    }

    /// Names the input in rejection logs.
    pub fn role(mut self, role: &'static str) -> Driver {
        self.role = role;
        self
    }

    /// Keeps the set of sellers of accepted events (the honest denominator of `eval`).
    pub fn track_sellers(mut self) -> Driver {
        self.sellers = Some(BTreeSet::new());
        self
    }

    /// One input line (a trailing newline is ignored): decoded, checked against the engine's
    /// event-time bounds (rejections counted and logged by reason), pushed. `out` is handed the
    /// step when it holds alerts or standing records; whatever it leaves there is dropped.
    pub fn line(&mut self, mut line: &[u8], out: &mut impl FnMut(&mut Step<u64>)) {
        self.lines += 1;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        let (n, role, engine) = (self.lines, self.role, &self.engine);
        let origin = || if role.is_empty() { format!("line {n}") } else { format!("{role} line {n}") };
        if let Ok(ev) = self.intake.take_admitted(line, origin, |ev| engine.admit(ev)) {
            self.push(ev, out);
        }
    }

    /// An event decoded elsewhere (benches, rule tests): pushed as the next line, without the
    /// intake's bounds.
    pub fn event(&mut self, ev: Event, out: &mut impl FnMut(&mut Step<u64>)) {
        self.lines += 1;
        self.push(ev, out);
    }

    fn push(&mut self, ev: Event, out: &mut impl FnMut(&mut Step<u64>)) {
        if let Some(s) = self.sellers.as_mut().filter(|s| !s.contains(&*ev.seller_id)) {
            s.insert(ev.seller_id.to_string());
        }
        self.engine.push(0, ev, self.lines, &mut self.step);
        self.hand_over(out);
    }

    /// End of input: everything still buffered for ordering is released.
    pub fn finish(&mut self, out: &mut impl FnMut(&mut Step<u64>)) {
        self.engine.flush(&mut self.step);
        self.hand_over(out);
    }

    fn hand_over(&mut self, out: &mut impl FnMut(&mut Step<u64>)) {
        let s = &mut self.step;
        if !(s.alerts.is_empty() && s.standing.is_empty()) {
            out(s);
            s.alerts.clear();
            s.standing.clear();
        }
        s.done.clear();
        s.causes.clear();
    }

    pub fn engine(&self) -> &Engine<u64> {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine<u64> {
        &mut self.engine
    }

    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// Input lines (and events) fed so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The sellers of accepted events ([`Driver::track_sellers`]; empty without it).
    pub fn take_sellers(&mut self) -> BTreeSet<String> {
        self.sellers.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// Calls `f` with each line of `input` (newline included, if any), reusing one buffer.
pub fn for_each_line(mut input: impl BufRead, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        f(&buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `replay` of a stream dated 2099 admits what a stream dated 2026 does, and stamps alerts
    /// with the data's time: nothing depends on the day it runs.
    #[test]
    fn time_comes_from_the_data_not_the_day_it_runs() {
        let lines = |t0: i64| -> Vec<String> {
            let mut v: Vec<String> = (0..12)
                .map(|i| {
                    let (o, ts) = (format!("o{i}"), t0 + i * 60_000);
                    format!(
                        r#"{{"event_id":"p{i}","type":"order_placed","seller_id":"s","ts":{ts},"order_id":"{o}","listing_id":"l","buyer_id":"b{i}","category":"toys","price":10.0,"quantity":1,"shipping_fee":1.0,"shipping_method":"standard","destination_country":"AU","weight_grams":400,"promised_dispatch_hours":1}}"#
                    )
                })
                .collect();
            // Nothing ships: late_dispatch alerts once the promised hour has passed in event time.
            v.push(format!(
                r#"{{"event_id":"x","type":"seller_reply","seller_id":"s","ts":{},"conversation_id":"c"}}"#,
                t0 + 30 * 86_400_000
            ));
            // A broken clock 40 years ahead is still refused.
            v.push(format!(
                r#"{{"event_id":"y","type":"seller_reply","seller_id":"s","ts":{},"conversation_id":"c"}}"#,
                t0 + 40 * 365 * 86_400_000
            ));
            v
        };
        let run = |t0: i64| {
            let mut d = Driver::new(&Config::default()).unwrap();
            let mut alerts = Vec::new();
            for l in lines(t0) {
                d.line(l.as_bytes(), &mut |s| alerts.append(&mut s.alerts));
            }
            d.finish(&mut |s| alerts.append(&mut s.alerts));
            (alerts, d.intake().accepted_total(), d.intake().rejected_total())
        };
        let (t2026, t2099) = (1_767_571_200_000, 4_070_908_800_000);
        let (a, accepted, rejected) = run(t2026);
        let (b, accepted_b, rejected_b) = run(t2099);
        assert_eq!((accepted, rejected), (13, 1));
        assert_eq!((accepted_b, rejected_b), (13, 1), "a future-dated file is replayed, not refused");
        assert!(!a.is_empty() && a.len() == b.len());
        let year = |s: &str| s[..4].to_string();
        assert!(a.iter().all(|x| year(&x.detected_at) == "2026"), "{:?}", a[0].detected_at);
        assert!(b.iter().all(|x| year(&x.detected_at) == "2099"), "{:?}", b[0].detected_at);
    }
}
