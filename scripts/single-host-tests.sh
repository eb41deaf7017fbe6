#!/usr/bin/env bash
# Unit tests and the tests against a real single-host Slurm (started here:
# munge, MariaDB, slurmdbd, slurmctld, three slurmd), for the Slurm whose
# headers and daemons are installed where this runs: the host (bookworm,
# 22.05) from scripts/test.sh, or a suite's container from scripts/suite.sh.
# Extra arguments go to the test runner (e.g. a filter).
set -euo pipefail
cargo nextest --version >/dev/null 2>&1 || { echo "tests: cargo-nextest is required (cargo install cargo-nextest)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
target=${CARGO_TARGET_DIR:-$here/target}
# The plugin (cdylib) that the dlopen host and the embedded slurmctld load,
# and the daemon binary, its accounting helper.
cargo build --quiet -p slurm-ha-exporter-plugin -p slurm-ha-exporter
export EMBED_PLUGIN=$target/debug/libjob_submit_ha_exporter.so
export EMBED_HELPER=$target/debug/slurm-ha-exporter
scripts/embedded-slurm.sh start
cleanup() {
  [ "${KEEP_CLUSTER:-0}" = 1 ] && return
  scripts/embedded-slurm.sh stop || true
}
trap cleanup EXIT
export SLURM_CONF=${EMBED_DIR:-$here/.embedded}/slurm.conf
# Tests that apply to some releases only are selected here, never skipped
# from inside (a skip would read as a pass):
# - the cross-check with Slurm's own exporter, where Slurm has one (25.11+);
# - the refusal of a plugin built for another release, where such a build
#   is at hand (FOREIGN_PLUGIN: scripts/suite.sh).
release=$(slurmctld -V | awk '{print $2}')
filter='not binary(ha_cluster)'
if [ "$(printf '%s\n' 25.11 "$release" | sort -V | head -n1)" != 25.11 ]; then
  filter+=' & not binary(slurm_metrics)'
  echo "test: not selected on Slurm $release: slurm_metrics (Slurm's own exporter is 25.11+)" >&2
fi
if [ -z "${FOREIGN_PLUGIN:-}" ]; then
  filter+=' & not test(a_plugin_built_for_another_release_is_refused_by_slurmctld)'
  echo "test: not selected: the foreign-plugin refusal (no FOREIGN_PLUGIN; scripts/suite.sh passes one)" >&2
fi
t0=$SECONDS
cargo nextest run --no-fail-fast --no-tests=fail -E "$filter" "$@"
echo "test: unit and single-host tests ($(slurmctld -V)) took $((SECONDS - t0))s" >&2
