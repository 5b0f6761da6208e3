/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * lispval.c - the Lisp-object half of values the C layers speak.
 *
 * Owns: socket option values between Lisp objects and struct eclsock_optval
 * (options.c), for every face: which Lisp values an option of each kind
 * takes and what it reads as, in the core faces' socket-options (CLISP,
 * Allegro, PORT) and in SB-BSD-SOCKETS' accessors; option keywords; the
 * kind numbers lisp/bsd.lisp passes.  Each rule is written here once and
 * the faces differ only where this file says so.
 * Must not: make system calls (options.c does) or know a face's classes.
 */
#include "internal.h"
#include <limits.h>
#include <string.h>

/* -- Option names ---------------------------------------------------------- */

/* Every option keyword socket-options knows, in the table's order. */
cl_object
eclsock_lv_option_names(void)
{
  size_t n, i;
  const struct eclsock_option *t = eclsock_opt_table(&n);
  cl_object names = ECL_NIL;
  for (i = n; i-- > 0; )
    names = ecl_cons(ecl_make_keyword(t[i].name), names);
  return names;
}

/* The table's entry for option keyword KW; a type error otherwise. */
const struct eclsock_option *
eclsock_lv_option(cl_object kw)
{
  size_t n, i;
  const struct eclsock_option *t = eclsock_opt_table(&n);
  /* By identity, not by the C text of the name: a keyword whose name holds
     a NUL or non-base characters is no option. */
  for (i = 0; i < n; i++)
    if (kw == ecl_make_keyword(t[i].name))
      return &t[i];
  FEwrong_type_argument(ecl_cons(ecl_make_symbol("MEMBER", "CL"),
                                 eclsock_lv_option_names()), kw);
}

/* The kind lisp/bsd.lisp numbers K (define-sockopt: 0 int, 1 bool,
   2 timeval, 3 linger, 4 string). */
enum eclsock_optkind
eclsock_lv_optkind(cl_object k)
{
  static const enum eclsock_optkind kinds[] =
    { OPT_INT, OPT_BOOL, OPT_TIMEVAL, OPT_LINGER, OPT_STRING };
  return kinds[eclsock_arg_int(k, 0, 4)];
}

/* -- Values ---------------------------------------------------------------- */

static cl_object
int_range(long lo)
{
  return cl_list(3, ecl_make_symbol("INTEGER", "CL"), ecl_make_integer(lo),
                 ecl_make_fixnum(INT_MAX));
}

/* VALUE as option value *V of kind K in FACE; a type error when VALUE is
   none.  *KEEP owns a string's characters. */
static void
optval_arg(cl_object value, enum eclsock_optkind k, enum eclsock_face face,
           struct eclsock_optval *v, cl_object *keep)
{
  memset(v, 0, sizeof *v);
  *keep = ECL_NIL;
  switch (k) {
  case OPT_BOOL:
    /* SB-BSD-SOCKETS (as SBCL) takes the integer 0 as off too */
    v->on = !(Null(value) || (face == ECLSOCK_FACE_BSD && ECL_FIXNUMP(value)
                              && ecl_fixnum(value) == 0));
    break;
  case OPT_INT:
    /* socket-options' integers (sizes, counts, seconds) are 0 to INT_MAX;
       SB-BSD-SOCKETS passes any C int on, as SBCL */
    v->i = eclsock_arg_int(value, face == ECLSOCK_FACE_BSD ? INT_MIN : 0, INT_MAX);
    break;
  case OPT_TIMEVAL:
    /* seconds, a real from 0 to INT_MAX (68 years): more would overflow
       time_t's conversion from a double */
    if (!ECL_REAL_TYPE_P(ecl_t_of(value)) || ecl_minusp(value)
        || ecl_number_compare(value, ecl_make_fixnum(INT_MAX)) > 0)
      FEwrong_type_argument(cl_list(3, ecl_make_symbol("REAL", "CL"), ecl_make_fixnum(0),
                                    ecl_make_fixnum(INT_MAX)), value);
    v->secs = ecl_to_double(value);
    break;
  case OPT_LINGER:
    /* socket-options: NIL off, T on with 0 seconds, or seconds;
       SB-BSD-SOCKETS: seconds, 0 being off */
    if (face == ECLSOCK_FACE_CORE && (Null(value) || value == ECL_T)) {
      v->on = !Null(value);
    } else if (face == ECLSOCK_FACE_CORE && !(ECL_FIXNUMP(value) && ecl_fixnum(value) >= 0
                                              && ecl_fixnum(value) <= INT_MAX)) {
      FEwrong_type_argument(cl_list(3, ecl_make_symbol("OR", "CL"),
                                    ecl_make_symbol("BOOLEAN", "CL"), int_range(0)), value);
    } else {
      v->i = eclsock_arg_int(value, 0, INT_MAX);
      v->on = face == ECLSOCK_FACE_CORE || v->i > 0;
    }
    break;
  case OPT_STRING:
    v->str = eclsock_arg_cstring(value, keep);
    break;
  }
}

/* Option value *V of kind K as FACE shows it. */
static cl_object
optval_object(enum eclsock_optkind k, enum eclsock_face face,
              const struct eclsock_optval *v)
{
  switch (k) {
  case OPT_BOOL: return v->on ? ECL_T : ECL_NIL;
  case OPT_INT: return ecl_make_integer(v->i);
  case OPT_TIMEVAL:
    /* socket-options: whole seconds as an integer; SB-BSD-SOCKETS: a double */
    if (face == ECLSOCK_FACE_CORE && v->whole)
      return ecl_make_integer((cl_fixnum)v->secs);
    return ecl_make_double_float(v->secs);
  case OPT_LINGER:
    /* off: NIL in socket-options, 0 in SB-BSD-SOCKETS */
    if (!v->on)
      return face == ECLSOCK_FACE_CORE ? ECL_NIL : ecl_make_fixnum(0);
    return ecl_make_integer(v->i);
  case OPT_STRING: default:
    return ecl_make_simple_base_string((char *)v->s, -1);
  }
}

/* The value of option LEVEL/NAME (kind K) of FD as FACE shows it;
   failures signalled. */
cl_object
eclsock_lv_getsockopt(int fd, int level, int name, enum eclsock_optkind k,
                      enum eclsock_face face)
{
  struct eclsock_optval v;
  int code = eclsock_opt_get(fd, level, name, k, &v);
  if (code)
    eclsock_raise("getsockopt", code, ECL_NIL, ECL_NIL, ECL_NIL);
  return optval_object(k, face, &v);
}

/* Set option LEVEL/NAME (kind K) of FD to VALUE as FACE takes it; bad
   values are type errors before the system call, failures signalled. */
void
eclsock_lv_setsockopt(int fd, int level, int name, enum eclsock_optkind k,
                      enum eclsock_face face, cl_object value)
{
  struct eclsock_optval v;
  cl_object keep;
  int code;
  optval_arg(value, k, face, &v, &keep);
  code = eclsock_opt_set(fd, level, name, k, &v);
  (void)keep;
  if (code)
    eclsock_raise("setsockopt", code, ECL_NIL, ECL_NIL, ECL_NIL);
}
