#!/usr/bin/env bash
# Stop the local OpenStack started by scripts/cloud/up.sh.
#
#   scripts/cloud/down.sh [--purge]
#
# Only the PIDs recorded in <state>/pids/ are signalled (with their process
# group, which setsid made theirs alone): SIGTERM, up to 10 s, then SIGKILL.
# --purge also deletes the state dir (databases, keys, logs, passwords).
# KURYR6_CLOUD_DIR selects the state dir (default <repo>/.cloud). Safe to run
# when nothing is running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${KURYR6_CLOUD_DIR:-$REPO/.cloud}

PURGE=0
for arg in "$@"; do
    case "$arg" in
        --purge) PURGE=1 ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "down.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

if [[ ! -d $STATE ]]; then
    echo "down.sh: nothing to do ($STATE does not exist)"
    exit 0
fi
STATE=$(cd "$STATE" && pwd)

exec 9>"$STATE/.lock"
flock -w 300 9 || { echo "down.sh: $STATE/.lock is held by another up.sh/down.sh" >&2; exit 1; }

# shellcheck source=pids.sh
source "$HERE/pids.sh"

declare -A STOPPING=()
for f in "$STATE"/pids/*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    pid=$(<"$f")
    if [[ $pid =~ ^[0-9]+$ ]] && is_ours "$name" "$pid"; then
        echo "down.sh: stopping $name (pid $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        STOPPING[$name]=$pid
    else
        rm -f "$STATE/pids/$name".{pid,port,sig,threads}
    fi
done

for name in "${!STOPPING[@]}"; do
    pid=${STOPPING[$name]}
    for _ in $(seq 1 100); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        echo "down.sh: $name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    fi
    # the group: also catches a worker left behind by a dead master
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$STATE/pids/$name".{pid,port,sig,threads}
done
rm -f "$STATE/.ready"
# OVN's daemons (up.sh --ml2 ovn), by their own recorded PIDs.
if [[ -d $STATE/ovn ]]; then
    bash "$HERE/ovn.sh" down "$STATE"
fi

if (( PURGE )); then
    echo "down.sh: deleting $STATE"
    rm -rf "$STATE"
fi
exit 0
