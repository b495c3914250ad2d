#!/usr/bin/env bash
# Builds the previous release of kuryr6 for the upgrade test
# (tests/upgrade_e2e.rs) and prints the path of its binary:
#
#   KURYR6_PREVIOUS_BIN=$(bash scripts/previous-build.sh)
#
# The release's source is a snapshot kept in the tree,
# tests/upgrade/previous-release.tar.gz (`git archive` of the tag, named with
# its commit in tests/upgrade/previous-release.txt), not the tag itself: CI's
# fresh clone carries no tags and may be shallow, and the test must not
# depend on how the checkout was made. Cutting a release refreshes it:
#
#   bash scripts/previous-build.sh --refresh release/YYYY-MM-DD
#
# The build shares this checkout's target/ directory, so only the
# workspace's own crates compile (their dependencies are already built, or
# are built once for both). It extracts to a fixed place under target/ so
# that a second build reuses the first, writes the previous binary to
# target/kuryr6-previous and touches this checkout's sources so that the
# next cargo build links this release's binary again.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
snapshot=tests/upgrade/previous-release.tar.gz
about=tests/upgrade/previous-release.txt

if [[ ${1:-} == --refresh ]]; then
    tag=${2:?usage: previous-build.sh --refresh release/YYYY-MM-DD}
    commit=$(git rev-parse --verify "$tag^{commit}")
    # -n: no timestamp in the gzip header, so a refresh from the same tag
    # writes the same bytes.
    git archive --format=tar --prefix=kuryr6-previous/ "$commit" | gzip -9n >"$snapshot"
    printf 'tag %s\ncommit %s\nsha256 %s\n' "$tag" "$commit" \
        "$(sha256sum "$snapshot" | cut -d' ' -f1)" >"$about"
    echo "previous-build.sh: $snapshot is $tag ($commit)" >&2
    exit 0
fi

want=$(awk '$1 == "sha256" { print $2 }' "$about")
have=$(sha256sum "$snapshot" | cut -d' ' -f1)
if [[ $want != "$have" ]]; then
    echo "previous-build.sh: $snapshot has sha256 $have, $about says $want; refresh it with --refresh <tag>" >&2
    exit 1
fi

target=${CARGO_TARGET_DIR:-$repo/target}
src=$target/previous-src
rm -rf "$src"
mkdir -p "$src"
tar -xzf "$snapshot" -C "$src" --strip-components=1
echo "previous-build.sh: building $(awk '$1 == "tag" { print $2 }' "$about") ($(awk '$1 == "commit" { print substr($2, 1, 12) }' "$about"))" >&2
(cd "$src" && CARGO_TARGET_DIR=$target cargo build --locked --quiet -p kuryr6 --bin kuryr6) >&2
cp "$target/debug/kuryr6" "$target/kuryr6-previous"
# The shared target/debug/kuryr6 is the previous release's now: the next
# build of this checkout must see its sources as newer and link again.
touch core/src/main.rs core/src/lib.rs
echo "$target/kuryr6-previous"
