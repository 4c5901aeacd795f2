//! `deploy/` checked with the real tools, no Docker engine or cluster needed:
//!
//! * `promtool` accepts the Prometheus config and rules, and the rules' unit tests pass;
//! * the Dockerfile, the compose file and the Kubernetes manifests agree with each other and with
//!   the crate (paths, ports, user, config, libraries), and their configs pass `check-config`;
//! * live: tansu + a real `sellerguard run` with traffic; `promtool check metrics` on its
//!   `/metrics`; the image's HEALTHCHECK command against it; then a real Prometheus server loads
//!   `alerts.yml` and scrapes it, and must answer every dashboard and rule expression with every
//!   series they name present.
//!
//! `promtool` and `prometheus` come from the Debian package `prometheus`, which `.ci/run` installs.
//! Missing, they fail these tests (never skip them).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

#[path = "deploy/manifests.rs"]
mod manifests;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool from `$PATH`, or a failure that says how to get it.
fn tool(name: &str) -> PathBuf {
    let found =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()));
    found.unwrap_or_else(|| {
        panic!("`{name}` is not on PATH: it comes with the Debian package `prometheus`; run .ci/run (installs it) or `apt-get install prometheus`")
    })
}

/// Runs `cmd`, failing with its output unless it succeeds.
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn yaml(rel: &str) -> Yaml {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn promtool_accepts_the_prometheus_config_and_rules_and_the_rule_tests_pass() {
    let promtool = tool("promtool");
    let dir = repo().join("deploy/prometheus");
    // prometheus.yml names alerts.yml relatively, so this checks the rules file too.
    let out = run_ok(Command::new(&promtool).args(["check", "config"]).arg(dir.join("prometheus.yml")));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 rule files found"), "{out:?}");
    run_ok(Command::new(&promtool).args(["check", "rules"]).arg(dir.join("alerts.yml")));
    run_ok(Command::new(&promtool).args(["test", "rules"]).arg(dir.join("alerts_test.yml")));
}

#[test]
fn the_dockerfile_builds_and_runs_what_the_crate_and_the_manifests_expect() {
    manifests::check_dockerfile();
}

#[test]
fn the_compose_file_agrees_with_the_image_the_config_and_prometheus() {
    manifests::check_compose();
}

#[test]
fn the_kubernetes_manifests_agree_and_their_pod_gets_a_valid_config() {
    manifests::check_k8s();
}

/// Kills a child process when the test ends, passed or not.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sellerguard_*`/`process_*` selectors in a PromQL expression: the name with its `{…}` matchers.
fn selectors(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(?:sellerguard|process)_[a-z0-9_]+(?:\{[^}]*\})?").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

/// Every `targets[].expr` in the dashboard with Grafana's variables replaced as Grafana would
/// (intervals by durations, template variables by a match-all regex), and the template variables'
/// own queries (`label_values(metric, label)`), which are not PromQL but name a metric.
fn dashboard_queries() -> (Vec<(String, String)>, Vec<String>) {
    let dash: Json =
        serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/grafana/sellerguard.json")).unwrap())
            .expect("dashboard is JSON");
    let vars: Vec<&Json> = dash["templating"]["list"].as_array().unwrap().iter().collect();
    let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    let var_queries = vars.iter().filter_map(|v| v["definition"].as_str().map(String::from)).collect();
    let mut out = Vec::new();
    fn walk(v: &Json, panel: &str, out: &mut Vec<(String, String)>) {
        match v {
            Json::Object(m) => {
                let title = m.get("title").and_then(Json::as_str).unwrap_or(panel);
                if let Some(e) = m.get("expr").and_then(Json::as_str) {
                    out.push((panel.to_string(), e.to_string()));
                }
                m.values().for_each(|x| walk(x, title, out));
            }
            Json::Array(a) => a.iter().for_each(|x| walk(x, panel, out)),
            _ => {}
        }
    }
    walk(&dash["panels"], "", &mut out);
    for (panel, e) in &mut out {
        let mut s = e.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "5m");
        for n in &names {
            s = s.replace(&format!("${{{n}}}"), ".+").replace(&format!("${n}"), ".+");
        }
        assert!(!s.contains('$'), "panel {panel:?}: unknown variable in {e}");
        *e = s;
    }
    (out, var_queries)
}

/// Prometheus' JSON answer to an API GET (status "success" or an error with its message).
fn api(addr: &str, path: &str) -> Json {
    let (_, body) = http_get(addr, path).unwrap_or_else(|| panic!("prometheus at {addr} does not answer {path}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_answers_every_dashboard_and_rule_expression_from_a_live_service() {
    let (promtool, prometheus) = (tool("promtool"), tool("prometheus"));
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let suffix = "deploy";
    for (topic, partitions) in [("events", 2), ("alerts", 1), ("dlq", 1), ("standing", 1)] {
        create_topic(&bootstrap, &format!("{topic}-{suffix}"), partitions).await;
    }

    // Traffic with fraud of several families, and two malformed messages for the dead letters.
    let gen = sellerguard::gen::GenConfig { seed: 11, sellers: 40, days: 6, fraud_share: 0.3, ..Default::default() };
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    sellerguard::gen::generate(&gen, &mut |k, l| records.push((k.to_string(), l.as_bytes().to_vec()))).unwrap();
    records.insert(records.len() / 3, ("s-bad".into(), b"not json".to_vec()));
    records.insert(records.len() / 2, ("s-bad".into(), br#"{"event_id":"x","type":"teleport"}"#.to_vec()));
    produce(&bootstrap, &format!("events-{suffix}"), &records).await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sellerguard.toml");
    std::fs::write(&cfg, format!("[service]\nidle_flush_ms = 1000\n[kafka]\nstanding_topic = \"standing-{suffix}\"\n"))
        .unwrap();
    let log = dir.path().join("sellerguard.log");
    let svc = start_service(&cfg, &bootstrap, suffix, &unique_group("deploy"), &log);
    let addr = svc.metrics.clone();
    // Killed when the test ends, passed or not (Service's drop).
    let _svc = svc;

    // Everything read (accepted or rejected), and the lag gauge reported (librdkafka stats, 5 s).
    let deadline = Instant::now() + Duration::from_secs(180);
    let metrics = loop {
        let text = http_get(&addr, "/metrics").map(|(_, b)| b).unwrap_or_default();
        let read = scrape(&addr, "sellerguard_events_total").unwrap_or(0.0)
            + scrape(&addr, "sellerguard_events_rejected_total").unwrap_or(0.0);
        if read as usize == records.len() && text.contains("sellerguard_consumer_lag_messages{") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "service read {read} of {} messages:\n{}",
            records.len(),
            log_tail(&log, 30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The exposition is valid.
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The image's HEALTHCHECK, run as Docker runs a shell-form command: passes on the live service,
    // fails where nothing listens.
    let health = manifests::dockerfile_healthcheck();
    let port_of = |a: &str| a.rsplit(':').next().unwrap().to_string();
    for (target, healthy) in [(addr.clone(), true), (format!("127.0.0.1:{}", free_port()), false)] {
        let status = Command::new("sh")
            .args(["-c", &health])
            .env("SELLERGUARD_METRICS_ADDR", format!("0.0.0.0:{}", port_of(&target)))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.success(), healthy, "HEALTHCHECK on {target}: {status}\n{health}");
    }

    // Prometheus with deploy/prometheus/prometheus.yml, pointed at the live service: its
    // `sellerguard` job scraping every second, alerts.yml evaluated every second.
    let mut pcfg = yaml("deploy/prometheus/prometheus.yml");
    pcfg["global"]["scrape_interval"] = "1s".into();
    pcfg["global"]["evaluation_interval"] = "1s".into();
    pcfg["rule_files"] = vec![Yaml::from(repo().join("deploy/prometheus/alerts.yml").to_str().unwrap())].into();
    let mut jobs = pcfg["scrape_configs"].as_sequence().unwrap().clone();
    jobs.retain(|j| j["job_name"] == "sellerguard");
    assert_eq!(jobs.len(), 1, "prometheus.yml has a `sellerguard` scrape job");
    jobs[0]["static_configs"] = yaml_serde::from_str(&format!("[{{targets: ['{addr}']}}]")).unwrap();
    pcfg["scrape_configs"] = jobs.into();
    let pfile = dir.path().join("prometheus.yml");
    std::fs::write(&pfile, yaml_serde::to_string(&pcfg).unwrap()).unwrap();
    let prom = format!("127.0.0.1:{}", free_port());
    let plog = dir.path().join("prometheus.log");
    let _prom = Reaped(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", pfile.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&plog).unwrap())
            .spawn()
            .unwrap(),
    );
    let plog_tail =
        || std::fs::read_to_string(&plog).unwrap_or_default().lines().rev().take(20).collect::<Vec<_>>().join("\n");

    // Scraped at least 5 times, target up, every rule evaluated.
    let expected_rules = manifests::rule_names();
    let deadline = Instant::now() + Duration::from_secs(90);
    let rules = loop {
        let ready = http_get(&prom, "/-/ready").is_some_and(|(s, _)| s == 200);
        if ready {
            let targets = api(&prom, "/api/v1/targets?state=active");
            let up = targets["data"]["activeTargets"]
                .as_array()
                .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["health"] == "up"));
            let samples = api(
                &prom,
                &format!("/api/v1/query?query={}", encode("count_over_time(sellerguard_partitions_owned[1m])")),
            );
            let scraped =
                samples["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            let rules = api(&prom, "/api/v1/rules");
            let evaluated = rules["data"]["groups"].as_array().is_some_and(|g| {
                g.iter().flat_map(|g| g["rules"].as_array().unwrap()).all(|r| r["health"] != "unknown")
            });
            if up && scraped >= 5.0 && evaluated {
                break rules;
            }
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped the service 5 times and evaluated its rules:\n{}",
            plog_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Every group and rule of alerts.yml is loaded and healthy.
    let mut loaded: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rule_exprs = Vec::new();
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "rule {} is unhealthy: {}", r["name"], r["lastError"]);
            loaded.entry(g["name"].as_str().unwrap().into()).or_default().push(r["name"].as_str().unwrap().into());
            rule_exprs
                .push((format!("rule {}", r["name"].as_str().unwrap()), r["query"].as_str().unwrap().to_string()));
        }
    }
    assert_eq!(loaded, expected_rules, "groups and rules Prometheus loaded vs alerts.yml");

    // Every expression runs; dashboard ones return data; every series any of them names exists.
    let (panels, var_queries) = dashboard_queries();
    assert!(panels.len() >= 20, "dashboard queries: {}", panels.len());
    let mut problems = Vec::new();
    let mut named = BTreeSet::new();
    for (from_dashboard, (origin, expr)) in
        panels.iter().map(|p| (true, p)).chain(rule_exprs.iter().map(|r| (false, r)))
    {
        let ans = api(&prom, &format!("/api/v1/query?query={}", encode(expr)));
        if ans["status"] != "success" {
            problems.push(format!("{origin}: {expr}\n    {}", ans["error"]));
        } else if from_dashboard && ans["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
            problems.push(format!("{origin}: no data for {expr}"));
        }
        named.extend(selectors(expr).into_iter().map(|s| (origin.clone(), s)));
    }
    named.extend(
        var_queries.iter().flat_map(|q| selectors(q).into_iter().map(|s| ("dashboard variable".to_string(), s))),
    );
    for (origin, sel) in &named {
        let ans = api(&prom, &format!("/api/v1/series?match[]={}", encode(sel)));
        if ans["data"].as_array().is_none_or(|d| d.is_empty()) {
            problems.push(format!("{origin}: no series {sel} in Prometheus ({})", ans["error"]));
        }
    }
    let names: BTreeSet<&str> = named.iter().map(|(_, s)| s.split('{').next().unwrap()).collect();
    assert!(names.len() >= 25, "metrics the dashboard and rules name: {names:?}");
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    eprintln!(
        "{} dashboard queries and {} rule expressions answered; {} selectors over {} metrics present",
        panels.len(),
        rule_exprs.len(),
        named.iter().map(|(_, s)| s).collect::<BTreeSet<_>>().len(),
        names.len()
    );
}
