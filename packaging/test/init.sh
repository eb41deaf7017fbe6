#!/bin/sh
# The package test machine's PID 1 (packaging/test-install.sh): systemd,
# after giving it the cgroup tree it can run on.
#
# systemd 256 deprecated cgroup v1 (and hybrid) and 258 dropped it (forky
# has 262; trixie's 257 still boots on hybrid). On a host whose Docker is
# on cgroup v1 or hybrid, test-install.sh runs the container of such a
# systemd with its own cgroup namespace and PKGTEST_CGROUP2=1: Docker's v1
# mounts under /sys/fs/cgroup are replaced by the cgroup2 hierarchy, which
# the namespace roots at this container's own cgroup (runc places it in the
# unified hierarchy too). No controllers are enabled there (the v1
# hierarchies hold them): the test needs none. The processes still belong
# to the v1 hierarchies too (/proc/self/cgroup lists them), which slurmd
# (24.11 and 26.05) takes for hybrid mode and refuses to start with: its
# cgroup plugin is turned off (CgroupPlugin=disabled, which both know; the
# test's slurm.conf uses no cgroup plugin). Otherwise (an older systemd, or
# a cgroup2 host), the container gets the host's tree as it is.
set -e
if [ "${PKGTEST_CGROUP2:-0}" = 1 ]; then
  if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    mount -o remount,rw /sys/fs/cgroup
  else
    umount -l /sys/fs/cgroup
    mount -t cgroup2 -o rw,nosuid,nodev,noexec,relatime cgroup2 /sys/fs/cgroup
    echo CgroupPlugin=disabled >/etc/slurm/cgroup.conf
  fi
fi
exec /lib/systemd/systemd "$@"
