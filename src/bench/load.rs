//! The traffic side of `sellerguard bench`: producing a backlog, producing live at a fixed rate with
//! events stamped at publication, a plain consumer for the ceiling, and an alert reader that times
//! each alert against the publication of the event that caused it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::alert::rfc3339;

/// One generated event whose `ts` is filled in at publication.
pub struct Template {
    pub key: Box<str>,
    /// The line up to and including `"ts":"`, and from the closing quote on.
    head: Box<str>,
    tail: Box<str>,
}

impl Template {
    /// `None` if the line has no string `ts` (the generator always writes one).
    pub fn new(key: &str, line: &str) -> Option<Template> {
        let at = line.find(r#""ts":""#)? + 6;
        let end = at + line[at..].find('"')?;
        Some(Template { key: key.into(), head: line[..at].into(), tail: line[end..].into() })
    }

    fn render(&self, ts: i64, buf: &mut String) {
        buf.clear();
        buf.push_str(&self.head);
        buf.push_str(&rfc3339(ts));
        buf.push_str(&self.tail);
    }
}

fn producer(bootstrap: &str, linger_ms: u32) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        // Java-compatible key hashing: a seller's events land on one partition, as in production.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "60000")
        .create()
        .context("creating the bench producer")
}

/// Sends one record, waiting while librdkafka's queue is full.
fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &str, payload: &[u8]) -> anyhow::Result<()> {
    let mut rec = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e).context("producing bench traffic"),
        }
    }
}

/// Writes `lines` (key, JSON) to `topic` as fast as the broker takes them; returns events/s.
pub fn produce_backlog(bootstrap: &str, topic: &str, lines: &[(String, String)]) -> anyhow::Result<f64> {
    let p = producer(bootstrap, 5)?;
    let t0 = Instant::now();
    for (key, line) in lines {
        send(&p, topic, key, line.as_bytes())?;
    }
    p.flush(Duration::from_secs(120)).context("flushing the backlog")?;
    Ok(lines.len() as f64 / t0.elapsed().as_secs_f64())
}

/// When each live event was handed to the producer, by (seller, event time ms).
pub type Published = HashMap<(Box<str>, i64), Instant>;

/// Publishes templates in order at `rate` events/s for `duration`, each stamped with the wall clock
/// at publication (a live stream in order per partition).
pub fn produce_live(
    bootstrap: &str,
    topic: &str,
    templates: &[Template],
    rate: f64,
    duration: Duration,
) -> anyhow::Result<LiveSent> {
    // librdkafka's default linger (5 ms): what a platform producer does; part of the latency.
    let p = producer(bootstrap, 5)?;
    let total = ((rate * duration.as_secs_f64()) as usize).min(templates.len());
    let mut sent_at: Vec<(i64, Instant)> = Vec::with_capacity(total);
    let mut buf = String::new();
    let t0 = Instant::now();
    while sent_at.len() < total {
        // Catch up with the schedule in one burst, then sleep until the next millisecond.
        let due = ((t0.elapsed().as_secs_f64() * rate) as usize).min(total);
        while sent_at.len() < due {
            let t = &templates[sent_at.len()];
            let ts = chrono::Utc::now().timestamp_millis();
            t.render(ts, &mut buf);
            let at = Instant::now();
            send(&p, topic, &t.key, buf.as_bytes())?;
            sent_at.push((ts, at));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let achieved = total as f64 / t0.elapsed().as_secs_f64();
    let end = Instant::now();
    p.flush(Duration::from_secs(60)).context("flushing live traffic")?;
    let flush_lag = end.elapsed();
    let mut published = Published::with_capacity(total);
    for (t, (ts, at)) in templates.iter().zip(sent_at) {
        // Two events of one seller in one millisecond: keep the first (the longer latency).
        published.entry((t.key.clone(), ts)).or_insert(at);
    }
    Ok(LiveSent { sent: total, achieved, flush_lag, published })
}

pub struct LiveSent {
    pub sent: usize,
    pub achieved: f64,
    /// From the last send to the broker's acknowledgement of everything: the broker's backlog.
    pub flush_lag: Duration,
    pub published: Published,
}

fn assign_all<C: rdkafka::consumer::ConsumerContext>(consumer: &impl Consumer<C>, topic: &str) -> anyhow::Result<()> {
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).context("metadata")?;
    let mut tpl = TopicPartitionList::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assigning partitions")?;
    Ok(())
}

/// The ceiling: reads `expected` messages of `topic` with the client settings the service's reader
/// uses (`client`), doing nothing with them. Returns events/s.
pub async fn plain_consume(
    client: ClientConfig,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> anyhow::Result<f64> {
    // Timed from the consumer's creation, as the service's run is from its start.
    let t0 = Instant::now();
    let mut client = client;
    client.set("enable.partition.eof", "false");
    let consumer: StreamConsumer = client.create().context("creating the plain consumer")?;
    assign_all(&consumer, topic)?;
    let deadline = Instant::now() + timeout;
    let (mut n, mut bytes) = (0usize, 0usize);
    // One timer for the whole run, not one per message (the service's loop has none either).
    let timeout = tokio::time::sleep_until(deadline.into());
    tokio::pin!(timeout);
    while n < expected {
        tokio::select! {
            m = consumer.recv() => match m {
                Ok(m) => {
                    bytes += m.payload().map_or(0, <[u8]>::len);
                    n += 1;
                }
                Err(e) => anyhow::bail!("plain consumer: {e}"),
            },
            _ = &mut timeout => anyhow::bail!("plain consumer read {n} of {expected} messages before the timeout"),
        }
    }
    std::hint::black_box(bytes);
    Ok(expected as f64 / t0.elapsed().as_secs_f64())
}

/// What a timed reader takes from each message: the seller and the event time (ms) that name the
/// event it is about.
pub type Parse = fn(&[u8]) -> Option<(Box<str>, Option<i64>)>;

/// An alert names the event that completed it by seller and event time.
pub fn parse_alert(payload: &[u8]) -> Option<(Box<str>, Option<i64>)> {
    let a: crate::alert::Alert = serde_json::from_slice(payload).ok()?;
    let ms = chrono::DateTime::parse_from_rfc3339(&a.event_time).ok().map(|t| t.timestamp_millis());
    Some((a.seller_id.into(), ms))
}

/// An input event names itself.
pub fn parse_event(payload: &[u8]) -> Option<(Box<str>, Option<i64>)> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        seller_id: &'a str,
        ts: &'a str,
    }
    let h: Head = serde_json::from_slice(payload).ok()?;
    let ms = chrono::DateTime::parse_from_rfc3339(h.ts).ok().map(|t| t.timestamp_millis());
    Some((h.seller_id.into(), ms))
}

/// One message as a timed reader saw it.
pub struct Seen {
    pub at: Instant,
    pub seller: Box<str>,
    pub event_ms: Option<i64>,
}

/// A reader on its own thread (see [`read_timed`]), running until told how many messages to expect.
pub struct TimedReader {
    handle: std::thread::JoinHandle<Vec<Seen>>,
    /// How many messages to read before stopping; `usize::MAX` until [`TimedReader::finish`].
    want: Arc<AtomicUsize>,
}

impl TimedReader {
    /// Stops the reader once it has seen `n` messages (at once if it has), or `timeout` after this
    /// call if fewer arrive, and returns what it saw: a reader that is slow to catch up is waited
    /// for, not cut off after a fixed pause.
    pub fn finish(self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Seen>> {
        let deadline = Instant::now() + timeout;
        self.want.store(n, Ordering::SeqCst);
        while !self.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Past the deadline: stop now with what was seen (the caller compares counts).
        self.want.store(0, Ordering::SeqCst);
        self.handle.join().map_err(|_| anyhow::anyhow!("timed reader panicked"))
    }
}

/// Reads `topic` from the beginning on its own thread, noting when each message arrived, until
/// [`TimedReader::finish`] says how many to expect and that many arrived.
pub fn read_timed(bootstrap: &str, topic: &str, parse: Parse) -> anyhow::Result<TimedReader> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("sellerguard-bench-timed-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        // Fetch as soon as anything is there: the reader must not add latency of its own.
        .set("fetch.wait.max.ms", "5")
        .create()
        .context("creating a timed reader")?;
    assign_all(&consumer, topic)?;
    let want = Arc::new(AtomicUsize::new(usize::MAX));
    let wanted = want.clone();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while seen.len() < wanted.load(Ordering::SeqCst) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(20)) {
                let at = Instant::now();
                if let Some((seller, event_ms)) = parse(m.payload().unwrap_or_default()) {
                    seen.push(Seen { at, seller, event_ms });
                }
            }
        }
        seen
    });
    Ok(TimedReader { handle, want })
}
