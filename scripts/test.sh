#!/usr/bin/env bash
# Runs every test: unit tests and the tests against a real single-host Slurm
# (started here: munge, MariaDB, slurmdbd, slurmctld, three slurmd).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/install-deps.sh
scripts/embedded-slurm.sh start
export SLURM_CONF=${EMBED_DIR:-$here/.embedded}/slurm.conf
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
