#!/bin/sh
# install.sh of the slurm-ha-exporter release tarball (made by
# packaging/build-tarball.sh): installs what the packages install, where
# no package of ours fits (SLES, Slurm built from source), and does at the
# end what their install scripts do: `slurm-ha-exporter setup` (the
# service's user, SlurmUser, and its state directory, from slurm.conf).
#
#   ./install.sh [--prefix=/usr/local] [--plugin-dir=DIR | --no-plugin]
#   ./install.sh --uninstall [--prefix=/usr/local]
#
# The daemon goes to PREFIX/bin, the hooks to PREFIX/sbin, the unit to
# /etc/systemd/system (installed disabled; an upgrade restarts a running
# service), the flags file to /etc/sysconfig or /etc/default (never
# overwritten), the plugin to Slurm's PluginDir: --plugin-dir, else
# slurm.conf's PluginDir, else where slurmctld's libslurmfull.so lives
# (Slurm's default PluginDir), and only when this host's slurmctld is of
# the tarball's release (Slurm loads no plugin of another). --uninstall
# removes what was installed (the list is kept in
# PREFIX/share/slurm-ha-exporter/installed-files) but the flags file and
# the state directory; it refuses while slurm.conf loads the plugin, which
# slurmctld would then fail to start without. SLURM_CONF is honoured.
set -eu
here=$(cd "$(dirname "$0")" >/dev/null && pwd)
prefix=/usr/local plugin_dir="" no_plugin=0 uninstall=0
say() { echo "install.sh: $*" >&2; }
die() { say "$*"; exit 1; }
for a in "$@"; do
  case "$a" in
    --prefix=*) prefix=${a#*=} ;;
    --plugin-dir=*) plugin_dir=${a#*=} ;;
    --no-plugin) no_plugin=1 ;;
    --uninstall) uninstall=1 ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $a (--prefix=DIR, --plugin-dir=DIR, --no-plugin, --uninstall)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root (it installs a system service)"
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path" ;; esac
prefix=${prefix%/}
share=$prefix/share/slurm-ha-exporter
manifest=$share/installed-files
flags=/etc/default/slurm-ha-exporter
[ -d /etc/sysconfig ] && flags=/etc/sysconfig/slurm-ha-exporter
# slurm.conf as the service finds it: SLURM_CONF in its flags file, else
# this environment's, else Slurm's default.
conf=$(sed -n 's/^[[:space:]]*SLURM_CONF=["'\'']\{0,1\}\([^"'\'']*\).*/\1/p' "$flags" 2>/dev/null | tail -n 1)
conf=${conf:-${SLURM_CONF:-/etc/slurm/slurm.conf}}
systemd_up() { [ -d /run/systemd/system ]; }

if [ "$uninstall" = 1 ]; then
  [ -f "$manifest" ] || die "nothing installed under $prefix ($manifest is missing)"
  if grep -q '/job_submit_ha_exporter\.so$' "$manifest"; then
    SLURM_CONF=$conf "$share/plugin-removable" remove || die "not uninstalled (above)"
  fi
  if systemd_up; then
    systemctl disable --now slurm-ha-exporter.service >/dev/null 2>&1 || true
  fi
  "$prefix/bin/slurm-ha-exporter" setup --remove || true
  while read -r f; do rm -f "$f"; done <"$manifest"
  rm -f "$manifest"
  rmdir "$share/grafana" "$share/prometheus" "$share" 2>/dev/null || true
  systemd_up && systemctl daemon-reload
  say "uninstalled; kept the flags file and the state directory (StateSaveLocation/ha_exporter: the counters)"
  exit 0
fi

# What the tarball was built for.
. "$here/BUILD"
[ "$(uname -m)" = "$arch" ] || die "this tarball is for $arch, not $(uname -m)"
if ! out=$("$here/bin/slurm-ha-exporter" version 2>&1); then
  missing=$(ldd "$here/bin/slurm-ha-exporter" 2>/dev/null | awk '/not found/ {print $1}' | paste -sd' ' -)
  die "the daemon does not run here: ${missing:+missing $missing; }$out. This tarball is for Slurm $slurm_release ($libslurm, $glibc or newer)."
fi

# The plugin: only into a slurmctld of exactly the tarball's release.
plugin_to=""
if [ "$no_plugin" = 0 ]; then
  ctld=$(command -v slurmctld || true)
  have=""
  [ -n "$ctld" ] && have=$("$ctld" -V 2>/dev/null | awk '{print $2}')
  if [ -z "$have" ]; then
    say "no slurmctld here: the plugin is not installed (the daemon is)"
  elif [ "$have" != "$slurm_release" ]; then
    say "slurmctld here is $have, this tarball's plugin is for $slurm_release (Slurm loads only its own release's): not installed"
    [ "${have%.*}" = "${slurm_release%.*}" ] || die "and the daemon needs Slurm ${slurm_release%.*}'s libslurm: use the tarball built for $have"
  else
    if [ -z "$plugin_dir" ] && [ -r "$conf" ]; then
      plugin_dir=$(sed -n 's/#.*//; s/^[[:space:]]*[Pp][Ll][Uu][Gg][Ii][Nn][Dd][Ii][Rr][[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$conf" | tail -n 1)
      plugin_dir=${plugin_dir%%:*}
    fi
    if [ -z "$plugin_dir" ]; then
      full=$(ldd "$ctld" 2>/dev/null | awk '/libslurmfull/ {print $3}')
      case "$full" in /*) plugin_dir=$(dirname "$full") ;; esac
    fi
    [ -n "$plugin_dir" ] && [ -d "$plugin_dir" ] ||
      die "cannot tell Slurm's PluginDir (not in $conf, no libslurmfull.so beside slurmctld): give --plugin-dir=DIR or --no-plugin"
    plugin_to=$plugin_dir/job_submit_ha_exporter.so
  fi
fi

was_active=0
systemd_up && systemctl is-active -q slurm-ha-exporter.service && was_active=1
installed=""
put() { # put MODE SOURCE DEST
  install -D -m "$1" "$2" "$3.new" || die "cannot install $3"
  mv -f "$3.new" "$3" || die "cannot install $3"
  installed="$installed$3
"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
put 0755 "$here/bin/slurm-ha-exporter" "$prefix/bin/slurm-ha-exporter"
for hook in primary-on primary-off; do
  sed "s|/usr/bin/slurm-ha-exporter|$prefix/bin/slurm-ha-exporter|" "$here/sbin/slurm-ha-exporter-$hook" >"$tmp/$hook"
  put 0755 "$tmp/$hook" "$prefix/sbin/slurm-ha-exporter-$hook"
done
sed "s|^ExecStart=/usr/bin/slurm-ha-exporter |ExecStart=$prefix/bin/slurm-ha-exporter |" \
  "$here/systemd/slurm-ha-exporter.service" >"$tmp/unit"
put 0644 "$tmp/unit" /etc/systemd/system/slurm-ha-exporter.service
put 0644 "$here/man/man1/slurm-ha-exporter.1.gz" "$prefix/share/man/man1/slurm-ha-exporter.1.gz"
for hook in primary-on primary-off; do
  put 0644 "$here/man/man8/slurm-ha-exporter-$hook.8.gz" "$prefix/share/man/man8/slurm-ha-exporter-$hook.8.gz"
done
for f in "$here"/share/grafana/*.json "$here"/share/prometheus/*; do
  put 0644 "$f" "$share/$(basename "$(dirname "$f")")/$(basename "$f")"
done
put 0644 "$here/README.md" "$share/README.md"
put 0755 "$here/libexec/plugin-removable" "$share/plugin-removable"
[ -n "$plugin_to" ] && put 0644 "$here/lib/job_submit_ha_exporter.so" "$plugin_to"
if [ -e "$flags" ]; then
  say "kept $flags"
else
  install -m 0644 "$here/etc/slurm-ha-exporter" "$flags"
fi
# With what an earlier install put down (a plugin not installed this time
# stays listed, so --uninstall still checks and removes it).
mkdir -p "$share"
{ [ -f "$manifest" ] && cat "$manifest"; printf '%s' "$installed"; } | sort -u >"$manifest.new"
mv -f "$manifest.new" "$manifest"

"$prefix/bin/slurm-ha-exporter" setup || say "setup failed (above): run $prefix/bin/slurm-ha-exporter setup once it can succeed"
if systemd_up; then
  systemctl daemon-reload
  [ "$was_active" = 1 ] && systemctl restart slurm-ha-exporter.service
fi
say "installed slurm-ha-exporter $version for Slurm $slurm_release under $prefix${plugin_to:+, the plugin as $plugin_to}"
[ "$was_active" = 1 ] ||
  say "installed disabled; set flags in $flags, then: systemctl enable --now slurm-ha-exporter"
if [ -n "$plugin_to" ]; then
  say "the plugin instead of the daemon: JobSubmitPlugins=ha_exporter in slurm.conf, then restart slurmctld"
fi
say "hooks (optional): SlurmctldPrimaryOnProg=$prefix/sbin/slurm-ha-exporter-primary-on, SlurmctldPrimaryOffProg=$prefix/sbin/slurm-ha-exporter-primary-off"
