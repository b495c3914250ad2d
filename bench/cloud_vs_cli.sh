#!/usr/bin/env bash
# kuryr6's seed run against the guide's 9 `openstack` CLI commands, on the
# same local real cloud, alternating, N runs each (default 3). Prints the
# medians side by side and the ratios the issue sets targets for:
#   CLI sequence / kuryr6 first run   (target ≥ 8×)
#   kuryr6 no-change re-run / first   (target < 15 %)
# and the share of a pipeline run spent in WebAssembly plugins: the extra
# time of the seed with the `naming` plugin over the plain seed (offline
# plan, 20 processes each), against the run times above (target ≤ 2 %).
#
#   bash bench/cloud_vs_cli.sh [RUNS]
#
# Needs the local cloud (scripts/cloud/up.sh); builds kuryr6 in release.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
STATE=${KURYR6_CLOUD_DIR:-$PWD/.cloud}
[[ -f $STATE/env.sh ]] || { echo "cloud_vs_cli.sh: no local cloud at $STATE: run scripts/cloud/up.sh" >&2; exit 1; }
# shellcheck disable=SC1091
source "$STATE/env.sh"
cargo build --release -q -p kuryr6
K6=${CARGO_TARGET_DIR:-$PWD/target}/release/kuryr6
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp examples/seed-ipv6/pipeline.toml "$WORK/pipeline.toml"

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

"$K6" destroy "$WORK/pipeline.toml" >/dev/null
bash scripts/cloud/guide_cli.sh --cleanup >/dev/null 2>&1 || true
: >"$WORK/k6" ; : >"$WORK/rerun" ; : >"$WORK/cli"
for i in $(seq 1 "$RUNS"); do
    t=$(now); "$K6" run "$WORK/pipeline.toml" >/dev/null 2>&1; elapsed "$t" >>"$WORK/k6"
    t=$(now); "$K6" run "$WORK/pipeline.toml" >/dev/null 2>&1; elapsed "$t" >>"$WORK/rerun"
    "$K6" destroy "$WORK/pipeline.toml" >/dev/null
    t=$(now); bash scripts/cloud/guide_cli.sh >/dev/null 2>&1; elapsed "$t" >>"$WORK/cli"
    bash scripts/cloud/guide_cli.sh --cleanup >/dev/null 2>&1
    echo "run $i: kuryr6 $(tail -1 "$WORK/k6") s, re-run $(tail -1 "$WORK/rerun") s, CLI $(tail -1 "$WORK/cli") s" >&2
done
k6=$(median <"$WORK/k6"); rerun=$(median <"$WORK/rerun"); cli=$(median <"$WORK/cli")
printf '\nseed pipeline on the local cloud, median of %d alternating runs\n' "$RUNS"
printf '  %-40s %8.2f s\n' "guide's 9 openstack CLI commands" "$cli" "kuryr6 run (first)" "$k6" "kuryr6 run (no change)" "$rerun"
printf '  %-40s %8.1f ×   (target ≥ 8)\n' "CLI / kuryr6" "$(echo "$cli / $k6" | bc -l)"
printf '  %-40s %8.1f %%   (target < 15)\n' "re-run / first run" "$(echo "100 * $rerun / $k6" | bc -l)"

# Plugins' share: the same process work with and without the naming plugin.
if [[ -f target/plugins/naming.wasm ]]; then
    : >"$WORK/plain"; : >"$WORK/plugged"
    for i in $(seq 1 20); do
        t=$(now); "$K6" plan --offline examples/seed-ipv6/pipeline.toml >/dev/null; elapsed "$t" >>"$WORK/plain"
        t=$(now); "$K6" plan --offline examples/plugins/seed-naming/pipeline.toml >/dev/null; elapsed "$t" >>"$WORK/plugged"
    done
    plain=$(median <"$WORK/plain"); plugged=$(median <"$WORK/plugged")
    extra=$(echo "$plugged - $plain" | bc -l)
    printf '  %-40s %8.2f ms\n' "plugin cost (naming, per process)" "$(echo "1000 * $extra" | bc -l)"
    printf '  %-40s %8.2f %%   (target ≤ 2)\n' "plugins / kuryr6 run (first)" "$(echo "100 * $extra / $k6" | bc -l)"
    printf '  %-40s %8.2f %%\n' "plugins / kuryr6 run (no change)" "$(echo "100 * $extra / $rerun" | bc -l)"
else
    echo "  (plugins not built: run scripts/build-plugins.sh for the plugin share)"
fi
