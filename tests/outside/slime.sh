#!/bin/sh
# slime.sh - SLIME (Debian's slime, Emacs in batch mode) against Swank
# (Debian's cl-swank) on ecl-sock's SB-BSD-SOCKETS face: a session that
# evaluates, completes and captures output (tests/outside/slime.el), an
# Emacs that disconnects in the middle of an evaluation, then a second
# session on the same server; the server's descriptors are counted at start
# and end.  Everything bounded by timeout; the server stops by itself.
here=${TEST_SRCDIR:-$(dirname "$0")/..}
scratch=${TEST_BUILDDIR:-$PWD/tests/scratch}/slime.$$
command -v emacs >/dev/null || { echo "SKIP: emacs is missing (scripts/deps.sh installs emacs-nox)"; exit 77; }
ls -d /usr/share/emacs/site-lisp/elpa/slime-* >/dev/null 2>&1 || { echo "SKIP: slime is not installed (scripts/deps.sh installs slime)"; exit 77; }
[ -f /usr/share/common-lisp/source/slime/swank.asd ] || { echo "SKIP: cl-swank is not installed"; exit 77; }
mkdir -p "$scratch"
SWANK_PORT_FILE=$scratch/port SWANK_STOP_FILE=$scratch/stop; export SWANK_PORT_FILE SWANK_STOP_FILE
timeout -k 5 400 "${ECL:-ecl}" -norc -load "$here/lisp/harness.lisp" -load "$here/outside/load.lisp" \
  -load "$here/outside/swank-server.lisp" >"$scratch/server.log" 2>&1 &
server=$!
trap 'touch "$SWANK_STOP_FILE"; sleep 1; kill $server 2>/dev/null; rm -rf "$scratch"' EXIT
i=0
while ! grep -q '^[0-9]' "$SWANK_PORT_FILE" 2>/dev/null && [ $i -lt 3000 ] && kill -0 $server 2>/dev/null; do sleep 0.1; i=$((i+1)); done
[ -f "$SWANK_PORT_FILE" ] || { cat "$scratch/server.log"; echo "Swank did not start"; echo "0 passed, 1 failed"; exit 1; }
grep -E "^(outside|swank):" "$scratch/server.log"
port=$(cat "$SWANK_PORT_FILE")
fail=0
echo "-- session 1"
timeout -k 5 150 emacs -Q --batch -l "$here/outside/slime.el" "$port" full || fail=$((fail+1))
echo "-- session 2: disconnects mid-evaluation"
timeout -k 5 100 emacs -Q --batch -l "$here/outside/slime.el" "$port" disconnect || fail=$((fail+1))
sleep 4
echo "-- session 3: the same server again"
timeout -k 5 150 emacs -Q --batch -l "$here/outside/slime.el" "$port" full || fail=$((fail+1))
touch "$SWANK_STOP_FILE"
wait $server; status=$?
grep -E "^swank:" "$scratch/server.log" | tail -1
[ $status -eq 0 ] || { echo "the Swank server ended with $status"; tail -20 "$scratch/server.log"; fail=$((fail+1)); }
set -- $(grep "descriptors at start" "$scratch/server.log" | sed 's/[^0-9 ]//g')
if [ "$#" -ge 2 ] && [ "$2" -le "$1" ]; then echo "PASS no descriptor left in the server"
else echo "FAIL descriptors: $*"; fail=$((fail+1)); fi
[ $fail -eq 0 ] && echo "3 sessions passed, 0 failed" || echo "0 passed, $fail failed"
[ $fail -eq 0 ]
