//! The tracker alone, then driving a [`Sequencer`] through the interleavings that made events late.

use std::time::{Duration, Instant};

use super::*;
use crate::decode::{Body, Event, Millis};
use crate::window::order::{Admission, Sequencer};

const GRACE: Duration = Duration::from_secs(3);
const HOUR: Millis = 3_600_000;

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn ev(id: &str, ts: Millis) -> Event {
    Event { event_id: id.into(), seller_id: "s".into(), ts, body: Body::SellerReply { conversation_id: "c".into() } }
}

#[test]
fn idle_only_after_the_grace_period_at_the_end() {
    let t0 = Instant::now();
    let mut t = IdleTracker::new(GRACE);
    t.reset([(0, 0)]);
    t.delivered(0, 9);
    t.reached_end(0, Some(10), at(t0, 0));
    assert_eq!(t.due(at(t0, 2_999)).idle, Vec::<i32>::new());
    assert_eq!(t.due(at(t0, 3_000)).idle, [0]);
    assert!(t.is_idle(0));
    // Delivering again: not idle, and a new end starts a new grace period.
    t.delivered(0, 10);
    assert!(!t.is_idle(0));
    t.reached_end(0, Some(11), at(t0, 5_000));
    assert_eq!(t.due(at(t0, 7_000)).idle, Vec::<i32>::new());
    assert_eq!(t.due(at(t0, 8_000)).idle, [0]);
}

#[test]
fn a_fetch_reporting_more_data_ends_idleness_and_restarts_the_wait() {
    let t0 = Instant::now();
    let mut t = IdleTracker::new(GRACE);
    t.reset([(0, 0), (1, 0)]);
    t.reached_end(0, Some(10), at(t0, 0));
    t.reached_end(1, Some(4), at(t0, 0));
    assert_eq!(t.due(at(t0, 3_000)).idle, [0, 1]);
    assert!(t.any_idle());
    // The same high watermark (or a stale lower one) changes nothing.
    assert_eq!(t.fetch_reported(0, 10), Transitions::default());
    assert_eq!(t.fetch_reported(0, 7), Transitions::default());
    // More than was read: hold again, and no longer at the end.
    assert_eq!(t.fetch_reported(1, 5).hold, [1]);
    assert!(!t.is_idle(1) && t.is_idle(0) && t.any_idle());
    t.delivered(0, 10);
    assert!(!t.any_idle(), "the count follows every way out of idleness");
    assert_eq!(t.due(at(t0, 60_000)).idle, Vec::<i32>::new(), "not at its end until the reader says so");
    // During the grace period, too: a partition that has more is not waited out.
    t.reached_end(1, Some(5), at(t0, 61_000));
    t.fetch_reported(1, 6);
    assert_eq!(t.due(at(t0, 70_000)).idle, Vec::<i32>::new());
}

#[test]
fn after_a_connection_drop_nothing_is_idle_until_the_broker_confirms_and_the_grace_passes() {
    let t0 = Instant::now();
    let mut t = IdleTracker::new(GRACE);
    t.reset([(0, 0), (1, 0), (2, 0)]);
    for p in 0..3 {
        t.reached_end(p, Some(100), at(t0, 0));
    }
    assert_eq!(t.due(at(t0, 3_000)).idle, [0, 1, 2]);

    assert_eq!(t.disconnected(at(t0, 10_000)).hold, [0, 1, 2]);
    assert!(!t.any_idle());
    assert_eq!(t.due(at(t0, 60_000)).idle, Vec::<i32>::new(), "unconfirmed ends never go idle");

    // Asked while the broker is down: no answers, still unconfirmed; asked again later.
    let asked = t.to_confirm(at(t0, 11_000)).unwrap();
    assert_eq!(asked.partitions, [0, 1, 2]);
    t.confirmed(&asked, &[(0, None), (1, None), (2, None)]);
    assert_eq!(t.due(at(t0, 60_000)).idle, Vec::<i32>::new());

    // An answer to a question asked before another drop does not count.
    let stale = t.to_confirm(at(t0, 40_000)).unwrap();
    t.disconnected(at(t0, 40_500));
    t.confirmed(&stale, &[(0, Some(100)), (1, Some(100)), (2, Some(100))]);
    assert_eq!(t.due(at(t0, 90_000)).idle, Vec::<i32>::new());

    // Back: partition 0 has new data, 1 and 2 do not. The grace counts from the question.
    let asked = t.to_confirm(at(t0, 100_000)).unwrap();
    t.confirmed(&asked, &[(0, Some(180)), (1, Some(100)), (2, Some(100))]);
    assert_eq!(t.to_confirm(at(t0, 100_100)), None, "all answered");
    assert_eq!(t.due(at(t0, 102_999)).idle, Vec::<i32>::new());
    assert_eq!(t.due(at(t0, 103_000)).idle, [1, 2]);
}

#[test]
fn a_partition_quiet_for_the_grace_without_its_end_is_put_to_the_broker() {
    let t0 = Instant::now();
    let mut t = IdleTracker::new(GRACE);
    // Read up to offset 9 (position 10); the end of partition never comes (it came before a reset).
    t.reset([(0, 0), (1, 0)]);
    t.delivered(0, 9);
    t.delivered(1, 9);
    assert_eq!(t.to_confirm(at(t0, 0)), None, "nothing to ask while reading");
    t.due(at(t0, 0)); // the first look after the last read starts the quiet period
    assert_eq!(t.due(at(t0, 2_999)).idle, Vec::<i32>::new());
    assert_eq!(t.to_confirm(at(t0, 2_999)), None, "quiet, but not for the grace yet");
    t.due(at(t0, 3_000));
    let asked = t.to_confirm(at(t0, 3_000)).expect("quiet for the grace: ask the broker");
    assert_eq!(asked.partitions, [0, 1]);
    // Partition 0 is at its end; partition 1 has more (reading is paused, say): it keeps reading.
    t.confirmed(&asked, &[(0, Some(10)), (1, Some(12))]);
    assert_eq!(t.due(at(t0, 5_999)).idle, Vec::<i32>::new(), "the grace counts from the question");
    assert_eq!(t.due(at(t0, 6_000)).idle, [0]);
    assert!(!t.is_idle(1));

    // An answer to a question asked before the partition last read does not count, even if the
    // partition has gone quiet again since: new messages may have come after it was asked.
    let stale = {
        t.due(at(t0, 9_000)); // partition 1 quiet for the grace again: asked
        t.to_confirm(at(t0, 9_000)).unwrap()
    };
    assert_eq!(stale.partitions, [1]);
    t.delivered(1, 11);
    t.due(at(t0, 9_100));
    t.due(at(t0, 12_100)); // quiet again: a new question is due
    t.confirmed(&stale, &[(1, Some(12))]);
    assert_eq!(t.due(at(t0, 60_000)).idle, Vec::<i32>::new(), "the stale answer is ignored");
    let asked = t.to_confirm(at(t0, 60_000)).unwrap();
    t.confirmed(&asked, &[(1, Some(12))]);
    assert_eq!(t.due(at(t0, 63_000)).idle, [1]);
}

/// `n` partitions that each delivered one event at 10 h, reached their end and went idle, with the
/// tracker and a sequencer (lateness 1 h) agreeing; returns them and the start instant.
fn all_idle_at_ten_hours(n: i32) -> (IdleTracker, Sequencer<()>, Instant) {
    let t0 = Instant::now();
    let (mut t, mut s) = (IdleTracker::new(GRACE), Sequencer::<()>::new(HOUR));
    t.reset((0..n).map(|p| (p, 0)));
    for p in 0..n {
        s.assign(p);
        s.push(p, ev(&format!("first-{p}"), 10 * HOUR), ());
        t.delivered(p, 0);
        t.reached_end(p, Some(1), at(t0, 0));
    }
    for p in t.due(at(t0, 3_000)).idle {
        s.mark_idle(p);
    }
    (t, s, t0)
}

/// The outage that broke `tests/broker_outage.rs`, with the sequencer: three partitions caught up
/// and idle, the broker drops, comes back, and partition 0 delivers hours of event time before
/// partitions 1 and 2 deliver theirs.
#[test]
fn one_partition_resuming_hours_ahead_of_two_idle_ones_makes_nothing_late() {
    let (mut t, mut s, t0) = all_idle_at_ten_hours(3);
    assert_eq!(s.watermark(), 9 * HOUR, "all caught up: newest minus the lateness");

    for p in t.disconnected(at(t0, 5_000)).hold {
        s.hold(p);
    }
    assert!(!s.all_idle(), "an outage is not a quiet input: no idle flush");
    let asked = t.to_confirm(at(t0, 35_000)).unwrap();
    t.confirmed(&asked, &[(0, Some(1)), (1, Some(1)), (2, Some(1))]);

    // Partition 0 first, six hours ahead, within the grace period of 1 and 2.
    for (i, h) in (11..=16).enumerate() {
        assert!(matches!(s.push(0, ev(&format!("p0-{i}"), h * HOUR), ()), Admission::Buffered));
        t.delivered(0, 1 + i as i64);
    }
    assert!(t.due(at(t0, 36_000)).idle.is_empty());
    assert_eq!(s.watermark(), 9 * HOUR, "1 and 2 hold it at their newest event");
    for p in [1, 2] {
        for h in 11..=16 {
            let admitted = s.push(p, ev(&format!("p{p}-{h}"), h * HOUR), ());
            assert!(matches!(admitted, Admission::Buffered), "partition {p} at {h} h arrived late");
        }
    }
    assert_eq!(s.watermark(), 15 * HOUR);
}

/// Without the tracker's hold, the same interleaving makes the other partitions late: the test
/// above can fail.
#[test]
fn without_holding_idle_partitions_the_same_interleaving_is_late() {
    let mut s = Sequencer::<()>::new(HOUR);
    for p in 0..3 {
        s.assign(p);
        s.push(p, ev(&format!("first-{p}"), 10 * HOUR), ());
        s.mark_idle(p);
    }
    for h in 11..=16 {
        s.push(0, ev(&format!("p0-{h}"), h * HOUR), ());
    }
    assert!(matches!(s.push(1, ev("p1-11", 11 * HOUR), ()), Admission::Late(..)));
}

/// A producer resuming after a pause while every partition is idle: the fetch that carries
/// partition 0's events also reports partition 1's high watermark, which makes it hold again.
#[test]
fn a_fetch_reporting_data_on_an_idle_partition_holds_it_before_the_other_moves_time() {
    let (mut t, mut s, _) = all_idle_at_ten_hours(2);
    for p in t.fetch_reported(1, 40).hold {
        s.hold(p);
    }
    s.push(0, ev("p0", 20 * HOUR), ());
    assert_eq!(s.watermark(), 9 * HOUR);
    assert!(matches!(s.push(1, ev("p1", 11 * HOUR), ()), Admission::Buffered));
}

#[test]
fn a_partition_idle_before_it_ever_delivered_holds_everything_again() {
    let mut s = Sequencer::<()>::new(0);
    s.assign(0);
    s.assign(1);
    s.mark_idle(1);
    s.push(0, ev("a", 1_000), ());
    assert_eq!(s.watermark(), 1_000);
    s.hold(1);
    s.push(0, ev("b", 2_000), ());
    assert_eq!(s.watermark(), 1_000, "an empty partition that may have data holds like an unseen one");
    assert!(matches!(s.push(1, ev("c", 1_500), ()), Admission::Buffered));
}

#[derive(Debug, Clone)]
enum Op {
    Deliver(i32),
    End(i32, i64),
    Fetch(i32, i64),
    Drop,
    Ask,
    Answer(Vec<Option<i64>>),
    Wait(u64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0..3i32).prop_map(Op::Deliver),
        3 => (0..3i32, 0..4i64).prop_map(|(p, d)| Op::End(p, d)),
        2 => (0..3i32, 0..4i64).prop_map(|(p, d)| Op::Fetch(p, d)),
        1 => Just(Op::Drop),
        2 => Just(Op::Ask),
        2 => proptest::collection::vec(proptest::option::of(0..4i64), 3).prop_map(Op::Answer),
        4 => (0..2_500u64).prop_map(Op::Wait),
    ]
}

proptest::proptest! {
    /// Random interleavings against the rules as the README states them, kept here in the plainest
    /// form: a partition is idle only if nothing read or fetched since its end (or the broker's
    /// answer, to a question asked after the last drop and after the last read) says otherwise, no
    /// drop came after that evidence, and the grace period has passed since it. Offsets in ops are relative to what was read (`End(p, d)` is an
    /// end `d` past the last message; 0 means exactly there).
    #[test]
    fn idle_only_on_fresh_evidence_of_nothing_unread(ops in proptest::collection::vec(op(), 1..120)) {
        let t0 = Instant::now();
        let mut now = 0u64;
        let mut t = IdleTracker::new(GRACE);
        t.reset([(0, 0), (1, 0), (2, 0)]);
        // The model: next offset to read, and the time of the evidence that it is the end.
        let mut read = [0i64; 3];
        let mut evidence: [Option<u64>; 3] = [None; 3];
        // A question to the broker, with how many drops had happened when it was asked.
        // A question to the broker, with how many drops had happened and the op it was asked at.
        let mut asked: Option<(Confirmation, u32, usize)> = None;
        let mut drops = 0u32;
        // The op at which each partition last read something or was found to have more.
        let mut changed = [0usize; 3];
        for (n, op) in ops.into_iter().enumerate() {
            let n = n + 1;
            match op {
                Op::Deliver(p) => {
                    let i = p as usize;
                    t.delivered(p, read[i]);
                    read[i] += 1;
                    evidence[i] = None;
                    changed[i] = n;
                }
                Op::End(p, d) => {
                    let i = p as usize;
                    read[i] += d; // transaction markers: the end is past the last message
                    t.reached_end(p, Some(read[i]), at(t0, now));
                    if !t.is_idle(p) {
                        evidence[i] = Some(now);
                    }
                }
                Op::Fetch(p, d) => {
                    let i = p as usize;
                    t.fetch_reported(p, read[i] + d);
                    if d > 0 {
                        evidence[i] = None;
                        changed[i] = n;
                    }
                }
                Op::Drop => {
                    t.disconnected(at(t0, now));
                    drops += 1;
                    // Evidence from before the drop is void until the broker confirms again.
                    for e in &mut evidence {
                        *e = e.map(|_| u64::MAX);
                    }
                }
                Op::Ask => {
                    if let Some(c) = t.to_confirm(at(t0, now)) {
                        asked = Some((c, drops, n));
                    }
                }
                Op::Answer(ends) => {
                    if let Some((c, drops_then, asked_op)) = asked.take() {
                        let answers: Vec<(i32, Option<i64>)> =
                            c.partitions.iter().map(|p| (*p, ends[*p as usize].map(|d| read[*p as usize] + d))).collect();
                        let asked_at = c.asked_at.duration_since(t0).as_millis() as u64;
                        t.confirmed(&c, &answers);
                        for (p, end) in answers {
                            let i = p as usize;
                            // Only an answer to a question asked after the last drop and after the
                            // partition last read anything counts; it is evidence where none stands.
                            let fresh = drops_then == drops && asked_op > changed[i];
                            if fresh && matches!(evidence[i], None | Some(u64::MAX)) {
                                evidence[i] = match end {
                                    Some(e) if e <= read[i] => Some(asked_at),
                                    Some(_) => None,
                                    None => evidence[i],
                                };
                            }
                        }
                    }
                }
                Op::Wait(ms) => {
                    now += ms;
                    t.due(at(t0, now));
                }
            }
            for p in 0..3 {
                if t.is_idle(p) {
                    let e = evidence[p as usize];
                    proptest::prop_assert!(
                        e.is_some_and(|e| e != u64::MAX && now - e >= GRACE.as_millis() as u64),
                        "partition {p} idle at {now} ms with evidence {e:?}"
                    );
                }
            }
            proptest::prop_assert_eq!(t.any_idle(), (0..3).any(|p| t.is_idle(p)));
        }
    }
}
