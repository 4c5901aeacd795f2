//! The `sellerguard` command line: argument parsing and wiring only; the work is in the library.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sellerguard::config::Config;
use sellerguard::{backtest, bench, demo, eval, gen, replay, service, shutdown, telemetry};

#[derive(Parser)]
#[command(name = "sellerguard", version, about = "Real-time marketplace seller-rule violation detector")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service: consume events from Kafka, produce alerts and dead letters.
    Run(RunArgs),
    /// Run the engine over a JSON-lines file (or - for stdin): alerts to stdout, summary to stderr.
    Replay {
        /// Input file, or - for stdin.
        input: String,
        #[arg(long, env = "SELLERGUARD_CONFIG")]
        config: Option<PathBuf>,
        /// Also write seller standing records (JSON lines) to this file.
        #[arg(long)]
        standing: Option<PathBuf>,
    },
    /// Zero set-up demo on an in-process Kafka cluster with generated traffic.
    Demo {
        #[command(flatten)]
        gen: GenArgs,
        /// Alerts printed per family.
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
    /// Check a config: validate it and build the Kafka clients from it (TLS/SASL included) without
    /// connecting; print the effective settings with secrets masked.
    CheckConfig {
        #[arg(long, env = "SELLERGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Generate labelled marketplace traffic as JSON lines.
    Gen {
        #[command(flatten)]
        gen: GenArgs,
        /// Output file (default stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Where to write the fraud labels (JSON lines).
        #[arg(long)]
        labels: Option<PathBuf>,
    },
    /// End-to-end measurement through Kafka (tansu on loopback unless --bootstrap): the maximum
    /// sustained rate against a plain consumer, then event→alert latency at fractions of it.
    Bench(BenchArgs),
    /// Score every rule family against labelled traffic (generated, or --events-file + --labels):
    /// recall, honest sellers flagged, precision, detection delay. Exit code 1 below the [eval] targets.
    Eval {
        #[command(flatten)]
        gen: GenArgs,
        /// Evaluate this events file (JSON lines) instead of generated traffic.
        #[arg(long, requires = "labels", conflicts_with = "sweep")]
        events_file: Option<PathBuf>,
        /// The labels of --events-file (JSON lines, as `gen --labels` writes them).
        #[arg(long, requires = "events_file")]
        labels: Option<PathBuf>,
        /// Run intensities 1.0, 0.8, 0.6, 0.4, 0.2 and print one table (exit code from 1.0).
        #[arg(long)]
        sweep: bool,
        #[arg(long, env = "SELLERGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Replay history under a baseline and a candidate config side by side: alerts per rule, those
    /// only one config raises (matched by alert_id), precision and recall per family with --labels,
    /// the configs' differing keys, rejected and late events.
    Backtest {
        /// The candidate config.
        #[arg(long)]
        config: PathBuf,
        /// The baseline config (default: SELLERGUARD_CONFIG, else the built-in default).
        #[arg(long, env = "SELLERGUARD_CONFIG")]
        baseline: Option<PathBuf>,
        /// Events (JSON lines), or - for stdin.
        input: String,
        /// Fraud labels of the events (JSON lines, as `gen --labels` writes them).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Print one JSON document instead of the tables.
        #[arg(long)]
        json: bool,
    },
    /// Write the JSON Schemas of the event, alert and standing contracts (as in deploy/schemas/).
    Schema {
        /// Directory to write event.v1.schema.json, alert.v1.schema.json and standing.v1.schema.json to.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct RunArgs {
    #[arg(long, env = "SELLERGUARD_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "SELLERGUARD_BROKERS")]
    brokers: Option<String>,
    #[arg(long, env = "SELLERGUARD_INPUT_TOPIC")]
    input_topic: Option<String>,
    #[arg(long, env = "SELLERGUARD_ALERTS_TOPIC")]
    alerts_topic: Option<String>,
    #[arg(long, env = "SELLERGUARD_DLQ_TOPIC")]
    dlq_topic: Option<String>,
    #[arg(long, env = "SELLERGUARD_GROUP_ID")]
    group_id: Option<String>,
    #[arg(long, env = "SELLERGUARD_METRICS_ADDR")]
    metrics_addr: Option<String>,
}

#[derive(Args)]
struct BenchArgs {
    /// An existing broker (default: start `tansu` on a free loopback port).
    #[arg(long)]
    bootstrap: Option<String>,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    #[arg(long, default_value_t = 2_000)]
    sellers: usize,
    /// Backlog size for the maximum-rate runs.
    #[arg(long, default_value_t = 300_000)]
    events: usize,
    /// Seconds of each live run.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Live loads, in percent of the measured maximum.
    #[arg(long, value_delimiter = ',', default_value = "25,50,90")]
    loads: Vec<f64>,
    /// `input.allowed_lateness_ms` for the service. Alerts wait this long for out-of-order events,
    /// so it is the floor of their latency; 0 suits a stream in order per seller (stamped at publication).
    #[arg(long, default_value_t = 0)]
    lateness_ms: i64,
    /// Maximum-rate runs of each kind (the best is reported).
    #[arg(long, default_value_t = 2)]
    repeat: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Use this live maximum (events/s) instead of searching for it (a quicker run).
    #[arg(long)]
    live_rate: Option<f64>,
    #[arg(long, env = "SELLERGUARD_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct GenArgs {
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 150)]
    sellers: usize,
    #[arg(long, default_value_t = 10)]
    days: u32,
    /// Stop after about this many events.
    #[arg(long)]
    events: Option<usize>,
    /// Share of sellers that commit fraud.
    #[arg(long, default_value_t = 0.08)]
    fraud_share: f64,
    /// How blatant the fraud is, in (0, 1]: lower is subtler (fewer bad events, nearer the thresholds).
    #[arg(long, default_value_t = 1.0)]
    intensity: f64,
}

impl GenArgs {
    fn config(&self) -> gen::GenConfig {
        gen::GenConfig {
            seed: self.seed,
            sellers: self.sellers,
            days: self.days,
            target_events: self.events,
            fraud_share: self.fraud_share,
            intensity: self.intensity,
            ..gen::GenConfig::default()
        }
    }
}

fn load_config(path: &Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

fn main() -> anyhow::Result<()> {
    telemetry::init_tracing();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(a) => {
            let mut cfg = load_config(&a.config)?;
            let flags = [a.brokers, a.input_topic, a.alerts_topic, a.dlq_topic, a.group_id, a.metrics_addr];
            // Flags and SELLERGUARD_* variables win over the file, at start and at every reload.
            let overrides = move |cfg: &mut Config| {
                let k = &mut cfg.kafka;
                let slots = [
                    &mut k.brokers,
                    &mut k.input_topic,
                    &mut k.alerts_topic,
                    &mut k.dlq_topic,
                    &mut k.group_id,
                    &mut cfg.service.metrics_addr,
                ];
                for (slot, v) in slots.into_iter().zip(&flags) {
                    if let Some(v) = v {
                        v.clone_into(slot);
                    }
                }
            };
            overrides(&mut cfg);
            cfg.validate()?;
            let reload = a.config.clone().map(|p| (p, Box::new(overrides) as service::reload::Overrides));
            tracing::info!(config = %cfg.redacted_toml(), "configuration");
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let metrics = telemetry::Metrics::new();
                let addr = cfg.service.metrics_addr.parse()?;
                let (bound, server) = telemetry::serve(addr, metrics.clone())
                    .await
                    .with_context(|| format!("binding the metrics endpoint {addr} (service.metrics_addr)"))?;
                tracing::info!(%bound, "metrics on http://{bound}/metrics, health on /healthz");
                let (trigger, stop) = shutdown::channel();
                shutdown::on_signals(trigger);
                let res =
                    service::run_with_reload(cfg, reload, metrics, stop, Arc::new(service::Progress::default())).await;
                server.abort();
                res
            })
        }
        Cmd::Replay { input, config, standing } => {
            let cfg = load_config(&config)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut standing_file = match &standing {
                Some(p) => Some(std::io::BufWriter::new(
                    std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
                )),
                None => None,
            };
            let sw = standing_file.as_mut().map(|w| w as &mut dyn Write);
            let summary = if input == "-" {
                replay::replay_to(&cfg, std::io::stdin().lock(), &mut out, sw)?
            } else {
                let f = std::fs::File::open(&input).with_context(|| format!("opening {input}"))?;
                replay::replay_to(&cfg, BufReader::with_capacity(1 << 20, f), &mut out, sw)?
            };
            eprint!("{}", summary.render());
            Ok(())
        }
        Cmd::Demo { gen, show } => {
            let cfg = Config::default();
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(demo::run(
                &cfg,
                demo::DemoOptions { gen: gen.config(), show, timeout: Duration::from_secs(300) },
            ))?;
            print!("{}", demo::render(&report, show));
            Ok(())
        }
        Cmd::Bench(a) => {
            let cfg = load_config(&a.config)?;
            anyhow::ensure!(a.loads.iter().all(|l| *l > 0.0 && *l <= 100.0), "--loads: percentages in (0, 100]");
            let opts = bench::BenchOptions {
                bootstrap: a.bootstrap,
                partitions: a.partitions,
                sellers: a.sellers,
                events: a.events,
                duration: Duration::from_secs(a.duration),
                loads: a.loads.iter().map(|l| l / 100.0).collect(),
                lateness_ms: a.lateness_ms,
                repeat: a.repeat.max(1),
                seed: a.seed,
                live_rate: a.live_rate,
            };
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(bench::run(&cfg, &opts))?;
            print!("{}", bench::render(&report));
            Ok(())
        }
        Cmd::CheckConfig { config } => {
            let cfg = load_config(&config)?;
            print!("{}", sellerguard::check::check(&cfg)?);
            Ok(())
        }
        Cmd::Gen { gen, out, labels } => {
            let cfg = gen.config();
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut err = None;
            let summary = gen::generate(&cfg, &mut |_, line| {
                if err.is_none() {
                    err = writeln!(w, "{line}").err();
                }
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(e) = err {
                return Err(e.into());
            }
            w.flush()?;
            if let Some(p) = labels {
                let mut lw = std::io::BufWriter::new(std::fs::File::create(p)?);
                for l in &summary.labels {
                    writeln!(lw, "{}", serde_json::to_string(l)?)?;
                }
                lw.flush()?;
            }
            eprintln!("gen: {} events, {} labelled sellers", summary.events, summary.labels.len());
            Ok(())
        }
        Cmd::Backtest { config, baseline, input, labels, json } => {
            let opts = backtest::Options {
                baseline: baseline.as_deref(),
                candidate: &config,
                input: &input,
                labels: labels.as_deref(),
            };
            let report = backtest::run(&opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(())
        }
        Cmd::Schema { out } => {
            for path in sellerguard::schema::write_all(&out)? {
                println!("{}", path.display());
            }
            Ok(())
        }
        Cmd::Eval { gen, events_file, labels, sweep, config } => {
            let cfg = load_config(&config)?;
            let src = match (events_file, labels) {
                (Some(events), Some(labels)) => eval::Source::Files { events, labels },
                _ => {
                    let g = gen.config();
                    g.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
                    eval::Source::Generated { gen: g, sweep }
                }
            };
            let (report, failures) = eval::run(&cfg, &src)?;
            print!("{report}");
            std::io::stdout().flush()?;
            std::process::exit(eval::exit_code(&failures));
        }
    }
}
