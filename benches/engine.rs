//! Throughput of the synchronous core on generated mixed traffic (no Kafka): decoding alone, and
//! decoding plus the engine (ordering, windows, all rule families). `cargo bench --bench engine`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sellerguard::config::Config;
use sellerguard::decode::{decode, DecodeLimits};
use sellerguard::engine::{Engine, Step};
use sellerguard::gen::{generate, GenConfig};
use sellerguard::window::{Counter, Span};

fn traffic(n: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(n);
    let cfg = GenConfig { sellers: 400, target_events: Some(n), ..GenConfig::default() };
    generate(&cfg, &mut |_, l| lines.push(l.to_string())).expect("generator config is valid");
    lines.truncate(n);
    lines
}

fn bench(c: &mut Criterion) {
    let lines = traffic(100_000);
    let limits = DecodeLimits::default();
    let cfg = Config::default();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(10);
    g.bench_function("decode", |b| b.iter(|| lines.iter().filter(|l| decode(l.as_bytes(), &limits).is_ok()).count()));
    g.bench_function("decode+engine", |b| {
        b.iter_batched(
            || Engine::<u64>::new(&cfg).expect("default config is valid"),
            |mut engine| {
                let mut step = Step::default();
                let mut alerts = 0usize;
                for (i, l) in lines.iter().enumerate() {
                    if let Ok(ev) = decode(l.as_bytes(), &limits) {
                        engine.push(0, ev, i as u64, &mut step);
                        alerts += step.alerts.len();
                        step.alerts.clear();
                        step.done.clear();
                        step.causes.clear();
                    }
                }
                engine.flush(&mut step);
                alerts + step.alerts.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(1));
    for (name, span) in [("1h", Span::new(3_600_000, 60)), ("30d", Span::new(30 * 86_400_000, 720))] {
        g.bench_function(format!("counter_add_count_{name}"), |b| {
            let mut c = Counter::default();
            let mut t = 0i64;
            b.iter(|| {
                t += 1_000;
                c.add(span, t, 1);
                c.count(span, t)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
