/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * args.c - Lisp arguments turned into C values for the primitives.
 *
 * Owns: the checks every primitive file (glue.c, conn.c, dgram.c,
 * tlsglue.c, bsd.c) applies to the Lisp values it hands to C: strings (no
 * NUL inside: the name checked in Lisp must be the name used),
 * descriptors, integers in a range, octet vectors with bounds, property
 * lists of named settings, and timeouts (seconds) as deadlines.  A bad
 * value is a type error (or a bounds error) before anything is made.
 * Must not: make system calls or keep state.
 */
#include "internal.h"
#include <limits.h>

/* A C string for the Lisp string S; *KEEP holds the Lisp object that owns
   the characters (keep it alive while the pointer is used).  Every Lisp
   string that reaches C passes here.  A NUL inside S would end the C
   string early, so it is a type error (ECLSOCK::C-STRING: a string
   without NUL). */
char *
eclsock_arg_cstring(cl_object s, cl_object *keep)
{
  cl_index i, n;
  if (!ECL_STRINGP(s))
    FEwrong_type_argument(ecl_make_symbol("STRING", "CL"), s);
  for (i = 0, n = ecl_length(s); i < n; i++) {
    if (ecl_char(s, i) == 0)
      cl_error(9, ecl_make_symbol("SIMPLE-TYPE-ERROR", "CL"),
               ecl_make_keyword("DATUM"), s,
               ecl_make_keyword("EXPECTED-TYPE"), eclsock_sym("C-STRING"),
               ecl_make_keyword("FORMAT-CONTROL"),
               ecl_make_simple_base_string("The string ~S holds a NUL character "
                                           "at index ~D: it cannot be passed "
                                           "to the C library.", -1),
               ecl_make_keyword("FORMAT-ARGUMENTS"),
               cl_list(2, s, ecl_make_fixnum(i)));
  }
  *keep = ecl_null_terminated_base_string(si_coerce_to_base_string(s));
  return (char *)(*keep)->base_string.self;
}

/* A descriptor: a fixnum from 0 to INT_MAX. */
int
eclsock_arg_fd(cl_object fd)
{
  if (!ECL_FIXNUMP(fd) || ecl_fixnum(fd) < 0 || ecl_fixnum(fd) > 0x7fffffff)
    FEwrong_type_argument(cl_list(3, ecl_make_symbol("INTEGER", "CL"),
                                  ecl_make_fixnum(0), ecl_make_fixnum(0x7fffffff)),
                          fd);
  return (int)ecl_fixnum(fd);
}

/* The octets of V from START to END: *P and *N.  V must be a vector of
   (unsigned-byte 8) or (signed-byte 8). */
void
eclsock_arg_octets(cl_object v, cl_object start, cl_object end,
                   unsigned char **p, size_t *n)
{
  cl_index a, e;
  if (!ECL_VECTORP(v) || (ecl_array_elttype(v) != ecl_aet_b8
                          && ecl_array_elttype(v) != ecl_aet_i8))
    FEwrong_type_argument(cl_list(2, ecl_make_symbol("VECTOR", "CL"),
                                  cl_list(2, ecl_make_symbol("UNSIGNED-BYTE", "CL"),
                                          ecl_make_fixnum(8))), v);
  a = ecl_to_size(start);
  e = ecl_to_size(end);
  if (a > e || e > v->vector.dim)
    FEerror("Invalid bounds ~D..~D for a vector of length ~D", 3, start, end,
            ecl_make_fixnum(v->vector.dim));
  *p = v->vector.self.b8 + a;
  *n = e - a;
}

/* Integers.  Every integer argument of a primitive goes through one of
   these: a value out of its range is a type error naming the range, never
   truncated to a C int. */

/* An integer from LO to HI as a C int (LO and HI within int). */
int
eclsock_arg_int(cl_object x, long lo, long hi)
{
  if (!ECL_FIXNUMP(x) || ecl_fixnum(x) < lo || ecl_fixnum(x) > hi)
    FEwrong_type_argument(cl_list(3, ecl_make_symbol("INTEGER", "CL"),
                                  ecl_make_integer(lo), ecl_make_integer(hi)), x);
  return (int)ecl_fixnum(x);
}

/* The same, NIL meaning DFLT. */
int
eclsock_arg_int_or(cl_object x, int dflt, long lo, long hi)
{
  return Null(x) ? dflt : eclsock_arg_int(x, lo, hi);
}

/* Any C int (a C constant, flags, a level, a backlog). */
int
eclsock_arg_cint(cl_object x)
{
  return eclsock_arg_int(x, INT_MIN, INT_MAX);
}

/* A port: 0 to 65535. */
int
eclsock_arg_port(cl_object x)
{
  return eclsock_arg_int(x, 0, 65535);
}

/* PLIST, a property list whose keys are keywords named in KEYS (a list
   ending with NULL), each at most once.  Anything else is a type error
   before anything is made: the datum PLIST and the expected type LIST
   when it is no property list (an atom, a vector, a string, an odd
   length), the datum the key and the expected type (MEMBER key ...) when
   a key is unknown or given twice.  Read the values with eclsock_arg_key. */
void
eclsock_arg_plist(cl_object plist, const char *const *keys)
{
  cl_object l, seen = ECL_NIL, names = ECL_NIL, bad;
  const char *const *p;
  for (l = plist; ECL_CONSP(l) && ECL_CONSP(ECL_CONS_CDR(l));
       l = ECL_CONS_CDR(ECL_CONS_CDR(l))) {
    cl_object k = ECL_CONS_CAR(l);
    for (p = keys; *p; p++)
      if (k == ecl_make_keyword(*p))
        break;
    if (!*p || !Null(ecl_memql(k, seen)))
      break;
    seen = ecl_cons(k, seen);
  }
  if (Null(l))
    return;
  bad = ECL_CONSP(l) && ECL_CONSP(ECL_CONS_CDR(l)) ? ECL_CONS_CAR(l) : ECL_NIL;
  for (p = keys; *p; p++)
    names = ecl_cons(ecl_make_keyword(*p), names);
  names = cl_nreverse(names);
  if (Null(bad))
    cl_error(9, ecl_make_symbol("SIMPLE-TYPE-ERROR", "CL"),
             ecl_make_keyword("DATUM"), plist,
             ecl_make_keyword("EXPECTED-TYPE"), ecl_make_symbol("LIST", "CL"),
             ecl_make_keyword("FORMAT-CONTROL"),
             ecl_make_simple_base_string("~S is not a property list of settings "
                                         "(keys among ~{~S~^ ~}).", -1),
             ecl_make_keyword("FORMAT-ARGUMENTS"), cl_list(2, plist, names));
  cl_error(9, ecl_make_symbol("SIMPLE-TYPE-ERROR", "CL"),
           ecl_make_keyword("DATUM"), bad,
           ecl_make_keyword("EXPECTED-TYPE"), ecl_cons(ecl_make_symbol("MEMBER", "CL"), names),
           ecl_make_keyword("FORMAT-CONTROL"),
           ecl_make_simple_base_string("~S in the settings ~S is no setting or "
                                       "comes twice (keys among ~{~S~^ ~}).", -1),
           ecl_make_keyword("FORMAT-ARGUMENTS"), cl_list(3, bad, plist, names));
}

/* The value of key NAME in PLIST (checked by eclsock_arg_plist), NIL when
   absent. */
cl_object
eclsock_arg_key(cl_object plist, const char *name)
{
  return ecl_getf(plist, ecl_make_keyword(name), ECL_NIL);
}

/* X, a non-negative real, as a double; a type error otherwise.  More than
   INT_MAX seconds (68 years) waits as long as INT_MAX: a huge bignum or
   ratio would overflow the conversion to a double. */
double
eclsock_arg_seconds(cl_object x)
{
  if (!ECL_REAL_TYPE_P(ecl_t_of(x)) || ecl_minusp(x))
    FEwrong_type_argument(cl_list(2, ecl_make_symbol("REAL", "CL"), ecl_make_fixnum(0)),
                          x);
  if (ecl_number_compare(x, ecl_make_fixnum(INT_MAX)) > 0)
    return (double)INT_MAX;
  return ecl_to_double(x);
}

/* A Lisp timeout (a non-negative real in seconds, or NIL for none) as a
   deadline. */
eclsock_deadline
eclsock_arg_deadline(cl_object timeout)
{
  if (Null(timeout))
    return ECLSOCK_NO_DEADLINE;
  return eclsock_tm_deadline(eclsock_arg_seconds(timeout));
}
