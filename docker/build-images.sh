#!/usr/bin/env bash
# Builds the test-cluster image with no image registry:
# 1. the base image debian:$SUITE, made from Debian's packages (debootstrap,
#    then `docker import`) when it is not already present, so the same
#    Dockerfile also works where images can be pulled;
# 2. slurm-ha-exporter/slurm:$SUITE from docker/slurm/Dockerfile (Slurm,
#    munge, MariaDB and Prometheus from that suite's packages);
# 3. with --dev, also slurm-ha-exporter/dev:$SUITE (docker/dev/Dockerfile:
#    compilers and test tools, to build and test the exporter for that
#    suite's Slurm; see scripts/suite.sh).
# Docker's layer cache makes a rebuild with nothing changed take seconds.
#   docker/build-images.sh [--dev] [bookworm|trixie|forky]
set -euo pipefail
DEV=0
[ "${1:-}" = --dev ] && { DEV=1; shift; }
SUITE=${1:-${SUITE:-bookworm}}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)

if ! docker image inspect "debian:$SUITE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  root=$(mktemp -d /tmp/rootfs-"$SUITE".XXXXXX)
  trap 'rm -rf "$root"' EXIT
  # forky (and other suites newer than this debootstrap) use the sid script.
  script=""
  [ -e "/usr/share/debootstrap/scripts/$SUITE" ] || script=/usr/share/debootstrap/scripts/sid
  echo "build-images: debootstrap $SUITE (no debian:$SUITE image here)" >&2
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" $script >/dev/null
  echo "deb $MIRROR $SUITE main" >"$root/etc/apt/sources.list"
  tar -C "$root" -c . | docker import - "debian:$SUITE" >/dev/null
fi
docker build -q --build-arg "SUITE=$SUITE" -t "slurm-ha-exporter/slurm:$SUITE" "$here/slurm" >/dev/null
echo "build-images: slurm-ha-exporter/slurm:$SUITE ready" >&2
if [ $DEV = 1 ]; then
  docker build -q --build-arg "SUITE=$SUITE" -t "slurm-ha-exporter/dev:$SUITE" "$here/dev" >/dev/null
  echo "build-images: slurm-ha-exporter/dev:$SUITE ready" >&2
fi
