#!/usr/bin/env bash
# Before and after in one run: the same kollega-bench against two relay
# binaries, A and B, on the same machine, interleaved (A B A B ...) so that
# a change in the machine's load hits both alike, for each of the workloads
# direct, latency, group, broadcast and connect. Prints one table with the
# median of each side and the ratio B/A.
#
#   tools/bench-ab.sh [-r ROUNDS] [-b BENCH] RELAY_A RELAY_B
#
# RELAY_A and RELAY_B are kollega-relay binaries (e.g. one built from an
# older commit in a git worktree, one from this tree). BENCH defaults to
# build/kollega-bench. ROUNDS (default 3) runs of each workload per side.
# Needs python3 for the table. Takes about ROUNDS x 50 s.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
bench=build/kollega-bench
while getopts "r:b:h" o; do
    case $o in
    r) rounds=$OPTARG ;;
    b) bench=$OPTARG ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -ne 2 ]; then
    echo "usage: tools/bench-ab.sh [-r ROUNDS] [-b BENCH] RELAY_A RELAY_B" >&2
    exit 2
fi
a=$(readlink -f "$1")
b=$(readlink -f "$2")
for x in "$a" "$b" "$bench"; do
    [ -x "$x" ] || { echo "bench-ab: $x is not an executable" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# name|kollega-bench arguments|the JSON field that is the result|higher is better (1) or not (0)
workloads=(
    "direct (msg/s)|direct -P 100 -W 16 -B 256 -N 300000|throughput|1"
    "latency p99 (us)|latency -R 10000 -T 8|ack_p99_us|0"
    "group (deliv/s)|group -P 20 -G 10 -S 2 -N 200000|deliveries_per_s|1"
    "broadcast (deliv/s)|broadcast -S 1000 -N 1000|deliveries_per_s|1"
    "connect (/s)|connect -C 100 -T 5|throughput|1"
)
echo "bench-ab: $(nproc) cores, $rounds rounds; A=$a B=$b" >&2
for ((r = 1; r <= rounds; r++)); do
    for i in "${!workloads[@]}"; do
        IFS='|' read -r name args field _ <<<"${workloads[$i]}"
        for side in A B; do
            bin=$a
            [ "$side" = B ] && bin=$b
            echo "bench-ab: round $r/$rounds $name $side" >&2
            # shellcheck disable=SC2086
            if ! "$bench" --spawn --relay-bin "$bin" --json --quiet $args >>"$out/$i.$side"; then
                echo "bench-ab: $name on $side failed" >&2
                exit 1
            fi
        done
    done
done
python3 - "$out" "$rounds" "${workloads[@]}" <<'EOF'
import json, statistics, sys
out, rounds, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("%-20s %14s %14s %7s  %s" % ("workload", "A (median)", "B (median)", "B/A", "runs A | runs B"))
for i, row in enumerate(rows):
    name, args, field, higher = row.split("|")
    vals = {}
    for side in "AB":
        with open("%s/%d.%s" % (out, i, side)) as f:
            vals[side] = [json.loads(l)[field] for l in f if l.strip()]
    ma, mb = statistics.median(vals["A"]), statistics.median(vals["B"])
    ratio = mb / ma if ma else float("nan")
    runs = " ".join("%.0f" % v for v in vals["A"]) + " | " + " ".join("%.0f" % v for v in vals["B"])
    print("%-20s %14.0f %14.0f %7.3f  %s" % (name, ma, mb, ratio, runs))
    # The relay's CPU time per message sent (from /proc, as kollega-bench
    # reports it): steadier than throughput on a busy machine.
    cpu = {}
    for side in "AB":
        with open("%s/%d.%s" % (out, i, side)) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        cpu[side] = [r["server_cpu_pct"] / 100 * r["elapsed_s"] * 1e6 / r["sent_ok"]
                     for r in rows if r.get("sent_ok") and r.get("server_cpu_pct")]
    if cpu["A"] and cpu["B"]:
        ca, cb = statistics.median(cpu["A"]), statistics.median(cpu["B"])
        print("%-20s %14.1f %14.1f %7.3f" % ("  relay CPU us/send", ca, cb, cb / ca if ca else 0))
print("(per second rows: higher is better; latency: send -> sent p99 at 10,000 msg/s"
      " offered, in microseconds, lower is better; relay CPU: lower is better)")
EOF
