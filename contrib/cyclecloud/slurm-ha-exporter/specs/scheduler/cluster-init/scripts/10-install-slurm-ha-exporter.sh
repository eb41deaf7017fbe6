#!/usr/bin/env bash
# Cluster-init of the `scheduler` spec: installs slurm-ha-exporter on an
# Azure CycleCloud Slurm scheduler node (node arrays scheduler and
# scheduler-ha) in place of azslurm-exporter. CycleCloud runs it as root at
# every boot, so every step checks first and changes only what differs; it
# prints what it changed, or that nothing did.
#
#  1. our package for this node's OS and slurm.version, from files/<release>/
#     (contrib/cyclecloud/build-project.sh puts them there);
#  2. azslurm-exporter stopped and disabled (same port, same metric names);
#  3. the flags: the port (slurm_ha_exporter.port, default 9101), and no
#     finished-jobs collector where the cluster has no slurmdbd;
#  4. the service enabled and started: it runs as slurm.conf's SlurmUser
#     (the package's unit), never as root, which is checked;
#  5. a scrape job slurm_ha_exporter in the node's Prometheus agent
#     (/opt/prometheus/prometheus.yml, cyclecloud-monitoring), the way
#     azslurm-exporter's installer adds its own (instance = the host name),
#     azslurm-exporter's job removed (it would scrape this exporter a second
#     time), Prometheus reloaded; a node without that file gets a message;
#  6. on the primary scheduler only (slurm.conf is shared): the HA hooks in
#     the file slurm.conf includes as site_specific.conf, then
#     `scontrol reconfigure` if slurmctld runs.
#
# Settings (jetpack config): slurm.version (required), slurm_ha_exporter.enabled
# (True), slurm_ha_exporter.port (9101), slurm.accounting.enabled (False),
# slurm.is_primary_scheduler (True). For tests, the paths it touches can be
# moved: JETPACK, PROM_YML, SLURM_CONF, OS_RELEASE, DEFAULTS.
set -euo pipefail
spec=${CYCLECLOUD_SPEC_PATH:-$(cd "$(dirname "$0")/.." && pwd)}
files=$spec/files
# jetpack is on root's PATH under cluster-init, not in every shell.
JETPACK=${JETPACK:-$(command -v jetpack || echo /opt/cycle/jetpack/bin/jetpack)}
PROM_YML=${PROM_YML:-/opt/prometheus/prometheus.yml}
SLURM_CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
OS_RELEASE=${OS_RELEASE:-/etc/os-release}
changed=()
log() { echo "slurm-ha-exporter cluster-init: $*" >&2; }
die() { log "$*"; exit 1; }
# conf KEY DEFAULT: jetpack's answer; no answer at all (no jetpack) stops here.
conf() { "$JETPACK" config "$1" "$2" || die "cannot ask $JETPACK for $1"; }

enabled=$(conf slurm_ha_exporter.enabled True)
[ "$enabled" = True ] || { log "slurm_ha_exporter.enabled is $enabled: nothing done"; exit 0; }
release=$(conf slurm.version "")
# The Slurm release alone (a template may give a package revision: 25.11.5-1).
release=${release%%-*}
[ -n "$release" ] || die "slurm.version is not set: no way to tell which Slurm release the packages must be built for"
port=$(conf slurm_ha_exporter.port 9101)
accounting=$(conf slurm.accounting.enabled False)
primary=$(conf slurm.is_primary_scheduler True)
[[ $port =~ ^[0-9]+$ ]] || die "slurm_ha_exporter.port is not a port number: $port"

# 1. The package.
# shellcheck disable=SC1090
. "$OS_RELEASE"
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "* | *" ubuntu "*) kind=deb ;;
  *" rhel "* | *" fedora "* | *" centos "*) kind=rpm ;;
  *) die "no package for ${PRETTY_NAME:-this OS}: install from the release tarball (README, Install on a cluster)" ;;
esac
shopt -s nullglob
# The package's flags file: Debian's place, or EL's.
if [ "$kind" = deb ]; then
  pkgs=("$files/$release"/slurm-ha-exporter_*.deb)
  DEFAULTS=${DEFAULTS:-/etc/default/slurm-ha-exporter}
else
  pkgs=("$files/$release"/slurm-ha-exporter-[0-9]*.rpm)
  DEFAULTS=${DEFAULTS:-/etc/sysconfig/slurm-ha-exporter}
fi
[ ${#pkgs[@]} -eq 1 ] || die "want one slurm-ha-exporter .$kind for Slurm $release in $files/$release, found ${#pkgs[@]} (contrib/cyclecloud/README.md: build-project.sh)"
pkg=${pkgs[0]}
if [ "$kind" = deb ]; then
  want=$(dpkg-deb -f "$pkg" Version)
  have=$(dpkg-query -W -f='${Status} ${Version}' slurm-ha-exporter 2>/dev/null | sed -n 's/^install ok installed //p') || true
  if [ "$have" != "$want" ]; then
    # Our flags live in a conffile (step 3): an upgrade keeps them, asking no one.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$pkg" >&2 ||
      die "apt-get install $pkg failed"
    changed+=("installed slurm-ha-exporter $want")
  fi
else
  want=$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$pkg")
  have=$(rpm -q --qf '%{VERSION}-%{RELEASE}' slurm-ha-exporter 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    dnf install -y "$pkg" >&2 || die "dnf install $pkg failed"
    changed+=("installed slurm-ha-exporter $want")
  fi
fi

# 2. azslurm-exporter out of the way.
if systemctl cat azslurm-exporter.service >/dev/null 2>&1; then
  if systemctl is-enabled -q azslurm-exporter 2>/dev/null || systemctl is-active -q azslurm-exporter; then
    systemctl disable --now azslurm-exporter >&2
    changed+=("stopped and disabled azslurm-exporter")
  fi
fi

# 3. The flags.
args=""
[ "$port" = 9101 ] || args+=" --web.listen-address=:$port"
[ "$accounting" = True ] || args+=" --no-collector.accounting"
args=${args# }
line="SLURM_HA_EXPORTER_ARGS=\"$args\""
restart=0
if ! grep -qxF "$line" "$DEFAULTS"; then
  sed -i "s|^SLURM_HA_EXPORTER_ARGS=.*|$line|" "$DEFAULTS"
  grep -qxF "$line" "$DEFAULTS" || echo "$line" >>"$DEFAULTS"
  changed+=("flags: $line")
  restart=1
fi

# 4. The service, never as root.
if ! systemctl is-enabled -q slurm-ha-exporter || ! systemctl is-active -q slurm-ha-exporter; then
  systemctl enable --now slurm-ha-exporter >&2
  changed+=("enabled and started slurm-ha-exporter")
elif [ $restart = 1 ]; then
  systemctl restart slurm-ha-exporter
  changed+=("restarted slurm-ha-exporter")
fi
# (Just started, its process can still be systemd's child, root until it
# takes the unit's user: asked again for up to 10 s.)
user=root
for _ in $(seq 10); do
  pid=$(systemctl show -p MainPID --value slurm-ha-exporter)
  [ "${pid:-0}" != 0 ] && user=$(ps -o user= -p "$pid" | tr -d ' ')
  [ "$user" = root ] || break
  sleep 1
done
[ "${pid:-0}" != 0 ] || die "slurm-ha-exporter is not running: journalctl -u slurm-ha-exporter"
[ "$user" != root ] || { systemctl stop slurm-ha-exporter; die "slurm-ha-exporter runs as root: stopped (its unit must name SlurmUser: dpkg-reconfigure slurm-ha-exporter)"; }

# 5. The node's Prometheus agent.
if [ ! -f "$PROM_YML" ]; then
  log "no $PROM_YML: this node has no Prometheus agent (cyclecloud-monitoring not enabled?); the exporter serves :$port/metrics for a Prometheus of your own"
else
  command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null ||
    die "python3 with PyYAML (python3-yaml) is needed to add the scrape job to $PROM_YML"
  rc=0
  python3 - "$PROM_YML" "$(hostname):$port" <<'PY' || rc=$?
import os, sys, yaml
path, target = sys.argv[1], sys.argv[2]
with open(path) as f:
    cfg = yaml.safe_load(f) or {}
ours = {
    "job_name": "slurm_ha_exporter",
    "static_configs": [{"targets": [target]}],
    "relabel_configs": [{
        "source_labels": ["__address__"], "target_label": "instance",
        "regex": "([^:]+)(:[0-9]+)?", "replacement": "${1}",
    }],
}
jobs = [j for j in (cfg.get("scrape_configs") or [])
        if j.get("job_name") not in ("slurm_ha_exporter", "azslurm_exporter")]
jobs.append(ours)
if cfg.get("scrape_configs") == jobs:
    sys.exit(3)
cfg["scrape_configs"] = jobs
tmp = path + ".slurm-ha-exporter.tmp"
with open(tmp, "w") as f:
    yaml.safe_dump(cfg, f, sort_keys=False)
st = os.stat(path)
os.chown(tmp, st.st_uid, st.st_gid)
os.chmod(tmp, st.st_mode & 0o7777)
os.replace(tmp, path)
PY
  case $rc in
    0)
      changed+=("scrape job slurm_ha_exporter in $PROM_YML (azslurm_exporter's removed)")
      if pkill -HUP -x prometheus; then changed+=("Prometheus reloaded"); else log "no prometheus process to reload"; fi ;;
    3) ;;
    *) die "could not add the scrape job to $PROM_YML" ;;
  esac
fi

# 6. The HA hooks, once, from the primary.
if [ "$primary" = True ]; then
  if [ ! -r "$SLURM_CONF" ]; then
    log "no $SLURM_CONF yet: HA hooks not configured (optional: the heartbeat alone is enough)"
  elif grep -qiE '^[[:space:]]*SlurmctldPrimary(On|Off)Prog[[:space:]]*=' "$SLURM_CONF"; then
    log "$SLURM_CONF sets SlurmctldPrimaryOnProg/OffProg itself: left as it is"
  else
    inc=$(sed -n 's/^[[:space:]]*Include[[:space:]]\+\(.*site_specific\.conf\)[[:space:]]*$/\1/Ip' "$SLURM_CONF" | tail -n 1)
    if [ -z "$inc" ]; then
      log "$SLURM_CONF includes no site_specific.conf: add the HA hooks yourself (README, Install on a cluster)"
    else
      case "$inc" in /*) ;; *) inc=$(dirname "$SLURM_CONF")/$inc ;; esac
      [ -e "$inc" ] || : >"$inc"
      if grep -qiE '^[[:space:]]*SlurmctldPrimary(On|Off)Prog[[:space:]]*=' "$inc"; then
        grep -qxF "SlurmctldPrimaryOnProg=/usr/sbin/slurm-ha-exporter-primary-on" "$inc" ||
          log "$inc sets SlurmctldPrimaryOnProg/OffProg to other programs: left as it is"
      else
        printf '%s\n' "# slurm-ha-exporter: tell the exporter at once when this controller takes or leaves control" \
          "SlurmctldPrimaryOnProg=/usr/sbin/slurm-ha-exporter-primary-on" \
          "SlurmctldPrimaryOffProg=/usr/sbin/slurm-ha-exporter-primary-off" >>"$inc"
        changed+=("HA hooks in $inc")
        if systemctl is-active -q slurmctld; then
          if scontrol reconfigure >&2; then
            changed+=("scontrol reconfigure")
          else
            log "scontrol reconfigure failed: slurmctld takes the hooks at its next start or reconfigure"
          fi
        fi
      fi
    fi
  fi
fi

if [ ${#changed[@]} -eq 0 ]; then
  log "nothing changed (already installed and configured)"
else
  printf 'slurm-ha-exporter cluster-init: %s\n' "${changed[@]}" >&2
fi
