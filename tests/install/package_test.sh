#!/bin/bash
# The Debian package from this build directory (CPack, as packaging/build-deb.sh
# makes it, into a temp dir): lintian reports no errors, the Depends name the
# programs imagesmith runs, and the files are where doc/install.md says.
# Installing it on a clean Debian 12 tree is packaging/test-clean-install.sh
# (too slow for ctest).
#
#   tests/install/package_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
out=$(mktemp -d /tmp/imagesmith-package-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack.log" 2>&1 ||
  { cat "$out/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$out"/imagesmith_*_amd64.deb)
depends=$(dpkg-deb -f "$deb" Depends)
for p in mmdebstrap qemu-system-x86 qemu-utils ovmf seabios grub-pc-bin grub-efi-amd64-bin \
         e2fsprogs gdisk mtools dosfstools libc6 libsqlite3-0 libssl3 libcurl4; do
  grep -qE "(^|, )$p( |,|$)" <<<"$depends" || fail "Depends lacks $p: $depends"
done
for p in mkosi casync build-essential cmake; do
  ! grep -qE "(^|, )$p( |,|$)" <<<"$depends" || fail "Depends names $p, which only development needs"
done
files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/imagesmith ./usr/lib/imagesmith/imagesmith-agent \
         ./usr/lib/systemd/system/imagesmith.service ./usr/share/man/man1/imagesmith.1.gz \
         ./usr/share/doc/imagesmith/copyright ./usr/share/doc/imagesmith/changelog.gz \
         ./usr/share/doc/imagesmith/examples/debian12-nginx.json; do
  grep -qx -- "$f" <<<"$files" || fail "the package lacks $f"
done
mkdir "$out/x"
dpkg-deb -x "$deb" "$out/x"
grep -qx "ExecStart=/usr/bin/imagesmith serve" "$out/x/usr/lib/systemd/system/imagesmith.service" ||
  fail "the unit does not run /usr/bin/imagesmith"
# The package enables nothing: no maintainer scripts at all.
dpkg-deb -e "$deb" "$out/control"
for s in postinst preinst prerm postrm; do
  [ ! -e "$out/control/$s" ] || fail "the package has a $s script"
done
lintian --fail-on error "$deb" || fail "lintian reports errors"
echo "package test passed: $(basename "$deb")"
