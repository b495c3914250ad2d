#!/usr/bin/env bash
# Install (once, cached) and start a real local OpenStack on 127.0.0.1:
# Keystone + Neutron (+ Octavia with --with-octavia), SQLite, from PyPI.
#
#   scripts/cloud/up.sh [--with-octavia] [--fresh] [--threads N] [--routers MODE] [--ml2 ovs|ovn]
#                       [--octavia-network noop|aap]
#   source .cloud/env.sh && "$KURYR6_VENV_BIN/openstack" network list
#
#   --threads N           Neutron server threads (1-64, default 1). Above 1,
#                         overlapping writes make Neutron answer 500
#                         ("database is locked", SQLite): a flaky cloud.
#   --routers MODE        what a router is when its creator does not say:
#                         legacy (default); dvr (router_distributed: its
#                         interfaces are network:router_interface_distributed);
#                         ha (l3_ha: network:ha_router_replicated_interface).
#                         Neutron's API makes both without an L3 agent, and
#                         an admin may still ask for the other with
#                         --distributed / --ha on `router create`.
#   --ml2 ovs|ovn         Neutron's mechanism driver: openvswitch (default,
#                         no agent) or ML2/OVN as devstack sets it up, with
#                         metadata on (every network gets its metadata port)
#                         and the OVN L3 plugin; OVN's NB/SB databases and
#                         ovn-northd run from the state dir (scripts/cloud/ovn.sh,
#                         Debian's ovn-central, installed when missing).
#                         With --with-octavia, Octavia also enables its OVN
#                         provider (ovn-octavia-provider) beside amphora; its
#                         driver agent runs in Octavia's process group.
#   --octavia-network noop|aap
#                         Octavia's network driver: no-op (default: no port
#                         in Neutron) or allowed_address_pairs_driver, the
#                         real one: a VIP port octavia-lb-<id> and, per
#                         amphora, a VRRP port octavia-lb-vrrp-<id> attached
#                         as Nova attaches it (py/k6compute.py).
# Environment:
#   KURYR6_CACHE          venv cache dir            (default ~/.cache/kuryr6)
#   KURYR6_CLOUD_DIR      state dir                 (default <repo>/.cloud)
#   KURYR6_KEYSTONE_PORT  (5000)  KURYR6_NEUTRON_PORT (9696)
#   KURYR6_OCTAVIA_PORT   (9876)  KURYR6_OCTAVIA=1 same as --with-octavia
#   KURYR6_ROUTERS        same as --routers (the flag wins)
#   KURYR6_ML2            same as --ml2 (the flag wins)
#   KURYR6_OCTAVIA_NETWORK  same as --octavia-network (the flag wins)
#   KURYR6_PYTHON         interpreter used to create the venv (python3)
#   KURYR6_WAIT           seconds to wait for each server to answer (120)
#   KURYR6_NEUTRON_THREADS Neutron server threads (1); same as --threads N.
#                         More than 1 makes SQLite answer 500 "database is
#                         locked" to concurrent writes (for fault tests).
#
# Every server logs each request to <state>/logs/<name>-access.log, one
# tab-separated line: start (epoch s), duration (us), status, method,
# URI (path?query), bytes, pid, user agent.
#
# Idempotent: without --fresh it reuses the databases, and when the wanted
# servers are already up and healthy (same thread count) it only
# re-verifies them; another thread count restarts Neutron alone.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() {
    # the header comment: every line up to the first that is not one
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
}

WITH_OCTAVIA=0
case "${KURYR6_OCTAVIA:-0}" in 1|true|yes) WITH_OCTAVIA=1 ;; esac
FRESH=0
NEUTRON_THREADS=${KURYR6_NEUTRON_THREADS:-1}
ROUTERS=${KURYR6_ROUTERS:-legacy}
ML2=${KURYR6_ML2:-ovs}
OCTAVIA_NETWORK=${KURYR6_OCTAVIA_NETWORK:-noop}
while (( $# )); do
    case "$1" in
        --octavia-network=*) OCTAVIA_NETWORK=${1#--octavia-network=} ;;
        --octavia-network)
            (( $# >= 2 )) || { echo "up.sh: --octavia-network needs noop or aap" >&2; exit 2; }
            OCTAVIA_NETWORK=$2; shift ;;
        --ml2=*) ML2=${1#--ml2=} ;;
        --ml2)
            (( $# >= 2 )) || { echo "up.sh: --ml2 needs ovs or ovn" >&2; exit 2; }
            ML2=$2; shift ;;
        --routers=*) ROUTERS=${1#--routers=} ;;
        --routers)
            (( $# >= 2 )) || { echo "up.sh: --routers needs legacy, dvr or ha" >&2; exit 2; }
            ROUTERS=$2; shift ;;
        --with-octavia) WITH_OCTAVIA=1 ;;
        --fresh) FRESH=1 ;;
        --threads=*) NEUTRON_THREADS=${1#--threads=} ;;
        --threads)
            (( $# >= 2 )) || { echo "up.sh: --threads needs a number (1-64)" >&2; exit 2; }
            NEUTRON_THREADS=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "up.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if ! [[ $NEUTRON_THREADS =~ ^[0-9]{1,2}$ ]] || (( 10#$NEUTRON_THREADS < 1 || 10#$NEUTRON_THREADS > 64 )); then
    echo "up.sh: bad Neutron thread count '$NEUTRON_THREADS' (--threads or KURYR6_NEUTRON_THREADS): want 1-64" >&2
    exit 2
fi
NEUTRON_THREADS=$(( 10#$NEUTRON_THREADS ))
case $ROUTERS in
    legacy) ROUTER_CONF="" ;;
    dvr) ROUTER_CONF="router_distributed = True" ;;
    # The HA network comes from the project network types (vxlan here).
    ha) ROUTER_CONF="l3_ha = True" ;;
    *) echo "up.sh: bad router mode '$ROUTERS' (--routers or KURYR6_ROUTERS): want legacy, dvr or ha" >&2; exit 2 ;;
esac
case $OCTAVIA_NETWORK in
    noop) OCTAVIA_DRIVERS="compute_driver = compute_noop_driver
network_driver = network_noop_driver" ;;
    # The real network driver needs a compute driver whose attach Neutron
    # sees (py/k6compute.py, registered by the dist-info beside it).
    aap) OCTAVIA_DRIVERS="compute_driver = k6_neutron_attach_driver
network_driver = allowed_address_pairs_driver" ;;
    *) echo "up.sh: bad Octavia network driver '$OCTAVIA_NETWORK' (--octavia-network or KURYR6_OCTAVIA_NETWORK): want noop or aap" >&2; exit 2 ;;
esac
case $ML2 in
    ovs|ovn) ;;
    *) echo "up.sh: bad ML2 driver '$ML2' (--ml2 or KURYR6_ML2): want ovs or ovn" >&2; exit 2 ;;
esac
# Octavia's OVN provider needs OVN's Northbound database.
OVN_LB=0
[[ $ML2 == ovn ]] && (( WITH_OCTAVIA )) && OVN_LB=1
if [[ $ML2 == ovn && $ROUTERS != legacy ]]; then
    echo "up.sh: --routers $ROUTERS is ML2/OVS's L3 plugin; OVN's routers are distributed by OVN itself" >&2
    exit 2
fi

: "${HOME:=$(cd ~ && pwd)}"
CACHE=${KURYR6_CACHE:-$HOME/.cache/kuryr6}
STATE=${KURYR6_CLOUD_DIR:-$REPO/.cloud}
KS_PORT=${KURYR6_KEYSTONE_PORT:-5000}
NEUTRON_PORT=${KURYR6_NEUTRON_PORT:-9696}
OCTAVIA_PORT=${KURYR6_OCTAVIA_PORT:-9876}
PYTHON=${KURYR6_PYTHON:-python3}
WAIT=${KURYR6_WAIT:-120}
# Access-log line (tab-separated; bench/cloud_vs_cli.sh parses it): start in
# epoch seconds (stamped by py/k6access.py: gunicorn has no such atom),
# duration in microseconds, status, method, raw URI (path?query), bytes,
# pid, user agent.
ACCESS_FORMAT=$'%({kuryr6.t0}e)s\t%(D)s\t%(s)s\t%(m)s\t%({raw_uri}e)s\t%(b)s\t%(p)s\t%(a)s'

die() { echo "up.sh: error: $*" >&2; exit 1; }

for v in KS_PORT NEUTRON_PORT OCTAVIA_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 && ${!v} < 65536 )) \
        || die "bad port ${!v} for $v"
done
[[ $KS_PORT != "$NEUTRON_PORT" && $KS_PORT != "$OCTAVIA_PORT" && \
   $NEUTRON_PORT != "$OCTAVIA_PORT" ]] || die "the three ports must differ"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)

# ------------------------------------------------------------- timing ---
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
T_START=$(now_us)
PHASES=()
_phase_t=$T_START
phase_done() {   # phase_done NAME: record time since the previous mark
    local t; t=$(now_us)
    (( t - _phase_t >= 50000 )) && PHASES+=("$(printf '%-22s %6.1f s' "$1" "$(( t - _phase_t ))e-6")")
    _phase_t=$t
}
say() { echo "up.sh: $*"; }

# one up.sh at a time per state dir
exec 9>"$STATE/.lock"
flock -w 900 9 || die "another up.sh/down.sh holds $STATE/.lock"

# ------------------------------------------------------- our servers ---
pidfile() { echo "$STATE/pids/$1.pid"; }
logfile() { echo "$STATE/logs/$1.log"; }
accesslog() { echo "$STATE/logs/$1-access.log"; }
threads_of() {   # threads_of NAME (see "servers" below for why)
    case $1 in neutron) echo "$NEUTRON_THREADS" ;; *) echo 4 ;; esac
}
port_of() {
    case "$1" in
        keystone) echo "$KS_PORT" ;;
        neutron) echo "$NEUTRON_PORT" ;;
        octavia) echo "$OCTAVIA_PORT" ;;
    esac
}
env_of() {
    case "$1" in
        keystone) echo KURYR6_KEYSTONE_PORT ;;
        neutron) echo KURYR6_NEUTRON_PORT ;;
        octavia) echo KURYR6_OCTAVIA_PORT ;;
    esac
}
health_path() {
    case "$1" in
        keystone) echo /v3 ;;
        *) echo / ;;
    esac
}

# shellcheck source=pids.sh
source "$HERE/pids.sh"
# shellcheck source=clouds_yaml.sh
source "$HERE/clouds_yaml.sh"
# our_pid NAME: print the recorded PID if is_ours.
our_pid() {
    local f pid
    f=$(pidfile "$1")
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    is_ours "$1" "$pid" || return 1
    echo "$pid"
}
recorded_port() {
    local f="$STATE/pids/$1.port"
    [[ -f $f ]] && cat "$f" || true
}
healthy() {   # healthy NAME: HTTP 200 on the server's unauthenticated root
    local port code
    port=$(recorded_port "$1")
    [[ -n $port ]] || return 1
    code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' \
        "http://127.0.0.1:$port$(health_path "$1")" 2>/dev/null) || true
    [[ $code == 200 ]]
}
port_in_use() {   # something accepts connections on 127.0.0.1:PORT
    timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}
server_sig() {   # what a running server was started with: config, wsgi module, threads, log format
    { cat "$STATE/etc/$1.conf" "$HERE/py/wsgi_$1.py" "$HERE"/py/k6*.py "$HERE/py/octavia_driver_agent.py" 2>/dev/null
      threads_of "$1"; echo "$ACCESS_FORMAT"; } | sha256sum | cut -c1-16
}
stop_servers() {   # stop_servers NAME...: SIGTERM all, wait (10 s), SIGKILL
    local name pid
    local -a pids=()
    for name in "$@"; do
        if pid=$(our_pid "$name"); then
            say "stopping $name (pid $pid)"
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do
            alive "$pid" || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    for name in "$@"; do
        rm -f "$STATE/pids/$name".{pid,port,sig,threads}
    done
}

WANTED=(keystone neutron)
(( WITH_OCTAVIA )) && WANTED+=(octavia)

ADMIN_PW_FILE=$STATE/admin-password
SERVICE_PW_FILE=$STATE/service-password

# auth_check: an admin token from Keystone, then authenticated reads on
# Neutron (and Octavia when it runs): checks the whole auth chain.
auth_check() {
    local pw token hdrs code
    pw=$(<"$ADMIN_PW_FILE")
    hdrs=$(curl -s -m 10 -D - -o /dev/null -H 'Content-Type: application/json' \
        -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"'"$pw"'"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' \
        "http://127.0.0.1:$KS_PORT/v3/auth/tokens") || return 1
    token=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p')
    [[ -n $token ]] || { echo "no token from keystone" >&2; return 1; }
    code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $token" \
        "http://127.0.0.1:$NEUTRON_PORT/v2.0/networks?limit=1") || true
    [[ $code == 200 ]] || { echo "neutron GET /v2.0/networks -> $code" >&2; return 1; }
    if our_pid octavia >/dev/null; then
        code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $token" \
            "http://127.0.0.1:$(recorded_port octavia)/v2/lbaas/loadbalancers?limit=1") || true
        [[ $code == 200 ]] || { echo "octavia GET /v2/lbaas/loadbalancers -> $code" >&2; return 1; }
    fi
}

VENV_HASH=$(sha256sum "$HERE/requirements.txt" | cut -c1-12)
VENV=$CACHE/venv-$VENV_HASH
VENV_MARKER=$VENV/.kuryr6-installed

print_summary() {
    local total name pid rss
    total=$(( $(now_us) - T_START ))
    echo
    echo "kuryr6 local OpenStack ($STATE)"
    echo "  keystone  http://127.0.0.1:$KS_PORT/v3"
    echo "  neutron   http://127.0.0.1:$NEUTRON_PORT  ($NEUTRON_THREADS thread$( (( NEUTRON_THREADS > 1 )) && echo s), ML2/$ML2, $ROUTERS routers)"
    if pid=$(our_pid octavia); then
        echo "  octavia   http://127.0.0.1:$(recorded_port octavia)"
    fi
    for name in keystone neutron octavia; do
        if pid=$(our_pid "$name"); then
            rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
            # add the gunicorn worker(s)
            for c in $(cat "/proc/$pid/task/$pid/children" 2>/dev/null); do
                rss=$(( rss + $(awk '/^VmRSS/ {print $2}' "/proc/$c/status" 2>/dev/null || echo 0) ))
            done
            printf '  %-9s pid %-7s rss %4d MiB  log %s\n' "$name" "$pid" \
                $(( rss / 1024 )) "$(logfile "$name")"
            printf '  %-9s %-30s access log %s\n' "" "" "$(accesslog "$name")"
        fi
    done
    echo "  cloud     kuryr6-local  (source $STATE/env.sh)"
    echo "  admin pw  $ADMIN_PW_FILE"
    if (( ${#PHASES[@]} )); then
        echo "  phases:"
        printf '    %s\n' "${PHASES[@]}"
    fi
    printf '  total %.1f s\n' "${total}e-6"
}

# ------------------------------------------------------------ fast path ---
READY=$STATE/.ready
# ports + the scripts that write configs: an edited up.sh restarts servers
READY_SIG="$VENV_HASH $KS_PORT $NEUTRON_PORT $OCTAVIA_PORT t$NEUTRON_THREADS r$ROUTERS m$ML2 o$OCTAVIA_NETWORK $(cat "$HERE/up.sh" "$HERE"/py/*.py | sha256sum | cut -c1-12)"
if (( ! FRESH )) && [[ -f $READY && $(<"$READY") == "$READY_SIG" \
        && -f $VENV_MARKER ]]; then
    fast=1
    for name in "${WANTED[@]}"; do
        if ! our_pid "$name" >/dev/null || \
           [[ $(recorded_port "$name") != "$(port_of "$name")" ]] || \
           ! healthy "$name"; then
            fast=0; break
        fi
    done
    if (( fast )) && auth_check; then
        phase_done "verify running"
        say "already running and healthy"
        print_summary
        exit 0
    fi
fi

# ----------------------------------------------------------- --fresh ---
if (( FRESH )); then
    stop_servers octavia neutron keystone
    say "--fresh: wiping $STATE"
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
    phase_done "fresh wipe"
fi
mkdir -p "$STATE"/{etc,db,logs,pids,keystone,neutron/lock,octavia/lock,octavia/run}
rm -f "$READY"

# --------------------------------------------------------------- venv ---
ensure_venv() {
    mkdir -p "$CACHE"
    exec 8>"$CACHE/.lock-$VENV_HASH"
    flock -w 1800 8 || die "timed out waiting for $CACHE/.lock-$VENV_HASH"
    if [[ -f $VENV_MARKER ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
        exec 8>&-
        return 0
    fi
    say "installing the OpenStack venv into $VENV (about a minute)"
    rm -rf "$VENV"
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set KURYR6_PYTHON)"
    "$PYTHON" -m venv "$VENV"
    if ! "$VENV/bin/pip" install --no-input --quiet \
            -r "$HERE/requirements.txt" >"$CACHE/install-$VENV_HASH.log" 2>&1; then
        tail -n 40 "$CACHE/install-$VENV_HASH.log" >&2
        die "pip install failed (full log: $CACHE/install-$VENV_HASH.log)"
    fi
    cp "$HERE/requirements.txt" "$VENV/requirements.txt"
    date -u +%FT%TZ >"$VENV_MARKER"
    exec 8>&-
}
ensure_venv
phase_done "venv"
PY=$VENV/bin/python

# ------------------------------------------------------------ secrets ---
umask 077
gen_secret() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
[[ -s $ADMIN_PW_FILE ]] || gen_secret >"$ADMIN_PW_FILE"
[[ -s $SERVICE_PW_FILE ]] || gen_secret >"$SERVICE_PW_FILE"
chmod 600 "$ADMIN_PW_FILE" "$SERVICE_PW_FILE"
ADMIN_PW=$(<"$ADMIN_PW_FILE")
SERVICE_PW=$(<"$SERVICE_PW_FILE")

# ------------------------------------------------------------ configs ---
authtoken_section() {   # authtoken_section USER
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:$KS_PORT/v3
auth_url = http://127.0.0.1:$KS_PORT/v3
auth_type = password
username = $1
password = $SERVICE_PW
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
service_token_roles_required = true
EOF
}

cat >"$STATE/etc/keystone.conf" <<EOF
# generated by scripts/cloud/up.sh
[DEFAULT]
use_stderr = true
[database]
connection = sqlite:///$STATE/db/keystone.sqlite
[cache]
enabled = true
backend = dogpile.cache.memory
[identity]
password_hash_rounds = 4
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[fernet_receipts]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
EOF

if [[ $ML2 == ovn ]]; then
    # devstack's ML2/OVN settings (lib/neutron_plugins/ovn_agent), without
    # a chassis: the API needs only the databases. Sync off: nothing else
    # writes to this NB.
    L3_PLUGIN=ovn-router
    ML2_CONF="[ml2]
type_drivers = local,flat,vlan,geneve
project_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security
overlay_ip_version = 4
[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38
[ovn]
ovn_nb_connection = unix:$STATE/ovn/nb.sock
ovn_sb_connection = unix:$STATE/ovn/sb.sock
ovn_metadata_enabled = True
neutron_sync_mode = off"
else
    L3_PLUGIN=router
    ML2_CONF="[ml2]
type_drivers = local,flat,vlan,vxlan
project_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security
[ml2_type_vxlan]
vni_ranges = 1:1000"
fi
{
cat <<EOF
# generated by scripts/cloud/up.sh
[DEFAULT]
use_stderr = true
core_plugin = ml2
service_plugins = $L3_PLUGIN
$ROUTER_CONF
auth_strategy = keystone
transport_url = fake://
state_path = $STATE/neutron
api_paste_config = $VENV/etc/neutron/api-paste.ini
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false
[database]
connection = sqlite:///$STATE/db/neutron.sqlite
[oslo_concurrency]
lock_path = $STATE/neutron/lock
$ML2_CONF
EOF
authtoken_section neutron
} >"$STATE/etc/neutron.conf"

{
cat <<EOF
# generated by scripts/cloud/up.sh
[DEFAULT]
use_stderr = true
transport_url = fake://
host = kuryr6-octavia
[api_settings]
auth_strategy = keystone
bind_host = 127.0.0.1
bind_port = $OCTAVIA_PORT
enabled_provider_drivers = amphora:Amphora provider with no-op drivers (kuryr6 local)$( (( OVN_LB )) && echo ", ovn:OVN provider (ovn-octavia-provider)")
default_provider_driver = amphora
[database]
connection = sqlite:///$STATE/db/octavia.sqlite
pool_timeout =
[controller_worker]
amphora_driver = amphora_noop_driver
$OCTAVIA_DRIVERS
image_driver = image_noop_driver
volume_driver = volume_noop_driver
loadbalancer_topology = SINGLE
client_ca = $STATE/octavia/certs/ca.pem
[certificates]
cert_generator = local_cert_generator
ca_certificate = $STATE/octavia/certs/ca.pem
ca_private_key = $STATE/octavia/certs/ca.key
[haproxy_amphora]
client_cert = $STATE/octavia/certs/ca.pem
server_ca = $STATE/octavia/certs/ca.pem
[task_flow]
jobboard_enabled = false
[oslo_concurrency]
lock_path = $STATE/octavia/lock
[oslo_messaging]
topic = octavia_prov
EOF
authtoken_section octavia
cat <<EOF
[service_auth]
auth_url = http://127.0.0.1:$KS_PORT/v3
auth_type = password
username = octavia
password = $SERVICE_PW
project_name = service
user_domain_name = Default
project_domain_name = Default
[neutron]
# the rest of the credentials come from [service_auth]
region_name = RegionOne
valid_interfaces = public
EOF
if (( OVN_LB )); then
# The OVN provider reports status through the driver agent's sockets, here
# in the state dir (py/k6driverlib.py points the provider at them).
cat <<EOF
[driver_agent]
status_socket_path = $STATE/octavia/run/status.sock
stats_socket_path = $STATE/octavia/run/stats.sock
get_socket_path = $STATE/octavia/run/get.sock
enabled_provider_agents = ovn
[ovn]
ovn_nb_connection = unix:$STATE/ovn/nb.sock
ovn_sb_connection = unix:$STATE/ovn/sb.sock
EOF
fi
} >"$STATE/etc/octavia.conf"
umask 022
phase_done "configs"

# ---------------------------------- stale / moved / reconfigured servers ---
# (Neutron's and Octavia's configs name Keystone's port, so moving Keystone
# restarts them too.)
RESTART=()
for name in keystone neutron octavia; do
    if ! our_pid "$name" >/dev/null; then
        rm -f "$STATE/pids/$name".{pid,port,sig,threads}
        continue
    fi
    # a running Octavia stays up even without --with-octavia
    [[ $name == octavia && " ${WANTED[*]} " != *" octavia "* ]] && WANTED+=(octavia)
    if [[ $(recorded_port "$name") != "$(port_of "$name")" ]]; then
        say "$name runs on port $(recorded_port "$name"), wanted $(port_of "$name"): restarting it"
        RESTART+=("$name")
    elif [[ $(cat "$STATE/pids/$name.sig" 2>/dev/null) != "$(server_sig "$name")" ]]; then
        say "$name's configuration changed: restarting it"
        RESTART+=("$name")
    elif ! healthy "$name"; then
        say "$name (pid $(our_pid "$name")) does not answer: restarting it"
        RESTART+=("$name")
    fi
done
(( ${#RESTART[@]} )) && stop_servers "${RESTART[@]}"
phase_done "restarts"
for name in "${WANTED[@]}"; do
    our_pid "$name" >/dev/null && continue
    port=$(port_of "$name")
    if port_in_use "$port"; then
        die "port $port (for $name) is already in use by another program; \
free it or choose another port with $(env_of "$name")=<port>"
    fi
done

# ---------------------------------------------------------- databases ---
# Each DB gets a .ok marker once fully initialised; a DB without its marker
# (an interrupted run) is rebuilt from scratch.
init_keystone() {
    # projects/: project.sh's users lived in the old database
    rm -rf "$STATE/db/keystone.sqlite" "$STATE/keystone" "$STATE/db/catalog.ok" "$STATE/projects"
    mkdir -p "$STATE/keystone" && chmod 700 "$STATE/keystone"
    # db_sync, fernet_setup, credential_setup, bootstrap in one interpreter;
    # the password goes through the environment, not the command line.
    OS_BOOTSTRAP_PASSWORD=$ADMIN_PW "$PY" "$HERE/py/k6cloud.py" keystone-init \
        "$STATE/etc/keystone.conf" "http://127.0.0.1:$KS_PORT/v3/"
    touch "$STATE/db/keystone.ok"
}
init_neutron() {
    rm -f "$STATE/db/neutron.sqlite"
    "$PY" "$HERE/py/k6cloud.py" neutron-db "$STATE/etc/neutron.conf"
    touch "$STATE/db/neutron.ok"
}
init_octavia() {
    rm -f "$STATE/db/octavia.sqlite"
    [[ -f $STATE/octavia/certs/ca.key ]] || \
        "$PY" "$HERE/py/k6cloud.py" octavia-ca "$STATE/octavia/certs"
    "$PY" "$HERE/py/k6cloud.py" octavia-db "$STATE/etc/octavia.conf"
    touch "$STATE/db/octavia.ok"
}

# ------------------------------------------------------------ servers ---
# Neutron on SQLite: two concurrent write transactions fail at once with
# "database is locked" (500), whatever busy timeout is set, so by default its
# requests are served one at a time; --threads N > 1 makes that 500 happen on
# purpose. Keystone and Octavia keep four threads.
start_server() {   # start_server NAME
    local name=$1 port module log
    port=$(port_of "$name")
    log=$(logfile "$name")
    module=wsgi_$name:application
    say "starting $name on 127.0.0.1:$port"
    (
        cd "$STATE"
        export OS_KEYSTONE_CONFIG_DIR=$STATE/etc OS_KEYSTONE_CONFIG_FILES=keystone.conf
        export OS_NEUTRON_CONFIG_DIR=$STATE/etc OS_NEUTRON_CONFIG_FILES=neutron.conf
        export KURYR6_OCTAVIA_CONF=$STATE/etc/octavia.conf
        # setsid: own session and process group (pgid == this PID), so
        # down.sh can signal the master and its worker together.
        setsid nohup "$VENV/bin/gunicorn" --pythonpath "$HERE/py" \
            --bind "127.0.0.1:$port" --workers 1 --threads "$(threads_of "$name")" \
            --no-control-socket --timeout 300 --graceful-timeout 5 \
            --access-logfile "$(accesslog "$name")" --access-logformat "$ACCESS_FORMAT" \
            --error-logfile "$log" "$module" >>"$log" 2>&1 </dev/null 8>&- 9>&- &
        echo $! >"$(pidfile "$name")"
    )
    echo "$port" >"$STATE/pids/$name.port"
    server_sig "$name" >"$STATE/pids/$name.sig"
    # What the server runs with, for tests that need a many-threaded Neutron.
    threads_of "$name" >"$STATE/pids/$name.threads"
}
wait_healthy() {   # wait_healthy NAME
    local name=$1 pid deadline
    pid=$(<"$(pidfile "$name")")
    deadline=$(( $(now_us) + WAIT * 1000000 ))
    say "waiting for $name to answer on http://127.0.0.1:$(port_of "$name")$(health_path "$name") (up to ${WAIT}s)"
    while :; do
        if ! alive "$pid"; then
            echo "--- last 40 lines of $(logfile "$name") ---" >&2
            tail -n 40 "$(logfile "$name")" >&2 || true
            rm -f "$STATE/pids/$name".{pid,port,sig,threads}
            die "$name exited during start-up (log: $(logfile "$name"))"
        fi
        healthy "$name" && return 0
        if (( $(now_us) > deadline )); then
            echo "--- last 40 lines of $(logfile "$name") ---" >&2
            tail -n 40 "$(logfile "$name")" >&2 || true
            stop_servers "$name" >&2
            die "$name did not answer within ${WAIT}s (log: $(logfile "$name"); KURYR6_WAIT raises the limit)"
        fi
        sleep 0.2
    done
}

run_catalog() {
    local sig with_lb=0
    [[ " ${WANTED[*]} " == *" octavia "* ]] && with_lb=1
    sig="$KS_PORT $NEUTRON_PORT $OCTAVIA_PORT lb$with_lb $(sha256sum <"$SERVICE_PW_FILE" | cut -c1-12)"
    if [[ ! -f $STATE/db/catalog.ok || $(<"$STATE/db/catalog.ok") != "$sig" ]]; then
        say "setting up the Keystone catalog (service project, users, endpoints)"
        KURYR6_KEYSTONE_PORT=$KS_PORT KURYR6_NEUTRON_PORT=$NEUTRON_PORT \
        KURYR6_OCTAVIA_PORT=$OCTAVIA_PORT KURYR6_ADMIN_PASSWORD_FILE=$ADMIN_PW_FILE \
        KURYR6_SERVICE_PASSWORD_FILE=$SERVICE_PW_FILE KURYR6_CATALOG_LB=$with_lb \
            "$PY" "$HERE/py/k6cloud.py" catalog
        echo "$sig" >"$STATE/db/catalog.ok"
        phase_done "catalog"
    fi
}

# The databases are independent: build them side by side (each logging to
# its own file) and start each server as soon as its own database is ready.
declare -A INIT_PIDS=()
for name in "${WANTED[@]}"; do
    [[ -f $STATE/db/$name.ok ]] && continue
    say "initialising the $name database"
    ( "init_$name" ) >"$STATE/logs/$name-init.log" 2>&1 8>&- 9>&- &
    INIT_PIDS[$name]=$!
done
# OVN's databases before Neutron, whose OVN driver connects at start.
if [[ $ML2 == ovn ]]; then
    # 8, 9: the cache and state locks, which the daemons must not inherit.
    bash "$HERE/ovn.sh" up "$STATE" >/dev/null 8>&- 9>&-
    phase_done "ovn"
fi
STARTED=()
for name in "${WANTED[@]}"; do
    if [[ -n ${INIT_PIDS[$name]:-} ]] && ! wait "${INIT_PIDS[$name]}"; then
        tail -n 40 "$STATE/logs/$name-init.log" >&2
        die "initialising the $name database failed (log: $STATE/logs/$name-init.log)"
    fi
    if ! our_pid "$name" >/dev/null; then
        if [[ $name == octavia ]]; then
            "$PY" "$HERE/py/k6cloud.py" octavia-unstick "$STATE/db/octavia.sqlite"
        fi
        start_server "$name"
        STARTED+=("$name")
    fi
done
(( ${#INIT_PIDS[@]} )) && phase_done "databases"
# Keystone first: the catalog needs only it, and is set up while Neutron and
# Octavia are still booting (their auth middleware connects lazily).
for name in keystone neutron octavia; do
    if [[ " ${STARTED[*]} " == *" $name "* ]]; then
        wait_healthy "$name"
        phase_done "$name healthy"
    fi
    [[ $name == keystone ]] && run_catalog
done

# ------------------------------------------------------ client config ---
umask 077
{
    echo "# generated by scripts/cloud/up.sh; the password is in secure.yaml"
    echo "clouds:"
    clouds_entry kuryr6-local "http://127.0.0.1:$KS_PORT/v3" admin admin
} >"$STATE/clouds.yaml"
cat >"$STATE/secure.yaml" <<EOF
clouds:
  kuryr6-local:
    auth:
      password: $ADMIN_PW
EOF
# the entries of scripts/cloud/project.sh's users (their Keystone database is kept)
for part in "$STATE"/projects/*/clouds.yaml.part; do
    [[ -f $part && -f ${part%/*}/secure.yaml.part ]] || continue
    cat "$part" >>"$STATE/clouds.yaml"
    cat "${part%/*}/secure.yaml.part" >>"$STATE/secure.yaml"
done
cat >"$STATE/env.sh" <<EOF
# generated by scripts/cloud/up.sh: source it to use the local cloud
export OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml
export OS_CLIENT_SECURE_FILE=$STATE/secure.yaml
export OS_CLOUD=kuryr6-local
export KURYR6_CLOUD_DIR=$STATE
export KURYR6_VENV_BIN=$VENV/bin
export KURYR6_KEYSTONE_URL=http://127.0.0.1:$KS_PORT/v3
export KURYR6_NEUTRON_URL=http://127.0.0.1:$NEUTRON_PORT
export KURYR6_OCTAVIA_URL=http://127.0.0.1:$OCTAVIA_PORT
export KURYR6_NEUTRON_THREADS=$NEUTRON_THREADS
export KURYR6_ROUTERS=$ROUTERS
export KURYR6_ML2=$ML2
export KURYR6_OCTAVIA_NETWORK=$OCTAVIA_NETWORK
EOF
umask 022
chmod 600 "$STATE/clouds.yaml" "$STATE/secure.yaml"
chmod 644 "$STATE/env.sh"

# --------------------------------------------------------- end-to-end ---
auth_check || die "authenticated check failed (admin token, then GET on Neutron/Octavia); \
see the logs in $STATE/logs; 'up.sh --fresh' rebuilds everything"
echo "$READY_SIG" >"$READY"
phase_done "verify"
print_summary
