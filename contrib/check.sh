#!/bin/sh
# Checks what contrib/ ships, without Slurm: the Prometheus rules
# (promtool check rules, then their unit tests with promtool test rules)
# and the dashboards (the JSON is what grafana/generate.py writes), and the
# rules' Azure Monitor form (what prometheus/azure-rule-groups.py writes).
# tests/contrib_files.rs checks the dashboards' queries; tests/ha_cluster.rs
# evaluates them, and the rules, on the Docker bed's Prometheus.
#
# The rules must behave alike on every Prometheus admins run, so they are
# checked with the host's promtool (Debian bookworm: 2.42) and with the
# promtool inside each image of PROMTOOL_IMAGES found locally (default: the
# bed's trixie and forky images, 2.53 and 3.5, which docker/build-images.sh
# SUITE builds; PROMTOOL_IMAGES= tests with the host's alone). An image that
# is not here is reported as not tested, not as a failure; this script never
# builds, pulls or removes one.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
if ! command -v promtool >/dev/null 2>&1; then
  echo "contrib: promtool not found (apt-get install prometheus)" >&2
  exit 2
fi
images=${PROMTOOL_IMAGES-slurm-ha-exporter/slurm:trixie slurm-ha-exporter/slurm:forky}
passed=0 failed=0
check() {
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "contrib: FAILED: $*" >&2; fi
}
promtool_version() {
  "$@" --version 2>/dev/null | sed -n '1s/^promtool, version \([^ ]*\).*/\1/p'
}
tested="" untested=""

# The host's promtool.
version=$(promtool_version promtool)
echo "contrib: rules with promtool ${version:-(unknown version)} (host)"
check promtool check rules "$dir/prometheus/slurm-ha-exporter.rules.yml"
check promtool test rules "$dir/prometheus/slurm-ha-exporter.rules.test.yml"
tested="${version:-?} (host)"

# The same in each image, with the rules mounted read-only. The container
# has no network and is removed when promtool ends.
promtool_in_image() {
  image=$1
  shift
  docker run --rm --network none --entrypoint promtool \
    -v "$dir/prometheus:/rules:ro" -w /rules "$image" "$@"
}
docker=ok
if ! command -v docker >/dev/null 2>&1; then
  docker="no docker"
elif ! docker version >/dev/null 2>&1; then
  docker="docker daemon not reachable"
fi
for image in $images; do
  if [ "$docker" != ok ]; then
    untested="$untested, $image ($docker)"
    continue
  fi
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    untested="$untested, $image (image absent)"
    continue
  fi
  version=$(promtool_version promtool_in_image "$image")
  if [ -z "$version" ]; then
    untested="$untested, $image (no promtool in it)"
    continue
  fi
  echo "contrib: rules with promtool $version ($image)"
  check promtool_in_image "$image" check rules slurm-ha-exporter.rules.yml
  check promtool_in_image "$image" test rules slurm-ha-exporter.rules.test.yml
  tested="$tested, $version ($image)"
done
echo "contrib: Prometheus rules tested with promtool $tested"
[ -z "$untested" ] || echo "contrib: not tested here: ${untested#, }"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 "$dir/grafana/generate.py" "$out" >/dev/null
for f in "$dir"/grafana/*.json; do
  check cmp "$f" "$out/$(basename "$f")"
done
# The rules as Azure Monitor rule groups: written from the YAML (Debian's
# python3-yaml, hence /usr/bin/python3).
check /usr/bin/python3 "$dir/prometheus/azure-rule-groups.py" "$out/azure.json"
check cmp "$dir/prometheus/slurm-ha-exporter.azure.json" "$out/azure.json"
echo "contrib: $passed passed, $failed failed"
[ "$failed" = 0 ]
