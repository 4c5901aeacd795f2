//! The engine alone over the `core` benchmark's traffic, for a profiler (callgrind, perf): the
//! events are decoded first, then moved through a fresh engine, so a profile of `Engine::push`
//! shows the engine's own cost (through the [`Driver`], as every caller but the service drives it). `cargo run --release --example profile_engine -- [events] [rounds]`,
//! e.g. `valgrind --tool=callgrind target/release/examples/profile_engine 100000 1`.

use sellerguard::config::Config;
use sellerguard::decode::{decode, DecodeLimits};
use sellerguard::driver::Driver;
use sellerguard::engine::Step;
use sellerguard::gen::{generate, GenConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default| args.get(i).map_or(default, |a| a.parse::<usize>().expect("events rounds [config]"));
    let (n, rounds) = (number(0, 100_000), number(1, 1));
    let cfg = match args.get(2) {
        Some(path) => {
            Config::from_toml(&std::fs::read_to_string(path).expect("readable config")).expect("valid config")
        }
        None => Config::default(),
    };
    let limits = DecodeLimits::default();
    let mut events = Vec::with_capacity(n);
    let gcfg = GenConfig { sellers: 400, target_events: Some(n), ..GenConfig::default() };
    generate(&gcfg, &mut |_, l| {
        if events.len() < n {
            events.extend(decode(l.as_bytes(), &limits).ok());
        }
    })
    .expect("generator config is valid");
    let mut alerts = 0;
    for _ in 0..rounds {
        let batch = events.clone();
        let started = std::time::Instant::now();
        let mut driver = Driver::new(&cfg).expect("default config is valid");
        let mut count = |step: &mut Step<u64>| alerts += step.alerts.len();
        for ev in batch {
            driver.event(ev, &mut count);
        }
        driver.finish(&mut count);
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{} events in {:.1} ms: {:.2} M events/s",
            events.len(),
            secs * 1e3,
            events.len() as f64 / secs / 1e6
        );
    }
    println!("{alerts} alerts");
}
