//! The Grafana dashboards of contrib/grafana/ as tests read them: their
//! panels and PromQL expressions, and the metric names an expression uses.
//! Shared by tests/contrib_files.rs (the files alone) and
//! tests/ha_cluster.rs (every expression evaluated by the bed's Prometheus)
//! through `#[path = "common/grafana.rs"] mod grafana;`. The Grafana
//! variables left in the expressions are `$cluster`, `$partition`, `$node`,
//! `$__range`, `$__interval` and `$__rate_interval` (`GRAFANA_VARIABLES`).
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The dashboards, relative to contrib/grafana/.
pub const DASHBOARDS: &[&str] = &[
    "slurm-cluster.json",
    "slurm-ha.json",
    "slurm-resources.json",
];

/// Every Grafana variable a dashboard query may contain.
pub const GRAFANA_VARIABLES: &[&str] = &[
    "$cluster",
    "$partition",
    "$node",
    "$__range",
    "$__interval",
    "$__rate_interval",
];

/// Prefixes of the metric families the exporter exports.
pub const METRIC_PREFIXES: &[&str] = &[
    "slurm_", "sacct_", "sdiag_", "squeue_", "sinfo_", "azslurm_", "jetpack_",
];

/// PromQL words that are neither functions (those are followed by `(`) nor
/// metric names: aggregation operators (which may be followed by `by`),
/// binary and set operators, modifiers, literals.
pub const PROMQL_KEYWORDS: &[&str] = &[
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
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
];

/// Keywords followed by a parenthesized list of label names.
pub const GROUPING_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn grafana_dir() -> PathBuf {
    repo().join("contrib/grafana")
}

/// A dashboard file, parsed; panics with the file name when it is not JSON.
pub fn load_dashboard(name: &str) -> Value {
    let path = grafana_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"))
}

/// Every panel of a dashboard, rows and the panels nested in (collapsed)
/// rows included, depth first.
pub fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The targets of a panel.
pub fn targets(panel: &Value) -> Vec<&Value> {
    panel["targets"].as_array().into_iter().flatten().collect()
}

pub fn title(panel: &Value) -> String {
    panel["title"].as_str().unwrap_or("").to_string()
}

/// Every (dashboard file, panel title, PromQL expression) of every target
/// of every dashboard, Grafana variables left as they are.
pub fn dashboard_exprs() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for name in DASHBOARDS {
        let d = load_dashboard(name);
        for p in all_panels(&d) {
            for t in targets(p) {
                let expr = t["expr"].as_str().unwrap_or("").to_string();
                out.push((name.to_string(), title(p), expr));
            }
        }
    }
    out
}

/// The template variables of a dashboard.
pub fn variables(dashboard: &Value) -> Vec<&Value> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .collect()
}

/// The query of a query variable (Grafana stores a string or an object).
pub fn variable_query(var: &Value) -> String {
    match &var["query"] {
        Value::String(s) => s.clone(),
        q => q["query"].as_str().unwrap_or("").to_string(),
    }
}

/// Metric family names the exporter exports: every string literal in src/
/// that is a Prometheus metric name with one of the exporter's prefixes.
/// (A superset: it also holds names such as "slurm_load_jobs"; a name that
/// disappears from src/ disappears from here.)
pub fn known_metrics() -> BTreeSet<String> {
    fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                rs_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rs_files(&repo().join("src"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        // Each quote followed by a name and a closing quote: no literal
        // parsing, so raw strings and escapes cannot throw it off.
        for (i, _) in text.match_indices('"') {
            let rest = &text[i + 1..];
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let name = &rest[..len];
            if len > 0
                && rest[len..].starts_with('"')
                && METRIC_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                names.insert(name.to_string());
                // A histogram's samples (the scanner does not know which
                // families are histograms).
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

pub fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

pub fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index just past the string literal that starts at `i`.
pub fn skip_string(c: &[char], i: usize) -> usize {
    let quote = c[i];
    let mut j = i + 1;
    while j < c.len() && c[j] != quote {
        if c[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    (j + 1).min(c.len())
}

/// Index just past the `close` after `i`.
pub fn skip_until(c: &[char], i: usize, close: char) -> usize {
    let mut j = i + 1;
    while j < c.len() && c[j] != close {
        j += 1;
    }
    (j + 1).min(c.len())
}

/// The label matchers of the selector whose `{` is at `i`, and the index
/// just past its `}` (quoted `}` do not end it).
pub fn braces(c: &[char], i: usize) -> (String, usize) {
    let mut j = i + 1;
    while j < c.len() && c[j] != '}' {
        if matches!(c[j], '"' | '\'' | '`') {
            j = skip_string(c, j);
        } else {
            j += 1;
        }
    }
    let inner: String = c[i + 1..j.min(c.len())].iter().collect();
    (inner, (j + 1).min(c.len()))
}

/// Index just past the parenthesis that closes the one at `i`.
pub fn skip_parens(c: &[char], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < c.len() {
        match c[j] {
            '"' | '\'' | '`' => {
                j = skip_string(c, j);
                continue;
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    c.len()
}

/// The metric names a PromQL expression selects, in order, each with the
/// label matchers of its selector (`None`: a bare name). Skipped: strings,
/// label matchers, durations and subquery ranges, numbers, Grafana
/// variables, functions (a name followed by `(`), operators and keywords,
/// and the label lists of by/without/on/ignoring/group_left/group_right.
pub fn metric_selectors(expr: &str) -> Vec<(String, Option<String>)> {
    let c: Vec<char> = expr.chars().collect();
    let n = c.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let ch = c[i];
        if matches!(ch, '"' | '\'' | '`') {
            i = skip_string(&c, i);
        } else if ch == '{' {
            i = braces(&c, i).1;
        } else if ch == '[' {
            i = skip_until(&c, i, ']');
        } else if ch == '#' {
            i = skip_until(&c, i, '\n');
        } else if ch == '$' {
            i += 1;
            if i < n && c[i] == '{' {
                i = skip_until(&c, i, '}');
            } else {
                while i < n && is_ident(c[i]) {
                    i += 1;
                }
            }
        } else if ch.is_ascii_digit() || (ch == '.' && i + 1 < n && c[i + 1].is_ascii_digit()) {
            // 42, 0.5, 1e3, 0x1f, 24h, 1d
            while i < n && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == '_') {
                i += 1;
            }
        } else if is_ident_start(ch) {
            let start = i;
            while i < n && is_ident(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let mut j = i;
            while j < n && c[j].is_whitespace() {
                j += 1;
            }
            let next = c.get(j).copied();
            if GROUPING_KEYWORDS.contains(&word.as_str()) {
                if next == Some('(') {
                    i = skip_parens(&c, j);
                }
                continue;
            }
            if next == Some('(') || PROMQL_KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                continue;
            }
            if next == Some('{') {
                let (inner, end) = braces(&c, j);
                out.push((word, Some(inner)));
                i = end;
            } else {
                out.push((word, None));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The metric names alone.
pub fn metric_names(expr: &str) -> Vec<String> {
    metric_selectors(expr).into_iter().map(|(m, _)| m).collect()
}

/// The selector part of a `label_values(selector, label)` variable query
/// (the whole query otherwise).
pub fn variable_selector(query: &str) -> &str {
    let q = query.trim();
    match (q.strip_prefix("label_values("), q.rfind(',')) {
        (Some(_), Some(comma)) => &q["label_values(".len()..comma],
        _ => q,
    }
}
