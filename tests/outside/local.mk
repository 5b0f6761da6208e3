## tests/outside/local.mk - the outside programs users run, unchanged from
## Debian's packages, on ecl-sock's SB-BSD-SOCKETS face against real
## servers and clients each test starts and stops (issue 18).  Libraries
## are loaded by tests/outside/load.lisp (bytecodes, cached outside the
## build tree by ECL version and face).  A missing package skips (77).
## postgres.sh: Postmodern against a throwaway PostgreSQL 15 cluster
##   (tests/outside/postmodern.lisp; the cluster: tests/outside/pg-cluster.sh,
##   shared with bench/run-pg-bench).
## tls.sh: HTTPS through cl+ssl: Drakma against openssl s_server and
##   Hunchentoot, Hunchentoot's easy-ssl-acceptor against ab and curl
##   (tests/outside/https.lisp).
## slime.sh: Emacs in batch mode with SLIME against Swank
##   (tests/outside/slime.el, tests/outside/swank-server.lisp).
OUTSIDE_TESTS = tests/outside/postgres.sh tests/outside/tls.sh tests/outside/slime.sh
TESTS += $(OUTSIDE_TESTS)
EXTRA_DIST += $(OUTSIDE_TESTS) tests/outside/local.mk tests/outside/load.lisp \
	tests/outside/pg-cluster.sh \
	tests/outside/postmodern.lisp tests/outside/https.lisp tests/outside/slime.el \
	tests/outside/swank-server.lisp
