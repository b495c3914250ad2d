#!/usr/bin/env bash
# Validates Kubernetes manifests against the API's own schemas, offline and
# strict (an unknown field is an error), with kubernetes-validate from PyPI
# in a cached venv (installed on first use; requirements.txt beside this).
#
#   scripts/k8s/validate.sh [FILE|DIR]...      (default: deploy/kubernetes)
#
# Checked against Kubernetes 1.29, the oldest that runs the Jobs as written
# (backoffLimitPerIndex is on by default from 1.29), and 1.37, the newest
# schema it ships. Exits non-zero on the first version that rejects a file.
#
# Environment: KURYR6_CACHE (default ~/.cache/kuryr6), KURYR6_PYTHON (python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${HOME:=$(cd ~ && pwd)}"
cache=${KURYR6_CACHE:-$HOME/.cache/kuryr6}
python=${KURYR6_PYTHON:-python3}
venv=$cache/k8s-validate-$(sha256sum "$here/requirements.txt" | cut -c1-12)

mkdir -p "$cache"
exec 8>"$venv.lock"
flock -w 600 8
if [[ ! -f $venv/.ready ]]; then
    echo "k8s/validate.sh: installing kubernetes-validate into $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --no-input --quiet -r "$here/requirements.txt" >&2
    touch "$venv/.ready"
fi
exec 8>&-

files=()
(( $# )) || set -- "$repo/deploy/kubernetes"
for arg in "$@"; do
    if [[ -d $arg ]]; then
        mapfile -t found < <(find "$arg" -maxdepth 1 -name '*.yaml' | sort)
        (( ${#found[@]} )) || { echo "k8s/validate.sh: no *.yaml in $arg" >&2; exit 2; }
        files+=("${found[@]}")
    else
        files+=("$arg")
    fi
done
for version in 1.29 1.37; do
    "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$version" "${files[@]}"
done
