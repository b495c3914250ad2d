#!/usr/bin/env bash
# Installs Debian packages with apt-get, one script at a time: scripts/test.sh
# runs scripts that install (the registry, the static build, the image) side
# by side, and two apt-gets at once fail on dpkg's lock.
#
#   scripts/lib/apt-install.sh PACKAGE...
#
# No package's own init script may start a service (docker-registry's would
# take :5000, Keystone's port): policy-rc.d 101 forbids it for the install.
set -euo pipefail
(( $# )) || { echo "apt-install.sh: name the packages" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
exec 9>/tmp/kuryr6-apt.lock
flock 9
added_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    added_policy=1
fi
trap 'if (( added_policy )); then rm -f /usr/sbin/policy-rc.d; fi' EXIT
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
