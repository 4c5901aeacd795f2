//! Memory per tracked seller, measured (a counting allocator), not estimated; and peak RSS with
//! 1 M sellers. Prints one table. `cargo bench --bench memory`.
//!
//! * idle: each seller sent one event (a reply) — the floor a seller costs once seen;
//! * active: generated mixed traffic (orders, shipments, reviews, listings, chats) over 10 k sellers,
//!   ~20 events each, windows and timers live;
//! * 1 M idle sellers through the engine: live heap and the process's peak RSS (VmHWM), measured
//!   first so that no earlier run's freed heap counts; the inputs are made as they are pushed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use sellerguard::config::Config;
use sellerguard::decode::{decode, Body, DecodeLimits, Event};
use sellerguard::driver::Driver;
use sellerguard::gen::{generate, GenConfig};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// One seller reply per seller, 1 ms apart (no sweep runs, so none is evicted), made on the fly:
/// the bench holds no input, and peak RSS is the engine's.
fn quiet(n: usize, t0: i64) -> impl Iterator<Item = Event> {
    (0..n).map(move |i| Event {
        event_id: format!("q-{i}").into(),
        seller_id: format!("seller-{i:07}").into(),
        ts: t0 + i as i64,
        body: Body::SellerReply { conversation_id: "c".into() },
    })
}

/// Live heap bytes the engine holds per seller after `events` (each allocated as it is pushed, so
/// only what the engine keeps is counted). `drain_every`: flush the reorder buffer every so many
/// events. Events 1 ms apart all sit within the 5-minute allowed lateness, so without it the
/// buffer's spare capacity (set by event rate × lateness, not by sellers) would be counted too.
fn bytes_per_seller(cfg: &Config, events: impl Iterator<Item = Event>, drain_every: Option<usize>) -> (f64, usize) {
    // Built before counting: the driver's intake registers its Prometheus counters, which are
    // not per-seller state (the engine's own empty tables are a few hundred bytes).
    let mut driver = Driver::new(cfg).expect("valid config");
    let before = live();
    for (i, ev) in events.enumerate() {
        driver.event(ev, &mut |_| {});
        if drain_every.is_some_and(|k| (i + 1) % k == 0) {
            driver.finish(&mut |_| {});
        }
    }
    driver.finish(&mut |_| {});
    let n = driver.engine().sellers_tracked();
    let per = (live() - before) as f64 / n as f64;
    drop(driver);
    (per, n)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let cfg = Config::default();
    let t0 = 1_767_571_200_000;
    let drain = Some(1_000);

    // First, so that the peak RSS is this run's (plus the process itself), not an earlier one's.
    let (idle_1m, n_1m) = bytes_per_seller(&cfg, quiet(1_000_000, t0), drain);
    let rss_1m = peak_rss_mib();

    println!("Engine heap after the input, per tracked seller (counting allocator: bytes requested, not");
    println!("malloc's overhead); reorder buffer drained every 1 k events unless said otherwise.");
    println!("{:<44} {:>10} {:>14}", "measure", "sellers", "value");
    let (idle, n) = bytes_per_seller(&cfg, quiet(100_000, t0), drain);
    println!("{:<44} {:>10} {:>11.0} B", "heap per idle seller (one reply each)", n, idle);
    let (undrained, _) = bytes_per_seller(&cfg, quiet(100_000, t0), None);
    let buffer_mib = (undrained - idle) * n as f64 / (1024.0 * 1024.0);
    println!("{:<44} {:>10} {:>10.1} MiB", "  + reorder buffer kept after 100 k events", "-", buffer_mib);

    let limits = DecodeLimits::default();
    let mut events = Vec::new();
    let g = GenConfig { sellers: 10_000, target_events: Some(200_000), ..GenConfig::default() };
    generate(&g, &mut |_, l| events.extend(decode(l.as_bytes(), &limits).ok())).expect("generator");
    // Generated traffic spans days: the reorder buffer stays small without draining. Clones: the
    // inputs were allocated before the count started and must not be freed inside it.
    let (active, n) = bytes_per_seller(&cfg, events.iter().cloned(), None);
    drop(events);
    println!("{:<44} {:>10} {:>11.0} B", "heap per active seller (~20 events each)", n, active);

    println!("{:<44} {:>10} {:>11.0} B", "heap per idle seller (1 M)", n_1m, idle_1m);
    println!("{:<44} {:>10} {:>10.0} MiB", "peak RSS of the process, 1 M idle sellers", n_1m, rss_1m);
}
