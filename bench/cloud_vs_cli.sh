#!/usr/bin/env bash
# kuryr6's seed run against the guide's `openstack` CLI commands, on the
# same local real cloud, alternating, N runs each (default 3). Like with
# like: the seed is the whole guide (Neutron topology and the API load
# balancer), so the CLI side is scripts/cloud/guide_cli.sh --with-lb, the
# guide's 9 Neutron commands plus 5 Octavia ones. Prints the
# medians side by side and the ratios the issue sets targets for:
#   CLI sequence / kuryr6 first run   (target ≥ 20×)
#   kuryr6 no-change re-run / first   (target < 15 %)
# how close each kuryr6 run comes to the physical limit: its wall time
# beside the time the servers spent on its requests, summed from their
# access logs (<state>/logs/<server>-access.log, written by
# scripts/cloud/up.sh) between offsets marked before and after the run
#   kuryr6 wall / servers' busy time  (target ≤ 1.25 on a one-thread Neutron)
# and the share of a pipeline run spent in WebAssembly plugins: the extra
# time of the seed with the `naming` plugin over the plain seed (offline
# plan, 20 processes each), against the run times above (target ≤ 2 %).
#
#   bash bench/cloud_vs_cli.sh [RUNS]
#   KURYR6_BASELINE_BIN=old/kuryr6 bash bench/cloud_vs_cli.sh [RUNS]
#
# With KURYR6_BASELINE_BIN, that binary (say, the last release) runs the
# same first run, re-run and destroy in every round beside this build, and
# the report gives this build's times over its. Every run's requests are
# counted by kind (auth, list, poll, create, tag, update, delete) from the
# access logs, for the first run, the re-run and the destroy; the destroy is
# timed beside the guide's deletes with the CLI.
#
# Needs the local cloud (scripts/cloud/up.sh); builds kuryr6 in release
# (KURYR6_BIN=<path> uses that binary instead). Nothing else should use the
# cloud meanwhile: other clients' requests queue with kuryr6's on a
# one-thread Neutron (the report counts them). busy = the sum of the
# durations of kuryr6's requests (user agent kuryr6/) over the three
# servers; union = the time at least one of them was serving one.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "cloud_vs_cli.sh: RUNS must be a positive number, not '$RUNS'" >&2; exit 2; }
STATE=${KURYR6_CLOUD_DIR:-$PWD/.cloud}
[[ -f $STATE/env.sh ]] || { echo "cloud_vs_cli.sh: no local cloud at $STATE: run scripts/cloud/up.sh" >&2; exit 1; }
# shellcheck disable=SC1091
source "$STATE/env.sh"
if [[ -n ${KURYR6_BIN:-} ]]; then
    K6=$KURYR6_BIN
else
    cargo build --release -q -p kuryr6
    K6=${CARGO_TARGET_DIR:-$PWD/target}/release/kuryr6
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp examples/seed-ipv6/pipeline.toml "$WORK/pipeline.toml"

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# ------------------------------------------- servers' busy time (logs) ---
SERVERS=(keystone neutron octavia)
LOGS=$STATE/logs
BUSY=1
[[ -f $LOGS/neutron-access.log ]] || BUSY=0
marks() {   # byte size of each access log, in SERVERS order
    local s
    for s in "${SERVERS[@]}"; do stat -c %s "$LOGS/$s-access.log" 2>/dev/null || echo 0; done | paste -sd' '
}
# gunicorn writes a request's line after sending its answer: let the last
# line of the previous step land before a mark
settle() { sleep 0.3; }
busy_of() {   # busy_of "MARKS BEFORE" "MARKS AFTER": access_busy.py's key=value line
    local -a a b args=()
    read -ra a <<<"$1"; read -ra b <<<"$2"
    local i
    for i in "${!SERVERS[@]}"; do
        args+=("${SERVERS[i]}=$LOGS/${SERVERS[i]}-access.log:${a[i]}:${b[i]}")
    done
    "$KURYR6_VENV_BIN/python" bench/access_busy.py "${args[@]}"
}
k6_timed() {   # k6_timed LABEL BIN COMMAND: one timed kuryr6 COMMAND of the seed; wall to $WORK/LABEL, busy to $WORK/LABEL.busy
    local label=$1 bin=$2 cmd=$3 before after t w
    ((BUSY)) && settle
    before=$(marks)
    t=$(now); "$bin" "$cmd" "$WORK/pipeline.toml" >/dev/null 2>&1; w=$(elapsed "$t")
    echo "$w" >>"$WORK/$label"
    if ((BUSY)); then
        settle
        after=$(marks)
        echo "wall_s=$w $(busy_of "$before" "$after")" >>"$WORK/$label.busy"
    fi
}
field() {   # field KEY < busy lines: one value per line
    sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p"
}
cli_timed() {   # cli_timed LABEL [--cleanup]: the guide's CLI commands; wall to $WORK/LABEL
    local label=$1 t; shift
    t=$(now); bash scripts/cloud/guide_cli.sh "$@" --with-lb >/dev/null 2>&1; elapsed "$t" >>"$WORK/$label"
}

# Today's binary beside this one (KURYR6_BASELINE_BIN): the same runs,
# alternating, so that both meet the same machine and cloud.
BINS=(k6)
BIN_k6=$K6
if [[ -n ${KURYR6_BASELINE_BIN:-} ]]; then
    [[ -x $KURYR6_BASELINE_BIN ]] || { echo "cloud_vs_cli.sh: KURYR6_BASELINE_BIN=$KURYR6_BASELINE_BIN is not an executable" >&2; exit 2; }
    BINS+=(base)
    BIN_base=$KURYR6_BASELINE_BIN
fi
bin_of() { local v="BIN_$1"; echo "${!v}"; }

"$K6" destroy "$WORK/pipeline.toml" >/dev/null
bash scripts/cloud/guide_cli.sh --cleanup --with-lb >/dev/null 2>&1 || true
: >"$WORK/cli" ; : >"$WORK/cli-delete"
for b in "${BINS[@]}"; do : >"$WORK/$b-first"; : >"$WORK/$b-rerun"; : >"$WORK/$b-destroy"; done
for i in $(seq 1 "$RUNS"); do
    for b in "${BINS[@]}"; do
        k6_timed "$b-first" "$(bin_of "$b")" run
        k6_timed "$b-rerun" "$(bin_of "$b")" run
        k6_timed "$b-destroy" "$(bin_of "$b")" destroy
    done
    cli_timed cli
    cli_timed cli-delete --cleanup
    echo "run $i: kuryr6 $(tail -1 "$WORK/k6-first") s, re-run $(tail -1 "$WORK/k6-rerun") s, destroy $(tail -1 "$WORK/k6-destroy") s; CLI $(tail -1 "$WORK/cli") s, CLI deletes $(tail -1 "$WORK/cli-delete") s" >&2
done
k6=$(median <"$WORK/k6-first"); rerun=$(median <"$WORK/k6-rerun"); destroy=$(median <"$WORK/k6-destroy")
cli=$(median <"$WORK/cli"); cli_delete=$(median <"$WORK/cli-delete")
printf '\nseed pipeline on the local cloud, median of %d alternating runs\n' "$RUNS"
printf '  %-40s %8.2f s\n' "guide's 14 openstack CLI commands" "$cli" "kuryr6 run (first)" "$k6" "kuryr6 run (no change)" "$rerun" \
    "the guide's deletes, openstack CLI" "$cli_delete" "kuryr6 destroy" "$destroy"
printf '  %-40s %8.1f ×   (target ≥ 20)\n' "CLI / kuryr6" "$(echo "$cli / $k6" | bc -l)"
printf '  %-40s %8.1f ×\n' "CLI deletes / kuryr6 destroy" "$(echo "$cli_delete / $destroy" | bc -l)"
printf '  %-40s %8.1f %%   (target < 15)\n' "re-run / first run" "$(echo "100 * $rerun / $k6" | bc -l)"
if [[ " ${BINS[*]} " == *" base "* ]]; then
    printf '\nthis build against KURYR6_BASELINE_BIN (%s), same runs, medians\n' "$KURYR6_BASELINE_BIN"
    for what in first rerun destroy; do
        new=$(median <"$WORK/k6-$what"); old=$(median <"$WORK/base-$what")
        printf '  %-40s %8.2f s vs %8.2f s = %5.2f×\n' "kuryr6 $what" "$new" "$old" "$(echo "$new / $old" | bc -l)"
    done
    printf '  %-40s (target ≤ 0.5×)\n' "  destroy, this / baseline"
fi

# Physical limit: per run, wall / (summed server time for kuryr6's requests).
if ((BUSY)); then
    threads=${KURYR6_NEUTRON_THREADS:-1}
    printf '\nphysical limit: kuryr6 wall time vs the servers'"'"' time on its requests\n'
    printf '(access logs; Neutron with %s thread(s); medians, ms; target wall/busy ≤ 1.25 with 1 thread;\n' "$threads"
    printf ' busy sums overlapping requests, union counts them once: wall/union is the stricter figure)\n'
    printf '  %-24s %7s %8s %8s %8s %8s %8s %8s %9s %10s\n' "" wall keystone neutron octavia busy union requests wall/busy wall/union
    foreign=0; bad=0
    label_of() {
        local b=$1 what=$2 l
        case $what in first) l="run (first)" ;; rerun) l="run (no change)" ;; destroy) l="destroy" ;; esac
        [[ $b == base ]] && l="$l, base"
        echo "$l"
    }
    for b in "${BINS[@]}"; do
        for what in first rerun destroy; do
            f=$WORK/$b-$what.busy
            # the ratio is taken per run, then the median
            ratio() {   # ratio KEY: per run wall / KEY
                awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                                 print (v[k] > 0) ? v["wall_s"] * 1000 / v[k] : 0 }' "$f" | median
            }
            printf '  %-24s %7.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.2f× %9.2f×\n' "$(label_of "$b" "$what")" \
                "$(field wall_s <"$f" | awk '{print $1 * 1000}' | median)" \
                "$(field keystone_ms <"$f" | median)" "$(field neutron_ms <"$f" | median)" \
                "$(field octavia_ms <"$f" | median)" "$(field busy_ms <"$f" | median)" \
                "$(field union_ms <"$f" | median)" "$(field requests <"$f" | median)" \
                "$(ratio busy_ms)" "$(ratio union_ms)"
            # Keystone also serves Neutron's and Octavia's token checks: only the
            # other clients of Neutron and Octavia are someone else's load
            foreign=$(( foreign + $(field neutron_other <"$f" | paste -sd+ | bc) + $(field octavia_other <"$f" | paste -sd+ | bc) ))
            bad=$(( bad + $(field bad_n <"$f" | paste -sd+ | bc) ))
        done
    done
    printf '\nrequests by kind (medians; targets: first run ≤ 35, re-run ≤ 10)\n'
    kinds=(auth list poll create tag update delete)
    printf '  %-24s' ""; printf ' %7s' "${kinds[@]}" total; printf '\n'
    for b in "${BINS[@]}"; do
        for what in first rerun destroy; do
            f=$WORK/$b-$what.busy
            printf '  %-24s' "$(label_of "$b" "$what")"
            for k in "${kinds[@]}"; do printf ' %7.0f' "$(field "kind_$k" <"$f" | median)"; done
            printf ' %7.0f\n' "$(field requests <"$f" | median)"
        done
    done
    # On Octavia's real network driver, its own port work in Neutron is part
    # of every load-balancer change kuryr6 waits for.
    printf '  %-40s %8.0f\n' "Octavia's own calls to Neutron, first run" \
        "$(field neutron_service <"$WORK/k6-first.busy" | median)"
    if (( foreign > 0 )); then
        echo "  warning: $foreign requests from other clients reached Neutron/Octavia during kuryr6's runs: the cloud is shared, the ratio overstates kuryr6's own overhead"
    fi
    if (( bad > 0 )); then
        echo "  warning: $bad access-log lines did not parse: restart the cloud with the current scripts/cloud/up.sh"
    fi
else
    echo "  (no access logs in $LOGS: the cloud was started by an older scripts/cloud/up.sh; run it again for the physical-limit figures)"
fi

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
