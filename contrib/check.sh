#!/bin/sh
# Checks what contrib/ ships, without Slurm: the Prometheus rules
# (promtool check rules, then their unit tests with promtool test rules)
# and the dashboards (the JSON is what grafana/generate.py writes).
# tests/contrib_files.rs checks the dashboards' queries; tests/ha_cluster.rs
# evaluates them, and the rules, on the Docker bed's Prometheus.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
if ! command -v promtool >/dev/null 2>&1; then
  echo "contrib: promtool not found (apt-get install prometheus)" >&2
  exit 2
fi
passed=0 failed=0
check() {
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "contrib: FAILED: $*" >&2; fi
}
check promtool check rules "$dir/prometheus/slurm-ha-exporter.rules.yml"
check promtool test rules "$dir/prometheus/slurm-ha-exporter.rules.test.yml"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 "$dir/grafana/generate.py" "$out" >/dev/null
for f in "$dir"/grafana/*.json; do
  check cmp "$f" "$out/$(basename "$f")"
done
echo "contrib: $passed passed, $failed failed"
[ "$failed" = 0 ]
