## tests/clisp.mk - Lisp tests of the CLISP face (SOCKET package, EXT names).
TESTS += tests/lisp/test-clisp.lisp
EXTRA_DIST += tests/lisp/test-clisp.lisp
