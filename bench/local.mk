## bench/local.mk - included by Makefile.am.
##
## `make bench`: plain C, ecl-sock and ECL's sb-bsd-sockets streams side by
## side over loopback (see bench/run-bench).  Not part of `make check`; the
## programs are built on demand, in the build directory.

BENCH_SRC = bench/cbench.c bench/bench.lisp bench/run-bench \
	bench/httpbench.c bench/web-server.lisp bench/run-web-bench \
	bench/sbcl-cycles.lisp bench/stalled.lisp \
	bench/run-pg-bench bench/pg-client.lisp bench/pg-work.lisp \
	bench/run-swank-bench bench/swank-bench-server.lisp bench/swank-bench.el
EXTRA_DIST += $(BENCH_SRC)
CLEANFILES += bench/cbench$(EXEEXT) bench/bench.fas bench/httpbench$(EXEEXT) bench/stalled.fas

bench/httpbench$(EXEEXT): bench/httpbench.c
	@$(MKDIR_P) bench
	$(AM_V_CC)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN_CFLAGS) -o $@ $(srcdir)/bench/httpbench.c

bench/cbench$(EXEEXT): bench/cbench.c
	@$(MKDIR_P) bench
	$(AM_V_CC)$(CC) $(DEFS) $(CPPFLAGS) $(CFLAGS) $(WARN_CFLAGS) $(OPENSSL_CFLAGS) -o $@ \
	  $(srcdir)/bench/cbench.c $(OPENSSL_LIBS)

## bench.lisp names symbols of SOCKET and SB-BSD-SOCKETS, so both are loaded
## before it is compiled (and before it is loaded, by run-bench).
bench/bench.fas: bench/bench.lisp sock.fas
	@$(MKDIR_P) bench
	$(AM_V_GEN)$(ECL_RUN) -norc -eval '(setq *load-verbose* nil)' \
	  -eval '(require :sb-bsd-sockets)' \
	  -eval '(load "$(abs_builddir)/sock.fas")' \
	  -eval '(ext:quit (if (compile-file "$(abs_srcdir)/bench/bench.lisp" :output-file "$(abs_builddir)/bench/bench.fas") 0 1))'

## bench/stalled.lisp: 1,000 stalled peers holding output against one
## active connection (issue 17); `make bench-stalled` runs it alone.
bench/stalled.fas: bench/stalled.lisp sock.fas
	@$(MKDIR_P) bench
	$(AM_V_GEN)$(ECL_RUN) -norc -eval '(setq *load-verbose* nil)' \
	  -eval '(load "$(abs_builddir)/sock.fas")' \
	  -eval '(ext:quit (if (compile-file "$(abs_srcdir)/bench/stalled.lisp" :output-file "$(abs_builddir)/bench/stalled.fas") 0 1))'

.PHONY: bench-stalled
bench-stalled: bench/stalled.fas sock.fas
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || ulimit -n 4096 2>/dev/null || :; \
	  $(ECL_RUN) -norc -eval '(setq *load-verbose* nil)' \
	  -eval '(load "$(abs_builddir)/sock.fas")' -eval '(load "$(abs_builddir)/bench/stalled.fas")' \
	  -eval '(progn (bench-stalled:main) (ext:quit 0))' | grep -v '^;'

.PHONY: bench
bench: bench/cbench$(EXEEXT) bench/bench.fas sock.fas bench/stalled.fas
	CBENCH='$(abs_builddir)/bench/cbench$(EXEEXT)' \
	  SOCK_FAS='$(abs_builddir)/sock.fas' \
	  BENCH_FAS='$(abs_builddir)/bench/bench.fas' ECL='$(ECL)' \
	  MAKE_CERTS='$(abs_srcdir)/tests/tls/make-certs.sh' \
	  BENCH_CERTS='$(abs_builddir)/bench/tls-certs' \
	  $(SHELL) $(srcdir)/bench/run-bench
	$(MAKE) $(AM_MAKEFLAGS) bench-web
	$(MAKE) $(AM_MAKEFLAGS) bench-stalled
	$(MAKE) $(AM_MAKEFLAGS) bench-pg
	$(MAKE) $(AM_MAKEFLAGS) bench-swank

## `make bench-web`: only the Hunchentoot workloads (bench/run-web-bench).
.PHONY: bench-web
bench-web: bench/httpbench$(EXEEXT) sock.fas sock-bsd.fas
	HTTPBENCH='$(abs_builddir)/bench/httpbench$(EXEEXT)' \
	  SOCK_FAS='$(abs_builddir)/sock.fas' SOCK_BSD_FAS='$(abs_builddir)/sock-bsd.fas' \
	  WEB_CACHE='$(abs_builddir)/bench/web-cache' ECL='$(ECL)' \
	  $(SHELL) $(srcdir)/bench/run-web-bench

## `make bench-pg`: only the Postmodern workloads against a throwaway
## PostgreSQL cluster (bench/run-pg-bench).  The first run compiles
## Postmodern and its dependencies natively into bench/pg-cache (untimed;
## ironclad takes ECL about ten minutes).
.PHONY: bench-pg
bench-pg: sock.fas sock-bsd.fas
	SOCK_FAS='$(abs_builddir)/sock.fas' SOCK_BSD_FAS='$(abs_builddir)/sock-bsd.fas' \
	  PG_CACHE='$(abs_builddir)/bench/pg-cache' ECL='$(ECL)' \
	  $(SHELL) $(srcdir)/bench/run-pg-bench

## `make bench-swank`: SLIME evaluations per second from Emacs in batch mode
## against Swank (bench/run-swank-bench); a report, no target.
.PHONY: bench-swank
bench-swank: sock.fas sock-bsd.fas
	SOCK_FAS='$(abs_builddir)/sock.fas' SOCK_BSD_FAS='$(abs_builddir)/sock-bsd.fas' \
	  SWANK_CACHE='$(abs_builddir)/bench/swank-cache' ECL='$(ECL)' \
	  $(SHELL) $(srcdir)/bench/run-swank-bench
