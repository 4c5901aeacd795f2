//! `rating_manipulation.ring`: reviewers shared across sellers — the same small set of buyers
//! rating the same several sellers five stars within days (a dense buyer × seller block, the
//! pattern DenseAlert looks for in a stream).
//!
//! This is a cross-seller view: it is keyed by buyer and by seller, not by the seller of the event
//! being processed. [`ReviewGraph`] holds every five-star review of the window; on each new one
//! (buyer b, seller s) it grows a block greedily from b's sellers and the other reviewers of s, and
//! reports it when it has ≥ `ring_min_buyers` buyers who all reviewed ≥ `ring_min_sellers` common
//! sellers. Only buyers with at least `ring_min_sellers` sellers in the window are candidates, so a
//! big seller's one-off reviewers cost nothing. Scale-out: see README, "Cross-seller views".

use std::collections::{BTreeSet, VecDeque};

use super::Map;

use crate::decode::Id;
use crate::decode::Millis;

type Reviews = VecDeque<(Millis, Id)>;

#[derive(Debug, Default)]
pub struct ReviewGraph {
    by_buyer: Map<Id, Reviews>,
    by_seller: Map<Id, Reviews>,
}

/// A dense block: every buyer reviewed every seller within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub buyers: BTreeSet<Id>,
    pub sellers: BTreeSet<Id>,
}

fn push(map: &mut Map<Id, Reviews>, key: &str, ts: Millis, other: &str) {
    let q = map.entry(key.into()).or_default();
    let pos = q.partition_point(|(t, _)| *t <= ts);
    q.insert(pos, (ts, other.into()));
}

fn live<'a>(map: &'a Map<Id, Reviews>, key: &str, since: Millis) -> BTreeSet<&'a str> {
    map.get(key).map(|q| q.iter().filter(|(t, _)| *t > since).map(|(_, o)| &**o).collect()).unwrap_or_default()
}

impl ReviewGraph {
    /// Records a five-star review and returns the block it completes, if any.
    pub fn add(
        &mut self,
        (buyer, seller, ts): (&str, &str, Millis),
        window_ms: i64,
        min_buyers: usize,
        min_sellers: usize,
    ) -> Option<Block> {
        push(&mut self.by_buyer, buyer, ts, seller);
        push(&mut self.by_seller, seller, ts, buyer);
        let since = ts - window_ms;
        let mine = live(&self.by_buyer, buyer, since);
        if mine.len() < min_sellers {
            return None;
        }
        // Co-reviewers of this seller, ranked by how many of this buyer's sellers they share.
        let mut candidates: Vec<(usize, &str, BTreeSet<&str>)> = live(&self.by_seller, seller, since)
            .into_iter()
            .filter(|c| *c != buyer)
            .filter_map(|c| {
                let theirs = live(&self.by_buyer, c, since);
                let shared: BTreeSet<&str> = theirs.intersection(&mine).copied().collect();
                (shared.len() >= min_sellers).then_some((shared.len(), c, shared))
            })
            .collect();
        if candidates.len() + 1 < min_buyers {
            return None;
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let mut sellers = mine.clone();
        let mut buyers: BTreeSet<&str> = BTreeSet::from([buyer]);
        for (_, c, shared) in &candidates {
            let next: BTreeSet<&str> = sellers.intersection(shared).copied().collect();
            if next.len() >= min_sellers {
                sellers = next;
                buyers.insert(c);
            }
        }
        (buyers.len() >= min_buyers).then(|| Block {
            buyers: buyers.into_iter().map(Into::into).collect(),
            sellers: sellers.into_iter().map(Into::into).collect(),
        })
    }

    /// Forget reviews older than the window.
    pub fn sweep(&mut self, now: Millis, window_ms: i64) {
        for map in [&mut self.by_buyer, &mut self.by_seller] {
            map.retain(|_, q| {
                while q.front().is_some_and(|(t, _)| *t <= now - window_ms) {
                    q.pop_front();
                }
                !q.is_empty()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 86_400_000;

    fn ring(g: &mut ReviewGraph, buyers: &[&str], sellers: &[&str], t0: Millis) -> Vec<Block> {
        let mut found = Vec::new();
        let mut t = t0;
        for s in sellers {
            for b in buyers {
                t += 60_000;
                found.extend(g.add((b, s, t), 14 * D, 4, 3));
            }
        }
        found
    }

    #[test]
    fn four_buyers_on_three_sellers_is_a_ring_three_is_not() {
        let mut g = ReviewGraph::default();
        let found = ring(&mut g, &["b1", "b2", "b3", "b4"], &["s1", "s2", "s3"], 0);
        let last = found.last().expect("ring found once complete");
        assert_eq!(last.buyers.len(), 4);
        assert_eq!(last.sellers.iter().map(|s| &**s).collect::<Vec<_>>(), ["s1", "s2", "s3"]);
        // The block only appears with the last review that completes it.
        assert_eq!(found.len(), 1);

        let mut g = ReviewGraph::default();
        assert!(ring(&mut g, &["b1", "b2", "b3"], &["s1", "s2", "s3"], 0).is_empty());
    }

    #[test]
    fn shared_popular_sellers_without_overlap_in_buyers_sets_is_not_a_ring() {
        // Ten buyers each review the popular seller p plus two sellers of their own: shared p only.
        let mut g = ReviewGraph::default();
        let mut t = 0;
        for i in 0..10 {
            for s in ["p".to_string(), format!("x{i}"), format!("y{i}")] {
                t += 60_000;
                assert!(g.add((&format!("b{i}"), &s, t), 14 * D, 4, 3).is_none());
            }
        }
    }

    #[test]
    fn reviews_older_than_the_window_do_not_count() {
        let mut g = ReviewGraph::default();
        // Three buyers now, the fourth one's reviews 15 days later: the first three have expired.
        ring(&mut g, &["b1", "b2", "b3"], &["s1", "s2", "s3"], 0);
        let late = ring(&mut g, &["b4"], &["s1", "s2", "s3"], 15 * D);
        assert!(late.is_empty());
        g.sweep(16 * D, 14 * D);
        assert_eq!(g.by_buyer.len(), 1);
    }
}
