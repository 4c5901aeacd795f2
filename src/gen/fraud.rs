//! Fraud injection. Each fraud seller gets exactly one family and a start time after warm-up;
//! a label is reported only once one of its MARKER events (the detectable ones) was emitted.
//! Intensities are sized against the generator's own trailing medians (`Trail`), i.e. the same
//! numbers the detectors compute, with margins well past the default thresholds.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Family {
    FakeShipment,
    Rating,
    Dumping,
    FeeInflation,
}

impl Family {
    pub(super) fn name(self) -> &'static str {
        match self {
            Family::FakeShipment => "fake_shipment",
            Family::Rating => "rating_manipulation",
            Family::Dumping => "price_dumping",
            Family::FeeInflation => "shipping_fee_inflation",
        }
    }
}

pub(super) enum FraudStep {
    Start,
    Dump,
    Restore(u32),
    Brush(i64), // prepare the review burst starting at this time
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ShipMode {
    Normal,
    BadCheck,
    BadFormat,
    Unknown,
    Reuse,
    NoScan,
    MethodSwitch,
}

impl Sim<'_> {
    pub(super) fn setup_fraud(&mut self, ranks: &[usize]) {
        let n = self.cfg.sellers;
        if self.cfg.fraud_share <= 0.0 || n < 2 {
            return;
        }
        // Skip the biggest 10 %: fraud on a giant seller drowns in its honest volume.
        let mut pool: Vec<usize> = (0..n).filter(|&i| ranks[i] > n / 10).collect();
        for i in (1..pool.len()).rev() {
            let j = self.pick(i + 1);
            pool.swap(i, j);
        }
        let k = ((self.cfg.fraud_share * n as f64).round() as usize).max(4).min(n - 1).min(pool.len());
        let fams = [Family::FakeShipment, Family::Rating, Family::Dumping, Family::FeeInflation];
        let warm = self.cfg.start_ms + i64::from(self.cfg.warmup_days) * DAY_MS;
        // Start in the first 40 % of the post-warm-up span so every family has time to show.
        let span = i64::from(self.cfg.days - self.cfg.warmup_days) * DAY_MS * 2 / 5;
        for (j, &s) in pool.iter().take(k).enumerate() {
            let fam = fams[j % 4];
            let start = warm + self.ums(0, span);
            let sel = &mut self.sellers[s];
            sel.family = Some(fam);
            sel.fraud_start = start;
            // Rating fraudsters stay small so a burst dwarfs their honest review flow (and
            // their 7-day delivered count); the others need enough orders for ≥2 flags/week.
            sel.rate = if fam == Family::Rating { sel.rate.clamp(1.0, 2.5) } else { sel.rate.clamp(4.0, 25.0) };
            self.push(start, Act::Fraud(s as u32, FraudStep::Start));
        }
    }

    pub(super) fn fraud_step(&mut self, ts: i64, s: usize, step: FraudStep) {
        let Some(fam) = self.sellers[s].family else {
            return;
        };
        match (fam, step) {
            (Family::Rating, FraudStep::Start) => self.brush(ts, s, ts + 72 * HOUR_MS),
            (Family::Rating, FraudStep::Brush(burst)) => self.brush(ts, s, burst),
            (Family::Dumping, FraudStep::Start) => {
                self.dump(ts, s);
                let t = ts + self.ums(3 * DAY_MS, 5 * DAY_MS);
                self.push(t, Act::Fraud(s as u32, FraudStep::Dump));
            }
            (Family::Dumping, FraudStep::Dump) => self.dump(ts, s),
            (Family::Dumping, FraudStep::Restore(l)) => {
                let li = &mut self.sellers[s].listings[l as usize];
                (li.cur, li.promo) = (li.list, false);
                self.render_listing(ts, s, l as usize, MARKER);
            }
            (Family::FeeInflation, FraudStep::Start) => {
                // New listings priced at ~22.5 % of the category median: under the 25 % of the
                // fee rule, above the 20 % new-listing rule of price_dumping (no cross-alert).
                for _ in 0..1 + self.pick(2) {
                    let cat = self.busiest_cat(s);
                    let med = self.cat_prices[cat].median(30).unwrap_or((CATEGORIES[cat].1 * 100.0) as i64);
                    let mut l = self.new_listing(cat, 0.0);
                    l.cur = ((med as f64 * self.uf(0.215, 0.235)).round() as i64).max(1);
                    // promo: no honest sales on top, which could push it under 20 % later.
                    (l.list, l.promo) = (l.cur, true);
                    let sel = &mut self.sellers[s];
                    sel.listings.push(l);
                    sel.cheap.push(sel.listings.len() as u32 - 1);
                    self.render_listing(ts, s, self.sellers[s].listings.len() - 1, 0);
                }
            }
            _ => {} // fake_shipment acts through `ship_mode` / `shipment` on each order
        }
    }

    /// The seller category with the most trailing samples (so the detector can evaluate it).
    fn busiest_cat(&self, s: usize) -> usize {
        let cats = &self.sellers[s].cats;
        *cats.iter().max_by_key(|&&c| (self.cat_prices[c].0.len(), std::cmp::Reverse(c))).unwrap_or(&0)
    }

    /// Drops one listing to ~10 % of the category median (≥ 76 % below its list price, since
    /// honest list prices are ≥ 0.5× base); 60 % of the time raises it back 1–3 days later.
    fn dump(&mut self, ts: i64, s: usize) {
        let cat = self.busiest_cat(s);
        let cands: Vec<usize> =
            (0..self.sellers[s].listings.len()).filter(|&l| !self.sellers[s].listings[l].promo).collect();
        let pref: Vec<usize> = cands.iter().copied().filter(|&l| self.sellers[s].listings[l].cat == cat).collect();
        let pool = if pref.is_empty() { cands } else { pref };
        if pool.is_empty() {
            return;
        }
        let l = pool[self.pick(pool.len())];
        let cat = self.sellers[s].listings[l].cat;
        let med = self.cat_prices[cat].median(30).unwrap_or((CATEGORIES[cat].1 * 100.0) as i64);
        let price = ((med as f64 * self.uf(0.08, 0.12)).round() as i64).max(1);
        let li = &mut self.sellers[s].listings[l];
        (li.cur, li.promo) = (price.min(li.list / 2), true);
        self.render_listing(ts, s, l, MARKER);
        if self.chance(0.6) {
            let t = ts + self.ums(DAY_MS, 3 * DAY_MS);
            self.push(t, Act::Fraud(s as u32, FraudStep::Restore(l as u32)));
        }
    }

    /// Brushing: 35–50 fake orders from accounts < 2 days old, all reviewed 5★ within 10 h of
    /// `burst`. ~35 % are genuinely shipped and delivered before the burst (clean tracking, so
    /// fake_shipment stays quiet); the rest are never shipped. Next burst 2–4 days later.
    fn brush(&mut self, now: i64, s: usize, burst: i64) {
        for _ in 0..35 + self.pick(16) {
            let delivered = self.chance(0.35);
            let placed = if delivered {
                burst - self.ums(50 * HOUR_MS, 70 * HOUR_MS)
            } else {
                burst - self.ums(2 * HOUR_MS, 20 * HOUR_MS)
            };
            let placed = placed.max(now);
            let (buyer, created) = (self.new_id(), placed - self.ums(HOUR_MS, 48 * HOUR_MS));
            let l = self.pick(self.sellers[s].listings.len());
            let mut o = self.new_order(placed, s, l, buyer, created, Method::Standard);
            let mut p = vec![(placed, Step::Placed, 0)];
            if delivered {
                let ship = placed + self.ums(2 * HOUR_MS, 8 * HOUR_MS);
                (o.carrier, o.tracking) = self.new_tracking(Method::Standard);
                let acc = ship + self.ums(2 * HOUR_MS, 6 * HOUR_MS);
                let del = ship + self.ums(24 * HOUR_MS, 36 * HOUR_MS);
                p.push((ship, Step::Shipped, 0));
                p.push((acc, Step::Scan("accepted", false), OBLIG));
                p.push((acc + self.ums(6 * HOUR_MS, 12 * HOUR_MS), Step::Scan("in_transit", false), 0));
                p.push((del - self.ums(HOUR_MS, 4 * HOUR_MS), Step::Scan("out_for_delivery", true), 0));
                p.push((del, Step::Scan("delivered", true), 0));
                p.push((del + self.ums(5 * MIN_MS, HOUR_MS), Step::Delivered, 0));
            }
            p.push((burst + self.ums(0, 10 * HOUR_MS), Step::Review(5), MARKER));
            self.finish_plan(&mut o, p);
            self.push(placed, Act::Order(o));
        }
        let next = burst + self.ums(2 * DAY_MS, 4 * DAY_MS);
        self.push(next - 72 * HOUR_MS, Act::Fraud(s as u32, FraudStep::Brush(next)));
    }

    /// Fake-shipment sellers corrupt half of their shipments after the start.
    pub(super) fn ship_mode(&mut self) -> ShipMode {
        if !self.chance(0.5) {
            return ShipMode::Normal;
        }
        match self.u() {
            u if u < 0.25 => ShipMode::BadCheck,
            u if u < 0.35 => ShipMode::BadFormat,
            u if u < 0.45 => ShipMode::Unknown,
            u if u < 0.65 => ShipMode::Reuse,
            u if u < 0.85 => ShipMode::NoScan,
            _ => ShipMode::MethodSwitch,
        }
    }

    /// Assigns carrier + tracking number for `mode`; returns whether carrier scans will follow.
    pub(super) fn shipment(&mut self, o: &mut Order, mode: ShipMode) -> bool {
        if mode == ShipMode::MethodSwitch {
            // Cheaper (or at least different) service than the buyer paid for.
            o.ship_method = if o.method == Method::Standard { Method::Economy } else { Method::Standard };
        }
        (o.carrier, o.tracking) = self.new_tracking(o.ship_method);
        let s = o.seller as usize;
        let postal_no_check = matches!(o.carrier, "cainiao" | "yunexpress");
        match mode {
            ShipMode::Normal | ShipMode::MethodSwitch => {
                if self.sellers[s].family == Some(Family::FakeShipment) {
                    let r = &mut self.sellers[s].recent;
                    r.push_back((o.carrier, o.tracking.clone()));
                    if r.len() > 30 {
                        r.pop_front();
                    }
                }
                true
            }
            ShipMode::NoScan => false,
            ShipMode::Reuse if !self.sellers[s].recent.is_empty() => {
                let k = self.pick(self.sellers[s].recent.len());
                (o.carrier, o.tracking) = self.sellers[s].recent[k].clone();
                true
            }
            ShipMode::BadCheck | ShipMode::Reuse if !postal_no_check => {
                // Same format, wrong check digit (always the last digit before any suffix).
                let i = if o.carrier == "china_post" { 10 } else { o.tracking.len() - 1 };
                let d = u32::from(o.tracking.as_bytes()[i] - b'0');
                let bad = char::from(b'0' + ((d + 1 + self.pick(9) as u32) % 10) as u8);
                o.tracking.replace_range(i..=i, bad.encode_utf8(&mut [0; 4]));
                false
            }
            ShipMode::Unknown => {
                o.carrier = "fastship";
                o.tracking = format!("FS{:012}", self.new_id());
                false
            }
            _ => {
                o.tracking.truncate(o.tracking.len() - 2); // wrong length for the carrier
                false
            }
        }
    }

    /// Fee inflation on an order placed after the start: 5.5–10× the trailing (method, band)
    /// median on half the orders, and always on the cheap listings (fee > price as well).
    pub(super) fn inflate(&mut self, o: &mut Order, l: usize) -> bool {
        let s = o.seller as usize;
        let peer = self.fees[o.method as usize * 8 + band(o.weight)].median(40);
        if self.sellers[s].cheap.contains(&(l as u32)) {
            let peer = peer.unwrap_or((STD_FEE[band(o.weight)] * o.method.fee_mult()) as i64);
            let fee = (o.price as f64 * self.uf(1.3, 2.0)).max(peer as f64 * self.uf(5.5, 9.0));
            o.fee = fee.round() as i64;
            return true;
        }
        match peer {
            Some(m) if self.chance(0.5) => {
                o.fee = (m as f64 * self.uf(5.5, 10.0)).round() as i64;
                true
            }
            _ => false,
        }
    }
}
