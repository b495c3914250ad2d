#!/usr/bin/env bash
# The second guest language: builds plugins/naming-py (Python) from the same
# WIT as the Rust plugins with componentize-py, then tests it against the
# Rust `naming` plugin through kuryr6 itself. CI runs this after
# scripts/build-plugins.sh.
#
# - componentize-py 0.25.1 lives in a venv outside the tree, kept between
#   runs: $KURYR6_PY_VENV, else ~/.cache/kuryr6/venv-componentize-py-0.25.1.
# - The component (~18 MB) is rebuilt only when app.py or the WIT changed.
#   Its build is NOT reproducible (componentize-py snapshots a CPython whose
#   hash seed is random), so nothing in the tree pins it: this script pins
#   it in the pipelines it generates, and records it in
#   target/plugins/naming-py.sha256.
# - Its compiled form (7-8 s of Cranelift in release) is then served from
#   kuryr6's plugin cache for as long as the .wasm is unchanged.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${KURYR6_PLUGIN_OUT:-$repo/target/plugins}
venv=${KURYR6_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kuryr6/venv-componentize-py-0.25.1}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
version=0.25.1

# One installer at a time (CI jobs and worktrees share the cache); a venv
# whose install was cut short has no working componentize-py and is
# completed (never deleted: $KURYR6_PY_VENV may be the caller's own).
mkdir -p "$(dirname "$venv")"
exec 8>"$venv.lock"
flock -w 600 8 || { echo "build-py-plugin.sh: error: $venv.lock held for 600 s" >&2; exit 1; }
if ! "$venv/bin/componentize-py" --version >/dev/null 2>&1; then
    echo "build-py-plugin.sh: installing componentize-py $version into $venv" >&2
    if ! python3 -m venv "$venv"; then
        echo "build-py-plugin.sh: error: 'python3 -m venv' failed: install Python 3 with its venv module (Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    fi
    "$venv/bin/pip" install --quiet "componentize-py==$version"
fi
exec 8>&-

# The Rust plugin it is compared with.
[[ -f $out/naming.wasm ]] || bash "$repo/scripts/build-plugins.sh" >/dev/null

mkdir -p "$out"
wasm=$out/naming-py.wasm
stamp=$(cat "$repo"/sdk/wit/*.wit "$repo"/plugins/naming-py/*.py | sha256sum | cut -d' ' -f1)-$version
if [[ ! -f $wasm || $(cat "$out/naming-py.stamp" 2>/dev/null) != "$stamp" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # Build from a copy: componentize-py writes __pycache__ next to the app.
    cp "$repo"/plugins/naming-py/*.py "$work/"
    (cd "$work" && "$venv/bin/componentize-py" -d "$repo/sdk/wit" -w plugin componentize app -o "$wasm.tmp" >/dev/null)
    mv "$wasm.tmp" "$wasm"
    echo "$stamp" > "$out/naming-py.stamp"
fi
sha=$(sha256sum "$wasm" | cut -d' ' -f1)
echo "$sha  naming-py.wasm" | tee "$out/naming-py.sha256"

# --- test: the Python plugin names every step exactly as the Rust one ---
export CARGO_TARGET_DIR=$target_dir
(cd "$repo" && cargo build --quiet -p kuryr6)
kuryr6=$target_dir/debug/kuryr6
rust_sha=$(sha256sum "$out/naming.wasm" | cut -d' ' -f1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail=0
for case in "network pods ams1" "subnet pod_subnet AMS1" "security_group service_pod_access_v6 fra1" \
            "router k8s-ipv6 lon1" "loadbalancer default/kubernetes ams1" "emit configs ams1" \
            "subnet $(printf 'x%.0s' {1..70}) ams1"; do
    read -r kind name site <<< "$case"
    printf '{"facts": {"site": "%s"}, "kind": "%s", "name": "%s"}' "$site" "$kind" "$name" > "$work/f.json"
    r=$("$kuryr6" plugin test "$out/naming.wasm" --hook naming --input "$work/f.json" 2>&1 | grep -v '^load\|^plugin' || true)
    p=$("$kuryr6" plugin test "$wasm" --hook naming --input "$work/f.json" 2>&1 | grep -v '^load\|^plugin' | sed 's/naming-py/naming/g' || true)
    if [[ $r != "$p" ]]; then
        echo "MISMATCH for $case:"; echo " rust:   $r"; echo " python: $p"; fail=1
    fi
done

# The same through a pipeline, pinned to this build.
for w in naming naming-py; do
    s=$rust_sha; [[ $w == naming-py ]] && s=$sha
    sed -n '1,/^\[\[plugin\]\]/p' "$repo/examples/plugins/seed-naming/pipeline.toml" | sed '$d' > "$work/$w.toml"
    cat >> "$work/$w.toml" <<TOML
[[plugin]]
path = "$out/$w.wasm"
sha256 = "$s"

[plugin.facts]
site = "ams1"
TOML
    "$kuryr6" plan --offline --format json "$work/$w.toml" | grep -v '"file"' > "$work/$w.json"
done
if ! cmp -s "$work/naming.json" "$work/naming-py.json"; then
    echo "MISMATCH: the plans differ"; diff "$work/naming.json" "$work/naming-py.json" | head -20; fail=1
fi
if ((fail)); then echo "naming-py: FAILED"; exit 1; fi
echo "naming-py: same names as the Rust naming plugin (7 cases, 1 pipeline)"
