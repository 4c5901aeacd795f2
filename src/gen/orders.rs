//! Orders: honest placement and lifecycle planning, and rendering of each lifecycle step.

use super::*;

impl Sim<'_> {
    /// Builds an order for seller `s` at `now` (fraud tweaks may alter it) and queues it.
    pub(super) fn place_honest(&mut self, now: i64, s: usize) {
        let fam = self.sellers[s].family.filter(|_| now >= self.sellers[s].fraud_start);
        let mut l = self.popular_listing(s);
        let cheap_share = 0.3 * self.cfg.intensity;
        if fam == Some(Family::FeeInflation) && !self.sellers[s].cheap.is_empty() && self.chance(cheap_share) {
            let k = self.pick(self.sellers[s].cheap.len());
            l = self.sellers[s].cheap[k] as usize;
        }
        let mut t = self.tweaks(fam, s, &mut l);
        let (buyer, created) = if self.chance(0.03) {
            (self.new_id(), now - self.ums(2 * HOUR_MS, 6 * DAY_MS)) // a few honest new accounts
        } else {
            self.pooled_buyer()
        };
        let u = self.u();
        let method = if u < 0.75 {
            Method::Standard
        } else if u < 0.9 {
            Method::Express
        } else {
            Method::Economy
        };
        let mut o = self.new_order(now, s, l, buyer, created, method);
        t.inflated = fam == Some(Family::FeeInflation) && self.inflate(&mut o, l);
        self.plan_lifecycle(now, &mut o, t);
        self.push(now, Act::Order(o));
    }

    /// An established account from the shared pool, with its stable creation date.
    pub(super) fn pooled_buyer(&mut self) -> (u64, i64) {
        let b = self.rng.random_range(0..400_000u64);
        (b, self.pooled_created(b))
    }

    pub(super) fn pooled_created(&self, b: u64) -> i64 {
        self.cfg.start_ms - 30 * DAY_MS - (splitmix(b ^ self.cfg.seed) % 1800) as i64 * DAY_MS
    }

    /// One of the seller's listings, skewed towards the first (popular) ones.
    pub(super) fn popular_listing(&mut self, s: usize) -> usize {
        let n = self.sellers[s].listings.len();
        ((self.u().powf(1.7)) * n as f64) as usize % n.max(1)
    }

    pub(super) fn new_order(
        &mut self,
        now: i64,
        s: usize,
        l: usize,
        buyer: u64,
        created: i64,
        method: Method,
    ) -> Box<Order> {
        let u = self.u();
        let qty = if u < 0.85 {
            1
        } else if u < 0.95 {
            2
        } else if u < 0.98 {
            3
        } else {
            4
        };
        let li = &self.sellers[s].listings[l];
        let (price, free) = (li.cur, li.free && method != Method::Express);
        let mut weight = li.weight * qty;
        if BANDS.contains(&weight) {
            weight += 1;
        }
        let fee = if free { 0 } else { self.std_fee(s, method, weight) };
        let mut r = self.pick(100) as u32;
        let dest = DEST
            .iter()
            .find(|&&(_, w)| {
                r < w || {
                    r -= w;
                    false
                }
            })
            .map_or("US", |d| d.0);
        let promised = [None, Some(48), Some(72), Some(72), Some(96)][self.pick(5)];
        let id = self.new_id();
        Box::new(Order {
            id,
            seller: s as u32,
            listing: l as u32,
            buyer,
            buyer_created: created.min(now - HOUR_MS),
            price,
            qty,
            fee,
            method,
            ship_method: method,
            dest,
            weight,
            promised,
            carrier: "",
            tracking: String::new(),
            conv: 0,
            plan: Vec::new(),
            next: 0,
            ship_out: false,
            msg_out: false,
            placed_out: false,
        })
    }

    /// Honest lifecycle, altered by the seller's fraud tweaks: placed → maybe a buyer message and
    /// its reply → shipped 6–60 h later within the promised dispatch time (1 % late) → accepted
    /// scan 2–30 h later → transit scans → delivered → maybe review.
    pub(super) fn plan_lifecycle(&mut self, now: i64, o: &mut Order, t: Tweaks) {
        let p = &mut Vec::with_capacity(12);
        let placed_flags = if t.inflated || t.late || t.phantom == Some(true) { MARKER } else { 0 };
        p.push((now, Step::Placed, placed_flags));
        if self.chance(t.chat) {
            let m = now + self.ums(30 * MIN_MS, 48 * HOUR_MS);
            o.conv = self.new_id();
            p.push((m, Step::Message, if t.ignore { MARKER } else { 0 }));
            let reply = if t.ignore {
                // Never answered, or days late.
                self.chance(0.5).then(|| m + self.ums(25 * HOUR_MS, 72 * HOUR_MS))
            } else if self.chance(0.02) {
                Some(m + self.ums(25 * HOUR_MS, 40 * HOUR_MS)) // an honest slow reply, now and then
            } else {
                Some(m + self.ums(10 * MIN_MS, 8 * HOUR_MS))
            };
            if let Some(r) = reply {
                p.push((r, Step::Reply, OBLIG));
            }
        }
        let promised = o.promised.unwrap_or(72) * HOUR_MS;
        if t.phantom.is_some() {
            // It cannot be sold: cancelled well before the dispatch deadline, so it is not late too.
            let at = now + self.ums(2 * HOUR_MS, (promised - 6 * HOUR_MS).min(30 * HOUR_MS));
            p.push((at, Step::Cancelled("seller", "out_of_stock"), MARKER | OBLIG));
            return self.finish_plan(o, std::mem::take(p));
        }
        let u = self.u();
        if t.mode == ShipMode::Normal && !t.inflated && !t.late && u < 0.04 {
            let (at, by, why) = if u < 0.03 {
                (self.ums(30 * MIN_MS, 5 * HOUR_MS), "buyer", "changed_mind")
            } else if u < 0.037 {
                (self.ums(2 * HOUR_MS, 24 * HOUR_MS), "seller", "out_of_stock")
            } else {
                (self.ums(5 * MIN_MS, HOUR_MS), "platform", "payment_failed")
            };
            // Owed after the stop like a dispatch: an order left neither shipped nor cancelled looks late.
            p.push((now + at, Step::Cancelled(by, why), OBLIG));
            return self.finish_plan(o, std::mem::take(p));
        }
        // Honest sellers ship within the promise (engine default 72 h when the order names none),
        // 1 % of the time late; late_dispatch fraudsters past it. The policy's "3 late and 15 %" is
        // sensitive to that rate at small shops: at 1.5 %, ~1 % of sellers cross it by chance over
        // a 45-day run (3 late of 16 in a slow week).
        let ship = now
            + if t.late {
                self.ums(promised + 4 * HOUR_MS, promised + 48 * HOUR_MS)
            } else if self.chance(0.01) {
                self.ums(promised + HOUR_MS, promised + 40 * HOUR_MS)
            } else {
                self.ums(6 * HOUR_MS, (promised - 4 * HOUR_MS).min(60 * HOUR_MS))
            };
        let mode = t.mode;
        let scans = self.shipment(o, mode);
        // Dispatches are owed even after the stop (fake ones too): no order is left looking late.
        p.push((ship, Step::Shipped, if mode == ShipMode::Normal { OBLIG } else { OBLIG | MARKER }));
        if !scans {
            p.push((ship + self.ums(8 * DAY_MS, 15 * DAY_MS), Step::Dispute("not_received"), 0));
            return self.finish_plan(o, std::mem::take(p));
        }
        let total = match o.ship_method {
            Method::Express => self.ums(2 * DAY_MS, 4 * DAY_MS),
            Method::Standard => self.ums(4 * DAY_MS, 10 * DAY_MS),
            Method::Economy => self.ums(8 * DAY_MS, 16 * DAY_MS),
        };
        let acc = ship + self.ums(2 * HOUR_MS, 30 * HOUR_MS);
        p.push((acc, Step::Scan("accepted", false), OBLIG));
        p.push((acc + self.ums(6 * HOUR_MS, 30 * HOUR_MS), Step::Scan("in_transit", false), 0));
        let del = (ship + total).max(acc + 40 * HOUR_MS);
        p.push((ship + (del - ship) * 3 / 5, Step::Scan("in_transit", true), 0));
        if self.chance(0.01) {
            p.push((ship + (del - ship) * 7 / 10, Step::Scan("exception", true), 0));
        }
        if mode == ShipMode::Normal && self.chance(0.008) {
            // Honest lost parcel: no further scans, buyer disputes later.
            p.push((del + self.ums(4 * DAY_MS, 8 * DAY_MS), Step::Dispute("not_received"), 0));
            return self.finish_plan(o, std::mem::take(p));
        }
        p.push((del - self.ums(2 * HOUR_MS, 8 * HOUR_MS), Step::Scan("out_for_delivery", true), 0));
        p.push((del, Step::Scan("delivered", true), 0));
        if mode == ShipMode::Reuse {
            // The scans belong to someone else's parcel: the buyer never gets theirs.
            p.push((del + self.ums(DAY_MS, 4 * DAY_MS), Step::Dispute("not_received"), 0));
            return self.finish_plan(o, std::mem::take(p));
        }
        let got = del + self.ums(5 * MIN_MS, 3 * HOUR_MS);
        p.push((got, Step::Delivered, 0));
        if self.chance(0.005) {
            p.push((got + self.ums(DAY_MS, 5 * DAY_MS), Step::Dispute("not_as_described"), 0));
        } else if self.chance(0.55) {
            let r = [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 3, 3, 2][self.pick(20)];
            let r = if r == 2 && self.chance(0.5) { 1 } else { r };
            p.push((got + self.ums(DAY_MS, 10 * DAY_MS), Step::Review(r), 0));
        }
        self.finish_plan(o, std::mem::take(p));
    }

    /// A fake order's fulfilment that trips no shipping rule: shipped within the promise with a
    /// fresh valid number and scanned all the way (`fast`: a domestic warehouse, confirmed within
    /// 45 h of the order).
    /// Without `scans` the colluding buyer confirms delivery 20–60 h after dispatch with no carrier
    /// scan ever: false_transactions.scanless_delivery, confirmed before fake_shipment's 72 h scan
    /// deadline so that rule stays quiet. Returns the steps after `Placed` and the confirmation time.
    pub(super) fn clean_plan(&mut self, placed: i64, o: &mut Order, fast: bool, scans: bool) -> (Vec<PlanStep>, i64) {
        let promised = o.promised.unwrap_or(72) * HOUR_MS;
        let ship = placed + self.ums(2 * HOUR_MS, (promised - 4 * HOUR_MS).min(if fast { 6 } else { 48 } * HOUR_MS));
        (o.carrier, o.tracking) = self.new_tracking(o.ship_method);
        let mut p = vec![(ship, Step::Shipped, OBLIG)];
        if !scans {
            let got = ship + self.ums(20 * HOUR_MS, 60 * HOUR_MS);
            p.push((got, Step::Delivered, OBLIG | MARKER));
            return (p, got);
        }
        let total = match (fast, o.ship_method) {
            (true, _) => self.ums(20 * HOUR_MS, 36 * HOUR_MS),
            (_, Method::Express) => self.ums(2 * DAY_MS, 4 * DAY_MS),
            (_, Method::Standard) => self.ums(4 * DAY_MS, 10 * DAY_MS),
            (_, Method::Economy) => self.ums(8 * DAY_MS, 16 * DAY_MS),
        };
        let acc = ship + self.ums(2 * HOUR_MS, 6 * HOUR_MS);
        let del = (ship + total).max(acc + 20 * HOUR_MS);
        p.push((acc, Step::Scan("accepted", false), OBLIG));
        p.push((acc + (del - acc) / 3, Step::Scan("in_transit", false), 0));
        p.push((acc + (del - acc) * 2 / 3, Step::Scan("in_transit", true), 0));
        p.push((del - self.ums(HOUR_MS, 4 * HOUR_MS), Step::Scan("out_for_delivery", true), 0));
        p.push((del, Step::Scan("delivered", true), 0));
        let got = del + self.ums(5 * MIN_MS, 3 * HOUR_MS);
        p.push((got, Step::Delivered, 0));
        (p, got)
    }

    pub(super) fn finish_plan(&mut self, o: &mut Order, mut p: Vec<PlanStep>) {
        p.sort_by_key(|e| e.0); // stable: causal order kept for equal timestamps
        o.plan = p;
    }

    /// Emits the order's next plan step and requeues the order for the one after.
    pub(super) fn order_step(&mut self, mut o: Box<Order>) {
        let Some(&(ts, step, flags)) = o.plan.get(o.next) else {
            return;
        };
        // Past the stop only obligations whose cause was emitted survive (first scan of an
        // emitted shipment, reply to an emitted message); skip over everything else.
        let parent_out = match step {
            Step::Reply => o.msg_out,
            Step::Shipped | Step::Cancelled(..) => o.placed_out,
            _ => o.ship_out,
        };
        if self.stopping && (flags & OBLIG == 0 || !parent_out) {
            o.next += 1;
            if let Some(&(t, ..)) = o.plan.get(o.next) {
                self.push(t.max(ts), Act::Order(o));
            }
            return;
        }
        o.msg_out |= matches!(step, Step::Message);
        o.placed_out |= matches!(step, Step::Placed);
        o.ship_out |= matches!(step, Step::Shipped);
        let s = o.seller as usize;
        let oid = format!("O{}", o.id);
        let ty = match step {
            Step::Placed => Ty::Placed,
            Step::Shipped => Ty::Shipped,
            Step::Scan(..) => Ty::Scan,
            Step::Delivered => Ty::Delivered,
            Step::Cancelled(..) => Ty::Cancelled,
            Step::Review(_) => Ty::Review,
            Step::Dispute(_) => Ty::Dispute,
            Step::Message => Ty::Message,
            Step::Reply => Ty::Reply,
        };
        let mut b = self.begin(ts, s, ty);
        let buyer = format!("B{}", o.buyer);
        match step {
            Step::Placed => {
                let li = &self.sellers[s].listings[o.listing as usize];
                let (lid, cat) = (li.id, li.cat);
                fs(&mut b, "order_id", &oid);
                fs(&mut b, "listing_id", &format!("L{lid}"));
                fs(&mut b, "buyer_id", &buyer);
                fs(&mut b, "category", CATEGORIES[cat].0);
                fm(&mut b, "price", o.price);
                fi(&mut b, "quantity", i64::from(o.qty));
                fm(&mut b, "shipping_fee", o.fee);
                fs(&mut b, "shipping_method", o.method.name());
                fs(&mut b, "destination_country", o.dest);
                fi(&mut b, "weight_grams", i64::from(o.weight));
                fts(&mut b, "buyer_created_at", o.buyer_created);
                if let Some(h) = o.promised {
                    fi(&mut b, "promised_dispatch_hours", h);
                }
                if o.fee > 0 {
                    self.fees[o.method as usize * 8 + band(o.weight)].push(ts, o.fee);
                }
            }
            Step::Shipped | Step::Scan(..) => {
                fs(&mut b, "order_id", &oid);
                fs(&mut b, "tracking_number", &o.tracking);
                fs(&mut b, "carrier", o.carrier);
                match step {
                    Step::Scan(status, at_dest) => {
                        fs(&mut b, "status", status);
                        fs(&mut b, "country", if at_dest { o.dest } else { "CN" });
                    }
                    _ => fs(&mut b, "shipping_method", o.ship_method.name()),
                }
            }
            Step::Delivered => fs(&mut b, "order_id", &oid),
            Step::Cancelled(by, why) => {
                fs(&mut b, "order_id", &oid);
                fs(&mut b, "by", by);
                fs(&mut b, "reason", why);
            }
            Step::Review(r) => {
                fs(&mut b, "order_id", &oid);
                fs(&mut b, "buyer_id", &buyer);
                fi(&mut b, "rating", i64::from(r));
                fts(&mut b, "buyer_created_at", o.buyer_created);
            }
            Step::Dispute(why) => {
                fs(&mut b, "order_id", &oid);
                fs(&mut b, "reason", why);
                fs(&mut b, "buyer_id", &buyer);
            }
            Step::Message | Step::Reply => {
                fs(&mut b, "conversation_id", &format!("C{}", o.conv));
                if matches!(step, Step::Message) {
                    fs(&mut b, "buyer_id", &buyer);
                }
            }
        }
        self.finish(b, ts, s, ty, flags);
        o.next += 1;
        if let Some(&(t, ..)) = o.plan.get(o.next) {
            self.push(t.max(ts), Act::Order(o));
        }
    }
}
