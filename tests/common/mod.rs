//! Integration-test harness: a real Kafka-protocol broker (`tansu` 0.6, sqlite engine)
//! on loopback, plus rdkafka helpers. Proven by tests/broker_harness.rs. Install tansu:
//! `cargo install tansu --locked --features libsql`; found via `$TANSU_BIN`, `$PATH`,
//! `$CARGO_HOME/bin`, `~/.cargo/bin`. `TANSU_LOG` (RUST_LOG filter, default warn).
//!
//! tansu quirks: topics are NOT auto-created (producers time out, subscribers get
//! UnknownTopicOrPartition): `create_topic` first. Starts in <1 s; a fresh group gets
//! its first message ~0.3 s after subscribe; join/leave rebalances take ~3 s. Headers
//! (order, duplicates, empty/null values) and CreateTime round-trip exactly.
//! `offsets_for_times` past the last record answers offset 0, not -1/End like Kafka.
//! Only the sqlite engine gets commits/resume/offsets-for-times right; no transactions.
//!
//! OFFSET SEMANTICS (rust-rdkafka 0.39 / librdkafka 2.12; source + experiment):
//! * `Consumer::store_offset(topic, partition, offset)` takes the offset of the LAST
//!   PROCESSED message: it calls `rd_kafka_offset_store()`, which stores `offset + 1`.
//!   `store_offset_from_message(&m)` is the same with `m.offset()`.
//! * `Consumer::store_offsets(&tpl)` (`rd_kafka_offsets_store()`) and
//!   `Consumer::commit(&tpl, ..)` take the NEXT offset to read (no +1 added).
//! * A committed offset (see `committed_offsets`) is the next offset to read; a
//!   consumer resuming in the same group starts exactly there.
#![allow(dead_code)]

use std::io::Read;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// The library's broker launcher (`sellerguard::bench::tansu`, also used by `sellerguard bench`),
/// with failures as test panics.
pub struct Tansu(sellerguard::bench::tansu::Tansu);

impl Tansu {
    /// Starts a broker on a free loopback port and waits until it answers metadata.
    pub fn start() -> Tansu {
        Tansu(sellerguard::bench::tansu::Tansu::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// Starts the broker again on the same port with the same data, and waits until it answers.
    pub fn restart(&mut self) {
        if let Err(e) = self.0.restart() {
            panic!("tansu did not come back: {e}");
        }
    }
}

impl std::ops::Deref for Tansu {
    type Target = sellerguard::bench::tansu::Tansu;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Tansu {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// A free loopback port below the kernel's ephemeral range (never handed out as the local port of
/// an outgoing connection), checked by binding and never the same twice in this process: the
/// library's [`sellerguard::bench::tansu::free_port`], which the broker launcher uses too.
pub use sellerguard::bench::tansu::free_port;

/// Writes `text` to `path` through a temp file in the same directory and a rename, so that a
/// reader polling `path` (the service's config watch) sees the old content or the new, never a
/// half-written or empty file.
pub fn write_atomic(path: &Path, text: &str) {
    let name = path.file_name().expect("a file path").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), path.display()));
}

/// Path of the `sellerguard` binary cargo built for this integration test.
pub fn sellerguard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sellerguard"))
}

/// Client config with only `bootstrap.servers` set.
pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// A group id no other test (or test run) uses.
pub fn unique_group(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

/// Creates `name` (replication 1; an existing topic is accepted) and waits until
/// metadata shows all its partitions with a leader.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap).create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in admin.create_topics(&[topic], &opts).await.expect("create_topics") {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => panic!("creating topic {t}: {code:?}"),
        }
    }
    let consumer: BaseConsumer = base_config(bootstrap).create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(name), Duration::from_secs(2)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == name) {
                let ps = t.partitions();
                if t.error().is_none()
                    && ps.len() == partitions as usize
                    && ps.iter().all(|p| p.error().is_none() && p.leader() >= 0)
                {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "topic {name} never showed {partitions} partitions");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A record for [`produce_records`]: key, payload, headers, CreateTime (ms) if set.
pub struct Outgoing<'a> {
    pub key: &'a str,
    pub payload: &'a [u8],
    pub headers: &'a [(String, Vec<u8>)],
    pub timestamp: Option<i64>,
}

/// A record for [`produce_raw`]: any key bytes or none, and a payload or none (a tombstone).
pub struct OutgoingRaw<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [(String, Vec<u8>)],
    pub timestamp: Option<i64>,
}

/// Produces keyed records (acks=all, Java-compatible murmur2 key partitioning),
/// awaiting every delivery. Returns each record's (partition, offset), in order.
pub async fn produce(bootstrap: &str, topic: &str, records: &[(String, Vec<u8>)]) -> Vec<(i32, i64)> {
    let out: Vec<Outgoing> =
        (records.iter()).map(|(key, payload)| Outgoing { key, payload, headers: &[], timestamp: None }).collect();
    produce_records(bootstrap, topic, &out).await
}

/// Like [`produce`], with headers and timestamps.
pub async fn produce_records(bootstrap: &str, topic: &str, records: &[Outgoing<'_>]) -> Vec<(i32, i64)> {
    let raw: Vec<OutgoingRaw> = (records.iter())
        .map(|r| OutgoingRaw {
            key: Some(r.key.as_bytes()),
            payload: Some(r.payload),
            headers: r.headers,
            timestamp: r.timestamp,
        })
        .collect();
    produce_raw(bootstrap, topic, &raw).await
}

/// Like [`produce_records`], with raw key bytes and optional payloads: what a producer that sends
/// tombstones or non-UTF-8 keys puts on the topic.
pub async fn produce_raw(bootstrap: &str, topic: &str, records: &[OutgoingRaw<'_>]) -> Vec<(i32, i64)> {
    let producer: FutureProducer = base_config(bootstrap)
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "30000")
        // One produce request in flight, so that a retried request cannot land after a later one.
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .unwrap();
    // Enqueued strictly in the records' order: awaiting many `send`s together lets a later record
    // take the room a full local queue frees before an earlier one retries (seen: a partition held
    // events days out of the file's order once the input passed the queue's 100,000 messages).
    let mut deliveries = Vec::with_capacity(records.len());
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (key, v) in r.headers {
            headers = headers.insert(Header { key, value: Some(v) });
        }
        let mut rec = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
        if let Some(k) = r.key {
            rec = rec.key(k);
        }
        if let Some(p) = r.payload {
            rec = rec.payload(p);
        }
        if let Some(ts) = r.timestamp {
            rec = rec.timestamp(ts);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match producer.send_result(rec) {
                Ok(delivery) => break deliveries.push(delivery),
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    assert!(Instant::now() < deadline, "the producer's queue stayed full for 60 s");
                    rec = back;
                    // Room comes as deliveries are acknowledged (served by librdkafka's own thread).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => panic!("enqueueing a record for {topic} failed: {e}"),
            }
        }
    }
    let mut out = Vec::with_capacity(deliveries.len());
    for (i, d) in deliveries.into_iter().enumerate() {
        match d.await {
            Ok(Ok(d)) => out.push((d.partition, d.offset)),
            Ok(Err((e, _))) => panic!("delivery of record {i} to {topic} failed: {e}"),
            Err(_) => panic!("delivery of record {i} to {topic} was cancelled"),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The key as text (lossy where it is not UTF-8); `key_bytes` has it exactly.
    pub key: Option<String>,
    pub key_bytes: Option<Vec<u8>>,
    /// The payload; empty for a null payload (a tombstone): see `null_payload`.
    pub payload: Vec<u8>,
    pub null_payload: bool,
    pub headers: Vec<(String, Vec<u8>)>,
    pub partition: i32,
    pub offset: i64,
    /// Message timestamp in ms (CreateTime or LogAppendTime), -1 if none.
    pub timestamp: i64,
}

pub fn to_received<M: Message>(m: &M) -> Received {
    let header = |h: rdkafka::message::Header<&[u8]>| (h.key.to_string(), h.value.unwrap_or_default().to_vec());
    Received {
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        key_bytes: m.key().map(<[u8]>::to_vec),
        payload: m.payload().unwrap_or_default().to_vec(),
        null_payload: m.payload().is_none(),
        headers: m.headers().map(|h| h.iter().map(header).collect()).unwrap_or_default(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis().unwrap_or(-1),
    }
}

/// `group`'s committed offsets (next offset to read) for each partition of `topic`,
/// sorted by partition; -1 where nothing is committed.
pub fn committed_offsets(bootstrap: &str, group: &str, topic: &str) -> Vec<(i32, i64)> {
    let consumer: BaseConsumer = base_config(bootstrap).set("group.id", group).create().unwrap();
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition(topic, p.id());
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed_offsets");
    let raw = |o: Offset| if let Offset::Offset(o) = o { o } else { -1 };
    let mut out: Vec<(i32, i64)> = (committed.elements().iter()).map(|e| (e.partition(), raw(e.offset()))).collect();
    out.sort();
    out
}

/// Generated traffic written to a file in `dir`, with the alert ids `sellerguard replay` computes
/// from it: the reference a service run on the broker must reproduce.
pub struct Reference {
    pub dir: tempfile::TempDir,
    /// (key = seller id, JSON line), in emission order.
    pub lines: Vec<(String, String)>,
    pub alert_ids: std::collections::BTreeSet<String>,
    /// Alerts per rule in the reference.
    pub rules: std::collections::BTreeMap<String, usize>,
}

/// Keyed records to produce, in the traffic's order.
pub fn as_records(lines: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    lines.iter().map(|(k, l)| (k.clone(), l.as_bytes().to_vec())).collect()
}

pub fn replay_reference(gen: &sellerguard::gen::GenConfig) -> Reference {
    let mut lines: Vec<(String, String)> = Vec::new();
    sellerguard::gen::generate(gen, &mut |k, l| lines.push((k.to_string(), l.to_string()))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.iter().map(|(_, l)| format!("{l}\n")).collect::<String>()).unwrap();
    let out = Command::new(sellerguard_bin()).args(["replay", file.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    let alerts: Vec<sellerguard::alert::Alert> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut rules = std::collections::BTreeMap::new();
    for a in &alerts {
        *rules.entry(a.rule.clone()).or_default() += 1;
    }
    let alert_ids = alerts.into_iter().map(|a| a.alert_id).collect();
    Reference { dir, lines, alert_ids, rules }
}

/// The HTTP/1.0 GET the tests need (no client crate): status and body. HTTP/1.0, so that the
/// server closes the connection instead of chunking the body.
pub fn http_get(addr: &str, path_and_query: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

/// The text of a `/metrics` scrape; empty when unreachable.
pub fn metrics_text(addr: &str) -> String {
    http_get(addr, "/metrics").map(|(_, body)| body).unwrap_or_default()
}

/// Sum of a metric's samples (all label sets) from a `/metrics` scrape: `None` when the endpoint
/// does not answer or the metric has no sample, so that a check for 0 fails on a missing metric.
pub fn scrape(addr: &str, metric: &str) -> Option<f64> {
    let (status, body) = http_get(addr, "/metrics")?;
    if status != 200 {
        return None;
    }
    let samples: Vec<f64> = (body.lines())
        .filter(|l| l.starts_with(metric) && matches!(l.as_bytes().get(metric.len()), Some(b'{' | b' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

/// A `sellerguard run` child process, its metrics address and the file its stderr goes to.
pub struct Service {
    pub child: Child,
    pub metrics: String,
    /// The log (the child's stderr), for failure messages.
    pub log: Option<PathBuf>,
}

/// How long [`start_service`] waits for the metrics endpoint.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long [`Service::stop`] waits for a graceful exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(90);

/// Starts `sellerguard run` on topics `events-{suffix}`, `alerts-{suffix}`, `dlq-{suffix}`, logging
/// (appending) to `log`, and waits until its `/healthz` answers 200. A child that exits because its
/// metrics port was taken in the meantime is started again on another port; any other early exit
/// fails the test with the log.
pub fn start_service(cfg: &Path, bootstrap: &str, suffix: &str, group: &str, log: &Path) -> Service {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        let metrics = format!("127.0.0.1:{}", free_port());
        // Where this attempt's lines start in the (appended) log.
        let from = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0) as usize;
        let mut child = Command::new(sellerguard_bin())
            .args(["run", "--config", cfg.to_str().unwrap(), "--brokers", bootstrap])
            .args(["--input-topic", &format!("events-{suffix}")])
            .args(["--alerts-topic", &format!("alerts-{suffix}"), "--dlq-topic", &format!("dlq-{suffix}")])
            .args(["--group-id", group, "--metrics-addr", &metrics])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap())
            .spawn()
            .unwrap();
        loop {
            if http_get(&metrics, "/healthz").is_some_and(|(status, _)| status == 200) {
                return Service { child, metrics, log: Some(log.to_path_buf()) };
            }
            if let Some(status) = child.try_wait().unwrap() {
                let text = std::fs::read(log).unwrap_or_default();
                let mine = String::from_utf8_lossy(text.get(from..).unwrap_or_default());
                if mine.contains("binding the metrics endpoint") && mine.contains("in use") {
                    eprintln!("start_service: metrics port {metrics} was taken; starting again on another");
                    break;
                }
                panic!("sellerguard run exited at start with {status}:\n{mine}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sellerguard run: /healthz on {metrics} did not answer 200 within {START_DEADLINE:?}\n{}",
                    log_tail(log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(Instant::now() < deadline, "no free metrics port within {START_DEADLINE:?}");
    }
}

impl Service {
    /// [`scrape`] of this service's metrics.
    pub fn scrape(&self, metric: &str) -> Option<f64> {
        scrape(&self.metrics, metric)
    }

    /// The last lines of this service's log (empty without one), for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        self.log.as_deref().map(|l| log_tail(l, n)).unwrap_or_default()
    }

    /// Whether the process has exited (without reaping it: `&self`). A zombie counts as exited.
    pub fn exited(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // pid (comm) STATE ...: the state follows the last ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|st| st == "Z" || st == "X")
    }

    /// SIGTERM and wait: the graceful path. Past [`STOP_DEADLINE`] the child is SIGKILLed and the
    /// test fails, naming the timeout, with the log tail.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sellerguard run did not stop within {STOP_DEADLINE:?} of SIGTERM (SIGKILLed)\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A test that fails before stopping its service does not leave it running (competing for the
/// machine with the tests after it).
impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// High watermarks (the next offset to be written) of every partition of `topic`, sorted by
/// partition.
pub fn end_offsets(bootstrap: &str, topic: &str) -> Vec<(i32, i64)> {
    watermarks(bootstrap, topic).into_iter().map(|(p, _, high)| (p, high)).collect()
}

/// (partition, low, high) for every partition of `topic`, sorted by partition.
fn watermarks(bootstrap: &str, topic: &str) -> Vec<(i32, i64, i64)> {
    let consumer: BaseConsumer = base_config(bootstrap).create().unwrap();
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let t = md.topics().iter().find(|t| t.name() == topic).unwrap_or_else(|| panic!("no metadata for {topic}"));
    assert!(t.error().is_none() && !t.partitions().is_empty(), "topic {topic}: {:?}", t.error());
    let mut out: Vec<(i32, i64, i64)> = (t.partitions().iter())
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("watermarks of {topic}/{}: {e}", p.id()));
            (p.id(), low, high)
        })
        .collect();
    out.sort();
    out
}

/// Waits until `group` has committed every message of `topic` (its committed offset equals the end
/// offset on every partition) and `svc` holds nothing: `sellerguard_buffered_events` and
/// `sellerguard_inflight_batches` are both 0. An offset is committed only after the alerts it
/// caused are acknowledged, so the output topics are then complete. Fails at `deadline` with the
/// offsets and the log tail, or at once if the service exits.
pub async fn wait_caught_up(svc: &Service, bootstrap: &str, group: &str, topic: &str, deadline: Duration) {
    wait_group_caught_up(&[svc], bootstrap, group, topic, deadline).await
}

/// [`wait_caught_up`] for a group of several instances: every one of them must hold nothing, and a
/// failure shows each one's figures and log tail (the stalled partitions may be any member's).
pub async fn wait_group_caught_up(svcs: &[&Service], bootstrap: &str, group: &str, topic: &str, deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let (b, g, t) = (bootstrap.to_string(), group.to_string(), topic.to_string());
        let (committed, ends) =
            tokio::task::spawn_blocking(move || (committed_offsets(&b, &g, &t), end_offsets(&b, &t))).await.unwrap();
        // Nothing committed on an empty partition is nothing to wait for.
        let all_committed = committed.len() == ends.len()
            && committed.iter().zip(&ends).all(|((cp, c), (ep, e))| cp == ep && (c == e || (*e == 0 && *c < 0)));
        let held: Vec<_> = (svcs.iter())
            .map(|s| (s.scrape("sellerguard_buffered_events"), s.scrape("sellerguard_inflight_batches")))
            .collect();
        if all_committed && held.iter().all(|h| *h == (Some(0.0), Some(0.0))) {
            return;
        }
        for svc in svcs {
            assert!(
                !svc.exited(),
                "an instance exited while catching up on {topic} (committed {committed:?}, ends {ends:?})\n{}",
                svc.log_tail(40)
            );
        }
        if Instant::now() >= until {
            let each: Vec<String> = (svcs.iter().zip(&held).enumerate())
                .map(|(i, (s, (b, f)))| {
                    let owned = s.scrape("sellerguard_partitions_owned");
                    format!("instance {i}: owns {owned:?}, buffered {b:?}, in flight {f:?}\n{}", s.log_tail(40))
                })
                .collect();
            panic!(
                "the group did not catch up on {topic} within {deadline:?}: group {group} committed {committed:?}, \
                 end offsets {ends:?}\n{}",
                each.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads `topic` from the beginning (a fresh group, every partition assigned) until every
/// partition is read up to its high watermark as it was when the call began (or the consumer
/// reports the partition's end, which also covers transaction markers past the last record).
/// Blocking; records in arrival order. Fails after `max_wait` with what it read.
pub fn consume_to_end(bootstrap: &str, topic: &str, max_wait: Duration) -> Vec<Received> {
    let marks = watermarks(bootstrap, topic);
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", unique_group("harness-to-end"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (p, _, _) in &marks {
        tpl.add_partition_offset(topic, *p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    // Per partition: the end to reach, and the next offset to read once something was read.
    let mut todo: std::collections::BTreeMap<i32, (i64, i64)> =
        marks.iter().filter(|(_, low, high)| high > low).map(|(p, low, high)| (*p, (*high, *low))).collect();
    let (start, mut out) = (Instant::now(), Vec::new());
    while !todo.is_empty() {
        assert!(
            start.elapsed() < max_wait,
            "consume_to_end({topic}): after {max_wait:?}, partitions (end, next) not reached: {todo:?}; watermarks at the start {marks:?}; read {} records: {out:?}",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let r = to_received(&m);
                if let Some((end, next)) = todo.get_mut(&r.partition) {
                    *next = r.offset + 1;
                    if *next >= *end {
                        todo.remove(&r.partition);
                    }
                }
                out.push(r);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                todo.remove(&p);
            }
            Some(Err(e)) => eprintln!("consume_to_end({topic}): {e}"),
            None => {}
        }
    }
    out
}

/// A log file's text without ANSI escapes (the service colours its log unless `NO_COLOR` is set),
/// so that `field="value"` can be matched as written.
pub fn log_text(log: &Path) -> String {
    strip_ansi(&std::fs::read_to_string(log).unwrap_or_default())
}

/// `text` without ANSI CSI sequences (`ESC [ … final byte`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `n` lines of a service log, without the per-message reject lines: for failure messages.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = log_text(log);
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("rejected input")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
