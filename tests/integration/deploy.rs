//! The files an operator deploys with (`deploy/`, `docker-compose.yml`) agree
//! with the worker: the alerting rules are complete, every metric that they
//! and the Grafana dashboard use is one a freshly started worker exports, the
//! Kubernetes pod outlives the worker's own shutdown grace and probes the
//! right endpoints, and the local compose file stays on the loopback
//! interface. The rules also go through `promtool` where it is installed
//! (Debian's `prometheus` package has it; nothing here installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use crate::helpers::*;

const ALERTS: &str = "deploy/prometheus/alerts.yml";
const DASHBOARD: &str = "deploy/grafana/jobsync.json";
const DEPLOYMENT: &str = "deploy/kubernetes/deployment.yaml";
const CONFIGMAP: &str = "deploy/kubernetes/configmap.yaml";
const SECRET: &str = "deploy/kubernetes/secret.example.yaml";
const COMPOSE: &str = "docker-compose.yml";
const DOCKERFILE: &str = "Dockerfile";

/// Every metric family the worker exports, by the name in `# TYPE` lines
/// (README, "Operations", "Endpoints"). The live test below holds the worker to
/// this list; the alerts and the dashboard may use nothing else.
pub const KNOWN: &[&str] = &[
    "jobsync_messages_total",
    "jobsync_apply_duration_seconds",
    "jobsync_batch_size",
    "jobsync_outbox_pending",
    "jobsync_outbox_oldest_age_seconds",
    "jobsync_notifications_published_total",
    "jobsync_events_published_total",
    "jobsync_expired_total",
    "jobsync_cpr_redactions_total",
    "jobsync_broker_reconnects_total",
    "jobsync_build_info",
    "jobsync_rejections_total",
    "jobsync_dead_letters",
    "jobsync_end_to_end_lag_seconds",
    "jobsync_promises_missed_total",
    "jobsync_promises_open",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
];

fn read(path: &str) -> String {
    let full: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn yaml(path: &str) -> Yaml {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of a multi-document YAML file.
fn yaml_documents(path: &str) -> Vec<Yaml> {
    use serde::Deserialize;
    let text = read(path);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn dashboard() -> Json {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

/// The string at `path` (keys, or indexes into sequences, as strings) in
/// `doc`.
fn str_at<'a>(doc: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    at(doc, path)?.as_str()
}

fn at<'a>(doc: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter()
        .try_fold(doc, |node, key| match key.parse::<usize>() {
            Ok(i) if node.is_sequence() => node.get(i),
            _ => node.get(*key),
        })
}

/// The alerting rules, each as (alert name, rule).
fn alert_rules() -> Vec<(String, Yaml)> {
    let doc = yaml(ALERTS);
    let groups = doc["groups"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{ALERTS}: no `groups` list"));
    assert!(!groups.is_empty(), "{ALERTS}: no group");
    let mut rules = Vec::new();
    for group in groups {
        let name = group["name"].as_str().unwrap_or("");
        assert!(!name.is_empty(), "{ALERTS}: a group without a name");
        let list = group["rules"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{ALERTS}: group {name} has no `rules` list"));
        assert!(!list.is_empty(), "{ALERTS}: group {name} has no rule");
        for rule in list {
            let alert = str_at(rule, &["alert"])
                .unwrap_or_else(|| panic!("{ALERTS}: a rule in {name} is no alert: {rule:?}"));
            rules.push((alert.to_owned(), rule.clone()));
        }
    }
    rules
}

/// A Prometheus duration: one or more of a number and a unit, e.g. `5m` or
/// `1h30m`.
fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

#[test]
fn every_alert_has_an_expression_a_duration_a_severity_and_a_summary() {
    let rules = alert_rules();
    let mut names = BTreeSet::new();
    for (alert, rule) in &rules {
        assert!(names.insert(alert.clone()), "alert {alert} appears twice");
        let field = |path: &[&str]| {
            str_at(rule, path)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| panic!("alert {alert} has no {}", path.join(".")))
        };
        field(&["expr"]);
        let for_ = field(&["for"]);
        assert!(
            is_duration(for_),
            "alert {alert}: `for: {for_}` is no duration"
        );
        let severity = field(&["labels", "severity"]);
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "alert {alert}: severity {severity}"
        );
        field(&["annotations", "summary"]);
        field(&["annotations", "description"]);
        let runbook = field(&["annotations", "runbook_url"]);
        assert!(
            runbook.ends_with("#troubleshooting"),
            "alert {alert}: the runbook is the README's Troubleshooting section, not {runbook}"
        );
    }
}

/// The metric names in a PromQL expression, histogram series (`_bucket`,
/// `_sum`, `_count`) by their family, with the suffixes used; string literals
/// (label values) are skipped.
fn metric_names(expr: &str, out: &mut BTreeMap<String, BTreeSet<&'static str>>) {
    let mut chars = expr.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if matches!(c, '"' | '\'' | '`') {
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                if d == c && !escaped {
                    break;
                }
                escaped = d == '\\' && !escaped;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    end = i + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &expr[start..end];
            if word.starts_with("jobsync_") || word.starts_with("process_") {
                let (family, suffix) = ["_bucket", "_sum", "_count"]
                    .into_iter()
                    .find_map(|s| word.strip_suffix(s).map(|f| (f, s)))
                    .unwrap_or((word, ""));
                out.entry(family.to_owned()).or_default().insert(suffix);
            }
        }
    }
}

/// Every PromQL expression of the dashboard: its panels' targets (rows
/// included) and its template variables' queries.
fn dashboard_exprs(dashboard: &Json) -> Vec<String> {
    fn panels(list: &Json, out: &mut Vec<String>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_owned());
                }
            }
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            let query = var["query"]["query"].as_str().or(var["query"].as_str());
            out.extend(query.map(str::to_owned));
        }
    }
    out
}

/// Every metric family the alerts and the dashboard use, with the
/// histogram suffixes used and where.
fn referenced() -> BTreeMap<String, (BTreeSet<&'static str>, BTreeSet<&'static str>)> {
    let mut out: BTreeMap<String, (BTreeSet<&'static str>, BTreeSet<&'static str>)> =
        BTreeMap::new();
    let mut add = |file: &'static str, expr: &str| {
        let mut names = BTreeMap::new();
        metric_names(expr, &mut names);
        for (name, suffixes) in names {
            let entry = out.entry(name).or_default();
            entry.0.extend(suffixes);
            entry.1.insert(file);
        }
    };
    for (alert, rule) in alert_rules() {
        let expr = str_at(&rule, &["expr"]).unwrap_or_else(|| panic!("{alert}: no expr"));
        add(ALERTS, expr);
    }
    for expr in dashboard_exprs(&dashboard()) {
        add(DASHBOARD, &expr);
    }
    out
}

#[test]
fn the_alerts_and_the_dashboard_use_only_metrics_the_worker_exports() {
    let used = referenced();
    assert!(
        used.len() >= 10,
        "the metric names were not found: {used:?}"
    );
    let unknown: Vec<_> = used
        .iter()
        .filter(|(name, _)| !KNOWN.contains(&name.as_str()))
        .map(|(name, (_, files))| format!("{name} (in {files:?})"))
        .collect();
    assert!(unknown.is_empty(), "unknown metrics: {unknown:?}");
    // And the dashboard shows every one of them.
    let shown: BTreeSet<String> = used
        .iter()
        .filter(|(_, (_, files))| files.contains(DASHBOARD))
        .map(|(name, _)| name.clone())
        .collect();
    let missing: Vec<_> = KNOWN.iter().filter(|m| !shown.contains(**m)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard does not show {missing:?}"
    );
}

#[test]
fn the_dashboard_is_schema_39_on_a_prometheus_data_source_variable() {
    let d = dashboard();
    assert_eq!(d["schemaVersion"], 39);
    assert_eq!(d["uid"], "jobsync");
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let ds = vars
        .iter()
        .find(|v| v["name"] == "DS_PROMETHEUS")
        .expect("a DS_PROMETHEUS variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let mut ids = BTreeSet::new();
    let mut check = |panel: &Json| {
        let title = panel["title"].as_str().unwrap_or("?").to_owned();
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{title} has no id"));
        assert!(ids.insert(id), "panel id {id} of {title} twice");
        if panel["type"] == "row" {
            return;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            assert!(
                !t["expr"].as_str().unwrap_or("").trim().is_empty(),
                "{title}: empty expr"
            );
        }
    };
    for panel in d["panels"].as_array().expect("panels") {
        check(panel);
        for inner in panel["panels"].as_array().into_iter().flatten() {
            check(inner);
        }
    }
}

/// A `jobsync run` process, killed when dropped (also when an assertion
/// fails), with its standard error in a file.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(args: &[String]) -> Running {
        let log = std::env::temp_dir().join(format!(
            "jobsync-deploy-test-{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_jobsync"))
            .args(args)
            .env("JOBSYNC_LOG_FORMAT", "json")
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("jobsync starts");
        Running { child, log }
    }

    /// The last lines of its standard error, for a failure message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The metric families in a Prometheus text exposition: name → type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// The strongest check of the two files: a fresh worker process (the binary,
/// so that its /metrics is its own, process_* included) exports, once ready,
/// every family they use, histograms as histograms, and every family of
/// [`KNOWN`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_exports_every_metric_the_alerts_and_the_dashboard_use_from_start_up() {
    let env = TestEnv::new().await;
    let port = free_port();
    // The subcommand first: its settings follow it.
    let mut args = vec!["run".to_owned()];
    args.extend(env.args.iter().cloned());
    args.extend(["--http-addr".to_owned(), format!("127.0.0.1:{port}")]);
    let worker = Running::start(&args);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http_get(port, "/readyz").await.map(|r| r.0) != Some(200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker did not become ready within 30 s; its log ends:\n{}",
            worker.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let used = referenced();
    let wanted: BTreeSet<&str> = used
        .keys()
        .map(String::as_str)
        .chain(KNOWN.iter().copied())
        .collect();
    // Read until every family is there, for a few seconds at most: a gauge
    // that a task of the worker sets just after it turned ready counts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let (text, exported) = loop {
        let text = match http_get(port, "/metrics").await {
            Some((200, body)) => body,
            other => panic!("/metrics answered {other:?}"),
        };
        let exported = families(&text);
        if wanted.iter().all(|m| exported.contains_key(*m))
            || tokio::time::Instant::now() >= deadline
        {
            break (text, exported);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let missing: Vec<String> = wanted
        .iter()
        .filter(|m| !exported.contains_key(**m))
        .map(|m| match used.get(*m) {
            Some((_, files)) => format!("{m} (used in {files:?})"),
            None => format!("{m} (in KNOWN)"),
        })
        .collect();
    assert!(
        missing.is_empty(),
        "a worker just started does not export {missing:?}:\n{text}"
    );
    for (name, (suffixes, files)) in &used {
        if suffixes.iter().any(|s| !s.is_empty()) {
            assert_eq!(
                exported[name], "histogram",
                "{files:?} use {name} as a histogram ({suffixes:?})"
            );
        }
    }
}

/// The Deployment, its one container and the Service of deployment.yaml.
fn deployment() -> (Yaml, Yaml, Yaml) {
    let docs = yaml_documents(DEPLOYMENT);
    let kind = |k: &str| {
        let found: Vec<&Yaml> = docs.iter().filter(|d| d["kind"] == k).collect();
        assert_eq!(found.len(), 1, "{DEPLOYMENT}: one {k}");
        found[0].clone()
    };
    let deployment = kind("Deployment");
    let service = kind("Service");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    let container = containers[0].clone();
    (deployment, container, service)
}

/// A container's `env` as name → value.
fn container_env(container: &Yaml) -> BTreeMap<String, String> {
    container["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn configmap() -> BTreeMap<String, String> {
    let doc = yaml(CONFIGMAP);
    assert_eq!(doc["kind"], "ConfigMap");
    doc["data"]
        .as_mapping()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            let k = k.as_str().expect("a string key").to_owned();
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("{CONFIGMAP}: {k} is not a string (quote it)"))
                .to_owned();
            (k, v)
        })
        .collect()
}

/// A container port, by number or by name.
fn port_number(container: &Yaml, port: &Yaml) -> Option<u64> {
    if let Some(n) = port.as_u64() {
        return Some(n);
    }
    let name = port.as_str()?;
    container["ports"]
        .as_sequence()?
        .iter()
        .find(|p| p["name"] == name)?["containerPort"]
        .as_u64()
}

#[test]
fn the_pod_outlives_the_workers_grace_and_probes_healthz_and_readyz() {
    let (deployment, container, service) = deployment();
    let pod = &deployment["spec"]["template"]["spec"];
    let env = container_env(&container);
    let config = configmap();

    let pod_grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let grace: u64 = env
        .get("JOBSYNC_SHUTDOWN_GRACE_S")
        .expect("the container sets JOBSYNC_SHUTDOWN_GRACE_S")
        .parse()
        .expect("JOBSYNC_SHUTDOWN_GRACE_S is a number");
    assert!(
        pod_grace > grace,
        "terminationGracePeriodSeconds {pod_grace} must exceed JOBSYNC_SHUTDOWN_GRACE_S {grace}"
    );
    // Set once, next to what they must agree with (env would win over the
    // ConfigMap anyway, but two values mislead).
    for key in ["JOBSYNC_SHUTDOWN_GRACE_S", "JOBSYNC_HTTP_ADDR"] {
        assert!(!config.contains_key(key), "{CONFIGMAP} sets {key} too");
    }

    assert_eq!(
        env.get("JOBSYNC_HTTP_ADDR").map(String::as_str),
        Some("0.0.0.0:8080"),
        "the endpoints listen on the pod's address"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(port_number(&container, &get["port"]), Some(8080), "{probe}");
    }
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "8080");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(service_port["port"].as_u64(), Some(8080));
    assert_eq!(
        port_number(&container, &service_port["targetPort"]),
        Some(8080)
    );

    assert_eq!(
        container["image"].as_str(),
        Some(format!("jobsync:{}", env!("CARGO_PKG_VERSION")).as_str()),
        "the image is tagged with the crate's version"
    );
    assert_eq!(
        config.get("JOBSYNC_LOG_FORMAT").map(String::as_str),
        Some("json")
    );

    // The pod runs as the image's own non-root user, read-only.
    let user = read(DOCKERFILE)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("USER "))
        .next_back() // the last USER, the runtime stage's
        .expect("the Dockerfile sets USER")
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse::<u64>()
        .expect("a numeric USER");
    assert_ne!(user, 0, "the image runs as root");
    let security = &pod["securityContext"];
    assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(security["runAsUser"].as_u64(), Some(user));
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
}

#[test]
fn the_kubernetes_files_set_only_settings_the_worker_knows() {
    let help = Command::new(env!("CARGO_BIN_EXE_jobsync"))
        .args(["run", "--help"])
        .output()
        .expect("jobsync run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let (_, container, _) = deployment();
    let secret = yaml(SECRET);
    let secret_keys = secret["stringData"]
        .as_mapping()
        .expect("stringData")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned));
    let keys: BTreeSet<String> = container_env(&container)
        .into_keys()
        .chain(configmap().into_keys())
        .chain(secret_keys)
        .filter(|k| k.starts_with("JOBSYNC_"))
        .collect();
    for key in ["JOBSYNC_AMQP_URL", "JOBSYNC_DATABASE_URL"] {
        assert!(keys.contains(key), "{SECRET} has {key}");
    }
    let unknown: Vec<_> = keys
        .iter()
        .filter(|k| !help.contains(&format!("env: {k}")))
        .collect();
    assert!(
        unknown.is_empty(),
        "`jobsync run --help` does not know {unknown:?}:\n{help}"
    );
}

#[test]
fn compose_publishes_on_loopback_only_and_pins_its_images() {
    let compose = yaml(COMPOSE);
    let services = compose["services"].as_mapping().expect("services");
    for (name, service) in services {
        let name = name.as_str().unwrap_or("?");
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().unwrap_or_else(|| panic!("{name}: {port:?}"));
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} publishes {port} beyond the loopback interface"
            );
        }
        if !service["build"].is_null() {
            continue; // the worker, built from this repository
        }
        let image = service["image"].as_str().expect("image");
        let (repo, tag) = image.split_once(':').expect("a tagged image");
        // How many numbers a release's version has: RabbitMQ x.y.z,
        // PostgreSQL (since 10) x.y.
        let parts = match repo {
            "rabbitmq" => 3,
            "postgres" => 2,
            other => panic!("{COMPOSE}: no pinning rule for {other}"),
        };
        let version = tag.split('-').next().unwrap();
        assert!(
            version.split('.').count() == parts
                && version.split('.').all(|n| n.parse::<u32>().is_ok()),
            "{image} is not pinned to one release"
        );
    }
}

/// `promtool` on PATH, or `None` (the test then says so and passes).
fn promtool(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool").args(args).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("promtool is not installed: skipped (Debian: apt-get install prometheus)");
            None
        }
        Err(e) => panic!("promtool: {e}"),
    }
}

#[test]
fn promtool_accepts_the_rules_and_the_dashboards_queries() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join(ALERTS);
    let Some(out) = promtool(&["check", "rules", rules.to_str().unwrap()]) else {
        return;
    };
    assert!(
        out.status.success(),
        "promtool check rules {ALERTS}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The dashboard's queries as recording rules, with Grafana's variables
    // replaced, so that promtool parses them too.
    // (Not the variables' label_values(), which is Grafana's.)
    let exprs: Vec<Yaml> = dashboard_exprs(&dashboard())
        .iter()
        .filter(|expr| !expr.starts_with("label_values("))
        .enumerate()
        .map(|(i, expr)| {
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$job", "jobsync")
                .replace("$instance", ".*");
            let mut rule = serde_yaml_ng::Mapping::new();
            rule.insert("record".into(), format!("dashboard:query_{i}").into());
            rule.insert("expr".into(), expr.into());
            Yaml::Mapping(rule)
        })
        .collect();
    let mut group = serde_yaml_ng::Mapping::new();
    group.insert("name".into(), "dashboard".into());
    group.insert("rules".into(), Yaml::Sequence(exprs));
    let mut doc = serde_yaml_ng::Mapping::new();
    doc.insert("groups".into(), Yaml::Sequence(vec![Yaml::Mapping(group)]));
    let file = std::env::temp_dir().join(format!(
        "jobsync-dashboard-queries-{}.yml",
        std::process::id()
    ));
    std::fs::write(&file, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    let out = promtool(&["check", "rules", file.to_str().unwrap()]).unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "promtool on the queries of {DASHBOARD}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metric_names_are_read_from_expressions() {
    let mut names = BTreeMap::new();
    metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(jobsync_end_to_end_lag_seconds_bucket{job="jobsync_x"}[5m]))) > 5 and process_open_fds"#,
        &mut names,
    );
    let found: Vec<_> = names.keys().map(String::as_str).collect();
    assert_eq!(
        found,
        ["jobsync_end_to_end_lag_seconds", "process_open_fds"]
    );
    assert!(names["jobsync_end_to_end_lag_seconds"].contains("_bucket"));
    assert!(is_duration("1h30m") && is_duration("0m") && !is_duration("5") && !is_duration("m"));
}
