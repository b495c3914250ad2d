#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
#
#   bash scripts/test.sh
#
# Starts the real local cloud (Keystone, Neutron, Octavia from PyPI on
# 127.0.0.1; installed into a cached venv on first use), builds the shipped
# and hostile WebAssembly plugins, runs every Rust test including the
# end-to-end ones against that cloud, and stops the cloud by recorded PID.
# A cloud that fails to start fails the suite; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export KURYR6_CLOUD_DIR=${KURYR6_CLOUD_DIR:-$PWD/.cloud}

started=0
cleanup() {
    if (( started )); then bash scripts/cloud/down.sh >/dev/null || true; fi
}
trap cleanup EXIT

echo "== local cloud"
bash scripts/cloud/up.sh --with-octavia
started=1

echo "== WebAssembly plugins (Rust guests, then the Python one through componentize-py)"
bash scripts/build-plugins.sh
bash scripts/build-py-plugin.sh

echo "== cargo test (unit, offline CLI, plugins, end-to-end against the local cloud)"
log=$(mktemp)
status=0
cargo test --workspace --locked --features kuryr6/cloud-tests 2>&1 | tee "$log" || status=$?
# cargo ends on the doc-tests' own (empty) line; close on the whole count.
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
rm -f "$log"
exit "$status"
