#!/usr/bin/env bash
# Builds the two rpms for EL 8 and 9 with SchedMD's Slurm packages (what
# Azure CycleCloud installs there: slurm, slurm-slurmctld, ... from
# SchedMD's slurm.spec) and prints their paths, one a line:
#   target[/SUITE]/rpm/slurm-ha-exporter-<version>-1.<arch>.rpm
#       the daemon, unit, hooks, flags file (/etc/sysconfig), man pages;
#       Requires libslurm.so.N()(64bit) (from the binary) and SchedMD's
#       `slurm` package of the same release series, which holds it
#   target[/SUITE]/rpm/slurm-ha-exporter-plugin-<version>-1.<arch>.rpm
#       job_submit_ha_exporter.so in /usr/lib64/slurm (SchedMD's PluginDir);
#       Requires slurm-ha-exporter of this build and slurm-slurmctld =
#       the release (any packaging release of it, never the next micro:
#       Slurm loads a plugin only of its own major.minor.micro)
# Both binaries are built for glibc 2.28 (EL 8; EL 9 has 2.34) by
# packaging/glibc-floor.sh, whatever glibc the build machine has.
# The packages come from cargo-generate-rpm (metadata in Cargo.toml and
# plugin/Cargo.toml; the Requires of the release are added here); their
# scriptlets (packaging/rpm/) run the same `slurm-ha-exporter setup` as the
# .deb's postinst.
#
# Build on the Slurm release the rpms are for: SUITE as for
# packaging/build-debs.sh, src-25.11.5 by default (SchedMD's packaging of
# CycleCloud's default release, inside slurm-ha-exporter/dev:SUITE). Needs
# cargo-zigbuild and cargo-generate-rpm (cargo install --locked) and zig
# (pip install ziglang); scripts/install-deps.sh installs all three.
#   packaging/build-rpm.sh
#   SUITE=src-23.11.11 packaging/build-rpm.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
die() { echo "build-rpm: $*" >&2; exit 1; }

SUITE=${SUITE:-src-25.11.5}
command -v cargo-generate-rpm >/dev/null || die "cargo-generate-rpm is missing: cargo install --locked cargo-generate-rpm (or scripts/install-deps.sh)"
. packaging/glibc-floor.sh
floor_tools
. packaging/in-suite.sh
in_suite packaging/build-rpm.sh

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
floor_build
arch=$(uname -m)
target=$floor_target rel=$floor_rel version=$floor_version release=$floor_release
bin=$rel/slurm-ha-exporter
series=${release%.*}
# (Slurm's minor is two digits: 25.11 -> 25.12, 22.05 -> 22.06.)
next_series=${series%.*}.$(printf %02d $((10#${series#*.} + 1)))

# The man pages, as build-debs.sh makes them, where the metadata's
# target/release/ paths point for --target.
packaging/man.sh "$bin" | gzip -9n >"$rel/slurm-ha-exporter.1.gz"
for hook in primary-on primary-off; do
  echo ".so man1/slurm-ha-exporter.1" | gzip -9n >"$rel/slurm-ha-exporter-$hook.8.gz"
done

out=$target/rpm
mkdir -p "$out"
# xz: EL 8's rpm reads it (zstd payloads need a newer rpm). builtin
# auto-req: the shared libraries' sonames, as rpmbuild would list them,
# whether or not this machine has rpm's own find-requires.
gen=(cargo generate-rpm --target "$floor_triple" --target-dir "$target" --payload-compress xz --auto-req builtin -o "$out")
rpm_release=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print([p for p in m["packages"] if p["name"] == "slurm-ha-exporter"][0]["metadata"]["generate-rpm"]["release"])')
daemon=$out/slurm-ha-exporter-$version-$rpm_release.$arch.rpm
plugin=$out/slurm-ha-exporter-plugin-$version-$rpm_release.$arch.rpm
rm -f "$daemon" "$plugin"
"${gen[@]}" -s "requires = { slurm = \">= $series, < $next_series\" }"
"${gen[@]}" -p plugin \
  -s "requires = { slurm-ha-exporter = \"= $version-$rpm_release\", slurm-slurmctld = \"= $release\" }"
for f in "$daemon" "$plugin"; do
  [ -f "$f" ] || die "cargo generate-rpm wrote no package"
  echo "build-rpm: $(basename "$f") for Slurm $release ($(du -h "$f" | cut -f1))" >&2
done
echo "$daemon"
echo "$plugin"
