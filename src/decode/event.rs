//! Validated events (event contract v1). Everything downstream of the decoder works on these types:
//! money is in USD, times are epoch milliseconds, enumerations are closed.

/// Epoch milliseconds (event time).
pub type Millis = i64;
/// An identifier from the input (ids are 1–128 bytes; almost all fit in 24 and are kept inline, so
/// decoding and copying one allocates nothing).
pub type Id = compact_str::CompactString;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Hours (as configured) to milliseconds.
pub fn hours_ms(h: f64) -> i64 {
    (h * HOUR_MS as f64).round() as i64
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Id,
    pub seller_id: Id,
    pub ts: Millis,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Listing(Listing),
    OrderPlaced(OrderPlaced),
    OrderShipped(OrderShipped),
    TrackingScan(TrackingScan),
    OrderDelivered { order_id: Id },
    OrderCancelled { order_id: Id, by: CancelledBy, reason: Id },
    Review(Review),
    DisputeOpened { order_id: Id, reason: DisputeReason, buyer_id: Option<Id> },
    BuyerMessage { conversation_id: Id, buyer_id: Id },
    SellerReply { conversation_id: Id },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub listing_id: Id,
    pub category: Id,
    pub price: f64,
    pub shipping_fee: f64,
    pub stock: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderPlaced {
    pub order_id: Id,
    pub listing_id: Id,
    pub buyer_id: Id,
    pub category: Id,
    pub price: f64,
    pub quantity: u32,
    pub shipping_fee: f64,
    pub shipping_method: Id,
    pub destination_country: Id,
    pub weight_grams: Option<u32>,
    pub buyer_created_at: Option<Millis>,
    pub promised_dispatch_hours: u32,
    /// `origin_region>destination_region` when the event names both (optional contract fields):
    /// freight follows the route, so fee baselines are kept per route when it is known.
    pub route: Option<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderShipped {
    pub order_id: Id,
    pub tracking_number: Id,
    pub carrier: Id,
    pub shipping_method: Id,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackingScan {
    pub order_id: Id,
    pub tracking_number: Id,
    pub carrier: Id,
    pub status: ScanStatus,
    pub country: Option<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub order_id: Id,
    pub buyer_id: Id,
    pub rating: u8,
    pub buyer_created_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStatus {
    Accepted,
    InTransit,
    OutForDelivery,
    Delivered,
    Returned,
    Exception,
}

impl ScanStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" => Self::Accepted,
            "in_transit" => Self::InTransit,
            "out_for_delivery" => Self::OutForDelivery,
            "delivered" => Self::Delivered,
            "returned" => Self::Returned,
            "exception" => Self::Exception,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    Buyer,
    Seller,
    Platform,
}

impl CancelledBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "buyer" => Self::Buyer,
            "seller" => Self::Seller,
            "platform" => Self::Platform,
            _ => return None,
        })
    }
}

/// Dispute reasons: the contract names three; anything else is kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeReason {
    NotReceived,
    NotAsDescribed,
    ProtectionExpired,
    Other,
}

impl DisputeReason {
    pub fn parse(s: &str) -> Self {
        match s {
            "not_received" => Self::NotReceived,
            "not_as_described" => Self::NotAsDescribed,
            "protection_expired" => Self::ProtectionExpired,
            _ => Self::Other,
        }
    }
}

/// Event types as a closed set: metric labels and summaries use these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Listing,
    OrderPlaced,
    OrderShipped,
    TrackingScan,
    OrderDelivered,
    OrderCancelled,
    Review,
    DisputeOpened,
    BuyerMessage,
    SellerReply,
}

impl EventType {
    /// In declaration order, so `t as usize` indexes per-type tables.
    pub const ALL: [EventType; 10] = [
        Self::Listing,
        Self::OrderPlaced,
        Self::OrderShipped,
        Self::TrackingScan,
        Self::OrderDelivered,
        Self::OrderCancelled,
        Self::Review,
        Self::DisputeOpened,
        Self::BuyerMessage,
        Self::SellerReply,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Listing => "listing",
            Self::OrderPlaced => "order_placed",
            Self::OrderShipped => "order_shipped",
            Self::TrackingScan => "tracking_scan",
            Self::OrderDelivered => "order_delivered",
            Self::OrderCancelled => "order_cancelled",
            Self::Review => "review",
            Self::DisputeOpened => "dispute_opened",
            Self::BuyerMessage => "buyer_message",
            Self::SellerReply => "seller_reply",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl Body {
    pub fn event_type(&self) -> EventType {
        match self {
            Body::Listing(_) => EventType::Listing,
            Body::OrderPlaced(_) => EventType::OrderPlaced,
            Body::OrderShipped(_) => EventType::OrderShipped,
            Body::TrackingScan(_) => EventType::TrackingScan,
            Body::OrderDelivered { .. } => EventType::OrderDelivered,
            Body::OrderCancelled { .. } => EventType::OrderCancelled,
            Body::Review(_) => EventType::Review,
            Body::DisputeOpened { .. } => EventType::DisputeOpened,
            Body::BuyerMessage { .. } => EventType::BuyerMessage,
            Body::SellerReply { .. } => EventType::SellerReply,
        }
    }
}
