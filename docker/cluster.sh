#!/usr/bin/env bash
# Drives the HA test cluster (docker/compose.yml): ctl1 (primary) and ctl2
# (backup) slurmctld sharing StateSaveLocation, dbd (slurmdbd + MariaDB),
# node1, node2 (slurmd), prometheus scraping the exporter on both
# controllers, and CycleCloud's monitoring beside it (a Prometheus agent per
# controller remote-writing into a second store). Every wait polls with a deadline.
#
#   docker/cluster.sh up        build images and the exporter, start (undoing faults left
#                               by an earlier run), wait until ready, print URLs
#   docker/cluster.sh down      stop and remove containers and volumes
#   docker/cluster.sh wait      wait until ready (both controllers answer ping,
#                               ctl1 in control, both nodes idle, sacctmgr knows the cluster)
#   docker/cluster.sh in-control          index of the controller in control (Slurm's heartbeat file)
#   docker/cluster.sh exec SVC CMD...     run a command in a container (e.g. exec ctl1 squeue)
#   docker/cluster.sh kill-ctld SVC | start-ctld SVC | kill-exporter SVC
#   docker/cluster.sh stop SVC | start SVC | pause SVC | unpause SVC
#   docker/cluster.sh disconnect SVC | connect SVC | stop-dbd | start-dbd
#   docker/cluster.sh fill-statesave | unfill-statesave   (STATESAVE_SIZE beds only)
#   docker/cluster.sh heal      undo every fault (unpause, reconnect, start a slurmctld
#                               that is not running, restart one that does not answer)
#   docker/cluster.sh logs [DIR]  every container's log and `ps` (to DIR, else stdout)
#
# Environment: SUITE (bookworm), EXPORTER_BIN (default: cargo build --release),
# STATESAVE_CACHE (seconds: StateSaveLocation through a caching client per controller),
# STATESAVE_SIZE (MB: StateSaveLocation on a tmpfs of that size, for fill-statesave),
# URGENT_PARTITION=1 (a second partition, urgent, whose jobs preempt debug's),
# EXPORTER_FLAGS (extra daemon flags), CTL1_PORT/CTL2_PORT/PROMETHEUS_PORT/STORE_PORT,
# EXPORTER_MODE: daemon (default: slurm-ha-exporter beside each slurmctld) or
# plugin (no daemon: slurmctld loads job_submit_ha_exporter.so, configured by
# ha_exporter.conf with the same flags; EXPORTER_PLUGIN overrides the .so).
# Switching modes needs `down` first (the containers keep their slurm.conf).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export SUITE=${SUITE:-bookworm}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-slurmha}
export CLUSTER_DIR=${CLUSTER_DIR:-$repo/.cluster/$SUITE}
export EXPORTER_DIR=$CLUSTER_DIR/exporter
# Short intervals so tests see changes quickly (the defaults are 5-60 s), and
# a 1 min accounting overlap (default 5 min) that the late-records scenario
# must wait out.
export EXPORTER_FLAGS=${EXPORTER_FLAGS:---ha.poll-interval=2s --ha.handover-delay=6s --collector.jobs.interval=5s --collector.accounting.interval=5s --collector.accounting.overlap=60s --collector.nodes.interval=5s --collector.reservations.interval=5s --collector.licenses.interval=5s --collector.accounts --collector.users --collector.accounts.interval=5s --collector.users.interval=5s --log.level=debug}
export EXPORTER_MODE=${EXPORTER_MODE:-daemon}
case "$EXPORTER_MODE" in daemon|plugin) ;; *) echo "cluster: EXPORTER_MODE must be daemon or plugin" >&2; exit 2 ;; esac
# STATESAVE_CACHE=SECONDS: each controller reads StateSaveLocation through
# its own caching client of the shared volume (compose.statesave-cache.yml).
compose_files=(-f "$here/compose.yml")
[ -n "${STATESAVE_CACHE:-}" ] && compose_files+=(-f "$here/compose.statesave-cache.yml")
export STATESAVE_CACHE=${STATESAVE_CACHE:-}
[[ -z $STATESAVE_CACHE || $STATESAVE_CACHE =~ ^[1-9][0-9]*$ ]] || { echo "cluster: STATESAVE_CACHE must be seconds (1 or more)" >&2; exit 2; }
# STATESAVE_SIZE=MB: StateSaveLocation on a tmpfs of that size
# (compose.statesave-size.yml), which fill-statesave can fill.
[ -n "${STATESAVE_SIZE:-}" ] && compose_files+=(-f "$here/compose.statesave-size.yml")
[[ -z ${STATESAVE_SIZE:-} || $STATESAVE_SIZE =~ ^[1-9][0-9]*$ ]] || { echo "cluster: STATESAVE_SIZE must be MB (1 or more)" >&2; exit 2; }
compose() { docker-compose "${compose_files[@]}" "$@"; }
# StateSaveLocation as it is, not a controller's cached view of it: the
# shared volume where the bed has one (compose.statesave-cache.yml).
# Decided inside the container, whatever this call's environment says.
state_dir='d=/srv/statesave; [ -d "$d" ] || d=/var/spool/slurmctld'

log() { echo "cluster: $*" >&2; }

wait_for() {
  local what=$1 deadline=$2; shift 2
  local end=$((SECONDS + deadline))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out after ${deadline}s waiting for $what"; return 1; fi
    sleep 0.5
  done
}

x() { local svc=$1; shift; docker exec "${COMPOSE_PROJECT_NAME}_${svc}_1" "$@"; }
cid() { echo "${COMPOSE_PROJECT_NAME}_$1_1"; }

prepare() {
  mkdir -p "$CLUSTER_DIR" "$EXPORTER_DIR"
  cp "$here/etc/slurm.conf" "$here/etc/gres.conf" "$here/etc/slurmdbd.conf" "$here/etc/prometheus.yml" \
    "$here/etc/store.yml" "$here/etc/agent-ctl1.yml" "$here/etc/agent-ctl2.yml" \
    "$repo/contrib/prometheus/slurm-ha-exporter.rules.yml" "$CLUSTER_DIR/"
  [ -s "$CLUSTER_DIR/munge.key" ] || dd if=/dev/urandom of="$CLUSTER_DIR/munge.key" bs=1024 count=1 2>/dev/null
  if [ "${URGENT_PARTITION:-}" = 1 ]; then
    cat >>"$CLUSTER_DIR/slurm.conf" <<'CONF'
# URGENT_PARTITION=1: a second partition on both nodes, whose jobs preempt
# (cancel) debug's when no node is free.
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
PartitionName=urgent Nodes=node[1-2] PriorityTier=2 MaxTime=INFINITE State=UP
CONF
  fi
  chmod 644 "$CLUSTER_DIR"/*.conf "$CLUSTER_DIR"/*.yml
  local bin=${EXPORTER_BIN:-} so=${EXPORTER_PLUGIN:-}
  if [ -z "$bin" ] || { [ "$EXPORTER_MODE" = plugin ] && [ -z "$so" ]; }; then
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" \
      -p slurm-ha-exporter -p slurm-ha-exporter-plugin
  fi
  bin=${bin:-$repo/target/release/slurm-ha-exporter}
  so=${so:-$repo/target/release/libjob_submit_ha_exporter.so}
  if [ "$EXPORTER_MODE" = plugin ]; then
    # Debian's plugins stay in their directory; ours is in a second one.
    cat >>"$CLUSTER_DIR/slurm.conf" <<CONF
# EXPORTER_MODE=plugin: the exporter runs inside slurmctld.
PluginDir=/usr/lib/$(uname -m)-linux-gnu/slurm-wlm:/opt/exporter/plugin
JobSubmitPlugins=ha_exporter
CONF
    { echo "# The plugin's settings: the daemon's flags, one per line."
      echo "--web.listen-address=:9101"
      echo "--collector.accounting.helper=/opt/exporter/slurm-ha-exporter"
      for f in $EXPORTER_FLAGS; do echo "$f"; done
    } >"$CLUSTER_DIR/ha_exporter.conf"
    chmod 644 "$CLUSTER_DIR/ha_exporter.conf"
    mkdir -p "$EXPORTER_DIR/plugin"
    if ! cmp -s "$so" "$EXPORTER_DIR/plugin/job_submit_ha_exporter.so"; then
      install -m 0755 "$so" "$EXPORTER_DIR/plugin/job_submit_ha_exporter.so"
      PLUGIN_CHANGED=1
    fi
  else
    rm -f "$CLUSTER_DIR/ha_exporter.conf"
  fi
  # slurmctld runs SlurmctldPrimaryOnProg/OffProg without arguments: the
  # two wrappers a site would install (slurm.conf names them).
  for ev in primary-on primary-off; do
    printf '#!/bin/sh\nexec /opt/exporter/slurm-ha-exporter hook %s\n' "$ev" >"$EXPORTER_DIR/$ev"
    chmod 0755 "$EXPORTER_DIR/$ev"
  done
  if ! cmp -s "$bin" "$EXPORTER_DIR/slurm-ha-exporter"; then
    install -m 0755 "$bin" "$EXPORTER_DIR/slurm-ha-exporter"
    EXPORTER_CHANGED=1
  fi
}
EXPORTER_CHANGED=0
PLUGIN_CHANGED=0

# The first controller container that runs and is not paused.
running_ctl() {
  local c
  for c in ctl1 ctl2; do
    if [ "$(docker inspect -f '{{.State.Running}} {{.State.Paused}}' "$(cid $c)" 2>/dev/null)" = "true false" ]; then
      echo "$c"
      return
    fi
  done
  return 1
}

# Index of the controller in control, from StateSaveLocation/heartbeat:
# big-endian u64 time, then big-endian u64 controller index. Read through
# a controller container that runs and is not paused (the volume is shared).
in_control() {
  local c; c=$(running_ctl) || return 1
  x "$c" sh -c "$state_dir; od -An -tu1 -j15 -N1 \$d/heartbeat" | tr -d ' '
}

heartbeat_age() {
  local c t; c=$(running_ctl) || return 1
  t=$(x "$c" sh -c "$state_dir; od -An -tu1 -N8 \$d/heartbeat" | awk '{v=0; for(i=1;i<=NF;i++) v=v*256+$i; print v}')
  echo $(( $(date +%s) - t ))
}

ready() {
  x ctl1 scontrol ping | grep -q "ctl1 is UP" || return 1
  x ctl1 scontrol ping | grep -q "ctl2 is UP" || return 1
  [ "$(in_control)" = 0 ] || return 1
  # (A node in two partitions is listed once for each.)
  [ "$(x ctl1 sinfo -h -N -o '%N %T' | sort -u | grep -cE ' (idle|mixed|allocated)$')" -eq 2 ] || return 1
  x ctl1 sacctmgr -n show cluster format=cluster | grep -qw hacluster || return 1
  # CycleCloud's monitoring beside the bed's Prometheus: both agents and
  # their store (docker/slurm/entrypoint.sh logs to /tmp/{agent-ctl*,store}.log).
  local port
  for port in 9090 9091 9092 9093; do
    x prometheus curl -sf "localhost:$port/-/ready" >/dev/null || return 1
  done
}

# Undoes faults a failed test may have left: paused or disconnected
# controllers, a killed slurmctld, stopped containers.
# Back on the network with its fixed address (compose.yml).
connect() {
  local ip; case "$1" in ctl1) ip=172.30.57.11 ;; ctl2) ip=172.30.57.12 ;; *) ip= ;; esac
  docker network connect --alias "$1" ${ip:+--ip "$ip"} "${COMPOSE_PROJECT_NAME}_default" "$(cid "$1")"
}

# StateSaveLocation full: one root-owned file takes all the space left, on
# the shared volume (behind both controllers' caches, as a full NFS export).
# Refused unless it is a size-limited tmpfs (STATESAVE_SIZE).
fill_statesave() {
  local c; c=$(running_ctl) || { log "no controller container runs"; return 1; }
  x "$c" sh -c "$state_dir"'
    [ "$(stat -f -c %T "$d")" = tmpfs ] || { echo "StateSaveLocation ($d) is not a size-limited tmpfs (STATESAVE_SIZE): filling it would fill the host disk"; exit 1; }
    dd if=/dev/zero of="$d/.fill" bs=1M 2>/dev/null
    echo "$(df -k "$d" | awk "NR == 2 { print \$4 }") kB left"'
}

unfill_statesave() {
  local c; c=$(running_ctl) || return 0
  x "$c" sh -c "$state_dir; rm -f \$d/.fill"
}

heal() {
  local c id
  # A compute node left frozen (the soak's node failure).
  for c in node1 node2; do
    id=$(cid $c)
    if [ "$(docker inspect -f '{{.State.Paused}}' "$id" 2>/dev/null)" = true ]; then docker unpause "$id" >/dev/null; fi
  done
  for c in ctl1 ctl2; do
    id=$(cid $c)
    docker inspect "$id" >/dev/null 2>&1 || continue
    [ "$(docker inspect -f '{{.State.Paused}}' "$id")" = true ] && docker unpause "$id" >/dev/null
    docker inspect -f '{{json .NetworkSettings.Networks}}' "$id" | grep -q "${COMPOSE_PROJECT_NAME}_default" \
      || connect "$c"
    # A slurmctld left stopped (SIGSTOP) by a test runs on.
    [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ] && x "$c" pkill -CONT -x slurmctld || true
    if [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ] && ! x "$c" pgrep -x slurmctld >/dev/null; then
      x "$c" /usr/local/bin/entrypoint.sh start-ctld
    fi
    # A directory in the way of slurmctld's heartbeat writes (the tests'
    # heartbeat stall) left by a run that did not undo it.
    [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ] \
      && x "$c" sh -c "$state_dir; ! [ -d \$d/heartbeat.new ] || rmdir \$d/heartbeat.new 2>/dev/null || true; rm -f \$d/.fill"
  done
  # After a split brain (a paused primary resumed while the backup was in
  # control) 22.05's backup can hang while relinquishing control: its
  # process runs and keeps writing the heartbeat, but it answers nothing.
  # A slurmctld that stays unanswering for 30 s is restarted.
  for c in ctl1 ctl2; do
    id=$(cid $c)
    [ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ] || continue
    x "$c" pgrep -x slurmctld >/dev/null || continue
    if ! wait_for "slurmctld on $c to answer" 30 sh -c "docker exec $id scontrol ping | grep -q '$c is UP'"; then
      log "restarting the slurmctld on $c, which runs but does not answer"
      x "$c" pkill -9 -x slurmctld || true
      wait_for "the old slurmctld on $c to exit" 30 sh -c "! docker exec $id pgrep -x slurmctld"
      x "$c" /usr/local/bin/entrypoint.sh start-ctld
    fi
  done
}

up() {
  "$here/build-images.sh" "$SUITE"
  prepare
  heal
  compose up -d dbd
  wait_for "slurmdbd" 120 x dbd sacctmgr -n show cluster
  x dbd sacctmgr -n show cluster format=cluster | grep -qw hacluster || x dbd sacctmgr -i add cluster hacluster >/dev/null
  # An account beside root with shares of its own (the fairshare panels);
  # read by slurmctld when it starts below.
  x dbd sacctmgr -n show account format=account | grep -qw physics || x dbd sacctmgr -i add account physics fairshare=10 >/dev/null
  x dbd sacctmgr -n show assoc format=account,user | grep -q 'physics *root' || x dbd sacctmgr -i add user root account=physics >/dev/null
  # Controllers already running before this `up` keep the plugin they
  # loaded. Only those are restarted: restarting a slurmctld a second
  # after its first start leaves a partial state that 25.05+ refuses
  # ("fatal: No Assoc usage file ... to recover").
  local was_running=()
  for c in ctl1 ctl2; do
    [ "$(docker inspect -f '{{.State.Running}}' "$(cid $c)" 2>/dev/null)" = true ] && was_running+=("$c")
  done
  compose up -d
  if [ "$PLUGIN_CHANGED" = 1 ] && [ ${#was_running[@]} -gt 0 ]; then
    compose restart "${was_running[@]}" >/dev/null
  fi
  # Nodes drained by an earlier fault (e.g. a job that ran on a node while
  # its controller was frozen) go back to service.
  wait_for "slurmctld on ctl1" 60 x ctl1 scontrol ping
  x ctl1 sinfo -h -N -t drain,drained,draining -o '%N' 2>/dev/null | sort -u | while read -r n; do
    [ -n "$n" ] && x ctl1 scontrol update nodename="$n" state=resume || true
  done
  wait_for "the cluster to be ready" 180 ready || { compose ps; exit 1; }
  # Slurm saves association usage (assoc_usage) only every 5 minutes or in
  # a full state save, and a 25.05+ backup that takes over a cluster whose
  # primary has not saved it yet stops ("fatal: No Assoc usage file ... to
  # recover"). Deleting a partition makes slurmctld save all its state at
  # once: an empty one is made and deleted.
  if ! x ctl1 test -s /var/spool/slurmctld/assoc_usage; then
    x ctl1 scontrol create partitionname=statesave >/dev/null 2>&1 || true
    x ctl1 scontrol delete partitionname=statesave >/dev/null 2>&1 || true
    wait_for "slurmctld to save its association usage" 30 x ctl1 test -s /var/spool/slurmctld/assoc_usage \
      || log "warning: no assoc_usage in StateSaveLocation yet (a 25.05+ backup would refuse to take over)"
  fi
  if [ "$EXPORTER_CHANGED" = 1 ]; then
    # Running exporters still execute the old binary: restart them (their
    # supervisor loop starts the new one).
    for c in ctl1 ctl2; do x "$c" pkill -f /opt/exporter/slurm-ha-exporter || true; done
  fi
  log "ready: Prometheus http://127.0.0.1:${PROMETHEUS_PORT:-19090} (agents' store :${STORE_PORT:-19091})  exporters http://127.0.0.1:${CTL1_PORT:-19101}/metrics (ctl1), http://127.0.0.1:${CTL2_PORT:-19102}/metrics (ctl2)"
}

cmd=${1:-up}; shift || true
case "$cmd" in
  up) up ;;
  down) compose down -v --remove-orphans ;;
  wait) wait_for "the cluster to be ready" "${1:-180}" ready ;;
  heal) heal ;;
  ready) ready ;;
  in-control) in_control ;;
  heartbeat-age) heartbeat_age ;;
  fill-statesave) fill_statesave ;;
  unfill-statesave) unfill_statesave ;;
  exec) svc=$1; shift; x "$svc" "$@" ;;
  kill-ctld) x "$1" pkill -9 -x slurmctld ;;
  start-ctld) x "$1" /usr/local/bin/entrypoint.sh start-ctld ;;
  kill-exporter) x "$1" pkill -9 -f /opt/exporter/slurm-ha-exporter ;;
  stop) compose stop "$1" ;;
  start) compose start "$1" ;;
  pause) docker pause "$(cid "$1")" ;;
  unpause) docker unpause "$(cid "$1")" ;;
  disconnect) docker network disconnect "${COMPOSE_PROJECT_NAME}_default" "$(cid "$1")" ;;
  connect) connect "$1" ;;
  stop-dbd) compose stop dbd ;;
  start-dbd) compose start dbd ;;
  logs)
    dir=${1:-}
    for c in $(compose ps -q); do
      name=$(docker inspect -f '{{.Name}}' "$c" | tr -d /)
      if [ -n "$dir" ]; then mkdir -p "$dir"; docker logs "$c" >"$dir/$name.log" 2>&1
      else echo "===== $name"; docker logs --tail 200 "$c" 2>&1; fi
      for f in $(docker exec "$c" sh -c 'ls /var/log/slurm/*.log 2>/dev/null' || true); do
        if [ -n "$dir" ]; then docker exec "$c" cat "$f" >"$dir/$name-$(basename "$f")" 2>&1 || true
        else echo "===== $name $f"; docker exec "$c" tail -n 100 "$f" 2>&1 || true; fi
      done
    done
    compose ps
    ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
