#!/bin/sh
# Boots a container for tests/booted/mod.rs (run as root, by the harness):
#
#   boot.sh ROOTFS WORK CGROUP... -- NSPAWN_OPTIONS...
#
# Joins the given cgroups (one per hierarchy, made by the harness, so everything the container
# runs can be found and killed), enters a private mount namespace, mounts an overlay of the
# cached, read-only ROOTFS with WORK/upper as its writable layer on WORK/root, and execs
# `systemd-nspawn -D WORK/root -b NSPAWN_OPTIONS`. The overlay exists only in that namespace:
# when nspawn and the container are gone, so is the mount, and the cache is never written.
set -eu
lower=$1 work=$2
shift 2
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    echo $$ >"$1/cgroup.procs"
    shift
done
[ $# -gt 0 ] && shift
mkdir -p "$work/upper" "$work/ovl-work" "$work/root"
exec unshare --mount --propagation private sh -c '
    lower=$1 work=$2
    shift 2
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/ovl-work" "$work/root"
    exec systemd-nspawn -D "$work/root" -b "$@"
' sh "$lower" "$work" "$@"
