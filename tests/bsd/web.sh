#!/bin/sh
# web.sh - run tests/bsd/hunchentoot-drakma.lisp: Hunchentoot and Drakma (Debian's
# cl-hunchentoot and cl-drakma, loaded with ASDF, unchanged) over the
# SB-BSD-SOCKETS face, loaded by the shared loader tests/outside/load.lisp
# (bytecodes, cached outside the build tree by ECL version and face).
here=${TEST_SRCDIR:-$(dirname "$0")/..}/bsd
scratch=${TEST_BUILDDIR:-$PWD/tests/scratch}
for sys in hunchentoot/hunchentoot.asd drakma/drakma.asd; do
  if [ ! -f /usr/share/common-lisp/source/$sys ]; then
    echo "SKIP: $sys is not installed (scripts/deps.sh installs cl-hunchentoot, cl-drakma)"
    exit 77
  fi
done
mkdir -p "$scratch"
exec timeout 900 "${ECL:-ecl}" -norc -load "$here/../lisp/harness.lisp" -load "$here/../outside/load.lisp" \
  -shell "$here/hunchentoot-drakma.lisp"
