#!/bin/bash
# One container = one role of the test cluster: ctl (slurmctld + the
# exporter daemon, or slurmctld with the exporter plugin when
# EXPORTER_MODE=plugin), node (slurmd), dbd (MariaDB + slurmdbd), prometheus.
set -euo pipefail
role=${1:?role}
mkdir -p /etc/slurm
cp /cluster/slurm.conf /cluster/gres.conf /etc/slurm/
# The plugin reads ha_exporter.conf next to slurm.conf.
if [ -f /cluster/ha_exporter.conf ]; then
  cp /cluster/ha_exporter.conf /etc/slurm/ha_exporter.conf
else
  rm -f /etc/slurm/ha_exporter.conf
fi

start_munge() {
  install -o munge -g munge -m 0400 /cluster/munge.key /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
}

case "$role" in
  start-ctld)
    # Also used by docker/cluster.sh start-ctld after a kill.
    (slurmctld -D >>/var/log/slurm/slurmctld.log 2>&1 &)
    exit 0
    ;;
  ctl)
    start_munge
    mkdir -p /var/spool/slurmctld /var/log/slurm
    if [ -n "${STATESAVE_CACHE:-}" ]; then
      # This controller's caching client of the shared StateSaveLocation:
      # attributes and names (a file's size and mtime, whether a name
      # exists) are kept STATESAVE_CACHE seconds, as an NFS client's
      # attribute cache and lookup cache keep them (docs/soak.md).
      # Each open() reads what was last closed (auto_cache, with the
      # attributes it compares fetched at every open), as NFS's
      # close-to-open does. bindfs on libfuse 3 (1.15+: trixie, forky)
      # sets the three timeouts to 0 whatever -o says: refused, not
      # silently uncached.
      if ldd "$(command -v bindfs)" | grep -q libfuse3; then
        echo "entrypoint: STATESAVE_CACHE needs bindfs on libfuse 2 (bookworm's); this one ignores the timeouts" >&2
        exit 1
      fi
      # nonempty: the volume is mounted here too (compose.yml), and the
      # other controller may have written into it already.
      c=$STATESAVE_CACHE
      bindfs -o "nonempty,attr_timeout=$c,entry_timeout=$c,negative_timeout=$c,auto_cache,ac_attr_timeout=0" \
        /srv/statesave /var/spool/slurmctld
    fi
    chown slurm:slurm /var/spool/slurmctld /var/log/slurm
    if [ "${EXPORTER_MODE:-daemon}" = daemon ] && [ -x /opt/exporter/slurm-ha-exporter ]; then
      # The exporter runs as SlurmUser, like it would under systemd.
      (while true; do
         runuser -u slurm -- /opt/exporter/slurm-ha-exporter run ${EXPORTER_FLAGS:-} >>/var/log/slurm/exporter.log 2>&1 || true
         sleep 1
       done) &
    fi
    # slurmctld is not PID 1's only child on purpose: kill -9 of slurmctld
    # must leave the container (and the exporter) alive, as on a real host.
    "$0" start-ctld
    exec sleep infinity
    ;;
  node)
    start_munge
    mkdir -p /var/spool/slurmd
    exec slurmd -D -N "$(hostname)"
    ;;
  dbd)
    start_munge
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    mysqld_safe --bind-address=127.0.0.1 >/dev/null 2>&1 &
    for _ in $(seq 1 120); do mysqladmin ping >/dev/null 2>&1 && break; sleep 0.5; done
    # The database exists before slurmdbd starts: see start_mariadb in
    # scripts/embedded-slurm.sh (MariaDB 11.8's client and slurmdbd's retry).
    mysql -uroot -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
                     CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'cluster-db';
                     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
    install -o slurm -g slurm -m 0600 /cluster/slurmdbd.conf /etc/slurm/slurmdbd.conf
    exec slurmdbd -D
    ;;
  prometheus)
    # Beside the bed's Prometheus (:9090, scrapes both exporters, evaluates
    # the rules), CycleCloud's way of monitoring (docs/cyclecloud-monitoring.md):
    # one Prometheus agent per controller, scraping only its own exporter,
    # remote-writing into a second store (:9091, the remote-write receiver
    # standing in for an Azure Monitor workspace; it evaluates the same rules,
    # as the workspace evaluates our rule groups). Agent mode is a feature
    # flag before Prometheus 3 and a flag of its own since (not in --help).
    agent=--enable-feature=agent
    case "$(prometheus --version 2>&1 | sed -n '1s/^prometheus, version \([0-9]*\).*/\1/p')" in
      2) ;;
      *) agent=--agent ;;
    esac
    prometheus --config.file=/cluster/store.yml --storage.tsdb.path=/tmp/store \
      --web.listen-address=:9091 --web.enable-remote-write-receiver >>/tmp/store.log 2>&1 &
    for ctl in ctl1 ctl2; do
      prometheus "$agent" --config.file="/cluster/agent-$ctl.yml" --storage.agent.path="/tmp/agent-$ctl" \
        --web.listen-address="127.0.0.1:$([ $ctl = ctl1 ] && echo 9092 || echo 9093)" >>"/tmp/agent-$ctl.log" 2>&1 &
    done
    exec prometheus --config.file=/cluster/prometheus.yml --storage.tsdb.path=/tmp/prometheus \
      --web.listen-address=:9090
    ;;
  *) echo "unknown role $role" >&2; exit 2 ;;
esac
