//! Intake: decode one message, and count and log a rejection in the same place, so `run` and
//! `replay` account for bad input identically (a log line and its counter emitted together).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::decode::{decode, DecodeError, DecodeLimits, Event, EventType, RejectReason};
use crate::telemetry::{Metrics, RateLimitedLog};

pub struct Intake {
    limits: DecodeLimits,
    log: RateLimitedLog,
    metrics: Metrics,
    /// `events_total` per type, resolved once: a label lookup per event hashed and locked each time.
    events: [prometheus::IntCounter; EventType::ALL.len()],
    pub accepted: BTreeMap<EventType, u64>,
    pub rejected: BTreeMap<RejectReason, u64>,
}

impl Intake {
    pub fn new(limits: DecodeLimits, metrics: Metrics, log_interval: Duration) -> Self {
        Intake {
            limits,
            log: RateLimitedLog::new(log_interval),
            events: EventType::ALL.map(|t| metrics.events.with_label_values(&[t.as_str()])),
            metrics,
            accepted: BTreeMap::new(),
            rejected: BTreeMap::new(),
        }
    }

    /// Decodes `bytes`; `origin` says where they came from in the log line (offset, line number).
    pub fn take(&mut self, bytes: &[u8], origin: impl FnOnce() -> String) -> Result<Event, DecodeError> {
        self.take_admitted(bytes, origin, |_| Ok(()))
    }

    /// Decodes `bytes` and checks the event with `admit` (the engine's event-time bounds): every kind
    /// of rejection is counted and logged here, and only admitted events count as accepted.
    pub fn take_admitted(
        &mut self,
        bytes: &[u8],
        origin: impl FnOnce() -> String,
        admit: impl FnOnce(&Event) -> Result<(), DecodeError>,
    ) -> Result<Event, DecodeError> {
        match decode(bytes, &self.limits).and_then(|ev| admit(&ev).map(|()| ev)) {
            Ok(ev) => {
                let t = ev.body.event_type();
                *self.accepted.entry(t).or_default() += 1;
                self.events[t as usize].inc();
                Ok(ev)
            }
            Err(e) => {
                *self.rejected.entry(e.reason).or_default() += 1;
                self.metrics.rejected.with_label_values(&[e.reason.as_str()]).inc();
                if let Some(held) = self.log.allow(e.reason.as_str()) {
                    tracing::warn!(reason = e.reason.as_str(), error = %e.detail, at = %origin(), similar_held_back = held, "rejected input");
                }
                Err(e)
            }
        }
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    pub fn accepted_total(&self) -> u64 {
        self.accepted.values().sum()
    }
}
