#!/usr/bin/env bash
# Benchmark: what a steady cluster costs this build against a baseline
# build (BENCH_BASELINE_REV, default the last commit that rendered and
# gzipped the whole exposition for every snapshot), both at default
# intervals and scraped by a real Prometheus every 15 s, on the embedded
# Slurm grown to BENCH_JOBS held jobs and BENCH_NODES powered-down CLOUD
# nodes. Prints figures and ratios (bench/steady.py says what and how).
#
#   bench/steady.sh                      # 10000 jobs, 2000 nodes, 180 s windows
#   BENCH_SECONDS=120 bench/steady.sh
#   BENCH_SLURMD_TIMEOUT=30 bench/steady.sh   # slurmd pinged every 10 s
#   BENCH_JOBS=100000 BENCH_NODES=10000 BENCH_RUNNING=12 bench/steady.sh
#   BENCH_AZSLURM=/path/to/cyclecloud-slurm bench/steady.sh
#
# BENCH_AZSLURM: a checkout of Azure/cyclecloud-slurm made outside this
# repository (nothing of it is copied here); its azure-slurm-exporter is
# installed in a throw-away venv under target/ and measured as a third peer
# (its squeue, sinfo, sdiag and sacct processes counted in its CPU).
#
# The baseline is built in a git worktree under target/ (a few minutes the
# first time). Uses its own cluster directory (.embedded-bench) and stops
# the test cluster first: both use the same ports.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/install-deps.sh
cargo build --release -p slurm-ha-exporter
# GNU time: the peak RSS of one full cycle (bench/steady.py says why).
[ -x /usr/bin/time ] || apt-get install -y -qq time
rev=${BENCH_BASELINE_REV:-3f31a2a}
wt=$here/target/bench-baseline
if [ "$(git -C "$wt" rev-parse HEAD 2>/dev/null)" != "$(git rev-parse "$rev^{commit}")" ]; then
  git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
  git worktree prune
  git worktree add --detach "$wt" "$rev"
fi
(cd "$wt" && cargo build --release -p slurm-ha-exporter)
az=()
if [ -n "${BENCH_AZSLURM:-}" ]; then
  [ -f "$BENCH_AZSLURM/azure-slurm-exporter/pyproject.toml" ] || { echo "steady: no azure-slurm-exporter in $BENCH_AZSLURM" >&2; exit 2; }
  python3 -c "import ensurepip" 2>/dev/null || apt-get install -y -qq python3-venv
  venv=$here/target/bench-azslurm-venv
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "$BENCH_AZSLURM/azure-slurm-exporter"
  az=(--azslurm-venv "$venv")
fi
scripts/embedded-slurm.sh stop
export EMBED_DIR=$here/.embedded-bench EMBED_CLOUD_NODES=${BENCH_NODES:-2000}
# Slurm's default SlurmdTimeout (CycleCloud's slurm.conf leaves it unset):
# slurmctld pings each slurmd every 100 s, and each answer (load, free
# memory) marks the node table changed. The test bed's 30 s would reload
# the node table every 10 s, which no steady production cluster does.
export EMBED_SLURMD_TIMEOUT=${BENCH_SLURMD_TIMEOUT:-300}
# Room for BENCH_JOBS (Slurm refuses jobs past MaxJobCount).
export EMBED_MAX_JOBS=$(( ${BENCH_JOBS:-10000} + 10000 ))
scripts/embedded-slurm.sh reset   # a fresh cluster: the node count is part of its config
scripts/embedded-slurm.sh start
export SLURM_CONF=$EMBED_DIR/slurm.conf
cd bench
/usr/bin/python3 steady.py --jobs "${BENCH_JOBS:-10000}" --running "${BENCH_RUNNING:-0}" --seconds "${BENCH_SECONDS:-180}" \
  --exporter "$here/target/release/slurm-ha-exporter" --baseline "$wt/target/release/slurm-ha-exporter" "${az[@]}"
