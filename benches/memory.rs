//! Memory per tracked seller, measured (a counting allocator), not estimated; and peak RSS with
//! 1 M sellers. Prints one table. `cargo bench --bench memory`.
//!
//! * idle: each seller sent one event (a reply) — the floor a seller costs once seen;
//! * active: generated mixed traffic (orders, shipments, reviews, listings, chats) over 10 k sellers,
//!   ~20 events each, windows and timers live;
//! * 1 M idle sellers through the engine: live heap and the process's peak RSS (VmHWM).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use sellerguard::config::Config;
use sellerguard::decode::{decode, Body, DecodeLimits, Event};
use sellerguard::engine::{Engine, Step};
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

fn quiet(n: usize, t0: i64) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            event_id: format!("q-{i}").into(),
            seller_id: format!("seller-{i:07}").into(),
            ts: t0 + i as i64,
            body: Body::SellerReply { conversation_id: "c".into() },
        })
        .collect()
}

/// Live heap bytes the engine holds per seller after `events` (inputs already allocated).
fn bytes_per_seller(cfg: &Config, events: &[Event]) -> (f64, usize) {
    let before = live();
    let mut engine = Engine::<u64>::new(cfg).expect("valid config");
    let mut step = Step::default();
    // Clones: the inputs stay allocated, so only what the engine keeps is counted.
    for (i, ev) in events.iter().enumerate() {
        engine.push(0, ev.clone(), i as u64, &mut step);
        step.alerts.clear();
        step.done.clear();
        step.causes.clear();
        step.standing.clear();
    }
    engine.flush(&mut step);
    drop(step);
    let n = engine.sellers_tracked();
    let per = (live() - before) as f64 / n as f64;
    drop(engine);
    (per, n)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let cfg = Config::default();
    let t0 = 1_767_571_200_000;
    println!("{:<34} {:>10} {:>14}", "measure", "sellers", "value");

    let (idle, n) = bytes_per_seller(&cfg, &quiet(100_000, t0));
    println!("{:<34} {:>10} {:>11.0} B", "heap per idle seller", n, idle);

    let limits = DecodeLimits::default();
    let mut events = Vec::new();
    let g = GenConfig { sellers: 10_000, target_events: Some(200_000), ..GenConfig::default() };
    generate(&g, &mut |_, l| events.extend(decode(l.as_bytes(), &limits).ok())).expect("generator");
    let (active, n) = bytes_per_seller(&cfg, &events);
    println!("{:<34} {:>10} {:>11.0} B", "heap per active seller", n, active);

    let (idle_1m, n) = bytes_per_seller(&cfg, &quiet(1_000_000, t0));
    println!("{:<34} {:>10} {:>11.0} B", "heap per idle seller (1 M)", n, idle_1m);
    println!("{:<34} {:>10} {:>10.0} MiB", "peak RSS of this process", n, peak_rss_mib());
}
