//! `sellerguard eval`: the engine against labelled traffic. Runs [`Engine`] (fed by [`decode`], as
//! `replay` does) over generated traffic or an events file with its labels, and scores each rule
//! family at seller level: recall over the sellers labelled with it, the share of honest sellers it
//! flags, precision, and the median detection delay in event time (first alert of the family minus
//! the label's `since`, the seller's first detectable event) beside the least delay the rule allows.
//! A family below the `[eval]` targets makes the run fail (exit code 1).

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

use crate::alert::Alert;
use crate::config::{Config, EvalConfig};
use crate::decode::Millis;
use crate::driver::Driver;
use crate::engine::Step;
use crate::gen::{generate, GenConfig, Label};

pub use crate::rules::FAMILIES;

/// Intensities of `--sweep`, strongest first.
pub const SWEEP: [f64; 5] = [1.0, 0.8, 0.6, 0.4, 0.2];

/// What scoring can fail on: the labels (shared by `eval` and `backtest`, hence a typed error).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    // The cause is in the message (fields not named `source`, so it is not repeated as a cause).
    #[error("reading labels {path}: {error}")]
    ReadLabels { path: String, error: std::io::Error },
    #[error("labels {path} line {line}: {error}")]
    ParseLabel { path: String, line: usize, error: serde_json::Error },
    #[error("bad timestamp {0} (RFC 3339 expected)")]
    Timestamp(String),
    #[error("labels name unknown family {0}")]
    UnknownFamily(String),
}

/// An alert reduced to what scoring needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub seller_id: String,
    pub family: String,
    pub rule: String,
    pub event_time: Millis,
}

impl Flag {
    pub fn of(a: &Alert) -> Result<Flag, ScoreError> {
        let (seller_id, family, rule) = (a.seller_id.clone(), a.family().into(), a.rule.clone());
        Ok(Flag { seller_id, family, rule, event_time: parse_ts(&a.event_time)? })
    }
}

/// What one engine run produced, with its ground truth.
#[derive(Debug, Default)]
pub struct Outcome {
    pub flags: Vec<Flag>,
    pub labels: Vec<Label>,
    /// Every seller that appears in the accepted events.
    pub sellers: BTreeSet<String>,
    pub events: u64,
    pub rejected: u64,
}

/// One family's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub family: &'static str,
    /// A scenario row (labels naming the rule their fraud is meant to trip): scored on that rule's
    /// alerts alone. None for a family's row, scored on any of its alerts.
    pub scenario: Option<String>,
    pub labelled: usize,
    /// Labelled sellers the family flagged.
    pub caught: usize,
    pub honest: usize,
    pub honest_flagged: usize,
    pub flagged: usize,
    /// Flagged sellers labelled with this family.
    pub flagged_labelled: usize,
    pub median_delay_ms: Option<i64>,
}

impl Score {
    /// None when no seller carries the label: recall is not measured.
    pub fn recall(&self) -> Option<f64> {
        (self.labelled > 0).then(|| self.caught as f64 / self.labelled as f64)
    }

    /// The row's name: the family, or the scenario's rule.
    pub fn name(&self) -> &str {
        self.scenario.as_deref().unwrap_or(self.family)
    }

    pub fn honest_share(&self) -> f64 {
        if self.honest == 0 {
            0.0
        } else {
            self.honest_flagged as f64 / self.honest as f64
        }
    }

    /// None when the family flagged nobody.
    pub fn precision(&self) -> Option<f64> {
        (self.flagged > 0).then(|| self.flagged_labelled as f64 / self.flagged as f64)
    }

    /// The targets this family misses, as sentences.
    pub fn failures(&self, t: &EvalConfig) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(r) = self.recall().filter(|r| *r < t.min_recall) {
            out.push(format!("{}: recall {r:.3} < {}", self.name(), t.min_recall));
        }
        if self.honest_share() > t.max_honest_flagged {
            let (n, of, share) = (self.honest_flagged, self.honest, self.honest_share());
            out.push(format!(
                "{}: {n} of {of} honest sellers flagged ({share:.3} > {})",
                self.name(),
                t.max_honest_flagged
            ));
        }
        out
    }
}

fn parse_ts(s: &str) -> Result<Millis, ScoreError> {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()).map_err(|_| ScoreError::Timestamp(s.into()))
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2 })
}

/// Scores every family of [`FAMILIES`] (and any other family the labels or alerts name).
pub fn score(o: &Outcome) -> Result<Vec<Score>, ScoreError> {
    let mut label_of: BTreeMap<&str, (&str, Millis)> = BTreeMap::new();
    for l in &o.labels {
        label_of.insert(&l.seller_id, (&l.family, parse_ts(&l.since)?));
    }
    // First alert time per (family, seller).
    let mut first: BTreeMap<&str, BTreeMap<&str, Millis>> = BTreeMap::new();
    for f in &o.flags {
        let t = first.entry(&f.family).or_default().entry(&f.seller_id).or_insert(f.event_time);
        *t = (*t).min(f.event_time);
    }
    let honest = o.sellers.iter().filter(|s| !label_of.contains_key(s.as_str())).count();
    let mut families: Vec<&str> = FAMILIES.to_vec();
    for extra in o.labels.iter().map(|l| l.family.as_str()).chain(o.flags.iter().map(|f| f.family.as_str())) {
        if !families.contains(&extra) {
            families.push(extra);
        }
    }
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for family in families {
        let flagged = first.get(family).unwrap_or(&empty);
        let mut s = Score {
            family: FAMILIES.iter().find(|f| **f == family).copied().unwrap_or("other"),
            scenario: None,
            labelled: 0,
            caught: 0,
            honest,
            honest_flagged: 0,
            flagged: flagged.len(),
            flagged_labelled: 0,
            median_delay_ms: None,
        };
        let mut delays = Vec::new();
        for (seller, (fam, since)) in &label_of {
            if *fam != family {
                continue;
            }
            s.labelled += 1;
            if let Some(t) = flagged.get(seller) {
                s.caught += 1;
                delays.push(t - since);
            }
        }
        for seller in flagged.keys() {
            match label_of.get(seller) {
                None => s.honest_flagged += 1,
                Some((fam, _)) if *fam == family => s.flagged_labelled += 1,
                Some(_) => {}
            }
        }
        s.median_delay_ms = median(delays);
        if s.family == "other" {
            // A family this build does not know: report it, never silently drop it.
            if s.labelled > 0 {
                return Err(ScoreError::UnknownFamily(family.into()));
            }
            continue;
        }
        out.push(s);
    }
    out.extend(score_scenarios(o, &label_of, honest)?);
    Ok(out)
}

/// One row per scenario the labels name (e.g. `rating_manipulation.drip`): recall counts only
/// alerts of that rule, so one signal of a family is measured apart from the others.
fn score_scenarios(
    o: &Outcome,
    label_of: &BTreeMap<&str, (&str, Millis)>,
    honest: usize,
) -> Result<Vec<Score>, ScoreError> {
    let scenarios: BTreeSet<&str> = o.labels.iter().filter_map(|l| l.scenario.as_deref()).collect();
    let mut out = Vec::new();
    for rule in scenarios {
        let mut first: BTreeMap<&str, Millis> = BTreeMap::new();
        for f in o.flags.iter().filter(|f| f.rule == rule) {
            let t = first.entry(&f.seller_id).or_insert(f.event_time);
            *t = (*t).min(f.event_time);
        }
        let family = rule.split('.').next().unwrap_or(rule);
        let family = FAMILIES.iter().find(|f| **f == family).copied().ok_or(ScoreError::UnknownFamily(rule.into()))?;
        let labelled: Vec<&Label> = o.labels.iter().filter(|l| l.scenario.as_deref() == Some(rule)).collect();
        let mut delays = Vec::new();
        for l in &labelled {
            if let Some(t) = first.get(l.seller_id.as_str()) {
                delays.push(t - parse_ts(&l.since)?);
            }
        }
        let in_scenario = |s: &str| labelled.iter().any(|l| l.seller_id == s);
        out.push(Score {
            family,
            scenario: Some(rule.into()),
            labelled: labelled.len(),
            caught: delays.len(),
            honest,
            honest_flagged: first.keys().filter(|s| !label_of.contains_key(*s)).count(),
            flagged: first.len(),
            flagged_labelled: first.keys().filter(|s| in_scenario(s)).count(),
            median_delay_ms: median(delays),
        });
    }
    Ok(out)
}

/// The least detection delay each rule allows after the first detectable event (from its timers);
/// reaching a rule's count adds the time between the seller's bad events.
pub fn least_delay(family: &str, cfg: &Config) -> String {
    match family {
        "fake_shipment" => format!("0 / {}h no_scan", cfg.fake_shipment.scan_deadline_hours),
        "late_dispatch" => "promised h".into(),
        "slow_response" => format!("{}h", cfg.slow_response.reply_within_hours),
        _ => "0".into(),
    }
}

/// Runs the engine over JSON lines handed to `feed`, collecting the alerts as [`Flag`]s.
fn run_engine(cfg: &Config, feed: impl FnOnce(&mut dyn FnMut(&[u8])) -> anyhow::Result<()>) -> anyhow::Result<Outcome> {
    let mut driver = Driver::new(cfg)?.track_sellers();
    let (mut flags, mut bad_alert) = (Vec::new(), None);
    let mut take = |step: &mut Step<u64>| {
        for a in &step.alerts {
            match Flag::of(a) {
                Ok(f) => flags.push(f),
                Err(e) => bad_alert = Some(e),
            }
        }
    };
    feed(&mut |line: &[u8]| driver.line(line, &mut take))?;
    driver.finish(&mut take);
    if let Some(e) = bad_alert {
        return Err(anyhow::Error::from(e).context("an alert's event_time"));
    }
    let intake = driver.intake();
    let (events, rejected) = (intake.accepted_total(), intake.rejected_total());
    Ok(Outcome { flags, labels: Vec::new(), sellers: driver.take_sellers(), events, rejected })
}

/// Generates traffic with `gen` and runs the engine over it.
pub fn run_generated(cfg: &Config, gen: &GenConfig) -> anyhow::Result<Outcome> {
    let mut labels = Vec::new();
    let mut out = run_engine(cfg, |push| {
        let summary = generate(gen, &mut |_, line| push(line.as_bytes())).map_err(|e| anyhow::anyhow!("{e}"))?;
        labels = summary.labels;
        Ok(())
    })?;
    out.labels = labels;
    Ok(out)
}

/// Runs the engine over an events file (JSON lines) scored against a labels file (JSON lines of
/// [`Label`]).
pub fn run_files(cfg: &Config, events: &Path, labels: &Path) -> anyhow::Result<Outcome> {
    use anyhow::Context;
    let labels = read_labels(labels)?;
    let f = std::fs::File::open(events).with_context(|| format!("opening {}", events.display()))?;
    let mut out = run_engine(cfg, |push| {
        for line in std::io::BufReader::with_capacity(1 << 20, f).split(b'\n') {
            let mut line = line?;
            while line.last() == Some(&b'\r') {
                line.pop();
            }
            push(&line);
        }
        Ok(())
    })?;
    out.labels = labels;
    Ok(out)
}

/// A labels file (JSON lines of [`Label`], as `gen --labels` writes it; blank lines skipped).
pub fn read_labels(path: &Path) -> Result<Vec<Label>, ScoreError> {
    let shown = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ScoreError::ReadLabels { path: shown(), error })?;
    (text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()))
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|error| ScoreError::ParseLabel { path: shown(), line: i + 1, error })
        })
        .collect()
}

/// A recall or precision as the tables print it (`-` when not measured).
pub fn ratio(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.3}"))
}

fn hours(ms: Option<i64>) -> String {
    ms.map_or("-".into(), |v| format!("{:.1}h", v as f64 / 3_600_000.0))
}

/// The per-family table of one run.
pub fn render(o: &Outcome, scores: &[Score], cfg: &Config) -> String {
    let mut s = format!(
        "eval: {} events ({} rejected), {} sellers, {} labelled fraudulent, {} alerts\n\n",
        o.events,
        o.rejected,
        o.sellers.len(),
        o.labels.len(),
        o.flags.len()
    );
    s += "family                     labelled  caught  recall  honest flagged   precision  median delay  least delay\n";
    for x in scores {
        let honest = format!("{}/{} ({:.3})", x.honest_flagged, x.honest, x.honest_share());
        s += &format!(
            "{:<26} {:>8}  {:>6}  {:>6}  {:>15}  {:>9}  {:>12}  {}\n",
            x.name(),
            x.labelled,
            x.caught,
            ratio(x.recall()),
            honest,
            ratio(x.precision()),
            hours(x.median_delay_ms),
            least_delay(x.family, cfg)
        );
    }
    s += "\nDelays are in event time from the seller's first detectable event to the family's first alert.\n";
    s += "late_dispatch waits for each order's promised dispatch hours (48-96 h in generated traffic,\n";
    s += &format!("{} h when an order names none).\n", cfg.input.default_promised_dispatch_hours);
    s
}

/// The sweep table: one row per family and intensity.
pub fn render_sweep(rows: &[(f64, Vec<Score>)]) -> String {
    let mut s = "family                     intensity  recall  honest flagged  precision  median delay\n".to_string();
    let mut names: Vec<&str> = FAMILIES.to_vec();
    let scenarios = rows.iter().flat_map(|(_, scores)| scores.iter().filter_map(|x| x.scenario.as_deref()));
    for sc in scenarios.collect::<BTreeSet<_>>() {
        names.push(sc);
    }
    for name in names {
        for (intensity, scores) in rows {
            let Some(x) = scores.iter().find(|x| x.name() == name) else { continue };
            s += &format!(
                "{:<26} {:>9.1}  {:>6}  {:>14.3}  {:>9}  {:>12}\n",
                name,
                intensity,
                ratio(x.recall()),
                x.honest_share(),
                ratio(x.precision()),
                hours(x.median_delay_ms)
            );
        }
    }
    s
}

/// Every target the scores miss; empty when the run passes.
pub fn failures(scores: &[Score], t: &EvalConfig) -> Vec<String> {
    scores.iter().flat_map(|x| x.failures(t)).collect()
}

/// The process exit code for a run with these failures.
pub fn exit_code(failures: &[String]) -> i32 {
    i32::from(!failures.is_empty())
}

/// What `sellerguard eval` was asked to do.
pub enum Source {
    Generated { gen: GenConfig, sweep: bool },
    Files { events: std::path::PathBuf, labels: std::path::PathBuf },
}

/// Runs the command: returns the report and the targets missed (by the default-intensity run
/// when sweeping: lower intensities are meant to fall below them).
pub fn run(cfg: &Config, src: &Source) -> anyhow::Result<(String, Vec<String>)> {
    let (outcome, mut report) = match src {
        Source::Files { events, labels } => (run_files(cfg, events, labels)?, String::new()),
        Source::Generated { gen, sweep: false } => {
            let head = format!("generated: seed {}, {} sellers, intensity {}\n", gen.seed, gen.sellers, gen.intensity);
            (run_generated(cfg, gen)?, head)
        }
        Source::Generated { gen, sweep: true } => {
            let mut rows = Vec::new();
            for intensity in SWEEP {
                let o = run_generated(cfg, &GenConfig { intensity, ..gen.clone() })?;
                rows.push((intensity, score(&o)?));
            }
            let fails = failures(&rows[0].1, &cfg.eval);
            let mut report = format!("sweep: seed {}, {} sellers\n\n", gen.seed, gen.sellers);
            report += &render_sweep(&rows);
            report += &verdict(&fails, &cfg.eval, " at intensity 1.0");
            return Ok((report, fails));
        }
    };
    let scores = score(&outcome)?;
    let fails = failures(&scores, &cfg.eval);
    report += &render(&outcome, &scores, cfg);
    report += &verdict(&fails, &cfg.eval, "");
    Ok((report, fails))
}

fn verdict(fails: &[String], t: &EvalConfig, at: &str) -> String {
    let targets = format!("recall >= {}, honest flagged <= {}", t.min_recall, t.max_honest_flagged);
    if fails.is_empty() {
        format!("\nPASS{at}: every family meets the targets ({targets}).\n")
    } else {
        format!("\nFAIL{at} (targets: {targets}):\n  {}\n", fails.join("\n  "))
    }
}

#[cfg(test)]
mod tests;
