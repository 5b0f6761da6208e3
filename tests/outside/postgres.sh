#!/bin/sh
# postgres.sh - Postmodern (Debian's cl-postmodern, unchanged, through ASDF)
# on ecl-sock's SB-BSD-SOCKETS face against a throwaway PostgreSQL cluster
# made for this run: initdb into a fresh directory (as the `postgres` user
# when run as root: PostgreSQL refuses root), listening on 127.0.0.1 and ::1
# at a port the kernel gave, scram-sha-256 logins, Unix socket in the same
# directory.  The cluster is stopped and removed on every exit (trap), and
# the server itself is bounded (timeout).  Runs tests/outside/postmodern.lisp.
# Owns: the cluster's life.  Must not: touch a system cluster or port 5432.
here=${TEST_SRCDIR:-$(dirname "$0")/..}
scratch=${TEST_BUILDDIR:-$PWD/tests/scratch}
bindir=
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir=$d; done
if [ -z "$bindir" ]; then
  echo "SKIP: PostgreSQL's initdb is not installed (scripts/deps.sh installs postgresql)"; exit 77
fi
if [ ! -f /usr/share/common-lisp/source/postmodern/postmodern.asd ]; then
  echo "SKIP: Postmodern is not installed (scripts/deps.sh installs cl-postmodern)"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 (for a free port) is missing"; exit 77; }
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "SKIP: running as root and there is no postgres user"; exit 77; }
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
dir=$(mktemp -d /tmp/ecl-sock-pg.XXXXXX) || exit 1
[ "$(id -u)" = 0 ] && chown postgres "$dir"
cleanup() {
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
# should this shell be killed outright, a watcher stops the cluster
main=$$
( trap '' HUP; while kill -0 $main 2>/dev/null; do sleep 2; done; cleanup ) >/dev/null 2>&1 &
echo "ecl-sock-test-password" >"$dir/pw"; chmod 644 "$dir/pw"
as_pg "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pw" \
  --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log"; echo "initdb failed"; exit 1; }
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1,::1'
unix_socket_directories = '$dir'
password_encryption = 'scram-sha-256'
max_connections = 30
fsync = off
CONF
started=
for attempt in 1 2 3 4 5; do
  # a port the kernel gives on both loopback addresses, then handed to the server
  port=$(python3 -c 'import socket
s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); p=s.getsockname()[1]
t=socket.socket(); t.bind(("127.0.0.1",p)); print(p)' 2>/dev/null) || continue
  if as_pg "$bindir/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/server.log" -w -t 30 start >/dev/null 2>&1; then
    started=1; break
  fi
done
[ -n "$started" ] || { cat "$dir/server.log"; echo "the cluster did not start"; exit 1; }
# The role's scram-sha-256 verifier is made here with 16 PBKDF2 iterations
# instead of the server's 4096: the login is the same protocol (the server
# tells the client the count), but Postmodern's ironclad, loaded as
# bytecodes, takes 33 s per login at 4096 and 0.1 s at 16.
verifier=$(python3 -c 'import hashlib, hmac, base64, os
pw=b"ecl-sock-pg-pw"; salt=os.urandom(16); n=16
salted=hashlib.pbkdf2_hmac("sha256", pw, salt, n)
ck=hmac.new(salted, b"Client Key", "sha256").digest()
sk=hmac.new(salted, b"Server Key", "sha256").digest()
b=lambda x: base64.b64encode(x).decode()
print("SCRAM-SHA-256$%d:%s$%s:%s" % (n, b(salt), b(hashlib.sha256(ck).digest()), b(sk)))')
as_pg "$bindir/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE ecltest LOGIN PASSWORD '$verifier'" \
  -c "CREATE DATABASE ecltest OWNER ecltest" >/dev/null \
  || { echo "could not create the test role"; exit 1; }
# a port nobody listens on, for the refused connection
refused=$(python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGTEST_PORT=$port PGTEST_REFUSED_PORT=$refused PGTEST_SOCKET_DIR=$dir
export PGTEST_PORT PGTEST_REFUSED_PORT PGTEST_SOCKET_DIR
timeout -k 5 600 "${ECL:-ecl}" -norc -load "$here/lisp/harness.lisp" -load "$here/outside/load.lisp" \
  -eval "(harness:run-test-file \"$here/outside/postmodern.lisp\")"
