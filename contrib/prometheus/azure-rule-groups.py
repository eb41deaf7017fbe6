#!/usr/bin/env python3
"""Writes slurm-ha-exporter.azure.json, the rules of slurm-ha-exporter.rules.yml
as Azure Monitor Prometheus rule groups (an ARM template), for workspaces such
as CycleCloud's where no Prometheus evaluates rule files. Edit the YAML, run
this, commit both (contrib/check.sh fails when they disagree).

    contrib/prometheus/azure-rule-groups.py [OUT_FILE]   (default: beside this script)

Each rule group of the YAML becomes one Microsoft.AlertsManagement/
prometheusRuleGroups resource with the same rules, in the same order, and the
same expressions, labels and annotations. What Azure's form needs besides:
  - `for` as an ISO 8601 duration (4m -> PT4M; 0m is left out);
  - a severity number from our `severity` label (critical 0, warning 2,
    info 3; Azure's 0-4), the label itself kept for routing;
  - the group's interval: PT1M, the shortest Azure evaluates (the rules'
    `for` and windows are minutes, so one minute changes no outcome);
  - strings starting with "[" escaped as "[[" (ARM reads "[...]" as a
    template expression).
Parameters of the template: the workspace's resource id (the groups' scope),
an optional action group id, the location and a name prefix.
"""
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "slurm-ha-exporter.rules.yml")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "slurm-ha-exporter.azure.json")

SEVERITY = {"critical": 0, "warning": 2, "info": 3}
API_VERSION = "2023-03-01"
INTERVAL = "PT1M"


def iso_duration(d):
    """A Prometheus duration (one unit: 30s, 4m, 1h, 1d) in ISO 8601."""
    m = re.fullmatch(r"(\d+)([smhd])", d)
    if not m:
        sys.exit(f"azure-rule-groups: cannot convert duration {d!r}")
    n, unit = int(m.group(1)), m.group(2)
    if unit == "d":
        return f"P{n}D"
    return f"PT{n}{unit.upper()}"


def arm_string(s):
    return "[" + s if s.startswith("[") else s


def arm_map(m):
    return {k: arm_string(str(v)) for k, v in (m or {}).items()}


def rule(r):
    out = {}
    if "record" in r:
        out["record"] = r["record"]
    else:
        out["alert"] = r["alert"]
        sev = (r.get("labels") or {}).get("severity")
        if sev not in SEVERITY:
            sys.exit(f"azure-rule-groups: alert {r['alert']}: severity {sev!r} is not one of {sorted(SEVERITY)}")
        out["severity"] = SEVERITY[sev]
    out["expression"] = arm_string(r["expr"])
    if "for" in r and not re.fullmatch(r"0[smhd]", r["for"]):
        out["for"] = iso_duration(r["for"])
    if r.get("labels"):
        out["labels"] = arm_map(r["labels"])
    if r.get("annotations"):
        out["annotations"] = arm_map(r["annotations"])
    if "alert" in r:
        out["actions"] = "[variables('actions')]"
    out["enabled"] = True
    return out


def main():
    with open(SRC) as f:
        groups = yaml.safe_load(f)["groups"]
    resources = []
    for g in groups:
        if "interval" in g:
            sys.exit(f"azure-rule-groups: group {g['name']} sets its own interval; Azure's is {INTERVAL}")
        resources.append({
            "type": "Microsoft.AlertsManagement/prometheusRuleGroups",
            "apiVersion": API_VERSION,
            "name": f"[concat(parameters('ruleGroupPrefix'), '{g['name'][len('slurm-ha-exporter'):]}')]",
            "location": "[parameters('location')]",
            "properties": {
                "description": f"slurm-ha-exporter: {g['name']} (written from slurm-ha-exporter.rules.yml)",
                "scopes": ["[parameters('azureMonitorWorkspaceId')]"],
                "enabled": True,
                "interval": INTERVAL,
                "rules": [rule(r) for r in g["rules"]],
            },
        })
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": "slurm-ha-exporter's Prometheus rules as Azure Monitor Prometheus rule groups. "
            "Written by contrib/prometheus/azure-rule-groups.py from slurm-ha-exporter.rules.yml: edit that, not this.",
        },
        "parameters": {
            "azureMonitorWorkspaceId": {
                "type": "string",
                "metadata": {"description": "Resource id of the Azure Monitor workspace the agents write to"},
            },
            "actionGroupId": {
                "type": "string",
                "defaultValue": "",
                "metadata": {"description": "Resource id of an action group to notify (empty: alerts only show in Azure Monitor)"},
            },
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
            "ruleGroupPrefix": {"type": "string", "defaultValue": "slurm-ha-exporter"},
        },
        "variables": {
            "actions": "[if(empty(parameters('actionGroupId')), createArray(), "
            "createArray(createObject('actionGroupId', parameters('actionGroupId'))))]",
        },
        "resources": resources,
    }
    with open(OUT, "w") as f:
        json.dump(template, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
