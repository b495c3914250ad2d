#!/usr/bin/env bash
# The main job, from nothing: start a real local OpenStack (Keystone,
# Neutron, Octavia from PyPI on 127.0.0.1), run Kuryr's IPv6 guide as one
# kuryr6 pipeline against it, run it again (no changes), and show the
# emitted kuryr.conf. The cloud stays up so you can look around; stop it
# with `bash scripts/cloud/down.sh`.
#
#   bash scripts/demo.sh [PIPELINE]     (default examples/seed-ipv6/pipeline.toml:
#                                        the whole guide, up to its API load balancer)
set -euo pipefail
cd "$(dirname "$0")/.."
PIPELINE=${1:-examples/seed-ipv6/pipeline.toml}
NAME=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$PIPELINE" | head -n 1)
export KURYR6_CLOUD_DIR=${KURYR6_CLOUD_DIR:-$PWD/.cloud}

bash scripts/cloud/up.sh --with-octavia
# shellcheck disable=SC1091
source "$KURYR6_CLOUD_DIR/env.sh"
echo "== building kuryr6 (release)"
cargo build --release --locked -q -p kuryr6
K6=${CARGO_TARGET_DIR:-$PWD/target}/release/kuryr6
OUT=$KURYR6_CLOUD_DIR/demo-out

echo "== kuryr6 check $PIPELINE"
"$K6" check "$PIPELINE"
echo "== kuryr6 plan $PIPELINE"
"$K6" plan "$PIPELINE"
echo "== kuryr6 run $PIPELINE"
"$K6" run "$PIPELINE" --out "$OUT"
echo "== kuryr6 run again: nothing to do"
"$K6" run "$PIPELINE" --out "$OUT"
echo "== $OUT/kuryr.conf"
cat "$OUT/kuryr.conf"
echo "== $OUT/kube-apiserver.flags"
cat "$OUT/kube-apiserver.flags"
echo "== kuryr6 graph $PIPELINE: topology and address plan, against the cloud"
"$K6" graph "$PIPELINE" --os-cloud "$OS_CLOUD" -o "$OUT/graph.svg"
echo "graph: $OUT/graph.svg"
cat <<MSG

The plan as a picture (open it in a browser): $OUT/graph.svg

The local cloud is still running. Look at what kuryr6 made:
  source $KURYR6_CLOUD_DIR/env.sh
  \$KURYR6_VENV_BIN/openstack network list --tags kuryr6:pipeline=$NAME
  \$KURYR6_VENV_BIN/openstack loadbalancer list --tags kuryr6:pipeline=$NAME
Remove it again:   $K6 destroy $PIPELINE
Stop the cloud:    bash scripts/cloud/down.sh
MSG
