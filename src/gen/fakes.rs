//! Fraud streams beside the seller's ordinary orders: fake orders (rating bursts, order brushing,
//! farmed repeat buyers, scanless deliveries, new-account clusters), phantom listings and disputes
//! for an expired protection period. Fake orders are fulfilled cleanly (`clean_plan`: on time,
//! valid unique numbers, scanned) so they trip no shipping or dispatch rule.

use super::fraud::lerp;
use super::*;

impl Sim<'_> {
    /// Queues order `o`, placed at `placed` (with `placed_flags`), followed by `steps`.
    fn queue_fake(&mut self, placed: i64, mut o: Box<Order>, placed_flags: u8, steps: Vec<PlanStep>) {
        let mut p = Vec::with_capacity(steps.len() + 1);
        p.push((placed, Step::Placed, placed_flags));
        p.extend(steps);
        self.finish_plan(&mut o, p);
        self.push(placed, Act::Order(o));
    }

    /// A fake order by `buyer` on one of the seller's popular listings, fulfilled cleanly.
    fn fake_order(&mut self, placed: i64, s: usize, (buyer, created): (u64, i64), flags: u8) {
        let l = self.popular_listing(s);
        let method = if self.chance(0.8) { Method::Standard } else { Method::Express };
        let mut o = self.new_order(placed, s, l, buyer, created, method);
        let (steps, _) = self.clean_plan(placed, &mut o, false, true);
        self.queue_fake(placed, o, flags, steps);
    }

    /// A listing priced ≥ 1.7× the seller's cheapest list price (the dearest if none is): even on
    /// sale (≥ 0.6× list) it stays above the cheapest item, which new-account clusters target.
    fn pricey_listing(&mut self, s: usize) -> usize {
        let ls = &self.sellers[s].listings;
        let min = ls.iter().map(|l| l.list).min().unwrap_or(0) as f64;
        let c: Vec<usize> = (0..ls.len()).filter(|&k| ls[k].list as f64 >= 1.7 * min).collect();
        if c.is_empty() {
            (0..ls.len()).max_by_key(|&k| ls[k].list).unwrap_or(0)
        } else {
            c[self.pick(c.len())]
        }
    }

    /// Rating fraud: fake orders from accounts < 2 days old, all reviewed 5★ within 10 h of `burst`
    /// (30–45 at full intensity; 6–9 at 0.2, under the 10-review line). ~35 % are placed 2–3 days
    /// ahead on fast parcels (delivered by then), the rest 2–20 h ahead and reviewed before they
    /// arrive. All are
    /// shipped on time and scanned, on listings well above the cheapest (a cheapest-item cluster is
    /// false_transactions). Next burst 2–4 days later.
    pub(super) fn review_burst(&mut self, now: i64, s: usize, burst: i64) {
        let n = ((self.uf(30.0, 45.0) * self.cfg.intensity).round() as usize).max(1);
        for _ in 0..n {
            let early = self.chance(0.35);
            let ahead = if early { self.ums(50 * HOUR_MS, 70 * HOUR_MS) } else { self.ums(2 * HOUR_MS, 20 * HOUR_MS) };
            let placed = (burst - ahead).max(now);
            let (buyer, created) = (self.new_id(), placed - self.ums(HOUR_MS, 48 * HOUR_MS));
            let l = self.pricey_listing(s);
            let mut o = self.new_order(placed, s, l, buyer, created, Method::Standard);
            let (mut steps, _) = self.clean_plan(placed, &mut o, early, true);
            steps.push((burst + self.ums(0, 10 * HOUR_MS), Step::Review(5), MARKER));
            self.queue_fake(placed, o, 0, steps);
        }
        let next = burst + self.ums(2 * DAY_MS, 4 * DAY_MS);
        self.push(next - 72 * HOUR_MS, Act::Fraud(s as u32, FraudStep::ReviewBurst(next)));
    }

    /// Drip review fraud, one day of it: fake orders from accounts made 1–72 h before, fulfilled
    /// fast and reviewed 5★ 2–48 h after delivery (3 a day on average at full intensity, 0.5 at
    /// 0.2); and one-star reviews, from the same kind of account, on delivered orders of the
    /// competitor it attacks (its `target`; 1.5 a day at full intensity, 0.3 at 0.2).
    pub(super) fn review_drip(&mut self, now: i64, s: usize) {
        let i = self.cfg.intensity;
        let fives = self.about(lerp(0.5, 3.0, i));
        for _ in 0..fives {
            self.drip_review(now, s, 5);
        }
        if let Some(v) = self.sellers[s].target {
            for _ in 0..self.about(lerp(0.3, 1.5, i)) {
                self.drip_review(now, v as usize, 1);
            }
        }
        self.push(now + DAY_MS, Act::Fraud(s as u32, FraudStep::Drip));
    }

    /// `mean` rounded up or down at random so that it is `mean` on average.
    fn about(&mut self, mean: f64) -> usize {
        let whole = mean.floor();
        whole as usize + usize::from(self.chance(mean - whole))
    }

    /// One fake order on seller `s` from a fresh account, reviewed `rating` after it arrives.
    fn drip_review(&mut self, now: i64, s: usize, rating: u8) {
        let placed = now + self.ums(0, DAY_MS);
        let (buyer, created) = (self.new_id(), placed - self.ums(HOUR_MS, 72 * HOUR_MS));
        let l = self.popular_listing(s);
        let mut o = self.new_order(placed, s, l, buyer, created, Method::Standard);
        let (mut steps, got) = self.clean_plan(placed, &mut o, true, true);
        steps.push((got + self.ums(2 * HOUR_MS, 48 * HOUR_MS), Step::Review(rating), MARKER));
        self.queue_fake(placed, o, 0, steps);
    }

    /// Order brushing: 2–3 established accounts each place 3–7 orders within 20 minutes (3–4
    /// within 68 minutes at 0.2, straddling the 1-hour interval), every 1–3 days (less often at
    /// lower intensity). Fulfilled and not reviewed: brushing buys sales rank, not stars.
    pub(super) fn order_brush(&mut self, now: i64, s: usize) {
        let i = self.cfg.intensity;
        let span = (lerp(80.0, 20.0, i) * MIN_MS as f64) as i64;
        for _ in 0..2 + self.pick(2) {
            let buyer = self.pooled_buyer();
            for _ in 0..3 + (4.0 * i * self.u()).round() as usize {
                let placed = now + self.ums(0, span);
                self.fake_order(placed, s, buyer, MARKER);
            }
        }
        let next = now + (self.ums(DAY_MS, 3 * DAY_MS) as f64 / i) as i64;
        self.push(next, Act::Fraud(s as u32, FraudStep::OrderBrush));
    }

    /// Repeat-buyer farming: 6 established accounts (3, the rule's line, at 0.2), each ordering
    /// every 0.6–1.8 days (up to 2.4× slower at lower intensity: 2–5 orders a week at 0.2).
    pub(super) fn start_farm(&mut self, now: i64, s: usize) {
        for k in 0..3 + (3.0 * self.cfg.intensity).round() as u32 {
            let (b, _) = self.pooled_buyer();
            self.sellers[s].farm.push(b);
            let t = now + self.ums(0, DAY_MS);
            self.push(t, Act::Fraud(s as u32, FraudStep::Farm(k)));
        }
    }

    pub(super) fn farm_order(&mut self, now: i64, s: usize, k: u32) {
        let Some(&b) = self.sellers[s].farm.get(k as usize) else {
            return;
        };
        self.fake_order(now, s, (b, self.pooled_created(b)), MARKER);
        let gap = self.uf(0.6, 1.8) * lerp(2.4, 1.0, self.cfg.intensity);
        self.push(now + (gap * DAY_MS as f64) as i64, Act::Fraud(s as u32, FraudStep::Farm(k)));
    }

    /// Scanless deliveries: colluding accounts "buy", the seller ships a valid number no carrier
    /// ever scans, the buyer confirms delivery. At half the seller's order rate at full intensity
    /// (a third of its deliveries), a tenth at 0.2 (under the 10 % line).
    pub(super) fn scanless(&mut self, now: i64, s: usize) {
        let (buyer, created) = self.pooled_buyer();
        let l = self.popular_listing(s);
        let mut o = self.new_order(now, s, l, buyer, created, Method::Standard);
        let (steps, _) = self.clean_plan(now, &mut o, false, false);
        self.queue_fake(now, o, 0, steps);
        let rate = self.sellers[s].rate * 0.5 * self.cfg.intensity;
        let t = now + self.exp_ms(rate).max(MIN_MS);
        self.push(t, Act::Fraud(s as u32, FraudStep::Scanless));
    }

    /// New-account cluster: a bait listing at 24–28 % of the median of the seller's cheapest
    /// category (its cheapest item: below honest sale prices, ≥ 0.33× base; above price_dumping's
    /// 20 % line for new listings), then a fresh account buys it every ~11 h (~55 h at 0.2) and
    /// rates it five stars 48 h after buying. Reviews ≥ 9.4 h apart: no 24 h holds more than 3, so
    /// with honest reviews they stay under rating_manipulation's "≥ 10, half from new accounts".
    pub(super) fn start_cluster(&mut self, now: i64, s: usize) {
        let cats = &self.sellers[s].cats;
        let cat = *cats.iter().min_by(|&&a, &&b| CATEGORIES[a].1.total_cmp(&CATEGORIES[b].1)).unwrap_or(&0);
        let med = self.cat_prices[cat].median(30).unwrap_or((CATEGORIES[cat].1 * 100.0) as i64);
        let mut l = self.new_listing(cat, 0.0);
        l.cur = ((med as f64 * self.uf(0.24, 0.28)).round() as i64).max(1);
        (l.list, l.promo) = (l.cur, true); // promo: no sales or re-pricing on top
        let sel = &mut self.sellers[s];
        sel.listings.push(l);
        sel.cheap.push(sel.listings.len() as u32 - 1);
        self.render_listing(now, s, self.sellers[s].listings.len() - 1, 0);
        let t = now + self.ums(HOUR_MS, 6 * HOUR_MS);
        self.push(t, Act::Fraud(s as u32, FraudStep::Cluster));
    }

    pub(super) fn cluster_order(&mut self, now: i64, s: usize) {
        let Some(&l) = self.sellers[s].cheap.first() else {
            return;
        };
        let (buyer, created) = (self.new_id(), now - self.ums(HOUR_MS, 12 * HOUR_MS));
        let mut o = self.new_order(now, s, l as usize, buyer, created, Method::Standard);
        // Confirmed within 45 h (fast parcel); the review at a fixed offset keeps the order spacing,
        // and the account is < 2.6 days old when it reviews (new: < 7 days).
        let (mut steps, _) = self.clean_plan(now, &mut o, true, true);
        steps.push((now + 48 * HOUR_MS + self.ums(0, 30 * MIN_MS), Step::Review(5), MARKER));
        self.queue_fake(now, o, 0, steps);
        let gap = 11.0 / self.cfg.intensity * self.uf(0.9, 1.1);
        self.push(now + (gap * HOUR_MS as f64) as i64, Act::Fraud(s as u32, FraudStep::Cluster));
    }

    /// Phantom listings: 1–2 of the seller's listings become goods it cannot deliver (variant 0
    /// reports stock 0, variant 1 no stock); orders routed to them (`tweaks`) are cancelled as out
    /// of stock. The listing update itself is not detectable: the orders are.
    pub(super) fn make_phantoms(&mut self, now: i64, s: usize) {
        for _ in 0..1 + self.pick(2) {
            let ls = &self.sellers[s].listings;
            let cands: Vec<usize> = (0..ls.len()).filter(|&k| !ls[k].promo && !ls[k].phantom).collect();
            if cands.len() < 2 {
                return; // keep at least one real listing
            }
            let l = cands[self.pick(cands.len())];
            self.sellers[s].listings[l].phantom = true;
            self.render_listing(now, s, l, 0);
        }
    }

    /// Small-parcel restriction: buyers dispute orders whose protection period ran out before the
    /// parcel arrived, every 1.5–4 days at full intensity, 7.5–20 days at 0.2 (so a run may hold
    /// only one: under the rule's 2 a month).
    pub(super) fn expired_dispute(&mut self, now: i64, s: usize) {
        self.old_order_dispute(now, s, MARKER);
        let t = now + (self.ums(36 * HOUR_MS, 4 * DAY_MS) as f64 / self.cfg.intensity) as i64;
        self.push(t, Act::Fraud(s as u32, FraudStep::Dispute));
    }

    /// An honest seller's one-off expired-protection dispute: allowed (the rule needs 2 a month).
    pub(super) fn honest_dispute(&mut self, now: i64, s: usize) {
        self.old_order_dispute(now, s, 0);
    }

    /// A 60-day protection only expires on an order ~2 months old, placed before the run: the
    /// dispute refers to it by id alone (the detector needs nothing else).
    fn old_order_dispute(&mut self, now: i64, s: usize, flags: u8) {
        let (buyer, created) = self.pooled_buyer();
        let l = self.pick(self.sellers[s].listings.len());
        let mut o = self.new_order(now - 58 * DAY_MS, s, l, buyer, created, Method::Economy);
        self.finish_plan(&mut o, vec![(now, Step::Dispute("protection_expired"), flags)]);
        self.push(now, Act::Order(o));
    }
}
