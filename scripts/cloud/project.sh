#!/usr/bin/env bash
# A second Keystone project on the local cloud, for tests that need a
# non-admin tenant beside the admin one:
#
#   cloud=$(bash scripts/cloud/project.sh NAME)     # e.g. NAME=alt
#   source "$KURYR6_CLOUD_DIR/env.sh"; OS_CLOUD=$cloud openstack network list
#
# Creates (or finds) project NAME in domain Default, user NAME-member in it
# with a generated password, and grants that user the `member` role on NAME
# (the three Keystone calls; the default policies then let it create
# networks, subnets, routers and security groups in NAME). Adds the cloud
# entry `kuryr6-local-NAME` to <state>/clouds.yaml (password in
# <state>/secure.yaml, as for the admin entry) and prints that name, alone,
# on stdout.
#
# Idempotent; safe to run twice and concurrently (it holds <state>/.lock,
# the lock up.sh and down.sh take). The password is made once
# (<state>/projects/NAME/password, mode 600) and never printed or passed on
# a command line. up.sh keeps these entries when it rewrites clouds.yaml,
# and forgets them when it rebuilds the Keystone database.
#
# NAME: 1-32 of [a-z0-9-], starting with a letter; not admin or service.
# KURYR6_CLOUD_DIR selects the cloud (default <repo>/.cloud); it must be up.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${KURYR6_CLOUD_DIR:-$REPO/.cloud}

die() { echo "project.sh: error: $*" >&2; exit 1; }
# shellcheck source=clouds_yaml.sh
source "$HERE/clouds_yaml.sh"

case "${1:-}" in
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
(( $# == 1 )) || die "usage: project.sh NAME (see --help)"
NAME=$1
[[ $NAME =~ ^[a-z][a-z0-9-]{0,31}$ ]] \
    || die "bad project name '$NAME': want 1-32 of a-z, 0-9 and '-', starting with a letter"
[[ $NAME != admin && $NAME != service ]] \
    || die "'$NAME' is one of the cloud's own projects; choose another name"
USER_NAME=$NAME-member
ENTRY=kuryr6-local-$NAME

[[ -f $STATE/env.sh && -s $STATE/admin-password && -f $STATE/clouds.yaml ]] \
    || die "no local cloud at $STATE (run scripts/cloud/up.sh, or set KURYR6_CLOUD_DIR)"
STATE=$(cd "$STATE" && pwd)
# the venv and Keystone's URL of that cloud
VENV_BIN=$(sed -n 's/^export KURYR6_VENV_BIN=//p' "$STATE/env.sh")
KS_URL=$(sed -n 's/^export KURYR6_KEYSTONE_URL=//p' "$STATE/env.sh")
KS_PORT=${KS_URL##*:}; KS_PORT=${KS_PORT%%/*}
[[ -x $VENV_BIN/python && $KS_PORT =~ ^[0-9]+$ ]] \
    || die "$STATE/env.sh names no venv or Keystone URL (rerun scripts/cloud/up.sh)"

# One writer at a time for Keystone (SQLite answers 500 to overlapping
# writes) and for clouds.yaml / secure.yaml.
exec 9>"$STATE/.lock"
flock -w 300 9 || die "$STATE/.lock is held by another up.sh/down.sh/project.sh for 300 s"

DIR=$STATE/projects/$NAME
umask 077
mkdir -p "$DIR"
[[ -s $DIR/password ]] || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$DIR/password"

project_id=$(KURYR6_KEYSTONE_PORT=$KS_PORT KURYR6_ADMIN_PASSWORD_FILE=$STATE/admin-password \
    KURYR6_MEMBER_PASSWORD_FILE=$DIR/password \
    "$VENV_BIN/python" "$HERE/py/k6cloud.py" project "$NAME" "$USER_NAME") \
    || die "Keystone setup of project '$NAME' failed (is the cloud up? scripts/cloud/up.sh)"
echo "$project_id" >"$DIR/project-id"

clouds_entry "$ENTRY" "$KS_URL" "$USER_NAME" "$NAME" >"$DIR/clouds.yaml.part"
cat >"$DIR/secure.yaml.part" <<EOF
  $ENTRY:
    auth:
      password: $(<"$DIR/password")
EOF

# add_entry FILE PART: append PART to FILE unless FILE has the entry already;
# through a temporary file and rename, so a reader never sees half a file
add_entry() {
    grep -qxF "  $ENTRY:" "$1" && return 0
    cat "$1" "$2" >"$1.tmp.$$"
    chmod 600 "$1.tmp.$$"
    mv "$1.tmp.$$" "$1"
}
add_entry "$STATE/clouds.yaml" "$DIR/clouds.yaml.part"
add_entry "$STATE/secure.yaml" "$DIR/secure.yaml.part"
echo "project.sh: project $NAME ($project_id), user $USER_NAME (member), cloud $ENTRY in $STATE/clouds.yaml" >&2
echo "$ENTRY"
