#!/bin/sh
# inside.sh - run by run.sh inside a private user+network+mount namespace
# (only a loopback interface; nothing can leave this machine).  Maps
# common-lisp.net (the host usocket's tests name) to 127.0.0.1, serves HTTP
# there from tests/usocket/http-stub.lisp, runs usocket's suite with ECL's
# contrib and with ecl-sock, and prints the table.  The suites run without
# CAP_NET_BIND_SERVICE, as an ordinary user would (operation-not-permitted
# test).
set -u
here=$1 scratch=$2
ip link set lo up || exit 99
printf '127.0.0.1 localhost common-lisp.net\n::1 localhost ip6-localhost\n' > "$scratch/hosts"
printf 'nameserver 127.0.0.1\n' > "$scratch/resolv.conf"
mount --bind "$scratch/hosts" /etc/hosts || exit 99
mount --bind "$scratch/resolv.conf" /etc/resolv.conf || exit 99
rm -f "$scratch/ready"
PORT=80 READY="$scratch/ready" LIFETIME=600 "$ECL" -norc -shell "$here/http-stub.lisp" \
  > "$scratch/stub.log" 2>&1 &
stub=$!
i=0
while [ ! -f "$scratch/ready" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
[ -f "$scratch/ready" ] || { echo "http stub did not start"; cat "$scratch/stub.log"; exit 99; }
status=0
for mode in contrib ecl-sock; do
  XDG_CACHE_HOME="$scratch/cache-$mode" MODE=$mode OUT="$scratch/$mode.txt" \
    setpriv --bounding-set -net_bind_service -- \
    "$ECL" -norc -shell "$here/suite.lisp" > "$scratch/$mode.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then echo "usocket suite under $mode exited $rc:"; tail -20 "$scratch/$mode.log"; status=1; fi
done
kill $stub 2>/dev/null
wait $stub 2>/dev/null
exit $status
