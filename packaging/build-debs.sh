#!/usr/bin/env bash
# Builds the two Debian packages into target/debian/ (release build) and
# prints their paths, one a line:
#   slurm-ha-exporter_<version>_<arch>.deb         the daemon, its systemd unit,
#                                                   hooks, man page; Depends on
#                                                   the package holding the
#                                                   libslurm it links
#   slurm-ha-exporter-plugin_<version>_<arch>.deb   job_submit_ha_exporter.so in
#                                                   Slurm's PluginDir; Depends on
#                                                   slurm-ha-exporter (= <version>)
#                                                   and the slurmctld package of
#                                                   the same Slurm release
# Build on the Slurm release the packages are for, with either packaging
# installed: Debian's (slurmctld, libslurm-dev, libslurmNN; PluginDir
# /usr/lib/<triplet>/slurm-wlm) or SchedMD's, as Azure CycleCloud installs
# it (slurm-smd-slurmctld, slurm-smd-dev, slurm-smd; PluginDir
# /usr/lib/<triplet>/slurm). The plugin is built against the installed
# headers, which must be of the installed slurmctld's release. Slurm
# loads a plugin only when its plugin_version equals the running Slurm's
# SLURM_VERSION_NUMBER, major.minor.micro (src/common/plugin.c), so the
# plugin depends on that release and no more: any packaging revision of it
# (Debian's security updates among them), never the next micro release.
# The daemon needs only libslurm's interface, the same across a release's
# micro versions (its SONAME): Debian's libslurmNN package says so by its
# name ($auto); SchedMD's slurm-smd by version, X.Y of the build. Needs cargo-deb
# (cargo install cargo-deb). Environment: DEB_MAINTAINER overrides the
# Maintainer field, DEB_REVISION the Debian revision (default 1),
# CARGO_TARGET_DIR is honoured.
#
# SUITE (default bookworm, built here on the host) names the Debian suite
# the packages are for. Another one, trixie (Slurm 24.11) or forky (26.05),
# is built inside slurm-ha-exporter/dev:SUITE (scripts/suite.sh SUITE run:
# this suite's slurmctld, libslurm and headers, the host's Rust toolchain
# and cargo-deb, crates fetched here first) into target/SUITE/debian/; the
# paths printed are the same inside and out.
#   packaging/build-debs.sh
#   SUITE=trixie packaging/build-debs.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
die() { echo "build-debs: $*" >&2; exit 1; }

SUITE=${SUITE:-bookworm}
. packaging/in-suite.sh
# (A suite's container runs the host's cargo-deb.)
command -v cargo-deb >/dev/null || die "cargo-deb is missing: cargo install cargo-deb"
# What the build inside needs from here: the environment it honours
# (suite.sh passes only its own).
pass=()
for v in DEB_MAINTAINER DEB_REVISION; do
  [ -n "${!v:-}" ] && pass+=("$v=${!v}")
done
in_suite packaging/build-debs.sh "${pass[@]}"

# cargo-deb's $auto Depends (libslurmNN, libc6 (>= ...)) come from
# dpkg-shlibdeps (dpkg-dev, which also brings xz for unpacking the plugin
# below). The dev images do not have it: installed here, in the throwaway
# build container only.
if [ "${IN_SUITE_BUILD:-}" = "$SUITE" ] && ! command -v dpkg-shlibdeps >/dev/null; then
  echo "build-debs: installing dpkg-dev in the build container (for dpkg-shlibdeps)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev; } \
    >/dev/null || die "cannot install dpkg-dev in the build container"
fi
command -v dpkg-shlibdeps >/dev/null || die "dpkg-shlibdeps is missing (apt-get install dpkg-dev): without it the packages would not depend on libslurm"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }
if installed slurm-smd-slurmctld; then
  packaging="SchedMD's" ctld_pkg=slurm-smd-slurmctld dev_pkg=slurm-smd-dev plugin_dir=slurm
elif installed slurmctld; then
  packaging="Debian's" ctld_pkg=slurmctld dev_pkg=libslurm-dev plugin_dir=slurm-wlm
else
  die "no slurmctld package is installed (Debian's slurmctld or SchedMD's slurm-smd-slurmctld): the plugin package depends on the one of its release"
fi
slurmctld_version=$(dpkg-query -W -f='${Version}' "$ctld_pkg")
headers_version=$(dpkg-query -W -f='${Version}' "$dev_pkg" 2>/dev/null) || headers_version=""
if [ -z "${SLURM_INCLUDE_DIR:-}" ] && [ "$headers_version" != "$slurmctld_version" ]; then
  die "$dev_pkg ($headers_version) and $ctld_pkg ($slurmctld_version) differ: the plugin would be built for one release and pinned to another"
fi
# The Slurm release (X.Y.Z) of that package version ([epoch:]X.Y.Z[-revision]).
release=$(sed -E 's/^[0-9]+://; s/[-+~].*//' <<<"$slurmctld_version")
[[ $release =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "cannot read a Slurm release X.Y.Z from $ctld_pkg's version $slurmctld_version"
series=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
next_micro=$series.$((BASH_REMATCH[3] + 1))
next_series=${BASH_REMATCH[1]}.$((BASH_REMATCH[2] + 1))
# "~" sorts before anything: every revision of X.Y.Z, none of the next.
slurmctld_depends="$ctld_pkg (>= $release~), $ctld_pkg (<< $next_micro~)"
echo "build-debs: for Slurm $release, $packaging packaging ($ctld_pkg $slurmctld_version)" >&2
meta=$(cargo metadata --format-version 1 --no-deps)
py() { python3 -c "import json,sys; m=json.load(sys.stdin); p={p['name']: p for p in m['packages']}; print($1)" <<<"$meta"; }
target=$(py 'm["target_directory"]')
version=$(py 'p["slurm-ha-exporter"]["version"]')-${DEB_REVISION:-1}
maintainer=${DEB_MAINTAINER:-$(py 'p["slurm-ha-exporter"]["metadata"]["deb"]["maintainer"]')}
out=$target/debian
mkdir -p "$out"

# --strip: the release profile keeps debug info (debug = 1) for backtraces
# in development; the packages ship without it.
deb_args=(--no-build --strip --output "$out" --deb-revision "${DEB_REVISION:-1}")
[ -n "${DEB_MAINTAINER:-}" ] && deb_args+=(--maintainer "$DEB_MAINTAINER")

cargo build --release --locked -p slurm-ha-exporter -p slurm-ha-exporter-plugin
# Files made here go to target/release/, the one prefix cargo-deb maps to
# the real target directory. The man page, from the built binary's --help;
# the hooks' pages point to it; a Debian changelog naming the build.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
rel=$target/release
packaging/man.sh "$rel/slurm-ha-exporter" | gzip -9n >"$rel/slurm-ha-exporter.1.gz"
for hook in primary-on primary-off; do
  echo ".so man1/slurm-ha-exporter.1" | gzip -9n >"$rel/slurm-ha-exporter-$hook.8.gz"
done
{
  echo "slurm-ha-exporter ($version) unstable; urgency=medium"
  echo
  echo "  * Built from $(git describe --always --dirty 2>/dev/null || echo "an unknown revision")."
  echo
  echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$rel/changelog.Debian.gz"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# unpack DEB DIR and pack DIR DEB: a package taken apart to change its
# control file or paths, and put together again (by hand: dpkg-deb refuses
# to read a control file with placeholders).
unpack() {
  local deb
  deb=$(realpath "$1")
  rm -rf "$2" && mkdir -p "$2/pkg/DEBIAN" "$2/ar"
  (cd "$2/ar" && ar x "$deb")
  tar -xf "$2"/ar/control.tar.* -C "$2/pkg/DEBIAN"
  tar -xf "$2"/ar/data.tar.* -C "$2/pkg"
}
pack() {
  if grep -q '@[A-Z_]*@' "$1/pkg/DEBIAN/control"; then
    die "a placeholder is left in a control file: $(grep '@[A-Z_]*@' "$1/pkg/DEBIAN/control")"
  fi
  dpkg-deb --root-owner-group -Zxz --build "$1/pkg" "$2" >/dev/null
}

# cargo-deb prints the path of the package it wrote (last line).
daemon=$(cargo deb "${deb_args[@]}" -p slurm-ha-exporter | tail -n 1)
[ "$(dpkg-deb -f "$daemon" Version)" = "$version" ] || die "$daemon is not version $version"
if [ "$ctld_pkg" = slurm-smd-slurmctld ]; then
  # SchedMD's slurm-smd has no shlibs file, so $auto cannot name it for
  # libslurm: added here by the release series it holds.
  unpack "$daemon" "$work/daemon"
  sed -i -E "/^Depends:/ { s/(, )?slurm-smd( \([^)]*\))?//g; s/^Depends: (.*)$/Depends: \1, slurm-smd (>= $series~), slurm-smd (<< $next_series~)/; s/^Depends: , /Depends: /; }" \
    "$work/daemon/pkg/DEBIAN/control"
  pack "$work/daemon" "$daemon"
fi

# The plugin: cargo-deb cannot take a Depends value computed at build time,
# so plugin/Cargo.toml holds placeholders, filled in here.
raw=$(cargo deb "${deb_args[@]}" -p slurm-ha-exporter-plugin --multiarch=same | tail -n 1)
unpack "$raw" "$work/plugin"
rm -f "$raw"
control=$work/plugin/pkg/DEBIAN/control
sed -i -e "s/@VERSION@/$version/g" -e "s/@SLURMCTLD_DEPENDS@/$slurmctld_depends/g" "$control"
if [ "$plugin_dir" != slurm-wlm ]; then
  # SchedMD's PluginDir; the md5sums name the files by path.
  for d in "$work"/plugin/pkg/usr/lib/*/slurm-wlm; do mv "$d" "${d%/slurm-wlm}/$plugin_dir"; done
  [ -f "$work/plugin/pkg/DEBIAN/md5sums" ] && sed -i "s|/slurm-wlm/|/$plugin_dir/|" "$work/plugin/pkg/DEBIAN/md5sums"
fi
field() { sed -n "s/^$1: //p" "$control"; }
plugin=$out/$(field Package)_${version}_$(field Architecture).deb
pack "$work/plugin" "$plugin"

for deb in "$daemon" "$plugin"; do
  echo "build-debs: $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version): Depends: $(dpkg-deb -f "$deb" Depends)" >&2
done
echo "$daemon"
echo "$plugin"
