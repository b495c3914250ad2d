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
# are built once for both). But cargo names a workspace member's artifacts
# by its path relative to the workspace root, so the previous `plan/` and
# this one's share one artifact, and cargo judges it current by the times
# of the source files that last built it (absolute paths). So this
# checkout's crates are touched before the build (the previous ones must
# compile), and the previous sources are deleted after it: their artifacts
# then count as stale and this release's compile again at the next build.
# The previous binary is copied to target/kuryr6-previous.
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
# touch_ours: every source file of this checkout's crates, newer than any
# artifact cargo has.
touch_ours() { find core plan sdk -name '*.rs' -exec touch {} +; }
rm -rf "$src"
mkdir -p "$src"
tar -xzmf "$snapshot" -C "$src" --strip-components=1
touch_ours
echo "previous-build.sh: building $(awk '$1 == "tag" { print $2 }' "$about") ($(awk '$1 == "commit" { print substr($2, 1, 12) }' "$about"))" >&2
(cd "$src" && CARGO_TARGET_DIR=$target cargo build --locked --quiet -p kuryr6 --bin kuryr6) >&2
cp "$target/debug/kuryr6" "$target/kuryr6-previous"
# The shared artifacts are the previous release's now.
rm -rf "$src"
touch_ours
echo "$target/kuryr6-previous"
