#!/bin/sh
# dist-contents.sh SRCDIR DISTDIR - fail when a file git tracks in SRCDIR
# is missing from the unpacked distribution DISTDIR, so that the tarball
# holds everything a user runs (examples, scripts, tests, the manual).
# Only git's own files are left out.  `make distcheck` runs it
# (distcheck-hook in Makefile.am); outside a git checkout it says so and
# checks nothing.
srcdir=$1 distdir=$2
if ! git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "dist-contents.sh: $srcdir is not a git checkout; nothing to compare"
  exit 0
fi
missing=$(git -C "$srcdir" ls-files | grep -v -x -e .gitignore -e m4/.keep |
  while read -r f; do [ -e "$distdir/$f" ] || echo "$f"; done)
if [ -n "$missing" ]; then
  echo "dist-contents.sh: tracked but not in the tarball (add them to EXTRA_DIST):" >&2
  echo "$missing" | sed 's/^/  /' >&2
  exit 1
fi
echo "dist-contents.sh: every tracked file is in $distdir"
