//! Simulation core: seller setup, the event-time loop, listing activity and the emit path
//! (envelope rendering, bounded reorder, labels).

use super::*;

impl<'a> Sim<'a> {
    pub(super) fn new(cfg: &GenConfig, emit: &'a mut dyn FnMut(&str, &str)) -> Self {
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let tracking = [
            rng.random_range(1_000_000..9_000_000),
            rng.random_range(10_000_000_000_000..20_000_000_000_000),
            rng.random_range(1_000_000_000_000_000..2_000_000_000_000_000),
            rng.random_range(0..100_000_000),
            rng.random_range(100_000_000_000_000..200_000_000_000_000),
        ];
        let mut sim = Sim {
            cfg: cfg.clone(),
            rng,
            emit,
            sellers: Vec::with_capacity(cfg.sellers),
            heap: BinaryHeap::new(),
            out: BinaryHeap::new(),
            seq: 0,
            next_id: 1_000_000,
            tracking,
            emitted: 0,
            by_type: [0; 10],
            since: vec![None; cfg.sellers],
            end_ms: cfg.start_ms + i64::from(cfg.days) * DAY_MS,
            stopping: false,
            cat_prices: (0..CATEGORIES.len()).map(|_| Trail::default()).collect(),
            fees: (0..24).map(|_| Trail::default()).collect(),
        };
        sim.init_sellers();
        sim
    }

    // ---- randomness helpers (never panic: no empty ranges) ----
    pub(super) fn u(&mut self) -> f64 {
        self.rng.random::<f64>()
    }
    pub(super) fn uf(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.u()
    }
    pub(super) fn ums(&mut self, a: i64, b: i64) -> i64 {
        a + ((b - a) as f64 * self.u()) as i64
    }
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.u() < p
    }
    pub(super) fn pick(&mut self, n: usize) -> usize {
        ((self.u() * n as f64) as usize).min(n.saturating_sub(1))
    }
    pub(super) fn normal(&mut self) -> f64 {
        let (a, b) = (self.u().max(1e-12), self.u());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }
    pub(super) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(super) fn push(&mut self, ts: i64, act: Act) {
        self.seq += 1;
        self.heap.push(Reverse(Item { ts, seq: self.seq, act }));
    }

    pub(super) fn init_sellers(&mut self) {
        let n = self.cfg.sellers;
        // Random rank permutation so ids don't reveal size; rank 1 sells ~280 orders/day.
        let mut ranks: Vec<usize> = (1..=n).collect();
        for i in (1..n).rev() {
            let j = self.pick(i + 1);
            ranks.swap(i, j);
        }
        let rates: Vec<f64> = ranks.iter().map(|&r| (280.0 / (r as f64).powf(1.1)).max(0.6)).collect();
        if let Some(t) = self.cfg.target_events {
            // Extend the simulated span (not per-seller volume, which keeps its realistic shape)
            // until the target fits; the first ~5.5 days are a ramp-up with few lifecycle events.
            let nl: f64 = rates.iter().map(|r| listings_for(*r) as f64).sum();
            let per_day = rates.iter().sum::<f64>() * EVENTS_PER_ORDER + nl / 3.0 + n as f64 * 0.6;
            let need = (t as f64 * 1.05 / per_day + 5.5).ceil().min(3660.0) as u32;
            self.cfg.days = self.cfg.days.max(need);
            self.end_ms = self.cfg.start_ms + i64::from(self.cfg.days) * DAY_MS;
        }
        for (i, &rate) in rates.iter().enumerate() {
            let ncat = 1 + self.pick(3);
            let cats: Vec<usize> = (0..ncat).map(|_| self.pick(CATEGORIES.len())).collect();
            let mut s = Seller {
                id: format!("seller-{i:05}"),
                rate,
                cats,
                fee_factor: self.uf(0.9, 1.1),
                listings: Vec::new(),
                family: None,
                fraud_start: i64::MAX,
                recent: VecDeque::new(),
                cheap: Vec::new(),
                variant: 0,
                farm: Vec::new(),
                target: None,
            };
            let free_share = self.uf(0.0, 0.5);
            let nl = listings_for(rate);
            for _ in 0..nl {
                let cat = s.cats[self.pick(s.cats.len())];
                let l = self.new_listing(cat, free_share);
                s.listings.push(l);
            }
            self.sellers.push(s);
        }
        let start = self.cfg.start_ms;
        for s in 0..n as u32 {
            for l in 0..self.sellers[s as usize].listings.len() as u32 {
                let t = start + self.ums(0, 10 * MIN_MS);
                self.push(t, Act::ListingOut(s, l, 0));
            }
        }
        self.setup_fraud(&ranks);
        for s in 0..n {
            // A few honest sellers get one expired-protection dispute: allowed, the rule needs two.
            if self.sellers[s].family.is_none() && self.chance(0.03) {
                let t = start + self.ums(0, i64::from(self.cfg.days) * DAY_MS);
                self.push(t, Act::HonestDispute(s as u32));
            }
        }
        for s in 0..n as u32 {
            let rate = self.sellers[s as usize].rate;
            let t = self.next_arrival(start + 10 * MIN_MS, rate);
            self.push(t, Act::Arrival(s));
            let nl = self.sellers[s as usize].listings.len() as f64;
            for (act, per_day) in [(Act::Tick(s), nl / 3.0), (Act::SaleStart(s), 0.25), (Act::NewListing(s), 0.1)] {
                let t = start + self.exp_ms(per_day);
                self.push(t, act);
            }
        }
    }

    pub(super) fn new_listing(&mut self, cat: usize, free_share: f64) -> Listing {
        let (_, base, w) = CATEGORIES[cat];
        // Floor at 0.55× base so honest sales (≥0.6× list) stay ≥ 0.33× base: clear of the
        // dumping (20 %/25 %) and fee-rule (25 %) price thresholds.
        let price = (base * (0.45 * self.normal()).exp()).clamp(0.55 * base, 2.5 * base);
        let mut weight = (w * (0.3 * self.normal()).exp()).clamp(0.5 * w, 2.0 * w) as u32;
        if BANDS.contains(&weight) {
            weight += 1; // avoid "<=" vs "<" ambiguity at band edges
        }
        let cents = (price * 100.0).round() as i64;
        let free = self.chance(free_share);
        Listing { id: self.new_id(), cat, list: cents, cur: cents, weight, free, promo: false, phantom: false }
    }

    pub(super) fn exp_ms(&mut self, per_day: f64) -> i64 {
        let u = self.u().max(1e-12);
        (-u.ln() / per_day.max(1e-6) * DAY_MS as f64).min(1e15) as i64
    }

    /// Poisson arrivals with a diurnal cycle (peak 14:00 UTC), via thinning.
    pub(super) fn next_arrival(&mut self, now: i64, per_day: f64) -> i64 {
        let mut t = now;
        loop {
            t += self.exp_ms(per_day * 1.5).max(1);
            let h = (t.rem_euclid(DAY_MS) as f64) / HOUR_MS as f64;
            let f = 1.0 + 0.5 * ((h - 14.0) / 24.0 * std::f64::consts::TAU).cos();
            if self.u() * 1.5 < f || t > self.end_ms {
                return t;
            }
        }
    }

    pub(super) fn std_fee(&self, s: usize, method: Method, weight: u32) -> i64 {
        (STD_FEE[band(weight)] * method.fee_mult() * self.sellers[s].fee_factor).round() as i64
    }

    pub(super) fn new_tracking(&mut self, method: Method) -> (&'static str, String) {
        let u = self.u();
        let c = match method {
            Method::Standard => [0, 0, 1, 1, 2][(u * 5.0) as usize % 5],
            Method::Economy => (u * 2.0) as usize % 2,
            Method::Express => 3 + (u * 2.0) as usize % 2,
        };
        self.tracking[c] += 1 + self.pick(37) as u64;
        (CARRIERS[c], util::build_tracking(c, self.tracking[c]))
    }

    pub(super) fn run(&mut self) {
        while let Some(Reverse(Item { ts, act, .. })) = self.heap.pop() {
            self.flush(ts);
            let target_hit = self.cfg.target_events.is_some_and(|t| self.emitted >= t as u64);
            if !self.stopping && (ts >= self.end_ms || target_hit) {
                self.stopping = true;
            }
            match act {
                Act::Order(o) => self.order_step(o),
                _ if self.stopping => {}
                Act::Arrival(s) => {
                    self.place_honest(ts, s as usize);
                    let t = self.next_arrival(ts, self.sellers[s as usize].rate);
                    self.push(t, Act::Arrival(s));
                }
                Act::ListingOut(s, l, flags) => self.render_listing(ts, s as usize, l as usize, flags),
                Act::Tick(s) => {
                    let n = self.sellers[s as usize].listings.len();
                    let l = self.pick(n);
                    if !self.sellers[s as usize].listings[l].promo {
                        self.render_listing(ts, s as usize, l, 0); // stock update, same price
                    }
                    let t = ts + self.exp_ms(n as f64 / 3.0);
                    self.push(t, Act::Tick(s));
                }
                Act::SaleStart(s) => {
                    for _ in 0..1 + self.pick(2) {
                        let l = self.pick(self.sellers[s as usize].listings.len());
                        let (list, promo) =
                            (self.sellers[s as usize].listings[l].list, self.sellers[s as usize].listings[l].promo);
                        if promo {
                            continue;
                        }
                        let cur = (list as f64 * self.uf(0.6, 0.8)).ceil() as i64;
                        let li = &mut self.sellers[s as usize].listings[l];
                        (li.cur, li.promo) = (cur, true);
                        self.render_listing(ts, s as usize, l, 0);
                        let t = ts + self.ums(DAY_MS, 2 * DAY_MS);
                        self.push(t, Act::SaleEnd(s, l as u32));
                    }
                    let t = ts + self.ums(2 * DAY_MS, 6 * DAY_MS);
                    self.push(t, Act::SaleStart(s));
                }
                Act::SaleEnd(s, l) => {
                    let li = &mut self.sellers[s as usize].listings[l as usize];
                    (li.cur, li.promo) = (li.list, false);
                    self.render_listing(ts, s as usize, l as usize, 0);
                }
                Act::NewListing(s) => {
                    let k = self.pick(self.sellers[s as usize].cats.len());
                    let (cat, n) = (self.sellers[s as usize].cats[k], self.sellers[s as usize].listings.len());
                    if n < 200 {
                        let l = self.new_listing(cat, 0.2);
                        self.sellers[s as usize].listings.push(l);
                        self.render_listing(ts, s as usize, n, 0);
                    }
                    let t = ts + self.exp_ms(0.1);
                    self.push(t, Act::NewListing(s));
                }
                Act::Fraud(s, step) => self.fraud_step(ts, s as usize, step),
                Act::HonestDispute(s) => self.honest_dispute(ts, s as usize),
            }
        }
        self.flush(i64::MAX);
    }

    /// Starts a JSON line with the common envelope; ~10 % of `ts` are epoch-millis integers.
    pub(super) fn begin(&mut self, ts: i64, s: usize, ty: Ty) -> String {
        self.seq += 1;
        let mut b = String::with_capacity(320);
        let _ = write!(
            b,
            "{{\"event_id\":\"ev{:x}-{:x}\",\"type\":\"{}\",\"seller_id\":\"{}\"",
            self.cfg.seed, self.seq, TY_NAMES[ty as usize], self.sellers[s].id
        );
        if self.chance(0.1) {
            fi(&mut b, "ts", ts);
        } else {
            fts(&mut b, "ts", ts);
        }
        b
    }

    /// Queues a finished line; ~5 % get an emission delay ≤ max_disorder (see `flush`).
    pub(super) fn finish(&mut self, mut b: String, ts: i64, s: usize, ty: Ty, flags: u8) {
        b.push('}');
        let d = if self.chance(0.05) { self.ums(0, self.cfg.max_disorder_ms + 1) } else { 0 };
        self.seq += 1;
        self.out.push(Reverse((ts + d, self.seq, s as u32, ty as u8, ts, flags & MARKER != 0, b)));
    }

    /// Emits lines whose key (ts + delay) ≤ `upto`, the current simulation time. Every later
    /// event has ts ≥ upto, so when a line is emitted the max ts emitted so far ≤ its key ≤
    /// its ts + max_disorder: the disorder bound holds by construction.
    pub(super) fn flush(&mut self, upto: i64) {
        while self.out.peek().is_some_and(|Reverse(e)| e.0 <= upto) {
            let Some(Reverse((_, _, s, ty, ts, marker, line))) = self.out.pop() else {
                break;
            };
            (self.emit)(&self.sellers[s as usize].id, &line);
            self.emitted += 1;
            self.by_type[ty as usize] += 1;
            if marker {
                let e = &mut self.since[s as usize];
                *e = Some(e.map_or(ts, |x| x.min(ts)));
            }
        }
    }

    pub(super) fn render_listing(&mut self, ts: i64, s: usize, l: usize, flags: u8) {
        let (id, cat, cur, weight, free, phantom) = {
            let li = &self.sellers[s].listings[l];
            (li.id, li.cat, li.cur, li.weight, li.free, li.phantom)
        };
        let fee = if free { 0 } else { self.std_fee(s, Method::Standard, weight) };
        let mut b = self.begin(ts, s, Ty::Listing);
        fs(&mut b, "listing_id", &format!("L{id}"));
        fs(&mut b, "category", CATEGORIES[cat].0);
        fm(&mut b, "price", cur);
        fm(&mut b, "shipping_fee", fee);
        if self.chance(0.7) {
            fs(&mut b, "currency", "USD");
        }
        if phantom {
            // Variant 0 reports the empty stock it sells anyway; variant 1 stops reporting stock.
            if self.sellers[s].variant == 0 {
                fi(&mut b, "stock", 0);
            }
        } else if self.chance(0.8) {
            fi(&mut b, "stock", 5 + self.pick(500) as i64);
        }
        self.finish(b, ts, s, Ty::Listing, flags);
        self.cat_prices[cat].push(ts, cur);
    }

    pub(super) fn summary(&self) -> GenSummary {
        let by_type = TY_NAMES.iter().zip(self.by_type).map(|(n, c)| (n.to_string(), c)).collect();
        let labels = self
            .sellers
            .iter()
            .zip(&self.since)
            .filter_map(|(s, since)| {
                let scenario =
                    (s.family? == Family::Rating && s.variant > 0).then(|| "rating_manipulation.drip".into());
                Some(Label {
                    seller_id: s.id.clone(),
                    family: s.family?.name().into(),
                    since: rfc3339((*since)?),
                    scenario,
                })
            })
            .collect();
        GenSummary { events: self.emitted, by_type, labels }
    }
}
