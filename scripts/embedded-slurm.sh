#!/usr/bin/env bash
# A real single-host Slurm for tests, benchmarks and first runs:
# munge, MariaDB, slurmdbd, slurmctld and three slurmd (node1..node3, one
# process each via `slurmd -N`), all on loopback, all state under one
# directory. Nothing under /etc/slurm is touched: use SLURM_CONF=<dir>/slurm.conf.
#
#   scripts/embedded-slurm.sh start   # idempotent; waits until the cluster is ready
#                                     # (a running cluster keeps its config until stop)
#   scripts/embedded-slurm.sh stop
#   scripts/embedded-slurm.sh reset   # stop and delete all state (fresh cluster next start)
#   scripts/embedded-slurm.sh env     # prints `export SLURM_CONF=...`
#   scripts/embedded-slurm.sh stop-ctld|start-ctld|stop-dbd|start-dbd   (fault injection)
#
# Environment: EMBED_DIR (default <repo>/.embedded), EMBED_CLOUD_NODES (extra
# powered-down CLOUD nodes, for benchmarks; default 0) of EMBED_CLOUD_CPUS
# CPUs each (default 4), EMBED_PLUGIN (path of
# a built libjob_submit_ha_exporter.so: slurmctld loads it as
# JobSubmitPlugins=ha_exporter and it serves on 127.0.0.1:EMBED_PLUGIN_PORT,
# default 19180; EMBED_HELPER is its accounting helper, the daemon binary),
# EMBED_MAX_JOBS (MaxJobCount, default 20000), EMBED_SLURMD_TIMEOUT
# (default 30 for the tests: slurmctld pings every slurmd each third of it,
# and every answer marks the node table changed; benchmarks of a steady
# cluster use Slurm's default, 300).
# A running slurmctld whose slurm.conf changed is restarted by `start`.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
DIR=${EMBED_DIR:-$here/.embedded}
CLOUD=${EMBED_CLOUD_NODES:-0}
CLUSTER=embedded
HOST=$(hostname -s)
export SLURM_CONF=$DIR/slurm.conf
# Its own database user: a host that ran slurmdbd has a user `slurm` with
# another password, which must be left alone.
DB_USER=slurm_embedded
DB_PASS=embedded-slurmdb

log() { echo "embedded-slurm: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Polls "$@" until it succeeds; stops at once with the daemon's error when
# DAEMON (its pid file's name) has died or logged a fatal error since
# FROM (a byte offset in LOG), so a daemon that cannot start is reported
# in its own words instead of by a timeout.
wait_daemon() {
  local daemon=$1 log=$2 from=$3 deadline=$4; shift 4
  local end=$((SECONDS + deadline)) started=$SECONDS
  news() { tail -c +"$((from + 1))" "$log" 2>/dev/null; }
  until "$@" >/dev/null 2>&1; do
    if { [ $((SECONDS - started)) -ge 3 ] && ! alive "$daemon"; } ||
      news | grep -qE '(^|\] )fatal:|Access denied'; then
      log "$daemon did not start; from $log:"
      news | grep -E 'error|fatal' | tail -n 5 >&2 || true
      stop_daemon "$daemon"
      exit 1
    fi
    if [ $SECONDS -ge $end ]; then
      log "timed out after ${deadline}s waiting for $daemon; from $log:"
      news | tail -n 5 >&2
      return 1
    fi
    sleep 0.3
  done
}

# Bytes in a log so far (where this start's lines begin).
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Polls "$@" until it succeeds or DEADLINE seconds pass.
wait_for() {
  local what=$1 deadline=$2; shift 2
  local end=$((SECONDS + deadline))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { log "timed out after ${deadline}s waiting for $what"; return 1; }
    sleep 0.3
  done
}

PLUGIN=${EMBED_PLUGIN:-}
PLUGIN_PORT=${EMBED_PLUGIN_PORT:-19180}
CONF_CHANGED=0

write_config() {
  mkdir -p "$DIR"/{state,log,run,spool,mysql-run}
  local before="" new=$DIR/slurm.conf.new
  [ -f "$DIR/slurm.conf" ] && before=$(sha256sum <"$DIR/slurm.conf")
  # Written aside and renamed: daemons and tests read slurm.conf at any
  # time, and must never see it empty or half written.
  cat >"$new" <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=${EMBED_SLURMD_TIMEOUT:-30}
MinJobAge=2
MaxJobCount=${EMBED_MAX_JOBS:-20000}
KillWait=2
InactiveLimit=0
GresTypes=gpu
Licenses=fluent:10,matlab:2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobCompType=jobcomp/none
SuspendProgram=/bin/true
ResumeProgram=/bin/true
# Power saving on (manual power down and up work) but no node is ever
# powered down for being idle (every node is excluded).
SuspendTime=3600
SuspendExcNodes=node[1-3],ghost1
SuspendTimeout=5
# Fairshare (sshare, our fairshare collector) is computed only by the
# multifactor plugin. Every weight is left at 0: all jobs get priority 1 and
# the queue keeps submission order, as with priority/basic. Usage is
# recomputed every minute, the shortest period Slurm takes.
PriorityType=priority/multifactor
PriorityCalcPeriod=1
# The backfill scheduler every 5 s (default 30): tests wait for its plans.
SchedulerParameters=bf_interval=5
RebootProgram=/bin/true
Epilog=$DIR/epilog.sh
NodeName=node1 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=17001 CPUs=4 RealMemory=4000 State=UNKNOWN
NodeName=node2 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=17002 CPUs=4 RealMemory=4000 Gres=gpu:1 State=UNKNOWN
NodeName=node3 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=17003 CPUs=4 RealMemory=4000 Gres=gpu:tesla:2 State=UNKNOWN
NodeName=ghost1 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=17009 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=node[1-3],ghost1 Default=YES MaxTime=INFINITE State=UP
PartitionName=batch Nodes=node[1-2] MaxTime=60 State=UP
CONF
  if [ "$CLOUD" -gt 0 ]; then
    cat >>"$new" <<CONF
# Without PrivateData=cloud, powered-down cloud nodes are hidden from every client.
PrivateData=cloud
NodeName=cloud[1-$CLOUD] CPUs=${EMBED_CLOUD_CPUS:-4} RealMemory=4000 State=CLOUD
PartitionName=cloud Nodes=cloud[1-$CLOUD] MaxTime=INFINITE State=UP
CONF
  fi
  local sysdir
  sysdir=$(dirname "$(ls /usr/lib/*/slurm-wlm/auth_munge.so /usr/lib*/slurm/auth_munge.so 2>/dev/null | head -n1)")
  # Slurm 25.11+ can serve its own metrics on slurmctld's port
  # (/metrics/jobs, /nodes, /partitions, /scheduler): on where that plugin
  # is installed, for the cross-check test and the benchmark against it.
  # ignore_private_data: readable without authentication, like our exporter
  # (26.05+; 25.11 knows no MetricsParameters and refuses the whole file,
  # and serves without authentication unless PrivateData is set).
  if [ -e "$sysdir/metrics_openmetrics.so" ]; then
    echo MetricsType=metrics/openmetrics >>"$new"
    local release
    release=$(slurmctld -V | awk '{print $2}')
    if [ "$(printf '%s\n' 26.05 "$release" | sort -V | head -n1)" = 26.05 ]; then
      echo MetricsParameters=ignore_private_data >>"$new"
    fi
  fi
  if [ -n "$PLUGIN" ]; then
    [ -f "$PLUGIN" ] || die "EMBED_PLUGIN=$PLUGIN does not exist (cargo build -p slurm-ha-exporter-plugin)"
    # Slurm's own plugins stay where Debian put them; ours is found in a
    # second PluginDir entry, under the name slurmctld looks for.
    mkdir -p "$DIR/plugins" "$DIR/plugin-state"
    # A copy, not a link: a rebuild must not change the file under a running slurmctld.
    cmp -s "$PLUGIN" "$DIR/plugins/job_submit_ha_exporter.so" || install -m 0755 "$PLUGIN" "$DIR/plugins/job_submit_ha_exporter.so"
    cat >>"$new" <<CONF
PluginDir=$sysdir:$DIR/plugins
JobSubmitPlugins=ha_exporter
CONF
    cat >"$DIR/ha_exporter.conf.new" <<CONF
# The plugin's settings: the daemon's flags, one per line.
--web.listen-address=127.0.0.1:$PLUGIN_PORT
--ha.poll-interval=1s
--ha.state-save-location=$DIR/plugin-state
--collector.jobs.interval=2s
--collector.accounting.interval=3s
--collector.accounting.helper=${EMBED_HELPER:-$here/target/debug/slurm-ha-exporter}
CONF
    mv "$DIR/ha_exporter.conf.new" "$DIR/ha_exporter.conf"
  fi
  [ "$before" = "$(sha256sum <"$new")" ] || CONF_CHANGED=1
  mv "$new" "$DIR/slurm.conf"
  # The node-state test holds a node in COMPLETING by creating slow-epilog.
  cat >"$DIR/epilog.sh.new" <<EPILOG
#!/bin/sh
[ -e "$DIR/slow-epilog" ] && sleep 10
exit 0
EPILOG
  chmod 755 "$DIR/epilog.sh.new"
  mv "$DIR/epilog.sh.new" "$DIR/epilog.sh"
  cat >"$DIR/gres.conf.new" <<CONF
AutoDetect=off
# Fake devices: node2 one untyped GPU, node3 two typed ones.
NodeName=node2 Name=gpu File=/dev/full
NodeName=node3 Name=gpu Type=tesla File=/dev/null,/dev/zero
CONF
  mv "$DIR/gres.conf.new" "$DIR/gres.conf"
  cat >"$DIR/slurmdbd.conf.new" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=slurm_embedded
CONF
  chmod 600 "$DIR/slurmdbd.conf.new"
  mv "$DIR/slurmdbd.conf.new" "$DIR/slurmdbd.conf"
}

start_munge() {
  # Ask this host's munged itself: pgrep would also see the munged of
  # the Docker bed's containers, which this host cannot use.
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged
  wait_for munged 20 bash -c 'munge -n | unmunge'
}

start_mariadb() {
  if ! mysqladmin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    (setsid mysqld_safe --bind-address=127.0.0.1 >"$DIR/log/mysqld_safe.log" 2>&1 &)
    wait_for mariadb 60 mysqladmin ping
  fi
  # MariaDB 11.6.2+ turns innodb_snapshot_isolation on, which Slurm does
  # not support (26.05's slurmdbd warns at start and dies on the first
  # write conflict). Older MariaDB has no such variable.
  mysql -uroot -e 'SET GLOBAL innodb_snapshot_isolation=OFF' 2>/dev/null || true
  # The database is made here, not by slurmdbd: slurmdbd 24.11+ retries its
  # failed first connect (no database yet) on the same MariaDB handle, and
  # with MariaDB 11.8's client library (trixie, forky) every query on that
  # handle then fails ("5027 Number of columns in result ... exceeds") and
  # slurmdbd exits. A later start, with the database there, is fine.
  mysql -uroot <<SQL
CREATE DATABASE IF NOT EXISTS slurm_embedded;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_embedded.* TO '$DB_USER'@'localhost';
GRANT ALL ON slurm_embedded.* TO '$DB_USER'@'127.0.0.1';
SQL
}

start_dbd() {
  alive slurmdbd && sacctmgr -n show cluster >/dev/null 2>&1 && return
  # slurmdbd has no -f: it reads slurmdbd.conf next to $SLURM_CONF.
  local log=$DIR/log/slurmdbd.log from
  from=$(log_size "$log")
  slurmdbd
  wait_daemon slurmdbd "$log" "$from" 60 sacctmgr -n show cluster
  sacctmgr -n show cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

start_ctld() {
  if [ "$CONF_CHANGED" = 1 ] && alive slurmctld; then
    log "slurm.conf changed: restarting slurmctld"
    stop_daemon slurmctld
  fi
  alive slurmctld && scontrol ping 2>/dev/null | grep -q UP && return
  local log=$DIR/log/slurmctld.log from
  from=$(log_size "$log")
  slurmctld -f "$DIR/slurm.conf"
  wait_daemon slurmctld "$log" "$from" 60 bash -c 'scontrol ping | grep -q "is UP"'
  alive slurmctld || die "slurmctld did not stay up (another Slurm on port 6817? see $log)"
}

start_slurmds() {
  for n in node1 node2 node3; do
    alive "slurmd-$n" || slurmd -N "$n" -f "$DIR/slurm.conf"
  done
}

cluster_ready() {
  # Ready: every node with a slurmd registered and idle (or busy), sacctmgr answers.
  local states
  states=$(sinfo -h -N -n node1,node2,node3 -o '%N %T' | sort -u)
  [ "$(echo "$states" | grep -cE ' (idle|mixed|allocated)$')" -ge 3 ] || return 1
  sacctmgr -n show cluster format=cluster | grep -qw "$CLUSTER"
}

# Daemons are found by their pid files, so another Slurm on the host is never touched.
pid_of() { local f=$DIR/run/$1.pid; [ -s "$f" ] && cat "$f"; }
alive() { local p; p=$(pid_of "$1") && kill -0 "$p" 2>/dev/null; }

stop_daemon() {
  local name=$1 p
  p=$(pid_of "$name") || return 0
  kill "$p" 2>/dev/null || return 0
  wait_for "$name to exit" 30 bash -c "! kill -0 $p" || kill -9 "$p" 2>/dev/null || true
}

stop_all() {
  for d in slurmd-node1 slurmd-node2 slurmd-node3 slurmctld slurmdbd; do stop_daemon "$d"; done
}

case "${1:-start}" in
  start)
    command -v slurmctld >/dev/null || die "slurmctld is not installed (run scripts/install-deps.sh)"
    write_config
    start_munge
    start_mariadb
    # slurmdbd finds slurmdbd.conf next to slurm.conf.
    start_dbd
    start_ctld
    start_slurmds
    wait_for "nodes to register" 90 cluster_ready || { tail -n 30 "$DIR"/log/*.log >&2; exit 1; }
    log "ready: export SLURM_CONF=$SLURM_CONF"
    ;;
  stop) stop_all ;;
  reset) stop_all; rm -rf "$DIR" ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  stop-ctld) stop_daemon slurmctld ;;
  start-ctld) start_ctld ;;
  stop-dbd) stop_daemon slurmdbd ;;
  start-dbd) start_dbd ;;
  *) die "usage: $0 start|stop|reset|env|stop-ctld|start-ctld|stop-dbd|start-dbd" ;;
esac
