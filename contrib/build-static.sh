#!/bin/sh
# Builds a fully static gwshim, for a FROM scratch or distroless image, and prints its path
# (the last line on stdout; cargo's progress goes to stderr).
#
#   contrib/build-static.sh            # musl if its Rust target is installed, else static glibc
#   GWSHIM_STATIC=gnu contrib/build-static.sh   # force one: musl or gnu
#   contrib/build-static.sh --small    # musl, with std rebuilt without its backtrace code:
#                                      # about 480 KB instead of 810 (needs nightly, below)
#   GWSHIM_NIGHTLY=nightly-2026-05-19 contrib/build-static.sh --small   # a pinned nightly
#   GWSHIM_ARCH=aarch64 contrib/build-static.sh   # cross-build musl for another architecture,
#                                      # linked with rust-lld (no C cross toolchain needed)
#
# musl:  rustup target add x86_64-unknown-linux-musl   (musl is static by default)
# gnu:   needs glibc's static libraries (libc6-dev: libc.a); built with -C target-feature=+crt-static
# small: rustup toolchain install nightly --component rust-src --target x86_64-unknown-linux-musl
#   Stable std carries its backtrace symbolizer (gimli, addr2line, miniz: about 166 KB) even
#   with panic = "abort". `-Z build-std` with no std features compiles std from rust-src
#   without it. Behaviour is the same: the panic hook still runs, it prints no backtrace.
# Exit status: 0 built (the path is printed), 2 bad arguments or GWSHIM_STATIC, 3 a toolchain
# or target is missing, 1 the binary is not static; cargo's own status when the build fails.
# All are static (no interpreter, no shared library). x86_64 and aarch64 musl builds are static
# PIEs ("static-pie linked" in file(1)): rustc links x86_64's so by itself, and aarch64's through
# contrib/static-pie-ld (.cargo/config.toml), as Rust's aarch64 musl target has no static-pie.
# CARGO_TARGET_DIR is honoured (default: target/); the build is cached there (the small one
# in its own folder, small/, as a nightly build would replace the stable one's cache).
set -eu
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
arch=${GWSHIM_ARCH:-$(uname -m)}
has_target() {
    [ -d "$($rustc --print sysroot)/lib/rustlib/$1/lib" ]
}
rustc=rustc small=
case ${1:-} in
"") ;;
--small)
    # rustup's own runner: $CARGO (set when cargo runs this) is a bare cargo, not rustup's.
    nightly=${GWSHIM_NIGHTLY:-nightly}
    small=1 rustc="rustup run $nightly rustc" cargo="rustup run $nightly cargo"
    ;;
*)
    echo "usage: $0 [--small]" >&2
    exit 2
    ;;
esac
choice=${GWSHIM_STATIC:-}
if [ -n "$small" ]; then
    case $choice in
    "" | musl) ;;
    *)
        echo "build-static: --small builds for musl only, not GWSHIM_STATIC=$choice" >&2
        exit 2
        ;;
    esac
    target=$arch-unknown-linux-musl
    if ! $rustc --version >/dev/null 2>&1 ||
        [ ! -d "$($rustc --print sysroot)/lib/rustlib/src/rust/library/std" ] ||
        ! has_target "$target"; then
        echo "build-static: --small needs the $nightly toolchain with rust-src and the $target target (rustup toolchain install $nightly --component rust-src --target $target)" >&2
        exit 3
    fi
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
    out_dir=${CARGO_TARGET_DIR:-target}/small
    $cargo build --release --locked --target "$target" --target-dir "$out_dir" \
        -Z build-std=std,panic_abort -Z build-std-features= >&2
    out=$out_dir/$target/release/gwshim
    echo "build-static: $target, std rebuilt without backtraces, $(wc -c <"$out") bytes" >&2
    echo "$out"
    exit 0
fi
if [ "$arch" != "$(uname -m)" ]; then
    # Cross: musl only. rust-lld (shipped with rustc) links musl's self-contained startup files
    # and libc.a from the Rust target, so no C cross toolchain is needed.
    case $choice in
    "" | musl) choice=musl ;;
    *)
        echo "build-static: GWSHIM_ARCH=$arch builds for musl only, not GWSHIM_STATIC=$choice" >&2
        exit 2
        ;;
    esac
    # aarch64's linker is set in .cargo/config.toml (contrib/static-pie-ld, rust-lld too).
    if [ "$arch" != aarch64 ]; then
        linker_var=CARGO_TARGET_$(echo "$arch" | tr '[:lower:]' '[:upper:]')_UNKNOWN_LINUX_MUSL_LINKER
        eval "[ -n \"\${$linker_var:-}\" ] || export $linker_var=rust-lld"
    fi
fi
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
