## tests/embed.mk - the C embedding API (src/ecl-sock.h): Check suites, the
## examples of examples/embed/ (built by `make`, run by `make check`), and
## a test that builds those examples from the *installed* header, library
## and pkg-config file (included by tests/local.mk).

## ---- Check suites over the public API (linked like a host: libecl-sock)
EMBED_CHECKS = tests/c/check_embed tests/c/check_embed_sigpipe
check_PROGRAMS += $(EMBED_CHECKS)
TESTS += $(EMBED_CHECKS)
EMBED_CFLAGS = $(AM_CFLAGS) -pthread
EMBED_LDADD = libecl-sock.la $(ECL_LIBS)

tests_c_check_embed_SOURCES = tests/c/check_embed.c
tests_c_check_embed_CFLAGS = $(EMBED_CFLAGS) $(CHECK_CFLAGS)
tests_c_check_embed_LDADD = $(EMBED_LDADD) $(CHECK_LIBS)

tests_c_check_embed_sigpipe_SOURCES = tests/c/check_embed_sigpipe.c
tests_c_check_embed_sigpipe_CFLAGS = $(EMBED_CFLAGS) $(CHECK_CFLAGS)
tests_c_check_embed_sigpipe_LDADD = $(EMBED_LDADD) $(CHECK_LIBS)

## ---- Examples: built by `make`, run by `make check` --------------------
## Each finds its Lisp file in the source tree unless given one.
EMBED_EXAMPLES = examples/embed/accept-host examples/embed/lisp-server
noinst_PROGRAMS += $(EMBED_EXAMPLES)
TESTS += $(EMBED_EXAMPLES)
EMBED_EXAMPLE_CPPFLAGS = $(AM_CPPFLAGS) -DEXAMPLE_DIR='"$(abs_srcdir)/examples/embed"'

examples_embed_accept_host_SOURCES = examples/embed/accept-host.c
examples_embed_accept_host_CPPFLAGS = $(EMBED_EXAMPLE_CPPFLAGS)
examples_embed_accept_host_CFLAGS = $(EMBED_CFLAGS)
examples_embed_accept_host_LDADD = $(EMBED_LDADD)

examples_embed_lisp_server_SOURCES = examples/embed/lisp-server.c
examples_embed_lisp_server_CPPFLAGS = $(EMBED_EXAMPLE_CPPFLAGS)
examples_embed_lisp_server_CFLAGS = $(EMBED_CFLAGS)
examples_embed_lisp_server_LDADD = $(EMBED_LDADD)

## ---- The examples built against the installed files, like a user does --
TESTS += tests/embed/installed.sh

EXTRA_DIST += examples/embed/handler.lisp examples/embed/server.lisp \
	tests/embed/installed.sh
