//! `sellerguard replay FILE|-`: the same engine over JSON lines. Alerts go to stdout as JSON lines;
//! a summary (events by type, rejected by reason with the total, alerts by rule, throughput) goes
//! to stderr. Every input line is accounted for: accepted + rejected = lines.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use crate::alert::Alert;
use crate::config::Config;
use crate::driver::{for_each_line, Driver};
use crate::engine::Step;
use crate::rules::standing::Standing;

#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    pub lines: u64,
    pub accepted: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    pub alerts: BTreeMap<String, u64>,
    pub late: u64,
    pub standing_updates: u64,
    pub sellers: usize,
    pub sellers_evicted: u64,
    pub elapsed: Duration,
}

impl ReplaySummary {
    pub fn accepted_total(&self) -> u64 {
        self.accepted.values().sum()
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        s += &format!(
            "replay: {} lines in {:.2}s ({:.0} lines/s); {} sellers tracked\n",
            self.lines,
            secs,
            self.lines as f64 / secs,
            self.sellers
        );
        s += &format!(
            "peak memory: {} MiB; sellers evicted at the cap: {}\n",
            peak_rss_mib().unwrap_or(0),
            self.sellers_evicted
        );
        s += &format!("events accepted: {} (late: {})\n", self.accepted_total(), self.late);
        for (t, n) in &self.accepted {
            s += &format!("  {t:<18} {n}\n");
        }
        s += &format!("rejected: {}\n", self.rejected_total());
        for (r, n) in &self.rejected {
            s += &format!("  {r:<18} {n}\n");
        }
        s += &format!("standing updates: {}\n", self.standing_updates);
        s += &format!("alerts: {}\n", self.alerts.values().sum::<u64>());
        for (r, n) in &self.alerts {
            s += &format!("  {r:<40} {n}\n");
        }
        s
    }
}

/// What a replay produces, in output order.
pub enum Output<'a> {
    Alert(&'a Alert),
    Standing(&'a Standing),
}

/// Replays `input`, calling `on_output` for each alert and standing record in output order.
pub fn replay(cfg: &Config, input: impl BufRead, mut on_output: impl FnMut(Output)) -> anyhow::Result<ReplaySummary> {
    let started = Instant::now();
    let mut driver = Driver::new(cfg)?;
    let mut summary = ReplaySummary::default();
    let mut emit = |step: &mut Step<u64>| {
        for a in &step.alerts {
            *summary.alerts.entry(a.rule.clone()).or_default() += 1;
            on_output(Output::Alert(a));
        }
        for s in &step.standing {
            summary.standing_updates += 1;
            on_output(Output::Standing(s));
        }
    };
    for_each_line(input, |line| driver.line(line, &mut emit))?;
    driver.finish(&mut emit);
    let (intake, engine) = (driver.intake(), driver.engine());
    summary.lines = driver.lines();
    summary.accepted = intake.accepted.iter().map(|(t, n)| (t.as_str().to_string(), *n)).collect();
    summary.rejected = intake.rejected.iter().map(|(r, n)| (r.as_str().to_string(), *n)).collect();
    summary.late = engine.stats.late;
    summary.sellers = engine.sellers_tracked();
    summary.sellers_evicted = engine.detector().stats.sellers_capped;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The CLI form: alerts as JSON lines to `out`, standing records (if wanted) to `standing`.
pub fn replay_to(
    cfg: &Config,
    input: impl BufRead,
    out: &mut impl Write,
    mut standing: Option<&mut dyn Write>,
) -> anyhow::Result<ReplaySummary> {
    let mut err: Option<std::io::Error> = None;
    let summary = replay(cfg, input, |o| {
        if err.is_some() {
            return;
        }
        let res = match (o, standing.as_deref_mut()) {
            (Output::Alert(a), _) => write_line(&mut *out, a),
            (Output::Standing(s), Some(w)) => write_line(w, s),
            (Output::Standing(_), None) => Ok(()),
        };
        err = res.err();
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    out.flush()?;
    if let Some(w) = standing {
        w.flush()?;
    }
    Ok(summary)
}

fn write_line(w: &mut (impl Write + ?Sized), v: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, v)?;
    w.write_all(b"\n")
}

/// Peak resident memory of this process (Linux `VmHWM`), for the summary.
pub fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
