#!/usr/bin/env bash
# A fleet of SITES sites (default 50) on a real local cloud, in one Keystone
# project made for it (scripts/cloud/project.sh fleet-bench): a first
# `kuryr6 run` over all of them, then a no-change re-run. Prints both wall
# times, the re-run's share of the first (issue 10 target: ≤ 15 %) and the
# failed sites (target: none), then destroys the fleet.
#
#   KURYR6_CLOUD_DIR=.cloud-fleet bash bench/fleet_cloud.sh [SITES]
#
# Needs a local cloud (scripts/cloud/up.sh --with-octavia; its catalog
# names Octavia). Uses target/debug/kuryr6 (KURYR6_BIN=<path> for another
# binary): the time is the cloud's. Other clients of the same cloud queue
# with the fleet on a one-thread Neutron: use a cloud of your own.
set -euo pipefail
cd "$(dirname "$0")/.."
SITES=${1:-50}
[[ $SITES =~ ^[1-9][0-9]*$ && $SITES -le 4000 ]] || { echo "fleet_cloud.sh: SITES must be 1-4000, not '$SITES'" >&2; exit 2; }
STATE=${KURYR6_CLOUD_DIR:-$PWD/.cloud}
[[ -f $STATE/env.sh ]] || { echo "fleet_cloud.sh: no local cloud at $STATE: run scripts/cloud/up.sh" >&2; exit 1; }
STATE=$(cd "$STATE" && pwd)
BIN=${KURYR6_BIN:-}
if [[ -z $BIN ]]; then
    cargo build -q -p kuryr6
    BIN=$PWD/target/debug/kuryr6
fi
PARALLEL=${KURYR6_BENCH_PARALLEL:-16}

cloud=$(KURYR6_CLOUD_DIR=$STATE bash scripts/cloud/project.sh fleet-bench)
# Neutron's default quotas (10 routers, 10 security groups a project) hold a
# few sites; a fleet in one project needs more (the admin raises them).
VENV_BIN=$(sed -n 's/^export KURYR6_VENV_BIN=//p' "$STATE/env.sh")
OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml OS_CLIENT_SECURE_FILE=$STATE/secure.yaml OS_CLOUD=kuryr6-local \
    "$VENV_BIN/openstack" quota set --networks -1 --subnets -1 --routers -1 --secgroups -1 \
    --secgroup-rules -1 --ports -1 fleet-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sites"
for ((i = 1; i <= SITES; i++)); do
    cat >"$work/sites/fb-$i.toml" <<TOML
[pipeline]
name = "fb-$i"

[cloud]
name = "$cloud"

[plan]
site_prefix = "fd42:a1b2:c3d4::/48"
site_id = $i

[plan.names]
pod_network = "fb-$i-pods"
service_network = "fb-$i-services"
pod_subnet = "fb-$i-pod"
service_subnet = "fb-$i-svc"
router = "fb-$i-router"
security_group = "fb-$i-sg"

[plan.emit]
dir = "out/fb-$i"
TOML
done

k6() {
    (cd "$work" && env -u OS_CLOUD OS_CLIENT_CONFIG_FILE="$STATE/clouds.yaml" \
        OS_CLIENT_SECURE_FILE="$STATE/secure.yaml" "$BIN" "$@" sites/*.toml \
        --parallel "$PARALLEL" --format json)
}
# failed sites of a JSON summary, or "?" when it is not one
failed() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["failed"]), " ".join(d["failed"]))' 2>/dev/null || echo "?"; }
now() { date +%s.%N; }

echo "fleet_cloud: $SITES sites on $cloud ($STATE), --parallel $PARALLEL"
k6 destroy >/dev/null || { echo "fleet_cloud.sh: cleaning up an earlier fleet failed" >&2; exit 1; }
t0=$(now); first_status=0; first=$(k6 run) || first_status=$?; t1=$(now)
second_status=0; second=$(k6 run) || second_status=$?; t2=$(now)
changes=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(s["created"]+s["updated"]+s["deleted"] for s in d["sites"]))' <<<"$second" 2>/dev/null || echo "?")
python3 - "$t0" "$t1" "$t2" <<'PY'
import sys
t0, t1, t2 = map(float, sys.argv[1:])
a, b = t1 - t0, t2 - t1
print(f"  first run        {a:8.1f} s")
print(f"  no-change re-run {b:8.1f} s  = {100 * b / a:.1f} % of the first (target ≤ 15 %)")
PY
echo "  first run: exit $first_status, failed $(failed <<<"$first")"
echo "  re-run:    exit $second_status, failed $(failed <<<"$second"), changes $changes"
k6 destroy >/dev/null || echo "fleet_cloud.sh: destroy at the end failed" >&2
(( first_status == 0 && second_status == 0 ))
