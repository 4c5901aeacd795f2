//! Event-time timers ("no carrier scan within 72 h"). A timer fires when the watermark passes its
//! due time; ties fire in key order so that the outcome never depends on arrival order.
//! Cancelling is lazy: the rule re-checks its condition when the timer fires.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::decode::Millis;

#[derive(Debug, Clone)]
pub struct TimerQueue<K: Ord> {
    heap: BinaryHeap<Reverse<(Millis, K)>>,
}

impl<K: Ord> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue { heap: BinaryHeap::new() }
    }
}

impl<K: Ord> TimerQueue<K> {
    pub fn schedule(&mut self, due: Millis, key: K) {
        self.heap.push(Reverse((due, key)));
    }

    /// The earliest timer with `due <= upto`, removed from the queue.
    pub fn pop_due(&mut self, upto: Millis) -> Option<(Millis, K)> {
        if self.heap.peek().is_some_and(|Reverse((due, _))| *due <= upto) {
            self.heap.pop().map(|Reverse(x)| x)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_time_then_key_order() {
        let mut q = TimerQueue::default();
        q.schedule(10, "b");
        q.schedule(5, "z");
        q.schedule(10, "a");
        assert_eq!(q.pop_due(4), None);
        assert_eq!(q.pop_due(10), Some((5, "z")));
        assert_eq!(q.pop_due(10), Some((10, "a")));
        assert_eq!(q.pop_due(10), Some((10, "b")));
        assert!(q.is_empty());
    }
}
