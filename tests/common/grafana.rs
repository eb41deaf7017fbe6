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
/// metric names: the aggregation operators (`AGGREGATIONS`, which may be
/// followed by `by`) and these, binary and set operators, modifiers,
/// literals.
pub const PROMQL_KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end",
];

/// Aggregation operators (they take by/without).
pub const AGGREGATIONS: &[&str] = &[
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
            let lower = word.to_ascii_lowercase();
            if next == Some('(')
                || PROMQL_KEYWORDS.contains(&lower.as_str())
                || AGGREGATIONS.contains(&lower.as_str())
            {
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

/// contrib/families.json: every family the exporter exports and its own
/// labels (the ones it writes, not those a scrape adds).
pub fn families() -> std::collections::BTreeMap<String, Vec<String>> {
    let path = repo().join("contrib/families.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("contrib/families.json is not valid JSON: {e}"));
    v["families"]
        .as_object()
        .expect("contrib/families.json: no \"families\" object")
        .iter()
        .map(|(k, labels)| {
            let labels = labels
                .as_array()
                .unwrap_or_else(|| panic!("contrib/families.json: {k}: not a list"))
                .iter()
                .map(|l| l.as_str().expect("label names are strings").to_string())
                .collect();
            (k.clone(), labels)
        })
        .collect()
}

/// The own labels of the family a series name belongs to (a histogram's
/// `_bucket` series add `le`); None: not a family of ours.
pub fn own_labels(
    families: &std::collections::BTreeMap<String, Vec<String>>,
    series: &str,
) -> Option<Vec<String>> {
    if let Some(l) = families.get(series) {
        return Some(l.clone());
    }
    for (suffix, extra) in [("_bucket", Some("le")), ("_sum", None), ("_count", None)] {
        if let Some(l) = series.strip_suffix(suffix).and_then(|b| families.get(b)) {
            let mut l = l.clone();
            l.extend(extra.map(str::to_string));
            return Some(l);
        }
    }
    None
}

/// Every rule of contrib/prometheus/slurm-ha-exporter.rules.yml as (its
/// record or alert name, its expression).
pub fn rule_exprs() -> Vec<(String, String)> {
    let path = repo().join("contrib/prometheus/slurm-ha-exporter.rules.yml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    let mut out = Vec::new();
    for g in v["groups"].as_array().expect("rules: no groups") {
        for r in g["rules"].as_array().expect("rules: a group without rules") {
            let name = r["record"].as_str().or(r["alert"].as_str()).unwrap_or("?");
            let expr = r["expr"].as_str().expect("rules: a rule without expr");
            out.push((name.to_string(), expr.to_string()));
        }
    }
    out
}

/// One aggregation of an expression: `op by|without (labels) (argument)`,
/// and the family it aggregates when its argument is that family's selector
/// alone, possibly inside range functions (`rate(x[5m])`,
/// `last_over_time(x[1d] offset 1h)`).
#[derive(Debug)]
pub struct Aggregation {
    pub op: String,
    pub grouping: String,
    pub labels: Vec<String>,
    pub family: Option<String>,
}

/// Functions whose result keeps the labels of the one series they read.
const SERIES_FUNCTIONS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "deriv",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
];

/// Every aggregation with by/without in an expression (the prefix form
/// `op by (...) (...)`, the one contrib/ writes), nested ones included.
pub fn aggregations(expr: &str) -> Vec<Aggregation> {
    let c: Vec<char> = expr.chars().collect();
    let n = c.len();
    let ws = |mut j: usize| {
        while j < n && c[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let ident = |j: usize| {
        let mut e = j;
        while e < n && is_ident(c[e]) {
            e += 1;
        }
        (c[j..e].iter().collect::<String>(), e)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        if matches!(c[i], '"' | '\'' | '`') {
            i = skip_string(&c, i);
            continue;
        }
        if c[i] == '{' {
            i = braces(&c, i).1;
            continue;
        }
        if !is_ident_start(c[i]) || (i > 0 && is_ident(c[i - 1])) {
            i += 1;
            continue;
        }
        let (word, end) = ident(i);
        i = end;
        if !AGGREGATIONS.contains(&word.as_str()) {
            continue;
        }
        let (grouping, g_end) = ident(ws(end));
        if grouping != "by" && grouping != "without" {
            continue;
        }
        let open = ws(g_end);
        if c.get(open) != Some(&'(') {
            continue;
        }
        let close = skip_parens(&c, open);
        let labels: Vec<String> = c[open + 1..close - 1]
            .iter()
            .collect::<String>()
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let arg_open = ws(close);
        let family = if c.get(arg_open) == Some(&'(') {
            let arg_close = skip_parens(&c, arg_open);
            let arg: String = c[arg_open + 1..arg_close - 1].iter().collect();
            // topk/bottomk/quantile/limitk: the parameter comes first.
            let arg = match word.as_str() {
                "topk" | "bottomk" | "quantile" | "limitk" | "count_values" => arg
                    .split_once(',')
                    .map(|(_, a)| a.to_string())
                    .unwrap_or(arg),
                _ => arg,
            };
            lone_family(&arg)
        } else {
            None
        };
        out.push(Aggregation {
            op: word,
            grouping,
            labels,
            family,
        });
        // Go on inside the labels' end: nested aggregations are found too.
        i = close;
    }
    out
}

/// The metric name when `arg` is one selector, possibly inside range
/// functions, and nothing else.
fn lone_family(arg: &str) -> Option<String> {
    let mut rest = arg.trim();
    let mut depth = 0;
    while let Some(f) = SERIES_FUNCTIONS.iter().find(|f| {
        rest.strip_prefix(**f)
            .is_some_and(|r| r.trim_start().starts_with('('))
    }) {
        rest = rest[f.len()..].trim_start()[1..].trim_start();
        depth += 1;
    }
    let c: Vec<char> = rest.chars().collect();
    if c.is_empty() || !is_ident_start(c[0]) {
        return None;
    }
    let mut j = 0;
    while j < c.len() && is_ident(c[j]) {
        j += 1;
    }
    let name: String = c[..j].iter().collect();
    let mut tail: String = c[j..].iter().collect();
    if tail.trim_start().starts_with('{') {
        let t: Vec<char> = tail.trim_start().chars().collect();
        tail = t[braces(&t, 0).1..].iter().collect();
    }
    if tail.trim_start().starts_with('[') {
        let t: Vec<char> = tail.trim_start().chars().collect();
        tail = t[skip_until(&t, 0, ']')..].iter().collect();
    }
    let mut tail = tail.trim().to_string();
    if let Some(r) = tail.strip_prefix("offset") {
        // `offset 1h`, `offset $__range`
        let r = r.trim_start();
        let len = r
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '$' || ch == '_'))
            .unwrap_or(r.len());
        tail = r[len..].trim().to_string();
    }
    (tail
        .chars()
        .filter(|ch| !ch.is_whitespace())
        .collect::<String>()
        == ")".repeat(depth))
    .then_some(name)
}
