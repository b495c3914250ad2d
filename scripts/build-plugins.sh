#!/usr/bin/env bash
# Builds every guest — the shipped plugins (plugins/) and the hostile test
# plugins (tests/hostile/) — for wasm32-wasip2 with the `guest` profile
# (see the root Cargo.toml), copies them to
# target/plugins/<name>.wasm (or $KURYR6_PLUGIN_OUT) and prints their sha256.
#
#   scripts/build-plugins.sh          build, copy, print sha256
#   scripts/build-plugins.sh --pin    also rewrite the sha256 pins of every
#                                     pipeline under examples/ and tests/
#                                     that names one of these plugins
#
# Cheap when nothing changed: cargo's no-op build, and files are only copied
# when their content differs (mtimes stay put).
#
# Reproducible: the same source and toolchain give byte-identical .wasm
# files on any machine and in any checkout directory, so pipelines can pin
# them. Absolute paths (the checkout, $CARGO_HOME) would otherwise end up in
# panic locations inside the binaries; they are remapped.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${KURYR6_PLUGIN_OUT:-$repo/target/plugins}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
pin=false
[[ ${1:-} == --pin ]] && pin=true

# crate name → file name (cargo writes snake_case artefacts).
guests=(naming site-prefix policy-guard hostile wrong-abi future-abi notplugin mismatch-abi)

# The toolchain comes from rust-toolchain.toml, which cargo and rustup read
# from the current directory: run them from the repo. rustup installs the
# file's targets only together with the toolchain, so a toolchain installed
# earlier (another project, an older checkout) lacks wasm32-wasip2.
if command -v rustup >/dev/null 2>&1; then
    if ! (cd "$repo" && rustup target list --installed) | grep -qx wasm32-wasip2; then
        echo "build-plugins.sh: adding the wasm32-wasip2 target (rustup target add)" >&2
        (cd "$repo" && rustup target add wasm32-wasip2) >&2
    fi
elif [[ ! -d $(cd "$repo" && rustc --print target-libdir --target wasm32-wasip2 2>/dev/null) ]]; then
    echo "build-plugins.sh: error: the Rust toolchain has no wasm32-wasip2 standard library and rustup is not installed; install rustup (https://rustup.rs) or your distribution's wasm32-wasip2 Rust std" >&2
    exit 1
fi

export CARGO_TARGET_DIR=$target_dir
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$repo=/kuryr6"$'\x1f'"--remap-path-prefix=$cargo_home=/cargo"
packages=()
for g in "${guests[@]}"; do packages+=(-p "$g"); done
(cd "$repo" && cargo build --quiet --locked --profile guest --target wasm32-wasip2 \
    --manifest-path "$repo/Cargo.toml" "${packages[@]}")

mkdir -p "$out"
: > "$out/SHA256SUMS.tmp"
for g in "${guests[@]}"; do
    built="$target_dir/wasm32-wasip2/guest/${g//-/_}.wasm"
    dest="$out/$g.wasm"
    if ! cmp -s "$built" "$dest" 2>/dev/null; then
        cp "$built" "$dest.tmp" && mv "$dest.tmp" "$dest"
    fi
    (cd "$out" && sha256sum "$g.wasm") >> "$out/SHA256SUMS.tmp"
done
mv "$out/SHA256SUMS.tmp" "$out/SHA256SUMS"
cat "$out/SHA256SUMS"

if $pin; then
    # In every pipeline, a `sha256 = "…"` line after a `path = "…/<g>.wasm"`
    # line (same [[plugin]] table) gets <g>'s current sha256.
    mapfile -t files < <(grep -rl --include='*.toml' 'target/plugins/' "$repo/examples" "$repo/tests" 2>/dev/null || true)
    for f in "${files[@]}"; do
        awk -v sums="$out/SHA256SUMS" '
            BEGIN { while ((getline line < sums) > 0) { split(line, a, "  "); sha[a[2]] = a[1] } }
            /^\[/ { current = "" }
            /^path *= *".*\/target\/plugins\/[^"]*\.wasm"/ {
                p = $0; sub(/^.*\/target\/plugins\//, "", p); sub(/".*$/, "", p); current = p
            }
            /^sha256 *= *"/ && (current in sha) { sub(/"[^"]*"/, "\"" sha[current] "\"") }
            { print }
        ' "$f" > "$f.tmp"
        if cmp -s "$f" "$f.tmp"; then rm "$f.tmp"; else mv "$f.tmp" "$f"; echo "pinned: ${f#"$repo"/}"; fi
    done
fi
