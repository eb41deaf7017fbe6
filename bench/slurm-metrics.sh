#!/usr/bin/env bash
# Benchmark: what one scrape of Slurm's own exporter (metrics/openmetrics,
# served by slurmctld, 25.11+) costs slurmctld, against one collection cycle
# of ours, at BENCH_JOBS pending jobs and BENCH_NODES powered-down CLOUD
# nodes of BENCH_NODE_CPUS CPUs (default 64, so the cloud partition has
# more CPUs than a 16-bit counter holds: Slurm's partition CPU sums wrap). Runs inside the forky (26.05) container of scripts/suite.sh, with
# its own embedded cluster; prints figures and ratios
# (bench/slurm_metrics.py says how they are measured).
#
#   bench/slurm-metrics.sh                       # 10000 jobs, 2000 nodes
#   BENCH_JOBS=2000 BENCH_NODES=500 bench/slurm-metrics.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if [ "${1:-}" != --inside ]; then
  scripts/suite.sh forky build >/dev/null
  exec scripts/suite.sh forky run bench/slurm-metrics.sh --inside
fi
cargo build --release --quiet -p slurm-ha-exporter
export EMBED_DIR=$here/.embedded-bench-forky EMBED_CLOUD_NODES=${BENCH_NODES:-2000}
export EMBED_CLOUD_CPUS=${BENCH_NODE_CPUS:-64}
scripts/embedded-slurm.sh reset >/dev/null 2>&1 || true
scripts/embedded-slurm.sh start
trap 'scripts/embedded-slurm.sh stop' EXIT
export SLURM_CONF=$EMBED_DIR/slurm.conf
python3 bench/slurm_metrics.py --jobs "${BENCH_JOBS:-10000}" --seconds "${BENCH_SECONDS:-30}" \
  --exporter "$CARGO_TARGET_DIR/release/slurm-ha-exporter" --ctld-pid-file "$EMBED_DIR/run/slurmctld.pid"
