#!/usr/bin/env bash
# Run every libFuzzer target (tests/fuzz/fuzz_<target>.c) under ASan+UBSan:
# first over its committed corpus (tests/fuzz/corpus/<target>/), then for
# SECONDS of new inputs, two targets at a time. New inputs go to a scratch
# directory (build-fuzz/run/), never into the committed corpus. Fails if any
# target crashes, leaks, times out or trips a sanitizer; the reproducer is
# then in build-fuzz/run/artifacts/ (add it to the corpus as crash-<name>).
#
#   tools/fuzz.sh [SECONDS]     (default 60; CI runs 60, `tools/fuzz.sh 3600` is the long run)
#
# KL_FUZZ_DIR picks another build directory (two runs at once must not
# share one); KL_FUZZ_JOBS the number of targets run at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
case $secs in
  '' | *[!0-9]*) echo "usage: tools/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
par=${KL_FUZZ_JOBS:-2}
dir=${KL_FUZZ_DIR:-build-fuzz}

tools/deps.sh clang libclang-rt-14-dev
echo "== build (clang, libFuzzer + ASan+UBSan) in $dir"
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DKOLLEGA_FUZZ=ON -DKOLLEGA_WERROR=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for f in tests/fuzz/fuzz_*.c; do
  t=${f#tests/fuzz/fuzz_}
  t=${t%.c}
  case $t in
  common | relay | client) ;; # fixture libraries of the targets (tests/fuzz/CMakeLists.txt)
  *) targets+=("$t") ;;
  esac
done
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

# Largest input per target: room for the biggest meaningful input (whole
# frames, states with skipped keys, sealed bodies) without slowing the
# search down with megabytes of noise.
max_len() {
  case $1 in
    addr | noise) echo 1024 ;;
    sealed) echo 4096 ;;
    dispatch | ratchet) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

run=$dir/run
rm -rf "$run"
mkdir -p "$run/artifacts" "$run/tmp"
export TMPDIR=$(cd "$run/tmp" && pwd) # KL_FUZZ_DIR may be relative or absolute
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_one() {
  local t=$1 rc=0
  mkdir -p "$run/new/$t"
  "$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len="$(max_len "$t")" \
    -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1 \
    -artifact_prefix="$run/artifacts/$t-" "$run/new/$t" "tests/fuzz/corpus/$t" \
    >"$run/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$run/$t.rc"
}

echo "== fuzzing ${#targets[@]} targets, ${secs}s each, $par at a time"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do wait -n || true; done
  run_one "$t" &
done
wait

failed=0
printf '%-10s %-6s %12s %10s %8s\n' target result execs exec/s corpus
for t in "${targets[@]}"; do
  rc=$(cat "$run/$t.rc" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/$t.log" 2>/dev/null | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run/$t.log" 2>/dev/null | tail -1)
  units=$(find "tests/fuzz/corpus/$t" "$run/new/$t" -type f 2>/dev/null | wc -l)
  result=ok
  if [ "$rc" != 0 ]; then result=FAIL; failed=1; fi
  printf '%-10s %-6s %12s %10s %8s\n' "$t" "$result" "${execs:-?}" "${speed:-?}" "$units"
done
if [ "$failed" != 0 ]; then
  for t in "${targets[@]}"; do
    if [ "$(cat "$run/$t.rc" 2>/dev/null || echo 1)" != 0 ]; then
      echo "---- $t ($run/$t.log, last 40 lines)"
      tail -n 40 "$run/$t.log" 2>/dev/null || echo "(no log)"
    fi
  done
  echo "== fuzzing FAILED; reproducers: $(ls "$run/artifacts" 2>/dev/null | tr '\n' ' ')" >&2
  exit 1
fi
echo "== fuzzing passed"
