#!/usr/bin/env bash
# Runs every test:
# 0. contrib/check.sh: the Prometheus rules (promtool) and dashboards;
# 1. unit tests and tests against a real single-host Slurm (started here:
#    munge, MariaDB, slurmdbd, slurmctld, three slurmd);
# 2. scenarios on the Docker HA cluster (images built here from Debian
#    packages, beside step 1; the cluster is removed afterwards unless
#    KEEP_CLUSTER=1), with the exporter as a daemon, then as the plugin
#    inside slurmctld: the debug builds step 1 tested, as for the other
#    releases; beside them, the Debian packages (release builds),
#    installed and started under systemd in a container
#    (packaging/test-install.sh);
# 3. the same for Slurm 24.11 (trixie), 26.05 (forky) and 25.11.5 from
#    SchedMD's own packages built from its tarball (src-25.11.5, the
#    slurm-smd-* debs CycleCloud installs), built inside containers of those
#    suites (scripts/suite.sh): the single-host tests, the rules under their
#    Prometheus, and the steady-state, kill -9 and failback scenario: in both
#    modes on forky, in daemon mode on trixie and in plugin mode on
#    src-25.11.5 (the other mode of those two: README, "What CI does not
#    run"; CI's 90 minutes). TEST_SUITES="" skips them; TEST_SUITES=forky
#    runs one.
# Beside steps 1 and 2, at nice 19 and the smallest CPU weight (the
# scenarios mostly wait on Slurm's timers): the images, builds, single-host tests and
# rules of the suites of step 3 (and for src-*, our packages installed on
# SchedMD's under systemd, packaging/test-install.sh), and the compile
# check of every release in shared/slurm-src (scripts/compile-check.sh;
# TEST_COMPILE_CHECK=0 skips it). Their HA scenarios follow step 2.
# Extra arguments go to the bookworm test runs (e.g. a filter).
# Every part runs even when an earlier one failed; the exit status says
# whether all passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# Everything printed is also kept, so that the end of the log can say again
# why each failed test failed: a CI log is often read from its end, and a
# scenario's own report can push its panic far from there.
full_log=$(mktemp /tmp/test-log.XXXXXX)
exec > >(tee -a "$full_log") 2> >(tee -a "$full_log" >&2)
scripts/install-deps.sh
# Stop the Docker bed we start (KEEP_CLUSTER=1 keeps both clusters for reruns).
cleanup() {
  [ "${KEEP_CLUSTER:-0}" = 1 ] && return
  docker/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
failed=()
run() { cargo nextest run --no-fail-fast --no-tests=fail "$@"; }
suites=${TEST_SUITES-trixie forky src-25.11.5}
# Work that needs no bed, beside the bookworm tests (from the start: it
# takes the CPU they leave, and its HA scenarios must wait for it): each suite's
# images and build, its single-host tests (their Slurm runs inside the
# suite's container, its own network) and the rules under its Prometheus;
# then the compile check. Its containers get the smallest CPU weight (the
# bed's containers keep theirs: nice alone does not reach across cgroups),
# its processes nice 19. Failures are collected in $side_failed, the
# output shown when it is done; a suite whose build failed is marked so
# that its HA step below is not tried.
side_log=$(mktemp /tmp/test-side.XXXXXX) side_failed=$side_log.failed
side() {
  local t0 suite
  export DOCKER_CPU_SHARES=2
  for suite in $suites; do
    t0=$SECONDS
    if nice -n 19 ionice -c3 scripts/suite.sh "$suite" build; then
      touch "$side_log.built-$suite"
      # Its single-host tests load the host's plugin (another release's),
      # which the bookworm single-host tests build.
      while [ ! -e "$side_log.host-built" ]; do sleep 5; done
      nice -n 19 ionice -c3 scripts/suite.sh "$suite" single || echo "single-host ($suite)" >>"$side_failed"
      PROMTOOL_IMAGES=slurm-ha-exporter/slurm:$suite nice -n 19 contrib/check.sh ||
        echo "contrib rules ($suite's Prometheus)" >>"$side_failed"
      # Our packages on SchedMD's (what CycleCloud's clusters run), under
      # systemd, as on bookworm for Debian's.
      case "$suite" in
        src-*) SUITE=$suite nice -n 19 packaging/test-install.sh || echo "packages on SchedMD's ($suite)" >>"$side_failed" ;;
      esac
    else
      echo "build ($suite)" >>"$side_failed"
    fi
    echo "test: images, build, single-host tests and rules of $suite took $((SECONDS - t0))s" >&2
    touch "$side_log.done-$suite"
  done
  if [ "${TEST_COMPILE_CHECK:-1}" = 1 ]; then
    t0=$SECONDS
    nice -n 19 ionice -c3 scripts/compile-check.sh || echo "compile check" >>"$side_failed"
    echo "test: compile check took $((SECONDS - t0))s" >&2
  fi
}
side >"$side_log" 2>&1 &
side_pid=$!
# The bookworm images (the HA bed's, and the base of the packages'
# container) beside the first tests: debootstrap and apt mostly wait on the
# network, and the HA scenarios below need them first thing.
images_log=$side_log.images
( t0=$SECONDS rc=0
  nice -n 19 ionice -c3 docker/build-images.sh bookworm || rc=$?
  echo "test: bookworm images took $((SECONDS - t0))s"
  exit $rc ) >"$images_log" 2>&1 &
images_pid=$!
t0=$SECONDS
contrib/check.sh || failed+=("contrib (rules, dashboards)")
echo "test: contrib checks took $((SECONDS - t0))s" >&2
scripts/single-host-tests.sh "$@" || failed+=("single-host (bookworm)")
touch "$side_log.host-built"
t0=$SECONDS
wait "$images_pid" || failed+=("bookworm images (docker/build-images.sh bookworm)")
cat "$images_log" >&2
echo "test: waited $((SECONDS - t0))s for the bookworm images" >&2
# The packages beside the HA scenarios, at the smallest CPU weight as the
# work beside: their release build and their container wait on nothing the
# scenarios do, and the scenarios below run the debug builds just tested.
packages_log=$side_log.packages
( export DOCKER_CPU_SHARES=2
  t0=$SECONDS
  nice -n 19 ionice -c3 packaging/test-install.sh || echo "packages and systemd unit (bookworm)" >>"$side_failed"
  echo "test: packages and systemd unit took $((SECONDS - t0))s" ) >"$packages_log" 2>&1 &
packages_pid=$!
export EXPORTER_BIN=$here/target/debug/slurm-ha-exporter EXPORTER_PLUGIN=$here/target/debug/libjob_submit_ha_exporter.so
t1=$SECONDS
# Not here, for CI's 90 minutes (README, What CI does not run): the scenario
# that proves the bed alone (the exporter plays no part in it).
# The quick failback runs last: Slurm loses jobs in it and hands their ids
# out again, and a node still running a lost job is drained ("Duplicate
# jobid"), which once broke the next scenario (docs/slurm-bugs.md).
run -E 'binary(ha_cluster) & not test(slurm_fails_over_to_the_backup_and_back_without_losing_jobs) & not test(a_quick_failback)' "$@" \
  || failed+=("HA daemon mode (bookworm)")
run -E 'binary(ha_cluster) & test(a_quick_failback)' "$@" || failed+=("HA daemon mode, quick failback (bookworm)")
echo "test: Docker HA cluster tests took $((SECONDS - t1))s (images and cluster included)" >&2
# The scenarios that apply with the exporter inside slurmctld (the plugin,
# no daemon): steady state, kill -9, failback, hung primary, cut-off
# primary, corrupt state file. The containers keep their slurm.conf, so
# the bed is rebuilt for the other mode.
t2=$SECONDS
docker/cluster.sh down >/dev/null 2>&1 || true
EXPORTER_MODE=plugin run -E 'binary(ha_cluster) & (test(exactly_one) | test(hung_primary) | test(cut_off) | test(corrupt_state))' "$@" \
  || failed+=("HA plugin mode (bookworm)")
echo "test: Docker HA cluster tests in plugin mode took $((SECONDS - t2))s" >&2
docker/cluster.sh down >/dev/null 2>&1 || true
# Each suite's HA scenarios as soon as the work beside is done with that
# suite (its side output is shown at the end).
for suite in $suites; do
  t3=$SECONDS
  while [ ! -e "$side_log.done-$suite" ] && kill -0 "$side_pid" 2>/dev/null; do sleep 5; done
  [ $((SECONDS - t3)) -gt 0 ] && echo "test: waited $((SECONDS - t3))s for $suite's build and single-host tests" >&2
  [ -e "$side_log.done-$suite" ] || { failed+=("the work beside ended before $suite's (see its output)"); continue; }
  [ -e "$side_log.built-$suite" ] || continue
  t3=$SECONDS
  # Both modes on the newest release; one each on the other two, to fit
  # CI's 90 minutes: plugin mode where the in-process reconfigure began
  # (25.11), daemon mode on 24.11.
  case "$suite" in
    trixie) modes=daemon ;;
    src-*) modes=plugin ;;
    *) modes="daemon plugin" ;;
  esac
  HA_MODES=$modes scripts/suite.sh "$suite" ha || failed+=("HA ($suite)")
  echo "test: HA scenarios of $suite took $((SECONDS - t3))s" >&2
done
t2=$SECONDS
wait "$packages_pid" || failed+=("the packages beside (exit status $?)")
wait "$side_pid" || failed+=("the work beside (exit status $?)")
echo "test: waited $((SECONDS - t2))s more for the work beside the HA scenarios; the packages' output:" >&2
sed 's/^/  | /' "$packages_log" >&2
echo "test: the other releases' builds, single-host tests and rules, and the compile check:" >&2
sed 's/^/  | /' "$side_log" >&2
[ -s "$side_failed" ] && mapfile -t -O "${#failed[@]}" failed <"$side_failed"
rm -f "$side_log" "$side_failed" "$side_log".done-* "$side_log.host-built"
rm -f "$side_log".built-* "$images_log" "$packages_log"
if [ ${#failed[@]} -gt 0 ]; then
  echo "test: why, as each failed test said it (its panic, again):" >&2
  # (From a copy: what this prints goes to the log too.)
  cp "$full_log" "$full_log.copy"
  awk '/panicked at/ { p = 1; n = 0 } p { print; if (/note: run with/ || ++n >= 40) p = 0 }' \
    "$full_log.copy" | grep -v 'note: run with' | head -200 >&2 || true
  rm -f "$full_log.copy"
  printf 'test: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "test: every part passed" >&2
rm -f "$full_log"
