//! When a partition may stop holding the watermark.
//!
//! The watermark waits for the slowest partition (see [`crate::window::order`]). A partition with
//! nothing to read would hold it forever, so it may be declared *idle*; but a partition declared
//! idle while it still has unread messages lets the others move event time past them, and they are
//! then processed late (timers already fired, windows already moved). That happened after a broker
//! outage: every partition had caught up and gone idle, the broker came back with more data, and
//! the first partition to deliver carried the watermark hours ahead of the other two.
//!
//! So a partition is idle only while the service *knows* it has nothing unread:
//!
//! 1. the reader reached its end (librdkafka's end-of-partition, reported at the end offset of a
//!    fetch answer), and nothing was read from it since;
//! 2. no fetch answer since reports a high watermark past that end (librdkafka keeps the last one
//!    of every partition a fetch covered: [`IdleTracker::fetch_reported`]);
//! 3. the connection to the broker has not dropped since; after a drop the end must be confirmed
//!    again by the broker, asked after the drop ([`IdleTracker::to_confirm`], [`IdleTracker::confirmed`]);
//!    a partition that has read nothing for the grace period without an end of partition is put to
//!    the broker the same way (an end that never comes must not hold the watermark for good);
//! 4. and all of that has held for the grace period (`service.idle_partition_ms`), counted from the
//!    end or from the confirmation, so that producers pausing between batches, or resuming one
//!    partition a moment before another, do not make events late.
//!
//! A partition stops being idle (holds the watermark again at its newest event time) as soon as
//! one of these fails: it delivers, a fetch reports more data, or a connection drops.
//!
//! Synchronous, no I/O, time passed in: the service feeds it what the Kafka clients report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading, or not known to be at its end.
    Reading,
    /// At its end since `since` (the end, or the broker's confirmation after a drop); `confirmed`
    /// is false after a connection drop until the broker answers again.
    AtEnd { since: Instant, confirmed: bool },
    /// Caught up for the grace period: does not hold the watermark.
    Idle,
}

#[derive(Debug, Clone, Copy)]
struct Partition {
    /// Next offset to read as far as the service knows: past the last message read, or the end
    /// offset reported with the end of partition (past transaction markers, which are never read).
    position: i64,
    state: State,
    /// While reading: since when nothing was read or fetched (seen at the first look after).
    quiet_since: Option<Instant>,
}

/// What the tracker asks of the sequencer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Transitions {
    /// Stop holding the watermark.
    pub idle: Vec<i32>,
    /// Hold it again (at the partition's newest event time).
    pub hold: Vec<i32>,
}

/// A request to ask the broker for partitions' end offsets (see [`IdleTracker::to_confirm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub partitions: Vec<i32>,
    /// The answer counts only if no connection dropped after this.
    pub generation: u64,
    pub asked_at: Instant,
}

#[derive(Debug)]
pub struct IdleTracker {
    grace: Duration,
    partitions: BTreeMap<i32, Partition>,
    /// Bumped by every connection drop: answers to older confirmations no longer count.
    generation: u64,
    /// How many are idle: asked at every message, so counted rather than searched.
    idle: usize,
}

impl IdleTracker {
    pub fn new(grace: Duration) -> Self {
        IdleTracker { grace, partitions: BTreeMap::new(), generation: 0, idle: 0 }
    }

    /// Starts over for a new assignment: each partition is read from `start`.
    pub fn reset(&mut self, starts: impl IntoIterator<Item = (i32, i64)>) {
        self.partitions = starts
            .into_iter()
            .map(|(p, s)| (p, Partition { position: s, state: State::Reading, quiet_since: None }))
            .collect();
        self.idle = 0;
    }

    pub fn is_idle(&self, partition: i32) -> bool {
        self.partitions.get(&partition).is_some_and(|p| p.state == State::Idle)
    }

    /// Any partition idle: the caller then checks the fetched high watermarks of those.
    pub fn any_idle(&self) -> bool {
        self.idle > 0
    }

    pub fn idle_partitions(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions.iter().filter(|(_, p)| p.state == State::Idle).map(|(id, _)| *id)
    }

    /// A message at `offset` was read. The caller pushes it to the sequencer, which makes the
    /// partition hold the watermark at its event time again.
    pub fn delivered(&mut self, partition: i32, offset: i64) {
        let p = self.entry(partition);
        p.position = p.position.max(offset.saturating_add(1));
        p.quiet_since = None;
        let was_idle = std::mem::replace(&mut p.state, State::Reading) == State::Idle;
        self.idle -= usize::from(was_idle);
    }

    /// The reader reached the partition's end; `end` is its end offset when known (the high
    /// watermark the fetch reported).
    pub fn reached_end(&mut self, partition: i32, end: Option<i64>, now: Instant) {
        let p = self.entry(partition);
        if let Some(e) = end {
            p.position = p.position.max(e);
        }
        if !matches!(p.state, State::Idle) {
            p.state = State::AtEnd { since: now, confirmed: true };
        }
    }

    /// The high watermark a fetch reported for the partition. Past the position: there is more to
    /// read, so the partition is not caught up (and holds again if it was idle).
    pub fn fetch_reported(&mut self, partition: i32, high_watermark: i64) -> Transitions {
        let mut t = Transitions::default();
        if let Some(p) = self.partitions.get_mut(&partition) {
            if high_watermark > p.position && p.state != State::Reading {
                if p.state == State::Idle {
                    t.hold.push(partition);
                    self.idle -= 1;
                }
                p.state = State::Reading;
                p.quiet_since = None;
            }
        }
        t
    }

    /// A connection to the broker dropped: what was fetched before may be stale, so no partition
    /// counts as caught up until the broker confirms it again.
    pub fn disconnected(&mut self, now: Instant) -> Transitions {
        self.generation += 1;
        self.idle = 0;
        let mut t = Transitions::default();
        for (id, p) in &mut self.partitions {
            match p.state {
                State::Idle => {
                    t.hold.push(*id);
                    p.state = State::AtEnd { since: now, confirmed: false };
                }
                State::AtEnd { since, .. } => p.state = State::AtEnd { since, confirmed: false },
                State::Reading => {}
            }
        }
        t
    }

    /// Partitions at their end whose end the broker must confirm (after a connection drop), if any.
    pub fn to_confirm(&self, now: Instant) -> Option<Confirmation> {
        let partitions: Vec<i32> = (self.partitions.iter())
            .filter(|(_, p)| matches!(p.state, State::AtEnd { confirmed: false, .. }))
            .map(|(id, _)| *id)
            .collect();
        (!partitions.is_empty()).then_some(Confirmation { partitions, generation: self.generation, asked_at: now })
    }

    /// The broker's answer to `asked`: each partition's end offset (`None`: no answer). An end at
    /// or below the position confirms the partition caught up from the time it was asked; past
    /// it, there is more to read.
    pub fn confirmed(&mut self, asked: &Confirmation, ends: &[(i32, Option<i64>)]) {
        if asked.generation != self.generation {
            return; // a connection dropped meanwhile: ask again
        }
        for (id, end) in ends {
            let (Some(p), Some(end)) = (self.partitions.get_mut(id), end) else { continue };
            // Only a question asked since the partition needed one answers it.
            if !matches!(p.state, State::AtEnd { confirmed: false, since } if asked.asked_at >= since) {
                continue;
            }
            if *end <= p.position {
                p.state = State::AtEnd { since: asked.asked_at, confirmed: true };
            } else {
                (p.state, p.quiet_since) = (State::Reading, None);
            }
        }
    }

    /// Partitions that have been confirmed at their end for the grace period: idle from now on.
    /// A partition that has read nothing for the grace period without reaching its end (its end
    /// of partition never came) is put to the broker like one after a drop: idle only once the
    /// broker's end offset is at or below what was read.
    pub fn due(&mut self, now: Instant) -> Transitions {
        let mut t = Transitions::default();
        for (id, p) in &mut self.partitions {
            match p.state {
                State::AtEnd { since, confirmed: true } if now.saturating_duration_since(since) >= self.grace => {
                    p.state = State::Idle;
                    t.idle.push(*id);
                    self.idle += 1;
                }
                State::Reading => match p.quiet_since {
                    None => p.quiet_since = Some(now),
                    Some(q) if now.saturating_duration_since(q) >= self.grace => {
                        (p.state, p.quiet_since) = (State::AtEnd { since: now, confirmed: false }, None);
                    }
                    Some(_) => {}
                },
                _ => {}
            }
        }
        t
    }

    /// Each partition's state, for the progress log: `reading [..] at_end [..] unconfirmed [..]
    /// idle [..]` (a stalled watermark shows here which partition holds it).
    pub fn describe(&self) -> String {
        let of = |want: fn(&State) -> bool| -> Vec<i32> {
            self.partitions.iter().filter(|(_, p)| want(&p.state)).map(|(id, _)| *id).collect()
        };
        format!(
            "reading {:?} at_end {:?} unconfirmed {:?} idle {:?}",
            of(|s| *s == State::Reading),
            of(|s| matches!(s, State::AtEnd { confirmed: true, .. })),
            of(|s| matches!(s, State::AtEnd { confirmed: false, .. })),
            of(|s| *s == State::Idle)
        )
    }

    fn entry(&mut self, partition: i32) -> &mut Partition {
        self.partitions.entry(partition).or_insert(Partition { position: 0, state: State::Reading, quiet_since: None })
    }
}

#[cfg(test)]
mod tests;
