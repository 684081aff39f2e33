#!/usr/bin/env bash
# One command, one number: install what is missing, build kollega-relay and
# kollega-bench (RelWithDebInfo) into build/ (or $KOLLEGA_BUILD), raise the
# open-file limit to the hard limit, and run kollega-bench --spawn with the
# given workload and options, e.g.
#   tools/bench.sh direct -P 100 -W 64 -N 200000
#   tools/bench.sh latency -R 10000 -T 10
#   tools/bench.sh idle -C 15000 -T 10
#   tools/bench.sh connect -C 100 -T 10
# (kollega-bench --help lists every option.)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KOLLEGA_BUILD:-build}
tools/deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target kollega-relay kollega-bench >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), ulimit -n $(ulimit -n)" >&2
exec "$build/kollega-bench" --spawn "$@"
