#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
#
#   bash scripts/test.sh
#
# Starts the real local cloud (Keystone, Neutron, Octavia from PyPI on
# 127.0.0.1; installed into a cached venv on first use) and a real OCI
# registry (Debian's docker-registry, scripts/registry/), builds the shipped
# and hostile WebAssembly plugins and the container image (scripts/image.sh),
# runs every Rust test including the end-to-end ones against that cloud and
# registry, and stops them by recorded PID.
# A cloud that fails to start fails the suite; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export KURYR6_CLOUD_DIR=${KURYR6_CLOUD_DIR:-$PWD/.cloud}

# cloud_up NAME DIR KEYSTONE NEUTRON OCTAVIA [UP.SH ARGS...]: one more local
# cloud in its own state dir, on its own ports (each can be moved with
# KURYR6_<NAME>_{KEYSTONE,NEUTRON,OCTAVIA}_PORT).
cloud_up() {
    local name=$1 dir=$2 ks nt oc
    ks=KURYR6_${name}_KEYSTONE_PORT nt=KURYR6_${name}_NEUTRON_PORT oc=KURYR6_${name}_OCTAVIA_PORT
    KURYR6_CLOUD_DIR=$dir KURYR6_KEYSTONE_PORT=${!ks:-$3} \
        KURYR6_NEUTRON_PORT=${!nt:-$4} KURYR6_OCTAVIA_PORT=${!oc:-$5} \
        bash scripts/cloud/up.sh "${@:6}"
}

# A second, separate cloud whose Neutron runs 4 threads: on SQLite it
# answers 500 to overlapping writes, as a loaded production cloud does
# (tests/flaky_e2e.rs). Its own ports and state dir.
export KURYR6_FLAKY_CLOUD_DIR=${KURYR6_FLAKY_CLOUD_DIR:-$PWD/.cloud-flaky}
flaky_up() {
    cloud_up FLAKY "$KURYR6_FLAKY_CLOUD_DIR" 5100 9796 9976 --with-octavia --threads 4
}

# A real OCI registry (Debian's docker-registry) on 127.0.0.1 for the
# plugin distribution tests (tests/registry_e2e.rs); up.sh installs it and
# minisign with apt-get on a fresh machine.
export KURYR6_REGISTRY_DIR=${KURYR6_REGISTRY_DIR:-$PWD/.registry}
export KURYR6_REGISTRY_PORT=${KURYR6_REGISTRY_PORT:-5050}
export KURYR6_REGISTRY=127.0.0.1:$KURYR6_REGISTRY_PORT

# The container image (tests/image_e2e.rs): its static musl binary is a
# release build that shares nothing with the debug test build, the longest
# step this suite has besides it. It builds in the background from the start
# (scripts/image.sh: podman and musl-tools installed when missing, the binary,
# the image), filling the cores the clouds' start leaves idle; the tests wait
# for it before they run, so no timing-sensitive test shares the CPU with it.
# setsid: its own process group, which cleanup stops if the suite ends early.

# A third, separate cloud for the fleet tests (tests/fleet_e2e.rs), which
# stop and start it again mid-test: nothing else may use it.
export KURYR6_FLEET_CLOUD_DIR=${KURYR6_FLEET_CLOUD_DIR:-$PWD/.cloud-fleet}
fleet_up() {
    cloud_up FLEET "$KURYR6_FLEET_CLOUD_DIR" 5300 9996 10076 --with-octavia
}

# A fourth cloud whose routers are DVR unless their creator asks for
# another kind (tests/import_e2e.rs: the guide's deployment on DVR and on
# L3-HA routers, imported and adopted). Keystone and Neutron only.
export KURYR6_ROUTERS_CLOUD_DIR=${KURYR6_ROUTERS_CLOUD_DIR:-$PWD/.cloud-routers}
routers_up() {
    cloud_up ROUTERS "$KURYR6_ROUTERS_CLOUD_DIR" 5400 10196 10276 --routers dvr
}

# A fifth cloud on ML2/OVN with metadata on (OVN's NB/SB and ovn-northd from
# Debian's ovn-central, scripts/cloud/ovn.sh) and Octavia with its real
# network driver (VIP and VRRP ports in Neutron): the seed with its load
# balancer, and OVN's Northbound database as a second witness
# (tests/cloud_e2e.rs).
export KURYR6_OVN_CLOUD_DIR=${KURYR6_OVN_CLOUD_DIR:-$PWD/.cloud-ovn}
ovn_up() {
    cloud_up OVN "$KURYR6_OVN_CLOUD_DIR" 5500 10296 10376 --with-octavia --ml2 ovn --octavia-network aap
}

started=0
image_pid=
# Background starts (pid → what), waited for by `wait_started`, or by
# cleanup when the suite ends early.
declare -A starting=()
cleanup() {
    # A build nobody will use: stopped (its own process group), not waited for.
    if [[ -n $image_pid ]]; then kill -TERM -- "-$image_pid" 2>/dev/null || true; fi
    for pid in "${!starting[@]}"; do wait "$pid" 2>/dev/null || true; done
    if (( started )); then
        bash scripts/cloud/down.sh >/dev/null || true
        for dir in "$KURYR6_FLAKY_CLOUD_DIR" "$KURYR6_FLEET_CLOUD_DIR" "$KURYR6_ROUTERS_CLOUD_DIR" \
            "$KURYR6_OVN_CLOUD_DIR"; do
            KURYR6_CLOUD_DIR=$dir bash scripts/cloud/down.sh >/dev/null || true
        done
        bash scripts/registry/down.sh >/dev/null || true
    fi
}
trap cleanup EXIT

# start_in_background WHAT COMMAND...: runs COMMAND with its output kept
# aside; prints the pid to wait for (and sets $started_pid).
start_in_background() {
    local what=$1; shift
    local log; log=$(mktemp)
    "$@" >"$log" 2>&1 &
    started_pid=$!
    starting[$started_pid]="$what"$'\t'"$log"
}

# wait_started PID: waits for a background start, shows its output, and
# fails the suite when it failed.
wait_started() {
    local pid=$1 status=0 what log
    IFS=$'\t' read -r what log <<<"${starting[$pid]}"
    wait "$pid" || status=$?
    unset "starting[$pid]"
    echo "== $what"
    cat "$log"; rm -f "$log"
    if (( status )); then
        echo "test.sh: $what did not start (exit $status)" >&2
        exit 1
    fi
}

image_log=$(mktemp)
setsid bash scripts/image.sh >"$image_log" 2>&1 &
image_pid=$!

echo "== local cloud"
started=1
bash scripts/cloud/up.sh --with-octavia
# The second cloud starts while the plugins build (the venv is cached now).
start_in_background "second local cloud (Neutron with 4 threads) at $KURYR6_FLAKY_CLOUD_DIR" flaky_up
flaky_pid=$started_pid
start_in_background "OCI registry at $KURYR6_REGISTRY ($KURYR6_REGISTRY_DIR)" bash scripts/registry/up.sh
registry_pid=$started_pid

echo "== WebAssembly plugins (Rust guests, then the Python one through componentize-py)"
bash scripts/build-plugins.sh
bash scripts/build-py-plugin.sh

wait_started "$flaky_pid"
wait_started "$registry_pid"

# Started after the second one: up.sh runs are CPU-heavy on 2 cores. The
# fourth (no Octavia, the lightest) and the fifth start beside the third.
start_in_background "fourth local cloud (DVR routers) at $KURYR6_ROUTERS_CLOUD_DIR" routers_up
routers_pid=$started_pid
start_in_background "fifth local cloud (ML2/OVN) at $KURYR6_OVN_CLOUD_DIR" ovn_up
ovn_pid=$started_pid
echo "== third local cloud (fleet tests) at $KURYR6_FLEET_CLOUD_DIR"
fleet_up
wait_started "$routers_pid"
wait_started "$ovn_pid"

# The previous release, for the upgrade test (tests/upgrade_e2e.rs): built
# from its tag with this checkout's target/, so only the workspace's own
# crates compile.
echo "== previous release (upgrade test)"
KURYR6_PREVIOUS_BIN=$(bash scripts/previous-build.sh)
export KURYR6_PREVIOUS_BIN

features=kuryr6/cloud-tests,kuryr6/registry-tests,kuryr6/image-tests
echo "== cargo test: build (the image's static binary may still be building beside it)"
cargo test --workspace --locked --no-run --features "$features"

echo "== container image (scripts/image.sh)"
image_status=0
wait "$image_pid" || image_status=$?
image_pid=
cat "$image_log"; rm -f "$image_log"
if (( image_status )); then
    echo "test.sh: the container image did not build (exit $image_status)" >&2
    exit 1
fi

echo "== cargo test (unit, offline CLI, plugins, end-to-end against the local cloud and registry, the image)"
log=$(mktemp)
status=0
cargo test --workspace --locked --no-fail-fast --features "$features" 2>&1 | tee "$log" || status=$?
# cargo ends on the doc-tests' own (empty) line; close on the whole count.
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
rm -f "$log"
exit "$status"
