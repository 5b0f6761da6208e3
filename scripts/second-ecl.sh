#!/bin/sh
# second-ecl.sh - `make check` on a second ECL: ECL 24.5.10 in a Debian 13
# (trixie) root made by debootstrap, run by .ci/run after scripts/test.sh.
# Owns: making, caching and entering that root, and running the suite in it.
# Must not: touch the machine outside the cache directory (the root's mounts
# are undone on every exit), or run distcheck (test.sh does, on this ECL).
#
# The root is kept in $ECLSOCK_ROOT_CACHE (default /var/cache/ecl-sock),
# outside the build tree; a fresh machine makes it (a few minutes).  The
# mirror is the machine's own Debian mirror, read from its apt sources.
# The source tree (files git tracks and untracked ones it does not ignore)
# is copied in afresh each run.  Needs root (debootstrap, mount, chroot).
set -e
cd "$(dirname "$0")/.."
src=$(pwd)
cache=${ECLSOCK_ROOT_CACHE:-/var/cache/ecl-sock}
root=$cache/trixie-root
limit=${SECOND_ECL_TIME_LIMIT:-1800}   # seconds for the build and make check
pkgs=ecl,gcc,make,autoconf,automake,libtool,pkgconf,check,libssl-dev,texinfo,python3,git,ca-certificates

say() { echo "second-ecl.sh: $*"; }
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, mount, chroot)"; exit 1; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  { say "$src is not a git checkout (the tree copied in is what git lists)"; exit 1; }
command -v debootstrap >/dev/null 2>&1 || {
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

# The first Debian archive URI of the machine's apt sources (deb822 and
# one-line formats), not its security archive.
mirror() {
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p'
  } | grep '/debian/*$' | grep -v security | head -n 1
}

mounted=
cleanup() {
  for m in $mounted; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || :; done
  mounted=
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM HUP

if [ ! -f "$root/.ecl-sock-root-ok" ]; then
  m=$(mirror); m=${m:-http://deb.debian.org/debian}
  say "making the Debian 13 root in $root from $m"
  rm -rf "$root.tmp"; mkdir -p "$cache"
  start=$(date +%s)
  debootstrap --variant=minbase --include=$pkgs trixie "$root.tmp" "$m" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap.log"; say "debootstrap failed"; exit 1; }
  rm -rf "$root"; mv "$root.tmp" "$root"
  touch "$root/.ecl-sock-root-ok"
  say "root made in $(( $(date +%s) - start )) s"
fi

# Mount in order; cleanup unmounts in the reverse order.  The root is
# bound onto itself first: its / is then a mount point, which unshare -m
# inside needs (tests/usocket/run.sh).
if ! mountpoint -q "$root"; then
  mount --bind "$root" "$root"
  mount --make-private "$root"
  mounted="$root"
fi
for d in proc dev dev/pts; do
  mountpoint -q "$root/$d" && continue
  mount --bind "/$d" "$root/$d"
  mounted="$root/$d $mounted"
done
cp /etc/resolv.conf "$root/etc/resolv.conf"

rm -rf "$root/build"; mkdir -p "$root/build/ecl-sock"
git ls-files -z --cached --others --exclude-standard |
  tar -cf - --null -T - | tar -xf - -C "$root/build/ecl-sock"

say "$(chroot "$root" ecl --version | head -n 1): deps, build and make check in the root"
status=0
timeout -k 30 "$limit" chroot "$root" /bin/sh -c '
  set -e
  cd /build/ecl-sock
  sh scripts/deps.sh
  autoreconf -fi >/dev/null 2>&1
  ./configure --enable-werror >configure.out 2>&1 || { tail -n 30 configure.out; exit 1; }
  make -j2 >make.out 2>&1 || { tail -n 40 make.out; exit 1; }
  status=0
  make -j2 check || status=$?
  sh scripts/summary.sh
  [ $status = 0 ] || sh scripts/show-failures.sh .
  exit $status' || status=$?
[ $status = 124 ] && say "stopped after $limit s"
[ $status = 0 ] && say "make check passed on the second ECL" || say "make check failed on the second ECL"
exit $status
