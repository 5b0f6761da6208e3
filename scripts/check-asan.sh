#!/bin/sh
# check-asan.sh - the C suites, the concurrency suite and the Lisp tests
# with our C code under AddressSanitizer (issue 17), in a build tree of its
# own (./configure --enable-asan, then make check-asan), so the normal
# build stays as it is.  .ci/run calls it after scripts/test.sh; about
# 5 minutes on 2 cores.  Usage: sh scripts/check-asan.sh [BUILDDIR]
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${TMPDIR:-/tmp}/ecl-sock-asan.$$}
[ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
rm -rf "$build"
mkdir -p "$build"
cd "$build"
"$src/configure" --enable-werror --enable-asan >/dev/null
make -j2 >/dev/null
status=0
make -j2 check-asan || status=$?
if [ $status != 0 ]; then
  sh "$src/scripts/show-failures.sh" .
  echo "check-asan.sh: make check-asan failed"
  exit $status
fi
cd /
rm -rf "$build"
echo "check-asan.sh: every test passed under AddressSanitizer"
