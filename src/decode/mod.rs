//! Decode and validate: raw message bytes → [`Event`], or a [`DecodeError`] with a bounded
//! [`RejectReason`] (a metric label) and a human detail naming the field.
//!
//! One flat borrowed struct is deserialized in a single pass (no `serde_json::Value`, no buffering of
//! internally tagged enums); the per-type rules then check presence and ranges. Unknown fields are
//! ignored, as the contract says.

pub mod contract;
pub mod event;
mod rfc3339;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

pub use event::*;

/// Why an input message was rejected. Closed set: used as a metric label and DLQ header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    Oversized,
    InvalidUtf8,
    InvalidJson,
    MissingField,
    InvalidField,
    OutOfRange,
    StringTooLong,
    InvalidTimestamp,
    UnknownType,
    UnsupportedCurrency,
    /// Valid JSON, but stamped too far ahead of (or behind) the stream's own event time.
    EventTimeOutOfBounds,
}

impl RejectReason {
    pub const ALL: [RejectReason; 11] = [
        Self::Oversized,
        Self::InvalidUtf8,
        Self::InvalidJson,
        Self::MissingField,
        Self::InvalidField,
        Self::OutOfRange,
        Self::StringTooLong,
        Self::InvalidTimestamp,
        Self::UnknownType,
        Self::UnsupportedCurrency,
        Self::EventTimeOutOfBounds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::InvalidJson => "invalid_json",
            Self::MissingField => "missing_field",
            Self::InvalidField => "invalid_field",
            Self::OutOfRange => "out_of_range",
            Self::StringTooLong => "string_too_long",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::UnknownType => "unknown_type",
            Self::UnsupportedCurrency => "unsupported_currency",
            Self::EventTimeOutOfBounds => "event_time_out_of_bounds",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct DecodeError {
    pub reason: RejectReason,
    pub detail: String,
}

impl DecodeError {
    /// Bad input is never worth retrying: the same bytes fail the same way.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

fn err(reason: RejectReason, detail: impl Into<String>) -> DecodeError {
    DecodeError { reason, detail: detail.into() }
}

/// Limits and conversions the decoder applies (from `[input]` in config).
#[derive(Debug, Clone)]
pub struct DecodeLimits {
    pub max_message_bytes: usize,
    pub max_id_bytes: usize,
    pub max_text_bytes: usize,
    pub default_promised_dispatch_hours: u32,
    /// USD per unit; USD itself is always 1.
    pub currency_rates: BTreeMap<String, f64>,
}

impl DecodeLimits {
    pub fn from_config(c: &crate::config::InputConfig) -> Self {
        DecodeLimits {
            max_message_bytes: c.max_message_bytes,
            max_id_bytes: c.max_id_bytes,
            max_text_bytes: c.max_text_bytes,
            default_promised_dispatch_hours: c.default_promised_dispatch_hours,
            currency_rates: c.currency_rates.clone(),
        }
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self::from_config(&crate::config::InputConfig::default())
    }
}

/// `ts` is an RFC 3339 string or epoch milliseconds; anything else is kept so that the error can
/// say `invalid_timestamp` rather than a generic type error.
enum RawTs<'a> {
    Millis(i64),
    Text(Cow<'a, str>),
    Other,
}

/// Any JSON value gets through the parse (see above), so this layer of the schema allows anything;
/// the per-type contract says what `ts` must be.
impl schemars::JsonSchema for RawTs<'_> {
    fn schema_name() -> Cow<'static, str> {
        "AnyValue".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        true.into()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawTs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 string or epoch milliseconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawTs::Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map(RawTs::Millis).unwrap_or(RawTs::Other))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawTs::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawTs::Other)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawTs::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTs::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(RawTs::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(RawTs::Other)
            }
        }
        d.deserialize_any(V)
    }
}

fn opt_cow<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct W<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// Every field of every type, all optional: presence is checked per type after parsing.
/// (`JsonSchema`: the field-type layer of the event schema, see `contract`.)
#[derive(Deserialize, Default, schemars::JsonSchema)]
struct Raw<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    event_id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, default, deserialize_with = "opt_cow")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    seller_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ts: Option<RawTs<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    listing_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    category: Option<Cow<'a, str>>,
    price: Option<f64>,
    shipping_fee: Option<f64>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    currency: Option<Cow<'a, str>>,
    #[schemars(range(min = i64::MIN, max = i64::MAX))]
    stock: Option<i64>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    order_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    buyer_id: Option<Cow<'a, str>>,
    #[schemars(range(min = i64::MIN, max = i64::MAX))]
    quantity: Option<i64>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    shipping_method: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    destination_country: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    origin_region: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    destination_region: Option<Cow<'a, str>>,
    weight_grams: Option<f64>,
    #[serde(borrow)]
    buyer_created_at: Option<RawTs<'a>>,
    #[schemars(range(min = i64::MIN, max = i64::MAX))]
    promised_dispatch_hours: Option<i64>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    tracking_number: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    carrier: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    country: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    by: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    reason: Option<Cow<'a, str>>,
    #[schemars(range(min = i64::MIN, max = i64::MAX))]
    rating: Option<i64>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    conversation_id: Option<Cow<'a, str>>,
}

/// Decode one message. Never panics; every failure is a [`DecodeError`].
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Event, DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(err(
            RejectReason::Oversized,
            format!(
                "message is {} bytes, limit is {} (input.max_message_bytes)",
                bytes.len(),
                limits.max_message_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| err(RejectReason::InvalidUtf8, format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let raw: Raw = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => return Err(classify_json_error(text, e)),
    };
    Checker { raw: &raw, limits }.event()
}

/// Syntax errors are `invalid_json`; type errors are `invalid_field` naming the field (found by a
/// second, path-tracking parse that only runs on this cold path).
fn classify_json_error(text: &str, e: serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => err(RejectReason::InvalidJson, e.to_string()),
        Category::Data => {
            let mut de = serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, Raw>(&mut de) {
                Err(pe) if pe.path().to_string().chars().next().is_some_and(|c| c != '.' && c != '[') => {
                    let path = pe.path().to_string();
                    let field = path.trim_start_matches('.');
                    let reason = if field == "ts" || field == "buyer_created_at" {
                        RejectReason::InvalidTimestamp
                    } else {
                        RejectReason::InvalidField
                    };
                    err(reason, format!("field `{field}`: {}", pe.inner()))
                }
                _ => err(RejectReason::InvalidJson, format!("not a JSON object: {e}")),
            }
        }
    }
}

struct Checker<'r, 'a> {
    raw: &'r Raw<'a>,
    limits: &'r DecodeLimits,
}

impl Checker<'_, '_> {
    fn event(&self) -> Result<Event, DecodeError> {
        let r = self.raw;
        let kind = self.str_of("type", &r.kind, self.limits.max_id_bytes)?;
        let event_type = EventType::parse(kind)
            .ok_or_else(|| err(RejectReason::UnknownType, format!("unknown event type `{}`", truncate(kind))))?;
        let event_id = self.id("event_id", &r.event_id)?;
        let seller_id = self.id("seller_id", &r.seller_id)?;
        let ts = self.time("ts", &r.ts)?.ok_or_else(|| missing("ts", event_type))?;
        let body = self.body(event_type)?;
        Ok(Event { event_id, seller_id, ts, body })
    }

    fn body(&self, t: EventType) -> Result<Body, DecodeError> {
        let r = self.raw;
        let req = |name: &'static str, v: &Option<Cow<str>>| self.req_id(name, v, t);
        // Fields only matched against a closed set are checked the same way but not copied.
        let req_str = |name: &'static str, v| self.req_str(name, v, t);
        Ok(match t {
            EventType::Listing => {
                let rate = self.rate()?;
                Body::Listing(Listing {
                    listing_id: req("listing_id", &r.listing_id)?,
                    category: req("category", &r.category)?,
                    price: self.money("price", r.price, t, true)? * rate,
                    shipping_fee: self.money("shipping_fee", r.shipping_fee, t, false)? * rate,
                    stock: match r.stock {
                        None => None,
                        Some(s) => Some(u32::try_from(s).map_err(|_| range("stock", s, "an integer ≥ 0"))?),
                    },
                })
            }
            EventType::OrderPlaced => {
                let rate = self.rate()?;
                let quantity = match r.quantity {
                    None => 1,
                    Some(q) if q >= 1 => u32::try_from(q).map_err(|_| range("quantity", q, "≤ 4294967295"))?,
                    Some(q) => return Err(range("quantity", q, "an integer ≥ 1")),
                };
                let weight_grams = match r.weight_grams {
                    None => None,
                    Some(w) if w.is_finite() && w >= 0.0 && w <= u32::MAX as f64 => Some(w.round() as u32),
                    Some(w) => return Err(range("weight_grams", w, "grams ≥ 0")),
                };
                let promised_dispatch_hours = match r.promised_dispatch_hours {
                    None => self.limits.default_promised_dispatch_hours,
                    Some(h) if (1..=24 * 365).contains(&h) => h as u32,
                    Some(h) => return Err(range("promised_dispatch_hours", h, "1 to 8760 hours")),
                };
                let country = req("destination_country", &r.destination_country)?;
                if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(err(
                        RejectReason::InvalidField,
                        format!("field `destination_country`: `{}` is not ISO 3166 alpha-2", truncate(&country)),
                    ));
                }
                Body::OrderPlaced(OrderPlaced {
                    order_id: req("order_id", &r.order_id)?,
                    listing_id: req("listing_id", &r.listing_id)?,
                    buyer_id: req("buyer_id", &r.buyer_id)?,
                    category: req("category", &r.category)?,
                    price: self.money("price", r.price, t, true)? * rate,
                    quantity,
                    shipping_fee: self.money("shipping_fee", r.shipping_fee, t, false)? * rate,
                    shipping_method: req("shipping_method", &r.shipping_method)?,
                    destination_country: country,
                    weight_grams,
                    buyer_created_at: self.time("buyer_created_at", &r.buyer_created_at)?,
                    promised_dispatch_hours,
                    route: match (
                        self.opt_id("origin_region", &r.origin_region)?,
                        self.opt_id("destination_region", &r.destination_region)?,
                    ) {
                        (Some(from), Some(to)) => Some(compact_str::format_compact!("{from}>{to}")),
                        _ => None,
                    },
                })
            }
            EventType::OrderShipped => Body::OrderShipped(OrderShipped {
                order_id: req("order_id", &r.order_id)?,
                tracking_number: req("tracking_number", &r.tracking_number)?,
                carrier: req("carrier", &r.carrier)?,
                shipping_method: req("shipping_method", &r.shipping_method)?,
            }),
            EventType::TrackingScan => {
                let status = req_str("status", &r.status)?;
                Body::TrackingScan(TrackingScan {
                    order_id: req("order_id", &r.order_id)?,
                    tracking_number: req("tracking_number", &r.tracking_number)?,
                    carrier: req("carrier", &r.carrier)?,
                    status: ScanStatus::parse(status).ok_or_else(|| {
                        err(
                            RejectReason::InvalidField,
                            format!("field `status`: unknown scan status `{}`", truncate(status)),
                        )
                    })?,
                    country: self.opt_id("country", &r.country)?,
                })
            }
            EventType::OrderDelivered => Body::OrderDelivered { order_id: req("order_id", &r.order_id)? },
            EventType::OrderCancelled => {
                let by = req_str("by", &r.by)?;
                Body::OrderCancelled {
                    order_id: req("order_id", &r.order_id)?,
                    by: CancelledBy::parse(by).ok_or_else(|| {
                        err(
                            RejectReason::InvalidField,
                            format!("field `by`: `{}` is not buyer, seller or platform", truncate(by)),
                        )
                    })?,
                    reason: self.string("reason", &r.reason, self.limits.max_text_bytes)?.into(),
                }
            }
            EventType::Review => Body::Review(Review {
                order_id: req("order_id", &r.order_id)?,
                buyer_id: req("buyer_id", &r.buyer_id)?,
                rating: match r.rating {
                    Some(x @ 1..=5) => x as u8,
                    Some(x) => return Err(range("rating", x, "an integer 1–5")),
                    None => return Err(missing("rating", t)),
                },
                buyer_created_at: self.time("buyer_created_at", &r.buyer_created_at)?,
            }),
            EventType::DisputeOpened => Body::DisputeOpened {
                order_id: req("order_id", &r.order_id)?,
                reason: DisputeReason::parse(self.str_of("reason", &r.reason, self.limits.max_text_bytes)?),
                buyer_id: self.opt_id("buyer_id", &r.buyer_id)?,
            },
            EventType::BuyerMessage => Body::BuyerMessage {
                conversation_id: req("conversation_id", &r.conversation_id)?,
                buyer_id: req("buyer_id", &r.buyer_id)?,
            },
            EventType::SellerReply => {
                Body::SellerReply { conversation_id: req("conversation_id", &r.conversation_id)? }
            }
        })
    }

    /// A present string field within `max` bytes, borrowed: copied only by the callers that keep it.
    fn str_of<'v>(&self, name: &str, v: &'v Option<Cow<str>>, max: usize) -> Result<&'v str, DecodeError> {
        let s = v.as_deref().ok_or_else(|| err(RejectReason::MissingField, format!("missing field `{name}`")))?;
        if s.len() > max {
            return Err(err(RejectReason::StringTooLong, format!("field `{name}` is {} bytes, limit {max}", s.len())));
        }
        Ok(s)
    }

    fn string(&self, name: &str, v: &Option<Cow<str>>, max: usize) -> Result<String, DecodeError> {
        self.str_of(name, v, max).map(str::to_owned)
    }

    fn id_str<'v>(&self, name: &str, v: &'v Option<Cow<str>>) -> Result<&'v str, DecodeError> {
        let s = self.str_of(name, v, self.limits.max_id_bytes)?;
        if s.is_empty() {
            return Err(err(RejectReason::InvalidField, format!("field `{name}` is empty")));
        }
        Ok(s)
    }

    fn id(&self, name: &str, v: &Option<Cow<str>>) -> Result<Id, DecodeError> {
        self.id_str(name, v).map(Id::from)
    }

    /// A required id-like field, borrowed.
    fn req_str<'v>(&self, name: &'static str, v: &'v Option<Cow<str>>, t: EventType) -> Result<&'v str, DecodeError> {
        if v.is_none() {
            return Err(missing(name, t));
        }
        self.id_str(name, v)
    }

    fn req_id(&self, name: &'static str, v: &Option<Cow<str>>, t: EventType) -> Result<Id, DecodeError> {
        self.req_str(name, v, t).map(Id::from)
    }

    fn opt_id(&self, name: &str, v: &Option<Cow<str>>) -> Result<Option<Id>, DecodeError> {
        v.as_ref().map(|_| self.id(name, v)).transpose()
    }

    fn money(
        &self,
        name: &'static str,
        v: Option<f64>,
        t: EventType,
        strictly_positive: bool,
    ) -> Result<f64, DecodeError> {
        let x = v.ok_or_else(|| missing(name, t))?;
        let ok = x.is_finite() && if strictly_positive { x > 0.0 } else { x >= 0.0 };
        if ok {
            Ok(x)
        } else {
            Err(range(name, x, if strictly_positive { "> 0" } else { "≥ 0" }))
        }
    }

    fn rate(&self) -> Result<f64, DecodeError> {
        match self.raw.currency.as_deref() {
            None | Some("USD") => Ok(1.0),
            Some(c) => self.limits.currency_rates.get(c).copied().ok_or_else(|| {
                err(
                    RejectReason::UnsupportedCurrency,
                    format!("currency `{}` has no rate (add it under input.currency_rates)", truncate(c)),
                )
            }),
        }
    }

    fn time(&self, name: &str, v: &Option<RawTs>) -> Result<Option<Millis>, DecodeError> {
        let bad = |what: &str| err(RejectReason::InvalidTimestamp, format!("field `{name}`: {what}"));
        match v {
            None => Ok(None),
            Some(RawTs::Millis(ms)) => Ok(Some(*ms)),
            Some(RawTs::Text(s)) => match rfc3339::parse_utc_millis(s) {
                Some(ms) => Ok(Some(ms)),
                None => self.time_slow(name, s),
            },
            Some(RawTs::Other) => Err(bad("must be an RFC 3339 string or integer epoch milliseconds")),
        }
    }

    /// Any other RFC 3339 form (offsets, …), and the wording of every timestamp error.
    fn time_slow(&self, name: &str, s: &str) -> Result<Option<Millis>, DecodeError> {
        chrono::DateTime::parse_from_rfc3339(s).map(|t| Some(t.timestamp_millis())).map_err(|e| {
            let what = format!("`{}` is not RFC 3339 with offset ({e})", truncate(s));
            err(RejectReason::InvalidTimestamp, format!("field `{name}`: {what}"))
        })
    }
}

fn missing(name: &str, t: EventType) -> DecodeError {
    err(RejectReason::MissingField, format!("missing field `{name}` (required for {})", t.as_str()))
}

fn range(name: &str, v: impl fmt::Display, want: &str) -> DecodeError {
    err(RejectReason::OutOfRange, format!("field `{name}` is {v}, must be {want}"))
}

/// Error details quote input: keep them short so a hostile value cannot bloat logs.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests;
