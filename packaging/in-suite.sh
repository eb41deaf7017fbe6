# Sourced by packaging/build-debs.sh and packaging/build-tarball.sh: for a
# SUITE other than the host's (trixie, forky, src-RELEASE), the build runs
# inside slurm-ha-exporter/dev:SUITE, that suite's Slurm headers and
# libslurm with the host's Rust toolchain (scripts/suite.sh run).
#
#   in_suite SCRIPT [VAR=value...]
# returns at once on the host's suite or once inside the container (SUITE
# and IN_SUITE_BUILD set there); otherwise builds the images, fetches the
# crates here (the container builds offline) and re-runs SCRIPT inside with
# SOURCE_DATE_EPOCH, this niceness (a container does not inherit it) and
# the VAR=value given. No terminal on stdin, so stdout is what SCRIPT
# prints. Needs die() and the repository as the working directory.
in_suite() {
  local script=$1 images
  shift
  [ "$SUITE" = bookworm ] || [ "${IN_SUITE_BUILD:-}" = "$SUITE" ] && return 0
  case "$SUITE" in trixie|forky|src-[0-9]*) ;; *) die "unknown suite $SUITE (bookworm, trixie, forky, src-RELEASE)" ;; esac
  # (Seconds when the images are current: Docker's layer cache.)
  images=$(docker/build-images.sh --dev "$SUITE" 2>&1) \
    || { echo "$images" >&2; die "docker/build-images.sh --dev $SUITE failed"; }
  grep '^build-images:' <<<"$images" >&2 || true
  cargo fetch --quiet --locked
  exec scripts/suite.sh "$SUITE" run nice -n "$(nice)" env IN_SUITE_BUILD="$SUITE" SUITE="$SUITE" \
    SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" \
    "$@" "$script" </dev/null
}
