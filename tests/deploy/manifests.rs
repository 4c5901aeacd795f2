//! Static checks of `deploy/` for tests/deploy.rs: what no Docker engine or cluster is needed to
//! see. Each check is something that, wrong, breaks a build or a start: a path, a port, a user, a
//! config, a library.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

use super::{repo, run_ok, yaml};

/// A Dockerfile stage: base image, name, instructions (keyword upper-cased, arguments).
struct Stage {
    from: String,
    name: Option<String>,
    ins: Vec<(String, String)>,
}

impl Stage {
    fn all<'a>(&'a self, kw: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.ins.iter().filter(move |(k, _)| k == kw).map(|(_, a)| a.as_str())
    }
    fn one<'a>(&'a self, kw: &'a str) -> &'a str {
        let v: Vec<&str> = self.all(kw).collect();
        assert_eq!(v.len(), 1, "one {kw} in the stage FROM {}: {v:?}", self.from);
        v[0]
    }
}

/// Logical lines as Docker reads them: `\` continues a line; lines starting with `#` are comments,
/// also inside a continuation.
fn dockerfile() -> Vec<Stage> {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let (mut lines, mut cur) = (Vec::new(), String::new());
    for l in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        match l.strip_suffix('\\') {
            Some(head) => cur.push_str(head),
            None => {
                cur.push_str(l);
                if !cur.trim().is_empty() {
                    lines.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for l in lines {
        let (kw, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let (kw, args) = (kw.to_ascii_uppercase(), args.trim().to_string());
        if kw == "FROM" {
            let t: Vec<&str> = args.split_whitespace().collect();
            let name = (t.len() == 3 && t[1].eq_ignore_ascii_case("as")).then(|| t[2].to_string());
            stages.push(Stage { from: t[0].to_string(), name, ins: Vec::new() });
        } else {
            stages.last_mut().expect("FROM first").ins.push((kw, args));
        }
    }
    stages
}

/// What the image promises to whoever runs it.
pub struct Image {
    pub config_path: String,
    pub uid: u32,
    pub port: u16,
}

fn image() -> Image {
    let stages = dockerfile();
    let run = stages.last().unwrap();
    let cmd: Vec<String> = serde_json::from_str(run.one("CMD")).expect("CMD in exec (JSON) form");
    assert_eq!(cmd[..2], ["run", "--config"], "CMD runs the service with a config file");
    let uid = run.one("USER").split(':').next().unwrap().parse().expect("USER is numeric (runAsNonRoot can check it)");
    let env =
        run.all("ENV").flat_map(str::split_whitespace).find_map(|kv| kv.strip_prefix("SELLERGUARD_METRICS_ADDR="));
    let port = env.expect("ENV SELLERGUARD_METRICS_ADDR").rsplit(':').next().unwrap().parse().unwrap();
    Image { config_path: cmd[2].clone(), uid, port }
}

/// The HEALTHCHECK's shell-form command (Docker runs it with `/bin/sh -c`).
pub fn dockerfile_healthcheck() -> String {
    let hc = dockerfile().last().unwrap().one("HEALTHCHECK").to_string();
    hc.split_once(" CMD ").expect("HEALTHCHECK [options] CMD command").1.trim().to_string()
}

/// Alert rule names by group, from alerts.yml.
pub fn rule_names() -> BTreeMap<String, Vec<String>> {
    let rules = yaml("deploy/prometheus/alerts.yml");
    (rules["groups"].as_sequence().unwrap().iter())
        .map(|g| {
            let names = g["rules"].as_sequence().unwrap().iter().map(|r| r["alert"].as_str().unwrap().to_string());
            (g["name"].as_str().unwrap().to_string(), names.collect())
        })
        .collect()
}

fn str_of(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        other => panic!("not a string: {other:?}"),
    }
}

pub fn check_dockerfile() {
    let stages = dockerfile();
    assert!(stages.len() >= 2, "multi-stage: a build stage and a runtime stage");
    let (build, run) = (&stages[0], stages.last().unwrap());
    let build_name = build.name.as_deref().expect("the build stage is named");
    assert!(build.from.starts_with("rust:") && build.from.ends_with("-bookworm"), "{}", build.from);
    assert_eq!(run.from, "debian:bookworm-slim", "runtime on the builder's Debian release (same glibc)");

    // The build context holds every file the build stage copies, every target the manifest
    // declares (cargo refuses the manifest otherwise) and every file the crate compiles in.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore at the repository root");
    let patterns: Vec<&str> = (ignore.lines().map(str::trim))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_matches('/'))
        .collect();
    // Enough of .dockerignore's matching for this file: directories, and `*.ext` at the root.
    let excluded = |rel: &str| {
        (patterns.iter()).any(|p| match p.strip_prefix('*') {
            Some(ext) => !rel.contains('/') && rel.ends_with(ext),
            None => rel == *p || rel.starts_with(&format!("{p}/")),
        })
    };
    let mut copied = Vec::new();
    for args in build.all("COPY").filter(|a| !a.starts_with("--from")) {
        let parts: Vec<&str> = args.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            let src = src.trim_end_matches('/');
            assert!(repo().join(src).exists(), "COPY {src}: not in the repository");
            assert!(!excluded(src), "COPY {src}: excluded by .dockerignore");
            copied.push(src.to_string());
        }
    }
    let in_context = |rel: &str| !excluded(rel) && copied.iter().any(|c| rel == c || rel.starts_with(&format!("{c}/")));
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string(), "src/lib.rs".to_string()];
    for (kind, dir) in [("bin", "src/bin"), ("bench", "benches"), ("test", "tests"), ("example", "examples")] {
        for t in manifest.get(kind).and_then(|v| v.as_array()).into_iter().flatten() {
            let default = format!("{dir}/{}.rs", t["name"].as_str().unwrap());
            needed.push(t.get("path").and_then(|p| p.as_str()).map_or(default, String::from));
        }
    }
    let include = regex::Regex::new(r#"include_(?:str|bytes)!\("([^"]+)"\)"#).unwrap();
    let mut stack = vec![repo().join("src")];
    while let Some(d) = stack.pop() {
        for p in std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()) {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                for c in include.captures_iter(&std::fs::read_to_string(&p).unwrap()) {
                    let target = p.parent().unwrap().join(&c[1]).canonicalize().unwrap();
                    needed.push(target.strip_prefix(repo()).unwrap().to_string_lossy().to_string());
                }
            }
        }
    }
    for rel in &needed {
        assert!(in_context(rel), "the build needs {rel}, which the build stage does not copy from the context");
    }

    // The runtime stage copies cargo's release binary and runs it by name from PATH.
    let bin = manifest["bin"][0]["name"].as_str().unwrap();
    let cargo = build.all("RUN").find(|r| r.contains("cargo build")).expect("a RUN with cargo build");
    assert!(cargo.contains("--release") && cargo.contains("--locked"), "{cargo}");
    let from =
        run.all("COPY").find(|a| a.starts_with(&format!("--from={build_name} "))).expect("COPY --from the build stage");
    let t: Vec<&str> = from.split_whitespace().collect();
    let (out, dst) = (t[1], t[2]);
    // `cp` or `objcopy` from cargo's output path for the release profile to the path copied out.
    let copy_out = format!("target/release/{bin} {out}");
    assert!(cargo.contains(&copy_out), "the build stage puts cargo's binary at {out}: {cargo}");
    assert_eq!(dst, format!("/usr/local/bin/{bin}"), "the binary lands on PATH");
    let entry: Vec<String> = serde_json::from_str(run.one("ENTRYPOINT")).expect("ENTRYPOINT in exec form");
    assert_eq!(entry, [bin]);

    let img = image();
    assert!(
        run.all("COPY").any(|a| a == format!("config/default.toml {}", img.config_path)),
        "a config at the CMD's path"
    );
    assert_ne!(img.uid, 0, "USER is not root");
    assert_eq!(run.one("EXPOSE"), img.port.to_string(), "EXPOSE the metrics port");
    let hc = dockerfile_healthcheck();
    assert!(hc.contains("/healthz") && hc.contains("SELLERGUARD_METRICS_ADDR"), "{hc}");

    // Every shared library the binary needs is in the runtime stage: the slim image has libc6,
    // libgcc-s1 and zlib1g; anything else must be among the packages it installs.
    let apt = run.all("RUN").find(|r| r.contains("apt-get install")).unwrap_or("");
    let by_package = [("libssl3", ["libssl.so.3", "libcrypto.so.3"])];
    let slim = [
        "linux-vdso.so.1",
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "libz.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
    ];
    let ldd = run_ok(Command::new("ldd").arg(super::sellerguard_bin()));
    for lib in String::from_utf8_lossy(&ldd.stdout).lines().filter_map(|l| l.split_whitespace().next()) {
        let lib = Path::new(lib).file_name().unwrap().to_string_lossy();
        let packaged =
            by_package.iter().any(|(pkg, libs)| libs.contains(&&*lib) && apt.split_whitespace().any(|w| w == *pkg));
        assert!(slim.contains(&&*lib) || lib.starts_with("ld-linux") || packaged, "{lib} is not in the runtime image");
    }
}

/// `src:dst[:mode]` bind mounts of a compose service, sources relative to deploy/.
fn mounts(service: &Yaml) -> Vec<(PathBuf, String)> {
    let vols = service["volumes"].as_sequence().map(Vec::as_slice).unwrap_or_default();
    (vols.iter().map(str_of))
        .filter(|v| v.starts_with('.'))
        .map(|v| {
            let mut p = v.split(':');
            (repo().join("deploy").join(p.next().unwrap()), p.next().unwrap().to_string())
        })
        .collect()
}

pub fn check_compose() {
    let c = yaml("deploy/docker-compose.yml");
    let s = &c["services"];
    for (name, svc) in s.as_mapping().unwrap() {
        for (src, _) in mounts(svc) {
            assert!(src.exists(), "{name:?} mounts {} which does not exist", src.display());
        }
    }
    let img = image();

    // sellerguard: this Dockerfile, with the compose config at the path the image reads.
    let b = &s["sellerguard"]["build"];
    let dockerfile = repo().join("deploy").join(str_of(&b["context"])).join(str_of(&b["dockerfile"]));
    assert_eq!(dockerfile.canonicalize().unwrap(), repo().join("deploy/Dockerfile"));
    let (cfg_file, _) = (mounts(&s["sellerguard"]).into_iter())
        .find(|(_, dst)| *dst == img.config_path)
        .unwrap_or_else(|| panic!("sellerguard mounts a config at {}", img.config_path));
    assert_eq!(cfg_file.canonicalize().unwrap(), repo().join("deploy/config/sellerguard.toml"));
    run_ok(Command::new(super::sellerguard_bin()).arg("check-config").arg("--config").arg(&cfg_file));
    let cfg = sellerguard::config::Config::load(&cfg_file).unwrap();

    // The broker address is one the broker advertises; the topics are the ones the config names.
    let adv = str_of(&s["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]);
    assert!(
        adv.split(',').any(|l| l.ends_with(&format!("://{}", cfg.kafka.brokers))),
        "{} not in {adv}",
        cfg.kafka.brokers
    );
    let script = s["topics"]["command"].as_sequence().unwrap().iter().map(str_of).collect::<Vec<_>>().join("\n");
    let k = &cfg.kafka;
    for t in [&k.input_topic, &k.alerts_topic, &k.dlq_topic, &k.standing_topic] {
        let line = script
            .lines()
            .find(|l| l.contains(&format!("--topic {t} ")))
            .unwrap_or_else(|| panic!("topic {t} not created"));
        assert_eq!(t == &k.standing_topic, line.contains("cleanup.policy=compact"), "{line}");
    }

    // Prometheus: both files in one directory (rule_files is relative) and the right target.
    let prom = yaml("deploy/prometheus/prometheus.yml");
    let pm = mounts(&s["prometheus"]);
    let dst = |f: &str| pm.iter().find(|(src, _)| src.ends_with(f)).map(|(_, d)| PathBuf::from(d)).unwrap();
    let rules = prom["rule_files"].as_sequence().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(dst("prometheus.yml").parent().unwrap().join(str_of(&rules[0])), dst("alerts.yml"));
    let job = prom["scrape_configs"].as_sequence().unwrap().iter().find(|j| j["job_name"] == "sellerguard");
    let job = job.expect("prometheus.yml has a `sellerguard` scrape job");
    assert_eq!(str_of(&job["static_configs"][0]["targets"][0]), format!("sellerguard:{}", img.port));
    assert_eq!(cfg.service.metrics_addr.rsplit(':').next().unwrap(), img.port.to_string());

    // Grafana: the provider reads where the dashboard is mounted, on the data source it defaults to.
    let gm = mounts(&s["grafana"]);
    let dash_dst = gm.iter().find(|(src, _)| src.ends_with("sellerguard.json")).map(|(_, d)| d.clone()).unwrap();
    let prov = yaml("deploy/grafana/provisioning/dashboards/sellerguard.yml");
    assert_eq!(Path::new(&dash_dst).parent().unwrap(), Path::new(&str_of(&prov["providers"][0]["options"]["path"])));
    assert!(gm.iter().any(|(src, d)| src.ends_with("provisioning") && d == "/etc/grafana/provisioning"), "{gm:?}");
    let ds = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(str_of(&ds["datasources"][0]["url"]), "http://prometheus:9090");
    let dash: Json =
        serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/grafana/sellerguard.json")).unwrap())
            .unwrap();
    let var = dash["templating"]["list"].as_array().unwrap().iter().find(|v| v["type"] == "datasource").unwrap();
    assert_eq!(var["current"]["value"].as_str().unwrap(), str_of(&ds["datasources"][0]["uid"]));
}

fn labels_within(selector: &Yaml, labels: &Yaml, what: &str) {
    for (k, v) in selector.as_mapping().unwrap_or_else(|| panic!("{what}: no selector")) {
        assert_eq!(&labels[k.as_str().unwrap()], v, "{what} selects {k:?}={v:?}, which the target lacks");
    }
}

pub fn check_k8s() {
    let load = |f: &str| yaml(&format!("deploy/k8s/{f}"));
    let files = ["configmap.yaml", "secret.yaml", "deployment.yaml", "service.yaml", "pdb.yaml", "servicemonitor.yaml"];
    for f in files {
        assert!(load(f)["metadata"].get("namespace").is_none(), "{f} names a namespace");
    }
    let kust: BTreeSet<String> =
        load("kustomization.yaml")["resources"].as_sequence().unwrap().iter().map(str_of).collect();
    let want: BTreeSet<String> = files[..5].iter().map(|f| f.to_string()).collect();
    assert_eq!(kust, want, "kustomization lists every manifest but the ServiceMonitor (needs the operator's CRD)");
    let [cm, secret, dep, svc, pdb, sm] = files.map(load);
    let img = image();

    // Selectors find what they are meant to.
    let pod = &dep["spec"]["template"];
    labels_within(&dep["spec"]["selector"]["matchLabels"], &pod["metadata"]["labels"], "Deployment");
    labels_within(&svc["spec"]["selector"], &pod["metadata"]["labels"], "Service");
    labels_within(&pdb["spec"]["selector"]["matchLabels"], &pod["metadata"]["labels"], "PodDisruptionBudget");
    labels_within(&sm["spec"]["selector"]["matchLabels"], &svc["metadata"]["labels"], "ServiceMonitor");

    // One port, the image's, named and used by the Service, the ServiceMonitor, the probes, the scrape annotations.
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["ports"].as_sequence().unwrap().len(), 1);
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(img.port.into()));
    let port = str_of(&c["ports"][0]["name"]);
    assert_eq!(str_of(&svc["spec"]["ports"][0]["targetPort"]), port);
    assert_eq!(str_of(&sm["spec"]["endpoints"][0]["port"]), str_of(&svc["spec"]["ports"][0]["name"]));
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(str_of(&c[probe]["httpGet"]["path"]), "/healthz", "{probe}");
        assert_eq!(str_of(&c[probe]["httpGet"]["port"]), port, "{probe}");
    }
    assert_eq!(str_of(&pod["metadata"]["annotations"]["prometheus.io/port"]), img.port.to_string());
    let env = c["env"].as_sequence().unwrap().iter().find(|e| e["name"] == "SELLERGUARD_METRICS_ADDR").unwrap();
    assert!(str_of(&env["value"]).ends_with(&format!(":{}", img.port)));

    // Non-root (the image's uid), read-only root filesystem, no privilege escalation.
    let psc = &pod["spec"]["securityContext"];
    assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(psc["runAsUser"].as_u64(), Some(img.uid.into()));
    let sync = &pod["spec"]["initContainers"][0];
    assert_eq!(str_of(&sync["restartPolicy"]), "Always", "config-sync is a native sidecar: it keeps the file current");
    for ctr in [c, sync] {
        assert_eq!(ctr["securityContext"]["readOnlyRootFilesystem"].as_bool(), Some(true), "{}", str_of(&ctr["name"]));
        assert_eq!(ctr["securityContext"]["allowPrivilegeEscalation"].as_bool(), Some(false));
    }
    let args: Vec<String> = c["args"].as_sequence().unwrap().iter().map(str_of).collect();
    assert_eq!(args, ["run", "--config", &img.config_path], "the image's CMD");

    // The pod's files, simulated: volumes materialised in a temp dir, the config-sync sidecar run
    // with its mount paths mapped there. The main container's config (at the image's path) must
    // appear, pass check-config with the Secret (secrets masked) and without it (the volume is
    // optional), and follow an edit of the ConfigMap (hot reload).
    let fragment: toml::Table = toml::from_str(&str_of(&secret["stringData"]["kafka-auth.toml"])).unwrap();
    let password = fragment["kafka"]["common"]["sasl.password"].as_str().unwrap().to_string();
    for with_secret in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        for v in pod["spec"]["volumes"].as_sequence().unwrap() {
            let dir = tmp.path().join(str_of(&v["name"]));
            std::fs::create_dir(&dir).unwrap();
            let files = if v["configMap"]["name"] == cm["metadata"]["name"] {
                cm["data"].clone()
            } else if v["secret"]["secretName"] == secret["metadata"]["name"] {
                assert_eq!(v["secret"]["optional"].as_bool(), Some(true), "the Secret is optional");
                if with_secret {
                    secret["stringData"].clone()
                } else {
                    Yaml::Null
                }
            } else {
                assert!(v.get("emptyDir").is_some(), "unexpected volume {v:?}");
                Yaml::Null
            };
            for (k, text) in files.as_mapping().into_iter().flatten() {
                std::fs::write(dir.join(str_of(k)), str_of(text)).unwrap();
            }
        }
        let map = |ctr: &Yaml, s: &str| {
            let mut m: Vec<(String, PathBuf)> = (ctr["volumeMounts"].as_sequence().unwrap().iter())
                .map(|m| (str_of(&m["mountPath"]), tmp.path().join(str_of(&m["name"]))))
                .collect();
            // Longest first: /etc/sellerguard is a prefix of /etc/sellerguard-src.
            m.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
            m.iter().fold(s.to_string(), |s, (from, to)| s.replace(from, to.to_str().unwrap()))
        };
        let command = |ctr: &Yaml, key: &Yaml| -> Command {
            let argv: Vec<String> = key.as_sequence().unwrap().iter().map(|a| map(ctr, &str_of(a))).collect();
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        };
        // The sidecar's startup probe: the service starts once it passes.
        let startup = || command(sync, &sync["startupProbe"]["exec"]["command"]).status().unwrap();
        assert!(!startup().success(), "the service may not start before the file exists");
        let _sidecar = super::Reaped(command(sync, &sync["command"]).spawn().unwrap());
        let config = PathBuf::from(map(c, &img.config_path));
        let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !ok() {
                assert!(std::time::Instant::now() < deadline, "config-sync: {what}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        };
        wait_for("the startup probe never passed", &|| startup().success());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "config readable by its owner only");
        let check = || run_ok(Command::new(super::sellerguard_bin()).arg("check-config").arg("--config").arg(&config));
        let report = String::from_utf8_lossy(&check().stdout).to_string();
        assert_eq!(report.contains("SASL_SSL"), with_secret, "{report}");
        assert!(!report.contains(&password), "the password is masked");
        if with_secret {
            // An edit of the ConfigMap reaches the file (kubelet replaces the mounted file).
            let key = str_of(cm["data"].as_mapping().unwrap().keys().next().unwrap());
            let src = tmp.path().join("config-src").join(key);
            let edited = std::fs::read_to_string(&src).unwrap() + "\n[alerts]\ncooldown_hours = 12.0\n";
            std::fs::write(&src, edited).unwrap();
            let has_edit = || std::fs::read_to_string(&config).unwrap_or_default().contains("cooldown_hours = 12.0");
            wait_for("a ConfigMap edit never reached the file", &has_edit);
            check();
        }
    }
}
