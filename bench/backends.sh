#!/usr/bin/env bash
# bench/cloud_vs_cli.sh on two Neutron backends in one run, side by side:
# ML2/OVS (the main local cloud) and ML2/OVN with metadata on and Octavia's
# real network driver (its VIP and VRRP ports are made and deleted in
# Neutron). Prints each backend's whole report, then its headline figures
# in one table.
#
#   bash bench/backends.sh [RUNS]
#
# KURYR6_OVS_CLOUD_DIR (default .cloud) and KURYR6_OVN_CLOUD_DIR (default
# .cloud-ovn) name clouds started by scripts/cloud/up.sh, the second with
# `--ml2 ovn --with-octavia --octavia-network aap` (scripts/test.sh starts
# both). KURYR6_BIN and KURYR6_BASELINE_BIN pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
OVS=${KURYR6_OVS_CLOUD_DIR:-$PWD/.cloud}
OVN=${KURYR6_OVN_CLOUD_DIR:-$PWD/.cloud-ovn}
grep -q '^export KURYR6_ML2=ovn' "$OVN/env.sh" 2>/dev/null \
    || { echo "backends.sh: $OVN is not an ML2/OVN cloud (up.sh --ml2 ovn --with-octavia --octavia-network aap)" >&2; exit 1; }
if [[ -z ${KURYR6_BIN:-} ]]; then
    cargo build --release -q -p kuryr6
    export KURYR6_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/kuryr6
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for backend in ovs ovn; do
    dir=$OVS; [[ $backend == ovn ]] && dir=$OVN
    echo "== ML2/${backend^^} ($dir)"
    KURYR6_CLOUD_DIR=$dir bash bench/cloud_vs_cli.sh "$RUNS" | tee "$out/$backend"
done

# One figure out of a report: the number after LABEL on its line.
figure() {   # figure FILE LABEL [FIELD]
    awk -v l="$2" -v f="${3:-0}" 'index($0, "  " l) == 1 {
        split(substr($0, 3 + length(l)), a, " "); print a[f + 1]; exit }' "$1"
}
printf '\nbackends side by side (medians of %d runs)\n' "$RUNS"
printf '  %-8s %10s %12s %12s %12s %16s %15s %22s\n' backend "CLI/kuryr6" "first run s" "re-run s" "destroy s" "wall/busy (1st)" "requests (1st)" "Octavia→Neutron (1st)"
for backend in ovs ovn; do
    f=$out/$backend
    printf '  %-8s %9s× %12s %12s %12s %15s× %15s %22s\n' "ML2/${backend^^}" \
        "$(figure "$f" 'CLI / kuryr6')" "$(figure "$f" 'kuryr6 run (first)')" \
        "$(figure "$f" 'kuryr6 run (no change)')" "$(figure "$f" 'kuryr6 destroy')" \
        "$(figure "$f" 'run (first)' 7 | tr -d '×')" "$(figure "$f" 'run (first)' 6)" \
        "$(figure "$f" "Octavia's own calls to Neutron, first run")"
done
