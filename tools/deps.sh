#!/usr/bin/env bash
# Install what is missing to build and test Kollega on Debian 12 (bookworm).
# Uses sudo only when not root. Safe to run again: it installs nothing present.
set -euo pipefail

pkgs=(gcc make cmake pkg-config libsodium-dev libuv1-dev libprotobuf-c-dev protobuf-c-compiler
      libsqlite3-dev libcmocka-dev python3 mount libinih-dev scdoc groff-base "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
