#!/bin/sh
# show-failures.sh DIR - after a failed `make check` (or the `make check`
# inside `make distcheck`), print the end of the log of every test under
# DIR whose result was FAIL or ERROR, so that a CI transcript, which keeps
# only the end of the output, says why.
# Owns: finding and printing failed tests' logs.  Must not: run tests.
dir=${1:-.}
find "$dir" -name '*.trs' 2>/dev/null | while read -r trs; do
  if grep -q '^:test-result: \(FAIL\|ERROR\)' "$trs"; then
    log=${trs%.trs}.log
    echo "==== end of $log ===="
    tail -n "${SHOW_LINES:-40}" "$log"
  fi
done
