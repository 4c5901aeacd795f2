//! Scoring: hand-made alerts against hand-made labels, and generated traffic end to end.

use super::*;

const T: Millis = 1_767_571_200_000;
const H: i64 = 3_600_000;

fn label(seller: &str, family: &str, since: Millis) -> Label {
    Label { seller_id: seller.into(), family: family.into(), since: crate::alert::rfc3339(since), scenario: None }
}

fn flag(seller: &str, family: &str, at: Millis) -> Flag {
    Flag { seller_id: seller.into(), family: family.into(), rule: family.into(), event_time: at }
}

/// 100 sellers: `a`, `b` late dispatchers, `c` a slow responder, the rest honest.
fn outcome(flags: Vec<Flag>) -> Outcome {
    let mut sellers: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    sellers.extend((0..97).map(|i| format!("h{i}")));
    let labels = vec![label("a", "late_dispatch", T), label("b", "late_dispatch", T), label("c", "slow_response", T)];
    Outcome { flags, labels, sellers, events: 1000, rejected: 0 }
}

fn by_family<'a>(scores: &'a [Score], family: &str) -> &'a Score {
    scores.iter().find(|s| s.family == family).unwrap()
}

#[test]
fn recall_precision_and_delay_from_hand_made_alerts() {
    let o = outcome(vec![
        flag("a", "late_dispatch", T + 100 * H),
        flag("a", "late_dispatch", T + 72 * H), // the first alert counts, whatever the order
        flag("c", "slow_response", T + 30 * H),
        flag("c", "late_dispatch", T + 5 * H), // another family's fraudster: hurts precision only
        flag("h3", "late_dispatch", T),        // an honest seller
    ]);
    let scores = score(&o).unwrap();
    assert_eq!(scores.len(), FAMILIES.len());
    let late = by_family(&scores, "late_dispatch");
    assert_eq!((late.labelled, late.caught, late.flagged, late.flagged_labelled), (2, 1, 3, 1));
    assert_eq!((late.honest, late.honest_flagged), (97, 1));
    assert_eq!(late.recall(), Some(0.5));
    assert!((late.precision().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(late.median_delay_ms, Some(72 * H));
    let slow = by_family(&scores, "slow_response");
    assert_eq!((slow.recall(), slow.precision(), slow.median_delay_ms), (Some(1.0), Some(1.0), Some(30 * H)));
    assert_eq!(slow.honest_share(), 0.0);
    // Families nobody carries or triggers: nothing measured, nothing failed.
    let dump = by_family(&scores, "price_dumping");
    assert_eq!((dump.recall(), dump.precision(), dump.median_delay_ms), (None, None, None));
    assert!(dump.failures(&EvalConfig::default()).is_empty());
}

#[test]
fn a_family_below_the_targets_fails_the_run() {
    let o = outcome(vec![
        flag("a", "late_dispatch", T + 80 * H),
        flag("h1", "late_dispatch", T),
        flag("h2", "late_dispatch", T),
        flag("c", "slow_response", T + 30 * H),
    ]);
    let fails = failures(&score(&o).unwrap(), &EvalConfig::default());
    assert_eq!(fails.len(), 2, "{fails:?}");
    assert!(fails[0].contains("late_dispatch: recall 0.500 < 0.95"), "{fails:?}");
    assert!(fails[1].contains("2 of 97 honest sellers flagged"), "{fails:?}");
    assert_eq!(exit_code(&fails), 1);
    let report = verdict(&fails, &EvalConfig::default(), "");
    assert!(report.contains("FAIL") && report.contains("late_dispatch"), "{report}");
}

#[test]
fn targets_are_met_at_their_boundaries() {
    // Both late dispatchers and the slow responder caught; one honest seller of 97 is 1.03 %.
    let all = || {
        vec![
            flag("a", "late_dispatch", T + 80 * H),
            flag("b", "late_dispatch", T + 90 * H),
            flag("c", "slow_response", T + 24 * H),
        ]
    };
    let scores = score(&outcome(all())).unwrap();
    assert!(failures(&scores, &EvalConfig::default()).is_empty());
    assert_eq!(exit_code(&[]), 0);
    assert_eq!(by_family(&scores, "late_dispatch").median_delay_ms, Some(85 * H), "mean of the middle two");
    let mut one_honest = all();
    one_honest.push(flag("h0", "slow_response", T));
    let scores = score(&outcome(one_honest)).unwrap();
    assert_eq!(failures(&scores, &EvalConfig::default()).len(), 1);
    let lenient = EvalConfig { max_honest_flagged: 1.0 / 97.0, ..EvalConfig::default() };
    assert!(failures(&scores, &lenient).is_empty(), "exactly at the line passes");
}

#[test]
fn labels_of_an_unknown_family_are_an_error() {
    let mut o = outcome(vec![]);
    o.labels.push(label("h0", "telepathy", T));
    assert!(score(&o).is_err());
    o.labels.pop();
    o.labels[0].since = "yesterday".into();
    assert!(score(&o).is_err());
}

#[test]
fn a_scenario_row_counts_only_its_rules_alerts() {
    let mut o = outcome(vec![]);
    let drip = |seller: &str| Label {
        scenario: Some("rating_manipulation.drip".into()),
        ..label(seller, "rating_manipulation", T)
    };
    o.labels.extend([drip("h0"), drip("h1")]);
    let rule =
        |seller: &str, rule: &str, at: Millis| Flag { rule: rule.into(), ..flag(seller, "rating_manipulation", at) };
    // h0 caught by the drip rule 5 h in; h1 only by another signal; h2 (honest) by the drip rule.
    o.flags = vec![
        rule("h0", "rating_manipulation.drip", T + 5 * H),
        rule("h1", "rating_manipulation.burst", T + H),
        rule("h2", "rating_manipulation.drip", T + H),
    ];
    let scores = score(&o).unwrap();
    let family = by_family(&scores, "rating_manipulation");
    assert_eq!((family.labelled, family.caught, family.honest_flagged), (2, 2, 1), "any signal counts for the family");
    let row = scores.iter().find(|s| s.name() == "rating_manipulation.drip").unwrap();
    assert_eq!((row.labelled, row.caught, row.honest_flagged, row.flagged), (2, 1, 1, 2));
    assert_eq!(row.median_delay_ms, Some(5 * H));
    assert!(render(&o, &scores, &Config::default()).contains("rating_manipulation.drip"));
}

/// The drip scenario in generated traffic: drips start on day 16, so a 30-day stream.
#[test]
fn generated_drips_and_their_targets_are_caught_and_no_honest_seller_is() {
    let gen = GenConfig { sellers: 200, days: 30, fraud_share: 0.2, ..GenConfig::default() };
    let o = run_generated(&Config::default(), &gen).unwrap();
    let scores = score(&o).unwrap();
    let row = scores.iter().find(|s| s.name() == "rating_manipulation.drip").expect("a drip row");
    assert!(row.labelled >= 4, "drip sellers and their targets are labelled: {row:?}");
    assert!(row.recall().unwrap() >= 0.95, "{row:?}");
    assert_eq!(row.honest_flagged, 0, "{row:?}");
}

#[test]
fn generated_traffic_scores_every_family() {
    let gen = GenConfig { sellers: 40, days: 8, fraud_share: 0.25, ..GenConfig::default() };
    let o = run_generated(&Config::default(), &gen).unwrap();
    assert!(o.events > 10_000 && o.rejected == 0 && o.sellers.len() == 40);
    let scores = score(&o).unwrap();
    let report = render(&o, &scores, &Config::default());
    for family in FAMILIES {
        assert!(report.contains(family), "{report}");
    }
    assert_eq!(scores.iter().map(|s| s.labelled).sum::<usize>(), o.labels.len());
}

/// The rule-name catalogue (`telemetry::RULES`: metrics labels, `alerts.shadow` and snooze
/// validation) holds every rule the engine emits, and generated traffic exercises all but one.
#[test]
fn every_emitted_rule_is_in_the_catalogue_and_every_catalogued_rule_is_emitted() {
    let gen = GenConfig { sellers: 200, days: 30, fraud_share: 0.3, ..GenConfig::default() };
    let o = run_generated(&Config::default(), &gen).unwrap();
    let emitted: BTreeSet<&str> = o.flags.iter().map(|f| f.rule.as_str()).collect();
    let catalogue: BTreeSet<&str> = crate::telemetry::RULES.into_iter().collect();
    let unknown: Vec<_> = emitted.difference(&catalogue).collect();
    assert!(unknown.is_empty(), "emitted but not in telemetry::RULES: {unknown:?}");
    // `gen` has no review-ring scenario (`rules::tests::rating` drives that rule by hand).
    let silent: Vec<&str> = catalogue.difference(&emitted).copied().collect();
    assert_eq!(silent, ["rating_manipulation.ring"], "catalogued rules never emitted on generated traffic");
}
