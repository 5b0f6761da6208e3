#!/bin/sh
# demo.sh - install what is missing, build, install, and show ecl-sock's
# main job: a server and a client exchanging lines over loopback, from a
# plain `ecl` that only says (require :sock).
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j2
if [ "$(id -u)" = 0 ]; then make install; else sudo make install; fi
ldconfig 2>/dev/null || true
ecl -norc -shell examples/demo.lisp
