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
