#!/usr/bin/env bash
# The seeded chaos soak on the Docker HA bed (tests/ha/soak.rs; what it
# does and proves: docs/soak.md).
#
#   scripts/soak.sh [--seed=N] [--duration=SECONDS] [--release=SUITE] [--mode=daemon|plugin]
#                   [--statesave-cache=SECONDS] [--statesave-size=MB]
#
# --seed (default 1): the same seed replays the same schedule of faults and
# jobs. --duration (default 600). --release: bookworm (Slurm 22.05, the
# host's; default), trixie, forky or src-RELEASE (built first with
# scripts/suite.sh SUITE build). --mode: the exporter as a daemon beside
# each slurmctld (default) or the plugin inside it. --statesave-cache:
# each controller reads and writes StateSaveLocation through its own client
# of the shared directory that keeps attributes and names that many seconds
# (the NFS stand-in, docs/soak.md). --statesave-size (default 256): the
# soak's StateSaveLocation is a tmpfs of that size, which its fault
# "StateSaveLocation full" fills. The bed is started
# fresh, with a second partition whose jobs preempt the first's
# (URGENT_PARTITION). The run's output, the schedule and the report at the end, is also
# kept in target/soak/. Exits non-zero when the oracle found anything.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
seed=1 duration=600 release=bookworm mode=daemon cache= size=256
for a in "$@"; do
  case "$a" in
    --seed=*) seed=${a#*=} ;;
    --duration=*) duration=${a#*=} ;;
    --release=*) release=${a#*=} ;;
    --mode=*) mode=${a#*=} ;;
    --statesave-cache=*) cache=${a#*=} ;;
    --statesave-size=*) size=${a#*=} ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown argument $a (--seed=N --duration=SECONDS --release=SUITE --mode=daemon|plugin --statesave-cache=SECONDS --statesave-size=MB)" >&2; exit 2 ;;
  esac
done
[[ $seed =~ ^[0-9]+$ ]] || { echo "soak: --seed must be a number" >&2; exit 2; }
[[ $duration =~ ^[0-9]+$ ]] || { echo "soak: --duration must be seconds" >&2; exit 2; }
[[ -z $cache || $cache =~ ^[1-9][0-9]*$ ]] || { echo "soak: --statesave-cache must be seconds (1 or more)" >&2; exit 2; }
[[ $size =~ ^[1-9][0-9]*$ ]] || { echo "soak: --statesave-size must be MB (1 or more)" >&2; exit 2; }
case "$release:$cache" in trixie:?*|forky:?*) echo "soak: --statesave-cache needs bookworm's bindfs (libfuse 2): --release=bookworm or src-RELEASE" >&2; exit 2 ;; esac
case "$mode" in daemon|plugin) ;; *) echo "soak: --mode must be daemon or plugin" >&2; exit 2 ;; esac
case "$release" in bookworm|trixie|forky|src-[0-9]*) ;; *) echo "soak: unknown release $release (bookworm, trixie, forky, src-RELEASE)" >&2; exit 2 ;; esac

export SUITE=$release EXPORTER_MODE=$mode SOAK_SEED=$seed SOAK_DURATION=$duration STATESAVE_CACHE=$cache STATESAVE_SIZE=$size URGENT_PARTITION=1
if [ "$release" != bookworm ]; then
  # As scripts/suite.sh ha runs the scenarios: this suite's build on its bed.
  scripts/suite.sh "$release" build
  export EXPORTER_BIN=$here/target/$release/debug/slurm-ha-exporter
  export EXPORTER_PLUGIN=$here/target/$release/debug/libjob_submit_ha_exporter.so
fi
docker/cluster.sh down >/dev/null 2>&1 || true
mkdir -p target/soak
log=target/soak/$release-$mode${cache:+-cache$cache}-seed$seed-$(date -u +%Y%m%dT%H%M%SZ).log
echo "soak: seed $seed, ${duration}s, $release, $mode mode${cache:+, StateSaveLocation cached ${cache}s per controller}; log: $log" >&2
# cargo test, not nextest: nextest's slow-test limit for this binary
# (.config/nextest.toml) would end an hour's soak.
rc=0
cargo test --test ha_cluster -- --ignored --exact soak::soak --nocapture 2>&1 | tee "$log" || rc=$?
[ "${KEEP_CLUSTER:-0}" = 1 ] || docker/cluster.sh down >/dev/null 2>&1 || true
exit $rc
