## tests/c.mk - Check suites for the C layer, one per C file of src/
## (included by tests/local.mk).  Each program boots ECL once in main and
## links the convenience library statically, so the hidden symbols of the
## C layer are reachable; check_errors and check_stream also load the built
## sock.fas (SOCK_FAS) for the real condition classes.
C_CHECKS = tests/c/check_timeout tests/c/check_os tests/c/check_addr \
	tests/c/check_options tests/c/check_errors tests/c/check_stream
check_PROGRAMS += $(C_CHECKS)
TESTS += $(C_CHECKS)

## The suites share Check's flags and the convenience library: the
## defaults (AM_CFLAGS, LDADD) serve them all; other programs set their own.
AM_CFLAGS += $(CHECK_CFLAGS)
LDADD = libeclsock-core.la $(CHECK_LIBS) $(ECL_LIBS)
C_CHECK_UTIL = tests/c/testutil.c tests/c/testutil.h

tests_c_check_timeout_SOURCES = tests/c/check_timeout.c $(C_CHECK_UTIL)
tests_c_check_os_SOURCES = tests/c/check_os.c $(C_CHECK_UTIL)
tests_c_check_addr_SOURCES = tests/c/check_addr.c $(C_CHECK_UTIL)
tests_c_check_options_SOURCES = tests/c/check_options.c $(C_CHECK_UTIL)
tests_c_check_errors_SOURCES = tests/c/check_errors.c $(C_CHECK_UTIL)
tests_c_check_stream_SOURCES = tests/c/check_stream.c $(C_CHECK_UTIL)
