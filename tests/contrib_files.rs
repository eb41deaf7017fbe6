//! The Grafana dashboards in contrib/grafana/: well-formed, every query on
//! the `${datasource}` and `$cluster` variables, and only metric names the
//! exporter exports (found by scanning src/ for their string literals, so a
//! renamed family fails here). No Slurm, no Prometheus: tests/ha_cluster.rs
//! evaluates the same expressions against the bed's Prometheus.

#[path = "common/grafana.rs"]
mod grafana;

use grafana::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const CLUSTER_MATCHER: &str = "cluster=~\"$cluster\"";

fn datasource_ref() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// Runs `check` on every dashboard and fails with every problem found.
fn for_each_dashboard(check: impl Fn(&str, &Value, &mut Vec<String>)) {
    let mut problems = Vec::new();
    for name in DASHBOARDS {
        let d = load_dashboard(name);
        check(name, &d, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_dashboard_is_valid_json_with_a_title_uid_and_schema_version() {
    for_each_dashboard(|name, d, problems| {
        for key in ["title", "uid"] {
            if d[key].as_str().is_none_or(|s| s.is_empty()) {
                problems.push(format!("{name}: no {key}"));
            }
        }
        match d["schemaVersion"].as_u64() {
            Some(v) if (36..=41).contains(&v) => {}
            v => problems.push(format!("{name}: schemaVersion {v:?}, expected about 39")),
        }
        if all_panels(d).is_empty() {
            problems.push(format!("{name}: no panels"));
        }
    });
    let uids: BTreeSet<String> = DASHBOARDS
        .iter()
        .map(|n| load_dashboard(n)["uid"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(uids.len(), DASHBOARDS.len(), "dashboard uids must differ");
}

#[test]
fn panel_ids_are_unique_within_each_dashboard_rows_included() {
    for_each_dashboard(|name, d, problems| {
        let mut seen: BTreeMap<i64, String> = BTreeMap::new();
        for p in all_panels(d) {
            let Some(id) = p["id"].as_i64() else {
                problems.push(format!("{name}: panel {:?} has no numeric id", title(p)));
                continue;
            };
            if let Some(other) = seen.insert(id, title(p)) {
                problems.push(format!(
                    "{name}: id {id} used by {:?} and {other:?}",
                    title(p)
                ));
            }
        }
    });
}

#[test]
fn every_dashboard_has_the_datasource_and_cluster_variables() {
    for_each_dashboard(|name, d, problems| {
        let vars = variables(d);
        let by_name = |n: &str| vars.iter().find(|v| v["name"] == n).copied();
        match by_name("datasource") {
            Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
            _ => problems.push(format!(
                "{name}: no `datasource` variable of type datasource, query prometheus"
            )),
        }
        match by_name("cluster") {
            Some(v)
                if v["type"] == "query"
                    && variable_query(v) == "label_values(slurm_exporter_build_info, cluster)" => {}
            _ => problems.push(format!(
                "{name}: no `cluster` query variable on label_values(slurm_exporter_build_info, cluster)"
            )),
        }
    });
}

#[test]
fn every_panel_uses_the_datasource_variable() {
    let want = datasource_ref();
    for_each_dashboard(|name, d, problems| {
        for p in all_panels(d) {
            if p["datasource"] != want {
                problems.push(format!(
                    "{name}: panel {:?} datasource is {}",
                    title(p),
                    p["datasource"]
                ));
            }
            for t in targets(p) {
                if t["datasource"] != want {
                    problems.push(format!(
                        "{name}: panel {:?} target {} datasource is {}",
                        title(p),
                        t["refId"],
                        t["datasource"]
                    ));
                }
            }
        }
        for v in variables(d).into_iter().filter(|v| v["type"] == "query") {
            if v["datasource"] != want {
                problems.push(format!(
                    "{name}: variable {} datasource is {}",
                    v["name"], v["datasource"]
                ));
            }
        }
    });
}

#[test]
fn every_query_filters_on_the_cluster_variable() {
    for_each_dashboard(|name, d, problems| {
        for p in all_panels(d) {
            for t in targets(p) {
                let expr = t["expr"].as_str().unwrap_or("");
                let sels = metric_selectors(expr);
                if sels.is_empty() {
                    problems.push(format!("{name}: {:?}: no metric in {expr:?}", title(p)));
                }
                for (metric, matchers) in sels {
                    if !matchers
                        .as_deref()
                        .is_some_and(|m| m.contains(CLUSTER_MATCHER))
                    {
                        problems.push(format!(
                            "{name}: {:?}: {metric} is not filtered by {CLUSTER_MATCHER} in {expr:?}",
                            title(p)
                        ));
                    }
                }
            }
        }
        for v in variables(d).into_iter().filter(|v| v["type"] == "query") {
            let q = variable_query(v);
            if v["name"] != "cluster" && !q.contains(CLUSTER_MATCHER) {
                problems.push(format!(
                    "{name}: variable {} ignores $cluster: {q}",
                    v["name"]
                ));
            }
        }
    });
}

#[test]
fn every_target_has_an_expression_and_a_ref_id_unique_in_its_panel() {
    for_each_dashboard(|name, d, problems| {
        for p in all_panels(d) {
            let mut refs = BTreeSet::new();
            for t in targets(p) {
                if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                    problems.push(format!("{name}: {:?}: a target without expr", title(p)));
                }
                match t["refId"].as_str() {
                    Some(r) if refs.insert(r.to_string()) => {}
                    r => problems.push(format!(
                        "{name}: {:?}: refId {r:?} missing or repeated",
                        title(p)
                    )),
                }
            }
            if p["type"] != "row" && targets(p).is_empty() {
                problems.push(format!("{name}: {:?}: a panel without queries", title(p)));
            }
        }
    });
}

#[test]
fn no_query_uses_or_vector_zero() {
    for (dashboard, panel, expr) in dashboard_exprs() {
        let squeezed: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(
            !squeezed.contains("orvector(0)"),
            "{dashboard}: {panel:?}: `or vector(0)` makes an empty (failover) moment a 0: {expr}"
        );
    }
}

#[test]
fn queries_use_only_known_grafana_variables() {
    for (dashboard, panel, expr) in dashboard_exprs() {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find('$') {
            let tail = &rest[at..];
            let len = 1 + tail[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len() - 1);
            let var = &tail[..len];
            assert!(
                GRAFANA_VARIABLES.contains(&var),
                "{dashboard}: {panel:?}: unexpected variable {var} in {expr}"
            );
            rest = &tail[len..];
        }
    }
}

#[test]
fn every_metric_in_a_query_is_one_the_exporter_exports() {
    let known = known_metrics();
    let mut problems = Vec::new();
    for (dashboard, panel, expr) in dashboard_exprs() {
        for m in metric_names(&expr) {
            if !known.contains(&m) {
                problems.push(format!(
                    "{dashboard}: {panel:?}: unknown metric {m} in {expr}"
                ));
            }
        }
    }
    for name in DASHBOARDS {
        let d = load_dashboard(name);
        for v in variables(&d).into_iter().filter(|v| v["type"] == "query") {
            let q = variable_query(v);
            for m in metric_names(variable_selector(&q)) {
                if !known.contains(&m) {
                    problems.push(format!(
                        "{name}: variable {}: unknown metric {m}",
                        v["name"]
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_known_metric_names_come_from_the_collectors() {
    let known = known_metrics();
    for m in [
        "sacct_terminal_jobs_total",
        "squeue_partition_jobs_state",
        "sinfo_partition_nodes_state",
        "sdiag_main_cycle_time_us",
        "slurm_exporter_active",
        "slurm_exporter_role_info",
        "slurm_exporter_accounting_watermark_timestamp_seconds",
        "slurm_rpc_calls_total",
        "slurm_partition_jobs_pending_reason",
        "jetpack_cluster_info",
    ] {
        assert!(
            known.contains(m),
            "{m} not found in src/ (found {})",
            known.len()
        );
    }
    assert!(!known.contains("slurm_not_a_metric"));
}

#[test]
fn the_metric_name_scanner_skips_functions_labels_strings_and_durations() {
    let expr = r#"sum by (state, partition) (round(increase((max without(instance, pod) (sacct_terminal_jobs_total{cluster=~"$cluster", state!="a{1}"}))[$__range:1m] offset 1d)))
        / on (cluster) group_left (version) topk by (cluster) (1, slurm_exporter_build_info{cluster=~"$cluster"})
        or label_replace(slurm_jobs, "x", "$1", "state", "(.*)") * 1e3 + time() - 0.5 and bool_metric_x offset $__range"#;
    assert_eq!(
        metric_selectors(expr),
        vec![
            (
                "sacct_terminal_jobs_total".to_string(),
                Some(r#"cluster=~"$cluster", state!="a{1}""#.to_string())
            ),
            (
                "slurm_exporter_build_info".to_string(),
                Some(r#"cluster=~"$cluster""#.to_string())
            ),
            ("slurm_jobs".to_string(), None),
            ("bool_metric_x".to_string(), None),
        ]
    );
    assert_eq!(
        metric_names("max without(instance) (slurm_nodes {cluster=~\"$cluster\"})"),
        vec!["slurm_nodes"]
    );
    assert_eq!(
        variable_selector("label_values(slurm_partition_info{cluster=~\"$cluster\"}, partition)"),
        "slurm_partition_info{cluster=~\"$cluster\"}"
    );
}

#[test]
fn finished_job_counts_never_extrapolate() {
    // increase()/rate() extrapolate at the edges of their window, and over a
    // failover gap they count again; the dashboards subtract the merged
    // counter's last value before the window from its last value in it.
    for (dashboard, panel, expr) in dashboard_exprs() {
        if !expr.contains("sacct_terminal_jobs_total") {
            continue;
        }
        for f in ["increase(", "rate(", "delta(", "resets("] {
            assert!(
                !expr.contains(f),
                "{dashboard}: {panel:?}: finished jobs counted with {f}: {expr}"
            );
        }
        assert!(
            expr.contains("last_over_time(")
                && expr.contains(
                    "max by (cluster, partition, exit_code, reason, state) (last_over_time("
                ),
            "{dashboard}: {panel:?}: finished jobs not counted on the merged counter: {expr}"
        );
    }
}

#[test]
fn the_cluster_dashboard_keeps_the_cyclecloud_panel_titles() {
    let d = load_dashboard("slurm-cluster.json");
    let titles: Vec<String> = all_panels(&d).into_iter().map(title).collect();
    for want in [
        "Slurm Cluster Health Overview",
        "Slurm Scheduler Health",
        "Active Cluster Utilization %",
        "Overall Cluster Utilization %",
        "Finished Jobs between",
        "Cluster Specs",
        "Nodelist by State",
        "Total Nodes by Partition",
        "Extra Cluster Details",
        "Partition Specs",
        "Job and Node Status Overview",
        "squeue snapshot",
        "Live: Node status",
        "Job Queue Overview by State",
        "Main Scheduling Cycle Time",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(want)),
            "slurm-cluster.json has no panel titled {want:?}"
        );
    }
}

#[test]
fn panels_fit_the_grid() {
    for_each_dashboard(|name, d, problems| {
        for p in all_panels(d) {
            let g = &p["gridPos"];
            match (
                g["x"].as_u64(),
                g["w"].as_u64(),
                g["h"].as_u64(),
                g["y"].as_u64(),
            ) {
                (Some(x), Some(w), Some(h), Some(_)) if w > 0 && h > 0 && x + w <= 24 => {}
                _ => problems.push(format!("{name}: {:?}: bad gridPos {g}", title(p))),
            }
        }
    });
}

#[test]
fn the_readme_names_every_dashboard() {
    let readme = std::fs::read_to_string(grafana_dir().join("README.md"))
        .expect("contrib/grafana/README.md");
    for name in DASHBOARDS {
        assert!(
            readme.contains(name),
            "contrib/grafana/README.md does not mention {name}"
        );
    }
}

/// Every (where, expression) of the dashboards and the rules.
fn all_exprs() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = dashboard_exprs()
        .into_iter()
        .map(|(d, p, e)| (format!("{d}: {p:?}"), e))
        .collect();
    out.extend(
        rule_exprs()
            .into_iter()
            .map(|(r, e)| (format!("rules: {r}"), e)),
    );
    out
}

/// CycleCloud's agents (and any site) tell the targets of a cluster apart
/// by labels we cannot know (nodearray, physical_host, pod, zone...): a
/// merge that removes a list of them leaves two series where one was meant,
/// and a finished-jobs window across a failover counts a whole total twice.
/// So no merge names target labels: `without` only ever removes the
/// family's own labels, and a `max` that merges targets keeps every own
/// label and `cluster` (the only per-target label allowed is `instance`,
/// in the per-exporter views of the exporter's own families).
#[test]
fn merges_group_by_the_familys_own_labels_never_without_target_labels() {
    let fams = families();
    let mut problems = Vec::new();
    let mut merges = 0;
    for (place, expr) in all_exprs() {
        for a in aggregations(&expr) {
            let Some(family) = &a.family else {
                if a.grouping == "without" {
                    problems.push(format!(
                        "{place}: `{} without ({})` over more than one family's selector",
                        a.op,
                        a.labels.join(", ")
                    ));
                }
                continue;
            };
            let Some(own) = own_labels(&fams, family) else {
                continue; // a recorded series (slurm:...): checked where it is recorded
            };
            let per_exporter = family.starts_with("slurm_exporter_");
            if a.grouping == "without" {
                if let Some(l) = a.labels.iter().find(|l| !own.contains(l)) {
                    problems.push(format!(
                        "{place}: `{} without` removes {l}, not a label of {family} ({own:?}): {expr}",
                        a.op
                    ));
                }
                continue;
            }
            for l in &a.labels {
                if l != "cluster" && !own.contains(l) && !(per_exporter && l == "instance") {
                    problems.push(format!(
                        "{place}: `{} by` keeps {l}, a label {family} does not have ({own:?}): {expr}",
                        a.op
                    ));
                }
            }
            if a.op == "max" && !a.labels.iter().any(|l| l == "instance") {
                merges += 1;
                let want: BTreeSet<&str> =
                    own.iter().map(String::as_str).chain(["cluster"]).collect();
                let got: BTreeSet<&str> = a.labels.iter().map(String::as_str).collect();
                if got != want {
                    problems.push(format!(
                        "{place}: a merge of {family} by {got:?}, must be by {want:?}: {expr}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        merges > 50,
        "only {merges} merges found: is the parser right?"
    );
}

#[test]
fn the_aggregation_parser_finds_the_family_and_its_grouping() {
    let a = aggregations(
        "topk(10, max by (cluster, rpc) (rate(slurm_rpc_calls_total{cluster=~\"$cluster\"}[$__rate_interval])))",
    );
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].op, "max");
    assert_eq!(a[0].labels, ["cluster", "rpc"]);
    assert_eq!(a[0].family.as_deref(), Some("slurm_rpc_calls_total"));
    let a = aggregations(
        "sum by (state) ((max by (cluster, state) (last_over_time(x{a=\"b\"}[1d] offset $__range))))",
    );
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].family, None, "the outer one aggregates an expression");
    assert_eq!(a[1].family.as_deref(), Some("x"));
    let a = aggregations("max by (cluster, instance) (2 * y or z)");
    assert_eq!(a[0].family, None);
    let a = aggregations("group without (version) (b) unless group without (version) (c)");
    assert_eq!(a.len(), 2);
    assert_eq!(a[1].grouping, "without");
    assert_eq!(a[1].family.as_deref(), Some("c"));
}

/// The names and labels of contrib/families.json are the exporter's: each
/// family is one the collectors name (tests/ha_cluster.rs checks the labels
/// against what the exporters export), and every family a dashboard or
/// rule reads is listed.
#[test]
fn families_json_lists_every_family_the_dashboards_and_rules_read() {
    let fams = families();
    let known = known_metrics();
    let mut problems = Vec::new();
    for f in fams.keys() {
        if !known.contains(f) {
            problems.push(format!("contrib/families.json: {f} is not a name in src/"));
        }
    }
    for (place, expr) in all_exprs() {
        for m in metric_names(&expr) {
            if !m.contains(':') && m != "ALERTS" && own_labels(&fams, &m).is_none() {
                problems.push(format!("{place}: {m} is not in contrib/families.json"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The exporter is found by its own series, whatever its scrape job is
/// called (`slurm` here, `azslurm_exporter` in CycleCloud), and `up` is
/// never read: a node whose remote-write agent died sends no `up == 0`.
/// And the dashboards read the exporter's families alone, so they work where
/// no rule is evaluated (CycleCloud's agents, Azure Monitor without our rule
/// groups).
#[test]
fn no_panel_or_rule_reads_a_job_name_up_or_a_recorded_series() {
    let mut problems = Vec::new();
    for (place, expr) in all_exprs() {
        for (m, matchers) in metric_selectors(&expr) {
            if m == "up" {
                problems.push(format!("{place}: reads `up`: {expr}"));
            }
            if matchers.is_some_and(|s| s.contains("job")) {
                problems.push(format!("{place}: selects on a job: {expr}"));
            }
            if !place.starts_with("rules:") && m.contains(':') {
                problems.push(format!("{place}: reads the recorded series {m}"));
            }
        }
        for a in aggregations(&expr) {
            if a.labels.iter().any(|l| l == "job") {
                problems.push(format!("{place}: groups by job: {expr}"));
            }
        }
        if expr.contains("on (instance, job)") || expr.contains("on(instance, job)") {
            problems.push(format!("{place}: matches on instance and job: {expr}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
