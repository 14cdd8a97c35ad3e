#!/usr/bin/env bash
# A real two-node Ray cluster on this machine, for the tests marked `ray` (tests/test_ray.py).
#
#   .ci/ray.sh start   # head + one more node, 1 CPU each; prints RAY_ADDRESS=...
#   .ci/ray.sh stop    # stops them (and every other Ray process of this user: `ray stop`)
#
# Why these flags: both nodes on 127.0.0.2, since Ray swaps 127.0.0.1 for the machine's
# external address; the second node needs its own dashboard-agent port (both default to
# 52365); --temp-dir keeps Ray's sockets and logs outside the virtual environment; no usage
# stats are sent; no token authentication (RAY_AUTH_MODE=disabled): Ray 2.5x turns it on by
# itself once ~/.ray/auth_token exists (any local `ray.init()` writes one), and a driver that
# connects and disconnects several times in one process (the tests) then loses its token.
# Without it, anyone who can reach the ports can run code on the cluster: a CI machine only.
# Starting takes about 25 s; the idle cluster holds about 1 GB.
# Uses $VENV/bin/ray (default .venv, installed by `make` with the dev extra).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
RAY="$VENV/bin/ray"
PORT=${SEQBENCH_RAY_PORT:-6388}
TEMP_DIR=${SEQBENCH_RAY_TEMP_DIR:-/tmp/seqbench-ray}
IP=127.0.0.2
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
# Tasks import seqbench from this checkout (as the tests do), whatever the venv holds.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ ! -x "$RAY" ]; then
    echo "ray.sh: $RAY not found; install the dev extra first (make .venv/.installed-dev)" >&2
    exit 2
fi

case "${1:-}" in
start)
    "$RAY" start --head --node-ip-address "$IP" --port "$PORT" --num-cpus 1 --num-gpus 0 \
        --temp-dir "$TEMP_DIR" --include-dashboard false --disable-usage-stats >/dev/null
    "$RAY" start --address "$IP:$PORT" --node-ip-address "$IP" --num-cpus 1 --num-gpus 0 \
        --dashboard-agent-listen-port 52366 --disable-usage-stats >/dev/null
    # Both nodes registered (ray start returns before the second one is seen by the head).
    for _ in $(seq 60); do
        nodes=$("$VENV/bin/python" -c "
import ray
ray.init(address='$IP:$PORT', log_to_driver=False, configure_logging=False)
print(sum(n['Alive'] for n in ray.nodes()))" 2>/dev/null || echo 0)
        [ "$nodes" = 2 ] && break
        sleep 1
    done
    if [ "$nodes" != 2 ]; then
        echo "ray.sh: the cluster has $nodes live node(s), not 2" >&2
        "$RAY" stop --force >/dev/null 2>&1 || true
        exit 1
    fi
    echo "RAY_ADDRESS=$IP:$PORT"
    ;;
stop)
    "$RAY" stop --force >/dev/null 2>&1 || true
    rm -rf "$TEMP_DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
