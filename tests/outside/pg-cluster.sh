# pg-cluster.sh - a throwaway PostgreSQL cluster, sourced (". FILE") by
# tests/outside/postgres.sh and bench/run-pg-bench: initdb into a fresh
# directory (as the `postgres` user when run as root: PostgreSQL refuses
# root), listening on 127.0.0.1 and ::1 at a port the kernel gave,
# scram-sha-256 logins, Unix socket in the same directory, a role and
# database `ecltest` (password ecl-sock-pg-pw).  The cluster is stopped and
# removed on every exit of the sourcing shell (trap, and a watcher should
# that shell be killed outright); the server only lives as long as it.
#   pg_cluster_check   sets pg_bindir; 1 (reason in pg_why) when it cannot run
#   pg_cluster_start   sets pg_dir and pg_port; 1 (with the logs printed) on
#                      failure.  The server runs under $pg_pin when set (a
#                      command prefix, e.g. "taskset -c 1")
#   pg_cluster_stop    stops and removes it (the EXIT trap calls it)
# Owns: the cluster's life.  Must not: touch a system cluster or port 5432;
# set any trap but EXIT, INT, TERM, HUP.

pg_cluster_check() {
  pg_bindir=
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pg_bindir=$d; done
  if [ -z "$pg_bindir" ]; then
    pg_why="PostgreSQL's initdb is not installed (scripts/deps.sh installs postgresql)"; return 1
  fi
  command -v python3 >/dev/null || { pg_why="python3 (for a free port) is missing"; return 1; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    pg_why="running as root and there is no postgres user"; return 1
  fi
  return 0
}

pg_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_cluster_stop() {
  [ -n "${pg_dir:-}" ] || return 0
  pg_as "$pg_bindir/pg_ctl" -D "$pg_dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1
  rm -rf "$pg_dir"
}

pg_cluster_start() {
  pg_dir=$(mktemp -d /tmp/ecl-sock-pg.XXXXXX) || return 1
  [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
  trap pg_cluster_stop EXIT
  trap 'exit 1' INT TERM HUP
  # should this shell be killed outright, a watcher stops the cluster
  pg_main=$$
  ( trap '' HUP; while kill -0 $pg_main 2>/dev/null; do sleep 2; done; pg_cluster_stop ) >/dev/null 2>&1 &
  echo "ecl-sock-test-password" >"$pg_dir/pw"; chmod 644 "$pg_dir/pw"
  pg_as "$pg_bindir/initdb" -D "$pg_dir/data" -U postgres --pwfile="$pg_dir/pw" \
    --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$pg_dir/initdb.log" 2>&1 \
    || { cat "$pg_dir/initdb.log"; echo "initdb failed"; return 1; }
  cat >>"$pg_dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1,::1'
unix_socket_directories = '$pg_dir'
password_encryption = 'scram-sha-256'
max_connections = 30
fsync = off
CONF
  pg_started=
  for attempt in 1 2 3 4 5; do
    # a port the kernel gives on both loopback addresses, then handed to the server
    pg_port=$(python3 -c 'import socket
s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); p=s.getsockname()[1]
t=socket.socket(); t.bind(("127.0.0.1",p)); print(p)' 2>/dev/null) || continue
    if pg_as ${pg_pin:-} "$pg_bindir/pg_ctl" -D "$pg_dir/data" -o "-p $pg_port" -l "$pg_dir/server.log" -w -t 30 start >/dev/null 2>&1; then
      pg_started=1; break
    fi
  done
  [ -n "$pg_started" ] || { cat "$pg_dir/server.log"; echo "the cluster did not start"; return 1; }
  # The role's scram-sha-256 verifier is made here with 16 PBKDF2 iterations
  # instead of the server's 4096: the login is the same protocol (the server
  # tells the client the count), but Postmodern's ironclad, loaded as
  # bytecodes, takes 33 s per login at 4096 and 0.1 s at 16.
  pg_verifier=$(python3 -c 'import hashlib, hmac, base64, os
pw=b"ecl-sock-pg-pw"; salt=os.urandom(16); n=16
salted=hashlib.pbkdf2_hmac("sha256", pw, salt, n)
ck=hmac.new(salted, b"Client Key", "sha256").digest()
sk=hmac.new(salted, b"Server Key", "sha256").digest()
b=lambda x: base64.b64encode(x).decode()
print("SCRAM-SHA-256$%d:%s$%s:%s" % (n, b(salt), b(hashlib.sha256(ck).digest()), b(sk)))')
  pg_as "$pg_bindir/psql" -h "$pg_dir" -p "$pg_port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE ecltest LOGIN PASSWORD '$pg_verifier'" \
    -c "CREATE DATABASE ecltest OWNER ecltest" >/dev/null \
    || { echo "could not create the test role"; return 1; }
  return 0
}
