#!/bin/sh
# harness-selftest.sh - the Lisp test harness must fail a file whose test
# hangs (its watchdog ends the process from another thread, where ECL's
# EXT:QUIT would exit with status 0) and must report the skip of a skipped
# file as Automake's SKIP (77); an error in a thread a test spawned must
# fail that test, naming the thread and the error, whether the test joins
# the thread or not, unless the test takes the error as a result (JOIN
# :ERROR-OK).  Run by make check.
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
cat > "$dir/thread.lisp" <<'LISP'
(defpackage "T-THREAD" (:use "CL" "HARNESS"))
(in-package "T-THREAD")
(deftest not-joined ()
  (let ((th (spawn "quiet thread" (lambda () (error "lost in a thread")))))
    (loop while (mp:process-active-p th) do (sleep 0.01))
    (is t)))
(deftest joined ()
  (join (spawn "joined thread" (lambda () (error "seen by join"))))
  (is t))
(deftest error-taken ()
  (let ((r (join (spawn "expected" (lambda () (error "wanted"))) :error-ok t)))
    (is (and (eq (first r) :error) (search "wanted" (princ-to-string (second r)))))))
(deftest values-returned ()
  (is (equal (join (spawn "fine" (lambda () (values 1 2)))) '(1 2))))
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
TEST_BUILDDIR=$dir sh "$srcdir/tests/lisp/run-test" "$dir/thread.lisp" > "$dir/thread.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "^2 passed, 2 failed$" "$dir/thread.out" \
   && grep -q '^FAIL NOT-JOINED: thread "quiet thread" failed: SIMPLE-ERROR: lost in a thread$' "$dir/thread.out" \
   && grep -q '^FAIL JOINED: thread "joined thread" failed: SIMPLE-ERROR: seen by join$' "$dir/thread.out" \
   && grep -q '^PASS ERROR-TAKEN$' "$dir/thread.out"; then
  passed=$((passed+1)); echo "PASS a spawned thread's error fails its test (exit $rc)"
else
  failed=$((failed+1)); echo "FAIL spawned thread's error: exit $rc"; cat "$dir/thread.out"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
