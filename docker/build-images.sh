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
#
# SUITE src-RELEASE (e.g. src-25.11.5) is Slurm built from SchedMD's source
# tarball slurm-RELEASE.tar.xz in $SLURM_SRC_DIR (default: shared/slurm-src
# beside the repository), by docker/slurm-src/Dockerfile on a Debian base.
# The image is tagged slurm-ha-exporter/slurm:src-RELEASE-HASH, HASH covering
# the tarball, that Dockerfile and the entrypoint, and reused while one with
# that tag exists (the build takes minutes; JOBS, default 2, make jobs;
# NO_CACHE=1 builds every layer anew, to time a build from nothing);
# slurm-ha-exporter/slurm:src-RELEASE names the latest. The dev image is
# docker/dev/Dockerfile on top of it, tagged the same way.
#   docker/build-images.sh [--dev] [bookworm|trixie|forky|src-RELEASE]
set -euo pipefail
DEV=0
[ "${1:-}" = --dev ] && { DEV=1; shift; }
SUITE=${1:-${SUITE:-bookworm}}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "build-images: $*" >&2; }
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

# debian:SUITE, made here when it is not present. Under a lock: scripts/
# test.sh builds images in two lanes at once, and src-* shares bookworm's.
base_image() {
  local suite=$1 root script="" lock
  docker image inspect "debian:$suite" >/dev/null 2>&1 && return
  exec {lock}>"/tmp/slurm-ha-exporter-debian-$suite.lock"
  flock "$lock"
  docker image inspect "debian:$suite" >/dev/null 2>&1 && { exec {lock}>&-; return; }
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  root=$(mktemp -d /tmp/rootfs-"$suite".XXXXXX)
  scratch+=("$root")
  # forky (and other suites newer than this debootstrap) use the sid script.
  [ -e "/usr/share/debootstrap/scripts/$suite" ] || script=/usr/share/debootstrap/scripts/sid
  log "debootstrap $suite (no debian:$suite image here)"
  debootstrap --variant=minbase "$suite" "$root" "$MIRROR" $script >/dev/null
  echo "deb $MIRROR $suite main" >"$root/etc/apt/sources.list"
  tar -C "$root" -c . | docker import - "debian:$suite" >/dev/null
  exec {lock}>&-
}

# slurm-ha-exporter/slurm:src-RELEASE(-HASH) and, with --dev, the dev image.
from_source() {
  local release=$1 src_dir tarball dockerfile=$here/slurm-src/Dockerfile hash tag ctx t0 out
  src_dir=${SLURM_SRC_DIR:-$(cd "$here/../.." && pwd)/shared/slurm-src}
  tarball=$src_dir/slurm-$release.tar.xz
  [ -f "$tarball" ] || { log "no $tarball (set SLURM_SRC_DIR)"; exit 1; }
  hash=$({ sha256sum <"$tarball" | cut -d' ' -f1; cat "$dockerfile" "$here/slurm/entrypoint.sh"; } |
    sha256sum | cut -c1-12)
  tag=slurm-ha-exporter/slurm:src-$release-$hash
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag present (reused)"
  else
    base_image "$(sed -n 's/^ARG BASE=debian://p' "$dockerfile")"
    ctx=$(mktemp -d /tmp/slurm-src-ctx.XXXXXX)
    scratch+=("$ctx")
    cp "$dockerfile" "$here/slurm/entrypoint.sh" "$ctx/"
    cp "$tarball" "$ctx/slurm.tar.xz"
    log "building Slurm $release from source (minutes)"
    t0=$SECONDS
    out=$ctx.log
    scratch+=("$out")
    local flags=()
    [ "${NO_CACHE:-0}" = 1 ] && flags+=(--no-cache)
    # DOCKER_CPU_SHARES: a smaller CPU weight, for a build beside the HA bed.
    [ -n "${DOCKER_CPU_SHARES:-}" ] && flags+=(--cpu-shares "$DOCKER_CPU_SHARES")
    docker build "${flags[@]}" --build-arg "JOBS=${JOBS:-2}" -t "$tag" "$ctx" >"$out" 2>&1 ||
      { tail -n 60 "$out" >&2; log "building $tag failed"; exit 1; }
    log "$tag built in $((SECONDS - t0))s"
  fi
  docker tag "$tag" "slurm-ha-exporter/slurm:src-$release"
  log "slurm-ha-exporter/slurm:src-$release ready"
  [ $DEV = 1 ] || return 0
  local devtag
  devtag=slurm-ha-exporter/dev:src-$release-$({ echo "$hash"; cat "$here/dev/Dockerfile"; } | sha256sum | cut -c1-12)
  if docker image inspect "$devtag" >/dev/null 2>&1; then
    log "$devtag present (reused)"
  else
    docker build -q --build-arg "SUITE=src-$release-$hash" -t "$devtag" "$here/dev" >/dev/null
  fi
  docker tag "$devtag" "slurm-ha-exporter/dev:src-$release"
  log "slurm-ha-exporter/dev:src-$release ready"
}

case "$SUITE" in
  src-*) from_source "${SUITE#src-}"; exit 0 ;;
esac
base_image "$SUITE"
docker build -q --build-arg "SUITE=$SUITE" -t "slurm-ha-exporter/slurm:$SUITE" "$here/slurm" >/dev/null
log "slurm-ha-exporter/slurm:$SUITE ready"
if [ $DEV = 1 ]; then
  docker build -q --build-arg "SUITE=$SUITE" -t "slurm-ha-exporter/dev:$SUITE" "$here/dev" >/dev/null
  log "slurm-ha-exporter/dev:$SUITE ready"
fi
