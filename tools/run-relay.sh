#!/usr/bin/env bash
# README command 1: install what is missing, build, and start a relay on its
# embedded defaults (data in $KOLLEGA_RELAY_DATA or ~/.local/share/kollega-relay,
# listening on 127.0.0.1:7447). Extra arguments go to `kollega-relay serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh build
exec build/kollega-relay serve "$@"
