#!/bin/sh
# deps.sh - install the Debian packages ecl-sock needs to build, test and
# document itself (and to run `make bench`: ab, valgrind), when they are
# missing.  Uses sudo when not root.
set -e
pkgs="ecl check autoconf automake libtool pkg-config make gcc texinfo curl clisp libssl-dev openssl python3
  cl-usocket cl-rt cl-hunchentoot cl-drakma iproute2
  postgresql cl-postmodern cl-plus-ssl cl-cffi slime cl-swank emacs-nox sbcl apache2-utils valgrind"
missing=
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing$missing"
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing >/dev/null
