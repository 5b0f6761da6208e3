## tests/local.mk - every test `make check` runs (included by Makefile.am).
## Each folder owns its build fragment as <dir>/local.mk; this one owns the
## Check suites (tests/c), the Lisp tests (tests/lisp), the installed-tree
## test (tests/embed) and the layering check.  Every Lisp test file prints
## "N passed, N failed" and every Check suite its Check summary.

## ---- Lisp tests, one file per face or area -----------------------------
## test-clisp: the CLISP face (SOCKET package, EXT names).
## test-robust: the core under stress: IPv6, bulk data under GC,
##   pipelining, full duplex, socket-status above fd 1023, vanishing peers,
##   interrupts, descriptor leaks, finalizers.
## test-port: the PORT package (CLOCC names).
## test-examples: the examples run end to end as a user runs them (they
##   need curl and clisp: scripts/deps.sh).
## test-ssl: TLS streams (Allegro's SSL API) against openssl s_server /
##   s_client and Python's ssl module, certificate checks with a local CA
##   (tests/tls/make-certs.sh), hostile peers, leaks.
## test-allegro: the Allegro face (make-socket & co, EXCL conditions,
##   MP:WITH-TIMEOUT) and the Allegro-style sum example.
## test-latency: line-oriented answers do not stall; every flush guarantee
##   (explicit flushes, close, reads, socket-status, the 2 ms hold bound).
## test-fidelity: details CLISP and Allegro code relies on (issue 10):
##   element type specifiers, read-byte-no-hang, status after a reset,
##   EXT:OS-STREAM-ERROR, connected datagram sockets, keyword values.
## test-hostile: hostile input against every exported function of every
##   face (wrong types, extreme integers, NULs, circular lists, bad
##   keywords), value counts, descriptor exhaustion under a low ulimit.
## test-poller: the poller (statuses, bad input, threads, interrupts) and
##   examples/echo-server.lisp holding thousands of connections.
## test-concurrency: the stream core under threads (issue 17): close while
##   others read, write, wait or poll (TCP, Unix, TLS), no holes after a
##   send timeout, read timeouts with pending output, stalled peers cost
##   no sends, random reader/writer/flush/close interleavings, dropped
##   streams.
LISP_TESTS = tests/lisp/test-clisp.lisp tests/lisp/test-robust.lisp \
	tests/lisp/test-port.lisp tests/lisp/test-examples.lisp \
	tests/lisp/test-allegro.lisp tests/lisp/test-latency.lisp \
	tests/lisp/test-fidelity.lisp tests/lisp/test-ssl.lisp \
	tests/lisp/test-hostile.lisp tests/lisp/test-poller.lisp \
	tests/lisp/test-concurrency.lisp
TESTS += $(LISP_TESTS)
EXTRA_DIST += $(LISP_TESTS) tests/lisp/pairs.lisp tests/lisp/allegro-program.lisp \
	tests/lisp/allegro-peer.lisp tests/tls/make-certs.sh tests/tls/peer.py

## ---- Check suites for the C layer (tests/c) ------------------------------
## One suite per file of src/ with logic of its own: check_FILE for
## timeout.c, os.c, addr.c, options.c, errors.c, args.c, lispval.c, conn.c,
## dgram.c and tlsglue.c; check_stream for stream.c and status.c.  The
## other files are covered where their work can be seen:
##   life.c, marks.c, flush.c (the stream's lifetime, readiness marks and
##     flusher, behind stream.c): check_stream (close exactly once, status,
##     flush before read), tests/lisp/test-concurrency.lisp (close while
##     others are inside, random interleavings), test-latency.lisp (every
##     flush guarantee, the hold bound), test-poller.lisp (marks);
##   eclcompat.c: check_stream (ECL's streams carry ours) and
##     tests/lisp/latency-every-flush.sh (the fallback flush mode);
##   tls.c: check_tlsglue and tests/lisp/test-ssl.lisp;
##   poller.c: tests/lisp/test-poller.lisp;
##   bsd.c: tests/lisp/test-bsd.lisp and tests/bsd/;
##   glue.c: every suite that calls ECLSOCK::%... primitives;
##   api.c: check_embed and check_embed_sigpipe (below).
## Each program boots ECL once in main (TU_MAIN in testutil.h), links the
## convenience library statically, so the hidden symbols of the C layer
## are reachable, and loads the built sock.fas (SOCK_FAS) for the real
## condition classes (all but check_timeout, check_os, check_addr and
## check_options).
C_CHECKS = tests/c/check_timeout tests/c/check_os tests/c/check_addr \
	tests/c/check_options tests/c/check_errors tests/c/check_args \
	tests/c/check_lispval tests/c/check_stream tests/c/check_conn \
	tests/c/check_dgram tests/c/check_tlsglue

## Check's flags go to the test programs only (never into AM_CFLAGS or
## LDADD, which the shipped library and other programs use): each suite
## names them.
C_CHECK_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
C_CHECK_LDADD = libeclsock-core.la $(OPENSSL_LIBS) $(CHECK_LIBS) $(ECL_LIBS)
C_CHECK_UTIL = tests/c/testutil.c tests/c/testutil.h

tests_c_check_timeout_SOURCES = tests/c/check_timeout.c $(C_CHECK_UTIL)
tests_c_check_timeout_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_timeout_LDADD = $(C_CHECK_LDADD)
tests_c_check_os_SOURCES = tests/c/check_os.c $(C_CHECK_UTIL)
tests_c_check_os_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_os_LDADD = $(C_CHECK_LDADD)
tests_c_check_addr_SOURCES = tests/c/check_addr.c $(C_CHECK_UTIL)
tests_c_check_addr_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_addr_LDADD = $(C_CHECK_LDADD)
tests_c_check_options_SOURCES = tests/c/check_options.c $(C_CHECK_UTIL)
tests_c_check_options_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_options_LDADD = $(C_CHECK_LDADD)
tests_c_check_errors_SOURCES = tests/c/check_errors.c $(C_CHECK_UTIL)
tests_c_check_errors_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_errors_LDADD = $(C_CHECK_LDADD)
tests_c_check_stream_SOURCES = tests/c/check_stream.c $(C_CHECK_UTIL)
tests_c_check_stream_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_stream_LDADD = $(C_CHECK_LDADD)
tests_c_check_args_SOURCES = tests/c/check_args.c $(C_CHECK_UTIL)
tests_c_check_args_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_args_LDADD = $(C_CHECK_LDADD)
tests_c_check_lispval_SOURCES = tests/c/check_lispval.c $(C_CHECK_UTIL)
tests_c_check_lispval_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_lispval_LDADD = $(C_CHECK_LDADD)
tests_c_check_conn_SOURCES = tests/c/check_conn.c $(C_CHECK_UTIL)
tests_c_check_conn_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_conn_LDADD = $(C_CHECK_LDADD)
tests_c_check_dgram_SOURCES = tests/c/check_dgram.c $(C_CHECK_UTIL)
tests_c_check_dgram_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_dgram_LDADD = $(C_CHECK_LDADD)
tests_c_check_tlsglue_SOURCES = tests/c/check_tlsglue.c $(C_CHECK_UTIL)
tests_c_check_tlsglue_CFLAGS = $(C_CHECK_CFLAGS)
tests_c_check_tlsglue_LDADD = $(C_CHECK_LDADD)

## ---- Check suites over the public C API (linked like a host: libecl-sock)
EMBED_CHECKS = tests/c/check_embed tests/c/check_embed_sigpipe

tests_c_check_embed_SOURCES = tests/c/check_embed.c
tests_c_check_embed_CFLAGS = $(EMBED_CFLAGS) $(CHECK_CFLAGS)
tests_c_check_embed_LDADD = $(EMBED_LDADD) $(CHECK_LIBS)

tests_c_check_embed_sigpipe_SOURCES = tests/c/check_embed_sigpipe.c
tests_c_check_embed_sigpipe_CFLAGS = $(EMBED_CFLAGS) $(CHECK_CFLAGS)
tests_c_check_embed_sigpipe_LDADD = $(EMBED_LDADD) $(CHECK_LIBS)

## Check is needed by `make check' only (configure warns without it).
## Without it `make check' stops before any test, saying so: the C suites
## are part of every run, never skipped in silence.
if HAVE_CHECK
check_PROGRAMS += $(C_CHECKS) $(EMBED_CHECKS)
TESTS += $(C_CHECKS) $(EMBED_CHECKS)
else
check_DATA += no-check-library
no-check-library:
	@echo "make check: the Check library (check >= 0.11, found by pkg-config) was not" >&2; \
	echo "found by configure; the C suites (tests/c) need it.  Install it" >&2; \
	echo "(apt-get install check pkg-config) and run ./configure again." >&2; \
	exit 1
endif

## ---- `make check-asan` (./configure --enable-asan): the Check suites,
## the concurrency suite and the Lisp tests that need no outside program
## but openssl and python3, with our C code under AddressSanitizer (ECL is
## not built with it: the tests run asan-ecl, see Makefile.am).
ASAN_CHECKS = $(C_CHECKS) $(EMBED_CHECKS) tests/lisp/test-concurrency.lisp \
	tests/lisp/test-robust.lisp tests/lisp/test-latency.lisp \
	tests/lisp/test-poller.lisp tests/lisp/test-clisp.lisp \
	tests/lisp/test-ssl.lisp tests/lisp/test-fidelity.lisp \
	tests/lisp/test-allegro.lisp tests/lisp/test-port.lisp \
	tests/lisp/test-hostile.lisp tests/lisp/test-bsd.lisp
.PHONY: check-asan
if ASAN
check-asan:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(ASAN_CHECKS)'
else
check-asan:
	@echo "check-asan: run ./configure --enable-asan first" >&2; exit 1
endif

## ---- The embedding examples built against the *installed* header,
## library and pkg-config file, as a user builds them
TESTS += tests/embed/installed.sh
EXTRA_DIST += tests/embed/installed.sh

## ---- The layer order of src/ (scripts/layers.sh, on the objects) ---------
TESTS += scripts/layers.sh
EXTRA_DIST += scripts/layers.sh

## ---- The flush rule's fallback (issue 20): test-latency with
## ECLSOCK_FLUSH_MODE=every, the mode an ECL gets whose call sites cannot be
## told apart
TESTS += tests/lisp/latency-every-flush.sh
EXTRA_DIST += tests/lisp/latency-every-flush.sh

## ---- The Lisp harness itself: a hung test fails its file, a skip is 77 --
TESTS += tests/harness-selftest.sh
EXTRA_DIST += tests/harness-selftest.sh

## ---- The SB-BSD-SOCKETS face ------------------------------------------
## test-bsd.lisp: the face itself (classes, options, datagrams, errors, bad
## input, descriptor leaks, the drop-in in both orders); tests/bsd/hunchentoot-drakma.lisp:
## Hunchentoot and Drakma, unchanged, over the face; tests/usocket/run.sh:
## usocket's own suite on ECL's contrib and on the face, side by side.
## The libraries are compiled by ASDF into tests/scratch (XDG_CACHE_HOME).
## tests/bsd/probe.sh: every export probed on SBCL and on the face, compared
## with the allowed differences (tests/bsd/probe-allowed.txt).
TESTS += tests/lisp/test-bsd.lisp tests/bsd/web.sh tests/usocket/run.sh \
	tests/bsd/installed-asdf.sh tests/bsd/probe.sh
TEST_EXTENSIONS += .sh
SH_LOG_COMPILER = $(SHELL)
EXTRA_DIST += tests/lisp/test-bsd.lisp tests/bsd/hunchentoot-drakma.lisp tests/bsd/web.sh tests/bsd/installed-asdf.sh \
	tests/bsd/probe.sh tests/bsd/probe-exports.lisp tests/bsd/probe-allowed.txt \
	tests/usocket/run.sh tests/usocket/inside.sh tests/usocket/suite.lisp \
	tests/usocket/http-stub.lisp

## ---- `make soak`: the long reliability runs (issue 14), NOT in `make check`
## tests/soak/run-soak runs each workload in its own ECL: cycles.lisp
## (100,000 connection cycles, descriptors and RSS sampled), stream.lisp
## (256 MiB and more through one stream under a GC loop and interrupts),
## flood.lisp (2,000 idle connections against each example server).
SOAK_FILES = tests/soak/run-soak tests/soak/cycles.lisp \
	tests/soak/stream.lisp tests/soak/flood.lisp
EXTRA_DIST += $(SOAK_FILES)

.PHONY: soak
soak: sock.fas
	ECL='$(ECL)' SOCK_FAS='$(abs_builddir)/sock.fas' \
	  TEST_SRCDIR='$(abs_srcdir)/tests' \
	  TEST_BUILDDIR='$(abs_builddir)/tests/scratch/soak' \
	  $(SHELL) $(srcdir)/tests/soak/run-soak
