#!/usr/bin/env bash
# Installs what building, running and testing need, from Debian's packages:
# Slurm's headers and daemons, munge, MariaDB (for slurmdbd), clang (for
# bindgen), Prometheus (promtool and the server) and Python's Prometheus
# client (a strict OpenMetrics parser for the tests), dpkg-dev (the
# packages' library dependencies), rpm (rpm's own tools, to read the rpms we
# build); and the packaging tools below. Idempotent.
set -euo pipefail

PKGS=(libslurm-dev libclang-dev clang slurmctld slurmd slurmdbd slurm-client munge
      mariadb-server prometheus python3-prometheus-client python3-yaml curl procps
      debootstrap docker-compose dpkg-dev rpm)

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
# The rpms (packaging/build-rpm.sh): cargo-generate-rpm packs them,
# cargo-zigbuild links for glibc 2.28 with zig (PyPI's ziglang). Fixed
# releases too.
for tool in cargo-generate-rpm@0.21.1 cargo-zigbuild@0.24.1; do
  if ! "${tool%@*}" --version 2>/dev/null | grep -qw "${tool#*@}"; then
    echo "install-deps: installing $tool (about 2 minutes)" >&2
    cargo install --quiet --locked "${tool%@*}" --version "${tool#*@}"
  fi
done
if ! python3 -c 'import ziglang' 2>/dev/null || [ "$(python3 -m pip show ziglang 2>/dev/null | sed -n 's/^Version: //p')" != 0.17.1 ]; then
  echo "install-deps: installing zig 0.17.1 (PyPI's ziglang)" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore ziglang==0.17.1
fi
docker info >/dev/null 2>&1 || echo "install-deps: warning: no Docker engine answers; the HA cluster tests need one" >&2
