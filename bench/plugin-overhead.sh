#!/usr/bin/env bash
# Benchmark: what the in-process plugin costs slurmctld. Submits 2,000 held
# jobs per round with and without job_submit_ha_exporter.so loaded,
# alternating, and prints the submission rates, slurmctld's CPU time and
# their ratios (bench/plugin_overhead.py says how).
#
#   bench/plugin-overhead.sh                       # 2000 jobs, 3 rounds per side
#   BENCH_JOBS=500 BENCH_ROUNDS=2 bench/plugin-overhead.sh
#
# It uses its own cluster directory (.embedded-bench-plugin) and stops the
# test cluster first: both use the same ports.
#
# For another release, inside that suite's container (scripts/suite.sh):
#   scripts/suite.sh src-25.11.5 run bench/plugin-overhead.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# A suite's container has its Slurm and tools already (and no Debian Slurm).
[ -n "${IN_SUITE:-}" ] || scripts/install-deps.sh
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --release --quiet -p slurm-ha-exporter -p slurm-ha-exporter-plugin
scripts/embedded-slurm.sh stop
export EMBED_DIR=$here/.embedded-bench-plugin${IN_SUITE:+-$IN_SUITE}
export SLURM_CONF=$EMBED_DIR/slurm.conf
trap 'scripts/embedded-slurm.sh stop' EXIT
/usr/bin/python3 bench/plugin_overhead.py --jobs "${BENCH_JOBS:-2000}" --rounds "${BENCH_ROUNDS:-3}" \
  --plugin "$target/release/libjob_submit_ha_exporter.so" \
  --helper "$target/release/slurm-ha-exporter"
