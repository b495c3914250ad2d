#!/usr/bin/env bash
# OVN's central part for a local cloud started with `up.sh --ml2 ovn`: the
# Northbound and Southbound ovsdb-servers (unix sockets in the state dir)
# and ovn-northd, from Debian's ovn-central (installed when missing). No
# ovs-vswitchd or ovn-controller: Neutron's API only needs the databases.
#
#   scripts/cloud/ovn.sh up STATE     start (idempotent), print the NB and SB
#                                     connection strings, one per line
#   scripts/cloud/ovn.sh down STATE   stop what `up` started, by recorded PID
#   scripts/cloud/ovn.sh nbctl STATE ARGS...   ovn-nbctl against that NB
#
# Every daemon runs from STATE with --detach and its own pidfile, log and
# control socket under STATE/ovn; `down` signals a recorded PID only when
# that process still names STATE/ovn on its command line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cmd=${1:-}
STATE=${2:-}
[[ -n $cmd && -n $STATE ]] || { echo "usage: ovn.sh up|down|nbctl STATE [ARGS...]" >&2; exit 2; }
STATE=$(mkdir -p "$STATE" && cd "$STATE" && pwd)
DIR=$STATE/ovn
# OVS tools default their run directory to /var/run: keep everything here.
export OVS_RUNDIR=$DIR OVN_RUNDIR=$DIR OVS_DBDIR=$DIR
DAEMONS=(nb sb northd)

die() { echo "ovn.sh: $*" >&2; exit 1; }

# shellcheck source=pids.sh
source "$HERE/pids.sh"   # alive

# ours NAME: the PID in NAME's pidfile is alive and was started for STATE.
ours() {
    local pid
    pid=$(cat "$DIR/$1.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/" || return 1
    echo "$pid"
}

start_db() {   # start_db nb|sb
    local name=$1
    ours "$name" >/dev/null && return 0
    [[ -f $DIR/$name.db ]] || ovsdb-tool create "$DIR/$name.db" "/usr/share/ovn/ovn-$name.ovsschema"
    (cd "$STATE" && ovsdb-server "$DIR/$name.db" \
        --remote="punix:$DIR/$name.sock" \
        --pidfile="$DIR/$name.pid" --log-file="$DIR/$name.log" \
        --unixctl="$DIR/$name.ctl" --detach --no-chdir)
}

case $cmd in
up)
    if ! command -v ovsdb-server >/dev/null || ! command -v ovn-northd >/dev/null; then
        echo "ovn.sh: installing ovn-central" >&2
        bash "$REPO/scripts/lib/apt-install.sh" ovn-central >&2
    fi
    mkdir -p "$DIR"
    start_db nb
    start_db sb
    if ! ours northd >/dev/null; then
        (cd "$STATE" && ovn-northd \
            --ovnnb-db="unix:$DIR/nb.sock" --ovnsb-db="unix:$DIR/sb.sock" \
            --pidfile="$DIR/northd.pid" --log-file="$DIR/northd.log" \
            --unixctl="$DIR/northd.ctl" --detach --no-chdir)
    fi
    for _ in $(seq 1 100); do
        ovn-nbctl --db="unix:$DIR/nb.sock" --timeout=2 show >/dev/null 2>&1 && break
        sleep 0.1
    done
    ovn-nbctl --db="unix:$DIR/nb.sock" --timeout=5 show >/dev/null \
        || die "the Northbound database does not answer on $DIR/nb.sock (see $DIR/nb.log)"
    echo "unix:$DIR/nb.sock"
    echo "unix:$DIR/sb.sock"
    ;;
down)
    for name in "${DAEMONS[@]}"; do
        if pid=$(ours "$name"); then
            echo "ovn.sh: stopping ovn-$name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$DIR/$name.pid"
    done
    ;;
nbctl)
    shift 2
    exec ovn-nbctl --db="unix:$DIR/nb.sock" --timeout=10 "$@"
    ;;
*) die "unknown command $cmd (up, down or nbctl)" ;;
esac
