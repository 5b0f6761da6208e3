/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * lispval.c - the Lisp-object half of values the C layers speak.
 *
 * Owns: the C values of the layers below as Lisp objects, for every face:
 * socket option values (struct eclsock_optval, options.c) -- which Lisp
 * values an option of each kind takes and what it reads as, in the core
 * faces' socket-options (CLISP, Allegro, PORT) and in SB-BSD-SOCKETS'
 * accessors, option keywords, the kind numbers lisp/bsd.lisp passes;
 * socket addresses (eclsock_addr, addr.c) as each face shows them and
 * as SB-BSD-SOCKETS names them; and the one datagram send and the one
 * datagram receive of both faces.  Each rule is written here once
 * and the faces differ only where this file says so.
 * Must not: make system calls (os.c, addr.c and options.c do) or know a
 * face's classes.
 */
#include "internal.h"
#include <limits.h>
#include <errno.h>
#include <string.h>
#include <sys/un.h>
#include <netinet/in.h>

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

/* -- Addresses ------------------------------------------------------------- */

/* The keyword of address family AF: :INET, :INET6 or :UNIX.  Interned
   once (interning takes the package lock and hashes the name: several
   thousand instructions per address); the keyword package keeps them, so
   the cache needs no root, and two threads filling it store the same
   symbol. */
cl_object
eclsock_lv_family_keyword(int af)
{
  static cl_object kw[3];
  int i = af == AF_INET6 ? 1 : af == AF_UNIX ? 2 : 0;
  cl_object k = __atomic_load_n(&kw[i], __ATOMIC_ACQUIRE);
  if (!k) {
    static const char *const names[3] = { "INET", "INET6", "UNIX" };
    k = ecl_make_keyword(names[i]);
    __atomic_store_n(&kw[i], k, __ATOMIC_RELEASE);
  }
  return k;
}

static cl_object
octets_object(const void *p, size_t n)
{
  /* allocated directly: make-vector with the type's name would intern
     the name and resolve the type at every call, several thousand
     instructions, which Hunchentoot pays twice per request (it asks for
     both ends of the connection) */
  cl_object v = ecl_alloc_simple_vector(n, ecl_aet_b8);
  memcpy(v->vector.self.b8, p, n);
  return v;
}

/* Address A as FACE shows it, in OUT[0..2].  The core faces: the numeric
   host text (a Unix socket's path, "" when unnamed or when no text can be
   made), the port (0 for Unix) and the family keyword.  SB-BSD-SOCKETS:
   the family number (AF_UNSPEC for a family it does not know), the address
   (an octet vector of 4 or 16; a path string; an octet vector for an
   abstract name; NIL when unnamed) and the port.  Returns 0, or the code
   of the failure to make the core faces' text. */
int
eclsock_lv_address(const eclsock_addr *a, enum eclsock_face face, cl_object out[3])
{
  int family = a->ss.ss_family, port = 0, code = 0;
  cl_object v = ECL_NIL;
  if (face == ECLSOCK_FACE_CORE) {
    char host[NI_MAXHOST];
    code = eclsock_addr_numeric((const struct sockaddr *)&a->ss, a->len, host,
                                sizeof host, &port);
    if (code) {
      host[0] = 0;
      port = 0;
    }
    out[0] = ecl_make_simple_base_string(host, -1);
    out[1] = ecl_make_fixnum(port);
    out[2] = eclsock_lv_family_keyword(family);
    return code;
  }
  if (family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
    v = octets_object(&s4->sin_addr, 4);
    port = ntohs(s4->sin_port);
  } else if (family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
    v = octets_object(&s6->sin6_addr, 16);
    port = ntohs(s6->sin6_port);
  } else if (family == AF_UNIX) {
    const struct sockaddr_un *su = (const struct sockaddr_un *)&a->ss;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = a->len > off ? a->len - off : 0;
    if (n > 0 && su->sun_path[0] == 0) {        /* abstract */
      v = octets_object(su->sun_path + 1, n - 1);
    } else if (n > 0) {
      char path[sizeof su->sun_path + 1];
      memcpy(path, su->sun_path, n);
      path[n] = 0;
      v = ecl_make_simple_base_string(path, -1);
    }
  } else {
    family = AF_UNSPEC;
  }
  out[0] = ecl_make_fixnum(family);
  out[1] = v;
  out[2] = ecl_make_fixnum(port);
  return 0;
}

/* The address that SB-BSD-SOCKETS names by FAMILY (2, 10 or 1), ADDRESS
   (for 2 and 10 an octet vector of 4 or 16; for 1 a path string or, for
   an abstract name, an octet vector) and PORT, in *A: the inverse of
   eclsock_lv_address for ECLSOCK_FACE_BSD.  Bad arguments signal. */
void
eclsock_lv_sockaddr(cl_object family, cl_object address, cl_object port, eclsock_addr *a)
{
  int f = eclsock_arg_cint(family);
  unsigned char *p;
  size_t n;
  if (f == AF_INET || f == AF_INET6) {
    int pt = eclsock_arg_port(port);
    eclsock_arg_octets(address, ecl_make_fixnum(0),
           ecl_make_fixnum(ECL_VECTORP(address) ? address->vector.fillp : 0), &p, &n);
    if (n != (f == AF_INET ? 4u : 16u))
      FEerror("An address of family ~D has ~D octets, not ~D", 3, family,
              ecl_make_fixnum(f == AF_INET ? 4 : 16), ecl_make_fixnum(n));
    eclsock_addr_inet(f, p, pt, a);
  } else if (f == AF_UNIX) {
    cl_object keep, named = ECL_NIL;
    int code;
    if (ECL_STRINGP(address)) {
      char *path = eclsock_arg_cstring(address, &keep);
      code = eclsock_addr_unix_name(path, strlen(path), 0, a);
      named = address;
    } else {                    /* abstract: a NUL, then the name's octets */
      eclsock_arg_octets(address, ecl_make_fixnum(0),
             ecl_make_fixnum(ECL_VECTORP(address) ? address->vector.fillp : 0), &p, &n);
      code = eclsock_addr_unix_name(p, n, 1, a);
    }
    if (code)
      eclsock_raise("bind", code, named, ECL_NIL, ECL_NIL);
  } else {
    FEwrong_type_argument(cl_list(5, ecl_make_symbol("MEMBER", "CL"), ecl_make_fixnum(2),
                                  ecl_make_fixnum(10), ecl_make_fixnum(1), ECL_NIL),
                          family);
  }
}

/* -- Datagrams ------------------------------------------------------------- */

/* Send the octets of V from START to END on FD as one datagram, with FLAGS
   (MSG_...), to the destination FACE names: the core faces, ADDRESS a
   host name or numeric address (PORT its port) in FD's own family, or for
   a Unix socket a file name (PORT unused), FAMILY unused; SB-BSD-SOCKETS,
   FAMILY, ADDRESS and PORT as eclsock_lv_sockaddr takes them.  No
   destination (ADDRESS NIL in the core faces, FAMILY 0 in SB-BSD-SOCKETS):
   the connected peer.  Returns the count sent; the socket cannot take it
   now (EAGAIN): NIL in SB-BSD-SOCKETS, a condition in the core faces. */
cl_object
eclsock_lv_send(int fd, cl_object v, cl_object start, cl_object end, int flags,
                enum eclsock_face face, cl_object family, cl_object address,
                cl_object port)
{
  const cl_env_ptr env = ecl_process_env();
  unsigned char *p;
  size_t n, sent = 0;
  eclsock_addr to;
  int code;
  eclsock_arg_octets(v, start, end, &p, &n);
  to.len = 0;
  if (face == ECLSOCK_FACE_BSD) {
    if (eclsock_arg_cint(family) != 0)
      eclsock_lv_sockaddr(family, address, port, &to);
  } else if (!Null(address)) {
    cl_object keep;
    eclsock_addr self;
    char *h = eclsock_arg_cstring(address, &keep);
    int unix_socket;
    if ((code = eclsock_addr_local(fd, &self)))
      eclsock_raise("getsockname", code, address, port, ECL_NIL);
    unix_socket = self.ss.ss_family == AF_UNIX;
    code = eclsock_addr_destination(self.ss.ss_family, h,
                                    unix_socket ? 0 : eclsock_arg_port(port), &to);
    if (code)
      eclsock_raise("sendto", code, address, unix_socket ? ECL_NIL : port, ECL_NIL);
  }
  code = eclsock_os_sendto(fd, p, n, flags, to.len ? (struct sockaddr *)&to.ss : NULL,
                           to.len, &sent);
  if (code == EAGAIN && face == ECLSOCK_FACE_BSD)
    ecl_return1(env, ECL_NIL);
  if (code)
    eclsock_raise("sendto", code, address, port, ECL_NIL);
  ecl_return1(env, ecl_make_fixnum(sent));
}

/* Receive one datagram (or, on a stream socket, what is there) on FD into
   the octets of V from START to END, with FLAGS (MSG_...): four values,
   the count (with MSG_TRUNC a datagram's full length) and the sender as
   eclsock_lv_address gives it for FACE (an unnamed sender: FD's own family
   and a zero address).  Nothing there on a non-blocking socket: NIL in
   SB-BSD-SOCKETS; in the core faces, whose sockets block, SO_RCVTIMEO
   expired: a timeout. */
cl_object
eclsock_lv_receive(int fd, cl_object v, cl_object start, cl_object end, int flags,
                   enum eclsock_face face)
{
  const cl_env_ptr env = ecl_process_env();
  unsigned char *p;
  size_t n, got = 0;
  eclsock_addr from;
  cl_object out[3];
  int code;
  eclsock_arg_octets(v, start, end, &p, &n);
  memset(&from, 0, sizeof from);
  code = eclsock_os_recvfrom(fd, p, n, flags, &from, &got);
  if (code == EAGAIN && face == ECLSOCK_FACE_BSD)
    ecl_return1(env, ECL_NIL);
  if (code == EAGAIN)
    code = ECLSOCK_ETIMEOUT;
  if (code)
    eclsock_raise("recvfrom", code, ECL_NIL, ECL_NIL, ECL_NIL);
  eclsock_addr_unnamed_sender(fd, &from);
  (void)eclsock_lv_address(&from, face, out);
  env->values[1] = out[0];
  env->values[2] = out[1];
  env->values[3] = out[2];
  env->nvalues = 4;
  return ecl_make_fixnum(got);
}
