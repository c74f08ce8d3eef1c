#!/bin/bash
# Builds the Debian package: build-deb/imagesmith_VERSION_amd64.deb, then
# runs lintian on it. One command, from anywhere (doc/install.md):
#
#   packaging/build-deb.sh [BUILD_DIR]     # BUILD_DIR defaults to build-deb/
#
# By default a build directory of its own (tests off), so a developer's
# build/ is left as it is; an existing BUILD_DIR (build/) is reused as it is
# (CPack installs into the package with prefix /usr whatever the build
# directory's CMAKE_INSTALL_PREFIX). Needs cmake, ninja, g++, dpkg-dev (dpkg-shlibdeps)
# and lintian; ./setup.sh installs them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build-deb}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAGESMITH_TESTS=OFF \
    -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
fi
ninja -C "$build" imagesmith imagesmith-agent imagesmith_docs imagesmith_changelog
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls -t "$build"/imagesmith_*_amd64.deb | head -1)
echo "package: $deb"
dpkg-deb --field "$deb" Package Version Depends Recommends
# Errors fail the build; warnings and info are shown.
lintian --fail-on error "$deb"
