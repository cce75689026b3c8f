#!/bin/sh
# Builds the Debian root file system the booted-systemd tests boot (tests/booted/mod.rs):
#
#   tests/booted/make-rootfs.sh SUITE DEST     # SUITE: bookworm (systemd 252), trixie (257)
#
# debootstrap (minbase, with systemd, dbus, logind's PAM module, python3-venv, procps for the
# /bin/kill of ExecReload=, sudo), a user `hermes` (uid 1000), hermes-agent 0.19.0 from PyPI in a
# venv at /opt/hermes-venv with `hermes` in /usr/local/bin. It builds into DEST.partial and
# renames it to DEST only when complete, so an interrupted build is never used; the caller holds
# a lock. Mirror: $GWSHIM_DEBIAN_MIRROR, else the first deb.debian.org-style URI apt uses here.
# pip gets the host's CA bundle and resolv.conf, and the host's PIP_* and proxy variables.
# Exit: 0 built; 2 usage; debootstrap's, apt's or pip's status when one fails.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SUITE DEST" >&2; exit 2; }
suite=$1 dest=$2
part=$dest.partial
mirror=${GWSHIM_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')
fi
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

# A leftover of an interrupted build: unmount what debootstrap mounted in it, never cross into
# another file system while removing it.
if [ -e "$part" ]; then
    grep -F " $(realpath "$part")/" /proc/self/mounts | awk '{print $2}' | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$part"
fi
start=$(date +%s)
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,libpam-systemd,python3-venv,procps,sudo,ca-certificates,passwd \
    "$suite" "$part" "$mirror" >"$part.log" 2>&1 || {
    st=$?
    tail -n 20 "$part.log" >&2
    exit $st
}
echo "make-rootfs: debootstrap $suite took $(($(date +%s) - start)) s" >&2

cp /etc/ssl/certs/ca-certificates.crt "$part/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf "$part/etc/resolv.conf" 2>/dev/null || true
echo gwshim-booted >"$part/etc/hostname"
chroot "$part" useradd -m -u 1000 -s /bin/bash hermes
# pip with the host's settings that matter (index, certificates, proxies, timeouts).
set -- PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
for v in $(env | grep -oE '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' | tr -d =); do
    case $v in PIP_FIND_LINKS) continue ;; esac # a host folder, not in the chroot
    set -- "$@" "$v=$(printenv "$v")"
done
start=$(date +%s)
env -i "$@" chroot "$part" python3 -m venv /opt/hermes-venv
env -i "$@" chroot "$part" /opt/hermes-venv/bin/pip install -q --no-cache-dir hermes-agent==0.19.0 >>"$part.log" 2>&1 || {
    st=$?
    tail -n 20 "$part.log" >&2
    exit $st
}
ln -sf /opt/hermes-venv/bin/hermes "$part/usr/local/bin/hermes"
echo "make-rootfs: pip install hermes-agent took $(($(date +%s) - start)) s" >&2
# Nothing of the build's network settings stays behind; the tests run with --private-network.
: >"$part/etc/resolv.conf"
mv "$part.log" "$part/root/make-rootfs.log"
mv "$part" "$dest"
