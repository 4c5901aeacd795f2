//! `sellerguard backtest` as a user runs it, on traffic and labels from `sellerguard gen`. Every
//! expected figure comes from `sellerguard replay` or `sellerguard eval` on the same input:
//!
//! * identical configs: nothing is only in one of them, and each rule's counts are replay's;
//! * a family disabled in the candidate: its alerts are all only-in-baseline, the others unchanged;
//! * a looser threshold: more alerts of that family, and precision/recall of each config exactly
//!   as `sellerguard eval` prints them for that config;
//! * a bad config or input: non-zero exit, and stderr names the file and key.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const DEFAULT_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");

/// Generated events (with a few malformed lines, so rejections are compared too) and their labels.
struct Fixture {
    dir: tempfile::TempDir,
    events: PathBuf,
    labels: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (events, labels) = (dir.path().join("events.jsonl"), dir.path().join("labels.jsonl"));
        let out = sellerguard(&["gen", "--out", s(&events), "--labels", s(&labels)]);
        assert!(out.status.success(), "gen: {}", stderr(&out));
        let mut text = std::fs::read_to_string(&events).unwrap();
        text += "{not json\n{\"event_id\":\"x\",\"type\":\"review\",\"seller_id\":\"s\",\"ts\":0}\n";
        std::fs::write(&events, text).unwrap();
        Fixture { dir, events, labels }
    }

    /// A config file in the fixture's directory.
    fn config(&self, name: &str, toml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, toml).unwrap();
        path
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the binary with `SELLERGUARD_CONFIG` unset (the baseline must not depend on the caller's env).
fn sellerguard(args: &[&str]) -> Output {
    Command::new(common::sellerguard_bin()).args(args).env_remove("SELLERGUARD_CONFIG").output().unwrap()
}

fn backtest_json(args: &[&str]) -> Value {
    let out = sellerguard(&[&["backtest", "--json"], args].concat());
    assert!(out.status.success(), "backtest {args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Per rule: [baseline, candidate, only_baseline, only_candidate, both].
fn rule_table(report: &Value) -> BTreeMap<String, [u64; 5]> {
    let rows = report["rules"].as_array().unwrap().iter().chain([&report["total"]]);
    rows.map(|r| {
        let n = |k: &str| r[k].as_u64().unwrap();
        (
            r["rule"].as_str().unwrap().to_string(),
            [n("baseline"), n("candidate"), n("only_baseline"), n("only_candidate"), n("both")],
        )
    })
    .collect()
}

/// The same table read from the text output: the rule rows and the total row (the last column,
/// `shadow b/c`, as printed).
fn text_rule_table(text: &str) -> BTreeMap<String, ([u64; 5], String)> {
    let start = text.lines().position(|l| l.starts_with("rule ")).expect("a rule table");
    (text.lines().skip(start + 1))
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            let n: Vec<u64> = t[1..6].iter().map(|x| x.parse().unwrap()).collect();
            (t[0].to_string(), ([n[0], n[1], n[2], n[3], n[4]], t[6].to_string()))
        })
        .collect()
}

/// `sellerguard replay`: its alerts, and the summary (stderr).
fn replay_alerts(events: &Path, config: Option<&Path>) -> (Vec<Value>, String) {
    let mut args = vec!["replay", s(events)];
    if let Some(c) = config {
        args.extend(["--config", s(c)]);
    }
    let out = sellerguard(&args);
    assert!(out.status.success(), "replay: {}", stderr(&out));
    let alerts = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (alerts, stderr(&out))
}

/// Alerts per rule.
fn per_rule<'a>(alerts: impl IntoIterator<Item = &'a Value>) -> BTreeMap<String, u64> {
    let mut n = BTreeMap::new();
    for a in alerts {
        *n.entry(a["rule"].as_str().unwrap().to_string()).or_default() += 1;
    }
    n
}

/// `sellerguard replay`: alerts per rule, and the summary (stderr).
fn replay(events: &Path, config: Option<&Path>) -> (BTreeMap<String, u64>, String) {
    let (alerts, summary) = replay_alerts(events, config);
    (per_rule(&alerts), summary)
}

/// A figure after `label` in replay's summary (`rejected: 2`, `events accepted: 71183 (late: 0)`).
fn figure(summary: &str, label: &str) -> u64 {
    let line = summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("{label}:\n{summary}"));
    line.trim_start_matches(':').split(|c: char| !c.is_ascii_digit()).find(|t| !t.is_empty()).unwrap().parse().unwrap()
}

fn family(rule: &str) -> &str {
    rule.split('.').next().unwrap()
}

#[test]
fn identical_configs_match_replay_rule_by_rule() {
    let fx = Fixture::new();
    let (replayed, summary) = replay(&fx.events, None);
    let total: u64 = replayed.values().sum();
    assert!(replayed.len() >= 9 && total > 30, "traffic must alert in many rules: {replayed:?}");

    // Baseline: the built-in default; candidate: the same settings from the file.
    let report = backtest_json(&["--config", DEFAULT_TOML, s(&fx.events)]);
    assert_eq!(report["config_diff"], Value::Array(vec![]), "{report:#}");
    let table = rule_table(&report);
    for (rule, [base, cand, only_b, only_c, both]) in &table {
        let want = if rule == "total" { total } else { replayed.get(rule).copied().unwrap_or(0) };
        assert_eq!((*only_b, *only_c), (0, 0), "{rule}: {table:?}");
        assert_eq!([*base, *cand, *both], [want; 3], "{rule}: replay raised {want}");
    }
    for rule in replayed.keys() {
        assert!(table.contains_key(rule), "{rule} missing from {table:?}");
    }
    for side in ["baseline", "candidate"] {
        let r = &report[side];
        assert_eq!(r["accepted"], figure(&summary, "events accepted"), "{side}");
        assert_eq!(r["late"], figure_late(&summary), "{side}");
        assert_eq!(r["rejected"], figure(&summary, "rejected"), "{side}");
        assert_eq!(r["rejected"], 2, "the two malformed lines appended");
        assert_eq!(r["alerts"], total, "{side}");
    }

    // The tables say the same as the JSON, and stdin is read like a file.
    let out = sellerguard(&["backtest", "--config", DEFAULT_TOML, s(&fx.events)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let printed: BTreeMap<String, [u64; 5]> = text_rule_table(&text).into_iter().map(|(r, (n, _))| (r, n)).collect();
    assert_eq!(printed, table, "{text}");
    assert!(text.contains("config differences (baseline → candidate): none"), "{text}");
    let mut child = Command::new(common::sellerguard_bin())
        .args(["backtest", "--json", "--config", DEFAULT_TOML, "-"])
        .env_remove("SELLERGUARD_CONFIG")
        .stdin(std::fs::File::open(&fx.events).unwrap())
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut piped = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut piped).unwrap();
    assert!(child.wait().unwrap().success());
    let piped: Value = serde_json::from_str(&piped).unwrap();
    assert_eq!(rule_table(&piped), table);
    assert_eq!(piped["lines"], report["lines"]);
}

/// `late: N` inside replay's `events accepted: X (late: N)`.
fn figure_late(summary: &str) -> u64 {
    let line = summary.lines().find(|l| l.starts_with("events accepted:")).unwrap();
    line.split("late:").nth(1).unwrap().trim().trim_end_matches(')').parse().unwrap()
}

#[test]
fn disabling_a_family_moves_all_its_alerts_to_only_baseline() {
    let fx = Fixture::new();
    // The baseline from SELLERGUARD_CONFIG, as other commands take their config.
    let baseline = fx.config("baseline.toml", &std::fs::read_to_string(DEFAULT_TOML).unwrap());
    let candidate = fx.config("candidate.toml", "[rating_manipulation]\nenabled = false\n");
    let out = Command::new(common::sellerguard_bin())
        .args(["backtest", "--json", "--config", s(&candidate), s(&fx.events), "--labels", s(&fx.labels)])
        .env("SELLERGUARD_CONFIG", &baseline)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["baseline"]["config"], s(&baseline));
    assert_eq!(report["candidate"]["config"], s(&candidate));
    let diff = report["config_diff"].as_array().unwrap();
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert_eq!(
        (diff[0]["key"].as_str(), diff[0]["baseline"].as_bool(), diff[0]["candidate"].as_bool()),
        (Some("rating_manipulation.enabled"), Some(true), Some(false))
    );

    let (replayed, _) = replay(&fx.events, Some(&baseline));
    let table = rule_table(&report);
    let disabled: u64 = table.iter().filter(|(r, _)| family(r) == "rating_manipulation").map(|(_, v)| v[0]).sum();
    assert!(disabled > 0, "the family must alert under the baseline to test anything: {table:?}");
    for (rule, [base, cand, only_b, only_c, both]) in table.iter().filter(|(r, _)| *r != "total") {
        assert_eq!(*base, replayed.get(rule).copied().unwrap_or(0), "{rule}: baseline is replay's");
        if family(rule) == "rating_manipulation" {
            assert_eq!([*cand, *only_b, *only_c, *both], [0, *base, 0, 0], "{rule}");
        } else {
            assert_eq!([*cand, *only_b, *only_c, *both], [*base, 0, 0, *base], "{rule}: unchanged");
        }
    }
    let total = &table["total"];
    assert_eq!(total[2], disabled);
    assert_eq!(total[0] - total[1], disabled);

    // Scored too: the disabled family catches nobody under the candidate.
    let fam = report["families"].as_array().unwrap().iter().find(|f| f["family"] == "rating_manipulation").unwrap();
    assert!(fam["labelled"].as_u64().unwrap() > 0 && fam["baseline"]["caught"].as_u64().unwrap() > 0, "{fam}");
    assert_eq!((fam["candidate"]["flagged"].as_u64(), fam["candidate"]["recall"].as_f64()), (Some(0), Some(0.0)));
    let delta = fam["recall_delta"].as_f64().unwrap();
    assert_eq!(delta, -fam["baseline"]["recall"].as_f64().unwrap());
}

#[test]
fn a_rule_in_shadow_mode_still_counts_as_its_rule() {
    let fx = Fixture::new();
    let candidate = fx.config("shadow.toml", "[alerts]\nshadow = [\"price_dumping\"]\n");
    let report = backtest_json(&["--config", s(&candidate), s(&fx.events)]);
    let (alerts, _) = replay_alerts(&fx.events, Some(&candidate));
    let (all, shadow) = (per_rule(&alerts), per_rule(alerts.iter().filter(|a| a["shadow"] == true)));
    assert!(shadow.keys().all(|r| family(r) == "price_dumping") && !shadow.is_empty(), "{shadow:?}");

    let mut printed = BTreeMap::new();
    for r in report["rules"].as_array().unwrap() {
        let rule = r["rule"].as_str().unwrap();
        let n = |k: &str| r[k].as_u64().unwrap();
        assert_eq!(n("candidate"), all.get(rule).copied().unwrap_or(0), "{rule}: shadow alerts are counted");
        assert_eq!(n("candidate_shadow"), shadow.get(rule).copied().unwrap_or(0), "{rule}");
        assert_eq!(n("baseline_shadow"), 0, "{rule}");
        // In shadow a rule raises what it raised live (its own cooldowns): the same alert ids.
        assert_eq!([n("only_baseline"), n("only_candidate"), n("both")], [0, 0, n("baseline")], "{rule}");
        printed.insert(rule.to_string(), n("candidate_shadow"));
    }
    let out = sellerguard(&["backtest", "--config", s(&candidate), s(&fx.events)]);
    for (rule, (_, col)) in text_rule_table(&String::from_utf8_lossy(&out.stdout)) {
        let want = match printed
            .get(&rule)
            .copied()
            .unwrap_or_else(|| report["total"]["candidate_shadow"].as_u64().unwrap())
        {
            0 => "-".to_string(),
            n => format!("0/{n}"),
        };
        assert_eq!(col, want, "{rule}");
    }
}

/// `sellerguard eval` on the events file under `config`: per family, the printed
/// [labelled, caught, recall, honest flagged, precision].
fn eval_rows(fx: &Fixture, config: &Path) -> BTreeMap<String, [String; 5]> {
    let out = sellerguard(&["eval", "--events-file", s(&fx.events), "--labels", s(&fx.labels), "--config", s(config)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("family "), "eval printed no table: {}\n{text}", stderr(&out));
    let mut rows = BTreeMap::new();
    for f in sellerguard::rules::FAMILIES {
        // family labelled caught recall n/of (share) precision …
        let r: Vec<&str> =
            text.lines().find(|l| l.split_whitespace().next() == Some(f)).unwrap().split_whitespace().collect();
        let honest = r[4].split('/').next().unwrap();
        rows.insert(f.to_string(), [r[1], r[2], r[3], honest, r[6]].map(String::from));
    }
    rows
}

fn ratio(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.3}"))
}

#[test]
fn a_looser_threshold_raises_more_alerts_scored_as_eval_scores_each_config() {
    let fx = Fixture::new();
    let baseline = PathBuf::from(DEFAULT_TOML);
    // Price dumping: below 60 % of the category median (was 25 %) after a drop of 20 % (was 50 %).
    let candidate = fx.config("loose.toml", "[price_dumping]\nmax_ratio_to_median = 0.6\nmin_drop = 0.2\n");
    let report = backtest_json(&[
        "--baseline",
        s(&baseline),
        "--config",
        s(&candidate),
        s(&fx.events),
        "--labels",
        s(&fx.labels),
    ]);

    let keys: Vec<&str> =
        report["config_diff"].as_array().unwrap().iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["price_dumping.max_ratio_to_median", "price_dumping.min_drop"]);
    assert_eq!(report["config_diff"][1]["baseline"], 0.5);
    assert_eq!(report["config_diff"][1]["candidate"], 0.2);

    let table = rule_table(&report);
    let (replay_b, _) = replay(&fx.events, Some(&baseline));
    let (replay_c, _) = replay(&fx.events, Some(&candidate));
    let mut dumping = [0u64; 5];
    for (rule, row) in table.iter().filter(|(r, _)| *r != "total") {
        assert_eq!(row[0], replay_b.get(rule).copied().unwrap_or(0), "{rule}: baseline is replay's under it");
        assert_eq!(row[1], replay_c.get(rule).copied().unwrap_or(0), "{rule}: candidate is replay's under it");
        assert_eq!(row[0], row[2] + row[4], "{rule}: every baseline alert is only-baseline or both");
        assert_eq!(row[1], row[3] + row[4], "{rule}: every candidate alert is only-candidate or both");
        if family(rule) == "price_dumping" {
            for i in 0..5 {
                dumping[i] += row[i];
            }
        }
    }
    assert!(dumping[1] > dumping[0] && dumping[3] > 0, "looser means more price_dumping alerts: {dumping:?}");

    // Precision and recall of each config are eval's for that config, family by family.
    let (eval_b, eval_c) = (eval_rows(&fx, &baseline), eval_rows(&fx, &candidate));
    assert_ne!(eval_b["price_dumping"], eval_c["price_dumping"], "the change must show in eval to test anything");
    for f in report["families"].as_array().unwrap() {
        let name = f["family"].as_str().unwrap();
        for (side, want) in [("baseline", &eval_b[name]), ("candidate", &eval_c[name])] {
            let x = &f[side];
            let got = [
                f["labelled"].to_string(),
                x["caught"].to_string(),
                ratio(&x["recall"]),
                x["honest_flagged"].to_string(),
                ratio(&x["precision"]),
            ];
            assert_eq!(&got, want, "{name} {side}: backtest vs eval");
        }
        for (delta, key) in [("recall_delta", "recall"), ("precision_delta", "precision")] {
            let (b, c) = (f["baseline"][key].as_f64(), f["candidate"][key].as_f64());
            match (b, c) {
                (Some(b), Some(c)) => assert!((f[delta].as_f64().unwrap() - (c - b)).abs() < 1e-12, "{name} {delta}"),
                _ => assert!(f[delta].is_null(), "{name} {delta}"),
            }
        }
    }
    assert_eq!(report["families"].as_array().unwrap().len(), sellerguard::rules::FAMILIES.len());

    // The printed table shows both configs' figures.
    let out = sellerguard(&[
        "backtest",
        "--baseline",
        s(&baseline),
        "--config",
        s(&candidate),
        s(&fx.events),
        "--labels",
        s(&fx.labels),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let row: Vec<&str> =
        text.lines().rev().find(|l| l.starts_with("price_dumping ")).unwrap().split_whitespace().collect();
    let (b, c) = (&eval_b["price_dumping"], &eval_c["price_dumping"]);
    assert_eq!([row[2], row[3], row[5], row[6]], [&b[2], &c[2], &b[4], &c[4]].map(String::as_str), "{text}");
    assert!(text.contains("price_dumping.min_drop: 0.5 → 0.2"), "{text}");
}

#[test]
fn a_bad_config_or_input_fails_naming_the_file_and_key() {
    let fx = Fixture::new();
    let events = s(&fx.events);
    let out_of_range = fx.config("range.toml", "[price_dumping]\nmax_ratio_to_median = 1.5\n");
    let unknown = fx.config("typo.toml", "[price_dumping]\nmin_dorp = 0.4\n");
    let good = fx.config("good.toml", "");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--config", s(&out_of_range), events],
            vec!["candidate config", "range.toml", "price_dumping.max_ratio_to_median"],
        ),
        (vec!["--config", s(&unknown), events], vec!["candidate config", "typo.toml", "min_dorp"]),
        (
            vec!["--baseline", s(&out_of_range), "--config", s(&good), events],
            vec!["baseline config", "range.toml", "price_dumping.max_ratio_to_median"],
        ),
        (vec!["--config", "/nonexistent/new.toml", events], vec!["candidate config", "/nonexistent/new.toml"]),
        (vec!["--config", s(&good), "/nonexistent/events.jsonl"], vec!["/nonexistent/events.jsonl"]),
        (
            vec!["--config", s(&good), events, "--labels", "/nonexistent/labels.jsonl"],
            vec!["/nonexistent/labels.jsonl"],
        ),
    ];
    for (args, named) in cases {
        let out = sellerguard(&[&["backtest"], &args[..]].concat());
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?}: no partial report");
        for n in named {
            assert!(err.contains(n), "{args:?}: stderr does not name {n}:\n{err}");
        }
    }
    // The good config really is good: the failures above are the bad inputs'.
    assert!(sellerguard(&["backtest", "--config", s(&good), events]).status.success());
}
