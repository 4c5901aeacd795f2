//! Event contract v1 as types, for its JSON Schema (`crate::schema::event_schema`, shipped as
//! `deploy/schemas/event.v1.schema.json`). Nothing deserializes into these: the decoder keeps its
//! single flat pass (`Raw`, then per-type checks; see `mod.rs`), which is several times cheaper than
//! an internally tagged enum. The schema is made of two layers that mirror those two steps:
//!
//! * [`EventV1::fields`] is `Raw` itself: every field name the contract defines is parsed, and so
//!   type-checked, on every event whatever its `type` (a `review` with `"price": "x"` is rejected).
//!   Generating this layer from the decoder's own struct keeps it right by construction.
//! * [`TypedEvent`] is the per-type contract: the `type` discriminator, required fields, ranges,
//!   enumerations. Its attributes restate `Checker` (and `config/default.toml`'s `[input]` limits);
//!   `tests/schemas.rs` checks the two agree, field by field and value by value.
//!
//! What JSON Schema cannot say is listed in the schema's description ([`LIMITS`]).

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use super::Raw;

/// `maxLength` of ids: `input.max_id_bytes` by default.
const MAX_ID: u32 = 128;

/// What the decoder enforces beyond the schema (the schema's description says it to readers).
pub const LIMITS: &str = "Beyond this schema the decoder also enforces: a message is at most \
input.max_message_bytes (65536) bytes; id and text limits are bytes (maxLength counts characters: \
the same for ASCII); a currency other than USD needs a rate in input.currency_rates; integer fields \
and epoch milliseconds are written without a fraction or exponent (3, not 3.0); no key appears twice; \
and `ts` lies within input.max_event_time_ahead_ms of the stream and the clock and \
input.max_event_time_behind_ms of the watermark. Limits are those of config/default.toml.";

/// One input message (event contract v1): a JSON object, key = `seller_id` on Kafka. Unknown fields
/// are ignored.
#[derive(JsonSchema)]
#[schemars(title = "sellerguard event contract v1")]
pub struct EventV1<'a> {
    /// Field types checked on every event (the decoder parses every known name in one pass).
    #[allow(dead_code)] // a schema source: never constructed
    #[serde(flatten, borrow)]
    pub(super) fields: Raw<'a>,
    /// The per-type contract.
    #[serde(flatten)]
    pub event: TypedEvent,
}

/// Identifier (`event_id`, `seller_id`, `order_id`, …): 1–128 bytes (`input.max_id_bytes`).
#[derive(JsonSchema)]
pub struct Id(#[schemars(length(min = 1, max = MAX_ID))] pub String);

/// Free text (cancellation and dispute reasons): at most 1024 bytes (`input.max_text_bytes`); may be empty.
#[derive(JsonSchema)]
pub struct Text(#[schemars(length(max = 1024))] pub String);

/// A price: USD (or `currency`), finite and above zero.
#[derive(JsonSchema)]
pub struct Price(#[schemars(extend("exclusiveMinimum" = 0))] pub f64);

/// A shipping fee: USD (or `currency`), finite, zero or more (0 = free shipping).
#[derive(JsonSchema)]
pub struct Fee(#[schemars(range(min = 0))] pub f64);

/// Event time: an RFC 3339 date-time with `Z` or a numeric offset (as chrono parses it: `T`, `t` or
/// a space between date and time, leap second 60, any number of fraction digits of which
/// milliseconds count), or integer epoch milliseconds.
pub struct Timestamp;

/// RFC 3339 `date-time` as chrono's `parse_from_rfc3339` accepts it, dates validated (month
/// lengths, leap years), offsets within ±23:59 (`−`, U+2212, is accepted as a minus sign).
pub const RFC3339_PATTERN: &str = concat!(
    "^(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)",
    // 29 February: years divisible by 4, centuries only when divisible by 400.
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)",
    "[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\\.[0-9]+)?",
    "(?:[Zz]|[+\\-\u{2212}](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
);

impl JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "RFC 3339 date-time with `Z` or an offset (`2026-01-05T10:00:00Z`, `2017-10-02T10:56:33-03:00`), or integer epoch milliseconds.",
            "oneOf": [
                { "type": "string", "pattern": RFC3339_PATTERN },
                { "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }
            ]
        })
    }
}

/// The fields every event carries.
#[derive(JsonSchema)]
pub struct Common {
    /// Unique per event (producers retry: duplicates are possible and harmless).
    pub event_id: Id,
    /// The seller the event is about; the Kafka message key.
    pub seller_id: Id,
    pub ts: Timestamp,
}

/// Per-type contract, discriminated by `type`.
#[derive(JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TypedEvent {
    Listing(Listing),
    OrderPlaced(OrderPlaced),
    OrderShipped(OrderShipped),
    TrackingScan(TrackingScan),
    OrderDelivered(OrderDelivered),
    OrderCancelled(OrderCancelled),
    Review(Review),
    DisputeOpened(DisputeOpened),
    BuyerMessage(BuyerMessage),
    SellerReply(SellerReply),
}

/// USD by default; another code is accepted only with a rate in `input.currency_rates` (else
/// `unsupported_currency`). Converts `price` and `shipping_fee` of listings and orders.
#[derive(JsonSchema)]
pub struct Currency(pub String);

/// A listing created or updated (price, fee, stock).
#[derive(JsonSchema)]
pub struct Listing {
    #[serde(flatten)]
    pub common: Common,
    pub listing_id: Id,
    pub category: Id,
    pub price: Price,
    pub shipping_fee: Fee,
    pub currency: Option<Currency>,
    /// Units in stock; 0 makes orders on the listing phantom-listing evidence.
    #[schemars(range(min = 0, max = u32::MAX))]
    pub stock: Option<i64>,
}

/// An order: one listing, one buyer.
#[derive(JsonSchema)]
pub struct OrderPlaced {
    #[serde(flatten)]
    pub common: Common,
    pub order_id: Id,
    pub listing_id: Id,
    pub buyer_id: Id,
    pub category: Id,
    /// Unit price.
    pub price: Price,
    /// Default 1.
    #[schemars(range(min = 1, max = u32::MAX))]
    pub quantity: Option<i64>,
    pub shipping_fee: Fee,
    pub currency: Option<Currency>,
    /// The method the buyer chose (`standard`, `express`, `free`, …).
    pub shipping_method: Id,
    /// ISO 3166-1 alpha-2, upper case.
    #[schemars(regex(pattern = r"^[A-Z]{2}$"))]
    pub destination_country: String,
    /// Optional freight route: fee baselines are kept per `origin_region>destination_region` when
    /// both are given.
    pub origin_region: Option<Id>,
    pub destination_region: Option<Id>,
    #[schemars(range(min = 0, max = u32::MAX))]
    pub weight_grams: Option<f64>,
    /// When the buyer's account was created (new-account signals).
    pub buyer_created_at: Option<Timestamp>,
    /// Hours the seller has to ship; default `input.default_promised_dispatch_hours` (72).
    #[schemars(range(min = 1, max = 8760))]
    pub promised_dispatch_hours: Option<i64>,
}

/// The seller handed the order to a carrier.
#[derive(JsonSchema)]
pub struct OrderShipped {
    #[serde(flatten)]
    pub common: Common,
    pub order_id: Id,
    /// Spaces are ignored and letters upper-cased before the carrier's format is checked.
    pub tracking_number: Id,
    pub carrier: Id,
    /// The method actually used; differing from the buyer's choice flags the shipment.
    pub shipping_method: Id,
}

/// Carrier scan status.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    Accepted,
    InTransit,
    OutForDelivery,
    Delivered,
    Returned,
    Exception,
}

/// A carrier's scan of a shipment.
#[derive(JsonSchema)]
pub struct TrackingScan {
    #[serde(flatten)]
    pub common: Common,
    pub order_id: Id,
    pub tracking_number: Id,
    pub carrier: Id,
    pub status: ScanStatus,
    pub country: Option<Id>,
}

/// Delivery confirmed to the buyer.
#[derive(JsonSchema)]
pub struct OrderDelivered {
    #[serde(flatten)]
    pub common: Common,
    pub order_id: Id,
}

/// Who cancelled.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    Buyer,
    Seller,
    Platform,
}

/// An order cancelled, by whom and why.
#[derive(JsonSchema)]
pub struct OrderCancelled {
    #[serde(flatten)]
    pub common: Common,
    pub order_id: Id,
    pub by: CancelledBy,
    /// `out_of_stock` (`phantom_listing.out_of_stock_reason`) by the seller is phantom-listing evidence.
    pub reason: Text,
}

/// A buyer's rating of an order, 1–5 stars.
#[derive(JsonSchema)]
pub struct Review {
    #[serde(flatten)]
    pub common: Common,
    pub order_id: Id,
    pub buyer_id: Id,
    #[schemars(range(min = 1, max = 5))]
    pub rating: i64,
    pub buyer_created_at: Option<Timestamp>,
}

/// A buyer opened a dispute on an order.
#[derive(JsonSchema)]
pub struct DisputeOpened {
    #[serde(flatten)]
    pub common: Common,
    pub order_id: Id,
    /// `not_received`, `not_as_described` or `protection_expired` (the small-parcel restriction
    /// counts these); any other text is accepted as another reason.
    pub reason: Text,
    pub buyer_id: Option<Id>,
}

/// A buyer's message opening (or continuing) a conversation: the seller owes a reply.
#[derive(JsonSchema)]
pub struct BuyerMessage {
    #[serde(flatten)]
    pub common: Common,
    pub conversation_id: Id,
    pub buyer_id: Id,
}

/// The seller answered the conversation.
#[derive(JsonSchema)]
pub struct SellerReply {
    #[serde(flatten)]
    pub common: Common,
    pub conversation_id: Id,
}
