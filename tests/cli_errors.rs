//! Operator mistakes get a clear error that names the key and the fix, and a non-zero exit.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(common::sellerguard_bin()).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_config_names_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[rating_manipulation]\nmin_suspicious_ratio = 2.0\n").unwrap();
    let (ok, err) = run(&["replay", "--config", cfg.to_str().unwrap(), "-"]);
    assert!(!ok);
    assert!(err.contains("rating_manipulation.min_suspicious_ratio") && err.contains("fix:"), "{err}");

    std::fs::write(&cfg, "[kafka]\nbrokerz = \"x\"\n").unwrap();
    let (ok, err) = run(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("brokerz"), "{err}");

    let (ok, err) = run(&["replay", "--config", "/nonexistent/sellerguard.toml", "-"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/sellerguard.toml"), "{err}");
}

#[test]
fn missing_topic_stops_start_up_with_the_key_to_fix() {
    let broker = common::Tansu::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::create_topic(&broker.bootstrap(), "events-present", 1));
    let (ok, err) = run(&[
        "run",
        "--brokers",
        &broker.bootstrap(),
        "--input-topic",
        "events-present",
        "--alerts-topic",
        "alerts-missing",
        "--dlq-topic",
        "events-present-dlq",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(err.contains("alerts-missing") && err.contains("kafka.alerts_topic"), "{err}");
}

#[test]
fn tls_and_sasl_settings_are_checked_and_secrets_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secure.toml");
    std::fs::write(
        &cfg,
        "[kafka.common]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanisms\" = \"SCRAM-SHA-512\"\n\
         \"sasl.username\" = \"sellerguard\"\n\"sasl.password\" = \"hunter2-secret\"\n",
    )
    .unwrap();
    let out = Command::new(common::sellerguard_bin())
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("config OK") && all.contains("security.protocol = SASL_SSL"), "{all}");
    assert!(!all.contains("hunter2-secret") && all.contains("sasl.password = ***"), "{all}");

    // A mechanism this build cannot speak, and a CA file that does not exist, are named.
    std::fs::write(&cfg, "[kafka.common]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanisms\" = \"GSSAPI\"\n")
        .unwrap();
    let (ok, err) = run(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("GSSAPI") && err.contains("[kafka.common]"), "{err}");
    std::fs::write(
        &cfg,
        "[kafka.common]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"/nonexistent/ca.pem\"\n",
    )
    .unwrap();
    let (ok, err) = run(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("ssl.ca.location") || err.contains("/nonexistent/ca.pem"), "{err}");
}
