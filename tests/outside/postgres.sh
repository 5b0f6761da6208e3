#!/bin/sh
# postgres.sh - Postmodern (Debian's cl-postmodern, unchanged, through ASDF)
# on ecl-sock's SB-BSD-SOCKETS face against a throwaway PostgreSQL cluster
# made for this run (tests/outside/pg-cluster.sh: 127.0.0.1 and ::1 at a
# port the kernel gave, scram-sha-256 logins, Unix socket; stopped and
# removed on every exit); the Lisp side is bounded (timeout).  Runs
# tests/outside/postmodern.lisp.
# Owns: the test's run.  Must not: touch a system cluster or port 5432.
here=${TEST_SRCDIR:-$(dirname "$0")/..}
. "$here/outside/pg-cluster.sh"
pg_cluster_check || { echo "SKIP: $pg_why"; exit 77; }
if [ ! -f /usr/share/common-lisp/source/postmodern/postmodern.asd ]; then
  echo "SKIP: Postmodern is not installed (scripts/deps.sh installs cl-postmodern)"; exit 77
fi
pg_cluster_start || exit 1
# a port nobody listens on, for the refused connection
refused=$(python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGTEST_PORT=$pg_port PGTEST_REFUSED_PORT=$refused PGTEST_SOCKET_DIR=$pg_dir
export PGTEST_PORT PGTEST_REFUSED_PORT PGTEST_SOCKET_DIR
timeout -k 5 600 "${ECL:-ecl}" -norc -load "$here/lisp/harness.lisp" -load "$here/outside/load.lisp" \
  -eval "(harness:run-test-file \"$here/outside/postmodern.lisp\")"
