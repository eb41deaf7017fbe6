#!/usr/bin/env bash
# Builds and tests the exporter for the Slurm release of a Debian suite
# other than the host's: trixie (24.11) or forky (26.05), or for a Slurm
# built from SchedMD's source: src-RELEASE (e.g. src-25.11.5, src-23.11.11;
# the image is made by docker/build-images.sh from shared/slurm-src).
#
#   scripts/suite.sh SUITE build      build daemon, plugin and tests inside
#                                     slurm-ha-exporter/dev:SUITE (target/SUITE)
#   scripts/suite.sh SUITE single     unit and single-host tests inside that
#                                     container (its own embedded Slurm)
#   scripts/suite.sh SUITE ha [FILTER]  HA scenarios on the Docker bed of
#                                     that suite, daemon mode then plugin mode
#                                     (HA_MODES="daemon plugin" by default;
#                                     FILTER: steady state, kill -9, failback)
#   scripts/suite.sh SUITE all        the three above
#   scripts/suite.sh SUITE shell      a shell in the build container
#   scripts/suite.sh SUITE run CMD... a command in the build container
#
# The container gets the host's Rust toolchain (RUSTUP_HOME, CARGO_HOME and
# cargo-nextest mounted read-only but for the registry cache) and the
# repository at the same path, so paths compiled into the test binaries
# hold inside and out. It has its own network namespace: its embedded
# Slurm does not clash with the host's.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SUITE=${1:?usage: scripts/suite.sh SUITE build|single|ha|all|shell|run}
what=${2:-all}
shift 2 || shift $#
case "$SUITE" in bookworm|trixie|forky|src-[0-9]*) ;; *) echo "suite: unknown suite $SUITE" >&2; exit 2 ;; esac
target=$here/target/$SUITE
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
nextest=$(command -v cargo-nextest || true)
log() { echo "suite $SUITE: $*" >&2; }

in_container() {
  local tty=()
  [ -t 0 ] && tty=(-it)
  local mounts=(-v "$here:$here" -v "$cargo_home:$cargo_home" -v "$rustup_home:$rustup_home:ro")
  [ -n "$nextest" ] && mounts+=(-v "$nextest:/usr/local/bin/cargo-nextest:ro")
  # ZIG_DIR: the host's zig (PyPI's ziglang) for the glibc-floor builds
  # (packaging/build-rpm.sh); its caches under the suite's target.
  local zig=()
  if [ -n "${ZIG_DIR:-}" ]; then
    mounts+=(-v "$ZIG_DIR:$ZIG_DIR:ro")
    zig=(-e CARGO_ZIGBUILD_ZIG_PATH="$ZIG_DIR/zig" -e ZIG_GLOBAL_CACHE_DIR="$target/zig-cache"
         -e CARGO_ZIGBUILD_CACHE_DIR="$target/zigbuild-cache")
  fi
  # No dots in the host name (src-25.11.5): `hostname -s` would cut it.
  # DOCKER_CPU_SHARES: a smaller CPU weight for work beside the HA bed.
  local weight=()
  [ -n "${DOCKER_CPU_SHARES:-}" ] && weight=(--cpu-shares "$DOCKER_CPU_SHARES")
  docker run --rm "${tty[@]}" "${weight[@]}" --hostname "suite-${SUITE//./-}" "${mounts[@]}" -w "$here" \
    -e CARGO_HOME="$cargo_home" -e RUSTUP_HOME="$rustup_home" \
    -e PATH="$cargo_home/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    -e CARGO_TARGET_DIR="$target" -e EMBED_DIR="$here/.embedded-$SUITE" \
    -e KEEP_CLUSTER="${KEEP_CLUSTER:-0}" -e CARGO_TERM_COLOR=never -e CARGO_NET_OFFLINE=true \
    -e FOREIGN_PLUGIN="${FOREIGN_PLUGIN:-}" \
    -e IN_SUITE="$SUITE" "${zig[@]}" \
    "slurm-ha-exporter/dev:$SUITE" "$@"
}

build() {
  "$here/docker/build-images.sh" --dev "$SUITE"
  # Crates are fetched by the host, whose network and certificates reach
  # crates.io; the container builds offline from the shared cargo home.
  cargo fetch --quiet --manifest-path "$here/Cargo.toml"
  local t0=$SECONDS
  # At nice 19: scripts/test.sh builds the suites beside the HA scenarios.
  in_container nice -n 19 cargo build --quiet --workspace --lib --bins --tests
  log "built for $(in_container slurmctld -V) in $((SECONDS - t0))s"
}

# Each container starts with an empty MariaDB, so the embedded cluster's
# state from an earlier container (its cluster id) is removed first.
# The host's plugin (built for bookworm's 22.05 by scripts/test.sh) is the
# one of another release that this suite's slurmctld must refuse.
single() {
  rm -rf "$here/.embedded-$SUITE"
  local foreign=$here/target/debug/libjob_submit_ha_exporter.so
  [ "$SUITE" != bookworm ] && [ -f "$foreign" ] && export FOREIGN_PLUGIN=${FOREIGN_PLUGIN:-$foreign}
  in_container scripts/single-host-tests.sh "$@"
}

# The bed runs the binaries built for this suite (debug: the build above;
# it is the same code the tests ran) in this suite's images.
ha() {
  local filter=${1:-test(exactly_one)} mode t0
  local rc=0
  for mode in ${HA_MODES:-daemon plugin}; do
    case "$mode" in daemon|plugin) ;; *) echo "suite: unknown HA mode $mode (daemon, plugin)" >&2; return 2 ;; esac
    t0=$SECONDS
    SUITE=$SUITE "$here/docker/cluster.sh" down >/dev/null 2>&1 || true
    SUITE=$SUITE EXPORTER_MODE=$mode EXPORTER_BIN=$target/debug/slurm-ha-exporter \
      EXPORTER_PLUGIN=$target/debug/libjob_submit_ha_exporter.so \
      cargo nextest run --no-fail-fast --no-tests=fail --test ha_cluster -E "$filter" || rc=1
    log "HA scenarios in $mode mode took $((SECONDS - t0))s"
  done
  [ "${KEEP_CLUSTER:-0}" = 1 ] || SUITE=$SUITE "$here/docker/cluster.sh" down >/dev/null 2>&1 || true
  return $rc
}

case "$what" in
  build) build ;;
  single) single "$@" ;;
  ha) ha "$@" ;;
  all) build; single; ha ;;
  shell) in_container bash ;;
  run) in_container "$@" ;;
  *) echo "suite: unknown step $what" >&2; exit 2 ;;
esac
