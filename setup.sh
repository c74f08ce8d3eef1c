#!/usr/bin/env bash
# imagesmith setup: installs every Debian package the project needs, builds,
# and optionally runs the main job or the test suite.
#
#   ./setup.sh          install packages and build
#   ./setup.sh main     ... then run the main job (build the example image)
#   ./setup.sh test     ... then run every test
#
# Safe to run again: apt-get only installs what is missing and the build is
# incremental. Needs root (or sudo) for the package install.
set -euo pipefail
cd "$(dirname "$0")"

# Keep this list in one place; doc/development.md explains each group.
PACKAGES=(
  # toolchain and libraries
  build-essential cmake ninja-build g++ clang libclang-rt-14-dev pkg-config
  libgtest-dev libgmock-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev libzstd-dev zlib1g-dev
  # disks, filesystems, bootloaders, virtual machines
  qemu-utils qemu-system-x86 ovmf seabios grub-pc-bin grub-efi-amd64-bin
  mtools dosfstools e2fsprogs fdisk gdisk
  openssh-client  # ssh-keygen: SSH host keys for validation VMs under TCG (doc/vm.md)
  # building Debian trees
  mmdebstrap uidmap
  # the customizer sandbox's boundary (doc/sandbox.md): its seccomp filter and user-mode network
  libseccomp-dev passt
  # peers the benchmarks compare against
  casync mkosi
  wrk nginx  # bench/api: load generator and the static-file peer
  # the OpenAPI linter (Redocly CLI, tests/openapi) and the web console's
  # bundler and browser tests (console/) run on node; npm comes with it or
  # from Debian's npm package (install_npm)
  nodejs
  chromium  # the browser the console's tests drive (doc/console.md)
  # used by the tests
  python3 curl jq busybox-static time
  # the Debian package: CPack uses dpkg-shlibdeps (dpkg-dev), checked by lintian;
  # man renders the generated man pages in tests/install (doc/install.md)
  dpkg-dev lintian man-db
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_packages() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  log "apt-get update"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${#missing[@]} packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    log "all ${#PACKAGES[@]} packages already installed"
  fi
}

# Node tools the tests use, into project-local node_modules from the
# checked-in lockfile (npm ci), only when the lockfile changed.
# console/: esbuild (the build bundles the console with it and embeds it in
# the binary), playwright-core and axe-core (its browser tests). Playwright
# never downloads a browser: the tests drive Debian's chromium.
install_node_tools() {
  local dir what
  for dir in tests/openapi console; do
    what="the OpenAPI linter"
    [ $dir = console ] && what="the web console's bundler and browser tests"
    if [ ! -f $dir/node_modules/.package-lock.json ] ||
       [ $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]; then
      log "npm ci in $dir ($what)"
      PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix $dir --no-audit --no-fund \
        --loglevel=error >/dev/null
    fi
  done
}

build() {
  log "building (build/)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C build
}

run_tests() {
  log "running the test suite"
  # Base images built by one test are shared by the others in this run only,
  # so a stale cache can never make a test pass.
  IMAGESMITH_TEST_CACHE=$(mktemp -d /tmp/imagesmith-test-cache.XXXXXX)
  export IMAGESMITH_TEST_CACHE
  trap 'rm -rf "$IMAGESMITH_TEST_CACHE"' EXIT
  # Unit and end-to-end tests, two at a time (the machine has two cores).
  (cd build && ctest --output-on-failure -j2 --timeout 1500)
}

run_main() {
  log "main job: validating the example templates"
  ./build/imagesmith template validate examples/*.json
  log "main job: building examples/debian12-nginx.json"
  ./build/imagesmith build examples/debian12-nginx.json
}

# The customizer sandbox maps root inside onto this subordinate id range
# (doc/sandbox.md); nothing else on the host may use it.
subordinate_ids() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  for f in /etc/subuid /etc/subgid; do
    if ! grep -q '^imagesmith:' "$f" 2>/dev/null; then
      log "adding imagesmith:1879048192:65536 to $f"
      echo "imagesmith:1879048192:65536" | "${sudo[@]}" tee -a "$f" >/dev/null
    fi
  done
}

# qemu drops to this user once it has opened its files (doc/vm.md).
qemu_user() {
  if ! getent passwd imagesmith-qemu >/dev/null; then
    log "adding the system user imagesmith-qemu (validation VMs run as it)"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    "${sudo[@]}" useradd --system --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --user-group imagesmith-qemu
  fi
}

# A nodejs package that bundles npm (not Debian's) conflicts with Debian's
# npm package, so npm is installed only when the command is missing.
install_npm() {
  if ! command -v npm >/dev/null; then
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    log "installing npm"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      npm >/dev/null
  fi
}

install_packages
install_npm
subordinate_ids
qemu_user
install_node_tools
build
case "${1:-}" in
  "") ;;
  main) run_main ;;
  test) run_tests ;;
  *) echo "usage: $0 [main|test]" >&2; exit 2 ;;
esac
