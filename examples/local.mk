## examples/local.mk - included by Makefile.am.
## Runnable examples: the Lisp ones (tests/lisp/test-examples.lisp and
## test-allegro.lisp run them end to end; scripts/demo.sh runs demo.lisp)
## and the C embedding examples (built by `make`, run by `make check`).
EXTRA_DIST += examples/README examples/demo.lisp \
	examples/http-server.lisp examples/http-client.lisp \
	examples/echo-server.lisp examples/echo-client.lisp \
	examples/repl-server.lisp examples/www/hello.txt examples/www/index.html \
	examples/sum-server.lisp examples/sum-client.lisp

## ---- C embedding examples ---------------------------------------------
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
EXTRA_DIST += examples/embed/handler.lisp examples/embed/server.lisp
