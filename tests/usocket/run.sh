#!/bin/sh
# run.sh - usocket's own test suite (cl-usocket's usocket-test, RT),
# unchanged, on ECL's contrib and on ecl-sock's SB-BSD-SOCKETS face, in one
# run; prints the table and fails when a test that passes on the contrib
# fails on ecl-sock.  The suite names common-lisp.net and 1.2.3.4: it runs
# in a private network namespace (unshare) where the first is 127.0.0.1 and
# nothing can leave the machine; the test naming 1.2.3.4 is skipped.
here=${TEST_SRCDIR:-$(dirname "$0")/..}/usocket
scratch=${TEST_BUILDDIR:-$PWD/tests/scratch}/usocket
ECL=${ECL:-ecl}; export ECL
if [ ! -f /usr/share/common-lisp/source/usocket/usocket-test.asd ]; then
  echo "SKIP: cl-usocket is not installed (scripts/deps.sh installs it)"; exit 77
fi
# A user namespace (-r) lets an ordinary user make the others; root needs
# none, and in a chroot (scripts/second-ecl.sh) the kernel refuses one.
ns="-r -n -m"
if ! unshare $ns true 2>/dev/null; then
  ns="-n -m"
  if [ "$(id -u)" != 0 ] || ! unshare $ns true 2>/dev/null; then
    echo "SKIP: no user/network namespaces here (unshare -r -n -m failed);"
    echo "usocket's suite names outside hosts and is only run where they can be mapped to loopback"
    exit 77
  fi
fi
mkdir -p "$scratch"
rm -f "$scratch/contrib.txt" "$scratch/ecl-sock.txt"
timeout 900 unshare $ns sh "$here/inside.sh" "$here" "$scratch"
status=$?
[ $status -eq 99 ] && { echo "SKIP: could not set up the namespace"; exit 77; }
pass=0 fail=0
printf '%-32s %-8s %-8s\n' "usocket test" contrib ecl-sock
for name in $(cat "$scratch/contrib.txt" "$scratch/ecl-sock.txt" 2>/dev/null | awk '{print $1}' | sort -u); do
  c=$(awk -v n="$name" '$1==n {print $2}' "$scratch/contrib.txt" 2>/dev/null)
  e=$(awk -v n="$name" '$1==n {print $2}' "$scratch/ecl-sock.txt" 2>/dev/null)
  printf '%-32s %-8s %-8s\n' "$name" "${c:--}" "${e:--}"
  if [ "$c" = PASS ] && [ "$e" != PASS ]; then
    echo "  REGRESSION: $name passes on the contrib, not on ecl-sock"; fail=$((fail+1))
  elif [ "$e" = PASS ]; then pass=$((pass+1))
  elif [ "$e" = FAIL ] && [ "$name" = ecl-sock-stream-check ]; then fail=$((fail+1))
  fi
done
grep ' SKIP ' "$scratch/ecl-sock.txt" 2>/dev/null | sed 's/^/skipped: /'
[ -s "$scratch/ecl-sock.txt" ] || { echo "no ecl-sock results"; fail=$((fail+1)); }
[ -s "$scratch/contrib.txt" ] || { echo "no contrib results"; fail=$((fail+1)); }
[ $status -ne 0 ] && fail=$((fail+1))
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
