#!/usr/bin/env bash
# Records tests/golden/big/ (see tests/golden.rs) from a real cluster: an
# embedded cluster of its own (EMBED_DIR=.embedded-golden, 2,000 CLOUD
# nodes besides node1..node3 and ghost1) put into the states the
# collectors must handle, then `slurm-ha-exporter record`, gzipped.
#
#   scripts/record-golden.sh      # about 3 minutes; the cluster is reset after
#
# Not for a host whose embedded cluster (scripts/embedded-slurm.sh) is
# running: they share ports.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export EMBED_DIR=$here/.embedded-golden EMBED_CLOUD_NODES=2000
out=$here/tests/golden/big
log() { echo "record-golden: $*" >&2; }

cargo build --quiet --manifest-path "$here/Cargo.toml" --bin slurm-ha-exporter
bin=$here/target/debug/slurm-ha-exporter
"$here/scripts/embedded-slurm.sh" reset
trap '"$here/scripts/embedded-slurm.sh" reset' EXIT
"$here/scripts/embedded-slurm.sh" start
export SLURM_CONF=$EMBED_DIR/slurm.conf

# Polls "$@" for up to 120 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 480); do "$@" && return 0; sleep 0.25; done
  log "timed out waiting for $what"; exit 1
}
# scontrol's state, not sinfo's: with CLOUD nodes configured, sinfo 22.05
# prints a partly allocated node as "allocated" where scontrol (and
# libslurm's SHOW_MIXED) say MIXED.
mixed() { scontrol show node "$1" | grep -q 'State=MIXED'; }
sub() { sbatch --parsable -o /dev/null "$@"; }

# Running jobs: node1 partly (mixed), node3 with a GPU.
sub -p debug -w node1 -n 2 -t 30 --wrap 'sleep 3600' >/dev/null
sub -p debug -w node3 -n 1 --gres=gpu:1 --wrap 'sleep 3600' >/dev/null
# An array with tasks running on node3 and the rest pending behind %2.
sub -p debug -w node3 -n 1 -a 0-49%2 --wrap 'sleep 3600' >/dev/null
# Pending for many reasons, in one partition or in two.
sub -p debug,batch -N 2 --exclusive -t 10 --wrap true >/dev/null
sub -p batch -t 120 --wrap true >/dev/null                 # PartitionTimeLimit
sub -p debug --begin=now+1hour --wrap true >/dev/null       # BeginTime
first=$(sub -p debug -H --wrap true)                        # JobHeldUser
sub -p debug --dependency=afterok:"$first" --wrap true >/dev/null  # Dependency
sub -p cloud -H -n 8 -a 0-999 --wrap true >/dev/null        # a held array on the cloud partition
for _ in $(seq 1 40); do sub -p debug,batch -n 4 -t 5 --wrap true >/dev/null; done
# Other accounts and another user (daemon, uid 1 on every Debian).
sub -p debug -A physics -n 2 -t 20 --wrap true >/dev/null
sub -p batch -A chemistry --uid=daemon --chdir=/tmp -n 1 -t 30 -H --wrap true >/dev/null
sub -p debug -A chemistry --uid=daemon --chdir=/tmp -w node3 -n 1 --wrap 'sleep 3600' >/dev/null

# Node states: node2 drained, node1 draining, ghost1 down and not
# responding, node3 to reboot when its jobs end, cloud nodes drained,
# down, powering up, reserved and in a maintenance reservation (all
# powered down besides).
wait_for "node1 mixed" mixed node1
scontrol update nodename=node2 state=drain reason='disk replaced'
scontrol update nodename=node1 state=drain reason='waiting for a kernel'
wait_for "ghost1 down" sh -c 'scontrol update nodename=ghost1 state=down reason=unreachable 2>/dev/null; [ "$(sinfo -h -N -n ghost1 -o %T)" = "down*" ]'
scontrol update nodename='cloud[1-20]' state=drain reason='bad image'
scontrol update nodename='cloud[21-30]' state=down reason='quota'
scontrol update nodename='cloud[31-35]' state=power_up
scontrol create reservation reservationname=golden_users users=root nodes='cloud[100-199]' starttime=now duration=60
scontrol create reservation reservationname=golden_maint flags=maint,ignore_jobs users=root nodes='cloud[200-249]' starttime=now duration=60
scontrol reboot ASAP nextstate=resume reason='new kernel' node3
wait_for "cloud31 powering up" sh -c "sinfo -h -N -n cloud31 -o %T | grep -q '#'"
# Nodes get a reservation's flags when slurmctld next walks its
# reservations, not at once.
flag_on() { scontrol show node "$1" | grep -q "State=[A-Z]*+.*$2"; }
wait_for "cloud100 reserved" flag_on cloud100 RESERVED
wait_for "cloud200 in maintenance" flag_on cloud200 MAINTENANCE
wait_for "node3 reboot requested" flag_on node3 REBOOT_REQUESTED
# The backfill scheduler has had its go at the pending jobs (bf_interval=5).
cycles() { sdiag | awk '/^Backfilling stats/ {b=1} b && /Total cycles:/ {print $3; exit}'; }
before=$(cycles)
more_cycles() { [ "$(cycles)" -gt "$before" ]; }
wait_for "a backfill cycle" more_cycles

"$bin" record "$EMBED_DIR/golden"
mkdir -p "$out"
for f in cluster.json families.prom; do
  gzip -9n <"$EMBED_DIR/golden/$f" >"$out/$f.gz"
done
log "wrote $out ($(slurmctld -V)): $(du -sh "$out" | cut -f1)"
