#!/bin/sh
# harness-selftest.sh - the Lisp test harness must fail a file whose test
# hangs (its watchdog ends the process from another thread, where ECL's
# EXT:QUIT would exit with status 0) and must report the skip of a skipped
# file as Automake's SKIP (77).  Run by make check.
set -u
srcdir=${srcdir:-$(dirname "$0")/..}
dir=${TMPDIR:-/tmp}/harness-selftest.$$
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
cat > "$dir/hang.lisp" <<'LISP'
(defpackage "T-HANG" (:use "CL" "HARNESS"))
(in-package "T-HANG")
(deftest passes () (is t))
(deftest hangs (:timeout 1) (sleep 60))
LISP
cat > "$dir/skip.lisp" <<'LISP'
(defpackage "T-SKIP" (:use "CL" "HARNESS"))
(in-package "T-SKIP")
(deftest never-run () (is nil))
(skip-test-file "a test of skipping")
LISP
passed=0 failed=0
TEST_BUILDDIR=$dir sh "$srcdir/tests/lisp/run-test" "$dir/hang.lisp" > "$dir/hang.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "^1 passed, 1 failed$" "$dir/hang.out"; then
  passed=$((passed+1)); echo "PASS hung test fails the file (exit $rc)"
else
  failed=$((failed+1)); echo "FAIL hung test: exit $rc"; cat "$dir/hang.out"
fi
TEST_BUILDDIR=$dir sh "$srcdir/tests/lisp/run-test" "$dir/skip.lisp" > "$dir/skip.out" 2>&1
rc=$?
if [ $rc -eq 77 ] && grep -q "^SKIP: a test of skipping$" "$dir/skip.out"; then
  passed=$((passed+1)); echo "PASS skipped file exits 77 and says why"
else
  failed=$((failed+1)); echo "FAIL skip: exit $rc"; cat "$dir/skip.out"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
