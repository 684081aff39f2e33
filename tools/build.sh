#!/usr/bin/env bash
# Configure and build into a build directory.
#   tools/build.sh [BUILD_DIR] [extra cmake args...]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
