#!/usr/bin/env bash
# Start a real OCI registry (Debian's docker-registry, the CNCF distribution
# registry) on 127.0.0.1 for plugin distribution tests, and the vendor's
# signing tool (minisign). Installs both with apt-get when missing.
#
#   scripts/registry/up.sh            # prints the address, e.g. 127.0.0.1:5050
#   scripts/registry/down.sh          # stops it by its recorded PID
#
# Environment:
#   KURYR6_REGISTRY_DIR   state dir: config, storage, pid, log (default <repo>/.registry)
#   KURYR6_REGISTRY_PORT  port on 127.0.0.1 (default 5050; 5000 is Keystone's)
#   KURYR6_WAIT           seconds to wait for GET /v2/ = 200 (default 60)
#   KURYR6_REGISTRY_TOKEN_REALM  tests of the token dance: the registry then
#                         challenges every request without Authorization with
#                         `Bearer realm=<this URL>` (distribution's "silly"
#                         auth: any token passes) and GET /v2/ answers 401
#
# The registry runs with its own config (no auth, plain HTTP on loopback,
# deletes enabled) and storage under the state dir. Idempotent: an instance
# already running for this state dir is reused. Writes <state>/address.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${KURYR6_REGISTRY_DIR:-$REPO/.registry}
PORT=${KURYR6_REGISTRY_PORT:-5050}
WAIT=${KURYR6_WAIT:-60}

die() { echo "registry/up.sh: error: $*" >&2; exit 1; }
[[ $PORT =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65536 )) || die "bad port '$PORT' (KURYR6_REGISTRY_PORT)"

# Packages: a fresh Debian machine (CI) has neither.
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v minisign >/dev/null || missing+=(minisign)
command -v curl >/dev/null || missing+=(curl)
if (( ${#missing[@]} )); then
    echo "registry/up.sh: installing ${missing[*]}"
    # The package's own init script must not start a second registry on
    # :5000 (Keystone's port): apt-install.sh forbids starting services.
    bash "$REPO/scripts/lib/apt-install.sh" "${missing[@]}"
fi

mkdir -p "$STATE/storage"
STATE=$(cd "$STATE" && pwd)
ADDR=127.0.0.1:$PORT

# ours PID: alive, not a zombie, and the docker-registry serving our config.
ours() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ -n $st && ${st%% *} != Z ]] || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "serve $STATE/config.yml"
}

# The answer that means "up": 200, or 401 when it asks for a token.
want=200
if [[ -n ${KURYR6_REGISTRY_TOKEN_REALM:-} ]]; then want=401; fi

if [[ -s $STATE/pid ]] && ours "$(<"$STATE/pid")" \
    && [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/v2/") == "$want" ]]; then
    echo "$ADDR" >"$STATE/address"
    echo "$ADDR"
    exit 0
fi

cat >"$STATE/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE/storage
  delete:
    enabled: true
  # Tests rewrite blobs on disk to play a tampering registry: no cache may hide it.
  cache: {}
http:
  addr: $ADDR
YAML
if [[ -n ${KURYR6_REGISTRY_TOKEN_REALM:-} ]]; then
    cat >>"$STATE/config.yml" <<YAML
auth:
  silly:
    realm: $KURYR6_REGISTRY_TOKEN_REALM
    service: kuryr6-test
YAML
fi

# setsid: its own process group, so down.sh stops exactly what we started.
setsid docker-registry serve "$STATE/config.yml" >"$STATE/registry.log" 2>&1 </dev/null &
echo $! >"$STATE/pid"

for _ in $(seq 1 $((WAIT * 10))); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/v2/") == "$want" ]]; then
        echo "$ADDR" >"$STATE/address"
        echo "$ADDR"
        exit 0
    fi
    ours "$(<"$STATE/pid")" || { tail -n 20 "$STATE/registry.log" >&2; die "docker-registry exited (log above)"; }
    sleep 0.1
done
tail -n 20 "$STATE/registry.log" >&2
die "no answer from http://$ADDR/v2/ within ${WAIT}s"
