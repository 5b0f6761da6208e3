## tests/robust.mk - included by tests/local.mk.
## Robustness of the core: IPv6, bulk data under GC, pipelining, full
## duplex, socket-status above fd 1023, vanishing peers, interrupts,
## descriptor leaks, finalizers.
TESTS += tests/lisp/test-robust.lisp
EXTRA_DIST += tests/lisp/test-robust.lisp
