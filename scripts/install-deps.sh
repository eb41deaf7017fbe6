#!/usr/bin/env bash
# Installs what building, running and testing need, from Debian's packages:
# Slurm's headers and daemons, munge, MariaDB (for slurmdbd), clang (for
# bindgen), Prometheus (promtool and the server) and Python's Prometheus
# client (a strict OpenMetrics parser for the tests). Idempotent.
set -euo pipefail

PKGS=(libslurm-dev libclang-dev clang slurmctld slurmd slurmdbd slurm-client munge
      mariadb-server prometheus python3-prometheus-client curl procps
      debootstrap docker-compose)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # Packages' own services must not start here: the embedded cluster starts
  # what it needs itself, with its own configuration.
  $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "install-deps: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }
docker info >/dev/null 2>&1 || echo "install-deps: warning: no Docker engine answers; the HA cluster tests need one" >&2
