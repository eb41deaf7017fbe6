#!/usr/bin/env bash
# Benchmark: this exporter against a shelling exporter's per-cycle commands,
# on the embedded Slurm grown to BENCH_JOBS pending jobs and BENCH_NODES
# powered-down CLOUD nodes. Prints figures and ratios (ours/baseline).
#
#   bench/run.sh            # defaults: 10000 jobs, 2000 cloud nodes
#   BENCH_JOBS=2000 BENCH_NODES=500 bench/run.sh
#
# It uses its own cluster directory (.embedded-bench) and stops the test
# cluster first: both use the same ports.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/install-deps.sh
cargo build --release
scripts/embedded-slurm.sh stop
export EMBED_DIR=$here/.embedded-bench EMBED_CLOUD_NODES=${BENCH_NODES:-2000}
scripts/embedded-slurm.sh reset   # a fresh cluster: the node count is part of its config
scripts/embedded-slurm.sh start
export SLURM_CONF=$EMBED_DIR/slurm.conf
/usr/bin/python3 bench/bench.py --jobs "${BENCH_JOBS:-10000}" --exporter target/release/slurm-ha-exporter
