//! Olist (a Brazilian marketplace, 2016–2018; public sample of 15,000 orders) → event contract v1.
//!
//! Mapping (README, "Real data"):
//!
//! * **One `order_placed` per seller per order** (Olist splits a cart into one parcel per seller).
//!   Contract v1 orders have one listing, so the parcel's main line (largest value) gives listing,
//!   category, unit price and quantity (Olist repeats an item row per unit); the fee is the parcel's
//!   freight and the weight its total weight, as contract v1 means them. One event per item row
//!   would turn every cart of 3 units into 3 orders from one buyer in one second: order brushing.
//! * `promised_dispatch_hours` = shipping_limit_date − purchase, rounded up (the seller's deadline
//!   is never moved earlier), clamped to the contract's 1…8760.
//! * Carrier hand-off (`order_delivered_carrier_date`, the logistics partner's posting record) →
//!   `order_shipped` with a synthetic carrier and tracking number (the data has neither; the
//!   replay config disables `fake_shipment`) and the carrier's `accepted` scan at the same time.
//! * `order_delivered_customer_date` → `order_delivered`; status canceled/unavailable →
//!   `order_cancelled` by the platform at the order's last known time (the data has no
//!   cancellation time or party).
//! * Reviews → `review` at `review_answer_timestamp`, when the buyer gave the score
//!   (`review_creation_date` is the midnight of the day the survey was sent, often before the
//!   delivery it asks about), once per seller in the order; buyer = `customer_unique_id`.
//! * One `listing` per (seller, product) at its first sale's price and freight, one second before
//!   that sale, so that category price medians exist.
//! * Times are São Paulo local times, read as UTC−03:00. Unknown to the data, so absent: account
//!   ages, shipping methods (all `standard`), stock, buyer messages, disputes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{Config, ConfigError};
use crate::rules::policy::round2;

/// Replay settings: BRL rate, `fake_shipment` off (see the file).
pub const CONFIG_TOML: &str = include_str!("../../config/olist.toml");

pub fn replay_config() -> Result<Config, ConfigError> {
    Config::from_toml(CONFIG_TOML)
}

/// The synthetic carrier of every converted shipment: never a real carrier's name.
pub const CARRIER: &str = "olist_synthetic";

/// Categories the dataset's own translation table lacks.
const EXTRA_TRANSLATIONS: [(&str, &str); 2] =
    [("portateis_cozinha_e_preparadores_de_alimentos", "portable_kitchen_food_preparers"), ("pc_gamer", "pc_gamer")];

#[derive(Debug, Default)]
pub struct Conversion {
    /// Event contract v1 JSON lines, in (time, event id) order.
    pub lines: Vec<String>,
    pub events_by_type: BTreeMap<&'static str, u64>,
    /// Every seller of `olist_sellers_dataset.csv`.
    pub sellers: BTreeSet<String>,
    /// Counts of what the conversion had to fold, clamp or leave out, by what it was.
    pub notes: BTreeMap<&'static str, u64>,
}

#[derive(Deserialize)]
struct OrderRow {
    order_id: String,
    customer_id: String,
    order_status: String,
    order_purchase_timestamp: String,
    order_approved_at: String,
    order_delivered_carrier_date: String,
    order_delivered_customer_date: String,
}

#[derive(Deserialize, Clone)]
struct ItemRow {
    order_id: String,
    order_item_id: u32,
    product_id: String,
    seller_id: String,
    shipping_limit_date: String,
    price: f64,
    freight_value: f64,
}

#[derive(Deserialize)]
struct ReviewRow {
    review_id: String,
    order_id: String,
    review_score: u8,
    review_answer_timestamp: String,
}

#[derive(Deserialize)]
struct CustomerRow {
    customer_id: String,
    customer_unique_id: String,
    customer_state: String,
}

#[derive(Deserialize)]
struct ProductRow {
    product_id: String,
    product_category_name: String,
    product_weight_g: Option<f64>,
}

#[derive(Deserialize)]
struct SellerRow {
    seller_id: String,
    seller_state: String,
}

fn table<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Vec<T>> {
    let path = dir.join(name);
    let mut r = csv::Reader::from_path(&path).with_context(|| format!("opening {}", path.display()))?;
    r.deserialize().collect::<Result<Vec<T>, _>>().with_context(|| format!("reading {}", path.display()))
}

/// A local Olist time ("2017-10-02 10:56:33", São Paulo) as UTC−03:00; `None` when empty.
fn local(s: &str) -> Result<Option<DateTime<FixedOffset>>> {
    if s.is_empty() {
        return Ok(None);
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").with_context(|| format!("time `{s}`"))?;
    let brt = FixedOffset::west_opt(3 * 3600).expect("valid offset");
    Ok(brt.from_local_datetime(&naive).single())
}

fn required(s: &str, what: &str) -> Result<DateTime<FixedOffset>> {
    local(s)?.with_context(|| format!("{what} is empty"))
}

/// One product's line in a seller's parcel.
#[derive(Debug, Clone)]
struct Line {
    units: u32,
    price: f64,
    /// Freight of all its units.
    freight: f64,
    first_item: u32,
    category: String,
}

/// A (seller, product)'s first sale: (time, order id, unit price, unit freight, category).
type FirstSale = (DateTime<FixedOffset>, String, f64, f64, String);

struct Out {
    ts: i64,
    id: String,
    value: Value,
}

#[derive(Default)]
struct Builder {
    out: Vec<Out>,
    conv: Conversion,
}

impl Builder {
    fn push(&mut self, kind: &'static str, id: String, seller: &str, at: DateTime<FixedOffset>, mut value: Value) {
        let fields = value.as_object_mut().expect("events are objects");
        fields.insert("event_id".into(), json!(id));
        fields.insert("type".into(), json!(kind));
        fields.insert("seller_id".into(), json!(seller));
        fields.insert("ts".into(), json!(at.to_rfc3339()));
        *self.conv.events_by_type.entry(kind).or_default() += 1;
        self.out.push(Out { ts: at.timestamp_millis(), id, value });
    }

    fn note(&mut self, what: &'static str) {
        *self.conv.notes.entry(what).or_default() += 1;
    }
}

/// Converts the Olist tables in `dir`.
pub fn convert(dir: &Path) -> Result<Conversion> {
    let customer_rows = table::<CustomerRow>(dir, "olist_customers_dataset.csv")?;
    // Freight in Brazil follows the route (state to state): it goes into the optional route fields.
    let customer_state: HashMap<String, String> =
        customer_rows.iter().map(|c| (c.customer_id.clone(), c.customer_state.clone())).collect();
    let customers: HashMap<String, String> =
        customer_rows.into_iter().map(|c| (c.customer_id, c.customer_unique_id)).collect();
    let products: HashMap<String, ProductRow> = table::<ProductRow>(dir, "olist_products_dataset.csv")?
        .into_iter()
        .map(|p| (p.product_id.clone(), p))
        .collect();
    let english = translations(dir)?;
    let orders: HashMap<String, OrderRow> =
        table::<OrderRow>(dir, "olist_orders_dataset.csv")?.into_iter().map(|o| (o.order_id.clone(), o)).collect();
    let mut parcels: BTreeMap<(String, String), Vec<ItemRow>> = BTreeMap::new();
    for item in table::<ItemRow>(dir, "olist_order_items_dataset.csv")? {
        parcels.entry((item.order_id.clone(), item.seller_id.clone())).or_default().push(item);
    }

    let mut b = Builder::default();
    let seller_rows = table::<SellerRow>(dir, "olist_sellers_dataset.csv")?;
    let seller_state: HashMap<String, String> =
        seller_rows.iter().map(|s| (s.seller_id.clone(), s.seller_state.clone())).collect();
    b.conv.sellers = seller_rows.into_iter().map(|s| s.seller_id).collect();
    let category = |b: &mut Builder, product: &str| -> Result<(String, Option<f64>)> {
        let p = products.get(product).with_context(|| format!("product {product} not in the products table"))?;
        let pt = p.product_category_name.as_str();
        let name = match english.get(pt) {
            _ if pt.is_empty() => {
                b.note("items without a category (`uncategorized`)");
                "uncategorized".to_string()
            }
            Some(en) => en.clone(),
            None => bail!("category `{pt}` has no English name"),
        };
        Ok((name, p.product_weight_g))
    };
    let mut first_sale: BTreeMap<(String, String), FirstSale> = BTreeMap::new();
    let mut sellers_of: HashMap<String, Vec<String>> = HashMap::new();

    for ((order_id, seller), items) in &parcels {
        let o = orders.get(order_id).with_context(|| format!("item of unknown order {order_id}"))?;
        let buyer = customers.get(&o.customer_id).with_context(|| format!("unknown customer {}", o.customer_id))?;
        let placed = required(&o.order_purchase_timestamp, "order_purchase_timestamp")?;
        sellers_of.entry(order_id.clone()).or_default().push(seller.clone());

        let mut lines: BTreeMap<&str, Line> = BTreeMap::new();
        let mut grams = Some(0.0);
        for it in items {
            let (cat, w) = category(&mut b, &it.product_id)?;
            grams = grams.zip(w).map(|(g, w)| g + w);
            let l = lines.entry(&it.product_id).or_insert_with(|| Line {
                units: 0,
                price: it.price,
                freight: 0.0,
                first_item: it.order_item_id,
                category: cat.clone(),
            });
            l.units += 1;
            l.freight += it.freight_value;
            l.first_item = l.first_item.min(it.order_item_id);
            let key = (seller.clone(), it.product_id.clone());
            let sale = (placed, order_id.clone(), it.price, it.freight_value, cat);
            match first_sale.get(&key) {
                Some(prev) if (prev.0, &prev.1) <= (sale.0, &sale.1) => {}
                _ => {
                    first_sale.insert(key, sale);
                }
            }
        }
        if lines.len() > 1 {
            b.note("parcels with several products (the main one describes the order)");
        }
        *b.conv.notes.entry("item rows folded into quantity").or_default() +=
            lines.values().map(|l| l.units as u64 - 1).sum::<u64>();
        let (product, main) = lines
            .iter()
            .max_by(|(_, x), (_, y)| {
                (x.price * x.units as f64).total_cmp(&(y.price * y.units as f64)).then(y.first_item.cmp(&x.first_item))
            })
            .expect("a parcel has items");
        let limit = required(&items[0].shipping_limit_date, "shipping_limit_date")?;
        let hours = ((limit - placed).num_seconds() as f64 / 3600.0).ceil();
        if !(1.0..=8760.0).contains(&hours) {
            b.note("dispatch promises clamped to 1…8760 h");
        }
        let mut order = json!({
            "order_id": order_id, "listing_id": product, "buyer_id": buyer, "category": main.category,
            "price": main.price, "quantity": main.units, "currency": "BRL",
            "shipping_fee": round2(lines.values().map(|l| l.freight).sum()),
            "shipping_method": "standard", "destination_country": "BR",
            "promised_dispatch_hours": hours.clamp(1.0, 8760.0) as u32,
        });
        if let Some(g) = grams {
            order["weight_grams"] = json!(g);
        }
        if let (Some(from), Some(to)) = (seller_state.get(seller.as_str()), customer_state.get(&o.customer_id)) {
            order["origin_region"] = json!(format!("BR-{from}"));
            order["destination_region"] = json!(format!("BR-{to}"));
        }
        b.push("order_placed", format!("olist:order:{order_id}:{seller}"), seller, placed, order);

        let shipped = local(&o.order_delivered_carrier_date)?;
        if let Some(at) = shipped {
            if at < placed {
                b.note("hand-offs to the carrier before the purchase time (kept as recorded)");
            }
            let number = format!("OLIST-{order_id}-{}", &seller[..8.min(seller.len())]);
            let ship = json!({ "order_id": order_id, "tracking_number": number, "carrier": CARRIER,
                               "shipping_method": "standard" });
            b.push("order_shipped", format!("olist:shipped:{order_id}:{seller}"), seller, at, ship);
            let scan = json!({ "order_id": order_id, "tracking_number": number, "carrier": CARRIER,
                               "status": "accepted", "country": "BR" });
            b.push("tracking_scan", format!("olist:scan:{order_id}:{seller}"), seller, at, scan);
        }
        if let Some(at) = local(&o.order_delivered_customer_date)? {
            let id = format!("olist:delivered:{order_id}:{seller}");
            b.push("order_delivered", id, seller, at, json!({ "order_id": order_id }));
        }
        if matches!(o.order_status.as_str(), "canceled" | "unavailable") {
            let approved = local(&o.order_approved_at)?;
            let at = [Some(placed), approved, shipped].into_iter().flatten().max().expect("purchase time");
            let reason = format!("olist_status_{}", o.order_status);
            let cancel = json!({ "order_id": order_id, "by": "platform", "reason": reason });
            b.push("order_cancelled", format!("olist:cancelled:{order_id}:{seller}"), seller, at, cancel);
        }
    }

    for ((seller, product), (placed, _, price, freight, cat)) in first_sale {
        let listing = json!({ "listing_id": product, "category": cat, "price": price, "shipping_fee": freight,
                              "currency": "BRL" });
        let at = placed - chrono::Duration::seconds(1);
        b.push("listing", format!("olist:listing:{seller}:{product}"), &seller, at, listing);
    }

    for r in table::<ReviewRow>(dir, "olist_order_reviews_dataset.csv")? {
        let o = orders.get(&r.order_id).with_context(|| format!("review of unknown order {}", r.order_id))?;
        let Some(sellers) = sellers_of.get(&r.order_id) else {
            b.note("reviews of orders without items (no seller to attribute)");
            continue;
        };
        let buyer = customers.get(&o.customer_id).with_context(|| format!("unknown customer {}", o.customer_id))?;
        let at = required(&r.review_answer_timestamp, "review_answer_timestamp")?;
        for seller in sellers {
            let review = json!({ "order_id": r.order_id, "buyer_id": buyer, "rating": r.review_score });
            let id = format!("olist:review:{}:{}:{seller}", r.review_id, r.order_id);
            b.push("review", id, seller, at, review);
        }
    }

    let Builder { mut out, mut conv } = b;
    out.sort_by(|x, y| (x.ts, &x.id).cmp(&(y.ts, &y.id)));
    conv.lines = out.into_iter().map(|o| o.value.to_string()).collect();
    Ok(conv)
}

/// Portuguese → English category names (the file starts with a byte-order mark: read by position).
fn translations(dir: &Path) -> Result<HashMap<String, String>> {
    let path = dir.join("product_category_name_translation.csv");
    let mut r = csv::Reader::from_path(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut map: HashMap<String, String> =
        EXTRA_TRANSLATIONS.iter().map(|(pt, en)| (pt.to_string(), en.to_string())).collect();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        map.insert(rec[0].to_string(), rec[1].to_string());
    }
    Ok(map)
}

#[cfg(test)]
mod tests;
