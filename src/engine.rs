//! The engine: event-time ordering ([`Sequencer`]) in front of the rules ([`Detector`]).
//! Synchronous and free of I/O: `replay`, `run` (Kafka), tests and benchmarks all drive this same
//! type. Each token `T` stands for where an event came from (a Kafka offset, a line number); the
//! engine hands tokens back once their event has been processed, with the alerts of that step.

use std::collections::{BTreeMap, HashSet};

use crate::alert::{rfc3339, Alert};
use crate::config::{Config, ConfigError};
use crate::decode::{DecodeError, Event, EventType, Millis, RejectReason};
use crate::rules::snooze::Snoozes;
use crate::rules::standing::Standing;
use crate::rules::Detector;
use crate::window::{Admission, Sequencer};

/// Output of one engine call: the tokens whose events are now fully processed, and the alerts
/// produced meanwhile (by those events or by timers). A token may be committed only once the
/// step's alerts are safely delivered.
#[derive(Debug)]
pub struct Step<T> {
    pub done: Vec<T>,
    pub alerts: Vec<Alert>,
    /// For each alert, the index in `done` of the event whose arrival produced it (`None` for
    /// timers fired by a flush or an idle partition): the start of its event-to-alert latency.
    pub causes: Vec<Option<usize>>,
    /// Seller standing records published meanwhile (key = seller id, compacted topic).
    pub standing: Vec<Standing>,
}

impl<T> Default for Step<T> {
    fn default() -> Self {
        Step { done: Vec::new(), alerts: Vec::new(), causes: Vec::new(), standing: Vec::new() }
    }
}

impl<T> Step<T> {
    pub fn is_empty(&self) -> bool {
        self.done.is_empty() && self.alerts.is_empty() && self.standing.is_empty()
    }
}

#[derive(Debug, Default, Clone)]
pub struct EngineStats {
    /// Indexed by `EventType as usize` (a map lookup per event showed in profiles).
    pub events_by_type: [u64; EventType::ALL.len()],
    pub processed: u64,
    pub late: u64,
    /// Live alerts (the feed) by rule.
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Alerts of rules in shadow mode, by rule.
    pub shadow_by_rule: BTreeMap<String, u64>,
    /// Alerts held back by a snooze, by rule.
    pub snoozed_by_rule: BTreeMap<String, u64>,
}

/// What a hot reload did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reloaded {
    pub version: String,
    pub previous_version: String,
    /// Sections that differ from the running ones but only apply at a restart (kept as running).
    pub restart_pending: Vec<&'static str>,
    pub snoozes: usize,
}

pub type WallClock = Box<dyn Fn() -> Millis + Send>;

pub struct Engine<T> {
    detector: Detector,
    /// Tokens travel with the partition they were read from.
    seq: Sequencer<(i32, T)>,
    /// Partitions whose sellers this instance judges; events of the others only feed the
    /// cross-seller views. `None`: all of them (replay, a single instance).
    owned: Option<HashSet<i32>>,
    /// How far ahead of the newest event time seen, and behind the watermark, an event may be.
    time_bounds: (i64, i64),
    /// The wall clock (the service's); `None`: time comes from the data alone (`replay`, `eval`,
    /// `backtest`), so what they admit and stamp never depends on the day they run.
    clock: Option<WallClock>,
    /// [`Config::version`] of the config in force: stamped on every alert.
    version: String,
    snoozes: Snoozes,
    pub stats: EngineStats,
}

/// Judge the event if its partition is ours, else let it feed only the cross-seller views.
fn process(detector: &mut Detector, owned: &Option<HashSet<i32>>, partition: i32, ev: &Event, out: &mut Vec<Alert>) {
    if owned.as_ref().is_none_or(|o| o.contains(&partition)) {
        detector.on_event_from(partition, ev, out);
    } else {
        detector.observe(ev, out);
    }
}

impl<T> Engine<T> {
    /// An engine for `cfg` with the snoozes in force (the caller reads the snooze file:
    /// [`Snoozes::for_config`]; the engine does no I/O).
    pub fn new(cfg: &Config, snoozes: Snoozes) -> Result<Self, ConfigError> {
        Ok(Engine {
            detector: Detector::new(cfg)?,
            seq: Sequencer::new(cfg.input.allowed_lateness_ms),
            owned: None,
            time_bounds: (cfg.input.max_event_time_ahead_ms, cfg.input.max_event_time_behind_ms),
            clock: None,
            version: cfg.version(),
            snoozes,
            stats: EngineStats::default(),
        })
    }

    /// The snoozes in force.
    pub fn snoozes(&self) -> &Snoozes {
        &self.snoozes
    }

    /// The version of the config in force ([`Config::version`]).
    pub fn config_version(&self) -> &str {
        &self.version
    }

    /// The config in force (after hot reloads).
    pub fn config(&self) -> &Config {
        self.detector.config()
    }

    /// Hot reload: rule settings from `file` and the snoozes read with it, keeping all state. `[kafka]`,
    /// `[service]` and `[input]` stay as running (they shape clients and event-time bounds; a
    /// difference is reported as pending a restart). On any error nothing changes.
    pub fn reload(&mut self, file: &Config, snoozes: Snoozes) -> Result<Reloaded, ConfigError> {
        let running = self.detector.config();
        let mut next = file.clone();
        let mut restart_pending = Vec::new();
        macro_rules! keep {
            ($($section:ident),*) => {$(
                if serde_json::to_value(&next.$section).ok() != serde_json::to_value(&running.$section).ok() {
                    restart_pending.push(stringify!($section));
                }
                next.$section = running.$section.clone();
            )*};
        }
        keep!(kafka, service, input);
        self.detector.reload(&next)?;
        let previous_version = std::mem::replace(&mut self.version, next.version());
        self.snoozes = snoozes;
        Ok(Reloaded { version: self.version.clone(), previous_version, restart_pending, snoozes: self.snoozes.len() })
    }

    /// A wall clock: for `detected_at` and the "ahead" bound of [`Engine::admit`] (the service
    /// passes the system clock; tests a fixed one). Without one, time comes from the data.
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Now, for `detected_at`: the wall clock, or without one the newest event time seen.
    fn now(&self) -> Millis {
        self.clock.as_ref().map_or(self.seq.max_seen(), |c| c())
    }

    pub fn watermark(&self) -> Millis {
        self.seq.watermark()
    }

    /// Every partition read has caught up: see [`Sequencer::all_idle`].
    pub fn input_idle(&self) -> bool {
        self.seq.all_idle()
    }

    pub fn buffered(&self) -> usize {
        self.seq.buffered()
    }

    pub fn sellers_tracked(&self) -> usize {
        self.detector.sellers_tracked()
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The partition is read: it holds the watermark until it delivers or goes idle.
    pub fn assign(&mut self, partition: i32) {
        self.seq.assign(partition);
    }

    /// Judge only the sellers of these partitions (scale-out); the rest feed cross-seller views.
    pub fn set_owned(&mut self, owned: impl IntoIterator<Item = i32>) {
        self.owned = Some(owned.into_iter().collect());
    }

    fn process(&mut self, partition: i32, event: &Event, alerts: &mut Vec<crate::alert::Alert>) {
        process(&mut self.detector, &self.owned, partition, event, alerts);
    }

    /// The partition is caught up: stop waiting for it.
    pub fn mark_idle(&mut self, partition: i32, step: &mut Step<T>) {
        self.seq.mark_idle(partition);
        self.drain(step);
    }

    /// The partition may have unread events after all: it holds the watermark again (see
    /// [`crate::source::idle`]). Nothing is released by holding.
    pub fn hold(&mut self, partition: i32) {
        self.seq.hold(partition);
    }

    /// Is the event's time plausible? Callers dead-letter it when not: one event stamped years ahead
    /// must not move event time (and fire every timer) for everyone. "Ahead" is measured from the
    /// later of the newest event time seen and the wall clock: a quiet night in a sparse stream, a
    /// lagging partition or a replay of last year's data never looks early, an event from the future
    /// always does. Without a wall clock (time from the data) nothing tells a quiet spell from a
    /// broken clock but the size of the jump: an event may then lead the stream by as much as state
    /// reaches back (`input.max_event_time_behind_ms`), and past that it would jump over everything
    /// the engine holds. "Behind" is measured from the watermark: state that old is gone.
    pub fn admit(&self, ev: &Event) -> Result<(), DecodeError> {
        let (ahead, behind) = self.time_bounds;
        let (reference, ahead) = match &self.clock {
            Some(clock) => (self.seq.max_seen().max(clock()), ahead),
            None => (self.seq.max_seen(), ahead.max(behind)),
        };
        let wm = self.seq.watermark();
        let detail = if reference > Millis::MIN && ev.ts > reference.saturating_add(ahead) {
            let (of, key) = match self.clock {
                Some(_) => ("the stream and the clock", "input.max_event_time_ahead_ms"),
                None => (
                    "the stream (time from the data)",
                    "input.max_event_time_ahead_ms, widened to input.max_event_time_behind_ms without a wall clock",
                ),
            };
            format!("`ts` {} is more than {ahead} ms ahead of {of} ({}; {key})", rfc3339(ev.ts), rfc3339(reference))
        } else if wm > Millis::MIN && ev.ts < wm.saturating_sub(behind) {
            format!(
                "`ts` {} is more than {behind} ms behind the watermark ({}; input.max_event_time_behind_ms)",
                rfc3339(ev.ts),
                rfc3339(wm)
            )
        } else {
            return Ok(());
        };
        Err(DecodeError { reason: RejectReason::EventTimeOutOfBounds, detail })
    }

    /// Add one decoded event read from `partition`.
    pub fn push(&mut self, partition: i32, event: Event, token: T, step: &mut Step<T>) {
        self.stats.events_by_type[event.body.event_type() as usize] += 1;
        match self.seq.push(partition, event, (partition, token)) {
            Admission::Buffered => self.drain(step),
            Admission::Late(event, (partition, token)) => {
                // Timers have already fired up to the watermark; the late event joins its windows
                // as they are now. Counted so operators see when the lateness bound is too tight.
                self.stats.late += 1;
                let start = step.alerts.len();
                self.process(partition, &event, &mut step.alerts);
                self.stats.processed += 1;
                step.causes.resize(step.alerts.len(), Some(step.done.len()));
                step.done.push(token);
                self.finish(step, start);
            }
        }
    }

    /// The input is caught up (end of file, or idle): release everything buffered.
    pub fn flush(&mut self, step: &mut Step<T>) {
        self.seq.flush();
        self.drain(step);
    }

    fn drain(&mut self, step: &mut Step<T>) {
        let start = step.alerts.len();
        while let Some(ready) = self.seq.next_ready() {
            // Read in place (see `next_ready`): the sequencer and the detector are apart.
            if let Some((event, (partition, _))) = self.seq.ready(&ready) {
                // Timers due at or before this event fire first, whatever the arrival order was.
                self.detector.fire_timers(event.ts, &mut step.alerts);
                process(&mut self.detector, &self.owned, *partition, event, &mut step.alerts);
            }
            self.stats.processed += 1;
            step.causes.resize(step.alerts.len(), Some(step.done.len()));
            step.done.extend(self.seq.release(ready).map(|(_, token)| token));
        }
        // Timers due at or before the watermark: every event before them is in, and any event still
        // to come at their time would let them fire first anyway.
        let wm = self.seq.watermark();
        if wm > Millis::MIN {
            self.detector.fire_timers(wm, &mut step.alerts);
            step.causes.resize(step.alerts.len(), None);
        }
        self.finish(step, start);
    }

    fn snoozed(&self, a: &Alert) -> Option<&crate::rules::snooze::Snooze> {
        if self.snoozes.is_empty() {
            return None;
        }
        let ts = chrono::DateTime::parse_from_rfc3339(&a.event_time).ok()?.timestamp_millis();
        self.snoozes.matching(a, ts)
    }

    fn finish(&mut self, step: &mut Step<T>, start: usize) {
        self.detector.take_standing_into(&mut step.standing);
        if step.alerts.len() == start {
            return;
        }
        let now = rfc3339(self.now());
        let mut i = start;
        while i < step.alerts.len() {
            let a = &mut step.alerts[i];
            a.detected_at.clone_from(&now);
            a.config_version.clone_from(&self.version);
            if let Some(s) = self.snoozed(a) {
                // Logged one by one: an analyst asked for exactly these to be held back.
                tracing::info!(seller = %a.seller_id, rule = %a.rule, alert_id = %a.alert_id, until = %rfc3339(s.until), reason = %s.reason, "alert snoozed");
                *self.stats.snoozed_by_rule.entry(a.rule.clone()).or_default() += 1;
                step.alerts.remove(i);
                if i < step.causes.len() {
                    step.causes.remove(i);
                }
                continue;
            }
            let by_rule = if a.shadow { &mut self.stats.shadow_by_rule } else { &mut self.stats.alerts_by_rule };
            *by_rule.entry(a.rule.clone()).or_default() += 1;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, DecodeLimits};
    use rand::{Rng, SeedableRng};

    fn run(cfg: &Config, events: &[Event]) -> (Vec<Alert>, u64) {
        let mut e: Engine<usize> = Engine::new(cfg, Snoozes::default()).unwrap().with_clock(Box::new(|| 0));
        let mut step = Step::default();
        for (i, ev) in events.iter().enumerate() {
            e.push(0, ev.clone(), i, &mut step);
        }
        e.flush(&mut step);
        assert_eq!(step.done.len(), events.len(), "every event is processed exactly once");
        let mut alerts = step.alerts;
        alerts.sort_by(|a, b| a.alert_id.cmp(&b.alert_id));
        (alerts, e.stats.late)
    }

    #[test]
    fn an_event_stamped_far_ahead_is_refused_and_moves_nothing() {
        let cfg = Config::default();
        let mut e: Engine<usize> = Engine::new(&cfg, Snoozes::default()).unwrap();
        let limits = DecodeLimits::default();
        let ev = |id: &str, ts: i64| {
            let line =
                format!(r#"{{"event_id":"{id}","type":"order_delivered","seller_id":"s","ts":{ts},"order_id":"o"}}"#);
            decode(line.as_bytes(), &limits).unwrap()
        };
        let t0 = 1_767_607_200_000;
        let first = ev("a", t0);
        assert!(e.admit(&first).is_ok());
        let mut step = Step::default();
        e.push(0, first, 0, &mut step);
        // A quiet week later is fine: history replays far behind the wall clock.
        assert!(e.admit(&ev("q", t0 + 7 * 86_400_000)).is_ok());
        let years_ahead = ev("b", t0 + 40 * 365 * 86_400_000);
        let err = e.admit(&years_ahead).unwrap_err();
        assert_eq!(err.reason, RejectReason::EventTimeOutOfBounds);
        assert!(err.detail.contains("input.max_event_time_ahead_ms"), "{err}");
        // Live: with the clock at the stream's time, 50 minutes ahead is within the bound, 2 h is not.
        let live: Engine<usize> = Engine::new(&cfg, Snoozes::default()).unwrap().with_clock(Box::new(move || t0));
        assert!(live.admit(&ev("c", t0 + 3_000_000)).is_ok());
        assert!(live.admit(&ev("c2", t0 + 7_200_000)).is_err());
        // Far behind the watermark once it exists.
        e.flush(&mut step);
        assert_eq!(e.admit(&ev("d", t0 - 61 * 86_400_000)).unwrap_err().reason, RejectReason::EventTimeOutOfBounds);
        assert!(e.admit(&ev("e", t0 - 59 * 86_400_000)).is_ok());
    }

    /// The contract: results do not depend on arrival order within the allowed lateness.
    #[test]
    fn arrival_order_within_the_lateness_bound_does_not_change_alerts() {
        let mut events = Vec::new();
        let gcfg = crate::gen::GenConfig { sellers: 60, days: 9, fraud_share: 0.2, ..Default::default() };
        let limits = DecodeLimits::default();
        crate::gen::generate(&gcfg, &mut |_, l| events.push(decode(l.as_bytes(), &limits).unwrap())).unwrap();
        let cfg = Config::default();
        let (reference, late) = run(&cfg, &events);
        assert_eq!(late, 0);
        assert!(reference.len() > 10, "traffic must produce alerts to compare");

        // Re-order: each event moves by a random delay of up to 4.5 minutes.
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut keyed: Vec<(i64, Event)> =
            events.iter().map(|e| (e.ts + rng.random_range(0..270_000), e.clone())).collect();
        keyed.sort_by_key(|(k, _)| *k);
        let shuffled: Vec<Event> = keyed.into_iter().map(|(_, e)| e).collect();
        assert_ne!(shuffled, events);
        let (alerts, late) = run(&cfg, &shuffled);
        assert_eq!(late, 0);
        assert_eq!(alerts, reference);

        // Without the ordering buffer the same shuffle is visible: the test can tell.
        let mut strict = cfg.clone();
        strict.input.allowed_lateness_ms = 0;
        let (_, late) = run(&strict, &shuffled);
        assert!(late > 0);
    }
}
