//! Seedable, labeled synthetic marketplace traffic generator (event contract v1).
//!
//! A discrete-event simulation: every future action (next order arrival, next step of an
//! order's lifecycle, listing updates, fraud steps) sits in one time-ordered heap, so output is
//! streamed in event-time order and memory is bounded by in-flight orders. Rendered lines pass
//! through a small reorder heap that delays a few events by up to `max_disorder_ms`.
//! Types live here; the loop and listings in `sim.rs`, orders in `orders.rs`, fraud families and
//! per-order fraud in `fraud.rs`, fake-order and other fraud streams in `fakes.rs`, formats and
//! tracking numbers in `util.rs`.

mod fakes;
mod fraud;
mod orders;
mod sim;
#[cfg(test)]
mod tests;
mod util;

pub use util::{is_valid_tracking, rfc3339, s10_check, ups_check};

use fraud::{Family, FraudStep, ShipMode, Tweaks};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use util::{fi, fm, fs, fts, DAY_MS, HOUR_MS, MIN_MS};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenConfig {
    pub seed: u64,
    pub sellers: usize,
    pub days: u32,
    pub start_ms: i64,
    /// Stop once this many events were emitted (roughly); `days` is extended if needed to reach it.
    pub target_events: Option<usize>,
    pub fraud_share: f64,
    pub warmup_days: u32,
    pub max_disorder_ms: i64,
    /// How blatant injected fraud is, in (0, 1]: 1.0 is well past every default threshold; lower
    /// means fewer bad events, closer to the thresholds (0.2 is mostly below), for sweeps.
    pub intensity: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            sellers: 200,
            days: 14,
            start_ms: 1_767_571_200_000, // 2026-01-05T00:00:00Z
            target_events: None,
            fraud_share: 0.08,
            warmup_days: 2,
            max_disorder_ms: 240_000,
            intensity: 1.0,
        }
    }
}

impl GenConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100_000).contains(&self.sellers) {
            return Err(format!("sellers must be in 1..=100000, got {}", self.sellers));
        }
        if !(1..=3660).contains(&self.days) {
            return Err(format!("days must be in 1..=3660, got {}", self.days));
        }
        // 1980..2100 keeps every derived timestamp (buyer ages, tails) formattable.
        if !(315_532_800_000..=4_102_444_800_000).contains(&self.start_ms) {
            return Err(format!("start_ms {} outside 1980..2100", self.start_ms));
        }
        if !self.fraud_share.is_finite() || !(0.0..=1.0).contains(&self.fraud_share) {
            return Err(format!("fraud_share must be in [0, 1], got {}", self.fraud_share));
        }
        if !(self.intensity.is_finite() && self.intensity > 0.0 && self.intensity <= 1.0) {
            return Err(format!("intensity must be in (0, 1], got {}", self.intensity));
        }
        if self.fraud_share > 0.0 && self.warmup_days >= self.days {
            return Err(format!(
                "warmup_days ({}) must be < days ({}) when fraud_share > 0",
                self.warmup_days, self.days
            ));
        }
        // Must stay below the engine's 5-minute allowed lateness.
        if !(0..300_000).contains(&self.max_disorder_ms) {
            return Err(format!("max_disorder_ms must be in 0..300000, got {}", self.max_disorder_ms));
        }
        match self.target_events {
            Some(0) => Err("target_events must be > 0".into()),
            Some(n) if n > 200_000_000 => Err(format!("target_events {n} > 200000000")),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Label {
    pub seller_id: String,
    pub family: String,
    /// Timestamp of the seller's first emitted fraudulent (detectable) event.
    pub since: String,
    /// The rule the fraud is meant to trip, where a family has several signals that `eval` should
    /// score apart: a row of its own, counting only that rule's alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GenSummary {
    pub events: u64,
    pub by_type: BTreeMap<String, u64>,
    pub labels: Vec<Label>,
}

/// Streams events as JSON lines (no trailing newline) to `emit`, in emission order, along with
/// the seller id (the Kafka key).
pub fn generate(cfg: &GenConfig, emit: &mut dyn FnMut(&str, &str)) -> Result<GenSummary, String> {
    cfg.validate()?;
    let mut sim = Sim::new(cfg, emit);
    sim.run();
    Ok(sim.summary())
}

/// (name, base price USD, typical unit weight g); prices are log-normal around the base.
const CATEGORIES: [(&str, f64, f64); 12] = [
    ("phone_cases", 6.0, 90.0),
    ("cables_chargers", 9.0, 120.0),
    ("jewelry", 18.0, 60.0),
    ("beauty", 16.0, 220.0),
    ("toys", 22.0, 450.0),
    ("apparel", 28.0, 380.0),
    ("headphones", 40.0, 320.0),
    ("home_decor", 35.0, 900.0),
    ("shoes", 60.0, 1100.0),
    ("smartwatches", 95.0, 200.0),
    ("kitchen_appliances", 130.0, 3800.0),
    ("laptops", 700.0, 2400.0),
];
/// Weight band upper bounds (g) shared with the shipping_fee_inflation detector.
const BANDS: [u32; 7] = [250, 500, 1000, 2000, 5000, 10_000, 30_000];
/// Standard-shipping fee per band in cents; economy ×0.7, express ×3.5.
const STD_FEE: [f64; 8] = [250.0, 350.0, 500.0, 750.0, 1200.0, 2000.0, 3500.0, 6000.0];
const CARRIERS: [&str; 5] = ["china_post", "cainiao", "yunexpress", "dhl", "ups"];
const DEST: [(&str, u32); 14] = [
    ("US", 30),
    ("GB", 10),
    ("DE", 10),
    ("FR", 8),
    ("CA", 6),
    ("AU", 5),
    ("ES", 5),
    ("IT", 5),
    ("NL", 4),
    ("PL", 4),
    ("BR", 4),
    ("JP", 3),
    ("SE", 3),
    ("MX", 3),
];
/// Steady-state events per order (lifecycle + reviews + messages), to size runs to a target.
const EVENTS_PER_ORDER: f64 = 8.25;

fn listings_for(rate: f64) -> usize {
    (3.0 + rate.sqrt() * 3.0).min(60.0) as usize
}

pub(crate) fn band(w: u32) -> usize {
    BANDS.iter().position(|&b| w <= b).unwrap_or(BANDS.len())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Standard,
    Express,
    Economy,
}
impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Standard => "standard",
            Method::Express => "express",
            Method::Economy => "economy",
        }
    }
    fn fee_mult(self) -> f64 {
        match self {
            Method::Standard => 1.0,
            Method::Express => 3.5,
            Method::Economy => 0.7,
        }
    }
}

#[derive(Clone, Copy)]
enum Ty {
    Listing,
    Placed,
    Shipped,
    Scan,
    Delivered,
    Cancelled,
    Review,
    Dispute,
    Message,
    Reply,
}
const TY_NAMES: [&str; 10] = [
    "listing",
    "order_placed",
    "order_shipped",
    "tracking_scan",
    "order_delivered",
    "order_cancelled",
    "review",
    "dispute_opened",
    "buyer_message",
    "seller_reply",
];

/// Plan-step flags: OBLIG steps are still emitted after the stop (so no shipment is left
/// without its first scan, no message unanswered); MARKER steps are the labeled fraud.
const OBLIG: u8 = 1;
const MARKER: u8 = 2;

#[derive(Clone, Copy)]
enum Step {
    Placed,
    Shipped,
    Scan(&'static str, bool), // status, at destination (else origin CN)
    Delivered,
    Cancelled(&'static str, &'static str),
    Review(u8),
    Dispute(&'static str),
    Message,
    Reply,
}

/// One planned lifecycle step: (event time, step, OBLIG/MARKER flags).
type PlanStep = (i64, Step, u8);

struct Order {
    id: u64,
    seller: u32,
    listing: u32,
    buyer: u64,
    buyer_created: i64,
    price: i64,
    qty: u32,
    fee: i64,
    method: Method,
    ship_method: Method,
    dest: &'static str,
    weight: u32,
    promised: Option<i64>,
    carrier: &'static str,
    tracking: String,
    conv: u64,
    plan: Vec<PlanStep>,
    next: usize,
    ship_out: bool,   // order_shipped emitted (its first scan is owed even after the stop)
    msg_out: bool,    // buyer_message emitted (its reply is owed)
    placed_out: bool, // order_placed emitted (an honest dispatch is owed)
}

struct Listing {
    id: u64,
    cat: usize,
    list: i64,
    cur: i64,
    weight: u32,
    free: bool,
    promo: bool,   // on sale or dumped: no overlapping price changes
    phantom: bool, // phantom_listing: orders on it are cancelled as out of stock
}

struct Seller {
    id: String,
    rate: f64, // orders per day
    cats: Vec<usize>,
    fee_factor: f64,
    listings: Vec<Listing>,
    family: Option<Family>,
    fraud_start: i64,
    recent: VecDeque<(&'static str, String)>, // recent valid numbers (for reuse fraud)
    /// Fee inflation: "price moved into shipping" listings; new-account cluster: the bait listing.
    cheap: Vec<u32>,
    /// Which signal the seller's fraud shows, where a family has several (see `fraud::Family`).
    variant: u8,
    /// Repeat-buyer farming: the seller's farmed buyer accounts.
    farm: Vec<u64>,
    /// Drip review fraud: the competitor it gives one-star reviews.
    target: Option<u32>,
}

enum Act {
    Arrival(u32),
    ListingOut(u32, u32, u8),
    Tick(u32),
    SaleStart(u32),
    SaleEnd(u32, u32),
    NewListing(u32),
    Order(Box<Order>),
    Fraud(u32, FraudStep),
    /// An honest seller's one-off dispute for an expired protection period (below the rule's 2).
    HonestDispute(u32),
}

struct Item {
    ts: i64,
    seq: u64,
    act: Act,
}
impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

/// Trailing 7-day samples mirroring what the detectors see, so fraud can be sized against the
/// real category / peer medians rather than the nominal tables.
#[derive(Default)]
struct Trail(VecDeque<(i64, i64)>);
impl Trail {
    fn push(&mut self, ts: i64, v: i64) {
        self.0.push_back((ts, v));
        while self.0.front().is_some_and(|&(t, _)| t < ts - 7 * DAY_MS) {
            self.0.pop_front();
        }
    }
    fn median(&self, min_n: usize) -> Option<i64> {
        if self.0.len() < min_n {
            return None;
        }
        let mut v: Vec<i64> = self.0.iter().map(|&(_, x)| x).collect();
        let mid = v.len() / 2;
        Some(*v.select_nth_unstable(mid).1)
    }
}

/// A rendered line waiting in the reorder heap: (emit key = ts + delay, seq, seller, type,
/// ts, is-fraud-marker, json).
type Pending = (i64, u64, u32, u8, i64, bool, String);

struct Sim<'a> {
    cfg: GenConfig,
    rng: SmallRng,
    emit: &'a mut dyn FnMut(&str, &str),
    sellers: Vec<Seller>,
    heap: BinaryHeap<Reverse<Item>>,
    out: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    next_id: u64, // orders, listings, conversations, fresh buyers share one counter
    tracking: [u64; 5],
    emitted: u64,
    by_type: [u64; 10],
    since: Vec<Option<i64>>,
    end_ms: i64,
    stopping: bool,
    cat_prices: Vec<Trail>,
    fees: Vec<Trail>, // index method * 8 + band
}

/// Stable per-buyer hash so a pooled buyer id always has the same account creation date.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
