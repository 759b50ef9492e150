//! Checks that the deployment files (Grafana dashboards, Prometheus recording and alert rules and
//! their unit tests, the Logstash pipeline and index template) name only metrics, labels and log
//! fields that the runtime really emits.
//!
//! Two sources of truth are supported: the definitions in `swf_runtime::telemetry::metrics::ALL`
//! and `telemetry/fields.rs` (fast, no process needed), and a real `/metrics` scrape or real JSON
//! log lines of a running runtime (what an end-to-end test has). Both go through the same parsing
//! of the deployment files, so a typo in a dashboard fails either way.
//!
//! Queries are read with a small PromQL reader: it finds every vector selector with the labels its
//! matchers name, and the labels of `by`/`without`/`on`/`ignoring`/`group_*` clauses, which apply to
//! every selector inside the aggregation (or both sides of the binary operation) they modify. It is
//! not a validator (promtool parses every query in `scripts/test-deploy.sh`); it only has to find
//! names. Rules files are YAML, read line by line for their `record`, `alert`, `expr` and `series`
//! keys, since the workspace has no YAML parser.
//!
//! Include with `#[path = "common/deploy_check.rs"] mod deploy_check;` from a test in
//! `runtime/tests/`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use swf_runtime::telemetry::metrics::{self, Kind, MetricDef};

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["instance", "job"];
const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];
/// Logstash's own fields, which are not the runtime's to emit.
const LOGSTASH_OWN_ROOTS: &[&str] = &["@metadata"];

/// One selector of a series in a deployment file, with every label the query relies on.
#[derive(Debug, Clone)]
pub struct Usage {
    /// `path (context)`, for error messages.
    pub location: String,
    /// The series name as queried (`swf_x_seconds_bucket`, or a recorded `a:swf_x:p95`).
    pub series: String,
    pub labels: BTreeSet<String>,
}

/// Every series usage of the deployment files, and the series the recording rules define.
#[derive(Debug, Clone, Default)]
pub struct DeployQueries {
    pub usages: Vec<Usage>,
    /// Recorded series name -> the labels it keeps.
    pub recorded: BTreeMap<String, BTreeSet<String>>,
    /// Files or queries that could not be read.
    pub problems: Vec<String>,
}

/// The files checked, relative to the repository root.
pub fn rule_files(repo_root: &Path) -> Vec<PathBuf> {
    let mut files = list(&repo_root.join("deploy/prometheus/rules"), &["yml", "yaml"]);
    files.extend(list(
        &repo_root.join("deploy/prometheus/tests"),
        &["yml", "yaml"],
    ));
    files
}

pub fn dashboard_files(repo_root: &Path) -> Vec<PathBuf> {
    list(&repo_root.join("dashboards"), &["json"])
}

fn list(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e))
        })
        .collect();
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn rel(repo_root: &Path, path: &Path) -> String {
    path.strip_prefix(repo_root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Reads every query of the dashboards and rules files.
pub fn collect_queries(repo_root: &Path) -> DeployQueries {
    let mut out = DeployQueries::default();
    for path in rule_files(repo_root) {
        let name = rel(repo_root, &path);
        let is_test = name.contains("/tests/");
        for entry in yaml_rule_entries(&read(&path)) {
            let location = format!("{name} ({} {})", entry.key, entry.owner);
            match parse_promql(&entry.value) {
                Ok(parsed) => {
                    if entry.key == "expr" && entry.owner_kind == "record" && !is_test {
                        out.recorded
                            .insert(entry.owner.clone(), recorded_labels(&parsed));
                    }
                    push_usages(&mut out.usages, &location, parsed);
                }
                Err(err) => out.problems.push(format!("{location}: {err}")),
            }
        }
    }
    for path in dashboard_files(repo_root) {
        let name = rel(repo_root, &path);
        let dash: serde_json::Value = match serde_json::from_str(&read(&path)) {
            Ok(v) => v,
            Err(err) => {
                out.problems.push(format!("{name}: not valid JSON: {err}"));
                continue;
            }
        };
        dashboard_queries(&name, &dash, &mut out);
    }
    out
}

/// Every series name the deployment files query: histogram series keep their `_bucket`, `_sum` or
/// `_count` suffix (that is what a scrape must contain); recorded series are left out (their rules'
/// own queries are in).
pub fn metric_names_used_by_deploy_files(repo_root: &Path) -> BTreeSet<String> {
    let queries = collect_queries(repo_root);
    assert!(
        queries.problems.is_empty(),
        "deployment files could not be read: {:#?}",
        queries.problems
    );
    queries
        .usages
        .iter()
        .filter(|u| is_ours(&u.series) && !is_recorded(&u.series))
        .map(|u| u.series.clone())
        .collect()
}

/// Checks the deployment files against `metrics::ALL`: every series is a defined metric (a
/// histogram only through its suffixed series), every label one of that metric's labels (or a
/// target label, or `le` on buckets), every recorded series defined by a recording rule and used
/// with the labels it keeps.
pub fn check_against_definitions(repo_root: &Path) -> Result<(), Vec<String>> {
    let queries = collect_queries(repo_root);
    let mut errors = queries.problems.clone();
    for usage in &queries.usages {
        if !is_ours(&usage.series) {
            continue;
        }
        if is_recorded(&usage.series) {
            check_recorded(&queries, usage, &mut errors);
            continue;
        }
        let Some((def, suffix)) = resolve(&usage.series) else {
            errors.push(format!(
                "{}: {} is not a metric the runtime defines (runtime/src/telemetry/metrics.rs)",
                usage.location, usage.series
            ));
            continue;
        };
        let mut allowed: BTreeSet<&str> = def.labels.iter().copied().collect();
        allowed.extend(TARGET_LABELS);
        if suffix == "_bucket" {
            allowed.insert("le");
        }
        for label in &usage.labels {
            if !allowed.contains(label.as_str()) {
                errors.push(format!(
                    "{}: label {label} is not a label of {} (it has {:?})",
                    usage.location, usage.series, def.labels
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Checks the deployment files against a real `/metrics` scrape: every series queried is in the
/// scrape, and every label the queries use appears on it (or is a target label, or `le` on
/// buckets). Recorded series must be defined by a recording rule, as in
/// [`check_against_definitions`].
pub fn check_against_scrape(repo_root: &Path, scrape_text: &str) -> Result<(), Vec<String>> {
    let queries = collect_queries(repo_root);
    let scraped = parse_scrape(scrape_text);
    let mut errors = queries.problems.clone();
    let mut missing = BTreeSet::new();
    for usage in &queries.usages {
        if !is_ours(&usage.series) {
            continue;
        }
        if is_recorded(&usage.series) {
            check_recorded(&queries, usage, &mut errors);
            continue;
        }
        let Some(labels) = scraped.get(&usage.series) else {
            if missing.insert(usage.series.clone()) {
                errors.push(format!(
                    "{}: {} is not in the scrape of /metrics",
                    usage.location, usage.series
                ));
            }
            continue;
        };
        for label in &usage.labels {
            let known = labels.contains(label)
                || TARGET_LABELS.contains(&label.as_str())
                || (label == "le" && usage.series.ends_with("_bucket"));
            if !known {
                errors.push(format!(
                    "{}: label {label} never appears on {} in the scrape (it has {:?})",
                    usage.location, usage.series, labels
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_recorded(queries: &DeployQueries, usage: &Usage, errors: &mut Vec<String>) {
    match queries.recorded.get(&usage.series) {
        None => errors.push(format!(
            "{}: {} is not defined by any recording rule in deploy/prometheus/rules",
            usage.location, usage.series
        )),
        Some(kept) => {
            for label in &usage.labels {
                if !kept.contains(label) {
                    errors.push(format!(
                        "{}: label {label} is not kept by the recording rule {} (it keeps {:?})",
                        usage.location, usage.series, kept
                    ));
                }
            }
        }
    }
}

/// Our series: the runtime's (`swf_...`) and the recording rules' (`level:swf_...:op`).
fn is_ours(series: &str) -> bool {
    series.starts_with("swf_") || (is_recorded(series) && series.contains(":swf_"))
}

fn is_recorded(series: &str) -> bool {
    series.contains(':')
}

/// The metric definition a series belongs to, and the histogram suffix it was queried with.
fn resolve(series: &str) -> Option<(&'static MetricDef, &'static str)> {
    for def in metrics::ALL {
        if def.kind == Kind::Histogram {
            for suffix in HISTOGRAM_SUFFIXES {
                if series.strip_suffix(suffix) == Some(def.name) {
                    return Some((def, suffix));
                }
            }
        } else if series == def.name {
            return Some((def, ""));
        }
    }
    None
}

/// The labels a recording rule's result keeps: those of its aggregations' `by` clauses (minus
/// `le`, which histogram_quantile consumes), or, without aggregation, its source metrics' labels.
fn recorded_labels(parsed: &Parsed) -> BTreeSet<String> {
    if !parsed.by_labels.is_empty() {
        return parsed
            .by_labels
            .iter()
            .filter(|l| *l != "le")
            .cloned()
            .collect();
    }
    let mut labels: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
    for sel in &parsed.selectors {
        if let Some((def, _)) = resolve(&sel.series) {
            labels.extend(def.labels.iter().map(|s| s.to_string()));
        }
    }
    labels
}

fn push_usages(usages: &mut Vec<Usage>, location: &str, parsed: Parsed) {
    for sel in parsed.selectors {
        usages.push(Usage {
            location: location.to_string(),
            series: sel.series,
            labels: sel.labels,
        });
    }
}

fn dashboard_queries(name: &str, dash: &serde_json::Value, out: &mut DeployQueries) {
    if let Some(vars) = dash.pointer("/templating/list").and_then(|v| v.as_array()) {
        for var in vars {
            let query = match var.get("query") {
                Some(serde_json::Value::String(s)) => s.as_str(),
                Some(serde_json::Value::Object(o)) => {
                    o.get("query").and_then(|q| q.as_str()).unwrap_or("")
                }
                _ => "",
            };
            let var_name = var.get("name").and_then(|n| n.as_str()).unwrap_or("?");
            let location = format!("{name} (variable {var_name})");
            let Some(inner) = query
                .trim()
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
            else {
                continue;
            };
            // label_values(selector, label): the label must exist on the selected series.
            let Some((selector, label)) = inner.rsplit_once(',') else {
                out.problems
                    .push(format!("{location}: label_values without a label"));
                continue;
            };
            match parse_promql(selector) {
                Ok(mut parsed) => {
                    for sel in &mut parsed.selectors {
                        sel.labels.insert(label.trim().to_string());
                    }
                    push_usages(&mut out.usages, &location, parsed);
                }
                Err(err) => out.problems.push(format!("{location}: {err}")),
            }
        }
    }
    let mut panels = Vec::new();
    collect_panels(dash.get("panels"), &mut panels);
    for panel in panels {
        let title = panel.get("title").and_then(|t| t.as_str()).unwrap_or("?");
        let Some(targets) = panel.get("targets").and_then(|t| t.as_array()) else {
            continue;
        };
        for target in targets {
            let Some(expr) = target.get("expr").and_then(|e| e.as_str()) else {
                continue;
            };
            let location = format!("{name} (panel {title:?})");
            match parse_promql(expr) {
                Ok(parsed) => push_usages(&mut out.usages, &location, parsed),
                Err(err) => out.problems.push(format!("{location}: {err}")),
            }
        }
    }
}

/// Panels, including those nested in collapsed rows.
fn collect_panels<'a>(panels: Option<&'a serde_json::Value>, out: &mut Vec<&'a serde_json::Value>) {
    for panel in panels.and_then(|p| p.as_array()).into_iter().flatten() {
        out.push(panel);
        collect_panels(panel.get("panels"), out);
    }
}

// ---------------------------------------------------------------------------------------------
// Rules files (YAML), read line by line.

/// One `expr:` or `series:` value of a rules or test file, with the rule it belongs to.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    /// `expr` or `series`.
    pub key: String,
    /// `record`, `alert`, or `test` for unit-test entries.
    pub owner_kind: String,
    pub owner: String,
    pub value: String,
}

pub fn yaml_rule_entries(text: &str) -> Vec<RuleEntry> {
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    let (mut owner_kind, mut owner) = ("test".to_string(), String::new());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let content = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        let key_indent = line.len() - content.len();
        i += 1;
        if content.starts_with('#') {
            continue;
        }
        let Some((key, rest)) = content.split_once(':') else {
            continue;
        };
        let rest = rest.trim();
        match key {
            "record" | "alert" => {
                owner_kind = key.to_string();
                owner = yaml_scalar(rest);
            }
            "expr" | "series" => {
                let value = if rest.starts_with('|') || rest.starts_with('>') {
                    let mut block = Vec::new();
                    while i < lines.len() {
                        let next = lines[i];
                        let indent = next.len() - next.trim_start().len();
                        if !next.trim().is_empty() && indent <= key_indent {
                            break;
                        }
                        block.push(next.trim());
                        i += 1;
                    }
                    block.join("\n")
                } else {
                    yaml_scalar(rest)
                };
                entries.push(RuleEntry {
                    key: key.to_string(),
                    owner_kind: owner_kind.clone(),
                    owner: owner.clone(),
                    value,
                });
            }
            _ => {}
        }
    }
    entries
}

/// A one-line YAML scalar: plain, 'single-quoted' or "double-quoted".
fn yaml_scalar(text: &str) -> String {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    if text.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(text) {
            return s;
        }
    }
    text.to_string()
}

// ---------------------------------------------------------------------------------------------
// A PromQL reader that finds selectors and the labels queries rely on.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str,
    /// Numbers, durations, `[range]` and `$variables`: nothing to check in them.
    Other,
    Op,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
}

/// A vector selector and the labels used on it.
#[derive(Debug, Clone)]
pub struct Selector {
    pub series: String,
    pub labels: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub selectors: Vec<Selector>,
    /// Labels of every `by (...)` clause (for recording rules' kept labels).
    pub by_labels: BTreeSet<String>,
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const BINARY_MODIFIERS: &[&str] = &["on", "ignoring", "group_left", "group_right"];
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
    "Inf",
    "NaN",
];

fn tokenize(text: &str) -> Result<Vec<(Tok, String)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' {
                    i += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated string at {start}"));
            }
            i += 1;
            toks.push((Tok::Str, chars[start..i].iter().collect()));
        } else if c == '[' {
            let start = i;
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated range at {start}"));
            }
            i += 1;
            toks.push((Tok::Other, chars[start..i].iter().collect()));
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            toks.push((Tok::Ident(word.clone()), word));
        } else if c.is_ascii_digit() || c == '.' || c == '$' {
            let start = i;
            i += 1;
            if c == '$' && chars.get(i) == Some(&'{') {
                // `${var}` is one token.
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i = (i + 1).min(chars.len());
            }
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '_'))
            {
                i += 1;
            }
            toks.push((Tok::Other, chars[start..i].iter().collect()));
        } else {
            let tok = match c {
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                '{' => Tok::LBrace,
                '}' => Tok::RBrace,
                ',' => Tok::Comma,
                _ => Tok::Op,
            };
            toks.push((tok, c.to_string()));
            i += 1;
        }
    }
    Ok(toks)
}

pub fn parse_promql(text: &str) -> Result<Parsed, String> {
    let toks = tokenize(text)?;
    let mut parsed = Parsed::default();
    let mut reader = Reader {
        toks: &toks,
        pos: 0,
        parsed: &mut parsed,
    };
    reader.sequence()?;
    if reader.pos != toks.len() {
        return Err(format!("unbalanced ')' in {text:?}"));
    }
    Ok(parsed)
}

struct Reader<'a> {
    toks: &'a [(Tok, String)],
    pos: usize,
    parsed: &'a mut Parsed,
}

impl Reader<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.0)
    }

    fn expect(&mut self, want: Tok) -> Result<(), String> {
        match self.toks.get(self.pos) {
            Some((t, _)) if *t == want => {
                self.pos += 1;
                Ok(())
            }
            other => Err(format!("expected {want:?}, found {other:?}")),
        }
    }

    /// Reads until a `)` it does not own (or the end); returns the first selector index it added.
    /// Binary-operator label lists (`on`, `ignoring`, `group_*`) apply to every selector of the
    /// sequence.
    fn sequence(&mut self) -> Result<usize, String> {
        let first = self.parsed.selectors.len();
        let mut modifier_labels = BTreeSet::new();
        while let Some(tok) = self.peek().cloned() {
            match tok {
                Tok::RParen => break,
                Tok::LParen => {
                    self.pos += 1;
                    self.sequence()?;
                    self.expect(Tok::RParen)?;
                }
                Tok::LBrace => {
                    // A selector without a name: `{__name__="x", ...}`.
                    let labels = self.matchers()?;
                    self.push_selector(String::new(), labels);
                }
                Tok::Ident(word) => {
                    self.pos += 1;
                    if AGGREGATIONS.contains(&word.as_str()) && self.is_call_or_grouping() {
                        self.aggregation()?;
                    } else if BINARY_MODIFIERS.contains(&word.as_str()) {
                        if self.peek() == Some(&Tok::LParen) {
                            modifier_labels.extend(self.label_list()?);
                        }
                    } else if KEYWORDS.contains(&word.as_str()) {
                    } else if self.peek() == Some(&Tok::LParen) {
                        // A function call: its arguments are sequences separated by commas.
                        self.pos += 1;
                        self.sequence()?;
                        self.expect(Tok::RParen)?;
                    } else {
                        let labels = if self.peek() == Some(&Tok::LBrace) {
                            self.matchers()?
                        } else {
                            BTreeSet::new()
                        };
                        self.push_selector(word, labels);
                    }
                }
                Tok::RBrace => return Err("unexpected '}'".into()),
                Tok::Str | Tok::Other | Tok::Op | Tok::Comma => self.pos += 1,
            }
        }
        for sel in &mut self.parsed.selectors[first..] {
            sel.labels.extend(modifier_labels.iter().cloned());
        }
        Ok(first)
    }

    fn is_call_or_grouping(&self) -> bool {
        match self.peek() {
            Some(Tok::LParen) => true,
            Some(Tok::Ident(w)) => {
                (w == "by" || w == "without") && self.peek_at(1) == Some(&Tok::LParen)
            }
            _ => false,
        }
    }

    /// `agg [by|without (labels)] (args) [by|without (labels)]`.
    fn aggregation(&mut self) -> Result<(), String> {
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen)?;
        let first = self.sequence()?;
        self.expect(Tok::RParen)?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if let Some((is_by, labels)) = grouping {
            if is_by {
                self.parsed.by_labels.extend(labels.iter().cloned());
            }
            for sel in &mut self.parsed.selectors[first..] {
                sel.labels.extend(labels.iter().cloned());
            }
        }
        Ok(())
    }

    fn grouping(&mut self) -> Result<Option<(bool, BTreeSet<String>)>, String> {
        let is_by = match self.peek() {
            Some(Tok::Ident(w)) if w == "by" => true,
            Some(Tok::Ident(w)) if w == "without" => false,
            _ => return Ok(None),
        };
        if self.peek_at(1) != Some(&Tok::LParen) {
            return Ok(None);
        }
        self.pos += 1;
        Ok(Some((is_by, self.label_list()?)))
    }

    /// `(a, b, c)`.
    fn label_list(&mut self) -> Result<BTreeSet<String>, String> {
        self.expect(Tok::LParen)?;
        let mut labels = BTreeSet::new();
        loop {
            match self.toks.get(self.pos) {
                Some((Tok::Ident(w), _)) => {
                    labels.insert(w.clone());
                    self.pos += 1;
                }
                Some((Tok::Comma, _)) => self.pos += 1,
                Some((Tok::RParen, _)) => {
                    self.pos += 1;
                    return Ok(labels);
                }
                other => return Err(format!("bad label list near {other:?}")),
            }
        }
    }

    /// `{a="x", b=~"y"}`: the label names.
    fn matchers(&mut self) -> Result<BTreeSet<String>, String> {
        self.expect(Tok::LBrace)?;
        let mut labels = BTreeSet::new();
        let mut expect_name = true;
        loop {
            match self.toks.get(self.pos) {
                Some((Tok::RBrace, _)) => {
                    self.pos += 1;
                    return Ok(labels);
                }
                Some((Tok::Ident(w), _)) if expect_name => {
                    labels.insert(w.clone());
                    expect_name = false;
                    self.pos += 1;
                }
                Some((Tok::Comma, _)) => {
                    expect_name = true;
                    self.pos += 1;
                }
                Some((Tok::Op | Tok::Str, _)) if !expect_name => self.pos += 1,
                other => return Err(format!("bad label matcher near {other:?}")),
            }
        }
    }

    fn push_selector(&mut self, mut series: String, mut labels: BTreeSet<String>) {
        if series.is_empty() {
            // Only `{__name__="x"}` names a series; the name matcher is not a label.
            series = "__name__".into();
        }
        labels.remove("__name__");
        self.parsed.selectors.push(Selector { series, labels });
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition.

/// Series name -> every label name seen on it.
pub fn parse_scrape(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(line.len());
        let name = &line[..name_end];
        let labels = out.entry(name.to_string()).or_default();
        if line[name_end..].starts_with('{') {
            labels.extend(scrape_label_names(&line[name_end + 1..]));
        }
    }
    out
}

/// Label names of `a="x",b="y\"z"} 1`.
fn scrape_label_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none_or(|c| *c == '}') {
            return names;
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        names.push(name.trim().to_string());
        if chars.next() != Some('"') {
            return names;
        }
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Log fields.

/// Every field name `runtime/src/telemetry/fields.rs` defines (`pub const X: &str = "name";`).
pub fn runtime_field_names(repo_root: &Path) -> BTreeSet<String> {
    let text = read(&repo_root.join("runtime/src/telemetry/fields.rs"));
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (_, value) = rest.split_once(": &str = ")?;
            let value = value.trim().strip_suffix(';')?;
            serde_json::from_str::<String>(value).ok()
        })
        .collect()
}

/// Field names the Logstash pipeline refers to (`[field]`, `[a][b]` as `a.b`), Logstash's own
/// `[@metadata]` left out.
pub fn logstash_pipeline_fields(repo_root: &Path) -> BTreeSet<String> {
    let text = read(&repo_root.join("logstash/pipeline.conf"));
    let mut fields = BTreeSet::new();
    for line in text.lines() {
        let code = strip_conf_comment(line);
        let chars: Vec<char> = code.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let mut segments = Vec::new();
            let mut j = i;
            while let Some(end) = field_segment(&chars, j) {
                segments.push(chars[j + 1..end].iter().collect::<String>());
                j = end + 1;
            }
            if segments.is_empty() {
                i += 1;
                continue;
            }
            if !LOGSTASH_OWN_ROOTS.contains(&segments[0].as_str()) {
                fields.insert(segments.join("."));
            }
            i = j;
        }
    }
    fields
}

/// `[name]` starting at `at`: returns the index of its `]`.
fn field_segment(chars: &[char], at: usize) -> Option<usize> {
    if chars.get(at) != Some(&'[') {
        return None;
    }
    let first = *chars.get(at + 1)?;
    if !(first.is_ascii_alphanumeric() || first == '@' || first == '_') {
        return None;
    }
    let mut k = at + 1;
    while let Some(c) = chars.get(k) {
        match c {
            ']' => return Some(k),
            c if c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '.' | '-') => k += 1,
            _ => return None,
        }
    }
    None
}

fn strip_conf_comment(line: &str) -> &str {
    let mut in_string = None;
    for (i, c) in line.char_indices() {
        match (c, in_string) {
            ('"' | '\'', None) => in_string = Some(c),
            (q, Some(open)) if q == open => in_string = None,
            ('#', None) => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Field paths the index template maps (`log.level` for `log: { properties: { level } }`);
/// multi-fields (`error.keyword`) are not source fields and are left out.
pub fn index_template_fields(repo_root: &Path) -> BTreeSet<String> {
    let path = repo_root.join("logstash/index-template.json");
    let template: serde_json::Value = serde_json::from_str(&read(&path))
        .unwrap_or_else(|err| panic!("{} is not valid JSON: {err}", path.display()));
    let mut fields = BTreeSet::new();
    if let Some(props) = template.pointer("/template/mappings/properties") {
        template_properties("", props, &mut fields);
    }
    fields
}

fn template_properties(prefix: &str, props: &serde_json::Value, out: &mut BTreeSet<String>) {
    for (name, mapping) in props.as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match mapping.get("properties") {
            Some(nested) => template_properties(&path, nested, out),
            None => {
                out.insert(path);
            }
        }
    }
}

/// Every field the Logstash pipeline and template name is defined in fields.rs.
pub fn check_logstash_fields(repo_root: &Path) -> Result<(), Vec<String>> {
    let known = runtime_field_names(repo_root);
    let mut errors = Vec::new();
    for (file, fields) in [
        (
            "logstash/pipeline.conf",
            logstash_pipeline_fields(repo_root),
        ),
        (
            "logstash/index-template.json",
            index_template_fields(repo_root),
        ),
    ] {
        if fields.is_empty() {
            errors.push(format!("{file}: no field found (the reader is broken?)"));
        }
        for field in fields.difference(&known) {
            errors.push(format!(
                "{file}: field {field} is not defined in runtime/src/telemetry/fields.rs"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Every field the Logstash pipeline and template name appears in at least one of the runtime's
/// real JSON log lines (one object per line; nested objects count as `a.b`). `optional` lists
/// fields a given run cannot be expected to produce (say `error` in a run where nothing failed).
pub fn check_logstash_fields_against_log_lines(
    repo_root: &Path,
    log_lines: &str,
    optional: &[&str],
) -> Result<(), Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut errors = Vec::new();
    for (n, line) in log_lines.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => json_keys("", &v, &mut seen),
            Err(err) => errors.push(format!("log line {}: not JSON: {err}", n + 1)),
        }
    }
    let mut named = logstash_pipeline_fields(repo_root);
    named.extend(index_template_fields(repo_root));
    for field in named {
        if !seen.contains(&field) && !optional.contains(&field.as_str()) {
            errors.push(format!(
                "field {field} named by logstash/ appears in none of the runtime's log lines"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn json_keys(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
    if let Some(obj) = value.as_object() {
        for (k, v) in obj {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            json_keys(&path, v, out);
            out.insert(path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus, for end-to-end tests.

/// A running `scripts/prometheus_e2e.py`: a real Prometheus on a loopback port scraping one target
/// every second and evaluating the recording rules every second.
///
/// Lifecycle: [`PrometheusRun::start`] returns once Prometheus holds its first sample of the
/// target (run the measured workload after that, and make sure the target observed each stage once
/// before, or rate() sees no increase); [`PrometheusRun::results`] waits for every query to have
/// `min_series` finite series and returns them. Dropping it early kills the script, which stops
/// Prometheus.
pub struct PrometheusRun {
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
}

/// One series of a query result.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl PrometheusRun {
    /// `queries` empty means the stage latency recording rules (p50, p95, p99).
    pub fn start(
        repo_root: &Path,
        target: &str,
        queries: &[&str],
        min_series: usize,
        timeout: std::time::Duration,
    ) -> Result<PrometheusRun, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let ready = dir.path().join("ready");
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(repo_root.join("scripts/prometheus_e2e.py"))
            .arg("--target")
            .arg(target)
            .arg("--ready-file")
            .arg(&ready)
            .arg("--min-series")
            .arg(min_series.to_string())
            .arg("--timeout")
            .arg(timeout.as_secs().max(1).to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for q in queries {
            cmd.arg("--query").arg(q);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start scripts/prometheus_e2e.py: {e}"))?;
        let mut run = PrometheusRun {
            child: Some(child),
            dir,
        };
        let deadline = std::time::Instant::now() + timeout;
        // The script writes the file once Prometheus has scraped the target; it exits on failure.
        while !ready.exists() {
            let child = run.child.as_mut().expect("child is set until results()");
            if let Ok(Some(status)) = child.try_wait() {
                let out = run.child.take().unwrap().wait_with_output();
                let stderr = out
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                return Err(format!("prometheus_e2e.py exited with {status}: {stderr}"));
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "Prometheus did not scrape {target} within {timeout:?}"
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(run)
    }

    /// The URL of the running Prometheus (for ad-hoc queries).
    pub fn url(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ready"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// Waits (bounded by the start timeout) for the results: query -> series.
    pub fn results(mut self) -> Result<BTreeMap<String, Vec<QuerySample>>, String> {
        let child = self.child.take().expect("results() is called once");
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for prometheus_e2e.py: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "prometheus_e2e.py failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("prometheus_e2e.py printed no JSON: {e}"))?;
        let mut results = BTreeMap::new();
        for (query, series) in doc["results"].as_object().into_iter().flatten() {
            let samples = series
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| QuerySample {
                    labels: s["labels"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect(),
                    value: s["value"].as_f64().unwrap_or(f64::NAN),
                })
                .collect();
            results.insert(query.clone(), samples);
        }
        Ok(results)
    }
}

impl Drop for PrometheusRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM, not SIGKILL: the script then stops the Prometheus it started (which runs
            // in its own session and would outlive a killed parent).
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}
