//! `rating_manipulation.drip`: review features, the platform's base share, and the seller test.

use super::*;
use crate::config::RatingConfig;
use crate::rules::drip::{Direction, Reviewers};

const OLD: Option<Millis> = Some(T0 - 400 * D);
/// Ratings of honest traffic: mean 4.2, one one-star in ten.
const HONEST: [u8; 10] = [5, 5, 4, 5, 4, 3, 5, 4, 5, 1];

fn rev(buyer: &str, rating: u8, created: Option<Millis>) -> Review {
    Review { order_id: "o".into(), buyer_id: buyer.into(), rating, buyer_created_at: created }
}

/// `buyer` reviews another seller first, so that its next review is an established reviewer's.
fn established(r: &mut Reviewers, cfg: &RatingConfig, buyer: &str, ts: Millis) {
    r.review(cfg, "elsewhere", &rev(buyer, 4, OLD), ts - D);
}

/// Established reviewers of seller `s` give `ratings`, all at `ts`.
fn yardstick(r: &mut Reviewers, cfg: &RatingConfig, ratings: &[u8], ts: Millis) {
    for (i, rating) in ratings.iter().enumerate() {
        let buyer = format!("known{i}");
        established(r, cfg, &buyer, ts);
        let f = r.review(cfg, "s", &rev(&buyer, *rating, OLD), ts);
        assert!(!f.first_review && f.class.is_none(), "an established reviewer is never a drip");
    }
}

#[test]
fn a_review_is_classed_by_first_review_age_extremity_and_distance_from_the_sellers_median() {
    let cfg = RatingConfig::default();
    let mut r = Reviewers::new(&cfg.drip);
    // Six established reviewers rate s four stars: its median is 4 (an effective 5.99 reviews
    // an hour later: past the 5 it needs).
    yardstick(&mut r, &cfg, &[4; 6], T0);
    let t = T0 + H;
    // One star, first review, 3 below the median: attack class.
    let f = r.review(&cfg, "s", &rev("fresh1", 1, OLD), t);
    assert!(f.first_review && f.seller_median && !f.new_account);
    assert_eq!((f.median, f.class), (4.0, Some(Direction::Attack)));
    // The same buyer again (on another seller): no longer a first review.
    let f = r.review(&cfg, "other", &rev("fresh1", 1, OLD), t + H);
    assert!(!f.first_review);
    assert_eq!(f.class, None, "a returning reviewer's one star is not a drip");
    // Five stars from a first-time old account, 1 above the median: not far enough.
    let f = r.review(&cfg, "s", &rev("fresh2", 5, OLD), t + 2 * H);
    assert_eq!((f.median, f.class), (4.0, None));
    // From an account two days old: inflate class whatever the distance.
    let f = r.review(&cfg, "s", &rev("fresh3", 5, Some(t - 2 * D)), t + 3 * H);
    assert!(f.new_account);
    assert_eq!(f.class, Some(Direction::Inflate));
    // Not extreme: a four from a brand-new account is no class.
    let f = r.review(&cfg, "s", &rev("fresh4", 4, Some(t - D)), t + 4 * H);
    assert_eq!(f.class, None);
}

#[test]
fn distance_is_measured_from_the_median_before_the_review_and_exactly_one_and_a_half_counts() {
    let cfg = RatingConfig::default();
    let mut r = Reviewers::new(&cfg.drip);
    // Three twos and three threes (same instant: no decay): the median is 2.5, and a one-star
    // review is exactly 1.5 from it.
    yardstick(&mut r, &cfg, &[2, 3, 2, 3, 2, 3], T0);
    let f = r.review(&cfg, "s", &rev("x", 1, OLD), T0);
    assert_eq!(f.median, 2.5);
    assert_eq!(f.class, Some(Direction::Attack), "1.5 from the median is far");
    // An established reviewer's one-star makes it one, three twos, three threes: the median is 2,
    // and a first-time one-star 1 away is not far.
    established(&mut r, &cfg, "k", T0);
    r.review(&cfg, "s", &rev("k", 1, OLD), T0);
    let f = r.review(&cfg, "s", &rev("y", 1, OLD), T0);
    assert_eq!((f.median, f.class), (2.0, None));
}

#[test]
fn fresh_accounts_never_move_the_median_they_are_judged_against() {
    let cfg = RatingConfig::default();
    let mut r = Reviewers::new(&cfg.drip);
    // Ten established fours, then thirty first-time one-stars, three times as many: every one is
    // still judged 3 stars below the honest median (a mean, or a median of all reviews, would have
    // sunk to 1 and hidden the later ones).
    yardstick(&mut r, &cfg, &[4; 10], T0);
    for i in 0..30 {
        let f = r.review(&cfg, "s", &rev(&format!("x{i}"), 1, OLD), T0 + i * H);
        assert_eq!((f.median, f.class), (4.0, Some(Direction::Attack)), "attack review {i}");
    }
}

#[test]
fn a_sellers_median_needs_five_reviews_before_it_replaces_the_platforms() {
    let cfg = RatingConfig::default();
    let mut r = Reviewers::new(&cfg.drip);
    for i in 0..20 {
        let buyer = format!("b{i}");
        established(&mut r, &cfg, &buyer, T0);
        r.review(&cfg, "big", &rev(&buyer, 5, OLD), T0);
    }
    // A new seller's first one-star is judged against the platform's median of 5 (the
    // "elsewhere" reviews were first reviews: they set no yardstick).
    let f = r.review(&cfg, "new", &rev("x", 1, OLD), T0);
    assert!(!f.seller_median && f.median == 5.0);
    assert_eq!(f.class, Some(Direction::Attack));
}

/// An honest marketplace: 40 sellers with five reviews a day each from returning and first-time
/// buyers on old accounts. `extra(day, out)` adds the seller under test's events of that day.
fn market(days: i64, mut extra: impl FnMut(i64, &mut Vec<Event>)) -> Kit {
    let mut k = Kit::only("rating_manipulation");
    let mut n = 0usize;
    for day in 0..days {
        let mut evs = Vec::new();
        for s in 0..40 {
            for j in 0..5 {
                n += 1;
                let t = T0 + day * D + (s * 5 + j) as i64 * 60_000;
                // One buyer in three returns (a pool of 300), the rest are first-time.
                let buyer = if n % 3 == 0 { format!("pool{}", n % 300) } else { format!("b{n}") };
                evs.push(review(&format!("h{s}"), t, &format!("o{n}"), &buyer, HONEST[n % 10], OLD));
            }
        }
        extra(day, &mut evs);
        evs.sort_by_key(|e| e.ts);
        for e in evs {
            k.push(e);
        }
    }
    k.finish();
    k
}

fn drip_alerts<'a>(k: &'a Kit, seller: &str) -> Vec<&'a Alert> {
    k.alerts.iter().filter(|a| a.seller_id == seller && a.rule == "rating_manipulation.drip").collect()
}

#[test]
fn two_bought_reviews_a_day_from_fresh_accounts_alert_within_days_honest_sellers_never() {
    let k = market(20, |day, evs| {
        let t = T0 + day * D + 12 * H;
        // Its honest review of the day…
        evs.push(review("d", t, &format!("d-o{day}"), &format!("d-b{day}"), HONEST[day as usize % 10], OLD));
        // …and two bought ones from accounts made two days before.
        for j in 0..2 {
            let (o, b) = (format!("d-f{day}-{j}"), format!("d-fake{day}-{j}"));
            evs.push(review("d", t + (j + 1) * H, &o, &b, 5, Some(t - 2 * D)));
        }
    });
    let hits = drip_alerts(&k, "d");
    assert!(!hits.is_empty(), "the drip seller is flagged");
    let a = hits[0];
    let e = &a.evidence;
    assert_eq!(e["direction"], "inflate");
    // The first alert comes once the count reaches 5: the third day.
    assert!(e["seller"]["suspicious"].as_u64().unwrap() >= 5);
    assert!(a.event_time.as_str() < "2026-01-08", "{}", a.event_time);
    let chance = e["chance_if_honest"].as_f64().unwrap();
    assert!(chance < 1e-6, "{chance}");
    let cited = e["reviews"].as_array().unwrap();
    assert_eq!(cited.len() as u64, e["seller"]["suspicious"].as_u64().unwrap().min(20));
    assert!(cited.iter().all(|c| c["new_account"] == true
        && c["rating"] == 5
        && c["buyer_id"].as_str().unwrap().starts_with("d-fake")));
    // Nobody else: 40 honest sellers over 20 days, a fifth of whose reviews are first-time one-stars or fives.
    let others: Vec<_> = k.alerts.iter().filter(|a| a.seller_id != "d").map(|a| (&a.seller_id, &a.rule)).collect();
    assert!(others.is_empty(), "{others:?}");
}

#[test]
fn one_star_attacks_on_delivered_orders_flag_the_target_complaints_about_missing_parcels_do_not() {
    for delivered_first in [true, false] {
        let k = market(20, |day, evs| {
            let t = T0 + day * D + 12 * H;
            for j in 0..3 {
                let o = format!("v-o{day}-{j}");
                evs.push(order("v", t - 5 * D, O { order: &o, buyer: "x", buyer_created_at: OLD, ..O::default() }));
                if delivered_first || j > 0 {
                    evs.push(delivered("v", t - 2 * D, &o));
                }
                // Honest: fives and fours; the first review of the day is the attack's one star.
                let rating = if j == 0 { 1 } else { [5, 4][j as usize % 2] };
                evs.push(review("v", t + j * H, &o, &format!("v-b{day}-{j}"), rating, OLD));
            }
        });
        let hits = drip_alerts(&k, "v");
        if delivered_first {
            assert!(!hits.is_empty(), "the target of one-star attacks is flagged");
            assert_eq!(hits[0].evidence["direction"], "attack");
            assert!(hits[0].message.contains("targeted"), "{}", hits[0].message);
            let cited = hits[0].evidence["reviews"].as_array().unwrap();
            assert!(cited.iter().all(|c| c["rating"] == 1 && c["delivered_before"] == true));
        } else {
            assert!(hits.is_empty(), "one-stars for parcels never delivered are complaints: {hits:?}");
        }
    }
}

#[test]
fn a_small_shops_unlucky_week_and_a_big_shops_honest_volume_stay_quiet() {
    let k = market(20, |day, evs| {
        let t = T0 + day * D + 12 * H;
        // Small shop: one review a day, and a run of four first-time one-stars (below the count).
        let rating = if (5..9).contains(&day) { 1 } else { 5 };
        evs.push(review("small", t, &format!("s-o{day}"), &format!("s-b{day}"), rating, OLD));
        // Big shop: 60 honest reviews a day at the platform's own mix.
        for j in 0..60 {
            let n = (day * 60 + j) as usize;
            evs.push(review("big", t + j * 60_000, &format!("g-o{n}"), &format!("g-b{n}"), HONEST[n % 10], OLD));
        }
    });
    assert!(drip_alerts(&k, "small").is_empty());
    assert!(drip_alerts(&k, "big").is_empty());
}

#[test]
fn the_signal_can_be_switched_off_and_its_thresholds_tuned() {
    let mut cfg = only("rating_manipulation");
    cfg.rating_manipulation.drip.enabled = false;
    let mut k = Kit::with(cfg);
    for i in 0..200 {
        k.push(review(&format!("h{}", i % 40), T0 + i * 60_000, &format!("o{i}"), &format!("b{i}"), 4, OLD));
    }
    // Six bought reviews over three days (the burst signals need ten in a day).
    let bought = |k: &mut Kit| {
        for i in 0..6 {
            k.push(review("d", T0 + D + i * 12 * H, &format!("f{i}"), &format!("f{i}"), 5, Some(T0)));
        }
    };
    bought(&mut k);
    assert!(k.rules_for("d").is_empty());
    let mut k = Kit::only("rating_manipulation");
    for i in 0..200 {
        k.push(review(&format!("h{}", i % 40), T0 + i * 60_000, &format!("o{i}"), &format!("b{i}"), 4, OLD));
    }
    bought(&mut k);
    assert_eq!(k.rules_for("d"), ["rating_manipulation.drip"], "on, the same input alerts");
    assert!(!k.alerts[0].shadow);
    // In shadow mode it alerts all the same, marked as such (kept out of the feed by the sink).
    let mut cfg = only("rating_manipulation");
    cfg.alerts.shadow = vec!["rating_manipulation.drip".into()];
    let mut k = Kit::with(cfg);
    for i in 0..200 {
        k.push(review(&format!("h{}", i % 40), T0 + i * 60_000, &format!("o{i}"), &format!("b{i}"), 4, OLD));
    }
    bought(&mut k);
    assert_eq!(k.rules_for("d"), ["rating_manipulation.drip"]);
    assert!(k.alerts[0].shadow);
    let mut cfg = only("rating_manipulation");
    cfg.rating_manipulation.drip.min_suspicious = 11;
    assert!(cfg.validate().is_ok());
    cfg.rating_manipulation.drip.max_chance = 0.0;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("rating_manipulation.drip.max_chance"), "{err}");
}

#[test]
fn the_buyer_history_costs_tens_of_bytes_a_buyer_and_forgets_buyers_after_history_days() {
    let cfg = RatingConfig::default();
    let mut r = Reviewers::new(&cfg.drip);
    for i in 0..100_000 {
        r.review(&cfg, "s", &rev(&format!("buyer-{i}"), 4, OLD), T0 + i);
    }
    assert_eq!(r.buyers(), 100_000);
    let per_buyer = r.buyer_history_bytes() as f64 / 100_000.0;
    assert!((17.0..=39.0).contains(&per_buyer), "{per_buyer} bytes a buyer");
    // A year and a day later (the default history), all of them are forgotten…
    r.sweep(T0 + 366 * D + D);
    assert_eq!(r.buyers(), 0);
    // …and their next review is a first review again.
    let f = r.review(&cfg, "s", &rev("buyer-7", 1, OLD), T0 + 367 * D + D);
    assert!(f.first_review);
}

#[test]
fn thresholds_reload_hot_and_window_lengths_are_refused_by_name() {
    let base = only("rating_manipulation");
    let mut k = Kit::with(base.clone());
    let honest = |k: &mut Kit, from: i64| {
        for i in from..from + 200 {
            k.push(review(&format!("h{}", i % 40), T0 + i * 60_000, &format!("o{i}"), &format!("b{i}"), 4, OLD));
        }
    };
    honest(&mut k, 0);
    // A stricter count, reloaded while running: six bought reviews no longer alert…
    let mut strict = base.clone();
    strict.rating_manipulation.drip.min_suspicious = 7;
    k.reload(&strict).unwrap();
    for i in 0..6 {
        k.push(review("d", T0 + D + i * 12 * H, &format!("f{i}"), &format!("f{i}"), 5, Some(T0)));
    }
    assert!(k.rules_for("d").is_empty(), "six is under the reloaded seven");
    // …and the seventh does, with the state kept across the reload.
    k.push(review("d", T0 + 5 * D, "f6", "f6", 5, Some(T0 + 4 * D)));
    assert_eq!(k.rules_for("d"), ["rating_manipulation.drip"]);
    assert_eq!(k.alerts[0].evidence["thresholds"]["min_suspicious"], 7);
    // Window lengths bucket the state: a reload that changes one is refused, naming the key.
    for change in [
        |c: &mut Config| c.rating_manipulation.drip.window_days = 14.0,
        |c: &mut Config| c.rating_manipulation.drip.history_days = 30.0,
    ] {
        let mut next = base.clone();
        change(&mut next);
        let err = k.reload(&next).unwrap_err().to_string();
        assert!(err.contains("rating_manipulation.drip."), "{err}");
    }
}
