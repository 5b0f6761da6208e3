## tests/local.mk - the test suites run by `make check` (included by Makefile.am).
## Each area keeps its own fragment; every Lisp test file prints
## "N passed, N failed" and every Check suite its Check summary.
include tests/clisp.mk
include tests/robust.mk
include tests/c.mk
include tests/port.mk
include tests/allegro.mk
include tests/embed.mk
