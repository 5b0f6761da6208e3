## tests/outside/local.mk - the outside programs users run, unchanged from
## Debian's packages, on ecl-sock's SB-BSD-SOCKETS face against real
## servers and clients each test starts and stops (issue 18).  Libraries
## are loaded by tests/outside/load.lisp (bytecodes, cached outside the
## build tree by ECL version and face).  A missing package skips (77).
## postgres.sh: Postmodern against a throwaway PostgreSQL 15 cluster.
OUTSIDE_TESTS = tests/outside/postgres.sh
TESTS += $(OUTSIDE_TESTS)
EXTRA_DIST += $(OUTSIDE_TESTS) tests/outside/local.mk tests/outside/load.lisp \
	tests/outside/postmodern.lisp
