/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * glue.c - the registration of ecl-sock's Lisp primitives, and the small ones.
 *
 * Owns: eclsock_init_primitives (the package, every file's registration:
 * bsd.c, conn.c, dgram.c, tlsglue.c, the stream's), and the thin
 * primitives that lisp/ calls with positional arguments already defaulted:
 * addresses and names (%LOCAL-ADDRESS, %RESOLVE, %PARSE-ADDRESS ...),
 * stream accessors, socket-status, options (values: lispval.c), errors,
 * the poller.  Each checks its arguments first (type errors before any
 * system call) and turns an error code into a condition with
 * eclsock_raise().
 * Must not: make sockets (conn.c does), convert option values or
 * addresses itself (lispval.c), or call OpenSSL (tls.c).
 */
#include "internal.h"
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>

#define PKG "ECLSOCK"

/* -- Addresses ---------------------------------------------------------- */

static cl_object
address_values(int code, eclsock_addr *a, const char *op)
{
  cl_object out[3];
  if (!code)
    code = eclsock_lv_address(a, ECLSOCK_FACE_CORE, out);
  if (code)
    eclsock_raise(op, code, ECL_NIL, ECL_NIL, ECL_NIL);
  ecl_return3(ecl_process_env(), out[0], out[1], out[2]);
}

/* (%local-address fd) -> host string, port, family keyword */
static cl_object
l_local_address(cl_object fd)
{
  eclsock_addr a;
  return address_values(eclsock_addr_local(eclsock_arg_fd(fd), &a), &a, "getsockname");
}

static cl_object
l_peer_address(cl_object fd)
{
  eclsock_addr a;
  return address_values(eclsock_addr_peer(eclsock_arg_fd(fd), &a), &a, "getpeername");
}

/* (%address-name numeric-host) -> the host's name, or NIL when the
   resolver has none. */
static cl_object
l_address_name(cl_object host)
{
  const cl_env_ptr env = ecl_process_env();
  cl_object keep, out = ECL_NIL;
  char *h = eclsock_arg_cstring(host, &keep);
  struct addrinfo *res = NULL;
  char name[NI_MAXHOST];
  if (!eclsock_addr_parse_numeric(h, &res)) {
    if (!eclsock_addr_name(res->ai_addr, res->ai_addrlen, name, sizeof name))
      out = ecl_make_simple_base_string(name, -1);
    eclsock_addr_free(res);
  }
  ecl_return1(env, out);
}

/* (%resolve host) -> canonical name, list of numeric address strings,
   list of their families (:INET / :INET6).  Signals when HOST is unknown. */
static cl_object
l_resolve(cl_object host)
{
  const cl_env_ptr env = ecl_process_env();
  cl_object keep, addrs = ECL_NIL, fams = ECL_NIL, canon = ECL_NIL;
  char *h = eclsock_arg_cstring(host, &keep);
  struct addrinfo *res = NULL, *a;
  int r = eclsock_addr_resolve_canon(h, &res);
  if (r)
    eclsock_raise("getaddrinfo", r, host, ECL_NIL, ECL_NIL);
  for (a = res; a; a = a->ai_next) {
    char text[NI_MAXHOST];
    int port;
    if (a->ai_canonname && Null(canon))
      canon = ecl_make_simple_base_string(a->ai_canonname, -1);
    if (!eclsock_addr_numeric(a->ai_addr, a->ai_addrlen, text, sizeof text, &port)) {
      cl_object t = ecl_make_simple_base_string(text, -1);
      if (Null(cl_member(4, t, addrs, ecl_make_keyword("TEST"),
                         ecl_make_symbol("STRING=", "CL")))) {
        addrs = ecl_cons(t, addrs);
        fams = ecl_cons(eclsock_lv_family_keyword(a->ai_family), fams);
      }
    }
  }
  eclsock_addr_free(res);
  ecl_return3(env, canon, cl_nreverse(addrs), cl_nreverse(fams));
}

/* -- Streams ------------------------------------------------------------ */


static cl_object
l_socket_stream_p(cl_object x)
{
  ecl_return1(ecl_process_env(), eclsock_stream_p(x) ? ECL_T : ECL_NIL);
}

/* (%stream-fd s) -> descriptor or NIL when closed. */
static cl_object
l_stream_fd(cl_object s)
{
  int fd = eclsock_stream_fd(eclsock_conn_stream_arg(s));
  ecl_return1(ecl_process_env(), fd < 0 ? ECL_NIL : ecl_make_fixnum(fd));
}

/* (%stream-pending-output s) -> octets buffered, not yet sent. */
static cl_object
l_stream_pending(cl_object s)
{
  ecl_return1(ecl_process_env(),
              ecl_make_fixnum((cl_fixnum)eclsock_stream_pending(eclsock_conn_stream_arg(s))));
}

/* (%flush-mode) -> :CALL-SITE or :EVERY-FLUSH: how the streams tell the
   flushes ECL makes by itself from explicit ones (eclcompat.c). */
static cl_object
l_flush_mode(void)
{
  ecl_return1(ecl_process_env(),
              ecl_make_keyword(eclsock_ecl_flush_mode() == ECLSOCK_FLUSH_CALL_SITE
                               ? "CALL-SITE" : "EVERY-FLUSH"));
}

/* (%stream-buffered-input s) -> true when S has read input ahead that a
   reader of its descriptor (another library's TLS) would never see. */
static cl_object
l_stream_buffered_input(cl_object s)
{
  ecl_return1(ecl_process_env(),
              eclsock_stream_buffered_input(eclsock_conn_stream_arg(s)) ? ECL_T : ECL_NIL);
}

static cl_object
l_stream_host(cl_object s)
{
  ECLSOCK_RETURN1(ecl_process_env(), eclsock_stream_host(eclsock_conn_stream_arg(s)));
}

static cl_object
l_stream_port(cl_object s)
{
  ECLSOCK_RETURN1(ecl_process_env(), eclsock_stream_port(eclsock_conn_stream_arg(s)));
}

/* (%stream-name s) -> "socket LOCAL -> PEER", fixed when it was made */
static cl_object
l_stream_name(cl_object s)
{
  ecl_return1(ecl_process_env(), eclsock_conn_stream_arg(s)->stream.object1);
}

static cl_object
l_stream_shutdown(cl_object s, cl_object how)
{
  eclsock_conn_stream_arg(s);
  if (eclsock_stream_fd(s) < 0)
    eclsock_raise("shutdown", EBADF, ECL_NIL, ECL_NIL, s);
  eclsock_stream_shutdown(s, ecl_to_int(how));
  ecl_return1(ecl_process_env(), ECL_NIL);
}

static cl_object
l_set_element_type(cl_object s, cl_object elttype, cl_object extfmt)
{
  eclsock_stream_set_element_type(eclsock_conn_stream_arg(s), elttype, extfmt);
  ecl_return1(ecl_process_env(), elttype);
}

static cl_object
l_stream_buffered(cl_object s)
{
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_stream_get_buffered(eclsock_conn_stream_arg(s)) ? ECL_T : ECL_NIL);
}

static cl_object
l_set_stream_buffered(cl_object s, cl_object flag)
{
  eclsock_stream_set_buffered(eclsock_conn_stream_arg(s), !Null(flag));
  ecl_return1(ecl_process_env(), flag);
}

/* (%read-octets stream vector start end mode) -> index after the last octet
   stored.  MODE 0 fills (read-sequence), 1 :no-hang, 2 :interactive. */
static cl_object
l_read_octets(cl_object s, cl_object v, cl_object start,
              cl_object end, cl_object mode)
{
  unsigned char *p;
  size_t n;
  cl_index got;
  eclsock_conn_stream_arg(s);
  eclsock_arg_octets(v, start, end, &p, &n);
  if (eclsock_stream_fd(s) < 0)
    eclsock_raise("recv", EBADF, ECL_NIL, ECL_NIL, s);
  got = eclsock_stream_read_octets(s, p, n, ecl_to_int(mode));
  ecl_return1(ecl_process_env(), ecl_make_fixnum(ecl_to_size(start) + got));
}

static cl_object
l_status(cl_object what, cl_object timeout)
{
  return eclsock_status(what, eclsock_arg_deadline(timeout));
}

static cl_object
l_set_server_class(cl_object cls)
{
  eclsock_status_set_server_class(cls);
  ecl_return1(ecl_process_env(), cls);
}

/* -- Socket options (values: lispval.c) --------------------------------- */

/* (%getsockopt fd option) -> the option's value */
static cl_object
l_getsockopt(cl_object fd, cl_object kw)
{
  const struct eclsock_option *o = eclsock_lv_option(kw);
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_lv_getsockopt(eclsock_arg_fd(fd), o->level, o->optname, o->kind,
                                ECLSOCK_FACE_CORE));
}

/* (%setsockopt fd option value); VALUE is a boolean, an integer, seconds
   (a real) or, for :so-linger, NIL, T or seconds. */
static cl_object
l_setsockopt(cl_object fd, cl_object kw, cl_object value)
{
  const struct eclsock_option *o = eclsock_lv_option(kw);
  eclsock_lv_setsockopt(eclsock_arg_fd(fd), o->level, o->optname, o->kind,
                        ECLSOCK_FACE_CORE, value);
  ecl_return1(ecl_process_env(), value);
}

/* (%option-names) -> every option keyword socket-options knows */
static cl_object
l_option_names(void)
{
  ECLSOCK_RETURN1(ecl_process_env(), eclsock_lv_option_names());
}

/* (%raise op code-keyword message host port stream): signal the socket
   error named CODE-KEYWORD (:EBADF, :ETIMEDOUT, :EAI-NONAME ...) for OP, as
   the C layers do: the Lisp layer's own errors take the same path and the
   same table.  MESSAGE NIL: the table's message for the code. */
static cl_object
l_raise(cl_object op, cl_object kw, cl_object message, cl_object host,
        cl_object port, cl_object stream)
{
  cl_object keep;
  int code = 0;
  if (ECL_SYMBOLP(kw) && !Null(kw))
    code = eclsock_err_code((char *)ecl_symbol_name(kw)->base_string.self);
  if (!code)
    FEerror("ECLSOCK::%RAISE: ~S names no error code", 1, kw);
  if (!Null(message) && !ECL_STRINGP(message))
    FEwrong_type_argument(ecl_make_symbol("STRING", "CL"), message);
  eclsock_raise_msg(eclsock_arg_cstring(op, &keep), code, message, host, port, stream);
}

/* (%error-name code) -> keyword for an error code (tests, docs) */
static cl_object
l_error_name(cl_object code)
{
  ECLSOCK_RETURN1(ecl_process_env(), ecl_make_keyword(eclsock_err_name(ecl_to_int(code))));
}

/* -- Numeric addresses and services (the Allegro face) ------------------ */

/* (%parse-address text) -> :INET and the address as an integer, or :INET6,
   a list of its 16 octets and its scope id; NIL when TEXT is not a
   numeric address.  Never resolves names. */
static cl_object
l_parse_address(cl_object text)
{
  const cl_env_ptr env = ecl_process_env();
  cl_object keep, out = ECL_NIL;
  char *t = eclsock_arg_cstring(text, &keep);
  struct addrinfo *res = NULL;
  if (eclsock_addr_parse_numeric(t, &res))
    ecl_return1(env, ECL_NIL);
  if (res->ai_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)res->ai_addr;
    unsigned long a = ntohl(s4->sin_addr.s_addr);
    eclsock_addr_free(res);
    ecl_return2(env, ecl_make_keyword("INET"), ecl_make_unsigned_integer(a));
  } else if (res->ai_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)res->ai_addr;
    unsigned char o[16];
    unsigned long scope = s6->sin6_scope_id;
    int i;
    memcpy(o, &s6->sin6_addr, 16);
    eclsock_addr_free(res);
    for (i = 16; i-- > 0; )
      out = ecl_cons(ecl_make_fixnum(o[i]), out);
    ecl_return3(env, ecl_make_keyword("INET6"), out,
                ecl_make_unsigned_integer(scope));
  }
  eclsock_addr_free(res);
  ecl_return1(env, ECL_NIL);
}

/* (%format-inet6 octets scope-id) -> the colon text of an IPv6 address
   (OCTETS: a vector of 16), with "%scope" when SCOPE-ID is not 0. */
static cl_object
l_format_inet6(cl_object v, cl_object scope)
{
  struct sockaddr_in6 s6;
  unsigned char *p;
  size_t n;
  char host[NI_MAXHOST];
  int port, code;
  eclsock_arg_octets(v, ecl_make_fixnum(0), ecl_make_fixnum(16), &p, &n);
  memset(&s6, 0, sizeof s6);
  s6.sin6_family = AF_INET6;
  memcpy(&s6.sin6_addr, p, 16);
  s6.sin6_scope_id = (uint32_t)ecl_to_ulong(scope);
  code = eclsock_addr_numeric((struct sockaddr *)&s6, sizeof s6, host,
                              sizeof host, &port);
  if (code)
    eclsock_raise("getnameinfo", code, ECL_NIL, ECL_NIL, ECL_NIL);
  ecl_return1(ecl_process_env(), ecl_make_simple_base_string(host, -1));
}

/* (%service-port name protocol) -> the port of service NAME ("http") for
   PROTOCOL "tcp" or "udp", from the services database. */
static cl_object
l_service_port(cl_object name, cl_object proto)
{
  const cl_env_ptr env = ecl_process_env();
  cl_object keep, keep2;
  char *n = eclsock_arg_cstring(name, &keep);
  char *pr = eclsock_arg_cstring(proto, &keep2);
  int port = 0;
  int r = eclsock_addr_service_port(n, strcmp(pr, "udp") ? SOCK_STREAM : SOCK_DGRAM,
                                    &port);
  if (r)
    eclsock_raise("getaddrinfo", r, name, proto, ECL_NIL);
  ecl_return1(env, ecl_make_fixnum(port));
}

/* -- The poller (poller.c; lisp/poller.lisp checks the arguments) -------- */

static cl_object l_make_poller(void) { return eclsock_poller_make(); }
static cl_object l_poller_close(cl_object h) { return eclsock_poller_close(h); }
static cl_object l_poller_count(cl_object h) { return eclsock_poller_count(h); }

/* KIND 0 stream, 1 server, 2 descriptor; FD -1 for a closed object; DIR
   1 input, 2 output, 3 both. */
static cl_object
l_poller_add(cl_object h, cl_object obj, cl_object kind, cl_object fd,
             cl_object dir, cl_object modify)
{
  return eclsock_poller_add(h, obj, (int)ecl_to_fixnum(kind), eclsock_arg_fd(fd),
                            (int)ecl_to_fixnum(dir), !Null(modify));
}

static cl_object
l_poller_remove(cl_object h, cl_object obj, cl_object kind, cl_object fd)
{
  return eclsock_poller_remove(h, obj, (int)ecl_to_fixnum(kind),
                               Null(fd) ? -1 : eclsock_arg_fd(fd));
}

static cl_object
l_poller_wait(cl_object h, cl_object timeout)
{
  return eclsock_poller_wait(h, eclsock_arg_deadline(timeout));
}

/* (%send-calls) -> how many send-family system calls (send, sendto,
   failed ones included) the module has made so far.  For tests only: they
   check that a stalled peer costs no sends (lisp/core.lisp documents it). */
static cl_object
l_send_calls(void)
{
  ecl_return1(ecl_process_env(), ecl_make_unsigned_integer(eclsock_os_send_calls()));
}

/* -- The descriptor owners' finalizer ----------------------------------- */

/* (%finalize-owner owner): the GC finalizer of every descriptor owner
   (lisp/core.lisp): core's FINALIZE-OWNER, run through
   eclsock_ecl_finalize (eclcompat.c: it keeps the values array of the
   thread whose allocation the finalizer interrupted).  The symbol is
   interned at load: a finalizer may interrupt a thread that holds the
   package lock. */
static cl_object sym_finalize_owner = ECL_NIL;

static void
run_finalize_owner(cl_object owner)
{
  (void)cl_funcall(2, sym_finalize_owner, owner);
}

static cl_object
l_finalize_owner(cl_object owner)
{
  return eclsock_ecl_finalize(run_finalize_owner, owner);
}

/* -- Registration ------------------------------------------------------- */

static const struct eclsock_prim prims[] = {
  { "%LOCAL-ADDRESS",      (void *)l_local_address,    1 },
  { "%PEER-ADDRESS",       (void *)l_peer_address,     1 },
  { "%ADDRESS-NAME",       (void *)l_address_name,     1 },
  { "%RESOLVE",            (void *)l_resolve,          1 },
  { "%SOCKET-STREAM-P",    (void *)l_socket_stream_p,  1 },
  { "%STREAM-FD",          (void *)l_stream_fd,        1 },
  { "%STREAM-PENDING-OUTPUT", (void *)l_stream_pending, 1 },
  { "%FLUSH-MODE", (void *)l_flush_mode, 0 },
  { "%STREAM-BUFFERED-INPUT", (void *)l_stream_buffered_input, 1 },
  { "%STREAM-HOST",        (void *)l_stream_host,      1 },
  { "%STREAM-PORT",        (void *)l_stream_port,      1 },
  { "%STREAM-NAME",        (void *)l_stream_name,      1 },
  { "%STREAM-SHUTDOWN",    (void *)l_stream_shutdown,  2 },
  { "%SET-ELEMENT-TYPE",   (void *)l_set_element_type, 3 },
  { "%STREAM-BUFFERED",    (void *)l_stream_buffered,  1 },
  { "%SET-STREAM-BUFFERED",(void *)l_set_stream_buffered, 2 },
  { "%READ-OCTETS",        (void *)l_read_octets,      5 },
  { "%STATUS",             (void *)l_status,           2 },
  { "%SET-SERVER-CLASS",   (void *)l_set_server_class, 1 },
  { "%GETSOCKOPT",         (void *)l_getsockopt,       2 },
  { "%SETSOCKOPT",         (void *)l_setsockopt,       3 },
  { "%OPTION-NAMES",       (void *)l_option_names,     0 },
  { "%ERROR-NAME",         (void *)l_error_name,       1 },
  { "%RAISE",              (void *)l_raise,            6 },
  { "%PARSE-ADDRESS",      (void *)l_parse_address,    1 },
  { "%FORMAT-INET6",       (void *)l_format_inet6,     2 },
  { "%SERVICE-PORT",       (void *)l_service_port,     2 },
  { "%MAKE-POLLER",        (void *)l_make_poller,      0 },
  { "%POLLER-CLOSE",       (void *)l_poller_close,     1 },
  { "%POLLER-COUNT",       (void *)l_poller_count,     1 },
  { "%POLLER-ADD",         (void *)l_poller_add,       6 },
  { "%POLLER-REMOVE",      (void *)l_poller_remove,    4 },
  { "%POLLER-WAIT",        (void *)l_poller_wait,      2 },
  { "%SEND-CALLS",         (void *)l_send_calls,       0 },
  { "%FINALIZE-OWNER",     (void *)l_finalize_owner,   1 },
};

static const size_t nprims = sizeof prims / sizeof prims[0];

/* Register the primitives in package ECLSOCK (made here if the Lisp layer
   has not made it yet).  Safe to call more than once. */
void
eclsock_init_primitives(void)
{
  static const struct { const struct eclsock_prim *t; const size_t *n; } tables[] = {
    { prims, &nprims }, { eclsock_conn_prims, &eclsock_conn_nprims },
    { eclsock_dgram_prims, &eclsock_dgram_nprims },
    { eclsock_tlsglue_prims, &eclsock_tlsglue_nprims },
    { eclsock_bsd_prims, &eclsock_bsd_nprims },
  };
  size_t i, j;
  if (Null(ecl_find_package_nolock(ecl_make_constant_base_string(PKG, -1))))
    cl_make_package(3, ecl_make_constant_base_string(PKG, -1),
                    ecl_make_keyword("USE"),
                    ecl_list1(ecl_make_constant_base_string("CL", -1)));
  for (i = 0; i < sizeof tables / sizeof tables[0]; i++)
    for (j = 0; j < *tables[i].n; j++)
      ecl_def_c_function(eclsock_sym(tables[i].t[j].name),
                         (cl_objectfn_fixed)tables[i].t[j].fn, tables[i].t[j].narg);
  if (Null(sym_finalize_owner)) {
    sym_finalize_owner = eclsock_sym("FINALIZE-OWNER");
    ecl_register_root(&sym_finalize_owner);
  }
  eclsock_tlsglue_init();
  eclsock_stream_init();
}
