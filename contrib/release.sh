#!/usr/bin/env bash
# Builds every release artifact of gwshim into dist/ (docs/release.md tells what each is for):
#
#   contrib/release.sh
#
#   gwshim-VERSION-ARCH-linux-musl.tar.gz   static musl binary, README, LICENSE, man page,
#                                           install-dropin.sh and its template
#   gwshim-VERSION-py3-none-manylinux2014_ARCH...musllinux_1_1_ARCH.whl
#                                           the same binary for pip (bin/gwshim) with the
#                                           drop-in installer (bin/gwshim-install-dropin)
#   gwshim-VERSION.tar.gz                   the sdist: pip builds it from source with cargo
#   gwshim_VERSION-1_DEBARCH.deb            /usr/bin/gwshim, the man page, the installer
#   SHA256SUMS                              over all of the above
#
# for ARCH x86_64 and aarch64 (DEBARCH amd64 and arm64). Everything is built on this machine:
# aarch64 is cross-built, linked as a static PIE by contrib/static-pie-ld (.cargo/config.toml)
# with rust-lld, which ships with rustc: no C cross toolchain.
# The tools come from the registries and are kept under target/tools/ (CARGO_TARGET_DIR):
# the rustup targets, maturin (PyPI, in a venv) and cargo-deb (crates.io, cargo install).
#
#   GWSHIM_DIST=DIR        write there instead of dist/ (its gwshim files are replaced)
#   GWSHIM_ARCHS="x86_64"  build fewer architectures
#   MATURIN=PATH CARGO_DEB=PATH   use these instead of installing them under target/tools/
#
# Exit status: 0 built, 2 bad arguments, 3 a tool cannot be had, else the failing step's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
say() { echo "release: $*" >&2; }
[ $# -eq 0 ] || { echo "usage: $0   (no arguments; see the top of the file)" >&2; exit 2; }

dist=${GWSHIM_DIST:-$root/dist}
target_dir=${CARGO_TARGET_DIR:-$root/target}
tools=$target_dir/tools
archs=${GWSHIM_ARCHS:-x86_64 aarch64}
version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
[ -n "$version" ] || { say "no version in Cargo.toml"; exit 3; }
# Archives and packages carry the time of the last commit, not of the build.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
start=$(date +%s)

# --- tools --------------------------------------------------------------------------------
for arch in $archs; do
  t=$arch-unknown-linux-musl
  if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$t/lib" ]; then
    command -v rustup >/dev/null || { say "Rust target $t is missing and there is no rustup"; exit 3; }
    say "rustup target add $t"
    rustup target add "$t" >&2 || exit 3
  fi
done
maturin=${MATURIN:-$tools/maturin-venv/bin/maturin}
if [ ! -x "$maturin" ]; then
  say "installing maturin (PyPI) into $tools/maturin-venv"
  python3 -m venv "$tools/maturin-venv" >&2 || exit 3
  "$tools/maturin-venv/bin/pip" install -q --disable-pip-version-check 'maturin>=1.5,<2' >&2 || exit 3
fi
cargo_deb=${CARGO_DEB:-$tools/bin/cargo-deb}
if [ ! -x "$cargo_deb" ]; then
  say "installing cargo-deb (crates.io) into $tools (a few minutes, once)"
  cargo install --locked --quiet cargo-deb@3.8.0 --root "$tools" >&2 || exit 3
fi

# --- build --------------------------------------------------------------------------------
mkdir -p "$dist" "$target_dir"
rm -f "$dist"/gwshim-* "$dist"/gwshim_* "$dist/SHA256SUMS"
stage=$(mktemp -d "$target_dir/release-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
tar_opts=(--sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH")

for arch in $archs; do
  t=$arch-unknown-linux-musl
  say "$t: static binary"
  bin=$(GWSHIM_ARCH=$arch GWSHIM_STATIC=musl contrib/build-static.sh | tail -n 1)
  case $bin in /*) ;; *) bin=$root/$bin ;; esac

  say "$t: archive"
  name=gwshim-$version-$arch-linux-musl
  mkdir "$stage/$name"
  cp "$bin" "$stage/$name/gwshim"
  cp README.md LICENSE docs/gwshim.1 contrib/hermes/install-dropin.sh contrib/hermes/gwshim.conf.in \
    "$stage/$name/"
  tar -C "$stage" "${tar_opts[@]}" -cf - "$name" | gzip -n9 >"$dist/$name.tar.gz"

  say "$t: wheel"
  # The flags build-static.sh uses, so cargo reuses that build instead of redoing it.
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" "$maturin" build --quiet --release \
    --locked --target "$t" --compatibility manylinux2014 musllinux_1_1 --out "$dist" >&2

  say "$t: Debian package"
  "$cargo_deb" --quiet --no-build --no-strip --target "$t" --output "$dist" >&2
done
say "sdist"
"$maturin" sdist --out "$dist" >&2

(cd "$dist" && rm -f SHA256SUMS && sha256sum -- gwshim* >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
say "done in $(($(date +%s) - start)) s: $dist"
ls -l "$dist" >&2
