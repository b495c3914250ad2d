#!/usr/bin/env bash
# Builds the fully static kuryr6 binary (x86_64-unknown-linux-musl, the
# `static` profile: release without debug info, see Cargo.toml) that the
# container image ships, checks that it is static, and
# prints its path on stdout (everything else goes to stderr).
#
#   scripts/static-build.sh            build (a no-op when nothing changed)
#
# Environment:
#   CARGO_TARGET_DIR   as cargo (default <repo>/target); the binary is
#                      <target>/x86_64-unknown-linux-musl/static/kuryr6
#
# Installs what a fresh machine lacks: the rustup target, and Debian's
# musl-tools (musl-gcc: ring's C and assembly must be compiled against musl,
# not glibc; pure Rust crates need no C compiler, rustc ships musl's crt).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=x86_64-unknown-linux-musl
target_dir=${CARGO_TARGET_DIR:-$repo/target}

# As build-plugins.sh: rustup installs rust-toolchain.toml's targets only
# together with the toolchain, so an older toolchain lacks this one.
if command -v rustup >/dev/null 2>&1; then
    if ! (cd "$repo" && rustup target list --installed) | grep -qx "$target"; then
        echo "static-build.sh: adding the $target target (rustup target add)" >&2
        (cd "$repo" && rustup target add "$target") >&2
    fi
elif [[ ! -d $(cd "$repo" && rustc --print target-libdir --target "$target" 2>/dev/null) ]]; then
    echo "static-build.sh: error: the Rust toolchain has no $target standard library and rustup is not installed" >&2
    exit 1
fi

if ! command -v musl-gcc >/dev/null 2>&1; then
    echo "static-build.sh: installing musl-tools (musl-gcc)" >&2
    bash "$repo/scripts/lib/apt-install.sh" musl-tools >&2
fi

# Run from a test (tests/image_e2e.rs), the environment holds what cargo sets
# for the crate under test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …), which
# build scripts watch (ring's does): they would rerun and rebuild half the
# tree, twice, on every switch between the test and a shell.
for var in $(compgen -e); do
    case $var in
        CARGO_PKG_*|CARGO_MANIFEST_*|CARGO_CRATE_NAME|CARGO_BIN_NAME|CARGO_PRIMARY_PACKAGE|CARGO_TARGET_TMPDIR|CARGO_RUSTC_CURRENT_DIR)
            unset "$var" ;;
    esac
done
# cc-rs looks for x86_64-linux-musl-gcc, which Debian does not ship.
export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_TARGET_DIR=$target_dir
(cd "$repo" && cargo build --quiet --locked --profile static -p kuryr6 --bin kuryr6 --target "$target") >&2

bin=$target_dir/$target/static/kuryr6
# Static: no program interpreter and no needed shared library. readelf is
# in binutils, which a machine that just linked a binary has.
headers=$(readelf --program-headers --dynamic --wide "$bin")
if grep -q 'INTERP' <<<"$headers" || grep -q '(NEEDED)' <<<"$headers"; then
    echo "static-build.sh: error: $bin is not static:" >&2
    grep -E 'INTERP|NEEDED' <<<"$headers" >&2
    exit 1
fi
echo "$bin"
