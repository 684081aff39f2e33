#!/usr/bin/env bash
# Side-by-side: Mosquitto (MQTT QoS 1, persistence off) against Kollega
# (kollega-relay with synchronous=FULL) on the same workload: P publisher ->
# subscriber (sender -> recipient) pairs, W messages in flight per sender,
# B-byte bodies, N messages in all. Prints both throughputs, both latency
# percentiles (send -> ack, send -> delivery) and the ratios.
#
#   tools/compare-mosquitto.sh [-P PAIRS] [-W WINDOW] [-B BYTES] [-N MESSAGES]
#                              [--sync full|normal] [--build DIR] [--json FILE]
#
# Installs what is missing (mosquitto, libmosquitto-dev), builds into
# build/ (or --build DIR), runs mosquitto on a free loopback port with a
# temporary config, then kollega-bench --spawn direct. Exit 0 when both
# runs finished without errors.
set -euo pipefail
cd "$(dirname "$0")/.."

P=100 W=16 B=256 N=200000 SYNC=full BUILD=build JSON_OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    -P|--pairs) P=$2; shift 2 ;;
    -W|--window) W=$2; shift 2 ;;
    -B|--body) B=$2; shift 2 ;;
    -N|--messages) N=$2; shift 2 ;;
    --sync) SYNC=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --json) JSON_OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-mosquitto: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

tools/deps.sh mosquitto libmosquitto-dev
echo "== build ($BUILD: kollega-relay kollega-bench mqtt-bench)" >&2
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target kollega-relay kollega-bench mqtt-bench >/dev/null
[ -x "$BUILD/mqtt-bench" ] || { echo "compare-mosquitto: $BUILD/mqtt-bench was not built (is libmosquitto-dev installed?)" >&2; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kollega-compare-XXXXXX")
mpid=""
cleanup() {
  if [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null; then kill "$mpid"; wait "$mpid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Mosquitto's defaults except: no persistence (as the comparison asks), a
# queue that never drops QoS 1 messages for a subscriber that trails by
# more than 1000 (dropped messages would count as errors), and TCP_NODELAY
# as Kollega uses it (with Nagle small QoS 1 packets wait for delayed ACKs).
cat > "$tmp/mosquitto.conf" <<CONF
persistence false
listener $port 127.0.0.1
allow_anonymous true
max_queued_messages 1000000
set_tcp_nodelay true
log_dest stderr
CONF
mosquitto -c "$tmp/mosquitto.conf" 2>"$tmp/mosquitto.log" &
mpid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), ulimit -n $(ulimit -n)" >&2
echo "== Mosquitto $(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -1) QoS 1, persistence off: P=$P W=$W B=$B N=$N" >&2
mrc=0
"$BUILD/mqtt-bench" --port "$port" --broker-pid "$mpid" -P "$P" -W "$W" -B "$B" -N "$N" --json \
  > "$tmp/mqtt.json" || mrc=$?
kill "$mpid"; wait "$mpid" 2>/dev/null || true; mpid=""

echo "== Kollega, synchronous=$SYNC: kollega-bench --spawn direct -P $P -W $W -B $B -N $N --sync $SYNC" >&2
krc=0
"$BUILD/kollega-bench" --spawn direct --sync "$SYNC" -P "$P" -W "$W" -B "$B" -N "$N" --json \
  > "$tmp/kollega.json" || krc=$?

python3 - "$tmp/mqtt.json" "$tmp/kollega.json" "$JSON_OUT" <<'PY'
import json, sys

def load(path):
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None

m, k, out = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
if m is None or k is None:
    print("compare-mosquitto: a benchmark produced no result (see the messages above)")
    sys.exit(1)

rows = [("throughput (msg/s)", "throughput", 1, "{:,.0f}")]
for h, label in (("ack", "send -> ack"), ("delivery", "send -> delivery")):
    for p in ("p50", "p90", "p99", "max"):
        rows.append(("%s %s (ms)" % (label, p), "%s_%s_us" % (h, p), 1e-3, "{:,.2f}"))
rows += [("errors", "errors", 1, "{:,.0f}"),
         ("server RSS (MiB)", "server_rss_kb", 1 / 1024, "{:,.1f}"),
         ("server CPU (%)", "server_cpu_pct", 1, "{:,.0f}"),
         ("load generator CPU (%)", "bench_cpu_pct", 1, "{:,.0f}")]
print()
print("%-26s %18s %18s %8s" % ("", "Mosquitto QoS 1", "Kollega sync=" + k.get("sync", "?"), "K/M"))
for label, key, scale, fmt in rows:
    mv, kv = m.get(key), k.get(key)
    ms = fmt.format(mv * scale) if isinstance(mv, (int, float)) else "-"
    ks = fmt.format(kv * scale) if isinstance(kv, (int, float)) else "-"
    ratio = "%.2fx" % (kv / mv) if isinstance(mv, (int, float)) and isinstance(kv, (int, float)) and mv else "-"
    print("%-26s %18s %18s %8s" % (label, ms, ks, ratio))
kt, mt = k.get("throughput", 0), m.get("throughput", 0)
print()
print("target >= 100,000 msg/s durable:   %s (%.0f msg/s)" % ("met" if kt >= 100000 else "NOT met", kt))
print("target >= 2x Mosquitto QoS 1:      %s (%.2fx)" % ("met" if mt and kt >= 2 * mt else "NOT met", kt / mt if mt else 0))
if out:
    with open(out, "w") as f:
        json.dump({"mosquitto": m, "kollega": k}, f)
        f.write("\n")
PY
[ "$mrc" -eq 0 ] && [ "$krc" -eq 0 ]
