## examples/local.mk - included by Makefile.am.
## Runnable examples (tests/lisp/test-examples.lisp runs them end to end).
EXTRA_DIST += examples/http-server.lisp examples/http-client.lisp \
	examples/echo-server.lisp examples/echo-client.lisp \
	examples/repl-server.lisp examples/www/hello.txt examples/www/index.html
