//! The event-time timers the families schedule.
//!
//! A timer names up to three ids: the seller, the order or conversation, and the event that set
//! it. They are copied out of the event into one allocation (not one per id): thousands of timers
//! are pending at any time and one is scheduled for about every other event.

use std::cmp::Ordering;

use crate::decode::Millis;

/// What a timer checks when it fires. Declaration order is the tie order (see [`Timer`]'s `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// `fake_shipment`: has the carrier scanned this shipment yet?
    ScanDeadline,
    /// `late_dispatch`: has this order shipped by its promised time?
    DispatchDeadline,
    /// `slow_response`: was this buyer message answered in time?
    ReplyDeadline,
    /// `false_transactions.order_brushing`: every order before this time is in; judge the hour-long
    /// intervals that are now complete (those ending by then).
    BrushingCheck,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub kind: TimerKind,
    /// When the buyer message opened the turn (`ReplyDeadline`; 0 otherwise).
    pub opened: Millis,
    /// Seller, subject and event ids back to back; `ends` are where the first two end.
    ids: Box<str>,
    ends: [u32; 2],
}

impl Timer {
    /// A timer about `subject` (order or conversation) of `seller`, set by event `event`.
    pub fn new(kind: TimerKind, seller: &str, subject: &str, opened: Millis, event: &str) -> Self {
        let ids = [seller, subject, event].concat().into_boxed_str();
        // Ids are bounded by `input.max_id_bytes`, far below u32::MAX.
        let ends = [seller.len() as u32, (seller.len() + subject.len()) as u32];
        Timer { kind, opened, ids, ends }
    }

    /// A timer about the seller as a whole.
    pub fn for_seller(kind: TimerKind, seller: &str) -> Self {
        Self::new(kind, seller, "", 0, "")
    }

    pub fn seller(&self) -> &str {
        &self.ids[..self.ends[0] as usize]
    }

    /// The order (scan and dispatch deadlines) or conversation (reply deadline).
    pub fn subject(&self) -> &str {
        &self.ids[self.ends[0] as usize..self.ends[1] as usize]
    }

    /// The event that set the timer.
    pub fn event(&self) -> &str {
        &self.ids[self.ends[1] as usize..]
    }

    fn sort_key(&self) -> (TimerKind, &str, &str, Millis, &str) {
        (self.kind, self.seller(), self.subject(), self.opened, self.event())
    }
}

/// Ties on the due time fire by kind, then seller, subject, opening time and event: the order the
/// former enum (one `Box<str>` per id) derived, so outcomes are unchanged.
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_order_field_by_field() {
        let t = Timer::new(TimerKind::ReplyDeadline, "s1", "conv", 5, "ev9");
        assert_eq!((t.seller(), t.subject(), t.opened, t.event()), ("s1", "conv", 5, "ev9"));
        let b = Timer::for_seller(TimerKind::BrushingCheck, "s1");
        assert_eq!((b.seller(), b.subject(), b.event()), ("s1", "", ""));
        // Field by field, not by the concatenation: "a"+"bc" sorts before "ab"+"c".
        let x = Timer::new(TimerKind::ScanDeadline, "a", "bc", 0, "e");
        let y = Timer::new(TimerKind::ScanDeadline, "ab", "c", 0, "e");
        assert!(x < y);
        assert!(
            Timer::new(TimerKind::ReplyDeadline, "s", "c", 1, "z")
                < Timer::new(TimerKind::ReplyDeadline, "s", "c", 2, "a")
        );
        assert!(
            Timer::new(TimerKind::ScanDeadline, "z", "z", 0, "z")
                < Timer::new(TimerKind::DispatchDeadline, "a", "a", 0, "a")
        );
        assert_ne!(x, y);
    }
}
