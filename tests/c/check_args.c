/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_args.c - Check suite "args" for src/args.c: every Lisp argument
 * check the primitives share.  A good value comes back as the C value it
 * stands for; a bad one is a condition of the right type (TYPE-ERROR with
 * the offending datum and the expected type, SIMPLE-TYPE-ERROR naming
 * ECLSOCK::C-STRING for a NUL, an error for bad bounds) and never a
 * truncated or wrapped C value.  Loads the built sock.fas (the package and
 * ECLSOCK::C-STRING).
 */
#include "testutil.h"
#include <limits.h>
#include <math.h>
#include <string.h>

static cl_object str(const char *s) { return ecl_make_simple_base_string(s, -1); }
static cl_object fx(cl_fixnum n) { return ecl_make_fixnum(n); }
static cl_object
datum(cl_object e)
{
  return cl_funcall(2, tu_sym("TYPE-ERROR-DATUM", "CL"), e);
}
static cl_object
expected(cl_object e)
{
  return cl_funcall(2, tu_sym("TYPE-ERROR-EXPECTED-TYPE", "CL"), e);
}

/* One call of an args.c function on Lisp arguments, for tu_catch. */
enum which { CSTRING, FD, OCTETS, INT, INT_OR, CINT, PORT, PLIST, SECONDS, DEADLINE };
struct call {
  enum which fn;
  cl_object a, b, c;
  long lo, hi;
  int dflt;
  const char *const *keys;
  /* results */
  const char *s;
  long i;
  unsigned char *p;
  size_t n;
  double d;
};

static void
run(void *arg)
{
  struct call *c = arg;
  cl_object keep;
  switch (c->fn) {
  case CSTRING: c->s = eclsock_arg_cstring(c->a, &keep); break;
  case FD: c->i = eclsock_arg_fd(c->a); break;
  case OCTETS: eclsock_arg_octets(c->a, c->b, c->c, &c->p, &c->n); break;
  case INT: c->i = eclsock_arg_int(c->a, c->lo, c->hi); break;
  case INT_OR: c->i = eclsock_arg_int_or(c->a, c->dflt, c->lo, c->hi); break;
  case CINT: c->i = eclsock_arg_cint(c->a); break;
  case PORT: c->i = eclsock_arg_port(c->a); break;
  case PLIST: eclsock_arg_plist(c->a, c->keys); break;
  case SECONDS: c->d = eclsock_arg_seconds(c->a); break;
  case DEADLINE: c->d = eclsock_arg_deadline(c->a); break;
  }
}

/* Call FN on A; the condition it signalled (NIL: none). */
static cl_object
attempt(struct call *c)
{
  return tu_catch(run, c);
}

/* FN on A must signal a TYPE-ERROR whose datum is A. */
static cl_object
type_error_on(struct call *c)
{
  cl_object e = attempt(c);
  ck_assert_msg(tu_typep(e, "TYPE-ERROR", "CL"), "%s: no type error but %s",
                tu_princ(c->a), tu_princ(e));
  ck_assert(ecl_eql(datum(e), c->a)
            || !Null(cl_equal(datum(e), c->a)));
  return e;
}

static cl_object
bignum(void)
{
  return ecl_read_from_cstring("123456789012345678901234567890");
}

/* -- Strings ------------------------------------------------------------ */

START_TEST(test_cstring)
{
  struct call c = { .fn = CSTRING };
  cl_object e, s;
  c.a = str("127.0.0.1");
  ck_assert(Null(attempt(&c)));
  ck_assert_str_eq(c.s, "127.0.0.1");
  /* a non-simple string (with a fill pointer) gives its active part */
  s = tu_eval("(make-array 8 :element-type 'character :fill-pointer 3 "
              ":initial-contents \"abcdefgh\")");
  c.a = s;
  ck_assert(Null(attempt(&c)));
  ck_assert_str_eq(c.s, "abc");
  /* a NUL inside: the name checked in Lisp would not be the name used */
  c.a = tu_eval("(format nil \"host~Cevil\" (code-char 0))");
  e = attempt(&c);
  ck_assert(tu_typep(e, "SIMPLE-TYPE-ERROR", "CL"));
  ck_assert(expected(e) == tu_sym("C-STRING", "ECLSOCK"));
  /* the report names the index of the NUL */
  ck_assert(ecl_eql(cl_second(cl_funcall(2, tu_sym("SIMPLE-CONDITION-FORMAT-ARGUMENTS", "CL"),
                                         e)), fx(4)));
  /* not a string at all */
  c.a = tu_sym("FOO", "KEYWORD");
  type_error_on(&c);
  c.a = fx(42);
  type_error_on(&c);
}
END_TEST

/* -- Integers ----------------------------------------------------------- */

START_TEST(test_fd)
{
  struct call c = { .fn = FD };
  c.a = fx(0);
  ck_assert(Null(attempt(&c)));
  ck_assert_int_eq(c.i, 0);
  c.a = fx(INT_MAX);
  ck_assert(Null(attempt(&c)));
  ck_assert_int_eq(c.i, INT_MAX);
  /* out of range or not an integer: never wrapped into another descriptor */
  c.a = fx(-1); type_error_on(&c);
  c.a = ecl_make_integer((cl_fixnum)INT_MAX + 1); type_error_on(&c);
  c.a = ecl_make_integer((cl_fixnum)UINT_MAX + 4); type_error_on(&c);
  c.a = bignum(); type_error_on(&c);
  c.a = str("3"); type_error_on(&c);
  c.a = ecl_make_double_float(3.0); type_error_on(&c);
}
END_TEST

START_TEST(test_int_ranges)
{
  struct call c = { .fn = INT, .lo = -5, .hi = 10 };
  cl_object e, want;
  c.a = fx(-5); ck_assert(Null(attempt(&c))); ck_assert_int_eq(c.i, -5);
  c.a = fx(10); ck_assert(Null(attempt(&c))); ck_assert_int_eq(c.i, 10);
  c.a = fx(11);
  e = type_error_on(&c);
  /* the expected type names the range */
  want = cl_list(3, tu_sym("INTEGER", "CL"), fx(-5), fx(10));
  ck_assert_msg(!Null(cl_equal(expected(e), want)),
                "expected type %s", tu_princ(expected(e)));
  c.a = fx(-6); type_error_on(&c);
  c.a = ECL_NIL; type_error_on(&c);
  /* NIL is the default only where the argument may be left out */
  c.fn = INT_OR; c.dflt = 7;
  c.a = ECL_NIL; ck_assert(Null(attempt(&c))); ck_assert_int_eq(c.i, 7);
  c.a = fx(3); ck_assert(Null(attempt(&c))); ck_assert_int_eq(c.i, 3);
  c.a = fx(99); type_error_on(&c);
  /* any C int, and nothing wider */
  c.fn = CINT;
  c.a = ecl_make_integer(INT_MIN); ck_assert(Null(attempt(&c)));
  ck_assert_int_eq(c.i, INT_MIN);
  c.a = ecl_make_integer((cl_fixnum)INT_MIN - 1); type_error_on(&c);
  c.a = ecl_make_integer((cl_fixnum)INT_MAX + 1); type_error_on(&c);
  c.a = bignum(); type_error_on(&c);
  /* ports */
  c.fn = PORT;
  c.a = fx(65535); ck_assert(Null(attempt(&c))); ck_assert_int_eq(c.i, 65535);
  c.a = fx(0); ck_assert(Null(attempt(&c))); ck_assert_int_eq(c.i, 0);
  c.a = fx(65536); type_error_on(&c);
  c.a = fx(-1); type_error_on(&c);
  c.a = str("80"); type_error_on(&c);
}
END_TEST

/* -- Octet vectors ------------------------------------------------------ */

START_TEST(test_octets)
{
  struct call c = { .fn = OCTETS };
  cl_object v = ecl_alloc_simple_vector(10, ecl_aet_b8), e;
  int i;
  for (i = 0; i < 10; i++)
    v->vector.self.b8[i] = (unsigned char)(i * 3);
  c.a = v; c.b = fx(2); c.c = fx(7);
  ck_assert(Null(attempt(&c)));
  ck_assert_uint_eq(c.n, 5);
  ck_assert_ptr_eq(c.p, v->vector.self.b8 + 2);
  ck_assert_int_eq(c.p[0], 6);
  /* the whole vector, and an empty range at its end */
  c.b = fx(0); c.c = fx(10);
  ck_assert(Null(attempt(&c)));
  ck_assert_uint_eq(c.n, 10);
  c.b = fx(10); c.c = fx(10);
  ck_assert(Null(attempt(&c)));
  ck_assert_uint_eq(c.n, 0);
  /* (signed-byte 8) vectors are octets too */
  c.a = tu_eval("(make-array 4 :element-type '(signed-byte 8) "
                ":initial-contents '(-1 0 1 -128))");
  c.b = fx(0); c.c = fx(4);
  ck_assert(Null(attempt(&c)));
  ck_assert_uint_eq(c.n, 4);
  ck_assert_int_eq(c.p[0], 255);
  ck_assert_int_eq(c.p[3], 128);
  /* bounds outside the vector, or reversed: an error, nothing read */
  c.a = v; c.b = fx(3); c.c = fx(11);
  e = attempt(&c);
  ck_assert(tu_typep(e, "ERROR", "CL"));
  ck_assert_msg(strstr(tu_princ(e), "Invalid bounds 3..11"), "report: %s", tu_princ(e));
  c.b = fx(6); c.c = fx(5);
  ck_assert(tu_typep(attempt(&c), "ERROR", "CL"));
  c.b = fx(-1); c.c = fx(5);
  ck_assert(tu_typep(attempt(&c), "ERROR", "CL"));
  /* not octets: a string, a general vector, a list, (unsigned-byte 16) */
  c.b = fx(0); c.c = fx(1);
  c.a = str("abc"); type_error_on(&c);
  c.a = tu_eval("(vector 1 2 3)"); type_error_on(&c);
  c.a = tu_eval("'(1 2 3)"); type_error_on(&c);
  c.a = tu_eval("(make-array 3 :element-type '(unsigned-byte 16))"); type_error_on(&c);
}
END_TEST

/* -- Property lists of settings ----------------------------------------- */

static const char *const keys[] = { "VERIFY", "CA-FILE", "CIPHERS", NULL };

START_TEST(test_plist)
{
  struct call c = { .fn = PLIST, .keys = keys };
  cl_object e, names;
  c.a = ECL_NIL;
  ck_assert(Null(attempt(&c)));
  c.a = tu_eval("'(:verify 2 :ca-file \"/ca.pem\")");
  ck_assert(Null(attempt(&c)));
  ck_assert(ecl_eql(eclsock_arg_key(c.a, "VERIFY"), fx(2)));
  ck_assert_str_eq(tu_princ(eclsock_arg_key(c.a, "CA-FILE")), "/ca.pem");
  ck_assert(Null(eclsock_arg_key(c.a, "CIPHERS")));
  /* an unknown key: the datum is the key, the expected type the keys */
  c.a = tu_eval("'(:verify 2 :verfy 1)");
  e = attempt(&c);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  ck_assert(datum(e) == ecl_make_keyword("VERFY"));
  names = cl_list(4, tu_sym("MEMBER", "CL"), ecl_make_keyword("VERIFY"),
                  ecl_make_keyword("CA-FILE"), ecl_make_keyword("CIPHERS"));
  ck_assert(!Null(cl_equal(expected(e), names)));
  /* a key given twice */
  c.a = tu_eval("'(:ciphers \"a\" :verify 0 :ciphers \"b\")");
  e = attempt(&c);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  ck_assert(datum(e) == ecl_make_keyword("CIPHERS"));
  /* no property list: odd length, an atom, a dotted list, a vector */
  c.a = tu_eval("'(:verify)");
  e = attempt(&c);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  ck_assert(datum(e) == c.a);
  ck_assert(expected(e) == tu_sym("LIST", "CL"));
  c.a = fx(3); ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
  c.a = tu_eval("'(:verify 1 . 2)"); ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
  c.a = tu_eval("#(:verify 1)"); ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
  /* a circular list ends in an error, not a hang */
  c.a = tu_eval("(let ((l (list :verify 1 :ca-file \"x\"))) (setf (cdr (last l)) l) l)");
  ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
}
END_TEST

/* -- Seconds and deadlines ---------------------------------------------- */

START_TEST(test_seconds)
{
  struct call c = { .fn = SECONDS };
  c.a = tu_eval("3/2");
  ck_assert(Null(attempt(&c)));
  ck_assert(c.d == 1.5);
  c.a = fx(0);
  ck_assert(Null(attempt(&c)));
  ck_assert(c.d == 0.0);
  c.a = ecl_make_single_float(0.25f);
  ck_assert(Null(attempt(&c)));
  ck_assert(c.d == 0.25);
  /* more than 68 years waits as long as INT_MAX seconds, not overflowing */
  c.a = bignum();
  ck_assert(Null(attempt(&c)));
  ck_assert(c.d == (double)INT_MAX);
  c.a = tu_eval("(expt 10 400)");
  ck_assert(Null(attempt(&c)));
  ck_assert(c.d == (double)INT_MAX);
  /* negative, complex, not a number */
  c.a = fx(-1); type_error_on(&c);
  c.a = tu_eval("-1/1000"); type_error_on(&c);
  c.a = tu_eval("#c(1 1)"); type_error_on(&c);
  c.a = str("1"); type_error_on(&c);
}
END_TEST

START_TEST(test_deadline)
{
  struct call c = { .fn = DEADLINE };
  double before, after;
  c.a = ECL_NIL;
  ck_assert(Null(attempt(&c)));
  ck_assert(c.d == ECLSOCK_NO_DEADLINE);
  /* a deadline is the monotonic clock plus the timeout */
  c.a = fx(100);
  before = eclsock_tm_now();
  ck_assert(Null(attempt(&c)));
  after = eclsock_tm_now();
  ck_assert(c.d >= before + 100.0 && c.d <= after + 100.0);
  c.a = fx(0);
  before = eclsock_tm_now();
  ck_assert(Null(attempt(&c)));
  ck_assert(c.d >= before && c.d >= 0.0);
  c.a = fx(-3); type_error_on(&c);
  c.a = ECL_T; type_error_on(&c);
}
END_TEST

static Suite *
args_suite(void)
{
  Suite *s = suite_create("args");
  TCase *tc = tcase_create("values");
  tcase_add_test(tc, test_cstring);
  tcase_add_test(tc, test_fd);
  tcase_add_test(tc, test_int_ranges);
  tcase_add_test(tc, test_octets);
  tcase_add_test(tc, test_plist);
  tcase_add_test(tc, test_seconds);
  tcase_add_test(tc, test_deadline);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(args_suite, 1)
