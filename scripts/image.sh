#!/usr/bin/env bash
# Builds the kuryr6 container image (Containerfile: FROM scratch, the static
# binary, CA certificates, a non-root user) with podman, and prints what it
# built; optionally pushes it.
#
#   scripts/image.sh [--tag NAME] [--push oci://HOST[:PORT]/REPO[:TAG]]
#
#   --tag NAME   local name (default localhost/kuryr6:<version>)
#   --push REF   push to that registry after the build and print the pushed
#                manifest's digest. Plain HTTP for 127.0.0.1 and localhost
#                only (the local registry, scripts/registry/up.sh); anything
#                else is TLS-verified, with podman's own credentials
#                (`podman login`; never printed).
#
# Prints on stdout, one `key: value` a line:
#   image: NAME   id: sha256:… (the config digest, the same after a push and
#   pull)   digest: sha256:… (the local manifest)   size: N bytes (… MB, uncompressed)
#   and with --push   pushed: HOST/REPO:TAG@sha256:…
#
# Environment:
#   CARGO_TARGET_DIR    as cargo; the binary comes from scripts/static-build.sh
#
# Installs podman with apt-get when missing (Debian's, 4.3). The image has
# no RUN step, so the build needs no container runtime that works here.
# Labels: org.opencontainers.image.version (the binary's own --version) and
# .revision (git HEAD, `-dirty` with uncommitted changes). Its timestamps are
# the commit's, so the same binary gives the same image id.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "image.sh: error: $*" >&2; exit 2; }

name=
push=
while (( $# )); do
    case $1 in
        --tag) (( $# >= 2 )) || die "--tag needs a name"; name=$2; shift ;;
        --push) (( $# >= 2 )) || die "--push needs oci://HOST[:PORT]/REPO[:TAG]"; push=$2; shift ;;
        -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

dest=
insecure=false
if [[ -n $push ]]; then
    [[ $push == oci://* ]] || die "--push wants oci://HOST[:PORT]/REPO[:TAG], not '$push'"
    dest=${push#oci://}
    [[ $dest == */* && $dest != */ ]] || die "--push wants oci://HOST[:PORT]/REPO[:TAG], not '$push'"
    host=${dest%%/*}
    case ${host%:*} in 127.0.0.1|localhost) insecure=true ;; esac
fi

missing=()
command -v podman >/dev/null || missing+=(podman)
[[ -s /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
if (( ${#missing[@]} )); then
    echo "image.sh: installing ${missing[*]}" >&2
    bash "$repo/scripts/lib/apt-install.sh" "${missing[@]}" >&2
fi

bin=$(bash "$repo/scripts/static-build.sh")
version=$("$bin" --version | awk '{ print $2 }')
[[ -n $version ]] || die "$bin --version printed no version"
[[ -n $dest && $dest != */*:* ]] && dest=$dest:$version
name=${name:-localhost/kuryr6:$version}

if revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null); then
    git -C "$repo" diff --quiet HEAD -- 2>/dev/null || revision=$revision-dirty
    epoch=$(git -C "$repo" log -1 --format=%ct)
else
    revision=unknown
    epoch=0
fi

# The context holds exactly what the Containerfile copies.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$bin" "$context/kuryr6"
cp /etc/ssl/certs/ca-certificates.crt "$context/"
cp "$repo/deploy/image/passwd" "$repo/deploy/image/group" "$context/"
chmod 0755 "$context/kuryr6"
chmod 0644 "$context/ca-certificates.crt" "$context/passwd" "$context/group"

podman build --quiet --layers=false --file "$repo/Containerfile" --tag "$name" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --timestamp "$epoch" "$context" >/dev/null

id=$(podman image inspect --format '{{.Id}}' "$name")
digest=$(podman image inspect --format '{{.Digest}}' "$name")
size=$(podman image inspect --format '{{.Size}}' "$name")
echo "image: $name"
echo "id: sha256:${id#sha256:}"
echo "digest: $digest"
awk -v s="$size" 'BEGIN { printf "size: %d bytes (%.1f MB)\n", s, s / 1e6 }'

if [[ -n $dest ]]; then
    digestfile=$context/pushed-digest
    podman push --quiet --tls-verify=$([[ $insecure == true ]] && echo false || echo true) \
        --digestfile "$digestfile" "$name" "docker://$dest" >&2
    echo "pushed: $dest@$(<"$digestfile")"
fi
