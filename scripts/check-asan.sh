#!/bin/sh
# check-asan.sh - the C suites, the concurrency suite and the Lisp tests
# with our C code under AddressSanitizer (issue 17), in a copy of the tree
# of its own (the files git tracks; ./configure --enable-asan, then make
# check-asan), so the normal build stays as it is (and a configured source
# tree allows no second build directory).  .ci/run calls it after
# scripts/test.sh.  Usage: sh scripts/check-asan.sh [COPYDIR]
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${TMPDIR:-/tmp}/ecl-sock-asan.$$}
rm -rf "$build"
mkdir -p "$build"
git -C "$src" ls-files -z | (cd "$src" && xargs -0 tar -cf -) | tar -C "$build" -xf -
cd "$build"
autoreconf -fi >/dev/null 2>&1
./configure --enable-werror --enable-asan >/dev/null
make -j2 >/dev/null
status=0
make -j2 check-asan || status=$?
if [ $status != 0 ]; then
  sh scripts/show-failures.sh .
  echo "check-asan.sh: make check-asan failed"
  exit $status
fi
cd /
rm -rf "$build"
echo "check-asan.sh: every test passed under AddressSanitizer"
