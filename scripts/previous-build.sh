#!/usr/bin/env bash
# Builds the previous release of kuryr6 (the newest `release/*` tag) beside
# this checkout, for the upgrade test (tests/upgrade_e2e.rs), and prints the
# path of its binary:
#
#   KURYR6_PREVIOUS_BIN=$(bash scripts/previous-build.sh)
#
# The build shares this checkout's target/ directory, so only the
# workspace's own crates compile (their dependencies are already built, or
# are built once for both). It writes the previous binary to
# target/kuryr6-previous and touches this checkout's sources so that the
# next cargo build links this release's binary again.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tag=$(git tag --list 'release/*' --sort=-creatordate | head -n 1)
if [[ -z $tag ]]; then
    echo "previous-build.sh: no release/* tag in this clone; fetch the tags (git fetch --tags) — the upgrade test needs the previous release" >&2
    exit 1
fi
target=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d)
cleanup() {
    git -C "$repo" worktree remove --force "$work/previous" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
git -C "$repo" worktree add --detach --quiet "$work/previous" "$tag" >&2
echo "previous-build.sh: building $tag ($(git rev-parse --short "$tag^{commit}"))" >&2
(cd "$work/previous" && CARGO_TARGET_DIR=$target cargo build --locked --quiet -p kuryr6 --bin kuryr6) >&2
cp "$target/debug/kuryr6" "$target/kuryr6-previous"
# The shared target/debug/kuryr6 is the previous release's now: the next
# build of this checkout must see its sources as newer and link again.
touch core/src/main.rs core/src/lib.rs
echo "$target/kuryr6-previous"
