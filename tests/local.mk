## tests/local.mk - the test suites run by `make check` (included by Makefile.am).

## Lisp tests, one file per API face; each prints "N passed, N failed".
LISP_TESTS = tests/lisp/test-clisp.lisp
TESTS += $(LISP_TESTS)
EXTRA_DIST += $(LISP_TESTS)
