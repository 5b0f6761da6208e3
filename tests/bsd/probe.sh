#!/bin/sh
# probe.sh - the SB-BSD-SOCKETS face compared with SBCL itself: runs
# tests/bsd/probe-exports.lisp on SBCL (sbcl --script) and on ECL with ecl-sock's
# face, and fails on any difference not listed in tests/bsd/probe-allowed.txt
# (each listed difference is explained in doc/bsd.texi, "Differences from
# SBCL").  Skips (77) when sbcl is missing.
here=${TEST_SRCDIR:-$(dirname "$0")/..}
scratch=${TEST_BUILDDIR:-$PWD/tests/scratch}/probe
command -v sbcl >/dev/null || { echo "SKIP: sbcl is missing (scripts/deps.sh installs it): nothing to compare with"; exit 77; }
mkdir -p "$scratch"
timeout 120 sbcl --script "$here/bsd/probe-exports.lisp" 2>/dev/null | grep ' => ' >"$scratch/sbcl.txt"
timeout 120 "${ECL:-ecl}" -norc -load "$here/lisp/harness.lisp" -shell "$here/bsd/probe-exports.lisp" 2>&1 | grep ' => ' >"$scratch/ecl.txt"
for f in sbcl ecl; do
  [ "$(wc -l <"$scratch/$f.txt")" -gt 100 ] || { echo "the $f run printed too little:"; cat "$scratch/$f.txt"; echo "0 passed, 1 failed"; exit 1; }
done
grep -v '^#' "$here/bsd/probe-allowed.txt" | grep -v '^ *$' >"$scratch/allowed.txt"
pass=0 fail=0
labels=$(cat "$scratch/sbcl.txt" "$scratch/ecl.txt" | sed 's/ => .*//' | sort -u)
IFS='
'
for label in $labels; do
  s=$(awk -v l="$label" 'index($0, l " => ") == 1 { sub(/^.* => /, ""); print; exit }' "$scratch/sbcl.txt")
  e=$(awk -v l="$label" 'index($0, l " => ") == 1 { sub(/^.* => /, ""); print; exit }' "$scratch/ecl.txt")
  if [ "$s" = "$e" ]; then pass=$((pass+1))
  elif grep -F -x -q -e "$label" "$scratch/allowed.txt"; then
    echo "allowed: $label: SBCL ${s:-(absent)}; ecl-sock ${e:-(absent)}"; pass=$((pass+1))
  else
    echo "FAIL $label: SBCL ${s:-(absent)}; ecl-sock ${e:-(absent)}"; fail=$((fail+1))
  fi
done
for label in $(cat "$scratch/allowed.txt"); do
  s=$(awk -v l="$label" 'index($0, l " => ") == 1 { sub(/^.* => /, ""); print; exit }' "$scratch/sbcl.txt")
  e=$(awk -v l="$label" 'index($0, l " => ") == 1 { sub(/^.* => /, ""); print; exit }' "$scratch/ecl.txt")
  [ "$s" = "$e" ] && echo "note: allowed difference no longer differs: $label"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
