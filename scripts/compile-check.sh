#!/usr/bin/env bash
# Compile check of every release with a source tarball in shared/slurm-src
# (23.02, 23.11, 24.05, 25.05, 25.11; scripts/test.sh runs it in CI beside
# the bookworm HA scenarios): for each tarball, the bindings
# are generated from that release's headers and the whole workspace goes
# through `cargo clippy --all-targets -- -D warnings`, as CI does for the
# host's release. Nothing is linked, so no libslurm is built or needed.
#
#   scripts/compile-check.sh [RELEASE...]   default: every slurm-RELEASE.tar.xz
#                                           in $SLURM_SRC_DIR (shared/slurm-src)
#
# The headers are the tarball's slurm/*.h as `make install` installs them,
# with slurm_version.h made by the release's own configure, run (alone: no
# make) in a container of the `tools` stage of docker/slurm-src/Dockerfile.
# They are kept by tarball hash in $SLURM_HEADERS_CACHE (default
# ~/.cache/slurm-ha-exporter/slurm-headers, outside the repository: nothing
# of Slurm's source enters it). Each release has its own target directory,
# target/compile-check/RELEASE. SLURM_LIB_DIR points at an empty directory,
# so the host's own libslurm is never picked up. Exit status 0 when every
# release passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src_dir=${SLURM_SRC_DIR:-$(cd "$here/.." && pwd)/shared/slurm-src}
cache=${SLURM_HEADERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slurm-ha-exporter/slurm-headers}
dockerfile=$here/docker/slurm-src/Dockerfile
log() { echo "compile-check: $*" >&2; }

if [ $# -eq 0 ]; then
  # shellcheck disable=SC2046,SC2012
  set -- $(ls "$src_dir" 2>/dev/null | sed -n 's/^slurm-\(.*\)\.tar\.xz$/\1/p' | sort -V)
  [ $# -gt 0 ] || { log "no slurm-*.tar.xz in $src_dir (set SLURM_SRC_DIR)"; exit 2; }
fi

# The image of the Dockerfile's `tools` stage (compiler and configure's
# dependencies), tagged by the hash of that part of the Dockerfile.
tools=""
tools_image() {
  [ -n "$tools" ] && return
  local part base ctx
  part=$(sed '/^FROM tools AS build/,$d' "$dockerfile")
  tools=slurm-ha-exporter/slurm-tools:$(sha256sum <<<"$part" | cut -c1-12)
  docker image inspect "$tools" >/dev/null 2>&1 && return
  base=$(sed -n 's/^ARG BASE=//p' "$dockerfile")
  "$here/docker/build-images.sh" --base "${base#debian:}" >&2
  ctx=$(mktemp -d /tmp/compile-check-ctx.XXXXXX)
  cp "$dockerfile" "$ctx/"
  local out
  out=$(docker build -q --target tools -t "$tools" "$ctx" 2>&1) || { echo "$out" >&2; exit 1; }
  rm -rf "$ctx"
}

# Prints the include directory (holding slurm/*.h) of release $1.
headers() {
  local release=$1 tarball dir
  tarball=$src_dir/slurm-$release.tar.xz
  [ -f "$tarball" ] || { log "no $tarball"; return 1; }
  dir=$cache/$release-$(sha256sum <"$tarball" | cut -c1-12)
  if [ ! -s "$dir/include/slurm/slurm_version.h" ]; then
    tools_image || return 1
    rm -rf "$dir.new"
    mkdir -p "$dir.new/include/slurm" "$dir.new/lib"
    docker run --rm ${DOCKER_CPU_SHARES:+--cpu-shares "$DOCKER_CPU_SHARES"} --name "compile-check-$release-$$" -v "$tarball:/tmp/slurm.tar.xz:ro" \
      -v "$dir.new/include/slurm:/out" "$tools" sh -c '
        mkdir /src && tar -C /src --strip-components=1 -xJf /tmp/slurm.tar.xz && cd /src &&
        { nice -n 19 ./configure >/tmp/configure.log 2>&1 || { tail -n 30 /tmp/configure.log; exit 1; }; } &&
        cp slurm/*.h /out/' >&2 || return 1
    mv "$dir.new" "$dir"
  fi
  echo "$dir"
}

cargo fetch --quiet --manifest-path "$here/Cargo.toml"
results=() rc=0
for release; do
  t0=$SECONDS
  if ! dir=$(headers "$release"); then
    results+=("$release: FAILED to make the headers")
    rc=1
    continue
  fi
  t1=$SECONDS
  target=$here/target/compile-check/$release
  log "Slurm $release: clippy against $dir/include"
  if SLURM_INCLUDE_DIR=$dir/include SLURM_LIB_DIR=$dir/lib CARGO_TARGET_DIR=$target \
    nice -n 19 cargo clippy --quiet --workspace --all-targets --manifest-path "$here/Cargo.toml" -- -D warnings; then
    status=passed
  else
    status=FAILED rc=1
  fi
  # The release build.rs saw, as the binary would report it.
  built=$(sed -n 's/^cargo:rustc-env=SLURM_BUILD_VERSION=//p' \
    "$target"/debug/build/slurm-ha-exporter-*/output 2>/dev/null | sort -u | paste -sd' ' - || true)
  results+=("$release: clippy $status (bindings for ${built:-?}; headers $((t1 - t0))s, clippy $((SECONDS - t1))s)")
done
printf 'compile-check: %s\n' "${results[@]}" >&2
exit $rc
