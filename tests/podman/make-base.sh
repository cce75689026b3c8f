#!/bin/sh
# Builds the Debian base image tarball tests/podman.rs imports (`podman import`) in place of
# `debian:bookworm-slim`, which cannot be pulled here (no image registry is reachable):
#
#   tests/podman/make-base.sh SUITE DEST.tar     # SUITE: bookworm
#
# debootstrap --variant=minbase, as tests/booted/make-rootfs.sh does (same mirror choice), and
# nothing else but this host's CA bundle, named in /etc/pip.conf: the image build's pip goes out
# through this machine's network, which may re-sign TLS with a CA of its own, and pip trusts its
# own certifi bundle unless pip.conf names another. So pip in the build trusts what the host
# trusts (apt uses plain http). Writes DEST.partial and renames it when complete; the caller
# holds a lock. Exit: 0 built; 2 usage; debootstrap's or tar's status.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SUITE DEST.tar" >&2; exit 2; }
suite=$1 dest=$2
root=$dest.rootfs
mirror=${GWSHIM_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')
fi
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

# A leftover of an interrupted build: unmount what debootstrap mounted in it, never cross into
# another file system while removing it.
if [ -e "$root" ]; then
    grep -F " $(realpath "$root")/" /proc/self/mounts | awk '{print $2}' | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$root"
fi
start=$(date +%s)
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$dest.log" 2>&1 || {
    st=$?
    tail -n 20 "$dest.log" >&2
    exit $st
}
echo "make-base: debootstrap $suite took $(($(date +%s) - start)) s" >&2
# Under a name of its own: installing ca-certificates in the image rewrites the usual bundle.
mkdir -p "$root/etc/ssl"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-bundle.crt"
printf '[global]\ncert = /etc/ssl/host-ca-bundle.crt\n' >"$root/etc/pip.conf"
# As in the registry's image: no apt lists, no package cache, no resolv.conf of the build.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
: >"$root/etc/resolv.conf"
tar -C "$root" --numeric-owner -cf "$dest.partial" .
rm -rf --one-file-system "$root"
mv "$dest.log" "$dest.log.done"
mv "$dest.partial" "$dest"
