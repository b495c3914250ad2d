#!/usr/bin/env bash
# The Kuryr IPv6 guide's 9 `openstack` CLI commands, one CLI process each,
# against the local cloud (for benchmarks comparing kuryr6 with the CLI).
# With --with-lb, also the guide's last step, the Kubernetes API load
# balancer, in 5 more commands (as examples/seed-ipv6 makes it): 14 in all.
#
#   scripts/cloud/guide_cli.sh [--with-lb] [SUFFIX]             create (names get SUFFIX)
#   scripts/cloud/guide_cli.sh --cleanup [--with-lb] [SUFFIX]   delete what it made
#
# --router-arg ARG (repeatable) is added to `router create`, as an admin
# would ask for a router kind the cloud does not make by default
# (`--ha --centralized`, `--distributed`).
#
# Resources: networks pods$SUFFIX, services$SUFFIX; subnets pod_subnet$SUFFIX,
# service_subnet$SUFFIX; router k8s-ipv6$SUFFIX; security group
# service_pod_access_v6$SUFFIX (+ one rule). --with-lb: load balancer
# default/kubernetes$SUFFIX (VIP fd10:0:0:2::1), pool and HTTPS listener on
# 443, members master-0 and master-1 (fd10:0:0:3::10, ::11) on 6443; each
# Octavia command waits for ACTIVE (--wait), as the next one needs it.
# Several suffixes can coexist (Neutron allows overlapping CIDRs on
# different networks/routers).
#
# Uses $OS_CLOUD/$OS_CLIENT_CONFIG_FILE/$KURYR6_VENV_BIN when set, otherwise
# sources ${KURYR6_CLOUD_DIR:-<repo>/.cloud}/env.sh (written by up.sh).
# Prints each command with its wall time and the total on stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

CLEANUP=0
LB=0
ROUTER_ARGS=()
# Options first; anything else is the suffix (which may start with '-').
while (( $# )); do
    case $1 in
        --cleanup) CLEANUP=1 ;;
        --with-lb) LB=1 ;;
        --router-arg)
            (( $# >= 2 )) || { echo "guide_cli.sh: --router-arg needs a value" >&2; exit 2; }
            ROUTER_ARGS+=("$2"); shift ;;
        -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
    shift
done
(( $# <= 1 )) || { echo "guide_cli.sh: one suffix at most, got: $*" >&2; exit 2; }
S=${1:-}
[[ $S =~ ^[A-Za-z0-9_.-]*$ ]] || { echo "guide_cli.sh: bad suffix '$S'" >&2; exit 2; }

if [[ -z ${KURYR6_VENV_BIN:-} || -z ${OS_CLOUD:-} ]]; then
    ENV_SH=${KURYR6_CLOUD_DIR:-$REPO/.cloud}/env.sh
    [[ -f $ENV_SH ]] || { echo "guide_cli.sh: $ENV_SH not found: run scripts/cloud/up.sh first" >&2; exit 1; }
    # shellcheck disable=SC1090
    source "$ENV_SH"
fi
OS=$KURYR6_VENV_BIN/openstack

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
T0=$(now_us)
run() {   # run CMD...: one openstack process, timed
    local t; t=$(now_us)
    "$OS" "$@" >/dev/null
    printf '%6.2f s  openstack %s\n' "$(( $(now_us) - t ))e-6" "$*" >&2
}
try() {   # like run, but a failure (already gone) is only reported
    local t; t=$(now_us)
    if "$OS" "$@" >/dev/null 2>&1; then
        printf '%6.2f s  openstack %s\n' "$(( $(now_us) - t ))e-6" "$*" >&2
    else
        printf '  (failed, ignored)  openstack %s\n' "$*" >&2
    fi
}

if (( CLEANUP )); then
    # The load balancer's VIP port holds the service subnet: it goes first.
    (( LB )) && try loadbalancer delete --cascade --wait "default/kubernetes$S"
    try router remove subnet "k8s-ipv6$S" "pod_subnet$S"
    try router remove subnet "k8s-ipv6$S" "service_subnet$S"
    try router delete "k8s-ipv6$S"
    try subnet delete "pod_subnet$S" "service_subnet$S"
    try network delete "pods$S" "services$S"
    try security group delete "service_pod_access_v6$S"
else
    run network create "pods$S"
    run subnet create "pod_subnet$S" --network "pods$S" --no-dhcp \
        --subnet-range fd10:0:0:1::/64 --ip-version 6 --gateway fd10:0:0:1::1
    run network create "services$S"
    run subnet create "service_subnet$S" --network "services$S" --no-dhcp \
        --gateway fd10:0:0:2::fffe --ip-version 6 \
        --allocation-pool start=fd10:0:0:2::8000,end=fd10:0:0:2::fffd \
        --subnet-range fd10:0:0:2::/112
    run router create "${ROUTER_ARGS[@]}" "k8s-ipv6$S"
    run router add subnet "k8s-ipv6$S" "pod_subnet$S"
    run router add subnet "k8s-ipv6$S" "service_subnet$S"
    run security group create "service_pod_access_v6$S"
    run security group rule create --remote-ip fd10:0:0:2::/112 \
        --ethertype IPv6 --protocol tcp "service_pod_access_v6$S"
    if (( LB )); then
        run loadbalancer create --name "default/kubernetes$S" --wait \
            --vip-subnet-id "service_subnet$S" --vip-address fd10:0:0:2::1
        run loadbalancer pool create --name "default/kubernetes$S:HTTPS:443" --wait \
            --loadbalancer "default/kubernetes$S" --protocol HTTPS --lb-algorithm LEAST_CONNECTIONS
        run loadbalancer listener create --name "default/kubernetes$S:HTTPS:443" --wait \
            --protocol HTTPS --protocol-port 443 --default-pool "default/kubernetes$S:HTTPS:443" \
            "default/kubernetes$S"
        run loadbalancer member create --name master-0 --address fd10:0:0:3::10 \
            --protocol-port 6443 --wait "default/kubernetes$S:HTTPS:443"
        run loadbalancer member create --name master-1 --address fd10:0:0:3::11 \
            --protocol-port 6443 --wait "default/kubernetes$S:HTTPS:443"
    fi
fi
printf '%6.2f s  total\n' "$(( $(now_us) - T0 ))e-6" >&2
