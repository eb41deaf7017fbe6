#!/usr/bin/env python3
"""Writes the dashboards of contrib/grafana/*.json: edit this, run it, commit
both (contrib/check.sh fails when the JSON and this script disagree).

    contrib/grafana/generate.py [OUT_DIR]     (default: beside this script)
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else HERE
with open(os.path.join(HERE, "..", "families.json")) as f:
    FAMILIES = json.load(f)["families"]

DS = {"type": "prometheus", "uid": "${datasource}"}
CL = 'cluster=~"$cluster"'
PART = 'partition=~"$partition"'
NODE = 'node=~"$node"'


def lm(label, op, value):
    return f'{label}{op}"{value}"'


def sel(name, *matchers):
    return name + "{" + ", ".join((CL,) + matchers) + "}"


def own_labels(name):
    """The family's own labels (contrib/families.json); a histogram's
    _bucket series add `le`."""
    for suffix, extra in (("_bucket", ["le"]), ("_sum", []), ("_count", [])):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and base in FAMILIES:
            return FAMILIES[base] + extra
    if name not in FAMILIES:
        sys.exit(f"generate.py: {name} is not in contrib/families.json")
    return FAMILIES[name]


def merge(name):
    """The targets of a cluster merged into one series per label set: by the
    family's own labels and `cluster`, so whatever else tells the targets
    apart (instance, job, pod, CycleCloud's nodearray and physical_host, a
    site's own) merges away. Only the active exporter serves a cluster
    family, and counters continue across exporters, so max is the value."""
    return "max by (" + ", ".join(["cluster"] + own_labels(name)) + ")"


def mx(name, *matchers):
    """One cluster-wide series per label set: the targets of a cluster merged."""
    return f"{merge(name)} ({sel(name, *matchers)})"


def exact_increase(s, win, merged=True):
    """What a counter gained in the window (t - win, t], per label set,
    exactly (no extrapolation): its last value in the window minus its last
    value in the day before the window (0 for a label set that did not
    exist yet); after a reset (value went down) the value since the reset.
    merged: the targets are merged first (False: per target)."""
    name = s.split("{", 1)[0]
    wrap = (lambda x: f"{merge(name)} ({x})") if merged else (lambda x: x)
    end = wrap(f"last_over_time({s}[{win}])")
    start = wrap(f"last_over_time({s}[1d] offset {win})")
    return f"((({end}) - ({start} or 0 * {end})) >= 0) or {end}"


def finished(win, *matchers):
    """Jobs counted by sacct_terminal_jobs_total in the window (t - win, t]."""
    return exact_increase(sel("sacct_terminal_jobs_total", *matchers), win)


FIN_DESC = (
    "Exact count of finished jobs, failover included. For every label set "
    "(partition, state, exit_code, reason) the targets of the cluster are merged "
    "with `max by (cluster, partition, exit_code, reason, state)` (the active exporter's "
    "counter continues on the next one; whatever other labels tell the targets apart, "
    "such as instance or CycleCloud's nodearray, merge away), then: last value within the window minus the last value "
    "in the day before the window (0 when the label set did not exist yet). "
    "No increase(): it extrapolates at the window edges, and with CycleCloud's "
    "`or vector(0)` it counts the whole total again at every failover gap. "
    "Adjacent windows add up exactly. A job is counted in the window in which "
    "the exporter first showed it (about one accounting interval, 60 s, after it ended). "
    "After a state-file reset (slurm_exporter_state_errors_total rises) the "
    "window shows only what was counted since the reset."
)


class Dash:
    def __init__(self, uid, title, tags, variables, description):
        self.uid, self.title, self.tags = uid, title, tags
        self.variables = variables
        self.description = description
        self.panels = []
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_h = 0

    def _place(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.y += self.row_h
        self.x, self.row_h = 0, 0
        p = {
            "id": self.next_id,
            "type": "row",
            "title": title,
            "collapsed": False,
            "datasource": DS,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "panels": [],
        }
        self.next_id += 1
        self.y += 1
        self.panels.append(p)

    def panel(self, ptype, title, targets, w, h, description="", unit=None,
              options=None, field_defaults=None, overrides=None,
              transformations=None, min_=None, max_=None):
        refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        tgts = []
        for i, t in enumerate(targets):
            t = dict(t)
            t.setdefault("refId", refs[i])
            t["datasource"] = DS
            tgts.append(t)
        defaults = {"color": {"mode": "palette-classic"}, "custom": {}}
        if ptype in ("stat", "gauge", "bargauge"):
            defaults["color"] = {"mode": "thresholds"}
        if unit:
            defaults["unit"] = unit
        if min_ is not None:
            defaults["min"] = min_
        if max_ is not None:
            defaults["max"] = max_
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}],
        }
        if field_defaults:
            defaults.update(field_defaults)
        p = {
            "id": self.next_id,
            "type": ptype,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self._place(w, h),
            "targets": tgts,
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or {},
        }
        if transformations:
            p["transformations"] = transformations
        self.next_id += 1
        self.panels.append(p)
        return p

    def json(self):
        return {
            "annotations": {"list": [{
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            }]},
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "links": [{
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "tags": ["slurm-ha-exporter"],
                "title": "Slurm dashboards",
                "type": "dashboards",
            }],
            "panels": self.panels,
            "refresh": "30s",
            "schemaVersion": 39,
            "tags": self.tags,
            "templating": {"list": self.variables},
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {},
            "timezone": "",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
        }


def t(expr, legend="", instant=False, fmt=None):
    d = {"expr": expr, "legendFormat": legend or "__auto", "editorMode": "code",
         "instant": instant, "range": not instant}
    if fmt:
        d["format"] = fmt
    return d


def ti(expr, legend=""):
    """Instant table query."""
    return t(expr, legend, instant=True, fmt="table")


# ---- variables -------------------------------------------------------------

def v_datasource():
    return {
        "name": "datasource", "label": "Data source", "type": "datasource",
        "query": "prometheus", "current": {}, "hide": 0, "includeAll": False,
        "multi": False, "options": [], "refresh": 1, "regex": "",
        "skipUrlSync": False,
    }


def v_query(name, label, query, multi):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "definition": query,
        "query": {"qryType": 5, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {}, "hide": 0, "includeAll": True, "allValue": ".*",
        "multi": multi, "options": [], "refresh": 2, "regex": "", "sort": 1,
        "skipUrlSync": False,
    }


V_CLUSTER = v_query("cluster", "Cluster", "label_values(slurm_exporter_build_info, cluster)", False)
V_PARTITION = v_query("partition", "Partition",
                      'label_values(slurm_partition_info{cluster=~"$cluster"}, partition)', True)
V_NODE = v_query("node", "Node", 'label_values(slurm_node_cpus{cluster=~"$cluster"}, node)', True)

# ---- shared panel options --------------------------------------------------


def stat_opts(text="auto", graph="area", orientation="auto", color="value"):
    return {
        "colorMode": color, "graphMode": graph, "justifyMode": "auto",
        "orientation": orientation, "textMode": text, "wideLayout": True,
        "showPercentChange": False,
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    }


def ts_opts(legend_calcs=None, mode="list"):
    return {
        "legend": {"calcs": legend_calcs or [], "displayMode": mode,
                   "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def ts_custom(draw="line", stack=False, fill=10):
    return {"custom": {
        "drawStyle": draw, "lineWidth": 1, "fillOpacity": fill if draw == "line" else 80,
        "showPoints": "never", "spanNulls": False, "pointSize": 4,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "axisPlacement": "auto", "lineInterpolation": "linear",
    }}


def table_opts(sort=None):
    o = {"cellHeight": "sm", "showHeader": True,
         "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""}}
    if sort:
        o["sortBy"] = sort
    return o


def hide_cols(*extra, rename=None):
    ex = {k: True for k in ("Time", "__name__", "job", "instance", "pod") + extra}
    return {"id": "organize", "options": {"excludeByName": ex, "indexByName": {},
                                          "renameByName": rename or {}}}


def bar_opts():
    return {"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
            "valueMode": "color", "namePlacement": "auto", "sizing": "auto",
            "minVizHeight": 16, "minVizWidth": 8, "maxVizHeight": 300,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}


def timeline_opts():
    return {"alignValue": "left", "mergeValues": True, "rowHeight": 0.9,
            "showValue": "auto", "legend": {"displayMode": "list", "placement": "bottom",
                                            "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"}}


def mapping(pairs):
    """value mappings: [(value, text, color)]"""
    return [{"type": "value", "options": {
        str(v): {"text": text, "color": color, "index": i}
        for i, (v, text, color) in enumerate(pairs)}}]


def thresholds(*steps):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def by_ref(ref, **props):
    return {"matcher": {"id": "byFrameRefID", "options": ref},
            "properties": [{"id": k, "value": v} for k, v in props.items()]}


def by_name(name, **props):
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k, "value": v} for k, v in props.items()]}


def utilization(dash, title, desc, exclude_powered_off):
    s = "sinfo_partition_nodes_state"
    busy = f'sum({mx(s, PART, lm("state", "=~", "allocated|mixed|draining"))} or 0 * {mx(s, PART)})'
    if exclude_powered_off:
        total = f'sum({mx(s, PART, lm("state", "!=", "powered_off"))})'
    else:
        total = f"sum({mx(s, PART)})"
    dash.panel("stat", title, [t(f"100 * {busy} / ({total} > 0)", "utilization")], 5, 8,
               desc, unit="percent", min_=0, max_=100, options=stat_opts(),
               field_defaults={"thresholds": thresholds((None, "blue"), (50, "green"), (90, "orange")),
                               "decimals": 1, "noValue": "0"})


# =============================================================================
# slurm-cluster.json
# =============================================================================

def cluster_dashboard():
    d = Dash("slurm-ha-cluster", "Slurm Cluster", ["slurm", "slurm-ha-exporter"],
             [v_datasource(), V_CLUSTER, V_PARTITION],
             "The panels of Azure CycleCloud's AzSlurm dashboards (Cluster, Job and Node "
             "Status, Extra Details) on slurm-ha-exporter, correct with several exporters per "
             "cluster (one per controller, one of them active) and exact finished-job counts.")

    d.row("Slurm Cluster Health Overview")
    d.panel("stat", "Slurm Scheduler Health", [
        t(mx("sdiag_main_cycle_time_us", 'type="mean"'), "Mean Scheduler Cycle"),
        t(mx("sdiag_main_mean_depth_cycle"), "Mean Depth Cycle"),
        t(mx("sdiag_server_thread_count"), "Controller Threads"),
        t(mx("sdiag_agent_queue_size"), "Agent Queue"),
        t(mx("sdiag_dbd_agent_queue_size"), "DBD Queue"),
        t(f'sum({mx("squeue_partition_jobs_state", PART, lm("state", "=", "pending"))})', "Queue Pressure"),
        t(f'sum({finished("24h", PART, lm("state", "!=", "completed"))})', "Failed Jobs (last 24h)", instant=True),
    ], 6, 8,
        "slurmctld's scheduler statistics (sdiag) from the controller in control, pending "
        "jobs (a job pending in several partitions counts in each) and jobs that finished in "
        "another state than COMPLETED during the last 24 hours (exact, see the finished-jobs panels).",
        options=stat_opts(graph="none", orientation="horizontal"),
        field_defaults={"noValue": "0"},
        overrides=[by_ref("A", unit="µs")])
    utilization(d, "Active Cluster Utilization %",
                "Nodes allocated, mixed or draining over all nodes that are not powered off "
                "(sinfo_partition_nodes_state: a node in several partitions counts in each).", True)
    utilization(d, "Overall Cluster Utilization %",
                "Nodes allocated, mixed or draining over all nodes, powered off ones included "
                "(sinfo_partition_nodes_state: a node in several partitions counts in each).", False)
    d.panel("piechart", "Finished Jobs between ${__from:date:YYYY-MM-DD HH:mm} and ${__to:date:YYYY-MM-DD HH:mm}", [
        t(f'sum({finished("$__range", PART, lm("state", "=", "completed"))})', "Completed Jobs", instant=True),
        t(f'sum({finished("$__range", PART, lm("state", "!=", "completed"))})', "Failed Jobs", instant=True),
    ], 8, 8, "Jobs that finished in the dashboard's time range, COMPLETED against every other "
             "end state; the legend's total is all finished jobs. " + FIN_DESC,
        unit="short",
        options={"displayLabels": ["name", "value", "percent"], "pieType": "pie",
                 "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                            "values": ["value", "percent"]},
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                 "tooltip": {"mode": "multi", "sort": "none"}},
        field_defaults={"noValue": "0", "decimals": 0},
        overrides=[by_name("Completed Jobs", color={"mode": "fixed", "fixedColor": "green"}),
                   by_name("Failed Jobs", color={"mode": "fixed", "fixedColor": "red"})])
    build = f"topk by (cluster) (1, max by (cluster, version, slurm_version) ({sel('slurm_exporter_build_info')}))"
    d.panel("table", "Cluster Specs", [
        ti(f"(max by (cluster, region) ({sel('jetpack_cluster_info')}) * on (cluster) group_left (version, slurm_version) {build}) or on (cluster) {build}"),
    ], 7, 6, "Cluster, Azure region (jetpack_cluster_info, only where CycleCloud's jetpack "
             "is installed), exporter version and the Slurm release it was built against.",
        options=table_opts(),
        transformations=[hide_cols("Value", "Value #A")])
    d.panel("table", "Nodelist by State", [
        ti(mx("sinfo_partition_nodes_state", PART)),
    ], 9, 6, "Nodes per partition, state and reason, as sinfo groups them; state is sinfo's "
             "long state, or the meaning of sinfo's suffix (not_responding, powered_off, ...).",
        options=table_opts([{"displayName": "partition", "desc": False}]),
        transformations=[hide_cols(rename={"Value": "nodes", "Value #A": "nodes"})])
    d.panel("stat", "Total Nodes by Partition $partition", [
        t(f'sum({mx("slurm_nodes")})', "Total Slurm Nodes"),
        t(f'sum by (partition) ({mx("sinfo_partition_nodes_state", PART)})', "{{partition}}"),
    ], 8, 6, "All nodes of the cluster (each once), then the nodes of each partition "
             "(a node in several partitions counts in each).",
        options=stat_opts(graph="none"), field_defaults={"noValue": "0"})

    d.row("Finished jobs (exact across failover)")
    d.panel("bargauge", "Finished jobs by state", [
        t(f'sort_desc(sum by (state) ({finished("$__range", PART)}))', "{{state}}", instant=True),
    ], 8, 8, FIN_DESC, unit="short", options=bar_opts(),
        field_defaults={"decimals": 0, "color": {"mode": "palette-classic"}})
    d.panel("bargauge", "Finished jobs by partition", [
        t(f'sort_desc(sum by (partition) ({finished("$__range", PART)}))', "{{partition}}", instant=True),
    ], 8, 8, FIN_DESC, unit="short", options=bar_opts(),
        field_defaults={"decimals": 0, "color": {"mode": "palette-classic"}})
    d.panel("table", "Failed jobs by partition, state, exit code and reason", [
        ti(f'sort_desc(sum by (partition, state, exit_code, reason) ({finished("$__range", PART, lm("state", "!=", "completed"))}) > 0)'),
    ], 8, 8, "Jobs that did not end COMPLETED in the time range. " + FIN_DESC,
        options=table_opts([{"displayName": "jobs", "desc": True}]),
        transformations=[hide_cols(rename={"Value": "jobs", "Value #A": "jobs"})])
    d.panel("timeseries", "Finished jobs per interval", [
        t(f'sum by (state) ({finished("$__interval", PART)})', "{{state}}"),
    ], 24, 8, "Jobs finished in each interval of the graph, by end state; the bars add up "
              "to the total of the range. " + FIN_DESC,
        unit="short", options=ts_opts(["sum"], "table"),
        field_defaults=dict(ts_custom("bars", stack=True), decimals=0))

    for what, metric in [("Queue wait", "slurm_job_queue_wait_seconds"), ("Run time", "slurm_job_run_seconds")]:
        buckets = exact_increase(sel(f"{metric}_bucket", PART), "$__range")
        d.panel("bargauge", f"{what} of finished jobs: median and 90th percentile", [
            t(f'histogram_quantile(0.5, sum by (class, le) ({buckets}))', "median {{class}}", instant=True),
            t(f'histogram_quantile(0.9, sum by (class, le) ({buckets}))', "p90 {{class}}", instant=True),
        ], 12, 8, f"{what} of the jobs that finished in the time range, by state class (completed; "
                  "failed, node_fail, boot_fail, out_of_memory as failed; the rest other), "
                  "estimated from histogram buckets of 1 s to a week; counted exactly once with "
                  "the finished-jobs counter, so right across failover.",
            unit="s", options=bar_opts(), field_defaults={"color": {"mode": "palette-classic"}})

    d.row("Job and Node Status Overview for partition $partition")
    d.panel("stat", "squeue snapshot", [
        t(f'sum({mx("squeue_partition_jobs_state", PART, lm("state", "=", "pending"))})', "pending"),
        t(f'sum by (state) ({mx("squeue_partition_jobs_state", PART, lm("state", "!=", "pending"))})', "{{state}}"),
        t(f'sum({mx("squeue_partition_jobs_state", PART)})', "Submitted Jobs"),
    ], 12, 4, "Jobs squeue would list, by state (array tasks counted singly; a job pending in "
              "several partitions counts in each), and their total.",
        options=stat_opts(graph="none"), field_defaults={"noValue": "0"})
    d.panel("stat", "Live: Node status", [
        t(f'sum by (state) ({mx("sinfo_partition_nodes_state", PART)})', "{{state}}"),
        t(f'sum({mx("sinfo_partition_nodes_state", PART)})', "Total"),
    ], 12, 4, "Nodes of the selected partitions by state (a node in several partitions counts in each).",
        options=stat_opts(graph="none"), field_defaults={"noValue": "0"})
    d.panel("timeseries", "Job Queue Overview by State", [
        t(f'sum by (state) ({mx("squeue_partition_jobs_state", PART, lm("state", "!=", "pending"))})', "{{state}}"),
        t(f'sum({mx("squeue_partition_jobs_state", PART, lm("state", "=", "pending"))})', "pending"),
        t(f'sum({mx("squeue_partition_jobs_state", PART)})', "submitted"),
    ], 24, 10, "Jobs squeue would list, by state, over time.",
        unit="short", options=ts_opts(["lastNotNull", "max"], "table"), field_defaults=ts_custom())
    d.panel("timeseries", "Live: Node status over time", [
        t(f'sum by (state) ({mx("sinfo_partition_nodes_state", PART)})', "{{state}}"),
    ], 24, 10, "Nodes of the selected partitions by state, over time (a node in several "
               "partitions counts in each).",
        unit="short", options=ts_opts(["lastNotNull", "max"], "table"),
        field_defaults=ts_custom(stack=True, fill=30))
    d.panel("timeseries", "Main Scheduling Cycle Time", [
        t(mx("sdiag_main_cycle_time_us", 'type="last"'), "Last Cycle"),
        t(mx("sdiag_main_cycle_time_us", 'type="mean"'), "Mean Cycle"),
        t(mx("sdiag_main_cycle_time_us", 'type="max"'), "Max Cycle"),
    ], 24, 9, "slurmctld's main scheduling cycle (sdiag); max and mean since the statistics "
              "were last reset (midnight, sdiag -r, or a controller switch).",
        unit="µs", options=ts_opts(["lastNotNull", "max"], "table"), field_defaults=ts_custom())

    d.row("Extra Cluster Details")
    d.panel("table", "Partition Specs", [
        ti(mx("azslurm_partition_info", PART)),
    ], 24, 7, "CycleCloud node arrays behind each partition (azslurm_partition_info: VM size, "
              "CPUs, GPUs, memory; value = nodes available). Only on CycleCloud.",
        options=table_opts(),
        transformations=[hide_cols(rename={"Value": "available_count", "Value #A": "available_count"})])
    info = f'max by (cluster, partition, state, default, nodes) ({sel("slurm_partition_info", PART)})'
    d.panel("table", "Partitions", [
        ti(f'{info} * on (cluster, partition) group_left () max by (cluster, partition) ({sel("slurm_partition_total_cpus", PART)})'),
        ti(f'{info} * on (cluster, partition) group_left () max by (cluster, partition) ({sel("slurm_partition_max_time_seconds", PART)})'),
    ], 24, 7, "Every Slurm partition: state, default, nodes, CPUs and MaxTime (empty: unlimited).",
        options=table_opts(),
        transformations=[{"id": "merge", "options": {}},
                         hide_cols(rename={"Value #A": "CPUs", "Value #B": "MaxTime"})],
        overrides=[by_name("Value #B", unit="dtdurations")])
    return d


# =============================================================================
# slurm-ha.json
# =============================================================================

def ha_dashboard():
    d = Dash("slurm-ha-exporter-ha", "Slurm HA", ["slurm", "slurm-ha-exporter"],
             [v_datasource(), V_CLUSTER],
             "Which controller is in control, which exporter exports, and the health of the "
             "exporter, the accounting counters and slurmctld's scheduler.")
    RI = "slurm_exporter_role_info"

    d.row("Who is in control")
    d.panel("state-timeline", "Exporting target (slurm_exporter_active)", [
        t(f"max by (cluster, instance) ({sel('slurm_exporter_active')})", "{{instance}}"),
    ], 12, 7, "Per target: 1 while it exports the cluster's series. Exactly one target per "
              "cluster should be green; an empty row is a target Prometheus cannot scrape.",
        options=timeline_opts(),
        field_defaults={"mappings": mapping([(1, "exporting", "green"), (0, "standby", "text")]),
                        "color": {"mode": "thresholds"}})
    d.panel("state-timeline", "Exporter role (slurm_exporter_role_info)", [
        t(f'max by (cluster, instance) (2 * {sel(RI, lm("role", "=", "active"))} or {sel(RI, lm("role", "=", "standby"))} or 0 * {sel(RI)})',
          "{{instance}}"),
    ], 12, 7, "Per target, the role its exporter decided: active, standby, or unknown (not on a "
              "SlurmctldHost). The table below says which input decided.",
        options=timeline_opts(),
        field_defaults={"mappings": mapping([(2, "active", "green"), (1, "standby", "blue"),
                                             (0, "unknown", "orange")]),
                        "color": {"mode": "thresholds"}})
    d.panel("state-timeline", "Controller in control", [
        t(f'group by (cluster, controller) ({sel(RI, lm("role", "=", "active"))})', "controller {{controller}}"),
    ], 12, 6, "The SlurmctldHost index (0 = primary) beside the active exporter, i.e. the "
              "slurmctld in control. Gaps are switches (no active exporter).",
        options=timeline_opts(),
        field_defaults={"mappings": mapping([(1, "in control", "green")]),
                        "color": {"mode": "thresholds"}})
    d.panel("state-timeline", "Controllers answering ping", [
        t(mx("slurm_controller_up"), "{{host}} (index {{index}})"),
    ], 12, 6, "slurm_controller_up from the active exporter: every SlurmctldHost that answers "
              "a ping. A backup answers too: up is not in control.",
        options=timeline_opts(),
        field_defaults={"mappings": mapping([(1, "up", "green"), (0, "down", "red")]),
                        "color": {"mode": "thresholds"}})
    d.panel("timeseries", "Exporters exporting (must be 1)", [
        t(f"sum by (cluster) ({sel('slurm_exporter_active')})", "exporting"),
    ], 8, 7, "Number of targets exporting cluster series. 0 during a switch (seconds), never "
             "2 for more than a moment; a lasting 0 or 2 is a fault.",
        unit="short", min_=0, options=ts_opts(["min", "max"]),
        field_defaults=dict(ts_custom(), thresholds=thresholds((None, "red"), (1, "green"), (2, "red")),
                            decimals=0, color={"mode": "thresholds"}))
    d.panel("stat", "Role transitions in range", [
        t(f"sum by (cluster, instance) ({exact_increase(sel('slurm_exporter_role_transitions_total'), '$__range', False)})",
          "{{instance}}", instant=True),
    ], 4, 7, "Role changes per exporter in the time range (a per-process counter: transitions "
             "before an exporter restart are not seen).",
        unit="short", options=stat_opts(graph="none"), field_defaults={"noValue": "0", "decimals": 0})
    d.panel("timeseries", "Role transitions", [
        t(f"sum by (cluster, instance) ({exact_increase(sel('slurm_exporter_role_transitions_total'), '$__interval', False)})",
          "{{instance}}"),
    ], 12, 7, "Role changes per exporter over time.",
        unit="short", options=ts_opts(["sum"]), field_defaults=dict(ts_custom("bars"), decimals=0))
    d.panel("timeseries", "Heartbeat age", [
        t(f"max by (cluster, instance) ({sel('slurm_exporter_heartbeat_age_seconds')})", "{{instance}}"),
    ], 12, 7, "Age of StateSaveLocation/heartbeat as each exporter sees it; beyond "
              "SlurmctldTimeout no controller is writing it (a switch is under way).",
        unit="s", options=ts_opts(["max"]), field_defaults=ts_custom())
    d.panel("table", "Roles now", [
        ti(f"max by (cluster, instance, role, controller, source) ({sel(RI)})"),
        ti(f"max by (cluster, instance, version, slurm_version) ({sel('slurm_exporter_build_info')})"),
    ], 12, 7, "Each target's role, controller index, what decided (ping, hook, heartbeat, "
              "config) and build.",
        options=table_opts(),
        transformations=[{"id": "merge", "options": {}}, hide_cols("Value #A", "Value #B")])

    d.row("Collectors")
    d.panel("state-timeline", "Collector success", [
        t(mx("slurm_exporter_collector_success"), "{{collector}}"),
    ], 12, 8, "1 when the collector's last run succeeded. A failing collector keeps its last "
              "good values.",
        options=timeline_opts(),
        field_defaults={"mappings": mapping([(1, "ok", "green"), (0, "failing", "red")]),
                        "color": {"mode": "thresholds"}})
    d.panel("timeseries", "Collector duration", [
        t(mx("slurm_exporter_collector_duration_seconds"), "{{collector}}"),
    ], 12, 8, "How long each collector's last run took.",
        unit="s", options=ts_opts(["mean", "max"], "table"), field_defaults=ts_custom())
    d.panel("timeseries", "Age of the collectors' data", [
        t(f"time() - {mx('slurm_exporter_collector_last_success_timestamp_seconds')}", "{{collector}}"),
    ], 24, 7, "Seconds since each collector last succeeded: how old the values on the other "
              "dashboards are.",
        unit="s", options=ts_opts(["max"], "table"), field_defaults=ts_custom())

    d.row("Accounting (finished-job counters)")
    d.panel("timeseries", "Accounting watermark lag", [
        t(f"time() - {mx('slurm_exporter_accounting_watermark_timestamp_seconds')}", "watermark lag"),
    ], 12, 7, "How far back the finished-job query reaches: every job that ended before the "
              "watermark is counted. It stays behind while slurmctld's DBD agent queue is not "
              "empty (slurmdbd down or flushing), at most one hour.",
        unit="s", options=ts_opts(["max"]),
        field_defaults=dict(ts_custom(), thresholds=thresholds((None, "green"), (300, "orange"), (1800, "red")),
                            custom=dict(ts_custom()["custom"], thresholdsStyle={"mode": "line"})))
    d.panel("stat", "Counting since", [
        t(f"1000 * {mx('slurm_exporter_accounting_counting_since_timestamp_seconds')}", "counting since"),
    ], 4, 7, "Start of the durable finished-job counters: jobs that ended earlier are not counted.",
        unit="dateTimeAsIso", options=stat_opts(graph="none"))
    d.panel("stat", "State errors in range", [
        t(f"sum by (cluster, instance) ({exact_increase(sel('slurm_exporter_state_errors_total'), '$__range', False)})",
          "{{instance}}", instant=True),
    ], 8, 7, "Accounting state files found unusable (set aside, counting restarted from the "
             "last 300 s) or not writable, per exporter, in the time range. Should be 0.",
        unit="short", options=stat_opts(graph="none"),
        field_defaults={"noValue": "0", "decimals": 0,
                        "thresholds": thresholds((None, "green"), (1, "red"))})

    d.row("slurmctld load")
    ours = f"sum by (cluster) (rate({sel('slurm_exporter_slurmctld_requests_total')}[$__rate_interval]))"
    everyone = f"sum by (cluster) ({merge('slurm_rpc_calls_total')} (rate({sel('slurm_rpc_calls_total')}[$__rate_interval])))"
    d.panel("timeseries", "slurmctld RPCs: this exporter against all clients", [
        t(ours, "this exporter"),
        t(everyone, "all clients (sdiag)"),
    ], 12, 8, "Requests the exporter sent to slurmctld (jobs, nodes, partitions, stats, config "
              "loads; an unchanged answer included) against every RPC slurmctld counted (sdiag, "
              "reset at midnight and at a controller switch).",
        unit="reqps", options=ts_opts(["mean", "max"]), field_defaults=ts_custom())
    # Over 10 minutes: sdiag's counts move only when the scheduler collector
    # runs (30 s), so shorter windows compare a smooth rate with a stepped
    # one (seen on the bed: 170 %). Capped at 100: slurmctld restarts its
    # counts at a controller switch, and our requests are among its RPCs.
    ours10 = ours.replace("[$__rate_interval]", "[10m]")
    everyone10 = everyone.replace("[$__rate_interval]", "[10m]")
    d.panel("timeseries", "This exporter's share of slurmctld RPCs", [
        t(f"clamp_max(100 * {ours10} / ({everyone10} > 0), 100)", "share"),
    ], 6, 8, "Exporter requests as a percentage of all RPCs slurmctld received, over 10 "
             "minutes (sdiag's counts move every scheduler collection and restart at a "
             "controller switch: right after one the share reads high, at most 100).",
        unit="percent", min_=0, options=ts_opts(["mean", "max"]), field_defaults=ts_custom())
    d.panel("timeseries", "This exporter's requests by source and answer", [
        t(f"sum by (cluster, source, answer) (rate({sel('slurm_exporter_slurmctld_requests_total')}[$__rate_interval]))",
          "{{source}} {{answer}}"),
    ], 6, 8, "answer=unchanged: slurmctld answered \"no change since\" (incremental loads).",
        unit="reqps", options=ts_opts(), field_defaults=ts_custom(stack=True, fill=30))
    d.panel("timeseries", "RPCs by type (top 10)", [
        t(f"topk(10, {merge('slurm_rpc_calls_total')} (rate({sel('slurm_rpc_calls_total')}[$__rate_interval])))", "{{rpc}}"),
    ], 12, 8, "Message types slurmctld received most.",
        unit="reqps", options=ts_opts(["mean", "max"], "table"), field_defaults=ts_custom())
    d.panel("timeseries", "RPC time by type (top 10)", [
        t(f"topk(10, {merge('slurm_rpc_time_seconds_total')} (rate({sel('slurm_rpc_time_seconds_total')}[$__rate_interval])))", "{{rpc}}"),
    ], 12, 8, "Seconds per second slurmctld spent handling each message type.",
        unit="s", options=ts_opts(["mean", "max"], "table"), field_defaults=ts_custom())
    d.panel("timeseries", "Threads and agent queue", [
        t(mx("slurm_scheduler_threads"), "server threads"),
        t(mx("slurm_scheduler_agent_queue_size"), "agent queue"),
        t(mx("slurm_scheduler_agents"), "agents"),
        t(mx("slurm_scheduler_agent_threads"), "agent threads"),
    ], 24, 7, "slurmctld's server threads and its outgoing RPC queue to compute nodes.",
        unit="short", options=ts_opts(["mean", "max"], "table"), field_defaults=ts_custom())

    d.row("slurmdbd")
    d.panel("state-timeline", "slurmdbd answers", [
        t(mx("slurm_dbd_up"), "slurmdbd"),
    ], 8, 7, "Whether slurmdbd answered the exporter's statistics request (dbd collector, "
             "daemon mode only). While it does not, slurmctld queues accounting records "
             "(DBD agent queue) and finished jobs are counted once it is back.",
        options=timeline_opts(),
        field_defaults={"mappings": mapping([(1, "up", "green"), (0, "down", "red")]),
                        "color": {"mode": "thresholds"}})
    d.panel("timeseries", "slurmdbd RPCs by message type (top 10)", [
        t(f"topk(10, {merge('slurm_dbd_rpc_type_calls_total')} (rate({sel('slurm_dbd_rpc_type_calls_total')}[$__rate_interval])))", "type {{type}}"),
    ], 8, 7, "Requests slurmdbd served, by message type number (sacctmgr show stats prints the "
             "name beside it). slurmdbd's own counts: the same from either exporter.",
        unit="reqps", options=ts_opts(["mean", "max"], "table"), field_defaults=ts_custom())
    d.panel("timeseries", "slurmdbd time by message type (top 10)", [
        t(f"topk(10, {merge('slurm_dbd_rpc_type_time_seconds_total')} (rate({sel('slurm_dbd_rpc_type_time_seconds_total')}[$__rate_interval])))", "type {{type}}"),
    ], 8, 7, "Seconds per second slurmdbd spent on each message type: near 1, accounting is "
             "the bottleneck.",
        unit="s", options=ts_opts(["mean", "max"], "table"), field_defaults=ts_custom())

    d.row("Scheduler health")
    d.panel("timeseries", "Main scheduling cycle", [
        t(mx("slurm_scheduler_cycle_last_seconds"), "last"),
        t(mx("slurm_scheduler_cycle_mean_seconds"), "mean"),
        t(mx("slurm_scheduler_cycle_max_seconds"), "max"),
    ], 8, 8, "Main scheduler cycle; mean and max since the statistics were reset.",
        unit="s", options=ts_opts(["lastNotNull", "max"]), field_defaults=ts_custom())
    d.panel("timeseries", "Backfill cycle", [
        t(mx("slurm_backfill_cycle_last_seconds"), "last"),
        t(mx("slurm_backfill_cycle_mean_seconds"), "mean"),
        t(mx("slurm_backfill_cycle_max_seconds"), "max"),
    ], 8, 8, "Backfill scheduler cycle; mean and max since the statistics were reset.",
        unit="s", options=ts_opts(["lastNotNull", "max"]), field_defaults=ts_custom())
    d.panel("timeseries", "DBD agent queue", [
        t(mx("slurm_scheduler_dbd_agent_queue_size"), "messages for slurmdbd"),
    ], 8, 8, "Messages slurmctld holds for slurmdbd. While it is not empty the accounting "
             "watermark does not move (finished jobs may not be in slurmdbd yet).",
        unit="short", options=ts_opts(["max"]),
        field_defaults=dict(ts_custom(), thresholds=thresholds((None, "green"), (1000, "orange"))))
    d.panel("timeseries", "Cycles per minute", [
        t(f"60 * {merge('slurm_scheduler_cycles_total')} (rate({sel('slurm_scheduler_cycles_total')}[$__rate_interval]))", "main"),
        t(f"60 * {merge('slurm_backfill_cycles_total')} (rate({sel('slurm_backfill_cycles_total')}[$__rate_interval]))", "backfill"),
    ], 8, 8, "Scheduling cycles per minute.",
        unit="short", options=ts_opts(["mean"]), field_defaults=ts_custom())
    d.panel("timeseries", "Queue and depth", [
        t(mx("slurm_scheduler_queue_length"), "main queue"),
        t(mx("slurm_scheduler_cycle_mean_depth"), "main mean depth"),
        t(mx("slurm_backfill_queue_length"), "backfill queue"),
        t(mx("slurm_backfill_last_depth"), "backfill depth (last)"),
        t(mx("slurm_backfill_last_depth_try"), "backfill depth tried (last)"),
    ], 8, 8, "Jobs in the schedulers' queues and how deep the last cycles went.",
        unit="short", options=ts_opts(["lastNotNull", "max"]), field_defaults=ts_custom())
    d.panel("timeseries", "Time since last backfill cycle", [
        t(f"time() - ({mx('slurm_backfill_last_cycle_timestamp_seconds')} > 0)", "since last backfill"),
    ], 8, 8, "A growing value means backfill is not running (or a cycle takes that long).",
        unit="s", options=ts_opts(["max"]), field_defaults=ts_custom())
    d.panel("timeseries", "Job throughput (slurmctld)", [
        t(f"60 * {merge('slurm_scheduler_jobs_submitted_total')} (rate({sel('slurm_scheduler_jobs_submitted_total')}[$__rate_interval]))", "submitted"),
        t(f"60 * {merge('slurm_scheduler_jobs_started_total')} (rate({sel('slurm_scheduler_jobs_started_total')}[$__rate_interval]))", "started"),
        t(f"60 * {merge('slurm_backfill_jobs_total')} (rate({sel('slurm_backfill_jobs_total')}[$__rate_interval]))", "started by backfill"),
        t(f"60 * {merge('slurm_scheduler_jobs_completed_total')} (rate({sel('slurm_scheduler_jobs_completed_total')}[$__rate_interval]))", "completed"),
        t(f"60 * {merge('slurm_scheduler_jobs_canceled_total')} (rate({sel('slurm_scheduler_jobs_canceled_total')}[$__rate_interval]))", "canceled"),
        t(f"60 * {merge('slurm_scheduler_jobs_failed_total')} (rate({sel('slurm_scheduler_jobs_failed_total')}[$__rate_interval]))", "failed"),
    ], 24, 8, "Jobs per minute from slurmctld's statistics (sdiag); approximate (reset at "
              "midnight and at a controller switch). For exact finished-job counts see the "
              "Slurm Cluster dashboard.",
        unit="short", options=ts_opts(["mean", "max"], "table"), field_defaults=ts_custom())
    return d


# =============================================================================
# slurm-resources.json
# =============================================================================

def resources_dashboard():
    d = Dash("slurm-ha-exporter-resources", "Slurm Resources", ["slurm", "slurm-ha-exporter"],
             [v_datasource(), V_CLUSTER, V_PARTITION, V_NODE],
             "CPU, memory and GPU allocation by cluster, partition and node; what pending jobs "
             "wait for; licenses and reservations.")

    def pct(alloc, total):
        return f"100 * {alloc} / ({total} > 0)"

    d.row("Cluster")
    for title, metric, unit in (("CPU allocation", "slurm_cluster_cpus", None),
                                ("Memory allocation", "slurm_cluster_memory_bytes", None),
                                ("GPU allocation", "slurm_cluster_gpus", None)):
        d.panel("gauge", title, [
            t(pct(f'sum({mx(metric, lm("state", "=", "alloc"))})', f'sum({mx(metric, lm("state", "=", "total"))})'), "allocated"),
        ], 4, 6, f"Allocated over configured ({metric}). No value: none configured.",
            unit="percent", min_=0, max_=100,
            options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                     "showThresholdLabels": False, "showThresholdMarkers": True},
            field_defaults={"thresholds": thresholds((None, "blue"), (50, "green"), (90, "orange")),
                            "decimals": 1, "noValue": "none configured"})
    d.panel("stat", "Nodes by state", [
        t(f"sum by (state) ({mx('slurm_nodes')})", "{{state}}"),
    ], 12, 6, "Nodes by sinfo's long state (each node once).",
        options=stat_opts(graph="none"), field_defaults={"noValue": "0"})
    d.panel("timeseries", "Cluster CPUs", [
        t(f'sum by (state) ({mx("slurm_cluster_cpus", lm("state", "!=", "total"))})', "{{state}}"),
    ], 8, 8, "CPUs as sinfo's %C splits them: allocated, idle, other (drained or down nodes).",
        unit="short", options=ts_opts(["lastNotNull"]), field_defaults=ts_custom(stack=True, fill=40))
    d.panel("timeseries", "Cluster memory", [
        t(f"sum by (state) ({mx('slurm_cluster_memory_bytes')})", "{{state}}"),
    ], 8, 8, "Memory allocated to jobs against configured (RealMemory).",
        unit="bytes", options=ts_opts(["lastNotNull"]), field_defaults=ts_custom())
    d.panel("timeseries", "Cluster GPUs", [
        t(f"sum by (state) ({mx('slurm_cluster_gpus')})", "{{state}}"),
    ], 8, 8, "GPUs (gres/gpu) allocated against configured.",
        unit="short", options=ts_opts(["lastNotNull"]), field_defaults=ts_custom())
    d.panel("bargauge", "Node state flags", [
        t(f"sort_desc({mx('slurm_nodes_flag')})", "{{flag}}"),
    ], 24, 5, "Nodes with each state flag set (drain, not responding, powered down, ...).",
        unit="short", options=dict(bar_opts(), orientation="vertical"),
        field_defaults={"decimals": 0})

    d.row("Partitions")
    for title, metric, unit in (("CPU allocation by partition", "slurm_partition_cpus", "short"),
                                ("Memory allocation by partition", "slurm_partition_memory_bytes", "bytes"),
                                ("GPU allocation by partition", "slurm_partition_gpus", "short")):
        d.panel("bargauge", title, [
            t(f'100 * {mx(metric, PART, lm("state", "=", "alloc"))} / ignoring (state) '
              f'({mx(metric, PART, lm("state", "=", "total"))} > 0)', "{{partition}}"),
        ], 8, 8, f"Allocated over total per partition ({metric}); a node in several "
                 "partitions counts in each.",
            unit="percent", min_=0, max_=100, options=bar_opts(),
            field_defaults={"thresholds": thresholds((None, "blue"), (50, "green"), (90, "orange")),
                            "decimals": 1})
    d.panel("timeseries", "Partition CPUs by state", [
        t(mx("slurm_partition_cpus", PART, 'state!="total"'), "{{partition}} {{state}}"),
    ], 12, 8, "Allocated, idle and other CPUs of each partition's nodes.",
        unit="short", options=ts_opts(["lastNotNull"], "table"), field_defaults=ts_custom())
    d.panel("timeseries", "Partition nodes by state", [
        t(mx("slurm_partition_nodes", PART), "{{partition}} {{state}}"),
    ], 12, 8, "Nodes of each partition by sinfo's long state.",
        unit="short", options=ts_opts(["lastNotNull"], "table"), field_defaults=ts_custom())
    d.panel("timeseries", "CPUs held by running jobs and asked for by pending jobs", [
        t(mx("slurm_partition_job_cpus", PART), "{{partition}} {{state}}"),
    ], 8, 8, "Running (and suspended) jobs: CPUs allocated; pending jobs: CPUs requested. A "
             "job pending in several partitions counts in each.",
        unit="short", options=ts_opts(["lastNotNull"]), field_defaults=ts_custom())
    d.panel("timeseries", "Memory held by running jobs and asked for by pending jobs", [
        t(mx("slurm_partition_job_memory_bytes", PART), "{{partition}} {{state}}"),
    ], 8, 8, "As for CPUs, in bytes.",
        unit="bytes", options=ts_opts(["lastNotNull"]), field_defaults=ts_custom())
    d.panel("timeseries", "GPUs held by running jobs and asked for by pending jobs", [
        t(mx("slurm_partition_job_gpus", PART), "{{partition}} {{state}}"),
    ], 8, 8, "As for CPUs, for gres/gpu.",
        unit="short", options=ts_opts(["lastNotNull"]), field_defaults=ts_custom())

    d.row("Pending jobs")
    d.panel("timeseries", "Pending jobs by reason", [
        t(f"sum by (reason) ({mx('slurm_partition_jobs_pending_reason', PART)})", "{{reason}}"),
    ], 16, 9, "Why pending jobs wait (array tasks counted singly; a job pending in several "
              "partitions counts in each).",
        unit="short", options=ts_opts(["lastNotNull", "max"], "table"),
        field_defaults=ts_custom(stack=True, fill=40))
    d.panel("table", "Pending reasons by partition", [
        ti(f"sort_desc({mx('slurm_partition_jobs_pending_reason', PART)})"),
    ], 8, 9, "Pending jobs now, per partition and reason.",
        options=table_opts([{"displayName": "jobs", "desc": True}]),
        transformations=[hide_cols(rename={"Value": "jobs", "Value #A": "jobs"})])

    oldest = mx("slurm_partition_pending_oldest_submit_timestamp_seconds", PART)
    d.panel("timeseries", "Oldest pending job by partition", [
        t(f"time() - {oldest}", "{{partition}}"),
    ], 8, 8, "How long the oldest pending job of each partition has waited (array tasks "
             "and held jobs included). What an autoscaler watches: a partition whose oldest "
             "job keeps ageing does not get the nodes it needs.",
        unit="s", options=ts_opts(["lastNotNull", "max"], "table"), field_defaults=ts_custom(fill=0))
    d.panel("timeseries", "Pending backlog: CPU-hours asked for", [
        t(f'{mx("slurm_partition_pending_cpu_seconds", PART)} / 3600', "{{partition}}"),
    ], 8, 8, "Requested CPUs times time limit of the pending jobs, per partition: the work "
             "waiting to run (jobs without a time limit add nothing).",
        unit="short", options=ts_opts(["lastNotNull", "max"], "table"),
        field_defaults=ts_custom(stack=True, fill=40))
    waited = mx("slurm_partition_pending_cpu_weighted_submit_timestamp_seconds", PART)
    d.panel("timeseries", "Pending backlog: CPU-hours waited so far", [
        t(f'{mx("slurm_partition_job_cpus", PART, lm("state", "=", "pending"))} '
          f"* ignoring (state) (time() - {waited}) / 3600", "{{partition}}"),
    ], 8, 8, "Requested CPUs times time waited, summed over the pending jobs of each "
             "partition: grows while jobs wait, drops when they start.",
        unit="short", options=ts_opts(["lastNotNull", "max"], "table"),
        field_defaults=ts_custom(stack=True, fill=40))

    d.row("Accounts and users")
    for who in ("account", "user"):
        for state in ("running", "pending"):
            verb = "held by running" if state == "running" else "asked for by pending"
            d.panel("timeseries", f"CPUs {verb} jobs by {who}", [
                t(f'sum by ({who}) ({mx(f"slurm_{who}_cpus", lm("state", "=", state))})', f"{{{{{who}}}}}"),
            ], 6, 8, f"Top {who}s by CPUs held by running jobs, the rest as `other` "
                     f"(--collector.{who}s, off by default; --collector.{who}s.top).",
                unit="short", options=ts_opts(["lastNotNull", "max"], "table"),
                field_defaults=ts_custom(stack=True, fill=40))
    fs = lambda m: f"max by (cluster, account) ({sel(m)})"
    d.panel("table", "Fairshare by account", [
        ti(fs("slurm_account_fairshare_shares")),
        ti(fs("slurm_account_fairshare_shares_normalized")),
        ti(fs("slurm_account_fairshare_effective_usage")),
        ti(fs("slurm_account_fairshare_level")),
        ti(fs("slurm_account_fairshare_raw_usage")),
    ], 12, 8, "What sshare prints per account: shares, normalized shares, effective usage, "
              "fair-tree level (above 1: used less than its share) and raw usage in decayed "
              "TRES-billing seconds. Only under PriorityType=priority/multifactor.",
        options=table_opts([{"displayName": "level", "desc": False}]),
        transformations=[{"id": "merge", "options": {}},
                         hide_cols(rename={"Value #A": "shares", "Value #B": "normalized shares",
                                           "Value #C": "effective usage", "Value #D": "level",
                                           "Value #E": "raw usage"})])
    d.panel("timeseries", "Usage over share by account", [
        t(f'{mx("slurm_account_fairshare_effective_usage", lm("account", "!=", "root"))} / '
          f'({mx("slurm_account_fairshare_shares_normalized", lm("account", "!=", "root"))} > 0)', "{{account}}"),
    ], 12, 8, "Effective usage divided by normalized shares: above 1 an account used more "
              "than its share and its users' jobs lose priority (root, which has no share, "
              "left out).",
        unit="short", min_=0, options=ts_opts(["lastNotNull", "max"], "table"),
        field_defaults=ts_custom(fill=0))

    d.row("Nodes")
    # Per node: the targets merged, then a node's GPU types added up.
    nodes = lambda m: f"sum by (cluster, node) ({mx(m, NODE)})"
    d.panel("table", "Nodes: CPU, memory and GPU allocation", [
        ti(nodes("slurm_node_cpus")),
        ti(nodes("slurm_node_cpus_alloc")),
        ti(nodes("slurm_node_cpu_load")),
        ti(nodes("slurm_node_memory_bytes")),
        ti(nodes("slurm_node_memory_alloc_bytes")),
        ti(nodes("slurm_node_memory_free_bytes")),
        ti(nodes("slurm_node_gpus")),
        ti(nodes("slurm_node_gpus_alloc")),
    ], 24, 10, "Per node: configured and allocated CPUs, the load and free memory slurmd "
               "reported, configured and allocated memory and GPUs.",
        options=table_opts([{"displayName": "CPUs alloc", "desc": True}]),
        transformations=[{"id": "merge", "options": {}},
                         hide_cols(rename={"Value #A": "CPUs", "Value #B": "CPUs alloc",
                                           "Value #C": "load", "Value #D": "memory",
                                           "Value #E": "memory alloc", "Value #F": "memory free",
                                           "Value #G": "GPUs", "Value #H": "GPUs alloc"})],
        overrides=[by_name(n, unit="bytes") for n in ("memory", "memory alloc", "memory free")])
    d.panel("timeseries", "CPU allocation by node", [
        t(pct(nodes("slurm_node_cpus_alloc"), nodes("slurm_node_cpus")), "{{node}}"),
    ], 12, 9, "Allocated CPUs over configured, per node (narrow with the node variable).",
        unit="percent", min_=0, max_=100, options=ts_opts(["mean"], "table"),
        field_defaults=ts_custom(fill=0))
    d.panel("timeseries", "Memory allocation by node", [
        t(pct(nodes("slurm_node_memory_alloc_bytes"), nodes("slurm_node_memory_bytes")), "{{node}}"),
    ], 12, 9, "Allocated memory over configured (RealMemory), per node.",
        unit="percent", min_=0, max_=100, options=ts_opts(["mean"], "table"),
        field_defaults=ts_custom(fill=0))
    d.panel("timeseries", "GPU allocation by node", [
        t(pct(nodes("slurm_node_gpus_alloc"), nodes("slurm_node_gpus")), "{{node}}"),
    ], 12, 9, "Allocated GPUs over configured, per node with GPUs.",
        unit="percent", min_=0, max_=100, options=ts_opts(["mean"], "table"),
        field_defaults=ts_custom(fill=0))
    d.panel("timeseries", "CPU load per CPU by node", [
        t(f"{nodes('slurm_node_cpu_load')} / ({nodes('slurm_node_cpus')} > 0)", "{{node}}"),
    ], 12, 9, "Load slurmd reported divided by configured CPUs; compare with allocation to "
              "spot idle allocations or oversubscription.",
        unit="percentunit", min_=0, options=ts_opts(["mean"], "table"),
        field_defaults=ts_custom(fill=0))
    d.panel("table", "Nodes not in service", [
        ti(f'max by (cluster, node, state, reason) ({sel("slurm_node_info", NODE, lm("state", "=~", "down|drained|draining|fail|failing|maint|reboot|inval|error|unknown"))})'),
    ], 24, 7, "Nodes down, drained, failing, in maintenance or rebooting, with their reason.",
        options=table_opts([{"displayName": "node", "desc": False}]),
        transformations=[hide_cols("Value", "Value #A")])

    d.row("Licenses")
    d.panel("timeseries", "Licenses in use", [
        t(mx("slurm_license_in_use"), "{{license}} in use"),
        t(mx("slurm_license_configured"), "{{license}} configured"),
    ], 12, 8, "Licenses held by running jobs against those configured.",
        unit="short", options=ts_opts(["lastNotNull", "max"], "table"), field_defaults=ts_custom())
    d.panel("bargauge", "License use %", [
        t(pct(mx("slurm_license_in_use"), mx("slurm_license_configured")), "{{license}}"),
    ], 6, 8, "In use over configured.",
        unit="percent", min_=0, max_=100, options=bar_opts(),
        field_defaults={"thresholds": thresholds((None, "green"), (90, "orange"), (100, "red")),
                        "decimals": 0})
    lic = lambda m: f"max by (cluster, license) ({sel(m)})"
    d.panel("table", "Licenses", [
        ti(lic("slurm_license_configured")),
        ti(lic("slurm_license_in_use")),
        ti(lic("slurm_license_free")),
        ti(lic("slurm_license_reserved")),
    ], 6, 8, "Configured, in use, free and reserved, per license.",
        options=table_opts(),
        transformations=[{"id": "merge", "options": {}},
                         hide_cols(rename={"Value #A": "configured", "Value #B": "in use",
                                           "Value #C": "free", "Value #D": "reserved"})])

    d.row("Reservations")
    rv = lambda m: f"max by (cluster, reservation) ({sel(m)})"
    d.panel("table", "Reservations", [
        ti(rv("slurm_reservation_nodes")),
        ti(rv("slurm_reservation_cores")),
        ti(f"1000 * {rv('slurm_reservation_start_time_seconds')}"),
        ti(f"1000 * {rv('slurm_reservation_end_time_seconds')}"),
        ti(rv("slurm_reservation_active")),
    ], 12, 8, "Every reservation: nodes, cores, start, end, whether active now.",
        options=table_opts(),
        transformations=[{"id": "merge", "options": {}},
                         hide_cols(rename={"Value #A": "nodes", "Value #B": "cores",
                                           "Value #C": "start", "Value #D": "end",
                                           "Value #E": "active"})],
        overrides=[by_name("start", unit="dateTimeAsIso"), by_name("end", unit="dateTimeAsIso")])
    d.panel("table", "Reservation details", [
        ti(f"max by (cluster, reservation, partition, nodes, users, accounts, maint) ({sel('slurm_reservation_info')})"),
    ], 12, 8, "Partition, nodes, users, accounts and whether it is a maintenance reservation.",
        options=table_opts(), transformations=[hide_cols("Value", "Value #A")])
    d.panel("timeseries", "Reserved cores", [
        t(f"{rv('slurm_reservation_cores')} * {rv('slurm_reservation_active')}", "{{reservation}}"),
    ], 24, 7, "Cores of each reservation while it is active.",
        unit="short", options=ts_opts(["lastNotNull", "max"]),
        field_defaults=ts_custom(stack=True, fill=40))
    return d


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, dash in (("slurm-cluster.json", cluster_dashboard()),
                       ("slurm-ha.json", ha_dashboard()),
                       ("slurm-resources.json", resources_dashboard())):
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(dash.json(), f, indent=2, ensure_ascii=False)
            f.write("\n")
        print(name, len(dash.panels), "panels")
