#!/usr/bin/env bash
# Fills the cluster-init project's files/ with our daemon packages, one
# directory per Slurm release, built for SchedMD's packaging of that release
# (what CycleCloud installs): the .deb for Ubuntu (packaging/build-debs.sh)
# and the rpm for EL 8/9 (packaging/build-rpm.sh), both inside the image of
# SchedMD's packages of each release (docker/build-images.sh src-RELEASE,
# from the tarballs in shared/slurm-src).
#   contrib/cyclecloud/build-project.sh [RELEASE...]    default: 25.11.5
# Then, with the CycleCloud CLI: cd contrib/cyclecloud/slurm-ha-exporter &&
# cyclecloud project upload <locker>.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
files=contrib/cyclecloud/slurm-ha-exporter/specs/scheduler/cluster-init/files
[ $# -gt 0 ] || set -- 25.11.5
for release in "$@"; do
  debs=$(SUITE=src-$release packaging/build-debs.sh)
  rpms=$(SUITE=src-$release packaging/build-rpm.sh)
  rm -rf "${files:?}/$release" && mkdir -p "$files/$release"
  for daemon in "$(sed -n 1p <<<"$debs")" "$(sed -n 1p <<<"$rpms")"; do
    cp "$daemon" "$files/$release/"
    echo "build-project: $files/$release/$(basename "$daemon")" >&2
  done
done
