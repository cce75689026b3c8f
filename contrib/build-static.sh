#!/bin/sh
# Builds a fully static gwshim, for a FROM scratch or distroless image, and prints its path
# (the last line on stdout; cargo's progress goes to stderr).
#
#   contrib/build-static.sh            # musl if its Rust target is installed, else static glibc
#   GWSHIM_STATIC=gnu contrib/build-static.sh   # force one: musl or gnu
#
# musl:  rustup target add x86_64-unknown-linux-musl   (musl is static by default)
# gnu:   needs glibc's static libraries (libc6-dev: libc.a); built with -C target-feature=+crt-static
# Both give a static PIE ("static-pie linked" in file(1)): no interpreter, no shared library.
# CARGO_TARGET_DIR is honoured (default: target/); the build is cached there.
set -eu
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
arch=$(uname -m)
has_target() {
    [ -d "$(rustc --print sysroot)/lib/rustlib/$1/lib" ]
}
choice=${GWSHIM_STATIC:-}
if [ -z "$choice" ]; then
    if has_target "$arch-unknown-linux-musl"; then choice=musl; else choice=gnu; fi
fi
case $choice in
musl)
    target=$arch-unknown-linux-musl
    has_target "$target" || { echo "build-static: Rust target $target is not installed (rustup target add $target)" >&2; exit 3; }
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    ;;
gnu)
    target=$arch-unknown-linux-gnu
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    ;;
*)
    echo "build-static: GWSHIM_STATIC must be musl or gnu, not '$choice'" >&2
    exit 2
    ;;
esac
export RUSTFLAGS
# --target keeps this build apart from the ordinary one (target/$target/release), so the
# RUSTFLAGS above never touch it.
"$cargo" build --release --locked --target "$target" >&2
out=${CARGO_TARGET_DIR:-target}/$target/release/gwshim
if ! file "$out" 2>/dev/null | grep -q 'static'; then
    command -v file >/dev/null && { echo "build-static: $out is not static: $(file -b "$out")" >&2; exit 1; }
fi
echo "build-static: $target, $(wc -c <"$out") bytes" >&2
echo "$out"
