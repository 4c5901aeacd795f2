//! Throughput of the synchronous core (no Kafka), criterion with `Throughput::Elements`:
//!
//! * `core`: decoding alone, and decoding plus the engine (ordering, windows, all families, standing);
//! * `family`: the engine with one rule family on (standing off) — what each family costs;
//! * `window`: one window update + read at 1 h, 24 h, 7 d and 30 d — must stay flat (bucketed);
//! * `sellers`: the engine over the same traffic spread across 1 k, 100 k and 1 M sellers.
//!
//! `cargo bench --bench engine` (all), or e.g. `cargo bench --bench engine -- family`.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use sellerguard::config::Config;
use sellerguard::decode::{decode, Body, DecodeLimits, Event};
use sellerguard::driver::Driver;
use sellerguard::engine::Step;
use sellerguard::gen::{generate, GenConfig};
use sellerguard::rules::FAMILIES;
use sellerguard::window::{Counter, RateWindow, Span, WindowedMedian};

fn traffic(n: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(n);
    let cfg = GenConfig { sellers: 400, target_events: Some(n), ..GenConfig::default() };
    generate(&cfg, &mut |_, l| lines.push(l.to_string())).expect("generator config is valid");
    lines.truncate(n);
    lines
}

fn decoded(lines: &[String]) -> Vec<Event> {
    let limits = DecodeLimits::default();
    lines.iter().filter_map(|l| decode(l.as_bytes(), &limits).ok()).collect()
}

/// Runs decoded events through a fresh engine; returns the alert count (kept so nothing is elided).
/// The engine owns what it is given (as it owns what the decoder hands it), so callers clone the
/// input outside the measurement: copying 100 k events is not the engine's work.
fn run_engine(cfg: &Config, events: Vec<Event>) -> usize {
    let mut driver = Driver::new(cfg).expect("valid config");
    let mut alerts = 0usize;
    let mut count = |step: &mut Step<u64>| alerts += step.alerts.len();
    for ev in events {
        driver.event(ev, &mut count);
    }
    driver.finish(&mut count);
    alerts
}

fn core(c: &mut Criterion) {
    let lines = traffic(100_000);
    let limits = DecodeLimits::default();
    let cfg = Config::default();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(10);
    g.bench_function("decode", |b| b.iter(|| lines.iter().filter(|l| decode(l.as_bytes(), &limits).is_ok()).count()));
    let events = decoded(&lines);
    g.bench_function("engine", |b| {
        b.iter_batched(|| events.clone(), |evs| run_engine(&cfg, evs), BatchSize::LargeInput)
    });
    g.bench_function("decode+engine", |b| {
        b.iter_batched(
            || Driver::new(&cfg).expect("default config is valid"),
            |mut driver| {
                let mut alerts = 0usize;
                let mut count = |step: &mut Step<u64>| alerts += step.alerts.len();
                for l in &lines {
                    driver.line(l.as_bytes(), &mut count);
                }
                driver.finish(&mut count);
                alerts
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A config with only `family` on and standing off.
fn only(family: &str) -> Config {
    let mut text = String::from("[standing]\nenabled = false\n");
    for f in FAMILIES {
        text.push_str(&format!("[{f}]\nenabled = {}\n", f == family));
    }
    Config::from_toml(&text).expect("toggles are valid")
}

fn families(c: &mut Criterion) {
    let events = decoded(&traffic(50_000));
    let mut g = c.benchmark_group("family");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function("none", |b| {
        b.iter_batched(|| events.clone(), |evs| run_engine(&only("-"), evs), BatchSize::LargeInput)
    });
    for f in FAMILIES {
        let cfg = only(f);
        g.bench_function(f, |b| b.iter_batched(|| events.clone(), |evs| run_engine(&cfg, evs), BatchSize::LargeInput));
    }
    g.finish();
}

fn windows(c: &mut Criterion) {
    const H: i64 = 3_600_000;
    let lengths = [("1h", H), ("24h", 24 * H), ("7d", 7 * 24 * H), ("30d", 30 * 24 * H)];
    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(1));
    for (name, len) in lengths {
        // One event every 10 s of event time: a busy seller.
        g.bench_with_input(BenchmarkId::new("counter_add_count", name), &len, |b, &len| {
            let span = Span::new(len, 720.min(len / 60_000));
            let (mut c, mut t) = (Counter::default(), 0i64);
            b.iter(|| {
                t += 10_000;
                c.add(span, t, 1);
                c.count(span, t)
            })
        });
        g.bench_with_input(BenchmarkId::new("rate_flag_counts", name), &len, |b, &len| {
            let span = RateWindow::<u32>::span(len);
            let (mut w, mut t) = (RateWindow::<u32>::default(), 0i64);
            b.iter(|| {
                t += 10_000;
                w.count_total(span, t);
                if t % 100_000 == 0 {
                    w.flag(t, 1);
                }
                w.counts(span, t)
            })
        });
        g.bench_with_input(BenchmarkId::new("median_insert_query", name), &len, |b, &len| {
            let (mut m, mut t) = (WindowedMedian::new(len, 0.01), 0i64);
            b.iter(|| {
                t += 10_000;
                m.insert(t, 10.0 + (t / 10_000 % 97) as f64);
                m.median(t, 20)
            })
        });
    }
    g.finish();
}

/// The same events with seller ids spread over `n` sellers (so state grows with `n`).
fn spread(events: &[Event], n: usize) -> Vec<Event> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.clone();
            e.seller_id = format!("seller-{:07}", i % n).into();
            e
        })
        .collect()
}

/// One quiet event per seller an hour before `t0`: `n` sellers with state.
fn warm_up(n: usize, t0: i64) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            event_id: format!("warm-{i}").into(),
            seller_id: format!("seller-{i:07}").into(),
            ts: t0 - 3_600_000,
            body: Body::SellerReply { conversation_id: "c".into() },
        })
        .collect()
}

fn sellers(c: &mut Criterion) {
    let base = decoded(&traffic(200_000));
    let cfg = Config::default();
    let mut g = c.benchmark_group("sellers");
    g.sample_size(10);
    for n in [1_000usize, 100_000, 1_000_000] {
        // Warm state first: every seller has been seen once, then the measured traffic runs.
        let warm = warm_up(n, base[0].ts);
        let events = spread(&base, n);
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || {
                    let mut d = Driver::new(&cfg).expect("valid");
                    for ev in &warm {
                        d.event(ev.clone(), &mut |_| {});
                    }
                    (d, events.clone())
                },
                |(mut driver, events)| {
                    for ev in events {
                        driver.event(ev, &mut |_| {});
                    }
                    driver.engine().sellers_tracked()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, core, families, windows, sellers);
criterion_main!(benches);
