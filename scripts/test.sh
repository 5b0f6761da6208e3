#!/bin/sh
# test.sh - the whole test suite from a fresh checkout: install what is
# missing, build with warnings as errors, run `make check` (Check suites and
# Lisp tests), print one "N passed, N failed" line, then `make distcheck`.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure --enable-werror
make -j2
status=0
make -j2 check || status=$?
sh scripts/summary.sh
[ $status = 0 ] || { sh scripts/show-failures.sh .; echo "test.sh: make check failed"; exit $status; }
make -j2 distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror || {
  status=$?
  sh scripts/show-failures.sh "$(ls -d ecl-sock-*/ 2>/dev/null | head -n 1)"
  echo "test.sh: make distcheck failed"; exit $status; }
echo "test.sh: all tests passed and distcheck succeeded"
