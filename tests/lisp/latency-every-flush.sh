#!/bin/sh
# latency-every-flush.sh - test-latency.lisp again with the flush rule's
# fallback forced (ECLSOCK_FLUSH_MODE=every: every flush sends, as on an ECL
# build whose call sites cannot be told apart, issue 20): the functional
# bounds still hold, force-output and finish-output still deliver at once,
# and the file prints the mode it ran in.
ECLSOCK_FLUSH_MODE=every
export ECLSOCK_FLUSH_MODE
exec sh "${TEST_SRCDIR:-$(dirname "$0")/..}/lisp/run-test" \
  "${TEST_SRCDIR:-$(dirname "$0")/..}/lisp/test-latency.lisp"
