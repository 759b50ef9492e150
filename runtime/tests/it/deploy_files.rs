//! The deployment files (dashboards, Prometheus rules and their tests, Logstash pipeline and
//! template, systemd unit, example config) against what the runtime really emits and accepts.
//!
//! Each check is also run against a deliberately broken copy of the files, to prove it can fail.
//! The same checks against a real `/metrics` scrape live in `common/deploy_check.rs`, for the
//! end-to-end tests.

use crate::common::deploy_check;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swf_runtime::telemetry::fields;
use swf_runtime::telemetry::metrics::{self, Kind};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ has a parent")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A scratch copy of everything the checks read.
fn scratch_copy() -> tempfile::TempDir {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    for sub in ["dashboards", "deploy", "logstash"] {
        copy_dir(&root.join(sub), &dir.path().join(sub));
    }
    let fields_rs = dir.path().join("runtime/src/telemetry");
    std::fs::create_dir_all(&fields_rs).unwrap();
    std::fs::copy(
        root.join("runtime/src/telemetry/fields.rs"),
        fields_rs.join("fields.rs"),
    )
    .unwrap();
    dir
}

/// Replaces the first occurrence of `from` in a file of the scratch copy.
fn break_file(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = read(&path);
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn assert_fails_mentioning(result: Result<(), Vec<String>>, needle: &str) {
    let errors = result.expect_err("the check should fail on the broken copy");
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "no error mentions {needle:?}: {errors:#?}"
    );
}

/// A scrape with every metric of `metrics::ALL`, every label set, rendered as the exporter does.
fn synthetic_scrape(skip_metric: Option<&str>, skip_label: Option<(&str, &str)>) -> String {
    let mut out = String::new();
    for def in metrics::ALL {
        if Some(def.name) == skip_metric {
            continue;
        }
        let labels: Vec<String> = def
            .labels
            .iter()
            .filter(|l| skip_label != Some((def.name, **l)))
            .map(|l| format!("{l}=\"x\""))
            .collect();
        let joined = labels.join(",");
        let kind = match def.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} {kind}\n",
            def.name, def.help, def.name
        ));
        if def.kind == Kind::Histogram {
            let sep = if joined.is_empty() { "" } else { "," };
            for le in ["1", "+Inf"] {
                out.push_str(&format!(
                    "{}_bucket{{{joined}{sep}le=\"{le}\"}} 1\n",
                    def.name
                ));
            }
            out.push_str(&format!("{}_sum{{{joined}}} 0.5\n", def.name));
            out.push_str(&format!("{}_count{{{joined}}} 1\n", def.name));
        } else if joined.is_empty() {
            out.push_str(&format!("{} 1\n", def.name));
        } else {
            out.push_str(&format!("{}{{{joined}}} 1\n", def.name));
        }
    }
    out
}

#[test]
fn deploy_files_query_only_defined_metrics_and_labels() {
    let root = repo_root();
    if let Err(errors) = deploy_check::check_against_definitions(&root) {
        panic!(
            "deployment files name what the runtime does not emit:\n{}",
            errors.join("\n")
        );
    }
    let used = deploy_check::metric_names_used_by_deploy_files(&root);
    for expected in [
        "swf_stage_duration_seconds_bucket",
        "swf_workflow_executions_total",
        "swf_polls_total",
        "swf_log_lines_dropped_total",
    ] {
        assert!(used.contains(expected), "{expected} not found in {used:?}");
    }
}

#[test]
fn every_metric_the_runtime_emits_is_on_a_dashboard() {
    let root = repo_root();
    let queries = deploy_check::collect_queries(&root);
    let on_dashboards: BTreeSet<String> = queries
        .usages
        .iter()
        .filter(|u| u.location.starts_with("dashboards/"))
        .map(|u| {
            let s = u.series.as_str();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| s.strip_suffix(suffix))
                .unwrap_or(s)
                .to_string()
        })
        .collect();
    let recorded_sources: BTreeSet<String> = queries
        .recorded
        .keys()
        .filter_map(|r| r.split(':').nth(1).map(str::to_string))
        .collect();
    let unseen: Vec<&str> = metrics::ALL
        .iter()
        .map(|m| m.name)
        .filter(|n| !on_dashboards.contains(*n) && !recorded_sources.contains(*n))
        .collect();
    assert!(unseen.is_empty(), "metrics no dashboard shows: {unseen:?}");
}

#[test]
fn stage_latency_thresholds_sit_on_histogram_bucket_bounds() {
    // On a bound, "p95 > threshold" means exactly "more than 5% of stages took longer".
    let alerts = read(&repo_root().join("deploy/prometheus/rules/alerts.yml"));
    let mut thresholds = Vec::new();
    for entry in deploy_check::yaml_rule_entries(&alerts) {
        if entry.owner != "SwfStageLatencyHigh" || entry.key != "expr" {
            continue;
        }
        let (_, threshold) = entry.value.rsplit_once('>').expect("a > comparison");
        let threshold: f64 = threshold.trim().parse().expect("a number");
        assert!(
            metrics::BUCKETS_SECONDS.contains(&threshold),
            "threshold {threshold} is not a bucket bound of {:?}",
            metrics::BUCKETS_SECONDS
        );
        thresholds.push(threshold);
    }
    assert_eq!(
        thresholds,
        [45.0, 10.0, 20.0, 15.0],
        "one threshold per VideoProcessing stage"
    );
}

#[test]
fn logstash_files_name_only_runtime_fields() {
    let root = repo_root();
    if let Err(errors) = deploy_check::check_logstash_fields(&root) {
        panic!(
            "logstash/ names fields the runtime does not log:\n{}",
            errors.join("\n")
        );
    }
    // The parser of fields.rs must see the constants the runtime uses.
    let known = deploy_check::runtime_field_names(&root);
    for f in fields::TASK_IDENTITY
        .iter()
        .chain(fields::ACTIVITY_IDENTITY)
    {
        assert!(known.contains(*f), "{f} not read from fields.rs");
    }
    assert!(known.contains(fields::TIMESTAMP) && known.contains(fields::DURATION_MS));

    let template: serde_json::Value =
        serde_json::from_str(&read(&root.join("logstash/index-template.json"))).unwrap();
    let props = template.pointer("/template/mappings/properties").unwrap();
    for id in [
        fields::MEDIA_UUID,
        fields::USER_UUID,
        fields::WORKFLOW_ID,
        fields::RUN_ID,
        fields::ACTIVITY_ID,
    ] {
        assert_eq!(props[id]["type"], "keyword", "{id} must be a keyword");
    }
    assert_eq!(props[fields::TIMESTAMP]["type"], "date");
    let duration = props[fields::DURATION_MS]["type"].as_str().unwrap();
    assert!(
        ["long", "float", "double"].contains(&duration),
        "duration_ms is {duration}"
    );

    let pipeline = read(&root.join("logstash/pipeline.conf"));
    for needle in [
        "codec => json_lines",
        "date {",
        "swf-runtime-%{+YYYY.MM.dd}",
        "elasticsearch {",
    ] {
        assert!(pipeline.contains(needle), "pipeline.conf lacks {needle:?}");
    }
    let piped = deploy_check::logstash_pipeline_fields(&root);
    for id in [
        fields::MEDIA_UUID,
        fields::USER_UUID,
        fields::WORKFLOW_ID,
        fields::RUN_ID,
    ] {
        assert!(
            piped.contains(id),
            "pipeline.conf does not keep {id} as a string"
        );
    }
}

#[test]
fn the_checks_fail_on_a_broken_copy() {
    // Each case breaks one name in a fresh copy and expects the check to name it.
    type Check = fn(&Path) -> Result<(), Vec<String>>;
    let definitions: Check = deploy_check::check_against_definitions;
    let logstash: Check = deploy_check::check_logstash_fields;
    let cases: &[(&str, &str, &str, Check, &str)] = &[
        // A metric typo in a dashboard.
        (
            "dashboards/workers-and-hosts.json",
            "swf_polls_total{",
            "swf_pols_total{",
            definitions,
            "swf_pols_total",
        ),
        // A label typo in an alert's grouping.
        (
            "deploy/prometheus/rules/alerts.yml",
            "sum by (activity_type, task_list) (increase(swf_activity_unknown_resource_total",
            "sum by (activity_type, tasklist) (increase(swf_activity_unknown_resource_total",
            definitions,
            "label tasklist",
        ),
        // A label a metric does not carry (polls have no activity_type).
        (
            "dashboards/workers-and-hosts.json",
            "rate(swf_polls_total{",
            "rate(swf_polls_total{activity_type=\\\"x\\\", ",
            definitions,
            "label activity_type is not a label of swf_polls_total",
        ),
        // A histogram queried without its suffix.
        (
            "deploy/prometheus/rules/recording.yml",
            "rate(swf_stage_duration_seconds_bucket[5m])",
            "rate(swf_stage_duration_seconds[5m])",
            definitions,
            "swf_stage_duration_seconds is not a metric",
        ),
        // A recorded series that no rule defines.
        (
            "dashboards/pipeline-overview.json",
            "swf_stage_duration_seconds:p95{",
            "swf_stage_duration_seconds:p96{",
            definitions,
            ":p96 is not defined by any recording rule",
        ),
        // A label a recording rule drops.
        (
            "deploy/prometheus/rules/alerts.yml",
            "p95{workflow_type=\"VideoProcessing\", activity_type=\"transcode\"}",
            "p95{workflow_type=\"VideoProcessing\", outcome=\"completed\"}",
            definitions,
            "label outcome is not kept",
        ),
        // A metric typo in a promtool test's input series.
        (
            "deploy/prometheus/tests/alerts_test.yml",
            "swf_log_lines_spooled_total{instance=\"host-a",
            "swf_log_line_spooled_total{instance=\"host-a",
            definitions,
            "swf_log_line_spooled_total",
        ),
        // A field typo in the Logstash pipeline and in the template.
        (
            "logstash/pipeline.conf",
            "[media_uuid]",
            "[media_uid]",
            logstash,
            "media_uid",
        ),
        (
            "logstash/index-template.json",
            "\"run_id\"",
            "\"runid\"",
            logstash,
            "runid",
        ),
    ];
    for (file, from, to, check, needle) in cases {
        let copy = scratch_copy();
        assert!(
            check(copy.path()).is_ok(),
            "the unbroken copy must pass ({file})"
        );
        break_file(copy.path(), file, from, to);
        assert_fails_mentioning(check(copy.path()), needle);
    }
}

#[test]
fn scrape_check_accepts_a_complete_scrape_and_names_what_is_missing() {
    let root = repo_root();
    if let Err(errors) = deploy_check::check_against_scrape(&root, &synthetic_scrape(None, None)) {
        panic!(
            "a scrape with every metric must pass:\n{}",
            errors.join("\n")
        );
    }
    assert_fails_mentioning(
        deploy_check::check_against_scrape(&root, &synthetic_scrape(Some("swf_polls_total"), None)),
        "swf_polls_total is not in the scrape",
    );
    assert_fails_mentioning(
        deploy_check::check_against_scrape(
            &root,
            &synthetic_scrape(None, Some(("swf_stage_duration_seconds", "activity_type"))),
        ),
        "label activity_type never appears on swf_stage_duration_seconds_bucket",
    );
    // A histogram rendered as a summary (no buckets) is not what the rules query.
    let summary_only: String = synthetic_scrape(None, None)
        .lines()
        .filter(|l| !l.starts_with("swf_stage_duration_seconds_bucket"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_fails_mentioning(
        deploy_check::check_against_scrape(&root, &summary_only),
        "swf_stage_duration_seconds_bucket is not in the scrape",
    );
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_is_described_and_has_a_runbook_section() {
    let root = repo_root();
    let runbook = read(&root.join("deploy/RUNBOOK.md"));
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(anchor)
        .collect();
    let alerts = read(&root.join("deploy/prometheus/rules/alerts.yml"));
    // Split into one chunk per rule: each must carry its own annotations.
    let chunks: Vec<&str> = alerts.split("- alert: ").skip(1).collect();
    assert!(
        chunks.len() >= 10,
        "expected the full alert set, found {}",
        chunks.len()
    );
    let mut names = BTreeSet::new();
    for chunk in chunks {
        let name = chunk.lines().next().unwrap().trim();
        names.insert(name.to_string());
        for key in ["summary:", "description:", "runbook_url:", "severity:"] {
            assert!(chunk.contains(key), "alert {name} lacks {key}");
        }
        let url_line = chunk.lines().find(|l| l.contains("runbook_url:")).unwrap();
        let fragment = url_line
            .split('#')
            .nth(1)
            .map(|f| f.trim_end_matches('"'))
            .unwrap_or_else(|| panic!("alert {name}: runbook_url has no #anchor"));
        assert_eq!(
            fragment,
            anchor(name),
            "alert {name} links to another section"
        );
        assert!(
            anchors.contains(fragment),
            "RUNBOOK.md has no section {fragment} for {name}"
        );
    }
    for needed in [
        "SwfStageLatencyHigh",
        "SwfWorkflowFailureRateHigh",
        "SwfActivityTimeouts",
        "SwfScheduleToStartBacklog",
        "SwfNoSuccessfulPolls",
        "SwfLogLinesDropped",
    ] {
        assert!(names.contains(needed), "alert {needed} missing");
    }
}

/// `Key=value` lines of a unit file (every occurrence).
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn systemd_unit_outlasts_the_drain_and_is_hardened() {
    let root = repo_root();
    let unit = read(&root.join("deploy/systemd/swf-runtime.service"));
    let config: toml::Table =
        toml::from_str(&read(&root.join("deploy/config/swf-runtime.example.toml"))).unwrap();

    let drain = config["drain_timeout_secs"].as_integer().unwrap();
    let stop: i64 = unit_values(&unit, "TimeoutStopSec")[0].parse().unwrap();
    assert!(
        stop > drain,
        "TimeoutStopSec {stop} must exceed drain_timeout_secs {drain}"
    );

    for (key, value) in [
        ("NoNewPrivileges", "true"),
        ("ProtectSystem", "strict"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("User", "swf-runtime"),
    ] {
        assert_eq!(unit_values(&unit, key), [value], "{key}");
    }
    // Every folder the example config writes to must be writable under ProtectSystem=strict.
    let writable = unit_values(&unit, "ReadWritePaths").join(" ");
    let telemetry = config["telemetry"].as_table().unwrap();
    for dir in [
        config["data_dir"].as_str().unwrap(),
        telemetry["log_dir"].as_str().unwrap(),
        telemetry["logstash_spool_dir"].as_str().unwrap(),
    ] {
        assert!(
            writable
                .split_whitespace()
                .any(|w| Path::new(dir).starts_with(w.trim_start_matches('-'))),
            "{dir} is not under ReadWritePaths={writable}"
        );
    }
    let exec = unit_values(&unit, "ExecStart")[0];
    assert!(exec.contains("--config /etc/swf-runtime/swf-runtime.toml") && exec.ends_with(" run"));
}

#[test]
fn example_config_parses_as_the_runtime_config() {
    let root = repo_root();
    let text = read(&root.join("deploy/config/swf-runtime.example.toml"));
    let config: toml::Table = toml::from_str(&text).expect("valid TOML");
    // The [telemetry] and [pipeline] tables refuse unknown keys, like the whole config does.
    let telemetry: swf_runtime::telemetry::TelemetryConfig = config["telemetry"]
        .clone()
        .try_into()
        .unwrap_or_else(|err| panic!("[telemetry] does not match TelemetryConfig: {err}"));
    assert_eq!(telemetry.metrics_addr.port(), 9464);
    assert!(telemetry.logstash_addr.is_some() && telemetry.otlp_endpoint.is_some());
    let pipeline: activities::PipelineConfig = config["pipeline"]
        .clone()
        .try_into()
        .unwrap_or_else(|err| panic!("[pipeline] does not match PipelineConfig: {err}"));
    // The alert thresholds assume the seed job's nominal durations.
    assert_eq!(
        (
            pipeline.transcode_secs,
            pipeline.thumbnails_secs,
            pipeline.detect_faces_secs,
            pipeline.publish_secs
        ),
        (30.0, 5.0, 10.0, 8.0)
    );
    for key in ["domain", "drain_timeout_secs", "data_dir", "task_lists"] {
        assert!(config.contains_key(key), "example config lacks {key}");
    }
    // The whole file, as `swf-runtime --config` reads it (unknown keys refused, values checked).
    let whole = swf_runtime::config::Config::from_toml(&text)
        .unwrap_or_else(|err| panic!("the example config is refused by the runtime: {err}"));
    assert_eq!(whole.pipeline.time_scale, 1.0);
    assert_eq!(whole.drain_timeout_secs, 60);
}

#[test]
fn deploy_script_passes() {
    let root = repo_root();
    for tool in ["promtool", "prometheus", "python3"] {
        if !tool_or_skip(tool) {
            return;
        }
    }
    let out = Command::new("bash")
        .arg(root.join("scripts/test-deploy.sh"))
        .current_dir(&root)
        .output()
        .expect("run scripts/test-deploy.sh");
    assert!(
        out.status.success(),
        "scripts/test-deploy.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promql_reader_finds_selectors_and_the_labels_they_rely_on() {
    let labels_of = |parsed: &deploy_check::Parsed, series: &str| -> Vec<String> {
        let sel = parsed
            .selectors
            .iter()
            .find(|s| s.series == series)
            .unwrap_or_else(|| panic!("{series} not found in {parsed:?}"));
        sel.labels.iter().cloned().collect()
    };

    let p = deploy_check::parse_promql(
        r#"histogram_quantile(0.95, sum by (le, workflow_type) (rate(swf_x_seconds_bucket{a="1", b=~"$v"}[$__rate_interval])))"#,
    )
    .unwrap();
    assert_eq!(
        labels_of(&p, "swf_x_seconds_bucket"),
        ["a", "b", "le", "workflow_type"]
    );
    assert_eq!(
        p.by_labels.iter().collect::<Vec<_>>(),
        ["le", "workflow_type"]
    );

    // Trailing grouping, binary modifiers on both sides, offset and a nested paren group.
    let p = deploy_check::parse_promql(
        r#"sum(rate(swf_a_total[5m] offset 1h)) by (task_list) / on (instance) group_left (operation) (swf_b{z!="", y="a,b}"})"#,
    )
    .unwrap();
    assert_eq!(
        labels_of(&p, "swf_a_total"),
        ["instance", "operation", "task_list"]
    );
    assert_eq!(labels_of(&p, "swf_b"), ["instance", "operation", "y", "z"]);

    // A grouping applies inside its aggregation only.
    let p = deploy_check::parse_promql(
        r#"group by (task_list) (max_over_time(swf_p[1h])) unless (sum by (outcome) (rate(swf_q{job="j"}[5m])) > 0)"#,
    )
    .unwrap();
    assert_eq!(labels_of(&p, "swf_p"), ["task_list"]);
    assert_eq!(labels_of(&p, "swf_q"), ["job", "outcome"]);
    assert_eq!(p.selectors.len(), 2);

    assert!(deploy_check::parse_promql("sum(rate(x[5m])").is_err());
    assert!(deploy_check::parse_promql("x{a=\"1\"").is_err());

    let entries = deploy_check::yaml_rule_entries(
        "groups:\n  - name: g\n    rules:\n      - record: a:swf_x:p95\n        expr: histogram_quantile(0.95, x)\n      - alert: A\n        expr: |\n          sum(\n            y) > 1\n        for: 5m\n",
    );
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[0].owner_kind.as_str(), entries[0].owner.as_str()),
        ("record", "a:swf_x:p95")
    );
    assert_eq!(entries[1].owner, "A");
    assert_eq!(entries[1].value, "sum(\ny) > 1");
}

/// Whether `tool` is on PATH; in CI a missing tool is a failure, elsewhere the test is skipped.
fn tool_or_skip(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is missing in CI: run scripts/install-test-deps.sh first"
        );
        eprintln!("skipping: {tool} not installed (scripts/install-test-deps.sh installs it)");
    }
    found
}

/// Serves the current `body` as /metrics (any path) on 127.0.0.1, one request per connection.
fn serve_text(body: Arc<Mutex<String>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Detached: it dies with the test process; every connection is bounded by its timeouts.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = body.lock().unwrap().clone();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    addr
}

/// Stage histograms after `grown` runs of a known distribution, on top of 1,000 earlier stages
/// per bucket (high counts keep rate()'s extrapolation equal across buckets).
fn stage_histograms(grown: bool) -> String {
    let runs: &[(&str, &[(&str, u64)])] = &[
        (
            "transcode",
            &[("20", 0), ("30", 8), ("45", 10), ("+Inf", 10)],
        ),
        ("thumbnails", &[("2.5", 0), ("5", 4), ("+Inf", 4)]),
        ("detect_faces", &[("10", 0), ("15", 4), ("+Inf", 4)]),
        ("publish", &[("7.5", 0), ("10", 4), ("+Inf", 4)]),
    ];
    let mut out = String::from("# TYPE swf_stage_duration_seconds histogram\n");
    for (stage, buckets) in runs {
        let labels = format!(
            "workflow_type=\"VideoProcessing\",activity_type=\"{stage}\",outcome=\"completed\""
        );
        for (le, n) in *buckets {
            let count = 1000 + if grown { *n } else { 0 };
            out.push_str(&format!(
                "swf_stage_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}\n"
            ));
        }
        let total = 1000 + if grown { buckets.last().unwrap().1 } else { 0 };
        out.push_str(&format!(
            "swf_stage_duration_seconds_sum{{{labels}}} {}\n",
            total * 10
        ));
        out.push_str(&format!(
            "swf_stage_duration_seconds_count{{{labels}}} {total}\n"
        ));
    }
    out
}

#[test]
fn a_real_prometheus_computes_the_stage_quantiles_of_a_run() {
    if !tool_or_skip("prometheus") || !tool_or_skip("python3") {
        return;
    }
    let body = Arc::new(Mutex::new(stage_histograms(false)));
    let target = serve_text(body.clone());
    let run =
        deploy_check::PrometheusRun::start(&repo_root(), &target, &[], 4, Duration::from_secs(90))
            .expect("Prometheus scrapes the target");
    assert!(run.url().starts_with("http://127.0.0.1:"), "{}", run.url());
    // The "run": stages finish after Prometheus holds the baseline.
    *body.lock().unwrap() = stage_histograms(true);
    let results = run.results().expect("recording rules evaluated");

    // Linear interpolation inside the bucket holding the rank, as histogram_quantile does.
    let expected = [
        (
            "transcode",
            [
                20.0 + 10.0 * 5.0 / 8.0,
                30.0 + 15.0 * 1.5 / 2.0,
                30.0 + 15.0 * 1.9 / 2.0,
            ],
        ),
        (
            "thumbnails",
            [2.5 + 2.5 * 0.5, 2.5 + 2.5 * 0.95, 2.5 + 2.5 * 0.99],
        ),
        (
            "detect_faces",
            [10.0 + 5.0 * 0.5, 10.0 + 5.0 * 0.95, 10.0 + 5.0 * 0.99],
        ),
        (
            "publish",
            [7.5 + 2.5 * 0.5, 7.5 + 2.5 * 0.95, 7.5 + 2.5 * 0.99],
        ),
    ];
    for (i, q) in ["p50", "p95", "p99"].iter().enumerate() {
        let name = format!("workflow_type_activity_type:swf_stage_duration_seconds:{q}");
        let series = &results[&name];
        assert_eq!(series.len(), 4, "{name}: {series:?}");
        for (stage, want) in &expected {
            let got = series
                .iter()
                .find(|s| s.labels.get("activity_type").map(String::as_str) == Some(*stage))
                .unwrap_or_else(|| panic!("{name} has no {stage}"));
            assert!(
                (got.value - want[i]).abs() < 1e-9,
                "{name} {stage}: {} != {}",
                got.value,
                want[i]
            );
            let keys: Vec<&str> = got.labels.keys().map(String::as_str).collect();
            assert_eq!(keys, ["activity_type", "workflow_type"]);
        }
    }
}
