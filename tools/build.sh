#!/usr/bin/env bash
# Configure and build into a build directory, with warnings as errors
# (KOLLEGA_WERROR: our own builds and CI fail on any warning; a plain
# `cmake` build, as a packager or user runs it, does not).
#   tools/build.sh [BUILD_DIR] [extra cmake args...]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKOLLEGA_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
