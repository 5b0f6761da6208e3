#!/bin/sh
# tls.sh - HTTPS through cl+ssl on ecl-sock's SB-BSD-SOCKETS face: Drakma
# against `openssl s_server -www` and against Hunchentoot's
# easy-ssl-acceptor, Hunchentoot against `ab` (concurrent clients) and
# curl; all of Debian's packages unchanged.  Runs tests/outside/https.lisp
# (bounded by timeout; its servers are children it stops).
here=${TEST_SRCDIR:-$(dirname "$0")/..}
for f in cl+ssl/cl+ssl.asd drakma/drakma.asd hunchentoot/hunchentoot.asd cl-cffi/cffi.asd; do
  if [ ! -f /usr/share/common-lisp/source/$f ]; then
    echo "SKIP: $f is not installed (scripts/deps.sh installs cl-plus-ssl, cl-cffi, cl-drakma, cl-hunchentoot)"
    exit 77
  fi
done
for p in openssl ab curl; do
  command -v $p >/dev/null || { echo "SKIP: $p is missing (scripts/deps.sh installs openssl, apache2-utils, curl)"; exit 77; }
done
exec timeout -k 5 600 "${ECL:-ecl}" -norc -load "$here/lisp/harness.lisp" -load "$here/outside/load.lisp" \
  -eval "(harness:run-test-file \"$here/outside/https.lisp\")"
