# Sourced by packaging/build-rpm.sh and packaging/build-tarball.sh: the
# daemon and the plugin built to run on glibc 2.28 and newer (EL 8 has
# 2.28, SLES 15 2.31, Ubuntu 22.04 2.35), whatever glibc the build machine
# has, with cargo-zigbuild and zig (PyPI's ziglang), stripped and without
# debug info, as the packages ship them. The .debs are built natively: each
# is for the Debian or Ubuntu release it was built on.
#
#   floor_tools      before in_suite: the tools are there, and zig is
#                    passed on to a suite's container (scripts/suite.sh
#                    mounts ZIG_DIR)
#   floor_build      builds both; sets floor_target (cargo's target
#                    directory), floor_triple, floor_rel (the directory
#                    holding slurm-ha-exporter and libjob_submit_ha_exporter.so),
#                    floor_version (ours) and floor_release (the Slurm
#                    release X.Y.Z built against, from `slurm-ha-exporter
#                    version`); stops if either file needs a GLIBC_ symbol
#                    version above the floor (objdump -T)
# Needs die().
GLIBC_FLOOR=2.28

floor_tools() {
  command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild is missing: cargo install --locked cargo-zigbuild (or scripts/install-deps.sh)"
  [ -n "${CARGO_ZIGBUILD_ZIG_PATH:-}" ] && return 0
  ZIG_DIR=$(python3 -c 'import os, ziglang; print(os.path.dirname(ziglang.__file__))' 2>/dev/null) \
    || die "zig is missing: pip install ziglang (or scripts/install-deps.sh)"
  export ZIG_DIR CARGO_ZIGBUILD_ZIG_PATH=$ZIG_DIR/zig
}

floor_build() {
  local triple_var f need
  floor_triple=$(uname -m)-unknown-linux-gnu
  triple_var=$(tr 'a-z-' 'A-Z_' <<<"$floor_triple")
  # libslurm on the build machine is linked against its own, newer glibc:
  # lld would hold that against the 2.28 stubs (zig issue 8144). On the
  # cluster, libslurm is the cluster's own build, for the cluster's glibc.
  env CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
    "CARGO_TARGET_${triple_var}_RUSTFLAGS=-C link-arg=-Wl,--allow-shlib-undefined" \
    cargo zigbuild --quiet --release --locked --target "$floor_triple.$GLIBC_FLOOR" \
    -p slurm-ha-exporter -p slurm-ha-exporter-plugin
  floor_target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  floor_rel=$floor_target/$floor_triple/release
  for f in "$floor_rel/slurm-ha-exporter" "$floor_rel/libjob_submit_ha_exporter.so"; do
    need=$(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
    [ "$(printf '%s\n' "GLIBC_$GLIBC_FLOOR" "$need" | sort -V | tail -n 1)" = "GLIBC_$GLIBC_FLOOR" ] \
      || die "$(basename "$f") needs $need, above the floor of glibc $GLIBC_FLOOR"
    echo "$(basename "$0" .sh): $(basename "$f") needs $need at most (floor: glibc $GLIBC_FLOOR)" >&2
  done
  # "slurm-ha-exporter 0.1.0 (built against Slurm 25.11.5)"
  read -r _ floor_version _ _ _ floor_release < <("$floor_rel/slurm-ha-exporter" version) \
    || die "slurm-ha-exporter version failed"
  floor_release=${floor_release%)}
  [[ $floor_release =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cannot read the Slurm release from \`slurm-ha-exporter version\`"
}
