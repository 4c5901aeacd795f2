//! Fraud injection. Each fraud seller gets exactly one family (and, where the family has several
//! signals, one variant) and a start time after warm-up; a label is reported only once one of its
//! MARKER events (the first detectable ones) was emitted. Sizes are taken against the generator's
//! own trailing medians (`Trail`), i.e. the numbers the detectors compute.
//!
//! `GenConfig::intensity` scales every family from well past its default thresholds (1.0) towards
//! them (0.2 is mostly below): fewer bad events and smaller excesses, so a sweep shows each
//! threshold's trade-off. Injected fraud keeps clear of the other families wherever the real
//! behaviour allows: fake orders are shipped on time with valid numbers and scanned, cancellations
//! come before the dispatch deadline, bait prices stay above the dumping lines.
//!
//! Per-order fraud (fake shipments, inflated fees, late dispatch, ignored messages, phantom
//! listings) alters the seller's ordinary orders here; fake-order streams, listings and disputes
//! are in `fakes.rs`.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Family {
    FakeShipment,
    /// Variants: 0 a burst of fake five-stars, 1 a drip of them with one-star attacks on a
    /// competitor; 2 marks that competitor (honest, the target of the attacks).
    Rating,
    Dumping,
    FeeInflation,
    /// Variants: 0 order brushing, 1 repeat-buyer farming, 2 scanless deliveries, 3 new-account cluster.
    FalseTransactions,
    /// Variants: 0 the listing reports stock 0, 1 it reports no stock; both cancel as out of stock.
    Phantom,
    LateDispatch,
    SmallParcel,
    SlowResponse,
}

pub(super) const FAMILIES: [Family; 9] = [
    Family::FakeShipment,
    Family::Rating,
    Family::Dumping,
    Family::FeeInflation,
    Family::FalseTransactions,
    Family::Phantom,
    Family::LateDispatch,
    Family::SmallParcel,
    Family::SlowResponse,
];

impl Family {
    pub(super) fn name(self) -> &'static str {
        match self {
            Family::FakeShipment => "fake_shipment",
            Family::Rating => "rating_manipulation",
            Family::Dumping => "price_dumping",
            Family::FeeInflation => "shipping_fee_inflation",
            Family::FalseTransactions => "false_transactions",
            Family::Phantom => "phantom_listing",
            Family::LateDispatch => "late_dispatch",
            Family::SmallParcel => "small_parcel_restriction",
            Family::SlowResponse => "slow_response",
        }
    }
}

pub(super) enum FraudStep {
    Start,
    Dump,
    Restore(u32),
    /// Prepare the fake-review burst starting at this time.
    ReviewBurst(i64),
    OrderBrush,
    /// The next order of farmed buyer `k`.
    Farm(u32),
    Scanless,
    Cluster,
    Dispute,
    /// The next day of a review drip.
    Drip,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(super) enum ShipMode {
    #[default]
    Normal,
    BadCheck,
    BadFormat,
    Unknown,
    Reuse,
    NoScan,
    MethodSwitch,
}

/// Per-order fraud applied to an ordinary order's lifecycle (none for honest sellers).
#[derive(Clone, Copy, Default)]
pub(super) struct Tweaks {
    pub mode: ShipMode,
    /// shipping_fee_inflation: the fee was inflated (the placement is the detectable event).
    pub inflated: bool,
    /// late_dispatch: shipped past the promised dispatch time.
    pub late: bool,
    /// Probability that the buyer writes to the seller.
    pub chat: f64,
    /// slow_response: the buyer's message goes unanswered past the deadline.
    pub ignore: bool,
    /// phantom_listing: cancelled by the seller as out of stock; `Some(true)` when the listing
    /// reported stock 0 (then the order itself is already detectable).
    pub phantom: Option<bool>,
}

impl Tweaks {
    pub(super) fn honest() -> Self {
        Tweaks { chat: 0.1, ..Tweaks::default() }
    }
}

/// Day of the stream from which drip review fraud runs: by then honest reviews flow at about
/// three quarters of their steady rate (measured: 509 a day on day 14, 706 on day 17, ~880 from
/// day 20 on, 1,000 sellers).
const DRIP_SETTLE_DAYS: i64 = 16;

/// `weak` at intensity 0, `strong` at 1: how fraud sizes approach their thresholds.
pub(super) fn lerp(weak: f64, strong: f64, intensity: f64) -> f64 {
    weak + (strong - weak) * intensity
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
        // At least one seller per family whenever there are enough sellers.
        let k = ((self.cfg.fraud_share * n as f64).round() as usize).max(FAMILIES.len()).min(n - 1).min(pool.len());
        let warm = self.cfg.start_ms + i64::from(self.cfg.warmup_days) * DAY_MS;
        // Start in the first 40 % of the post-warm-up span so every family has time to show.
        let span = i64::from(self.cfg.days - self.cfg.warmup_days) * DAY_MS * 2 / 5;
        // Variants take turns (from a seeded offset): any four false_transactions sellers show all four signals.
        let offset = self.pick(4);
        for (j, &s) in pool.iter().take(k).enumerate() {
            let fam = FAMILIES[j % FAMILIES.len()];
            let start = warm + self.ums(0, span);
            let turn = j / FAMILIES.len() + offset;
            let variant = match fam {
                Family::FalseTransactions => (turn % 4) as u8,
                Family::Phantom | Family::Rating => (turn % 2) as u8,
                _ => 0,
            };
            // A drip is judged against the platform's base share of reviews: it starts once the
            // honest review flow has settled (orders are reviewed days after delivery, so reviews
            // ramp up over the first two weeks of a generated stream, and before that the other
            // rating fraud makes most of them). Shorter runs have no drip.
            let start = if fam == Family::Rating && variant == 1 {
                start.max(self.cfg.start_ms + DRIP_SETTLE_DAYS * DAY_MS)
            } else {
                start
            };
            let sel = &mut self.sellers[s];
            (sel.family, sel.fraud_start, sel.variant) = (Some(fam), start, variant);
            // Rating fraudsters stay small so a burst dwarfs their honest review flow (and their
            // 7-day delivered count); rate rules need enough orders (and, for slow_response,
            // messages) for ≥ 3 flags a week (phantom sellers' 5/day keep 3 bad orders likely within
            // 2 days); the small-parcel rule counts disputes, not a share.
            sel.rate = match fam {
                Family::Rating => sel.rate.clamp(1.0, 2.5),
                Family::SlowResponse => sel.rate.clamp(6.0, 25.0),
                Family::SmallParcel => sel.rate.clamp(1.0, 25.0),
                Family::Phantom => sel.rate.clamp(5.0, 25.0),
                _ => sel.rate.clamp(4.0, 25.0),
            };
            self.push(start, Act::Fraud(s as u32, FraudStep::Start));
        }
        // Each drip seller attacks a competitor worth attacking: among the honest sellers below
        // the giants (one-stars would drown in their volume), the busiest left, so the attack
        // stays a minority of its reviews.
        let drippers: Vec<usize> = (0..n)
            .filter(|&s| self.sellers[s].family == Some(Family::Rating) && self.sellers[s].variant == 1)
            .collect();
        let mut honest: Vec<usize> = pool.iter().skip(k).copied().collect();
        honest.sort_by(|a, b| self.sellers[*a].rate.total_cmp(&self.sellers[*b].rate).then(a.cmp(b)));
        for d in drippers {
            let Some(v) = honest.pop() else { break };
            let start = self.sellers[d].fraud_start;
            let tv = &mut self.sellers[v];
            (tv.family, tv.fraud_start, tv.variant) = (Some(Family::Rating), start, 2);
            self.sellers[d].target = Some(v as u32);
        }
    }

    pub(super) fn fraud_step(&mut self, ts: i64, s: usize, step: FraudStep) {
        let Some(fam) = self.sellers[s].family else {
            return;
        };
        let variant = self.sellers[s].variant;
        match (fam, step) {
            (Family::Rating, FraudStep::Start) if variant == 1 => self.review_drip(ts, s),
            (Family::Rating, FraudStep::Drip) => self.review_drip(ts, s),
            (Family::Rating, FraudStep::Start) => self.review_burst(ts, s, ts + 72 * HOUR_MS),
            (Family::Rating, FraudStep::ReviewBurst(burst)) => self.review_burst(ts, s, burst),
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
            (Family::FeeInflation, FraudStep::Start) => self.fee_listings(ts, s),
            (Family::FalseTransactions, FraudStep::Start) => match variant {
                0 => self.order_brush(ts, s),
                1 => self.start_farm(ts, s),
                2 => self.scanless(ts, s),
                _ => self.start_cluster(ts, s),
            },
            (Family::FalseTransactions, FraudStep::OrderBrush) => self.order_brush(ts, s),
            (Family::FalseTransactions, FraudStep::Farm(k)) => self.farm_order(ts, s, k),
            (Family::FalseTransactions, FraudStep::Scanless) => self.scanless(ts, s),
            (Family::FalseTransactions, FraudStep::Cluster) => self.cluster_order(ts, s),
            (Family::Phantom, FraudStep::Start) => self.make_phantoms(ts, s),
            (Family::SmallParcel, FraudStep::Start | FraudStep::Dispute) => self.expired_dispute(ts, s),
            // fake_shipment, late_dispatch and slow_response act on each order (`tweaks`).
            _ => {}
        }
    }

    /// The per-order fraud of seller `s` (family `fam` once started); may move the order to
    /// another listing `l`.
    pub(super) fn tweaks(&mut self, fam: Option<Family>, s: usize, l: &mut usize) -> Tweaks {
        let i = self.cfg.intensity;
        let mut t = Tweaks::honest();
        match fam {
            Some(Family::FakeShipment) => t.mode = self.ship_mode(),
            Some(Family::LateDispatch) => t.late = self.chance(0.6 * i),
            Some(Family::SlowResponse) => {
                // Buyers of a seller who does not answer write (and chase) more.
                t.chat = 0.6;
                t.ignore = self.chance(0.75 * i);
            }
            Some(Family::Phantom) => {
                let ls = &self.sellers[s].listings;
                let phantoms: Vec<usize> = (0..ls.len()).filter(|&k| ls[k].phantom).collect();
                let real: Vec<usize> = (0..ls.len()).filter(|&k| !ls[k].phantom).collect();
                if !phantoms.is_empty() && self.chance(0.55 * i) {
                    *l = phantoms[self.pick(phantoms.len())];
                    t.phantom = Some(self.sellers[s].variant == 0);
                } else if self.sellers[s].listings[*l].phantom && !real.is_empty() {
                    *l = real[self.pick(real.len())];
                }
            }
            _ => {}
        }
        t
    }

    /// Fake-shipment sellers corrupt up to half of their shipments after the start.
    pub(super) fn ship_mode(&mut self) -> ShipMode {
        if !self.chance(0.5 * self.cfg.intensity) {
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
    /// median on half the orders at full intensity (a tenth of them at 2.3–3.2×, around the 3×
    /// line, at 0.2), and always on the cheap listings (fee above the price and the peer median).
    pub(super) fn inflate(&mut self, o: &mut Order, l: usize) -> bool {
        let (s, i) = (o.seller as usize, self.cfg.intensity);
        let peer = self.fees[o.method as usize * 8 + band(o.weight)].median(40);
        if self.sellers[s].cheap.contains(&(l as u32)) {
            let peer = peer.unwrap_or((STD_FEE[band(o.weight)] * o.method.fee_mult()) as i64);
            let over_price = lerp(1.0, self.uf(1.3, 2.0), i);
            // The rule's line is 1.5× the peer median.
            let over_peer = lerp(1.0, self.uf(2.5, 9.0), i);
            o.fee = (o.price as f64 * over_price).max(peer as f64 * over_peer).round() as i64;
            return true;
        }
        match peer {
            Some(m) if self.chance(0.5 * i) => {
                o.fee = (m as f64 * lerp(1.5, self.uf(5.5, 10.0), i)).round() as i64;
                true
            }
            _ => false,
        }
    }

    /// New listings priced at ~22.5 % of the category median: under the 25 % of the fee rule,
    /// above the 20 % new-listing rule of price_dumping (no cross-alert). Used by a share
    /// `intensity` of the sellers: a fee above a cheap item's price is above 1.5× the peer fee
    /// whenever the price is, so this trick cannot be made subtle, only rarer.
    fn fee_listings(&mut self, ts: i64, s: usize) {
        if !self.chance(self.cfg.intensity) {
            return;
        }
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

    /// The seller category with the most trailing samples (so the detector can evaluate it).
    pub(super) fn busiest_cat(&self, s: usize) -> usize {
        let cats = &self.sellers[s].cats;
        *cats.iter().max_by_key(|&&c| (self.cat_prices[c].0.len(), std::cmp::Reverse(c))).unwrap_or(&0)
    }

    /// Drops one listing to ~10 % of the category median at full intensity (≥ 76 % below its list
    /// price, since honest list prices are ≥ 0.5× base), ~25 % (the line) at 0.2; 60 % of the time
    /// raises it back 1–3 days later.
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
        let ratio = lerp(0.29, 0.10, self.cfg.intensity) + self.uf(-0.02, 0.02);
        let price = ((med as f64 * ratio).round() as i64).max(1);
        let li = &mut self.sellers[s].listings[l];
        (li.cur, li.promo) = (price.min(li.list / 2), true);
        self.render_listing(ts, s, l, MARKER);
        if self.chance(0.6) {
            let t = ts + self.ums(DAY_MS, 3 * DAY_MS);
            self.push(t, Act::Fraud(s as u32, FraudStep::Restore(l as u32)));
        }
    }
}
