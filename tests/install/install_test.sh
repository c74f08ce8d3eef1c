#!/bin/bash
# Checks `cmake --install BUILD --prefix P` (doc/install.md): the layout, the
# installed binary's --version, the bash completion script against the
# binary's own answers (`imagesmith sig image-version cr<TAB>` gives create,
# then its options), the man pages (every command group, rendered by man
# without warnings) and the systemd unit. A run of the installed binary with
# validation is bench.build.quick's job (it builds the example installed).
#
#   tests/install/install_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
p=$(mktemp -d /tmp/imagesmith-install-test.XXXXXX)
trap 'rm -rf "$p"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$p" >/dev/null
for f in bin/imagesmith lib/imagesmith/imagesmith-agent share/doc/imagesmith/README.md \
         share/doc/imagesmith/doc/cli.md share/doc/imagesmith/doc/install.md \
         share/doc/imagesmith/examples/debian12-nginx.json share/doc/imagesmith/copyright \
         share/man/man1/imagesmith.1.gz share/man/man1/imagesmith-sig.1.gz \
         share/man/man1/imagesmith-build.1.gz share/bash-completion/completions/imagesmith \
         share/zsh/vendor-completions/_imagesmith lib/systemd/system/imagesmith.service; do
  [ -e "$p/$f" ] || fail "$f is not installed"
done
[ -x "$p/lib/imagesmith/imagesmith-agent" ] || fail "the agent is not executable"

# --version: the version and the commit.
v=$("$p/bin/imagesmith" --version)
[[ $v =~ ^imagesmith\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ commit\ [0-9a-f]{12}(-dirty)?\)$ ||
   $v =~ \(git\ commit\ unknown\)$ ]] || fail "--version printed '$v'"

# bash completion, as bash runs it on <TAB>.
complete_words() {
  PATH=$p/bin:$PATH bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
    _imagesmith
    printf "%s\n" "${COMPREPLY[@]}"' _ "$p/share/bash-completion/completions/imagesmith" "$@"
}
[ "$(complete_words imagesmith sig image-version cr)" = create ] ||
  fail "sig image-version cr<TAB> gave '$(complete_words imagesmith sig image-version cr)'"
opts=$(complete_words imagesmith sig image-version create "")
for o in --resource-group --gallery-name --gallery-image-definition --gallery-image-version \
         --target-regions --output --help; do
  grep -qx -- "$o" <<<"$opts" || fail "sig image-version create <TAB> lacks $o: $opts"
done
[ "$(complete_words imagesmith sig image-version create --gallery-n)" = --gallery-name ] ||
  fail "--gallery-n<TAB> does not complete"
[ "$(complete_words imagesmith template validate -o ta)" = table ] || fail "-o ta<TAB> is not table"
[ "$(complete_words imagesmith im)" = "$(printf 'image\nimage-template')" ] ||
  fail "im<TAB> gave '$(complete_words imagesmith im)'"
# Every command the binary has completes from its group: the scripts cannot drift.
"$p/bin/imagesmith" __complete bash "" | grep -qx sig || fail "top level lacks sig"

# Man pages: one per top-level group or command, and man renders them cleanly.
tops=$("$p/bin/imagesmith" __complete bash "")
for t in $tops; do
  [ -f "$p/share/man/man1/imagesmith-$t.1.gz" ] || fail "no man page for $t"
done
if command -v man >/dev/null; then
  for page in "$p"/share/man/man1/*.1.gz; do
    warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
    [ -z "$warn" ] || fail "man $(basename "$page"): $warn"
  done
  MANWIDTH=80 man -l "$p/share/man/man1/imagesmith-sig.1.gz" 2>/dev/null |
    grep -q -- "--gallery-image-version" || fail "imagesmith-sig(1) lacks --gallery-image-version"
fi

# The unit runs the installed binary, on /var/lib/imagesmith.
grep -qx "ExecStart=$p/bin/imagesmith serve" "$p/lib/systemd/system/imagesmith.service" ||
  fail "the unit's ExecStart is not $p/bin/imagesmith serve"
grep -qx "Environment=IMAGESMITH_HOME=/var/lib/imagesmith" "$p/lib/systemd/system/imagesmith.service" ||
  fail "the unit's data directory is not /var/lib/imagesmith"
echo "install test passed"
