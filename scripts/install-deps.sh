#!/usr/bin/env bash
# Installs, with apt-get, only the Debian packages raftq's build and tests need that are missing.
# Idempotent: a second run installs nothing and prints nothing but its summary line.
# Usage: scripts/install-deps.sh [--quiet]
set -euo pipefail

quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1

# package -> a file whose presence shows the package is installed
declare -A probe=(
  [check]=/usr/include/check.h
  [pkg-config]=/usr/bin/pkg-config
  [lcov]=/usr/bin/lcov
  [clang]=/usr/bin/clang
  [libclang-rt-14-dev]=/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a
  [spin]=/usr/bin/spin
  [make]=/usr/bin/make
  [gcc]=/usr/bin/gcc
)

missing=()
for pkg in check pkg-config lcov clang libclang-rt-14-dev spin make gcc; do
  [ -e "${probe[$pkg]}" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  [ $quiet -eq 1 ] || echo "install-deps: all dependencies present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
