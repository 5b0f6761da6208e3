## tests/port.mk - included by tests/local.mk.
## The PORT package (CLOCC names) and the examples, run end to end as a
## user runs them (the example tests need curl and clisp: scripts/deps.sh).
TESTS += tests/lisp/test-port.lisp
EXTRA_DIST += tests/lisp/test-port.lisp
TESTS += tests/lisp/test-examples.lisp
EXTRA_DIST += tests/lisp/test-examples.lisp
