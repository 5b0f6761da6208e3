#!/bin/sh
# summary.sh - add up the results of every test log of `make check`: the
# Lisp runners' "N passed, N failed" lines and Check's "Checks: N,
# Failures: N, Errors: N" lines, and print the totals as one such line.
passed=0; failed=0
for log in $(find tests -name '*.log' ! -name test-suite.log 2>/dev/null); do
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    passed=$((passed + p)); failed=$((failed + f)); continue
  fi
  line=$(grep -E 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    fl=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    er=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    passed=$((passed + n - fl - er)); failed=$((failed + fl + er)); continue
  fi
  # a test that died before its summary line counts as one failure
  grep -q '^FAIL\|^ERROR' "${log%.log}.trs" 2>/dev/null && failed=$((failed + 1))
done
echo "$passed passed, $failed failed"
