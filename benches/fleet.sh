#!/usr/bin/env bash
# The standard loadgen scenarios of issue 5, on this machine, loopback only:
#   idle   10,000 devices connected at once, server RSS per idle device (first: fresh server)
#   n1     1,000 devices, 1 MiB image, 4 KiB blocks, n=1   (+ TCP and Mosquitto baselines)
#   n32    32 blocks per request, 8 MiB image (1 MiB is over in 0.6 s) (+ TCP baseline)
#   half   n=1 at half the throughput n1 reached: block latency
#   faults 1 % reply loss and 5 % reboots: everyone completes, no duplicate answers
#   ota    10,000 devices x 1 MiB full OTA jobs (AWS agent defaults: 10 s retry, n = $OTA_N)
#   spread 19,000 devices x 256 KiB: past one process's open files, so loadgen spreads them over
#          shard processes by itself, connecting from 4 loopback source addresses
#   n1pg   n1 again against a second server on PostgreSQL + SeaweedFS (started for the run by
#          otastream-stack, stopped after it): ratio to the first server's n1 in the same run
#
# Builds release, installs Mosquitto (Debian package) if missing, starts otastream with a temp
# data dir and port 0, starts Mosquitto on a free loopback port with TCP_NODELAY, runs each
# scenario bounded by --duration-limit, prints every table and a summary. Reports (JSON + SVG)
# and logs stay in $OUT.
#
# Usage: benches/fleet.sh [scenario...]        (default: idle n1 n32 half faults ota spread)
# Env:   OUT=dir DEVICES=1000 IDLE_DEVICES=10000 SPREAD_DEVICES=19000 IMAGE=1MiB IMAGE32=8MiB
#        OTA_N=1 LIMIT=300
#        BACKEND=sqlite|postgres: the storage of the server every scenario but n1pg runs against
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIOS=${*:-idle n1 n32 half faults ota spread}
DEVICES=${DEVICES:-1000}
IDLE_DEVICES=${IDLE_DEVICES:-10000}
SPREAD_DEVICES=${SPREAD_DEVICES:-19000}
IMAGE=${IMAGE:-1MiB}
IMAGE32=${IMAGE32:-8MiB}
OTA_N=${OTA_N:-1}
LIMIT=${LIMIT:-300}
BACKEND=${BACKEND:-sqlite}
OUT=${OUT:-$(mktemp -d /tmp/otastream-fleet.XXXXXX)}
mkdir -p "$OUT"
echo "fleet: results in $OUT"

cargo build --release -p otastream -p otastream-loadgen -p otastream-testkit
TARGET=${CARGO_TARGET_DIR:-target}
SERVER=$TARGET/release/otastream
LOADGEN=$TARGET/release/otastream-loadgen
STACK=$TARGET/release/otastream-stack

if ! command -v mosquitto >/dev/null; then
    apt-get install -y mosquitto >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y mosquitto >/dev/null; }
fi

# Root may raise the open-files limit; the server and loadgen each hold one socket per device.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PIDS=()
STACK_FD=
cleanup() { # SIGTERM, then SIGKILL whatever has not stopped after 5 s; then the stack
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    # otastream-stack stops PostgreSQL and SeaweedFS (by PID) when its standard input closes.
    if [ -n "$STACK_FD" ]; then
        eval "exec $STACK_FD>&-"
        for _ in $(seq 1 300); do kill -0 "$STACK_PID" 2>/dev/null || break; sleep 0.1; done
    fi
}
trap cleanup EXIT

start_stack() { # PostgreSQL + SeaweedFS for this run; sets STACK_* (not exported)
    [ -n "$STACK_FD" ] && return
    exec {STACK_FD}> >(exec "$STACK" >"$OUT/stack.env" 2>"$OUT/stack.log")
    STACK_PID=$!
    for _ in $(seq 1 600); do
        grep -q '^STACK_READY=1' "$OUT/stack.env" 2>/dev/null && break
        kill -0 "$STACK_PID" 2>/dev/null || { cat "$OUT/stack.log"; exit 1; }
        sleep 0.1
    done
    # shellcheck disable=SC1091
    . "$OUT/stack.env"
    echo "fleet: PostgreSQL + SeaweedFS at $STACK_DATABASE_URL, $STACK_S3_ENDPOINT"
}

start_server() { # name backend: sets SERVER_PID HTTP MQTT READY
    local name=$1 backend=$2 args=() envs=()
    if [ "$backend" = postgres ]; then
        start_stack
        args=(--database-url "$STACK_DATABASE_URL" --object-store "$STACK_OBJECT_STORE" --s3-endpoint "$STACK_S3_ENDPOINT")
        envs=(AWS_ACCESS_KEY_ID="$STACK_AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$STACK_AWS_SECRET_ACCESS_KEY" AWS_REGION="$STACK_AWS_REGION")
    fi
    env "${envs[@]}" "$SERVER" serve --data-dir "$OUT/data-$name" --http 127.0.0.1:0 --https 127.0.0.1:0 \
        --mqtt 127.0.0.1:0 --mqtts 127.0.0.1:0 "${args[@]}" >"$OUT/server-$name.out" 2>"$OUT/server-$name.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 1 300); do
        grep -q '^otastream ready' "$OUT/server-$name.out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server-$name.log"; exit 1; }
        sleep 0.1
    done
    READY=$(grep '^otastream ready' "$OUT/server-$name.out")
    HTTP=$(sed -E 's/.*http=([^ ]+).*/\1/' <<<"$READY")
    MQTT=$(sed -E 's/.*mqtt=([^ ]+).*/\1/' <<<"$READY")
    echo "fleet: $name ($backend) $READY (pid $SERVER_PID)"
}

start_server main "$BACKEND"
DATA_DIR=$OUT/data-main

# The control plane creates the stream when it is mounted; otherwise loadgen writes it into the
# server's data directory through the store.
if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$HTTP/streams")" = 404 ]; then
    SETUP=(--data-dir "$DATA_DIR")
else
    SETUP=(--http "$HTTP")
fi

BROKER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$OUT/mosquitto.conf" <<EOF
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
max_connections -1
max_queued_messages 100000
persistence false
log_dest stderr
EOF
mosquitto -c "$OUT/mosquitto.conf" 2>"$OUT/mosquitto.log" &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
BROKER=127.0.0.1:$BROKER_PORT
sleep 0.5

run() { # name, loadgen flags...
    local name=$1; shift
    echo
    echo "=== $name: $*"
    "$LOADGEN" --quiet --mqtt "$MQTT" "${SETUP[@]}" --server-pid "$SERVER_PID" \
        --duration-limit "$LIMIT" --report "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

blocks_per_s() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blocks_per_s"])' "$1"; }

for s in $SCENARIOS; do
    case $s in
    n1) run n1 --devices "$DEVICES" --image-size "$IMAGE" --blocks-per-request 1 \
            --baseline tcp --baseline mosquitto --broker "$BROKER" --broker-pid "$BROKER_PID" ;;
    n32) run n32 --devices "$DEVICES" --image-size "$IMAGE32" --blocks-per-request 32 --baseline tcp ;;
    idle) run idle --mode idle --devices "$IDLE_DEVICES" --connect-rate 1000 --hold 10 ;;
    half)
        [ -f "$OUT/n1.json" ] || run n1 --devices "$DEVICES" --image-size "$IMAGE"
        # The fleet asks at half of n1's rate, metered evenly over time (--rate; --pace-ms would
        # make the devices ask in millisecond bursts, see loadgen/src/pacer.rs).
        RATE=$(python3 -c "import sys; print(max(1, round(float(sys.argv[1]) / 2)))" "$(blocks_per_s "$OUT/n1.json")")
        run half --devices "$DEVICES" --image-size "$IMAGE" --rate "$RATE" ;;
    faults) run faults --devices "$DEVICES" --image-size "$IMAGE" --loss 1 --reboot 5 --retry-ms 1000 ;;
    ota)
        if "$LOADGEN" --help | grep -q -- 'ota'; then
            run ota --mode ota --devices "$IDLE_DEVICES" --image-size 1MiB --connect-rate 2000 \
                --blocks-per-request "$OTA_N" --retry-ms 10000
        else
            echo "=== ota: skipped (loadgen has no --mode ota yet)"
        fi ;;
    n1pg)
        [ -f "$OUT/n1.json" ] || run n1 --devices "$DEVICES" --image-size "$IMAGE" --blocks-per-request 1
        saved=("$SERVER_PID" "$HTTP" "$MQTT") saved_setup=("${SETUP[@]}")
        start_server pg postgres
        SETUP=(--http "$HTTP")
        run n1pg --devices "$DEVICES" --image-size "$IMAGE" --blocks-per-request 1
        python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["blocks_per_s"]; b=json.load(open(sys.argv[2]))["blocks_per_s"]; print(f"n1pg: PostgreSQL + SeaweedFS {b:.0f} blocks/s vs {a:.0f} ({sys.argv[3]}) = {b/a:.2f}x")' \
            "$OUT/n1.json" "$OUT/n1pg.json" "$BACKEND" | tee "$OUT/n1pg-ratio.txt"
        SERVER_PID=${saved[0]} HTTP=${saved[1]} MQTT=${saved[2]} SETUP=("${saved_setup[@]}") ;;
    spread) run spread --devices "$SPREAD_DEVICES" --image-size 256KiB --connect-rate 2000 \
            --source-addresses 4 ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
done

echo
echo "=== summary ($OUT)"
python3 - "$OUT" $SCENARIOS <<'EOF'
import json, os, sys
out = sys.argv[1]
print(f"{'scenario':<8} {'target':<10} {'done':>11} {'blocks/s':>10} {'MB/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} {'srv dup':>7} {'RSS/dev B':>9} {'procs':>5}")
for s in sys.argv[2:]:
    path = os.path.join(out, f"{s}.json")
    if not os.path.exists(path):
        continue
    doc = json.load(open(path))
    for r in [doc] + doc.get("baselines", []):
        per = r.get("server_rss_per_device_bytes")
        print(f"{s:<8} {r['target']:<10} {r['completed']:>5}/{r['devices']:<5} {r['blocks_per_s']:>10.0f} "
              f"{r['mbytes_per_s']:>8.1f} {r['latency_ms']['p50']:>7.3f} {r['latency_ms']['p99']:>7.2f} "
              f"{r['latency_ms']['max']:>8.1f} {r['server_duplicate_answers']:>7} {'-' if per is None else round(per):>9} {r.get('processes', 1):>5}")
    for k, v in doc.get("ratios", {}).items():
        print(f"{s:<8} otastream {k} = {v:.2f}x")
EOF
