#!/usr/bin/env bash
# Proves the Debian packages on a machine booted with systemd: builds them
# (packaging/build-debs.sh; --no-build takes those in target/debian), boots
# a container from packaging/test/Dockerfile (systemd as PID 1, munge,
# slurmctld and slurmd on one host), then
#   installs both packages with dpkg -i: installed disabled, the drop-in
#     names SlurmUser and <StateSaveLocation>/ha_exporter, which exists;
#   starts the unit: /metrics says slurm_exporter_active 1, the process runs
#     as slurm, without capabilities, and can write only its directory;
#   the hook scripts work; `systemd-analyze verify` is clean and
#     `systemd-analyze security` rates the unit 2.0 or lower;
#   installs the packages again (an upgrade): the running service restarts,
#     files a root run left in StateSaveLocation/ha_exporter are slurm's again;
#   dpkg-reconfigure follows a new StateSaveLocation (--ha.state-save-location);
#   loads the packaged plugin into slurmctld (PluginDir, release pin); while
#     slurm.conf loads it, an upgrade of slurmctld past its release (a
#     stand-in package) and its own removal are refused, nothing changed;
#   removes (the service stops) and purges both: StateSaveLocation/ha_exporter
#     is still there, the package's files are not;
#   the release tarball (packaging/build-tarball.sh) and its install.sh:
#     files under /usr/local, the plugin into PluginDir, the same setup;
#     the service starts as slurm, slurmctld loads the plugin; --uninstall
#     is refused while slurm.conf loads it, then removes what it installed
#     and keeps the flags file and the state;
#   on SchedMD's packaging (src-RELEASE), the EL 8/9 rpms
#     (packaging/build-rpm.sh): their Requires (libslurm's soname, slurm's
#     series, slurm-slurmctld's release), glibc 2.28, files and scriptlets
#     read with rpm -qp; then installed with rpm itself (Debian's, --nodeps:
#     its database knows no Slurm): setup ran, service as slurm, upgrade
#     restarts it, slurmctld loads the plugin from /usr/lib64/slurm, its
#     erase is refused while slurm.conf loads it, erase keeps the state;
#   installs the daemon again with the CycleCloud cluster-init script
#     (contrib/cyclecloud; its README says what it checks).
# Prints each step's time and ends with "package: N passed, M failed"; exits
# non-zero on any failure. The image is tagged with a hash of its inputs
# (Dockerfile, slurm.conf, init.sh, the base image), so reruns reuse it. The
# container is removed at the end (KEEP_CONTAINER=1 keeps it).
#
# SUITE (default bookworm) is the Debian suite proven: bookworm (Slurm
# 22.05, packages built on the host into target/debian), trixie (24.11) or
# forky (26.05), whose packages build-debs.sh makes inside
# slurm-ha-exporter/dev:SUITE into target/SUITE/debian, tested on
# slurm-ha-exporter/slurm:SUITE (docker/build-images.sh SUITE); or
# src-RELEASE: SchedMD's own packages of that release (slurm-smd-*, as
# Azure CycleCloud installs them; docker/slurm-src/Dockerfile), with ours
# built for them.
#   packaging/test-install.sh [--no-build]
#   SUITE=trixie packaging/test-install.sh
#   SUITE=src-25.11.5 packaging/test-install.sh
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
SUITE=${SUITE:-bookworm}
case "$SUITE" in bookworm|trixie|forky|src-[0-9]*) ;; *) echo "test-install: unknown suite $SUITE (bookworm, trixie, forky, src-RELEASE)" >&2; exit 2 ;; esac
export SUITE
BASE=slurm-ha-exporter/slurm:$SUITE
debs_dir=target/debian
[ "$SUITE" = bookworm ] || debs_dir=target/$SUITE/debian
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}   # the highest exposure accepted
name=slurm-ha-exporter-pkgtest-$$
passed=0 failed=0
t_start=$SECONDS t_step=$SECONDS step_name="" times=()

ok() { passed=$((passed + 1)); echo "  ok: $*"; }
bad() { failed=$((failed + 1)); echo "  FAILED: $*"; }
check() { # check DESCRIPTION COMMAND...: the command's success is the check
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
end_step() {
  [ -n "$step_name" ] && times+=("$(printf '%5ss  %s' $((SECONDS - t_step)) "$step_name")")
  t_step=$SECONDS
}
step() { end_step; step_name=$1; echo "== $1"; }
finish() {
  end_step
  echo "== step times"
  printf '%s\n' "${times[@]}"
  echo "== total $((SECONDS - t_start))s"
  echo "package: $passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit
}
in_ctr() { docker exec "$name" "$@"; }
sh_ctr() { docker exec "$name" sh -c "$1"; }
# wait_for SECONDS COMMAND...: true once the command succeeds, polled every second
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 1
  done
}
cleanup() {
  if [ "${KEEP_CONTAINER:-0}" = 1 ]; then
    echo "test-install: container $name kept (docker rm -f $name)" >&2
  else
    docker rm -f "$name" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

step "packages"
if [ "${1:-}" = --no-build ]; then
  daemon=$(ls -t "$debs_dir"/slurm-ha-exporter_*.deb 2>/dev/null | head -n 1)
  plugin=$(ls -t "$debs_dir"/slurm-ha-exporter-plugin_*.deb 2>/dev/null | head -n 1)
else
  debs=$(nice -n 19 packaging/build-debs.sh) || { bad "packaging/build-debs.sh"; finish; }
  daemon=$(sed -n 1p <<<"$debs") plugin=$(sed -n 2p <<<"$debs")
fi
[ -f "$daemon" ] && [ -f "$plugin" ] || { bad "no packages in $debs_dir"; finish; }
ok "built $(basename "$daemon") $(basename "$plugin")"
if [ "${1:-}" = --no-build ]; then
  tarball=$(ls -t "${debs_dir%/debian}"/dist/slurm-ha-exporter-*.tar.gz 2>/dev/null | head -n 1)
else
  tarball=$(nice -n 19 packaging/build-tarball.sh) || { bad "packaging/build-tarball.sh"; finish; }
fi
[ -f "$tarball" ] || { bad "no release tarball in ${debs_dir%/debian}/dist"; finish; }
ok "built $(basename "$tarball")"
# The rpms are for SchedMD's packaging (EL 8/9): built where the suite is
# SchedMD's, and proven on its slurmctld below.
rpms=""
case "$SUITE" in
  src-*)
    if [ "${1:-}" = --no-build ]; then
      rpms=$(ls -t "${debs_dir%/debian}"/rpm/slurm-ha-exporter-[0-9]*.rpm "${debs_dir%/debian}"/rpm/slurm-ha-exporter-plugin-*.rpm 2>/dev/null | head -n 2)
    else
      rpms=$(nice -n 19 packaging/build-rpm.sh) || { bad "packaging/build-rpm.sh"; finish; }
    fi
    rpm_daemon=$(sed -n 1p <<<"$rpms") rpm_plugin=$(sed -n 2p <<<"$rpms")
    [ -f "$rpm_daemon" ] && [ -f "$rpm_plugin" ] || { bad "no rpms in ${debs_dir%/debian}/rpm"; finish; }
    ok "built $(basename "$rpm_daemon") $(basename "$rpm_plugin")"
    ;;
esac

step "image"
docker image inspect "$BASE" >/dev/null 2>&1 || nice -n 19 docker/build-images.sh "$SUITE" \
  || { bad "base image $BASE"; finish; }
hash=$({ cat packaging/test/Dockerfile packaging/test/slurm.conf packaging/test/init.sh
         docker image inspect -f '{{.Id}}' "$BASE"; } | sha256sum | cut -c1-16)
image=slurm-ha-exporter/pkgtest:$SUITE-$hash
if docker image inspect "$image" >/dev/null 2>&1; then
  ok "image $image (cached)"
elif nice -n 19 docker build -q ${DOCKER_CPU_SHARES:+--cpu-shares "$DOCKER_CPU_SHARES"} --build-arg "BASE=$BASE" -t "$image" packaging/test >/dev/null; then
  ok "image $image built"
else
  bad "docker build packaging/test"; finish
fi

step "boot"
# systemd as PID 1. --privileged is refused where Docker itself runs with
# fewer capabilities (as here), so what systemd needs is added by name:
# SYS_ADMIN for its mounts and namespaces, SYS_PTRACE to set up
# PrivateUsers= (writing a sandboxed child's uid_map; a real host's PID 1
# has every capability), and the cgroup tree: the host's, unless the host
# is on cgroup v1 (or hybrid) and the image's systemd needs cgroup2 (256
# on): then its own cgroup namespace, where packaging/test/init.sh mounts
# cgroup2 before starting systemd.
systemd_version=$(docker run --rm --entrypoint systemctl "$image" --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
echo "  $SUITE: systemd ${systemd_version:-?}, $(docker run --rm --entrypoint slurmctld "$image" -V)"
cgroup=(--cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw)
if [ "${systemd_version:-0}" -ge 256 ] && [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
  cgroup=(--cgroupns=private -e PKGTEST_CGROUP2=1)
fi
# DOCKER_CPU_SHARES: a smaller CPU weight, beside the HA bed (scripts/test.sh).
docker run -d ${DOCKER_CPU_SHARES:+--cpu-shares "$DOCKER_CPU_SHARES"} --name "$name" --hostname pkgtest \
  --cap-add SYS_ADMIN --cap-add SYS_PTRACE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  "${cgroup[@]}" --tmpfs /run --tmpfs /run/lock \
  "$image" >/dev/null || { bad "docker run"; finish; }
booted() { state=$(in_ctr systemctl is-system-running 2>/dev/null); [ "$state" = running ]; }
state=""
check "systemd booted" wait_for 120 booted
[ "$state" = running ] || in_ctr systemctl --failed --no-pager
check "slurmctld and slurmd answer (sinfo: node idle)" \
  wait_for 60 sh_ctr 'sinfo -h -o %T | grep -qx idle'
# The plugin depends on its Slurm release (X.Y.Z, any packaging revision):
# Slurm loads only a plugin of its own release.
pinned=$(dpkg-deb -f "$plugin" Depends | grep -oE '[a-z-]*slurmctld \(>= [^)]*\), [a-z-]*slurmctld \(<< [^)]*\)')
have=$(in_ctr slurmctld -V | awk '{print $2}')
next=${have%.*}.$((${have##*.} + 1))   # the next micro release
ctld_pkg=$(in_ctr dpkg-query -W -f='${Package} ${Status}\n' slurmctld slurm-smd-slurmctld 2>/dev/null | awk '/ installed$/ {print $1}')
ctld_version=$(in_ctr dpkg-query -W -f='${Version}' "$ctld_pkg")
check "the plugin depends on the container's slurmctld package ($ctld_pkg), release $have only: $pinned" \
  test "$pinned" = "$ctld_pkg (>= $have~), $ctld_pkg (<< $next~)"

step "install"
# Not in /tmp: from trixie on, systemd mounts a tmpfs there, which hides
# what docker cp writes.
in_ctr mkdir -p /root/debs && docker cp "$daemon" "$name:/root/debs/" && docker cp "$plugin" "$name:/root/debs/"
deb_in=(/root/debs/"$(basename "$daemon")" /root/debs/"$(basename "$plugin")")
check "dpkg -i both packages" in_ctr dpkg -i "${deb_in[@]}"
check "both installed" sh_ctr 'dpkg-query -W -f="\${Status}\n" slurm-ha-exporter slurm-ha-exporter-plugin | grep -c "install ok installed" | grep -qx 2'
check "unit installed disabled and not started" \
  sh_ctr '[ "$(systemctl is-enabled slurm-ha-exporter)" = disabled ] && ! systemctl is-active -q slurm-ha-exporter'
dropin=/etc/systemd/system/slurm-ha-exporter.service.d/user.conf
check "drop-in: User=slurm, Group=slurm, ReadWritePaths=StateSaveLocation/ha_exporter" \
  sh_ctr "grep -qx User=slurm $dropin && grep -qx Group=slurm $dropin && grep -qx 'ReadWritePaths=\"/var/lib/slurm/slurmctld/ha_exporter\"' $dropin"
check "StateSaveLocation/ha_exporter: slurm:slurm 0750" \
  sh_ctr '[ "$(stat -c "%U:%G %a" /var/lib/slurm/slurmctld/ha_exporter)" = "slurm:slurm 750" ]'
check "man pages: slurm-ha-exporter(1), the hooks' (8)" \
  sh_ctr 'man -w slurm-ha-exporter && man -w 8 slurm-ha-exporter-primary-on && man -w 8 slurm-ha-exporter-primary-off'
check "man page renders without warnings" sh_ctr \
  'w=$(MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$(man -w slurm-ha-exporter)" 2>&1 >/dev/null); [ -z "$w" ] || { echo "$w"; false; }'
check "hook scripts in /usr/sbin" \
  sh_ctr 'test -x /usr/sbin/slurm-ha-exporter-primary-on && test -x /usr/sbin/slurm-ha-exporter-primary-off'
check "plugin in slurmctld's PluginDir, by the package's own path (not through a link)" sh_ctr \
  'dpkg -L slurm-ha-exporter-plugin | grep -qx "$(scontrol show config | sed -n "s/^PluginDir *= *//p" | cut -d: -f1)/job_submit_ha_exporter.so"'

step "start"
# No slurmdbd here: the accounting collector is turned off in /etc/default.
sh_ctr 'sed -i "s/^SLURM_HA_EXPORTER_ARGS=.*/SLURM_HA_EXPORTER_ARGS=\"--no-collector.accounting\"/" /etc/default/slurm-ha-exporter'
check "systemctl enable --now slurm-ha-exporter" in_ctr systemctl enable --now slurm-ha-exporter
metrics_active() { sh_ctr "curl -sf localhost:$1/metrics | grep -qx 'slurm_exporter_active 1'"; }
t0=$SECONDS
if wait_for 60 metrics_active 9101; then
  ok "/metrics: slurm_exporter_active 1 after $((SECONDS - t0))s"
else
  bad "/metrics: no slurm_exporter_active 1 within 60s"
  in_ctr journalctl -u slurm-ha-exporter --no-pager | tail -n 20
fi
check "every collector succeeds" sh_ctr \
  'm=$(curl -sf localhost:9101/metrics | grep "^slurm_exporter_collector_success") && [ -n "$m" ] && ! echo "$m" | grep -qv " 1$"'
pid=$(in_ctr systemctl show -p MainPID --value slurm-ha-exporter)
check "runs as slurm (pid $pid)" sh_ctr "[ \"\$(ps -o user= -p $pid)\" = slurm ]"
check "no capabilities, no new privileges" sh_ctr \
  "grep -qx 'CapEff:	0000000000000000' /proc/$pid/status && grep -qx 'NoNewPrivs:	1' /proc/$pid/status"
check "writes StateSaveLocation/ha_exporter" sh_ctr \
  "nsenter -t $pid -m touch /var/lib/slurm/slurmctld/ha_exporter/.rw-test && rm /var/lib/slurm/slurmctld/ha_exporter/.rw-test"
check "cannot write StateSaveLocation itself, nor /etc (read-only file system)" sh_ctr \
  "nsenter -t $pid -m touch /var/lib/slurm/slurmctld/.ro-test 2>&1 | grep -q 'Read-only file system' && nsenter -t $pid -m touch /etc/.ro-test 2>&1 | grep -q 'Read-only file system'"
check "hook primary-on, as SlurmUser, writes the role record" sh_ctr \
  'runuser -u slurm -- /usr/sbin/slurm-ha-exporter-primary-on >/dev/null && test -s /var/lib/slurm/slurmctld/ha_exporter/role'

step "systemd-analyze"
verify=$(in_ctr systemd-analyze verify slurm-ha-exporter.service 2>&1); rc=$?
[ -n "$verify" ] && echo "$verify"
check "systemd-analyze verify: clean" test "$rc" = 0 -a -z "$verify"
exposure=$(in_ctr systemd-analyze security slurm-ha-exporter.service --no-pager 2>/dev/null \
  | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "  systemd-analyze security slurm-ha-exporter.service: exposure ${exposure:-?}"
check "exposure ${exposure:-?} <= $MAX_EXPOSURE (systemd ${systemd_version:-?})" \
  awk -v e="${exposure:-99}" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e != "" && e + 0 <= m + 0) }'

step "upgrade (the same packages again)"
# An admin ran the exporter as root once to try it: the state directory
# holds root's files, which the service (as slurm) could not replace. The
# upgrade's postinst takes them back.
sh_ctr 'chown -R root:root /var/lib/slurm/slurmctld/ha_exporter'
check "dpkg -i again" in_ctr dpkg -i "${deb_in[@]}"
check "postinst gave StateSaveLocation/ha_exporter back to slurm" sh_ctr \
  '[ -z "$(find /var/lib/slurm/slurmctld/ha_exporter ! -user slurm)" ]'
check "the running service was restarted, still enabled" wait_for 30 sh_ctr \
  "systemctl is-active -q slurm-ha-exporter && [ \"\$(systemctl show -p MainPID --value slurm-ha-exporter)\" != $pid ] && systemctl is-enabled -q slurm-ha-exporter"
check "/metrics: slurm_exporter_active 1 again" wait_for 60 metrics_active 9101

step "dpkg-reconfigure after a change of StateSaveLocation"
sh_ctr 'sed -i "s|^SLURM_HA_EXPORTER_ARGS=.*|SLURM_HA_EXPORTER_ARGS=\"--no-collector.accounting --ha.state-save-location=/var/lib/slurm/alt\"|" /etc/default/slurm-ha-exporter'
check "dpkg-reconfigure slurm-ha-exporter" sh_ctr 'DEBIAN_FRONTEND=noninteractive dpkg-reconfigure slurm-ha-exporter'
check "drop-in names the new directory, which exists (slurm:slurm 0750)" sh_ctr \
  "grep -qx 'ReadWritePaths=\"/var/lib/slurm/alt/ha_exporter\"' $dropin && [ \"\$(stat -c '%U:%G %a' /var/lib/slurm/alt/ha_exporter)\" = 'slurm:slurm 750' ]"
check "/metrics: slurm_exporter_active 1 with it" wait_for 60 metrics_active 9101
sh_ctr 'sed -i "s|^SLURM_HA_EXPORTER_ARGS=.*|SLURM_HA_EXPORTER_ARGS=\"--no-collector.accounting\"|" /etc/default/slurm-ha-exporter && DEBIAN_FRONTEND=noninteractive dpkg-reconfigure slurm-ha-exporter'

step "plugin in slurmctld"
sh_ctr 'echo JobSubmitPlugins=ha_exporter >>/etc/slurm/slurm.conf && echo --web.listen-address=:9102 >/etc/slurm/ha_exporter.conf && systemctl restart slurmctld'
if wait_for 60 metrics_active 9102; then
  ok "slurmctld loaded the packaged plugin: :9102 says slurm_exporter_active 1"
else
  bad "plugin: no slurm_exporter_active 1 on :9102 within 60s"
  in_ctr journalctl -u slurmctld --no-pager | tail -n 20
fi
# A Slurm upgrade past the plugin's release, while slurm.conf loads it: a
# stand-in for the next micro release of the slurmctld package (named so:
# an empty package of that name and version), which apt can install only
# by removing our plugin. The plugin's prerm refuses that removal, so apt
# stops before anything changes and slurmctld keeps running its release.
sh_ctr "mkdir -p /root/fake/DEBIAN && printf 'Package: $ctld_pkg\nVersion: $next-1\nArchitecture: all\nMaintainer: test <test@localhost>\nDescription: stand-in for the next Slurm release (test)\n' >/root/fake/DEBIAN/control && dpkg-deb --build /root/fake /root/fake.deb >/dev/null"
check "an upgrade of $ctld_pkg to $next is refused while JobSubmitPlugins names ha_exporter" sh_ctr \
  "! DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/fake.deb >/root/upgrade.log 2>&1 && grep -q 'slurm-ha-exporter-plugin: not removed' /root/upgrade.log || { cat /root/upgrade.log; false; }"
check "... and nothing changed: $ctld_pkg $have and the plugin installed, slurmctld serving it" sh_ctr \
  "[ \"\$(slurmctld -V | awk '{print \$2}')\" = $have ] && [ \"\$(dpkg-query -W -f='\${Version}' $ctld_pkg)\" = '$ctld_version' ] && dpkg-query -W -f='\${Status}' slurm-ha-exporter-plugin | grep -q ' ok installed\$' && systemctl is-active -q slurmctld && curl -sf localhost:9102/metrics | grep -qx 'slurm_exporter_active 1'"
check "dpkg -r of the plugin alone is refused too" sh_ctr '! dpkg -r slurm-ha-exporter-plugin 2>/dev/null && dpkg-query -W -f="\${Status}" slurm-ha-exporter-plugin | grep -q " ok installed\$"'
sh_ctr 'sed -i /^JobSubmitPlugins=ha_exporter/d /etc/slurm/slurm.conf && rm /etc/slurm/ha_exporter.conf && systemctl restart slurmctld'

step "remove and purge"
check "dpkg -r both" in_ctr dpkg -r slurm-ha-exporter-plugin slurm-ha-exporter
check "service stopped on removal" sh_ctr '! systemctl is-active -q slurm-ha-exporter && ! pgrep -x slurm-ha-export'
# (The plugin package has no conffiles: removed is already purged.)
check "dpkg --purge slurm-ha-exporter" in_ctr dpkg --purge slurm-ha-exporter
check "StateSaveLocation/ha_exporter kept, with the role record" \
  sh_ctr 'test -d /var/lib/slurm/slurmctld/ha_exporter && test -s /var/lib/slurm/slurmctld/ha_exporter/role'
check "the package's files are gone (binary, unit, drop-in, /etc/default, plugin)" sh_ctr \
  'for f in /usr/bin/slurm-ha-exporter /usr/lib/systemd/system/slurm-ha-exporter.service /etc/systemd/system/slurm-ha-exporter.service.d /etc/default/slurm-ha-exporter /usr/lib/*/slurm-wlm/job_submit_ha_exporter.so /usr/lib/*/slurm/job_submit_ha_exporter.so; do [ ! -e "$f" ] || { echo "left: $f"; exit 1; }; done'
check "slurmctld still runs" in_ctr systemctl is-active -q slurmctld

step "release tarball (install.sh)"
check "tarball copied in and unpacked" sh -c "docker cp '$tarball' '$name:/root/' && docker exec '$name' tar -C /root -xzf '/root/$(basename "$tarball")'"
tdir=/root/$(basename "$tarball" .tar.gz)
check "install.sh" sh_ctr "$tdir/install.sh >/root/tar-install.log 2>&1 || { cat /root/tar-install.log; false; }"
in_ctr cat /root/tar-install.log | sed 's/^/  | /'
check "files under /usr/local, the plugin in slurmctld's PluginDir, unit and flags file in /etc" sh_ctr \
  'pd=$(scontrol show config | sed -n "s/^PluginDir *= *//p" | cut -d: -f1) && for f in /usr/local/bin/slurm-ha-exporter /usr/local/sbin/slurm-ha-exporter-primary-on /usr/local/share/man/man1/slurm-ha-exporter.1.gz /usr/local/share/slurm-ha-exporter/grafana/slurm-cluster.json /usr/local/share/slurm-ha-exporter/prometheus/slurm-ha-exporter.rules.yml "$pd/job_submit_ha_exporter.so" /etc/systemd/system/slurm-ha-exporter.service /etc/default/slurm-ha-exporter; do [ -e "$f" ] || { echo "missing: $f"; exit 1; }; done'
check "the unit and the hooks run /usr/local/bin/slurm-ha-exporter" sh_ctr \
  'grep -q "^ExecStart=/usr/local/bin/slurm-ha-exporter run" /etc/systemd/system/slurm-ha-exporter.service && grep -q "^exec /usr/local/bin/slurm-ha-exporter hook primary-on" /usr/local/sbin/slurm-ha-exporter-primary-on'
check "setup ran: drop-in names slurm and StateSaveLocation/ha_exporter" sh_ctr \
  "grep -qx User=slurm $dropin && grep -qx 'ReadWritePaths=\"/var/lib/slurm/slurmctld/ha_exporter\"' $dropin"
sh_ctr 'sed -i "s/^SLURM_HA_EXPORTER_ARGS=.*/SLURM_HA_EXPORTER_ARGS=\"--no-collector.accounting\"/" /etc/default/slurm-ha-exporter'
check "systemctl enable --now slurm-ha-exporter" sh_ctr 'systemctl enable -q --now slurm-ha-exporter'
check "/metrics: slurm_exporter_active 1" wait_for 60 metrics_active 9101
pid=$(in_ctr systemctl show -p MainPID --value slurm-ha-exporter)
check "runs as slurm (pid $pid)" sh_ctr "[ \"\$(ps -o user= -p $pid)\" = slurm ]"
sh_ctr 'echo JobSubmitPlugins=ha_exporter >>/etc/slurm/slurm.conf && echo --web.listen-address=:9102 >/etc/slurm/ha_exporter.conf && systemctl restart slurmctld'
check "slurmctld loads the tarball's plugin: :9102 says slurm_exporter_active 1" wait_for 60 metrics_active 9102
check "install.sh --uninstall is refused while slurm.conf loads the plugin; nothing removed" sh_ctr \
  "! $tdir/install.sh --uninstall 2>/root/tar-refused.log && grep -q 'not removed' /root/tar-refused.log && test -x /usr/local/bin/slurm-ha-exporter && systemctl is-active -q slurm-ha-exporter"
sh_ctr 'sed -i /^JobSubmitPlugins=ha_exporter/d /etc/slurm/slurm.conf && rm /etc/slurm/ha_exporter.conf && systemctl restart slurmctld'
check "install.sh --uninstall" sh_ctr "$tdir/install.sh --uninstall"
check "its files are gone, the service too; flags file and state kept" sh_ctr \
  'for f in /usr/local/bin/slurm-ha-exporter /usr/local/sbin/slurm-ha-exporter-primary-on /usr/local/share/slurm-ha-exporter /etc/systemd/system/slurm-ha-exporter.service /etc/systemd/system/slurm-ha-exporter.service.d /usr/lib/*/slurm*/job_submit_ha_exporter.so; do [ ! -e "$f" ] || { echo "left: $f"; exit 1; }; done; ! pgrep -x slurm-ha-export && test -f /etc/default/slurm-ha-exporter && test -s /var/lib/slurm/slurmctld/ha_exporter/role'
# The cluster-init below starts from a node without our flags file.
in_ctr rm -f /etc/default/slurm-ha-exporter

if [ -n "$rpms" ]; then
  step "rpm (EL 8/9): metadata, by rpm's own tools"
  # What dnf would hold the rpms to on EL, read with rpm -qp here.
  reqs=$(rpm -qpR "$rpm_daemon" 2>/dev/null) preqs=$(rpm -qpR "$rpm_plugin" 2>/dev/null)
  has() { grep -qxF "$1" <<<"$2"; }   # has LINE TEXT
  soname=$(in_ctr sh -c 'ls /usr/lib/*/libslurm.so.* /usr/lib64/libslurm.so.* 2>/dev/null' | xargs -rn1 basename | grep -xE 'libslurm\.so\.[0-9]+' | head -n 1)
  check "daemon Requires ${soname:-?}()(64bit), the libslurm beside this slurmctld" has "${soname:-?}()(64bit)" "$reqs"
  series=${have%.*} minor=${series#*.}
  next_series=${series%.*}.$(printf %02d $((10#$minor + 1)))
  check "daemon Requires slurm >= $series, slurm < $next_series (SchedMD's package holding libslurm)" \
    eval 'has "slurm >= $series" "$reqs" && has "slurm < $next_series" "$reqs"'
  rpm_version=$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm_daemon" 2>/dev/null)
  check "plugin Requires slurm-slurmctld = $have and slurm-ha-exporter = $rpm_version" \
    eval 'has "slurm-slurmctld = $have" "$preqs" && has "slurm-ha-exporter = $rpm_version" "$preqs"'
  for f in "$rpm_daemon" "$rpm_plugin"; do
    glibc=$(rpm -qpR "$f" 2>/dev/null | sed -n 's/^libc\.so\.6(GLIBC_\([0-9.]*\))(64bit)$/\1/p' | sort -V | tail -n 1)
    check "$(basename "$f"): glibc $glibc at most (EL 8 has 2.28)" \
      test "$(printf '%s\n' "$glibc" 2.28 | sort -V | tail -n 1)" = 2.28
  done
  check "files: /usr/bin, /usr/sbin hooks, the unit in /usr/lib/systemd/system, the plugin in /usr/lib64/slurm" sh -c \
    "rpm -qpl '$rpm_daemon' '$rpm_plugin' 2>/dev/null | grep -cxE '/usr/bin/slurm-ha-exporter|/usr/sbin/slurm-ha-exporter-primary-(on|off)|/usr/lib/systemd/system/slurm-ha-exporter.service|/usr/lib64/slurm/job_submit_ha_exporter.so' | grep -qx 5"
  check "/etc/sysconfig/slurm-ha-exporter is %config(noreplace)" sh -c \
    "rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' '$rpm_daemon' 2>/dev/null | grep -qx 'cn /etc/sysconfig/slurm-ha-exporter'"
  check "scriptlets: %post runs setup, %preun setup --remove on erase, the plugin's %preun its removal check" sh -c \
    "rpm -qp --scripts '$rpm_daemon' 2>/dev/null | grep -q '^/usr/bin/slurm-ha-exporter setup ||' && rpm -qp --scripts '$rpm_daemon' 2>/dev/null | grep -q 'setup --remove' && rpm -qp --scripts '$rpm_plugin' 2>/dev/null | grep -q 'plugin-removable remove'"

  step "rpm (EL 8/9): installed by rpm on this $have slurmctld"
  # Debian's rpm here, with its own database: it knows no slurm package,
  # hence --nodeps (the Requires are checked above), and it wants
  # --force-debian to install at all. The scriptlets run as on EL.
  sysconfig_was=$(in_ctr sh -c 'test -d /etc/sysconfig && echo yes || echo no')
  in_ctr mkdir -p /root/rpms && docker cp "$rpm_daemon" "$name:/root/rpms/" && docker cp "$rpm_plugin" "$name:/root/rpms/"
  rpm_in="/root/rpms/$(basename "$rpm_daemon") /root/rpms/$(basename "$rpm_plugin")"
  check "rpm -i both" sh_ctr "rpm -i --nodeps --force-debian $rpm_in >/root/rpm-i.log 2>&1 || { cat /root/rpm-i.log; false; }"
  in_ctr cat /root/rpm-i.log | sed 's/^/  | /'
  check "unit installed disabled and not started" \
    sh_ctr '[ "$(systemctl is-enabled slurm-ha-exporter)" = disabled ] && ! systemctl is-active -q slurm-ha-exporter'
  check "%post ran setup: drop-in User=slurm, StateSaveLocation/ha_exporter slurm:slurm 0750" \
    sh_ctr "grep -qx User=slurm $dropin && grep -qx 'ReadWritePaths=\"/var/lib/slurm/slurmctld/ha_exporter\"' $dropin && [ \"\$(stat -c '%U:%G %a' /var/lib/slurm/slurmctld/ha_exporter)\" = 'slurm:slurm 750' ]"
  sh_ctr 'sed -i "s/^SLURM_HA_EXPORTER_ARGS=.*/SLURM_HA_EXPORTER_ARGS=\"--no-collector.accounting\"/" /etc/sysconfig/slurm-ha-exporter'
  check "systemctl enable --now slurm-ha-exporter (flags from /etc/sysconfig)" in_ctr systemctl enable --now slurm-ha-exporter
  check "/metrics: slurm_exporter_active 1 from the glibc-2.28 build" wait_for 60 metrics_active 9101
  check "every collector succeeds" sh_ctr \
    'm=$(curl -sf localhost:9101/metrics | grep "^slurm_exporter_collector_success") && [ -n "$m" ] && ! echo "$m" | grep -qv " 1$"'
  pid=$(in_ctr systemctl show -p MainPID --value slurm-ha-exporter)
  check "runs as slurm (pid $pid)" sh_ctr "[ \"\$(ps -o user= -p $pid)\" = slurm ]"
  sh_ctr 'chown -R root:root /var/lib/slurm/slurmctld/ha_exporter'
  check "rpm -U --replacepkgs (an upgrade)" sh_ctr "rpm -U --replacepkgs --nodeps --force-debian $rpm_in"
  check "%post gave StateSaveLocation/ha_exporter back to slurm" sh_ctr \
    '[ -z "$(find /var/lib/slurm/slurmctld/ha_exporter ! -user slurm)" ]'
  check "%postun restarted the running service, still enabled, active 1" wait_for 60 sh_ctr \
    "systemctl is-active -q slurm-ha-exporter && [ \"\$(systemctl show -p MainPID --value slurm-ha-exporter)\" != $pid ] && systemctl is-enabled -q slurm-ha-exporter && curl -sf localhost:9101/metrics | grep -qx 'slurm_exporter_active 1'"
  # SchedMD's PluginDir on EL is /usr/lib64/slurm; here Debian's layout's
  # comes first.
  plugin_dir=$(in_ctr scontrol show config | sed -n 's/^PluginDir *= *//p')
  sh_ctr "cp /etc/slurm/slurm.conf /root/slurm.conf.before-rpm && echo PluginDir=$plugin_dir:/usr/lib64/slurm >>/etc/slurm/slurm.conf && echo JobSubmitPlugins=ha_exporter >>/etc/slurm/slurm.conf && echo --web.listen-address=:9102 >/etc/slurm/ha_exporter.conf && systemctl restart slurmctld"
  check "slurmctld loads the rpm's plugin from /usr/lib64/slurm: :9102 says slurm_exporter_active 1" wait_for 60 metrics_active 9102
  check "rpm -e of the plugin is refused while slurm.conf loads it; still installed" sh_ctr \
    '! rpm -e slurm-ha-exporter-plugin >/root/rpm-e.log 2>&1 && grep -q "not removed" /root/rpm-e.log && rpm -q slurm-ha-exporter-plugin >/dev/null && test -f /usr/lib64/slurm/job_submit_ha_exporter.so'
  sh_ctr 'cp /root/slurm.conf.before-rpm /etc/slurm/slurm.conf && rm /etc/slurm/ha_exporter.conf && systemctl restart slurmctld'
  check "rpm -e both" in_ctr rpm -e slurm-ha-exporter-plugin slurm-ha-exporter
  check "service stopped and disabled, drop-in gone, files gone; changed flags kept as .rpmsave; state kept" sh_ctr \
    'for f in /usr/bin/slurm-ha-exporter /usr/lib/systemd/system/slurm-ha-exporter.service /etc/systemd/system/slurm-ha-exporter.service.d/user.conf /usr/lib64/slurm/job_submit_ha_exporter.so /etc/sysconfig/slurm-ha-exporter; do [ ! -e "$f" ] || { echo "left: $f"; exit 1; }; done; ! pgrep -x slurm-ha-export && ! systemctl is-enabled -q slurm-ha-exporter 2>/dev/null && test -f /etc/sysconfig/slurm-ha-exporter.rpmsave && test -s /var/lib/slurm/slurmctld/ha_exporter/role'
  check "slurmctld still runs" in_ctr systemctl is-active -q slurmctld
  # The cluster-init below is a Debian node's: no /etc/sysconfig.
  [ "$sysconfig_was" = no ] && in_ctr rm -rf /etc/sysconfig
  in_ctr rm -f /etc/sysconfig/slurm-ha-exporter.rpmsave
fi

step "CycleCloud cluster-init (contrib/cyclecloud)"
# The scheduler spec as CycleCloud lays it out on a node, with the daemon
# package in files/<slurm.version>/; a stand-in jetpack (named so: no
# CycleCloud here) answering from a JSON file; the node's Prometheus agent
# configuration with azslurm-exporter's scrape job; a stand-in
# azslurm-exporter unit, enabled and running; slurm.conf including
# site_specific.conf, as CycleCloud's does.
spec=/mnt/cluster-init/slurm-ha-exporter/scheduler
cc=contrib/cyclecloud
in_ctr mkdir -p "$spec/files/$have" /opt/prometheus
docker cp "$cc/slurm-ha-exporter/specs/scheduler/cluster-init/scripts" "$name:$spec/scripts"
docker cp "$daemon" "$name:$spec/files/$have/"
docker cp "$cc/test/jetpack" "$name:/usr/local/bin/jetpack"
docker cp "$cc/test/prometheus.yml" "$name:/opt/prometheus/prometheus.yml"
sh_ctr "printf '%s' '{\"slurm\": {\"version\": \"$have\", \"is_primary_scheduler\": true, \"accounting\": {\"enabled\": false}}}' >/etc/jetpack-standin.json"
sh_ctr 'printf "[Unit]\nDescription=stand-in for azslurm-exporter (test)\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n" >/etc/systemd/system/azslurm-exporter.service && systemctl daemon-reload && systemctl enable -q --now azslurm-exporter'
sh_ctr 'echo "Include site_specific.conf" >>/etc/slurm/slurm.conf'
init="CYCLECLOUD_SPEC_PATH=$spec $spec/scripts/10-install-slurm-ha-exporter.sh"
check "cluster-init runs" sh_ctr "$init >/root/cc-1.log 2>&1 || { cat /root/cc-1.log; false; }"
in_ctr cat /root/cc-1.log | sed 's/^/  | /'
check "package installed, service enabled and active" sh_ctr \
  'dpkg-query -W -f="\${Status}" slurm-ha-exporter | grep -q "ok installed" && systemctl is-enabled -q slurm-ha-exporter && systemctl is-active -q slurm-ha-exporter'
pid=$(in_ctr systemctl show -p MainPID --value slurm-ha-exporter)
check "runs as slurm, not root (pid $pid)" sh_ctr "[ \"\$(ps -o user= -p $pid)\" = slurm ]"
check "/metrics: slurm_exporter_active 1 (no slurmdbd: accounting off by the flags)" wait_for 60 metrics_active 9101
check "azslurm-exporter stopped and disabled" sh_ctr '! systemctl is-active -q azslurm-exporter && ! systemctl is-enabled -q azslurm-exporter'
check "promtool check config of the agent's configuration" in_ctr promtool check config /opt/prometheus/prometheus.yml
check "scrape job slurm_ha_exporter on this host:9101, instance = host name; azslurm_exporter's gone; the others kept" sh_ctr \
  'python3 -c "
import yaml
c = yaml.safe_load(open(\"/opt/prometheus/prometheus.yml\"))
jobs = {j[\"job_name\"]: j for j in c[\"scrape_configs\"]}
ours = jobs[\"slurm_ha_exporter\"]
assert ours[\"static_configs\"] == [{\"targets\": [\"pkgtest:9101\"]}], ours
assert ours[\"relabel_configs\"][0][\"target_label\"] == \"instance\", ours
assert \"azslurm_exporter\" not in jobs and \"node\" in jobs, sorted(jobs)
assert c[\"remote_write\"], c
"'
check "HA hooks in site_specific.conf, slurmctld reconfigured with them" sh_ctr \
  'grep -qx SlurmctldPrimaryOnProg=/usr/sbin/slurm-ha-exporter-primary-on /etc/slurm/site_specific.conf && scontrol show config | grep -q "SlurmctldPrimaryOnProg *= /usr/sbin/slurm-ha-exporter-primary-on"'
sums='md5sum /opt/prometheus/prometheus.yml /etc/slurm/site_specific.conf /etc/default/slurm-ha-exporter /etc/slurm/slurm.conf'
before=$(sh_ctr "$sums")
check "a second run changes nothing" sh_ctr "$init 2>&1 | tee /root/cc-2.log | grep -q 'nothing changed'"
check "... not a file (checksums)" test "$before" = "$(sh_ctr "$sums")"
check "... and the same process serves" test "$pid" = "$(in_ctr systemctl show -p MainPID --value slurm-ha-exporter)"
sh_ctr 'mv /opt/prometheus/prometheus.yml /root/prometheus.yml'
check "a node without a Prometheus agent: told so, no failure" sh_ctr \
  "out=\$($init 2>&1) && echo \"\$out\" | grep -q 'no /opt/prometheus/prometheus.yml: this node has no Prometheus agent'"

finish
