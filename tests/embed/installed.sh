#!/bin/sh
# installed.sh - build and run the embedding examples the way a user does:
# `make install` (into a scratch DESTDIR), then
#   cc host.c $(pkg-config --cflags --libs ecl-sock) -o host
# against the installed header, library and ecl-sock.pc only.  The hosts
# run with ECLDIR pointing at an empty directory, so no module can come
# from disk: the Lisp layer must be the one linked into libecl-sock.
# Run by `make check` from the top build directory.
set -u
srcdir=${srcdir:-.}
top=$(pwd)
scratch=$top/tests/embed/installed.tmp
rm -rf "$scratch"
mkdir -p "$scratch/empty-ecldir" || exit 99
trap 'rm -rf "$scratch"' 0

fail () { echo "FAIL: $*"; exit 1; }

# The build tree's own install, into the scratch DESTDIR.  The parent
# make's flags (jobserver, -k ...) are not ours.
(unset MAKEFLAGS MFLAGS; ${MAKE:-make} install DESTDIR="$scratch/root") \
  > "$scratch/install.log" 2>&1 || { cat "$scratch/install.log"; fail "make install"; }

pc=$(find "$scratch/root" -name ecl-sock.pc | head -n 1)
test -n "$pc" || fail "no ecl-sock.pc installed"
PKG_CONFIG_PATH=$(dirname "$pc"); export PKG_CONFIG_PATH
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
# The .pc names the final locations; the files sit under DESTDIR for now.
libdir=$(pkg-config --variable=libdir ecl-sock) || fail "pkg-config ecl-sock"
includedir=$(pkg-config --variable=includedir ecl-sock)
pcflags="--define-variable=libdir=$scratch/root$libdir --define-variable=includedir=$scratch/root$includedir"
test -f "$scratch/root$includedir/ecl-sock.h" || fail "ecl-sock.h not in $includedir"
# A shared library normally; only the archive after --disable-shared.
if test -f "$scratch/root$libdir/libecl-sock.so"; then
  lib=libecl-sock.so
else
  lib=libecl-sock.a
  test -f "$scratch/root$libdir/$lib" || fail "neither libecl-sock.so nor .a in $libdir"
fi
echo "installed: $includedir/ecl-sock.h, $libdir/$lib (under $scratch/root)"

flags=$(pkg-config $pcflags --cflags --libs ecl-sock) || fail "pkg-config --cflags --libs"
echo "pkg-config --cflags --libs ecl-sock: $flags"
case $flags in *"$srcdir/src"*|*"$top/src"*) fail "flags point into the source tree";; esac

LD_LIBRARY_PATH=$scratch/root$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
ECLDIR=$scratch/empty-ecldir/; export ECLDIR

for ex in accept-host lisp-server; do
  ${CC:-cc} -Wall -Wextra "$srcdir/examples/embed/$ex.c" $flags -o "$scratch/$ex" \
    || fail "compiling $ex with the installed header"
  if test $lib = libecl-sock.so; then
    ldd "$scratch/$ex" | grep "libecl-sock" | grep -q "$scratch/root" \
      || fail "$ex does not use the installed libecl-sock"
  fi
done

"$scratch/accept-host" "$srcdir/examples/embed/handler.lisp" 6 || fail "accept-host"
"$scratch/lisp-server" "$srcdir/examples/embed/server.lisp" || fail "lisp-server"
echo "PASS: the examples built from the installed files and ran"
exit 0
