#!/bin/sh
# web.sh - run tests/bsd/hunchentoot-drakma.lisp: Hunchentoot and Drakma (Debian's
# cl-hunchentoot and cl-drakma, loaded with ASDF, unchanged) over the
# SB-BSD-SOCKETS face.  ASDF compiles them into the build tree
# (XDG_CACHE_HOME under tests/scratch), not into the user's cache.
here=${TEST_SRCDIR:-$(dirname "$0")/..}/bsd
scratch=${TEST_BUILDDIR:-$PWD/tests/scratch}
for sys in hunchentoot/hunchentoot.asd drakma/drakma.asd; do
  if [ ! -f /usr/share/common-lisp/source/$sys ]; then
    echo "SKIP: $sys is not installed (scripts/deps.sh installs cl-hunchentoot, cl-drakma)"
    exit 77
  fi
done
mkdir -p "$scratch"
XDG_CACHE_HOME=$scratch/cache-web; export XDG_CACHE_HOME
exec timeout 900 "${ECL:-ecl}" -norc -shell "$here/hunchentoot-drakma.lisp"
