//! `sellerguard backtest --config new.toml [--baseline old.toml] FILE|- [--labels L] [--json]`: the
//! same history through two engines side by side, a baseline config and a candidate, to see what a
//! config change would do before it ships. The input is read once and every line is fed to both
//! engines, each with its own intake (the two configs may decode differently: `[input]` limits,
//! currency rates). Per rule (`alert.rule`): alerts under each config and how many only one of them
//! raises, matched by `alert_id` (deterministic: the same rule, seller and completing event give the
//! same id under any config). With labels, precision and recall per family, scored by
//! [`eval::score`] exactly as `sellerguard eval` scores them. Shadow-mode alerts count as alerts of
//! their rule (trying a rule in shadow is what a backtest is for); a column says how many were.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::config::{is_secret, Config, ConfigError};
use crate::driver::{for_each_line, Driver};
use crate::engine::Step;
use crate::eval::{self, Flag, Outcome, ScoreError};
use crate::gen::Label;
use crate::telemetry::RULES;

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// `role` is `baseline` or `candidate`; the config error names the key.
    #[error("{role} config {path}: {error}")]
    Config { role: &'static str, path: String, error: ConfigError },
    #[error("reading events {path}: {error}")]
    Input { path: String, error: std::io::Error },
    #[error(transparent)]
    Score(#[from] ScoreError),
}

/// What the command was given.
pub struct Options<'a> {
    /// `None`: the built-in default config (the CLI resolves `SELLERGUARD_CONFIG` into this first).
    pub baseline: Option<&'a Path>,
    pub candidate: &'a Path,
    /// An events file (JSON lines), or `-` for stdin.
    pub input: &'a str,
    pub labels: Option<&'a Path>,
}

/// A config and where it came from, for the report.
pub struct Named {
    pub config: Config,
    pub source: String,
}

impl Named {
    pub fn load(role: &'static str, path: Option<&Path>) -> Result<Named, BacktestError> {
        let Some(path) = path else {
            return Ok(Named { config: Config::default(), source: "built-in default (config/default.toml)".into() });
        };
        let source = path.display().to_string();
        let config = Config::load(path).map_err(|error| BacktestError::Config { role, path: source.clone(), error })?;
        Ok(Named { config, source })
    }
}

/// The whole result: rendered as tables by [`Report::render`], or serialized as one JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub input: String,
    pub lines: u64,
    pub baseline: SideSummary,
    pub candidate: SideSummary,
    /// Effective settings that differ (secrets masked), in key order.
    pub config_diff: Vec<Difference>,
    /// Every known rule (those neither config alerted on included), then any other rule seen.
    pub rules: Vec<RuleRow>,
    pub total: RuleRow,
    /// The labels file, when given.
    pub labels: Option<String>,
    /// Per family, when labels are given.
    pub families: Vec<FamilyRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideSummary {
    pub config: String,
    /// [`Config::version`]: what the alerts of this config carry as `config_version`.
    pub config_version: String,
    pub accepted: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Accepted after the watermark had passed them (`input.allowed_lateness_ms`).
    pub late: u64,
    pub alerts: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleRow {
    pub rule: String,
    pub baseline: u64,
    pub candidate: u64,
    pub only_baseline: u64,
    pub only_candidate: u64,
    pub both: u64,
    /// Of `baseline` and `candidate`, the alerts raised in shadow mode (`alerts.shadow`).
    pub baseline_shadow: u64,
    pub candidate_shadow: u64,
}

/// One effective setting that differs; `None` where a config does not have the key (map entries).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub key: String,
    pub baseline: Option<Value>,
    pub candidate: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FamilyRow {
    pub family: String,
    pub labelled: usize,
    pub baseline: FamilyScore,
    pub candidate: FamilyScore,
    /// Candidate minus baseline; `None` where either is not measured.
    pub recall_delta: Option<f64>,
    pub precision_delta: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FamilyScore {
    /// Sellers the family flagged.
    pub flagged: usize,
    /// Labelled sellers it flagged.
    pub caught: usize,
    pub honest_flagged: usize,
    pub recall: Option<f64>,
    pub precision: Option<f64>,
}

impl From<&eval::Score> for FamilyScore {
    fn from(s: &eval::Score) -> Self {
        FamilyScore {
            flagged: s.flagged,
            caught: s.caught,
            honest_flagged: s.honest_flagged,
            recall: s.recall(),
            precision: s.precision(),
        }
    }
}

/// Runs the command: loads both configs and the labels (so a mistake in them is reported before
/// any replay), then replays the input once through both engines.
pub fn run(opts: &Options) -> Result<Report, BacktestError> {
    let baseline = Named::load("baseline", opts.baseline)?;
    let candidate = Named::load("candidate", Some(opts.candidate))?;
    let labels = opts.labels.map(|p| Ok::<_, ScoreError>((p.display().to_string(), eval::read_labels(p)?)));
    let labels = labels.transpose()?;
    if opts.input == "-" {
        compare(&baseline, &candidate, "-", std::io::stdin().lock(), labels)
    } else {
        let f = std::fs::File::open(opts.input)
            .map_err(|error| BacktestError::Input { path: opts.input.to_string(), error })?;
        compare(&baseline, &candidate, opts.input, std::io::BufReader::with_capacity(1 << 20, f), labels)
    }
}

/// The engine under one config, fed line by line.
struct Side {
    driver: Driver,
    /// Alert ids per rule, in emission order.
    ids: BTreeMap<String, Vec<String>>,
    /// Shadow-mode alerts per rule (also in `ids`).
    shadow: BTreeMap<String, u64>,
    flags: Vec<Flag>,
    bad_alert: Option<ScoreError>,
}

impl Side {
    fn new(cfg: &Config, role: &'static str) -> Result<Side, ConfigError> {
        Ok(Side {
            driver: Driver::new(cfg)?.role(role).track_sellers(),
            ids: BTreeMap::new(),
            shadow: BTreeMap::new(),
            flags: Vec::new(),
            bad_alert: None,
        })
    }

    /// One input line, as `replay` takes it.
    fn push(&mut self, line: &[u8]) {
        let (ids, shadow, flags, bad) = (&mut self.ids, &mut self.shadow, &mut self.flags, &mut self.bad_alert);
        self.driver.line(line, &mut |step| collect(step, ids, shadow, flags, bad));
    }

    fn flush(&mut self) {
        let (ids, shadow, flags, bad) = (&mut self.ids, &mut self.shadow, &mut self.flags, &mut self.bad_alert);
        self.driver.finish(&mut |step| collect(step, ids, shadow, flags, bad));
    }

    fn summary(&self, config: &str) -> SideSummary {
        let (engine, intake) = (self.driver.engine(), self.driver.intake());
        SideSummary {
            config: config.into(),
            config_version: engine.config_version().into(),
            accepted: intake.accepted_total(),
            rejected: intake.rejected_total(),
            rejected_by_reason: intake.rejected.iter().map(|(r, n)| (r.as_str().into(), *n)).collect(),
            late: engine.stats.late,
            alerts: self.ids.values().map(|v| v.len() as u64).sum(),
        }
    }

    /// The run as `eval` sees one, for [`eval::score`].
    fn outcome(&mut self, labels: &[Label]) -> Outcome {
        Outcome {
            flags: std::mem::take(&mut self.flags),
            labels: labels.to_vec(),
            sellers: self.driver.take_sellers(),
            events: self.driver.intake().accepted_total(),
            rejected: self.driver.intake().rejected_total(),
        }
    }
}

/// A step's alerts: their ids by rule, shadow counts, and flags for scoring.
fn collect(
    step: &mut Step<u64>,
    ids: &mut BTreeMap<String, Vec<String>>,
    shadow: &mut BTreeMap<String, u64>,
    flags: &mut Vec<Flag>,
    bad_alert: &mut Option<ScoreError>,
) {
    for a in step.alerts.drain(..) {
        match Flag::of(&a) {
            Ok(f) => flags.push(f),
            Err(e) => *bad_alert = Some(e),
        }
        if a.shadow {
            *shadow.entry(a.rule.clone()).or_default() += 1;
        }
        ids.entry(a.rule).or_default().push(a.alert_id);
    }
}

/// Replays `input` once under both configs and compares (the library form of the command).
/// `input_name` names it in the report and errors; `labels`: the labels file's name and contents.
pub fn compare(
    baseline: &Named,
    candidate: &Named,
    input_name: &str,
    mut input: impl BufRead,
    labels: Option<(String, Vec<Label>)>,
) -> Result<Report, BacktestError> {
    let side = |role: &'static str, n: &Named| {
        Side::new(&n.config, role).map_err(|error| BacktestError::Config { role, path: n.source.clone(), error })
    };
    let (mut base, mut cand) = (side("baseline", baseline)?, side("candidate", candidate)?);
    for_each_line(&mut input, |line| {
        base.push(line);
        cand.push(line);
    })
    .map_err(|error| BacktestError::Input { path: input_name.into(), error })?;
    let lines = base.driver.lines();
    base.flush();
    cand.flush();
    for s in [&mut base, &mut cand] {
        if let Some(e) = s.bad_alert.take() {
            return Err(e.into());
        }
    }

    let mut report = Report {
        input: input_name.into(),
        lines,
        baseline: base.summary(&baseline.source),
        candidate: cand.summary(&candidate.source),
        config_diff: config_diff(&baseline.config, &candidate.config),
        rules: rule_rows((&base.ids, &base.shadow), (&cand.ids, &cand.shadow)),
        total: RuleRow::default(),
        labels: None,
        families: Vec::new(),
    };
    report.total = total(&report.rules);
    if let Some((name, labels)) = labels {
        let scores_b = eval::score(&base.outcome(&labels))?;
        let scores_c = eval::score(&cand.outcome(&labels))?;
        report.families = family_rows(&scores_b, &scores_c);
        report.labels = Some(name);
    }
    Ok(report)
}

/// Alert ids per rule, and shadow alerts per rule, of one side.
type Alerts<'a> = (&'a BTreeMap<String, Vec<String>>, &'a BTreeMap<String, u64>);

fn rule_rows((base, base_shadow): Alerts, (cand, cand_shadow): Alerts) -> Vec<RuleRow> {
    let mut rules: Vec<String> = RULES.iter().map(|r| r.to_string()).collect();
    let seen: BTreeSet<&String> = base.keys().chain(cand.keys()).collect();
    rules.extend(seen.into_iter().filter(|r| !RULES.contains(&r.as_str())).cloned());
    let empty = Vec::new();
    rules
        .into_iter()
        .map(|rule| {
            let (b, c) = (base.get(&rule).unwrap_or(&empty), cand.get(&rule).unwrap_or(&empty));
            let (bs, cs): (BTreeSet<&String>, BTreeSet<&String>) = (b.iter().collect(), c.iter().collect());
            RuleRow {
                baseline: b.len() as u64,
                candidate: c.len() as u64,
                only_baseline: bs.difference(&cs).count() as u64,
                only_candidate: cs.difference(&bs).count() as u64,
                both: bs.intersection(&cs).count() as u64,
                baseline_shadow: base_shadow.get(&rule).copied().unwrap_or(0),
                candidate_shadow: cand_shadow.get(&rule).copied().unwrap_or(0),
                rule,
            }
        })
        .collect()
}

fn total(rows: &[RuleRow]) -> RuleRow {
    rows.iter().fold(RuleRow { rule: "total".into(), ..RuleRow::default() }, |mut t, r| {
        t.baseline += r.baseline;
        t.candidate += r.candidate;
        t.only_baseline += r.only_baseline;
        t.only_candidate += r.only_candidate;
        t.both += r.both;
        t.baseline_shadow += r.baseline_shadow;
        t.candidate_shadow += r.candidate_shadow;
        t
    })
}

fn family_rows(base: &[eval::Score], cand: &[eval::Score]) -> Vec<FamilyRow> {
    let delta = |b: Option<f64>, c: Option<f64>| Some(c? - b?);
    (base.iter())
        .filter_map(|b| {
            // By row name: a scenario row (`rating_manipulation.drip`) shares its family's name.
            let c = cand.iter().find(|c| c.name() == b.name())?;
            Some(FamilyRow {
                family: b.name().into(),
                labelled: b.labelled,
                baseline: b.into(),
                candidate: c.into(),
                recall_delta: delta(b.recall(), c.recall()),
                precision_delta: delta(b.precision(), c.precision()),
            })
        })
        .collect()
}

/// The effective settings that differ, as flat keys (`price_dumping.min_drop`), by walking both
/// configs serialized to JSON: whatever `Config` gains is compared without a list to maintain.
pub fn config_diff(baseline: &Config, candidate: &Config) -> Vec<Difference> {
    let to_value = |c: &Config| serde_json::to_value(c).expect("a config always serializes");
    let mut out = Vec::new();
    walk("", Some(&to_value(baseline)), Some(&to_value(candidate)), &mut out);
    out
}

fn walk(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Difference>) {
    let object = |v: Option<&Value>| match v {
        Some(Value::Object(m)) => Some(m.clone()),
        None => Some(Default::default()),
        Some(_) => None,
    };
    if a == b {
        return;
    }
    // Tables on both sides (or a table on one and nothing on the other): compare key by key.
    if a.is_some_and(Value::is_object) || b.is_some_and(Value::is_object) {
        if let (Some(x), Some(y)) = (object(a), object(b)) {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                walk(&join(path, k), x.get(k), y.get(k), out);
            }
            return;
        }
    }
    let secret = path.rsplit('.').next().is_some_and(|last| is_secret(last.trim_matches('"')));
    let shown = |v: Option<&Value>| v.map(|v| if secret { Value::from("***") } else { v.clone() });
    out.push(Difference { key: path.into(), baseline: shown(a), candidate: shown(b) });
}

/// TOML-style key paths: a key that is not bare (`"sasl.password"`, rule names) is quoted.
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    let key = if bare { key.to_string() } else { format!("\"{key}\"") };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

fn shown(v: &Option<Value>) -> String {
    v.as_ref().map_or("(absent)".into(), Value::to_string)
}

fn signed(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:+.3}"))
}

impl Report {
    /// The tables `sellerguard backtest` prints.
    pub fn render(&self) -> String {
        let (b, c) = (&self.baseline, &self.candidate);
        let mut s = format!(
            "backtest: {} ({} lines)\n  baseline:  {} (version {})\n  candidate: {} (version {})\n\n",
            self.input, self.lines, b.config, b.config_version, c.config, c.config_version
        );
        if self.config_diff.is_empty() {
            s += "config differences (baseline → candidate): none\n\n";
        } else {
            s += &format!("config differences (baseline → candidate): {}\n", self.config_diff.len());
            for d in &self.config_diff {
                s += &format!("  {}: {} → {}\n", d.key, shown(&d.baseline), shown(&d.candidate));
            }
            s += "\n";
        }
        s += &format!("{:<28} {:>9} {:>9}\n", "events", "baseline", "candidate");
        s += &format!("{:<28} {:>9} {:>9}\n", "accepted", b.accepted, c.accepted);
        s += &format!("{:<28} {:>9} {:>9}\n", "rejected", b.rejected, c.rejected);
        let reasons: BTreeSet<&String> = b.rejected_by_reason.keys().chain(c.rejected_by_reason.keys()).collect();
        for r in reasons {
            let n = |m: &BTreeMap<String, u64>| m.get(r).copied().unwrap_or(0);
            s += &format!("  {:<26} {:>9} {:>9}\n", r, n(&b.rejected_by_reason), n(&c.rejected_by_reason));
        }
        s += &format!("{:<28} {:>9} {:>9}\n\n", "late", b.late, c.late);

        s += &format!(
            "{:<40} {:>9} {:>9} {:>13} {:>14} {:>7} {:>10}\n",
            "rule", "baseline", "candidate", "only-baseline", "only-candidate", "both", "shadow b/c"
        );
        for r in self.rules.iter().chain([&self.total]) {
            let shadow = match (r.baseline_shadow, r.candidate_shadow) {
                (0, 0) => "-".to_string(),
                (b, c) => format!("{b}/{c}"),
            };
            s += &format!(
                "{:<40} {:>9} {:>9} {:>13} {:>14} {:>7} {:>10}\n",
                r.rule, r.baseline, r.candidate, r.only_baseline, r.only_candidate, r.both, shadow
            );
        }
        s += "\nAlerts are matched by alert_id (the same rule, seller and completing event under both configs);\n";
        s += "shadow-mode alerts (alerts.shadow) count as their rule's, `shadow b/c` says how many were.\n";

        if let Some(labels) = &self.labels {
            s += &format!("\nagainst {labels} (seller level, as `sellerguard eval` scores):\n");
            s += &format!(
                "{:<26} {:>8} {:>12} {:>12} {:>8} {:>14} {:>14} {:>8} {:>12} {:>12}\n",
                "family",
                "labelled",
                "recall-base",
                "recall-cand",
                "Δrecall",
                "precision-base",
                "precision-cand",
                "Δprec",
                "honest-base",
                "honest-cand"
            );
            for f in &self.families {
                s += &format!(
                    "{:<26} {:>8} {:>12} {:>12} {:>8} {:>14} {:>14} {:>8} {:>12} {:>12}\n",
                    f.family,
                    f.labelled,
                    eval::ratio(f.baseline.recall),
                    eval::ratio(f.candidate.recall),
                    signed(f.recall_delta),
                    eval::ratio(f.baseline.precision),
                    eval::ratio(f.candidate.precision),
                    signed(f.precision_delta),
                    f.baseline.honest_flagged,
                    f.candidate.honest_flagged
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml: &str) -> Config {
        Config::from_toml(toml).unwrap()
    }

    #[test]
    fn a_scenario_row_is_compared_with_the_same_scenario_not_with_its_family() {
        let row = |scenario: Option<&str>, caught: usize| eval::Score {
            family: "rating_manipulation",
            scenario: scenario.map(String::from),
            labelled: 10,
            caught,
            honest: 100,
            honest_flagged: 0,
            flagged: caught,
            flagged_labelled: caught,
            median_delay_ms: None,
        };
        let drip = Some("rating_manipulation.drip");
        let rows = family_rows(&[row(None, 10), row(drip, 4)], &[row(None, 9), row(drip, 8)]);
        let names: Vec<&str> = rows.iter().map(|r| r.family.as_str()).collect();
        assert_eq!(names, ["rating_manipulation", "rating_manipulation.drip"]);
        assert_eq!(rows[1].recall_delta.map(|d| (d * 10.0).round()), Some(4.0), "0.4 → 0.8");
        assert_eq!(rows[0].recall_delta.map(|d| (d * 10.0).round()), Some(-1.0));
    }

    #[test]
    fn identical_configs_differ_nowhere() {
        assert!(config_diff(&Config::default(), &cfg("")).is_empty());
    }

    #[test]
    fn differences_are_flat_keys_with_both_values() {
        let b = Config::default();
        let c = cfg("[price_dumping]\nmin_drop = 0.4\n[alerts.cooldown_hours_by_rule]\n\"false_transactions.order_brushing\" = 72.0\n");
        let d = config_diff(&b, &c);
        assert_eq!(
            d,
            vec![
                Difference {
                    key: "alerts.cooldown_hours_by_rule.\"false_transactions.order_brushing\"".into(),
                    baseline: None,
                    candidate: Some(72.0.into())
                },
                Difference {
                    key: "price_dumping.min_drop".into(),
                    baseline: Some(0.5.into()),
                    candidate: Some(0.4.into())
                },
            ]
        );
        let report = Report {
            input: "x".into(),
            lines: 0,
            baseline: Side::new(&b, "baseline").unwrap().summary("b"),
            candidate: Side::new(&c, "candidate").unwrap().summary("c"),
            config_diff: d,
            rules: vec![],
            total: RuleRow::default(),
            labels: None,
            families: vec![],
        };
        let text = report.render();
        assert!(text.contains("  price_dumping.min_drop: 0.5 → 0.4\n"), "{text}");
        assert!(text.contains(".\"false_transactions.order_brushing\": (absent) → 72.0\n"), "{text}");
    }

    #[test]
    fn secrets_differ_but_are_not_shown() {
        let b = cfg("[kafka.common]\n\"sasl.password\" = \"hunter2\"\n");
        let c = cfg("[kafka.common]\n\"sasl.password\" = \"swordfish\"\n");
        let d = config_diff(&b, &c);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, "kafka.common.\"sasl.password\"");
        assert_eq!((d[0].baseline.clone(), d[0].candidate.clone()), (Some("***".into()), Some("***".into())));
    }

    #[test]
    fn alerts_are_matched_by_id_per_rule() {
        let ids = |v: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
            v.iter().map(|(r, ids)| (r.to_string(), ids.iter().map(|s| s.to_string()).collect())).collect()
        };
        let base = ids(&[("price_dumping", &["a", "b", "c"]), ("late_dispatch", &["x"])]);
        let cand = ids(&[("price_dumping", &["b", "c", "d", "e"]), ("made_up", &["m"])]);
        let shadow: BTreeMap<String, u64> = [("price_dumping".to_string(), 3)].into();
        let rows = rule_rows((&base, &BTreeMap::new()), (&cand, &shadow));
        let row = |r: &str| rows.iter().find(|x| x.rule == r).unwrap().clone();
        let pd = row("price_dumping");
        assert_eq!((pd.baseline, pd.candidate, pd.only_baseline, pd.only_candidate, pd.both), (3, 4, 1, 2, 2));
        assert_eq!((pd.baseline_shadow, pd.candidate_shadow), (0, 3));
        let ld = row("late_dispatch");
        assert_eq!((ld.baseline, ld.candidate, ld.only_baseline, ld.only_candidate, ld.both), (1, 0, 1, 0, 0));
        assert_eq!(row("made_up").candidate, 1, "a rule this build does not list is still shown");
        assert_eq!(rows.len(), RULES.len() + 1);
        let t = total(&rows);
        assert_eq!((t.baseline, t.candidate, t.only_baseline, t.only_candidate, t.both), (4, 5, 2, 3, 2));
        assert_eq!((t.baseline_shadow, t.candidate_shadow), (0, 3));
    }
}
