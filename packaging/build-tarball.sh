#!/usr/bin/env bash
# Builds the release tarball for the Slurm release installed where it runs,
# for every platform without a package of ours (SLES, Slurm built from
# source, an EL without our rpm), and prints its path:
#   target[/SUITE]/dist/slurm-ha-exporter-<version>-slurm-<release>-<arch>.tar.gz
# It holds the daemon, the plugin, the hooks, the systemd unit, the flags
# file, the man pages, the dashboards and the rules, and install.sh
# (packaging/tarball-install.sh), which installs them the way the packages
# do: the same `slurm-ha-exporter setup` for the service's user and state
# directory, the same check before the plugin is taken away.
#
# Build on the Slurm release the tarball is for: the plugin loads only in
# a slurmctld of exactly that release, the daemon needs its libslurm
# (SONAME). SUITE as for packaging/build-debs.sh (default bookworm, here;
# trixie, forky or src-RELEASE inside slurm-ha-exporter/dev:SUITE).
#   packaging/build-tarball.sh
#   SUITE=src-25.11.5 packaging/build-tarball.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
die() { echo "build-tarball: $*" >&2; exit 1; }

SUITE=${SUITE:-bookworm}
. packaging/glibc-floor.sh
floor_tools
. packaging/in-suite.sh
in_suite packaging/build-tarball.sh

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
# For glibc 2.28 and newer, as the rpms: SLES 15 has 2.31.
floor_build
target=$floor_target rel=$floor_rel version=$floor_version release=$floor_release
bin=$rel/slurm-ha-exporter
arch=$(uname -m)
name=slurm-ha-exporter-$version-slurm-$release-$arch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
d=$work/$name
mkdir -p "$d"/{bin,sbin,lib,libexec,systemd,etc,man/man1,man/man8,share/grafana,share/prometheus}
# (Stripped already by floor_build.)
install -m 0755 "$bin" "$d/bin/"
install -m 0644 "$rel/libjob_submit_ha_exporter.so" "$d/lib/job_submit_ha_exporter.so"
install -m 0755 packaging/slurm-ha-exporter-primary-on packaging/slurm-ha-exporter-primary-off "$d/sbin/"
install -m 0644 packaging/slurm-ha-exporter.service "$d/systemd/"
install -m 0644 packaging/default "$d/etc/slurm-ha-exporter"
# The plugin package's prerm: the one check that slurm.conf no longer
# loads the plugin, run by install.sh --uninstall too.
install -m 0755 packaging/plugin-debian/prerm "$d/libexec/plugin-removable"
install -m 0755 packaging/tarball-install.sh "$d/install.sh"
packaging/man.sh "$bin" | gzip -9n >"$d/man/man1/slurm-ha-exporter.1.gz"
for hook in primary-on primary-off; do
  echo ".so man1/slurm-ha-exporter.1" | gzip -9n >"$d/man/man8/slurm-ha-exporter-$hook.8.gz"
done
install -m 0644 contrib/grafana/*.json "$d/share/grafana/"
install -m 0644 contrib/prometheus/slurm-ha-exporter.rules.yml contrib/prometheus/slurm-ha-exporter.azure.json "$d/share/prometheus/"
install -m 0644 README.md "$d/"
cat >"$d/BUILD" <<EOF
version=$version
slurm_release=$release
arch=$arch
revision=$(git describe --always --dirty 2>/dev/null || echo unknown)
libslurm=$(objdump -p "$bin" | awk '/NEEDED.*libslurm/ {print $2}')
glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
EOF
mkdir -p "$target/dist"
out=$target/dist/$name.tar.gz
# Reproducible: names sorted, owner root, times from the commit.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$work" -cf - "$name" | gzip -9n >"$out"
echo "build-tarball: $name ($(du -h "$out" | cut -f1); $(grep -E '^(libslurm|glibc)=' "$d/BUILD" | paste -sd' ' -))" >&2
echo "$out"
