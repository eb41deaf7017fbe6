#!/usr/bin/env bash
# Compile check of every release with a source tarball in shared/slurm-src
# (23.02, 23.11, 24.05, 25.05, 25.11; scripts/test.sh runs it in CI beside
# the bookworm HA scenarios): for each tarball, the bindings are generated
# from that release's headers and the whole workspace goes through
# `cargo clippy --all-targets -- -D warnings`, as CI does for the host's
# release. Nothing is linked, so no libslurm is built or needed.
#
#   scripts/compile-check.sh [RELEASE...]   default: every slurm-RELEASE.tar.xz
#                                           in $SLURM_SRC_DIR (shared/slurm-src)
#
# The headers are the tarball's slurm/*.h as `make install` installs them.
# The one header configure makes, slurm_version.h, differs from its .in
# only by the line that defines SLURM_VERSION_NUMBER (0xMMmmuu, from the
# Major, Minor and Micro of the tarball's META file); it is made here the
# same way, so no container and no configure run (they took minutes). The
# headers go to a temporary directory, outside the repository: nothing of
# Slurm's source enters it. The releases share one target directory,
# target/compile-check: build.rs reruns when SLURM_INCLUDE_DIR changes, so
# only our crates are checked again per release, the dependencies once.
# SLURM_LIB_DIR points at an empty directory, so the host's own libslurm is
# never picked up. Exit status 0 when every release passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src_dir=${SLURM_SRC_DIR:-$(cd "$here/.." && pwd)/shared/slurm-src}
log() { echo "compile-check: $*" >&2; }

if [ $# -eq 0 ]; then
  # shellcheck disable=SC2046,SC2012
  set -- $(ls "$src_dir" 2>/dev/null | sed -n 's/^slurm-\(.*\)\.tar\.xz$/\1/p' | sort -V)
  [ $# -gt 0 ] || { log "no slurm-*.tar.xz in $src_dir (set SLURM_SRC_DIR)"; exit 2; }
fi
work=$(mktemp -d /tmp/compile-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Makes $work/RELEASE/include/slurm/*.h and an empty $work/RELEASE/lib.
headers() {
  local release=$1 tarball=$src_dir/slurm-$1.tar.xz dir=$work/$1 top major minor micro
  [ -f "$tarball" ] || { log "no $tarball"; return 1; }
  mkdir -p "$dir/include/slurm" "$dir/lib" "$dir/src"
  top=slurm-$release
  tar -C "$dir/src" --strip-components=1 -xJf "$tarball" --wildcards "$top/META" "$top/slurm/*.h" "$top/slurm/slurm_version.h.in" ||
    { log "$tarball: no META or slurm/*.h"; return 1; }
  field() { sed -n "s/^[[:space:]]*$1:[[:space:]]*\([0-9]*\).*/\1/p" "$dir/src/META"; }
  major=$(field Major) minor=$(field Minor) micro=$(field Micro)
  [ -n "$major" ] && [ -n "$minor" ] && [ -n "$micro" ] || { log "$tarball: no version in META"; return 1; }
  cp "$dir/src/slurm/"*.h "$dir/include/slurm/"
  grep -q '^#undef SLURM_VERSION_NUMBER' "$dir/src/slurm/slurm_version.h.in" ||
    { log "$tarball: slurm_version.h.in has no #undef SLURM_VERSION_NUMBER"; return 1; }
  sed "s/^#undef SLURM_VERSION_NUMBER.*/#define SLURM_VERSION_NUMBER $(printf '0x%02x%02x%02x' $((10#$major)) $((10#$minor)) $((10#$micro)))/" \
    "$dir/src/slurm/slurm_version.h.in" >"$dir/include/slurm/slurm_version.h"
}

cargo fetch --quiet --manifest-path "$here/Cargo.toml"
target=$here/target/compile-check
results=() rc=0
for release; do
  t0=$SECONDS
  if ! headers "$release"; then
    results+=("$release: FAILED to make the headers")
    rc=1
    continue
  fi
  dir=$work/$release
  touch "$dir/stamp"
  log "Slurm $release: clippy against the tarball's headers"
  if SLURM_INCLUDE_DIR=$dir/include SLURM_LIB_DIR=$dir/lib CARGO_TARGET_DIR=$target \
    nice -n 19 cargo clippy --quiet --workspace --all-targets --manifest-path "$here/Cargo.toml" -- -D warnings; then
    status=passed
  else
    status=FAILED rc=1
  fi
  # The release build.rs saw, as the binary would report it (from the
  # outputs of this run: the target directory is shared).
  built=$(find "$target/debug/build" -path '*/slurm-ha-exporter-*/output' -newer "$dir/stamp" \
    -exec sed -n 's/^cargo:rustc-env=SLURM_BUILD_VERSION=//p' {} + 2>/dev/null | sort -u | paste -sd' ' - || true)
  results+=("$release: clippy $status (bindings for ${built:-?}; $((SECONDS - t0))s)")
done
printf 'compile-check: %s\n' "${results[@]}" >&2
exit $rc
