#!/usr/bin/env bash
# README command 2: install what is missing, build with -Werror, run every
# test (unit + integration with real processes), then the same suite again
# in an ASan+UBSan build (-fno-sanitize-recover=all).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
jobs=$(nproc)

echo "== build (gcc, -Werror)"
CC=${CC:-gcc} tools/build.sh build
echo "== tests"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== build (ASan+UBSan)"
CC=${CC:-gcc} tools/build.sh build-asan -DKOLLEGA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under ASan+UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs")

echo "== fuzzing (libFuzzer, ASan+UBSan): every target over its corpus + 60 s of new inputs"
tools/fuzz.sh 60
echo "== all tests passed"
