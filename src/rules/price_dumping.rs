//! `price_dumping` (seed rule: do not significantly underestimate the cost of a product to get into
//! the TOP of search).
//!
//! A listing price below `max_ratio_to_median` of its category's trailing median (from a windowed
//! quantile sketch with ≥ `min_samples`) that is also a drop of ≥ `min_drop` from the listing's
//! previous price; or a new listing below `new_listing_max_ratio` of the median. An honest sale
//! (−20…−40 %) stays far above a quarter of the market price. A new listing must also be below the
//! category's low quantile (`new_listing_max_quantile`): broad categories hold honest cheap items.
//! Raising the price back to
//! `restored_ratio` of its pre-dump level within `raise_window_hours` is dump-and-raise: a second
//! alert (`price_dumping.dump_and_raise`) one severity level higher.

use serde_json::json;

use super::policy::{excess, round2, round3};
use super::state::{Market, SellerState};
use super::{Emitter, Finding};
use crate::alert::Severity;
use crate::config::PriceDumpingConfig;
use crate::decode::Id;
use crate::decode::{hours_ms, Event, Listing, Millis};

/// A dumped price on record, waiting to see whether it is raised back.
#[derive(Debug, Clone)]
pub struct Dump {
    pub ts: Millis,
    pub event_id: Id,
    pub before: Option<f64>,
    pub price: f64,
    pub median: f64,
    pub severity: Severity,
}

/// Adds a listing's price to its category baseline unless the new-listing line would flag it: a
/// dumper cannot drag the median down. The test needs no seller state, so every instance builds the
/// same baseline from the whole stream, including partitions whose sellers it does not judge.
pub fn feed_baseline(cfg: &PriceDumpingConfig, market: &mut Market, l: &Listing, ts: Millis) {
    let dumped = cfg.enabled
        && market.category_median(&l.category, ts, cfg.min_samples).is_some_and(|(med, _)| {
            l.price / med < cfg.new_listing_max_ratio
                && market
                    .category_quantile(&l.category, ts, cfg.new_listing_max_quantile, cfg.min_samples)
                    .is_some_and(|q| l.price < q)
        });
    if !dumped {
        market.category_price(&l.category).insert(ts, l.price);
    }
}

/// Handles a `listing` event; records the listing's price in the seller's state (the caller feeds
/// the category baseline afterwards, see [`feed_baseline`]).
pub fn on_listing(
    cfg: &PriceDumpingConfig,
    market: &mut Market,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    l: &Listing,
    em: &mut Emitter,
) {
    let prev = seller.listings.get(&l.listing_id).map(|r| (r.price, r.dump.clone()));
    let median = market.category_median(&l.category, ev.ts, cfg.min_samples);
    let mut dump = prev.as_ref().and_then(|(_, d)| d.clone());

    if let Some(d) = dump.take() {
        let within = ev.ts - d.ts <= hours_ms(cfg.raise_window_hours);
        let restored = match d.before {
            Some(before) => l.price >= cfg.restored_ratio * before,
            None => l.price >= cfg.max_ratio_to_median * d.median,
        };
        if within && restored {
            raised(cfg, seller, seller_id, ev, l, &d, em);
        } else if within {
            dump = Some(d);
        }
    }

    if let Some((med, samples)) = median {
        let ratio = l.price / med;
        let signal = match prev {
            Some((before, _)) if ratio < cfg.max_ratio_to_median && l.price <= (1.0 - cfg.min_drop) * before => {
                Some(("drop", Some(before), excess(cfg.max_ratio_to_median, ratio)))
            }
            None if ratio < cfg.new_listing_max_ratio
                && market
                    .category_quantile(&l.category, ev.ts, cfg.new_listing_max_quantile, cfg.min_samples)
                    .is_some_and(|q| l.price < q) =>
            {
                Some(("new_listing", None, excess(cfg.new_listing_max_ratio, ratio)))
            }
            _ => None,
        };
        if let Some((kind, before, score)) = signal {
            let severity = cfg.severity.severity(score);
            let mut evidence = json!({
                "signal": kind,
                "listing_id": &*l.listing_id,
                "category": &*l.category,
                "price": round2(l.price),
                "category_median": round2(med),
                "median_samples": samples,
                "median_window_hours": cfg.median_window_hours,
                "ratio_to_median": round3(ratio),
                "thresholds": { "max_ratio_to_median": cfg.max_ratio_to_median, "min_drop": cfg.min_drop,
                                "new_listing_max_ratio": cfg.new_listing_max_ratio, "min_samples": cfg.min_samples },
            });
            let message = match before {
                Some(b) => {
                    evidence["previous_price"] = json!(round2(b));
                    evidence["drop"] = json!(round3(1.0 - l.price / b));
                    format!(
                        "Seller {seller_id} cut listing {} from {b:.2} to {:.2} USD, {:.0}% of the {} median {med:.2} (dumping line {:.0}%).",
                        l.listing_id, l.price, ratio * 100.0, l.category, cfg.max_ratio_to_median * 100.0
                    )
                }
                None => format!(
                    "Seller {seller_id} listed {} at {:.2} USD, {:.0}% of the {} median {med:.2} (new-listing line {:.0}%).",
                    l.listing_id, l.price, ratio * 100.0, l.category, cfg.new_listing_max_ratio * 100.0
                ),
            };
            let d = Dump { ts: ev.ts, event_id: ev.event_id.clone(), before, price: l.price, median: med, severity };
            dump = Some(Box::new(d));
            em.emit(
                seller_id,
                seller,
                Finding {
                    rule: "price_dumping",
                    score,
                    severity,
                    trigger: ev.event_id.to_string(),
                    event_time: ev.ts,
                    evidence,
                    message,
                },
            );
        }
    }
    seller.listings.upsert(l, ev.ts).dump = dump;
}

fn raised(
    cfg: &PriceDumpingConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    l: &Listing,
    d: &Dump,
    em: &mut Emitter,
) {
    let hours = (ev.ts - d.ts) as f64 / 3_600_000.0;
    let evidence = json!({
        "signal": "dump_and_raise",
        "listing_id": &*l.listing_id,
        "category": &*l.category,
        "price_before_dump": d.before.map(round2),
        "dumped_price": round2(d.price),
        "raised_price": round2(l.price),
        "category_median_at_dump": round2(d.median),
        "dump_event_id": &*d.event_id,
        "dumped_at": crate::alert::rfc3339(d.ts),
        "hours_at_dumped_price": (hours * 10.0).round() / 10.0,
        "thresholds": { "raise_window_hours": cfg.raise_window_hours, "restored_ratio": cfg.restored_ratio },
    });
    let message = format!(
        "Seller {seller_id} raised listing {} back to {:.2} USD {hours:.1}h after dumping it to {:.2}: dump-and-raise to game search ranking.",
        l.listing_id, l.price, d.price
    );
    em.emit(
        seller_id,
        seller,
        Finding {
            rule: "price_dumping.dump_and_raise",
            score: excess(d.median * cfg.max_ratio_to_median, d.price).max(1.0),
            severity: d.severity.raised(),
            trigger: ev.event_id.to_string(),
            event_time: ev.ts,
            evidence,
            message,
        },
    );
}
