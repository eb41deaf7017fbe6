#!/usr/bin/env bash
# Benchmark: what one collection cycle costs slurmctld on a busy cluster,
# this exporter against a shelling exporter's per-cycle commands, each read
# from slurmctld's statistics for its own user (bench/busy.py says how).
#
#   bench/busy.sh                 # 120 s of our daemon, 10 baseline runs
#   BENCH_SECONDS=60 bench/busy.sh
#
# Uses its own cluster directory (.embedded-bench) and stops the test
# cluster first: both use the same ports.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/install-deps.sh
cargo build --release -p slurm-ha-exporter
scripts/embedded-slurm.sh stop
export EMBED_DIR=$here/.embedded-bench EMBED_CLOUD_NODES=${BENCH_NODES:-2000}
scripts/embedded-slurm.sh start
export SLURM_CONF=$EMBED_DIR/slurm.conf
cd bench
/usr/bin/python3 busy.py --seconds "${BENCH_SECONDS:-120}" --exporter "$here/target/release/slurm-ha-exporter"
