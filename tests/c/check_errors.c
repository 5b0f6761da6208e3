/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_errors.c - Check suite "errors" for src/errors.c: every code has a
 * keyword name and a message; resolver codes map; our ECLSOCK_E* codes
 * have names; every keyword lisp/conditions.lisp gives a class can be
 * produced by some code; and eclsock_raise() signals the condition class
 * that matches the code, with its slots filled.  Loads the built sock.fas
 * for the real condition classes.
 */
#include "testutil.h"
#include <errno.h>
#include <string.h>

/* Errno values socket code meets, which must keep their own names. */
#define MUST_NAME(X)                                                     \
  X(ECONNREFUSED) X(ECONNRESET) X(ECONNABORTED) X(EPIPE) X(ETIMEDOUT)    \
  X(EADDRINUSE) X(EADDRNOTAVAIL) X(ENETUNREACH) X(ENETDOWN) X(ENETRESET) \
  X(EHOSTUNREACH) X(EHOSTDOWN) X(ENOTCONN) X(EISCONN) X(ESHUTDOWN)       \
  X(EINPROGRESS) X(EALREADY) X(EAGAIN) X(EINTR) X(EBADF) X(EINVAL)       \
  X(ENOTSOCK) X(EMFILE) X(ENFILE) X(ENOBUFS) X(ENOMEM) X(EACCES) X(EPERM) \
  X(EAFNOSUPPORT) X(EPROTONOSUPPORT) X(EOPNOTSUPP) X(ENOPROTOOPT)        \
  X(EPROTO) X(EMSGSIZE) X(ENOENT) X(ENAMETOOLONG) X(EIO)

START_TEST(test_errno_names)
{
#define X(e)                                                            \
  ck_assert_str_eq(eclsock_err_name(e), #e);                            \
  ck_assert_str_eq(eclsock_err_message(e), strerror(e));
  MUST_NAME(X)
#undef X
  ck_assert_str_eq(eclsock_err_name(EWOULDBLOCK), "EAGAIN");
}
END_TEST

/* Every errno the table names has a real message. */
START_TEST(test_errno_table_messages)
{
  int e, named = 0;
  for (e = 1; e < 256; e++) {
    const char *name = eclsock_err_name(e), *msg = eclsock_err_message(e);
    ck_assert_ptr_nonnull(name);
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_gt((int)strlen(msg), 0);
    if (strcmp(name, "UNKNOWN") != 0) {
      named++;
      ck_assert_msg(name[0] == 'E', "errno %d named %s", e, name);
      ck_assert_msg(strncmp(msg, "Unknown error", 13) != 0,
                    "errno %d (%s) has no message", e, name);
    }
  }
  ck_assert_int_ge(named, 37);
  /* an errno outside the table: named UNKNOWN, strerror's text */
  ck_assert_str_eq(eclsock_err_name(ECHILD), "UNKNOWN");
  ck_assert_str_eq(eclsock_err_message(ECHILD), strerror(ECHILD));
}
END_TEST

START_TEST(test_eai_codes)
{
  static const struct { int code; const char *name; } eai[] = {
    { EAI_NONAME, "EAI-NONAME" }, { EAI_AGAIN, "EAI-AGAIN" },
    { EAI_FAIL, "EAI-FAIL" }, { EAI_FAMILY, "EAI-FAMILY" },
    { EAI_SOCKTYPE, "EAI-SOCKTYPE" }, { EAI_SERVICE, "EAI-SERVICE" },
    { EAI_MEMORY, "EAI-MEMORY" }, { EAI_BADFLAGS, "EAI-BADFLAGS" },
    { EAI_OVERFLOW, "EAI-OVERFLOW" },
#ifdef EAI_NODATA
    { EAI_NODATA, "EAI-NODATA" },
#endif
#ifdef EAI_ADDRFAMILY
    { EAI_ADDRFAMILY, "EAI-ADDRFAMILY" },
#endif
  };
  size_t i;
  for (i = 0; i < sizeof eai / sizeof eai[0]; i++) {
    int c = ECLSOCK_EAI(eai[i].code);
    ck_assert_msg(ECLSOCK_IS_EAI(c), "%s not recognised as EAI", eai[i].name);
    ck_assert_int_lt(c, 0);
    ck_assert_str_eq(eclsock_err_name(c), eai[i].name);
    ck_assert_str_eq(eclsock_err_message(c), gai_strerror(eai[i].code));
  }
  /* nothing else is taken for a resolver code */
  ck_assert(!ECLSOCK_IS_EAI(0));
  ck_assert(!ECLSOCK_IS_EAI(ECONNREFUSED));
  ck_assert(!ECLSOCK_IS_EAI(ECLSOCK_ETIMEOUT));
  ck_assert(!ECLSOCK_IS_EAI(ECLSOCK_ETOOLONG));
}
END_TEST

START_TEST(test_module_codes)
{
  ck_assert_str_eq(eclsock_err_name(ECLSOCK_ETIMEOUT), "ETIMEDOUT");
  ck_assert_str_eq(eclsock_err_name(ECLSOCK_EBADARG), "EINVAL");
  ck_assert_str_eq(eclsock_err_name(ECLSOCK_ENOADDR), "EAI-NONAME");
  ck_assert_str_eq(eclsock_err_name(ECLSOCK_ETOOLONG), "ENAMETOOLONG");
  ck_assert_str_eq(eclsock_err_message(ECLSOCK_ETIMEOUT), "Timed out");
  ck_assert_int_gt((int)strlen(eclsock_err_message(ECLSOCK_EBADARG)), 0);
  ck_assert_int_gt((int)strlen(eclsock_err_message(ECLSOCK_ENOADDR)), 0);
  ck_assert_int_gt((int)strlen(eclsock_err_message(ECLSOCK_ETOOLONG)), 0);
  /* codes nobody defined */
  ck_assert_str_eq(eclsock_err_name(-500), "UNKNOWN");
  ck_assert_str_eq(eclsock_err_message(-500), "Unknown error");
  ck_assert_str_eq(eclsock_err_name(0), "UNKNOWN");
}
END_TEST

/* Every keyword that conditions.lisp maps to a class is the name of some
   code, so no class is unreachable. */
START_TEST(test_classes_reachable)
{
  cl_object l = tu_eval("ECLSOCK::*CODE-CLASSES*");
  int n = 0;
  ck_assert(ECL_CONSP(l));
  for (; ECL_CONSP(l); l = ECL_CONS_CDR(l), n++) {
    cl_object kw = ECL_CONS_CAR(ECL_CONS_CAR(l));
    const char *want = tu_princ(kw);
    int c, found = 0;
    for (c = 1; c < 256 && !found; c++)
      found = !strcmp(eclsock_err_name(c), want);
    for (c = -1; c > -20 && !found; c--)
      found = !strcmp(eclsock_err_name(c), want);
    for (c = ECLSOCK_EAI_BASE; c > ECLSOCK_EAI_BASE - 100 && !found; c--)
      found = !strcmp(eclsock_err_name(c), want);
    ck_assert_msg(found, "no code is named %s", want);
  }
  ck_assert_int_ge(n, 10);
}
END_TEST

/* -- eclsock_raise ----------------------------------------------------- */

struct raise_args {
  const char *op;
  int code;
  cl_object host, port, stream;
};

static void
do_raise(void *arg)
{
  struct raise_args *a = arg;
  eclsock_raise(a->op, a->code, a->host, a->port, a->stream);
}

static cl_object
raise_and_catch(const char *op, int code, cl_object host, cl_object port,
                cl_object stream)
{
  struct raise_args a;
  cl_object c;
  a.op = op; a.code = code; a.host = host; a.port = port; a.stream = stream;
  c = tu_catch(do_raise, &a);
  ck_assert_msg(!Null(c), "eclsock_raise returned");
  return c;
}

static cl_object
slot(const char *reader, cl_object c)
{
  return cl_funcall(2, tu_sym(reader, "ECLSOCK"), c);
}

/* CODE raised from C is a CLASS, with keyword NAME and errno ERRNO_VALUE
   (negative: NIL). */
static void
check_raise(int code, const char *class, const char *name, int errno_value)
{
  cl_object host = ecl_make_simple_base_string("example.test", -1);
  cl_object c = raise_and_catch("connect", code, host, ecl_make_fixnum(7), ECL_NIL);
  cl_object e;
  ck_assert_msg(tu_typep(c, class, "ECLSOCK"), "code %d gave %s, not %s", code,
                tu_princ(cl_type_of(c)), class);
  ck_assert(tu_typep(c, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(tu_typep(c, "STREAM-ERROR", "CL"));
  ck_assert(tu_typep(c, "OS-ERROR", "EXT"));
  ck_assert_str_eq(tu_princ(slot("SOCKET-ERROR-CODE", c)), name);
  ck_assert(ecl_keywordp(slot("SOCKET-ERROR-CODE", c)));
  e = slot("SOCKET-ERROR-ERRNO", c);
  if (errno_value < 0)
    ck_assert(Null(e));
  else
    ck_assert_msg(ecl_eql(e, ecl_make_fixnum(errno_value)), "errno slot %s",
                  tu_princ(e));
  ck_assert_str_eq(tu_princ(slot("SOCKET-ERROR-SYSCALL", c)), "connect");
  ck_assert_str_eq(tu_princ(slot("SOCKET-ERROR-HOST", c)), "example.test");
  ck_assert(ecl_eql(slot("SOCKET-ERROR-PORT", c), ecl_make_fixnum(7)));
  ck_assert_str_eq(tu_princ(slot("SOCKET-ERROR-MESSAGE", c)),
                   eclsock_err_message(code));
  /* the report names the operation, the host and the message */
  {
    char report[1024];
    snprintf(report, sizeof report, "%s", tu_princ(c));
    ck_assert_msg(strstr(report, "connect") && strstr(report, "example.test")
                  && strstr(report, eclsock_err_message(code)),
                  "report: %s", report);
  }
}

START_TEST(test_raise_classes)
{
  check_raise(ECONNREFUSED, "CONNECTION-REFUSED-ERROR", "ECONNREFUSED", ECONNREFUSED);
  check_raise(ECONNRESET, "CONNECTION-RESET-ERROR", "ECONNRESET", ECONNRESET);
  check_raise(EPIPE, "CONNECTION-RESET-ERROR", "EPIPE", EPIPE);
  check_raise(EADDRINUSE, "ADDRESS-IN-USE-ERROR", "EADDRINUSE", EADDRINUSE);
  check_raise(EADDRNOTAVAIL, "ADDRESS-NOT-AVAILABLE-ERROR", "EADDRNOTAVAIL",
              EADDRNOTAVAIL);
  check_raise(ETIMEDOUT, "SOCKET-TIMEOUT-ERROR", "ETIMEDOUT", ETIMEDOUT);
  check_raise(ECLSOCK_ETIMEOUT, "SOCKET-TIMEOUT-ERROR", "ETIMEDOUT", ETIMEDOUT);
  check_raise(ENETUNREACH, "NETWORK-UNREACHABLE-ERROR", "ENETUNREACH", ENETUNREACH);
  check_raise(EHOSTUNREACH, "HOST-UNREACHABLE-ERROR", "EHOSTUNREACH", EHOSTUNREACH);
  check_raise(ECLSOCK_EAI(EAI_NONAME), "HOST-NOT-FOUND-ERROR", "EAI-NONAME", -1);
  check_raise(ECLSOCK_EAI(EAI_AGAIN), "HOST-NOT-FOUND-ERROR", "EAI-AGAIN", -1);
  check_raise(ECLSOCK_ENOADDR, "HOST-NOT-FOUND-ERROR", "EAI-NONAME", -1);
  check_raise(ECLSOCK_ETOOLONG, "SOCKET-ERROR", "ENAMETOOLONG", ENAMETOOLONG);
  check_raise(ECLSOCK_EBADARG, "SOCKET-ERROR", "EINVAL", EINVAL);
  check_raise(EBADF, "SOCKET-ERROR", "EBADF", EBADF);
  /* no class for it: the base class, still with the code */
  ck_assert(!tu_typep(raise_and_catch("x", EBADF, ECL_NIL, ECL_NIL, ECL_NIL),
                      "CONNECTION-RESET-ERROR", "ECLSOCK"));
}
END_TEST

START_TEST(test_raise_stream_and_identifier)
{
  cl_object s = cl_make_string_output_stream(0);
  cl_object c = raise_and_catch("send", EPIPE, ECL_NIL, ECL_NIL, s);
  ck_assert(cl_funcall(2, tu_sym("STREAM-ERROR-STREAM", "CL"), c) == s);
  ck_assert(Null(slot("SOCKET-ERROR-HOST", c)));
  ck_assert_str_eq(tu_princ(slot("SOCKET-ERROR-IDENTIFIER", c)), "BROKEN-PIPE");
  c = raise_and_catch("connect", ECONNREFUSED, ECL_NIL, ECL_NIL, ECL_NIL);
  ck_assert(Null(cl_funcall(2, tu_sym("STREAM-ERROR-STREAM", "CL"), c)));
  ck_assert_str_eq(tu_princ(slot("SOCKET-ERROR-IDENTIFIER", c)), "CONNECTION-REFUSED");
  ck_assert_str_eq(tu_princ(cl_funcall(2, tu_sym("OS-ERROR-CODE", "EXT"), c)),
                   "ECONNREFUSED");
}
END_TEST

static Suite *
errors_suite(void)
{
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("table");
  tcase_add_test(tc, test_errno_names);
  tcase_add_test(tc, test_errno_table_messages);
  tcase_add_test(tc, test_eai_codes);
  tcase_add_test(tc, test_module_codes);
  suite_add_tcase(s, tc);
  tc = tcase_create("conditions");
  tcase_add_test(tc, test_classes_reachable);
  tcase_add_test(tc, test_raise_classes);
  tcase_add_test(tc, test_raise_stream_and_identifier);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(errors_suite, 1)
