#!/usr/bin/env bash
# Installs what building, running and testing need, from Debian's packages:
# Slurm's headers and daemons, munge, MariaDB (for slurmdbd), clang (for
# bindgen), Prometheus (promtool and the server) and Python's Prometheus
# client (a strict OpenMetrics parser for the tests), dpkg-dev (the
# packages' library dependencies). Idempotent.
set -euo pipefail

PKGS=(libslurm-dev libclang-dev clang slurmctld slurmd slurmdbd slurm-client munge
      mariadb-server prometheus python3-prometheus-client python3-yaml curl procps
      debootstrap docker-compose dpkg-dev)

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
# cargo-deb builds the Debian packages (packaging/build-debs.sh); a fixed
# release, so a new one cannot change the packages under us.
if ! cargo deb --version 2>/dev/null | grep -qw '3\.8\.0'; then
  echo "install-deps: installing cargo-deb 3.8.0 (about 3 minutes)" >&2
  cargo install --quiet --locked cargo-deb --version 3.8.0
fi
docker info >/dev/null 2>&1 || echo "install-deps: warning: no Docker engine answers; the HA cluster tests need one" >&2
