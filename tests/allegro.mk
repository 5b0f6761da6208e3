## tests/allegro.mk - Lisp tests of the Allegro face (make-socket & co,
## EXCL conditions, MP:WITH-TIMEOUT) and of the Allegro-style sum example.
TESTS += tests/lisp/test-allegro.lisp
EXTRA_DIST += tests/lisp/test-allegro.lisp tests/lisp/allegro-program.lisp \
	tests/lisp/allegro-peer.lisp
## the Allegro-style sum example, run end to end by test-allegro.lisp
EXTRA_DIST += examples/sum-server.lisp examples/sum-client.lisp
