#!/usr/bin/env bash
# Stop the registry started by scripts/registry/up.sh (same KURYR6_REGISTRY_DIR),
# by its recorded PID only: SIGTERM, up to 10 s, then SIGKILL.
#   scripts/registry/down.sh [--purge]   (--purge also deletes the state dir)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${KURYR6_REGISTRY_DIR:-$REPO/.registry}
[[ -d $STATE ]] || exit 0
STATE=$(cd "$STATE" && pwd)
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ -n $st && ${st%% *} != Z ]]
}
if [[ -s $STATE/pid ]]; then
    pid=$(<"$STATE/pid")
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" \
        && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "serve $STATE/config.yml"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/pid" "$STATE/address"
fi
[[ ${1:-} == --purge ]] && rm -rf "$STATE"
exit 0
