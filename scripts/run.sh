#!/usr/bin/env bash
# Sets up and runs the exporter against a real Slurm:
# - uses the cluster this machine is configured for (SLURM_CONF, else
#   /etc/slurm/slurm.conf) when its slurmctld answers;
# - otherwise starts the embedded single-host cluster (scripts/embedded-slurm.sh).
# Extra arguments go to the exporter, e.g. scripts/run.sh --web.listen-address=:9200
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"

conf=${SLURM_CONF:-/etc/slurm/slurm.conf}
if [ -r "$conf" ] && SLURM_CONF=$conf timeout 20 scontrol ping 2>/dev/null | grep -q "is UP"; then
  export SLURM_CONF=$conf
  echo "run: using the cluster of $SLURM_CONF" >&2
else
  echo "run: no reachable cluster at $conf; starting the embedded single-host Slurm" >&2
  "$here/scripts/embedded-slurm.sh" start
  export SLURM_CONF=${EMBED_DIR:-$here/.embedded}/slurm.conf
fi
cargo build --release --manifest-path "$here/Cargo.toml"
echo "run: metrics at http://localhost:9101/metrics unless --web.listen-address says otherwise (Ctrl-C stops)" >&2
exec "$here/target/release/slurm-ha-exporter" run "$@"
