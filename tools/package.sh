#!/usr/bin/env bash
# Build the Debian packages kollega-relay and kollega (.deb, plus -dbgsym
# .ddeb) for this machine's Debian release, into OUTDIR (default: dist/).
#   tools/package.sh [OUTDIR]
# The packages are built from the working tree (tracked and new files, as
# they are now) with the version in CMakeLists.txt, or $KL_DEB_VERSION.
#
# Why dpkg-buildpackage + debhelper (packaging/debian/) rather than CPack's
# DEB generator: debhelper writes the maintainer scripts Debian expects
# (dh_installsystemd: enable the unit with deb-systemd-helper, start or
# restart it only where systemd runs, stop it on removal), computes Depends
# from the libraries the binaries link (dh_shlibdeps), marks /etc files as
# conffiles, strips into -dbgsym packages, compresses man pages and installs
# changelog and copyright; with CPack each of these is ours to write and keep
# right. Both read the same `cmake --install` rules (packaging/CMakeLists.txt).
#
# The package build runs no tests (DEB_BUILD_OPTIONS=nocheck unless you set
# DEB_BUILD_OPTIONS): tools/test.sh runs them; tools/package-test.sh tests
# the packages. lintian checks the result when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 ||
  { echo "package: run it in a git checkout of Kollega" >&2; exit 2; }
tools/deps.sh build-essential debhelper dpkg-dev

version=${KL_DEB_VERSION:-$(sed -n 's/^project(kollega VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)}
[ -n "$version" ] || { echo "package: no project(kollega VERSION ...) in CMakeLists.txt" >&2; exit 1; }
work=$(mktemp -d /tmp/kollega-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/kollega-$version
mkdir -p "$src"
# Tracked and new (not ignored) files as they are in the working tree.
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$src"
cp -r packaging/debian "$src/debian"
# A changelog entry for this build, dated by the last commit so that two
# builds of one commit are the same.
when=$(git log -1 --format=%ct)
commit=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain | grep -q . && echo " plus uncommitted changes" || true)
cat >"$src/debian/changelog" <<EOC
kollega ($version) bookworm; urgency=medium

  * Built by tools/package.sh from commit $commit$dirty.

 -- Kollega maintainers <maintainers@kollega.example>  $(date -R -u -d "@$when")
EOC

echo "== dpkg-buildpackage (kollega $version, commit $commit$dirty)"
(cd "$src" &&
  DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-"nocheck parallel=$(nproc)"} \
  DEB_BUILD_PROFILES=${DEB_BUILD_PROFILES:-nocheck} \
  dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) ||
  { tail -50 "$work/build.log" >&2; echo "package: dpkg-buildpackage failed (log above)" >&2; exit 1; }

if command -v lintian >/dev/null; then
  echo "== lintian"
  lintian --fail-on error --display-level ">=warning" "$work"/*.changes ||
    { echo "package: lintian found errors" >&2; exit 1; }
fi
mkdir -p "$out"
cp "$work"/*.deb "$work"/*.ddeb "$out"/ 2>/dev/null || cp "$work"/*.deb "$out"/
echo "== packages in $out"
(cd "$out" && ls -1 ./*"_${version}_"*)
