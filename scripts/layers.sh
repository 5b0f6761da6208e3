#!/bin/sh
# layers.sh - which src/*.c file calls functions of which other, read off
# the compiled objects with nm (every global symbol one of them defines,
# not only eclsock_* ones), and whether every call goes down the layer
# order that src/internal.h lists.  Prints one line per file
# ("glue: addr errors os ...") and exits 1 when a file calls one listed
# after it.  Run from the build tree after make: sh scripts/layers.sh
# (tests/local.mk runs it in make check).
set -e
srcdir=${srcdir:-$(dirname "$0")/..}
objdir=${OBJDIR:-.}
order="timeout os addr options errors args lispval tls eclcompat marks life flush stream status poller bsd conn dgram tlsglue glue api"
obj() {  # the object of source file $1
  for o in "$objdir/src/.libs/libeclsock_core_la-$1.o" "$objdir/src/libeclsock_core_la-$1.o" \
           "$objdir/src/.libs/$1.o" "$objdir/src/$1.o"; do
    [ -f "$o" ] && { echo "$o"; return; }
  done
  echo "layers.sh: no object for src/$1.c (run make first)" >&2; exit 2
}
# every object must be there (obj's exit inside $(...) would not stop us)
for f in $order; do obj "$f" >/dev/null || exit 2; done
rank() { i=0; for f in $order; do [ "$f" = "$1" ] && { echo $i; return; }; i=$((i+1)); done; echo 99; }
# every layer in the order must have a source file, and every source file a layer
for f in "$srcdir"/src/*.c; do
  b=$(basename "$f" .c)
  [ "$(rank "$b")" != 99 ] || { echo "layers.sh: src/$b.c is in no layer of the order" >&2; exit 1; }
done
tmp=${TMPDIR:-/tmp}/layers.$$
trap 'rm -f "$tmp"' EXIT
for f in $order; do
  nm -g --defined-only "$(obj "$f")" | awk -v f="$f" 'NF == 3 {print $3, f}'
done > "$tmp"
bad=0
for f in $order; do
  calls=$(nm -u "$(obj "$f")" | awk '{print $2}' | while read -r sym; do
            awk -v s="$sym" '$1 == s {print $2}' "$tmp"; done | sort -u | tr '\n' ' ')
  echo "$f: ${calls:-(nothing of ours)}"
  r=$(rank "$f")
  for c in $calls; do
    if [ "$(rank "$c")" -ge "$r" ]; then
      echo "layers.sh: $f calls up into $c" >&2; bad=1
    fi
  done
done
if [ $bad = 0 ]; then echo "layers.sh: every call goes down ($order)"; fi
# system calls only in the platform layer: timeout.c (poll, epoll_wait), os.c, addr.c
syscalls="socket connect bind listen accept accept4 send recv sendto recvfrom sendmsg recvmsg getsockopt setsockopt shutdown close dup dup2 fcntl open read write writev pipe pipe2 poll ppoll select epoll_create epoll_create1 epoll_ctl epoll_wait getaddrinfo getnameinfo getsockname getpeername"
for f in $order; do
  case $f in timeout|os|addr) continue ;; esac
  used=$(nm -u "$(obj "$f")" | awk '{print $2}' | sed 's/@.*//' \
           | grep -x -F "$(echo $syscalls | tr ' ' '\n')" | tr '\n' ' ' || true)
  if [ -n "$used" ]; then echo "layers.sh: $f makes system calls: $used" >&2; bad=1; fi
done
if [ $bad = 0 ]; then echo "layers.sh: system calls only in timeout, os and addr"; fi
exit $bad
