//! sellerguard: a stream processor that flags marketplace seller-rule violations in real time.
//!
//! Layout, along the data flow:
//!
//! | module | role |
//! |---|---|
//! | [`source`] | Kafka: a group member (ownership, commits) and a reader of every partition; recovery plan; offset tracking |
//! | [`decode`] | bytes → validated [`decode::Event`] (event contract v1), or a counted reject reason |
//! | [`window`] | event-time machinery shared by all rules: ordering/watermark, sliding counts, quantile sketches, timers |
//! | [`rules`] | per-seller state and one file per rule family; emits [`alert::Alert`]s |
//! | [`engine`] | sequencer + rules: the synchronous core driven by `run` and by the [`driver`] |
//! | [`driver`] | input lines in, steps out: the one loop `replay`, `eval`, `backtest`, benches and tests drive the engine with |
//! | [`sink`] | alerts and dead letters to Kafka |
//! | [`alert`] | alert contract v1, deterministic ids |
//! | [`check`] | `check-config`: builds the Kafka clients from a config (TLS/SASL included) without sending |
//! | [`intake`] | decode + reject counting and rate-limited logging, shared by `run` and `replay` |
//! | [`config`], [`telemetry`], [`shutdown`] | beside the flow: settings, Prometheus metrics and logs, signals |
//! | [`service`], [`replay`], [`demo`], [`gen`], [`eval`], [`backtest`], [`bench`] | the commands: Kafka service, file replay, zero-setup demo, traffic generator, scoring against labels, two configs side by side over history, end-to-end benchmark |
//! | [`schema`] | JSON Schemas of the event, alert and standing contracts, generated from the types (`deploy/schemas/`) |
//! | [`realdata`] | public real datasets → event contract v1 (tests and calibration) |

pub mod alert;
pub mod backtest;
pub mod bench;
pub mod check;
pub mod config;
pub mod decode;
pub mod demo;
pub mod driver;
pub mod engine;
pub mod eval;
pub mod gen;
pub mod intake;
pub mod realdata;
pub mod replay;
pub mod rules;
pub mod schema;
pub mod service;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod telemetry;
pub mod window;
