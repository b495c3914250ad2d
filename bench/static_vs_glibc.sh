#!/usr/bin/env bash
# The image's static musl binary beside the glibc one, built with the same
# profile (`static`: release without debug info, see Cargo.toml):
#   - file size (and the glibc `release` build's, with its line tables);
#   - a seed run on the local cloud: `run` of examples/seed-ipv6 (the whole
#     guide, load balancer included) then `destroy`, alternating the two
#     binaries, RUNS rounds (default 3), medians;
#   - CPU-bound work without a cloud, where musl's allocator shows if at all:
#     the seed's `plan --offline` (20 processes) and `check` of 1,000
#     generated site files, medians of RUNS.
#
#   bash bench/static_vs_glibc.sh [RUNS]
#
# Needs the local cloud (scripts/cloud/up.sh; KURYR6_CLOUD_DIR as there).
# Builds both binaries (a cold glibc build of the `static` profile takes as
# long as the musl one). Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "static_vs_glibc.sh: RUNS must be a positive number, not '$RUNS'" >&2; exit 2; }
STATE=${KURYR6_CLOUD_DIR:-$PWD/.cloud}
[[ -f $STATE/env.sh ]] || { echo "static_vs_glibc.sh: no local cloud at $STATE: run scripts/cloud/up.sh" >&2; exit 1; }
# shellcheck disable=SC1091
source "$STATE/env.sh"
target=${CARGO_TARGET_DIR:-$PWD/target}

MUSL=$(bash scripts/static-build.sh)
cargo build --quiet --locked --profile static -p kuryr6 --bin kuryr6
GLIBC=$target/static/kuryr6

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp examples/seed-ipv6/pipeline.toml "$WORK/pipeline.toml"
mkdir -p "$WORK/sites"
for i in $(seq 0 999); do
    printf '[pipeline]\nname = "site-%04d"\n[plan]\nsite_prefix = "fd42:a1b2:c3d4::/48"\nsite_id = %d\n' "$i" "$i" \
        >"$WORK/sites/site-$i.toml"
done

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timed() { local t0; t0=$(now); "$@" >/dev/null 2>&1; echo "$(now) - $t0" | bc -l; }

declare -A samples
for round in $(seq 1 "$RUNS"); do
    for name in musl glibc; do
        bin=${name^^}; bin=${!bin}
        samples[$name-run]+="$(timed "$bin" run "$WORK/pipeline.toml" --out "$WORK/out-$name") "
        samples[$name-destroy]+="$(timed "$bin" destroy "$WORK/pipeline.toml") "
        t0=$(now)
        for _ in $(seq 1 20); do "$bin" plan "$WORK/pipeline.toml" --offline >/dev/null; done
        samples[$name-offline]+="$(echo "($(now) - $t0) / 20" | bc -l) "
        samples[$name-check]+="$(timed "$bin" check "$WORK/sites") "
    done
    echo "round $round of $RUNS done" >&2
done

size() { stat -c %s "$1"; }
printf '%-34s %12s %12s %8s\n' "" "musl" "glibc" "ratio"
row() {
    printf '%-34s %12s %12s %7.2fx\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"
}
row "binary size (bytes, static profile)" "$(size "$MUSL")" "$(size "$GLIBC")"
if [[ -x $target/release/kuryr6 ]]; then
    echo "  (glibc release build with line tables: $(size "$target/release/kuryr6") bytes)"
fi
for kind in run destroy offline check; do
    m=$(tr ' ' '\n' <<<"${samples[musl-$kind]}" | grep . | median)
    g=$(tr ' ' '\n' <<<"${samples[glibc-$kind]}" | grep . | median)
    case $kind in
        run) label="seed run, cloud (s)" ;;
        destroy) label="seed destroy, cloud (s)" ;;
        offline) label="seed plan --offline (s/process)" ;;
        check) label="check 1,000 sites (s)" ;;
    esac
    row "$label" "$(printf '%.3f' "$m")" "$(printf '%.3f' "$g")"
done
echo "medians of $RUNS; ratio = musl / glibc"
