/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * glue.c - the Lisp primitives of ecl-sock and their registration.
 *
 * Owns: the functions ECLSOCK::%... that lisp/ calls, with positional
 * arguments already defaulted by the Lisp layer.  Each primitive checks and
 * converts its arguments first (type errors before any descriptor exists),
 * then calls os.c/addr.c/stream.c, and turns an error code into a condition
 * with eclsock_raise().  Descriptors made here are closed by an
 * unwind-protect cleanup until a stream or server owns them, so neither an
 * error nor an interrupt leaks one.
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

/* ecl_return1 stores the value count before it evaluates its value, and
   a value computed by a call that runs an unwind-protect (or signals
   through one) leaves the count of that inner form: the primitive then
   returns zero values.  RETURN1 computes the value first. */
#define RETURN1(env, x)                                 \
  do {                                                  \
    cl_object value_ = (x);                             \
    ecl_return1((env), value_);                         \
  } while (0)

/* -- Argument conversion ------------------------------------------------ */

/* X, a non-negative real, as a double; a type error otherwise.  More than
   INT_MAX seconds (68 years) waits as long as INT_MAX: a huge bignum or
   ratio would overflow the conversion to a double. */
static double
seconds_arg(cl_object x)
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
static eclsock_deadline
deadline_arg(cl_object timeout)
{
  if (Null(timeout))
    return ECLSOCK_NO_DEADLINE;
  return eclsock_tm_deadline(seconds_arg(timeout));
}

/* Append S to the text at *P, which must stay below END (room for the
   final NUL is kept); cut when full. */
static void
put_text(char **p, char *end, const char *s)
{
  while (*s && *p < end - 1)
    *(*p)++ = *s++;
  **p = 0;
}

/* Append the decimal digits of N (0..65535: a port) to *P. */
static void
put_port(char **p, char *end, int n)
{
  char digits[8], *d = digits + sizeof digits;
  *--d = 0;
  do { *--d = (char)('0' + n % 10); n /= 10; } while (n > 0 && d > digits);
  put_text(p, end, d);
}

/* Append "host:port", or "[host]:port" for IPv6, or the path of a Unix
   socket, or "?" when A has no text form.  Stream names are made for every
   connection, so no printf. */
static void
put_addr(char **p, char *end, const eclsock_addr *a)
{
  char host[NI_MAXHOST];
  int port;
  if (eclsock_addr_numeric((const struct sockaddr *)&a->ss, a->len, host,
                           sizeof host, &port)) {
    put_text(p, end, "?");
  } else if (a->ss.ss_family == AF_UNIX) {
    put_text(p, end, host[0] ? host : "(unnamed)");
  } else {
    int v6 = a->ss.ss_family == AF_INET6;
    put_text(p, end, v6 ? "[" : "");
    put_text(p, end, host);
    put_text(p, end, v6 ? "]:" : ":");
    put_port(p, end, port);
  }
}

/* The name of the stream over FD: "socket LOCAL -> PEER".  PEER, when
   the caller knows it (accept and connect do), saves a getpeername. */
static cl_object
stream_name(int fd, const eclsock_addr *peer)
{
  eclsock_addr a;
  char name[2 * NI_MAXHOST + 48], *p = name, *end = name + sizeof name;
  put_text(&p, end, "socket ");
  if (eclsock_addr_local(fd, &a)) put_text(&p, end, "?");
  else put_addr(&p, end, &a);
  put_text(&p, end, " -> ");
  if (peer) put_addr(&p, end, peer);
  else if (eclsock_addr_peer(fd, &a)) put_text(&p, end, "?");
  else put_addr(&p, end, &a);
  return ecl_make_simple_base_string(name, p - name);
}

/* -- Making sockets ----------------------------------------------------- */

/* After CODE from a call that makes a descriptor: when it says the process
   or the system is out of descriptors (EMFILE, ENFILE) and *TRIED is 0,
   run one full collection with finalizers, (EXT:GC T), so that streams
   dropped without CLOSE give theirs back, and return 1: the caller tries
   once more.  A GC otherwise runs only when memory is allocated, long
   after the descriptors have run out. */
static int
collect_for_fds(int code, volatile int *tried)
{
  if ((code != EMFILE && code != ENFILE) || *tried)
    return 0;
  *tried = 1;
  cl_funcall(2, ecl_make_symbol("GC", "EXT"), ECL_T);
  return 1;
}

/* How to finish a fresh socket for one address (TRY: bind and listen,
   connect, bind a datagram socket) and which Lisp object then owns it
   (OWN: a stream; NULL: the descriptor itself), with their arguments. */
struct setup {
  int (*try)(int fd, const struct addrinfo *a, const struct setup *s);
  cl_object (*own)(int fd, const struct addrinfo *a, const struct setup *s);
  int backlog, reuse, broadcast;
  const char *lhost;            /* connect from here (NULL: any) */
  int lport;                    /* and this port (0: any) */
  eclsock_deadline dl;
  cl_object host, port, elttype, extfmt, buffered;
};

/* A socket of SOCKTYPE for the first address on which S->try succeeds,
   the others closed.  The addresses: HOST resolved with PORT (FAMILY,
   PASSIVE for a local address), or, for FAMILY AF_UNIX, the file HOST
   (NULL: no address).  The deadline stops the tries early.  Returns what
   S->own makes of the descriptor; signals as OP on failure.  Neither an
   error nor an interrupt leaks a descriptor. */
static cl_object
open_socket(const char *op, const char *host, int port, int passive, int family,
            int socktype, const struct setup *s)
{
  const cl_env_ptr env = ecl_process_env();
  struct addrinfo *volatile ai = NULL;
  struct addrinfo local;
  eclsock_addr su;
  volatile int fd = -1, code = 0, done = 0, collected = 0;
  cl_object volatile result = ECL_NIL;
  memset(&local, 0, sizeof local);
  if (family == AF_UNIX) {
    local.ai_family = AF_UNIX;
    if (host && !(code = eclsock_addr_unix(host, &su))) {
      local.ai_addr = (struct sockaddr *)&su.ss;
      local.ai_addrlen = su.len;
    }
    if (code)
      eclsock_raise(op, code, s->host, s->port, ECL_NIL);
  }
  ECL_UNWIND_PROTECT_BEGIN(env) {
    struct addrinfo *res = &local, *a;
    if (family != AF_UNIX) {
      res = NULL;
      code = eclsock_addr_resolve_af(host, port, passive, family, socktype, &res);
      ai = code ? NULL : res;
    }
    for (a = res; !code && a; a = a->ai_next) {
      code = eclsock_os_socket(a->ai_family, socktype, &fd);
      if (collect_for_fds(code, &collected))
        code = eclsock_os_socket(a->ai_family, socktype, &fd);
      if (!code)
        code = s->try(fd, a, s);
      if (!code)
        break;
      if (fd >= 0)
        eclsock_os_close(fd);
      fd = -1;
      if (code == ECLSOCK_ETIMEOUT || !a->ai_next)
        break;
      code = 0;
    }
    if (!code)
      result = s->own ? s->own(fd, a, s) : ecl_make_fixnum(fd);
    done = 1;
  } ECL_UNWIND_PROTECT_EXIT {
    if (ai)
      eclsock_addr_free(ai);
    if ((!done || code) && fd >= 0)
      eclsock_os_close(fd);
  } ECL_UNWIND_PROTECT_END;
  if (code)
    eclsock_raise(op, code, s->host, s->port, ECL_NIL);
  return result;
}

/* The stream that owns FD, connected to A.  An IP peer is named from A
   (what connect reached); a Unix one by getpeername, which names it as
   the server bound it. */
static cl_object
own_stream(int fd, const struct addrinfo *a, const struct setup *s)
{
  eclsock_addr peer;
  int known = a && a->ai_family != AF_UNIX && a->ai_addrlen <= sizeof peer.ss;
  if (known) {
    memcpy(&peer.ss, a->ai_addr, a->ai_addrlen);
    peer.len = a->ai_addrlen;
  }
  return eclsock_stream_make(fd, s->elttype, s->extfmt, !Null(s->buffered),
                             s->host, s->port, stream_name(fd, known ? &peer : NULL));
}

/* -- Connections -------------------------------------------------------- */

/* Connect (from S->lhost/lport when given) within S->dl. */
static int
try_connect(int fd, const struct addrinfo *a, const struct setup *s)
{
  if (s->lhost || s->lport) {
    struct addrinfo *res = NULL;
    int code = eclsock_addr_resolve_af(s->lhost, s->lport, 1, a->ai_family,
                                       SOCK_STREAM, &res);
    if (!code)
      code = eclsock_os_bind(fd, res->ai_addr, res->ai_addrlen, 1);
    eclsock_addr_free(res);
    if (code)
      return code;
  }
  /* TCP_NODELAY by default: the stream joins small writes itself (see
     stream.c), so Nagle's algorithm only ever delays */
  if (a->ai_family != AF_UNIX)
    (void)eclsock_os_set_nodelay(fd, 1);
  return eclsock_os_connect(fd, a->ai_addr, a->ai_addrlen, s->dl);
}

/* (%connect-from host port local-host local-port timeout element-type
   external-format buffered) -> a socket stream.  Tries every address HOST
   resolves to, in order, until one connects; the timeout bounds the whole
   attempt.  LOCAL-HOST (a string, or NIL for any) and LOCAL-PORT (NIL or
   0: any) choose the local end. */
static cl_object
l_connect_from(cl_object host, cl_object port, cl_object lhost, cl_object lport,
               cl_object timeout, cl_object elttype, cl_object extfmt,
               cl_object buffered)
{
  cl_object keep, lkeep;
  struct setup s;
  char *h = eclsock_arg_cstring(host, &keep);
  int p = eclsock_arg_port(port);
  memset(&s, 0, sizeof s);
  s.try = try_connect;
  s.own = own_stream;
  s.lhost = Null(lhost) ? NULL : eclsock_arg_cstring(lhost, &lkeep);
  s.lport = Null(lport) ? 0 : eclsock_arg_port(lport);
  s.dl = deadline_arg(timeout);
  s.host = host; s.port = port;
  s.elttype = elttype; s.extfmt = extfmt; s.buffered = buffered;
  RETURN1(ecl_process_env(),
          open_socket("connect", h, p, 0, AF_UNSPEC, SOCK_STREAM, &s));
}

/* (%connect host port timeout element-type external-format buffered) */
static cl_object
l_connect(cl_object host, cl_object port, cl_object timeout,
          cl_object elttype, cl_object extfmt, cl_object buffered)
{
  return l_connect_from(host, port, ECL_NIL, ECL_NIL, timeout, elttype, extfmt,
                        buffered);
}

/* (%connect-unix path timeout element-type external-format buffered) */
static cl_object
l_connect_unix(cl_object path, cl_object timeout, cl_object elttype,
               cl_object extfmt, cl_object buffered)
{
  cl_object keep;
  struct setup s;
  char *p = eclsock_arg_cstring(path, &keep);
  memset(&s, 0, sizeof s);
  s.try = try_connect;
  s.own = own_stream;
  s.dl = deadline_arg(timeout);
  s.host = path; s.port = ECL_NIL;
  s.elttype = elttype; s.extfmt = extfmt; s.buffered = buffered;
  RETURN1(ecl_process_env(),
          open_socket("connect", p, 0, 0, AF_UNIX, SOCK_STREAM, &s));
}

/* Bind, listen, and go non-blocking, so that accept never blocks past its
   wait. */
static int
try_listen(int fd, const struct addrinfo *a, const struct setup *s)
{
  int code = eclsock_os_bind_listen(fd, a->ai_addr, a->ai_addrlen, s->backlog);
  /* accepted connections inherit TCP_NODELAY from the listener (Linux) */
  if (!code && a->ai_family != AF_UNIX)
    (void)eclsock_os_set_nodelay(fd, 1);
  return code ? code : eclsock_os_set_nonblock(fd, 1);
}

/* (%listen host port backlog) -> descriptor of a listening socket bound to
   the first address of HOST (a string) that binds. */
static cl_object
l_listen(cl_object host, cl_object port, cl_object backlog)
{
  cl_object keep;
  struct setup s;
  char *h = eclsock_arg_cstring(host, &keep);
  int p = eclsock_arg_port(port);
  memset(&s, 0, sizeof s);
  s.try = try_listen;
  s.backlog = ecl_to_int(backlog);
  s.host = host; s.port = port;
  RETURN1(ecl_process_env(),
          open_socket("bind", h, p, 1, AF_UNSPEC, SOCK_STREAM, &s));
}

/* (%listen-unix path backlog) -> descriptor. */
static cl_object
l_listen_unix(cl_object path, cl_object backlog)
{
  cl_object keep;
  struct setup s;
  char *p = eclsock_arg_cstring(path, &keep);
  memset(&s, 0, sizeof s);
  s.try = try_listen;
  s.backlog = ecl_to_int(backlog);
  s.host = path; s.port = ECL_NIL;
  RETURN1(ecl_process_env(),
          open_socket("bind", p, 0, 1, AF_UNIX, SOCK_STREAM, &s));
}

/* (%accept fd timeout element-type external-format buffered host port)
   -> a socket stream, or NIL when TIMEOUT passed first. */
static cl_object
l_accept(cl_object lfd, cl_object timeout, cl_object elttype,
         cl_object extfmt, cl_object buffered, cl_object host, cl_object port)
{
  const cl_env_ptr env = ecl_process_env();
  int l = eclsock_arg_fd(lfd);
  eclsock_deadline dl = deadline_arg(timeout);
  volatile int fd = -1, code = 0, done = 0, collected = 0;
  cl_object stream = ECL_NIL;
  eclsock_addr peer;
  ECL_UNWIND_PROTECT_BEGIN(env) {
    code = eclsock_os_accept_from(l, &fd, dl, &peer);
    if (collect_for_fds(code, &collected))
      code = eclsock_os_accept_from(l, &fd, dl, &peer);
    if (!code)
      stream = eclsock_stream_make(fd, elttype, extfmt, !Null(buffered),
                                   host, port,
                                   stream_name(fd, peer.len ? &peer : NULL));
    done = 1;
  } ECL_UNWIND_PROTECT_EXIT {
    if ((!done || code) && fd >= 0)
      eclsock_os_close(fd);
  } ECL_UNWIND_PROTECT_END;
  if (code == ECLSOCK_ETIMEOUT)
    ecl_return1(env, ECL_NIL);
  if (code)
    eclsock_raise("accept", code, host, port, ECL_NIL);
  ecl_return1(env, stream);
}

/* (%wrap-fd fd element-type external-format buffered host port) -> a
   socket stream that now owns FD. */
static cl_object
l_wrap_fd(cl_object fd, cl_object elttype, cl_object extfmt,
          cl_object buffered, cl_object host, cl_object port)
{
  int f = eclsock_arg_fd(fd);
  RETURN1(ecl_process_env(),
          eclsock_stream_make(f, elttype, extfmt, !Null(buffered), host,
                              port, stream_name(f, NULL)));
}

static cl_object
l_close_fd(cl_object fd)
{
  int code = eclsock_os_close(eclsock_arg_fd(fd));
  if (code)
    eclsock_raise("close", code, ECL_NIL, ECL_NIL, ECL_NIL);
  ecl_return1(ecl_process_env(), ECL_NIL);
}

/* (%shutdown-fd fd how): HOW 0 input, 1 output, 2 both. */
static cl_object
l_shutdown_fd(cl_object fd, cl_object how)
{
  int code = eclsock_os_shutdown(eclsock_arg_fd(fd), ecl_to_int(how));
  if (code && code != ENOTCONN)
    eclsock_raise("shutdown", code, ECL_NIL, ECL_NIL, ECL_NIL);
  ecl_return1(ecl_process_env(), ECL_NIL);
}

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
check_stream(cl_object s)
{
  if (!eclsock_stream_p(s))
    FEwrong_type_argument(ecl_make_symbol("SOCKET-STREAM", "SOCKET"), s);
  return s;
}

static cl_object
l_socket_stream_p(cl_object x)
{
  ecl_return1(ecl_process_env(), eclsock_stream_p(x) ? ECL_T : ECL_NIL);
}

/* (%stream-fd s) -> descriptor or NIL when closed. */
static cl_object
l_stream_fd(cl_object s)
{
  int fd = eclsock_stream_fd(check_stream(s));
  ecl_return1(ecl_process_env(), fd < 0 ? ECL_NIL : ecl_make_fixnum(fd));
}

/* (%stream-pending-output s) -> octets buffered, not yet sent. */
static cl_object
l_stream_pending(cl_object s)
{
  ecl_return1(ecl_process_env(),
              ecl_make_fixnum((cl_fixnum)eclsock_stream_pending(check_stream(s))));
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
              eclsock_stream_buffered_input(check_stream(s)) ? ECL_T : ECL_NIL);
}

static cl_object
l_stream_host(cl_object s)
{
  RETURN1(ecl_process_env(), eclsock_stream_host(check_stream(s)));
}

static cl_object
l_stream_port(cl_object s)
{
  RETURN1(ecl_process_env(), eclsock_stream_port(check_stream(s)));
}

/* (%stream-name s) -> "socket LOCAL -> PEER", fixed when it was made */
static cl_object
l_stream_name(cl_object s)
{
  ecl_return1(ecl_process_env(), check_stream(s)->stream.object1);
}

static cl_object
l_stream_shutdown(cl_object s, cl_object how)
{
  check_stream(s);
  if (eclsock_stream_fd(s) < 0)
    eclsock_raise("shutdown", EBADF, ECL_NIL, ECL_NIL, s);
  eclsock_stream_shutdown(s, ecl_to_int(how));
  ecl_return1(ecl_process_env(), ECL_NIL);
}

static cl_object
l_set_element_type(cl_object s, cl_object elttype, cl_object extfmt)
{
  eclsock_stream_set_element_type(check_stream(s), elttype, extfmt);
  ecl_return1(ecl_process_env(), elttype);
}

static cl_object
l_stream_buffered(cl_object s)
{
  RETURN1(ecl_process_env(),
          eclsock_stream_get_buffered(check_stream(s)) ? ECL_T : ECL_NIL);
}

static cl_object
l_set_stream_buffered(cl_object s, cl_object flag)
{
  eclsock_stream_set_buffered(check_stream(s), !Null(flag));
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
  check_stream(s);
  eclsock_arg_octets(v, start, end, &p, &n);
  if (eclsock_stream_fd(s) < 0)
    eclsock_raise("recv", EBADF, ECL_NIL, ECL_NIL, s);
  got = eclsock_stream_read_octets(s, p, n, ecl_to_int(mode));
  ecl_return1(ecl_process_env(), ecl_make_fixnum(ecl_to_size(start) + got));
}

static cl_object
l_status(cl_object what, cl_object timeout)
{
  return eclsock_status(what, deadline_arg(timeout));
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
  RETURN1(ecl_process_env(),
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
  RETURN1(ecl_process_env(), eclsock_lv_option_names());
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
  RETURN1(ecl_process_env(), ecl_make_keyword(eclsock_err_name(ecl_to_int(code))));
}

/* -- Datagrams and numeric addresses (the Allegro face) ------------------ */

static int
family_arg(cl_object f)
{
  if (Null(f)) return AF_UNSPEC;
  if (f == ecl_make_keyword("INET")) return AF_INET;
  if (f == ecl_make_keyword("INET6")) return AF_INET6;
  FEwrong_type_argument(cl_list(4, ecl_make_symbol("MEMBER", "CL"), ECL_NIL,
                                ecl_make_keyword("INET"), ecl_make_keyword("INET6")), f);
}

/* Options a datagram socket takes before bind, then bind (nothing for an
   unnamed Unix datagram socket). */
static int
try_datagram(int fd, const struct addrinfo *a, const struct setup *s)
{
  int code = 0;
  if (s->broadcast)
    code = eclsock_os_setflag(fd, SOL_SOCKET, SO_BROADCAST, 1);
  if (code || !a->ai_addr)
    return code;
  return eclsock_os_bind(fd, a->ai_addr, a->ai_addrlen, s->reuse);
}

/* (%datagram host port family reuse broadcast) -> descriptor of a UDP
   socket bound to the first address of HOST (of FAMILY :INET, :INET6 or
   NIL for any) and PORT (0: the kernel picks). */
static cl_object
l_datagram(cl_object host, cl_object port, cl_object family, cl_object reuse,
           cl_object broadcast)
{
  cl_object keep;
  struct setup s;
  char *h = eclsock_arg_cstring(host, &keep);
  int p = eclsock_arg_port(port), fam = family_arg(family);
  memset(&s, 0, sizeof s);
  s.try = try_datagram;
  s.reuse = !Null(reuse);
  s.broadcast = !Null(broadcast);
  s.host = host; s.port = port;
  RETURN1(ecl_process_env(),
          open_socket("bind", h, p, 1, fam, SOCK_DGRAM, &s));
}

/* (%datagram-unix path) -> descriptor of a Unix datagram socket bound to
   PATH, or unbound (it can send, not be answered) when PATH is NIL. */
static cl_object
l_datagram_unix(cl_object path)
{
  cl_object keep;
  struct setup s;
  char *p = Null(path) ? NULL : eclsock_arg_cstring(path, &keep);
  memset(&s, 0, sizeof s);
  s.try = try_datagram;
  s.host = path; s.port = ECL_NIL;
  RETURN1(ecl_process_env(),
          open_socket("bind", p, 0, 1, AF_UNIX, SOCK_DGRAM, &s));
}

/* (%send-to fd octets start end host port) -> octets sent, as one
   datagram.  HOST is a name or numeric address (PORT its port) for an
   internet socket, a file name for a Unix one, or NIL to send to the
   connected peer. */
static cl_object
l_send_to(cl_object fd, cl_object v, cl_object start, cl_object end,
          cl_object host, cl_object port)
{
  const cl_env_ptr env = ecl_process_env();
  int f = eclsock_arg_fd(fd), code = 0;
  unsigned char *p;
  size_t n, sent = 0;
  eclsock_addr to, self;
  eclsock_arg_octets(v, start, end, &p, &n);
  to.len = 0;
  if (!Null(host)) {
    cl_object keep;
    char *h = eclsock_arg_cstring(host, &keep);
    if ((code = eclsock_addr_local(f, &self)))
      eclsock_raise("getsockname", code, host, port, ECL_NIL);
    if (self.ss.ss_family == AF_UNIX) {
      if ((code = eclsock_addr_unix(h, &to)))
        eclsock_raise("sendto", code, host, ECL_NIL, ECL_NIL);
    } else {
      struct addrinfo *res = NULL;
      code = eclsock_addr_resolve_af(h, eclsock_arg_port(port), 0, self.ss.ss_family,
                                     SOCK_DGRAM, &res);
      if (!code) {
        memcpy(&to.ss, res->ai_addr, res->ai_addrlen);
        to.len = res->ai_addrlen;
      }
      eclsock_addr_free(res);
      if (code)
        eclsock_raise("sendto", code, host, port, ECL_NIL);
    }
  }
  code = eclsock_os_sendto(f, p, n, 0, to.len ? (struct sockaddr *)&to.ss : NULL,
                           to.len, &sent);
  if (code)
    eclsock_raise("sendto", code, host, port, ECL_NIL);
  ecl_return1(env, ecl_make_fixnum(sent));
}

/* (%datagram-connect fd host port) -> NIL, after connect(2) of UDP socket FD
   to the first address of HOST and PORT in FD's family: sends without an
   address then go there, only that peer's datagrams are received, and an
   ICMP port unreachable comes back as ECONNREFUSED on a later receive. */
static cl_object
l_datagram_connect(cl_object fd, cl_object host, cl_object port)
{
  int f = eclsock_arg_fd(fd), p = eclsock_arg_port(port), code;
  cl_object keep;
  char *h = eclsock_arg_cstring(host, &keep);
  struct addrinfo *res = NULL;
  eclsock_addr self;
  if ((code = eclsock_addr_local(f, &self)))
    eclsock_raise("getsockname", code, host, port, ECL_NIL);
  code = eclsock_addr_resolve_af(h, p, 0, self.ss.ss_family, SOCK_DGRAM, &res);
  if (!code)
    code = eclsock_os_connect(f, res->ai_addr, res->ai_addrlen, ECLSOCK_NO_DEADLINE);
  eclsock_addr_free(res);
  if (code)
    eclsock_raise("connect", code, host, port, ECL_NIL);
  ecl_return1(ecl_process_env(), ECL_NIL);
}

/* (%receive-from fd octets start end) -> count, sender (numeric address,
   or file name, "" when unnamed), sender port (0 for Unix), family. */
static cl_object
l_receive_from(cl_object fd, cl_object v, cl_object start, cl_object end)
{
  return eclsock_lv_receive(eclsock_arg_fd(fd), v, start, end, 0, ECLSOCK_FACE_CORE);
}

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

/* -- TLS ---------------------------------------------------------------- */

/* A C string for the Lisp string S, or NULL for NIL. */
static char *
opt_cstring(cl_object s, cl_object *keep)
{
  *keep = ECL_NIL;
  return Null(s) ? NULL : eclsock_arg_cstring(s, keep);
}

static cl_object
l_ssl_free_context(cl_object f)
{
  if (ecl_t_of(f) == t_foreign && f->foreign.data) {
    void *ctx = f->foreign.data;
    f->foreign.data = NULL;
    eclsock_tls_ctx_free(ctx);
  }
  ecl_return0(ecl_process_env());
}

static cl_object context_finalizer = ECL_NIL;

/* The settings %ssl-make-context takes, by name. */
static const char *const context_keys[] = {
  "MIN-VERSION", "MAX-VERSION", "VERIFY", "MAX-DEPTH", "CRL-CHECK",
  "PREFER-SERVER-ORDER", "CERTIFICATE", "KEY", "PASSWORD", "CA-FILE",
  "CA-DIRECTORY", "CIPHERS", "CIPHERSUITES", "CRL-FILE", NULL
};

/* (%ssl-make-context server settings) -> a foreign object owning the
   SSL_CTX (freed by its finalizer).  SETTINGS is a property list, every
   key optional: :min-version :max-version (TLS version numbers, NIL the
   library's), :verify (0 none, 1 optional, 2 required), :max-depth,
   :crl-check (0 none, 1 leaf, 2 chain), :prefer-server-order (a boolean),
   and the strings :certificate :key :password :ca-file :ca-directory
   :ciphers :ciphersuites :crl-file.  Checked here, before anything is
   made. */
static cl_object
l_ssl_make_context(cl_object server, cl_object v)
{
  struct eclsock_tls_opts o;
  cl_object keep[8], f;
  char msg[300];
  void *ctx;
  int code;
  const cl_env_ptr env = ecl_process_env();
  eclsock_arg_plist(v, context_keys);
  memset(&o, 0, sizeof o);
  o.server = !Null(server);
  o.min_version = eclsock_arg_int_or(eclsock_arg_key(v, "MIN-VERSION"), 0, 0, INT_MAX);
  o.max_version = eclsock_arg_int_or(eclsock_arg_key(v, "MAX-VERSION"), 0, 0, INT_MAX);
  o.verify = eclsock_arg_int_or(eclsock_arg_key(v, "VERIFY"), 0, 0, 2);
  o.max_depth = eclsock_arg_int_or(eclsock_arg_key(v, "MAX-DEPTH"), -1, -1, INT_MAX);
  o.crl_check = eclsock_arg_int_or(eclsock_arg_key(v, "CRL-CHECK"), 0, 0, 2);
  o.prefer_server_order = !Null(eclsock_arg_key(v, "PREFER-SERVER-ORDER"));
  o.certificate = opt_cstring(eclsock_arg_key(v, "CERTIFICATE"), &keep[0]);
  o.key = opt_cstring(eclsock_arg_key(v, "KEY"), &keep[1]);
  o.password = opt_cstring(eclsock_arg_key(v, "PASSWORD"), &keep[2]);
  o.ca_file = opt_cstring(eclsock_arg_key(v, "CA-FILE"), &keep[3]);
  o.ca_directory = opt_cstring(eclsock_arg_key(v, "CA-DIRECTORY"), &keep[4]);
  o.ciphers = opt_cstring(eclsock_arg_key(v, "CIPHERS"), &keep[5]);
  o.ciphersuites = opt_cstring(eclsock_arg_key(v, "CIPHERSUITES"), &keep[6]);
  o.crl_file = opt_cstring(eclsock_arg_key(v, "CRL-FILE"), &keep[7]);
  ecl_disable_interrupts_env(env);
  code = eclsock_tls_ctx_new(&o, &ctx, msg, sizeof msg);
  ecl_enable_interrupts_env(env);
  if (code)
    eclsock_raise_msg("SSL_CTX_new", code, ecl_make_simple_base_string(msg, -1),
                      ECL_NIL, ECL_NIL, ECL_NIL);
  ECL_UNWIND_PROTECT_BEGIN(env) {
    f = ecl_make_foreign_data(ECL_NIL, 0, ctx);
    si_set_finalizer(f, context_finalizer);
    ctx = NULL;
  } ECL_UNWIND_PROTECT_EXIT {
    if (ctx)
      eclsock_tls_ctx_free(ctx);
  } ECL_UNWIND_PROTECT_END;
  (void)keep;
  ecl_return1(env, f);
}

/* (%ssl-wrap stream context server host verify max-depth min-version
   max-version ciphers ciphersuites timeout) -> a new stream on STREAM's
   connection with the TLS handshake done; STREAM is closed (its descriptor
   goes on in the new stream).  VERIFY, MAX-DEPTH, versions NIL: the
   context's.  On failure the connection is closed and the condition
   signalled. */
static cl_object
l_ssl_wrap(cl_object s, cl_object ctxobj, cl_object server, cl_object host,
           cl_object verify, cl_object maxdepth, cl_object minv, cl_object maxv,
           cl_object ciphers, cl_object suites, cl_object timeout)
{
  const cl_env_ptr env = ecl_process_env();
  cl_object keep[3], ns = ECL_NIL;
  eclsock_tls *volatile t = NULL;
  eclsock_deadline dl;
  const char *h, *c, *cs;
  char msg[300];
  int fd, code, srv = !Null(server);
  int vf = eclsock_arg_int_or(verify, -1, INT_MIN, INT_MAX);
  int md = eclsock_arg_int_or(maxdepth, -1, INT_MIN, INT_MAX);
  int lo = eclsock_arg_int_or(minv, 0, INT_MIN, INT_MAX);
  int hi = eclsock_arg_int_or(maxv, 0, INT_MIN, INT_MAX);
  check_stream(s);
  if (ecl_t_of(ctxobj) != t_foreign || !ctxobj->foreign.data)
    FEwrong_type_argument(ecl_make_symbol("SSL-CONTEXT", "SOCKET"), ctxobj);
  dl = deadline_arg(timeout);
  h = opt_cstring(host, &keep[0]);
  c = opt_cstring(ciphers, &keep[1]);
  cs = opt_cstring(suites, &keep[2]);
  if ((fd = eclsock_stream_fd(s)) < 0)
    eclsock_raise("SSL_new", EBADF, ECL_NIL, ECL_NIL, s);
  if (eclsock_stream_tls(s))
    FEerror("~S is already a TLS stream.", 1, s);
  eclsock_stream_flush(s, 0);
  if (eclsock_stream_buffered_input(s))
    FEerror("~S has read input ahead that TLS would lose: read it before "
            "starting TLS.", 1, s);
  /* session and stream switch with interrupts deferred: neither the
     session nor the descriptor may be left without an owner */
  ecl_bds_bind(env, ECL_INTERRUPTS_ENABLED, ECL_NIL);
  code = eclsock_tls_new(ctxobj->foreign.data, fd, srv, h, vf, md, lo, hi, c, cs, (eclsock_tls **)&t, msg, sizeof msg);
  if (!code)
    ns = eclsock_stream_move_to_tls(s, t);
  ecl_bds_unwind1(env);
  ecl_check_pending_interrupts(env);
  if (code)
    eclsock_raise_msg("SSL_new", code, ecl_make_simple_base_string(msg, -1),
                      host, ECL_NIL, s);
  code = eclsock_tls_handshake(t, dl);
  if (code) {
    const char *m = eclsock_tls_message(t);
    cl_object text = m ? ecl_make_simple_base_string(m, -1) : ECL_NIL;
    cl_object detail = code == ECLSOCK_ETLSVERIFY
      ? ecl_make_fixnum(eclsock_tls_verify_result(t)) : ECL_NIL;
    cl_close(1, ns);                  /* frees the session, closes the fd */
    eclsock_raise_detail(srv ? "SSL_accept" : "SSL_connect", code, text, detail,
                         srv ? ECL_NIL : host, ECL_NIL, ECL_NIL);
  }
  (void)keep;
  ecl_return1(env, ns);
}

/* The session of socket stream S, or a type error when it has none. */
static eclsock_tls *
tls_of(cl_object s)
{
  eclsock_tls *t = eclsock_stream_p(s) ? eclsock_stream_tls(s) : NULL;
  if (!t)
    FEwrong_type_argument(ecl_make_symbol("SSL-SOCKET-STREAM", "SOCKET"), s);
  return t;
}

/* (%ssl-stream-p x) -> true for a socket stream with a TLS session */
static cl_object
l_ssl_stream_p(cl_object x)
{
  ecl_return1(ecl_process_env(),
              (eclsock_stream_p(x) && eclsock_stream_tls(x)) ? ECL_T : ECL_NIL);
}

static cl_object
l_ssl_peer_certificate(cl_object s)
{
  ecl_return1(ecl_process_env(), eclsock_tls_peer_certificate(tls_of(s)));
}

static cl_object
l_ssl_verify_result(cl_object s)
{
  ecl_return1(ecl_process_env(), ecl_make_integer(eclsock_tls_verify_result(tls_of(s))));
}

static cl_object
l_ssl_description(cl_object s)
{
  ecl_return1(ecl_process_env(), eclsock_tls_description(tls_of(s)));
}

/* (%ssl-counts) -> live sessions, live contexts, whether TLS is built in */
static cl_object
l_ssl_counts(void)
{
  ecl_return3(ecl_process_env(), ecl_make_integer(eclsock_tls_live_sessions()),
              ecl_make_integer(eclsock_tls_live_contexts()),
              eclsock_tls_available() ? ECL_T : ECL_NIL);
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
  return eclsock_poller_wait(h, deadline_arg(timeout));
}

/* (%send-calls) -> how many send-family system calls (send, sendto,
   failed ones included) the module has made so far.  For tests only: they
   check that a stalled peer costs no sends (lisp/core.lisp documents it). */
static cl_object
l_send_calls(void)
{
  ecl_return1(ecl_process_env(), ecl_make_unsigned_integer(eclsock_os_send_calls()));
}

/* -- Registration ------------------------------------------------------- */

struct prim { const char *name; void *fn; int narg; };

static const struct prim prims[] = {
  { "%CONNECT",            (void *)l_connect,          6 },
  { "%CONNECT-FROM",       (void *)l_connect_from,     8 },
  { "%CONNECT-UNIX",       (void *)l_connect_unix,     5 },
  { "%LISTEN",             (void *)l_listen,           3 },
  { "%LISTEN-UNIX",        (void *)l_listen_unix,      2 },
  { "%ACCEPT",             (void *)l_accept,           7 },
  { "%WRAP-FD",            (void *)l_wrap_fd,          6 },
  { "%CLOSE-FD",           (void *)l_close_fd,         1 },
  { "%SHUTDOWN-FD",        (void *)l_shutdown_fd,      2 },
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
  { "%DATAGRAM",           (void *)l_datagram,         5 },
  { "%DATAGRAM-UNIX",      (void *)l_datagram_unix,    1 },
  { "%SEND-TO",            (void *)l_send_to,          6 },
  { "%DATAGRAM-CONNECT",   (void *)l_datagram_connect, 3 },
  { "%RECEIVE-FROM",       (void *)l_receive_from,     4 },
  { "%PARSE-ADDRESS",      (void *)l_parse_address,    1 },
  { "%FORMAT-INET6",       (void *)l_format_inet6,     2 },
  { "%SERVICE-PORT",       (void *)l_service_port,     2 },
  { "%SSL-MAKE-CONTEXT",   (void *)l_ssl_make_context, 2 },
  { "%SSL-FREE-CONTEXT",   (void *)l_ssl_free_context, 1 },
  { "%SSL-WRAP",           (void *)l_ssl_wrap,         11 },
  { "%SSL-STREAM-P",       (void *)l_ssl_stream_p,     1 },
  { "%SSL-PEER-CERTIFICATE", (void *)l_ssl_peer_certificate, 1 },
  { "%SSL-VERIFY-RESULT",  (void *)l_ssl_verify_result, 1 },
  { "%SSL-DESCRIPTION",    (void *)l_ssl_description,  1 },
  { "%SSL-COUNTS",         (void *)l_ssl_counts,       0 },
  { "%MAKE-POLLER",        (void *)l_make_poller,      0 },
  { "%POLLER-CLOSE",       (void *)l_poller_close,     1 },
  { "%POLLER-COUNT",       (void *)l_poller_count,     1 },
  { "%POLLER-ADD",         (void *)l_poller_add,       6 },
  { "%POLLER-REMOVE",      (void *)l_poller_remove,    4 },
  { "%POLLER-WAIT",        (void *)l_poller_wait,      2 },
  { "%SEND-CALLS",         (void *)l_send_calls,       0 },
};

/* Register the primitives in package ECLSOCK (made here if the Lisp layer
   has not made it yet).  Safe to call more than once. */
void
eclsock_init_primitives(void)
{
  size_t i;
  if (Null(ecl_find_package_nolock(ecl_make_constant_base_string(PKG, -1))))
    cl_make_package(3, ecl_make_constant_base_string(PKG, -1),
                    ecl_make_keyword("USE"),
                    ecl_list1(ecl_make_constant_base_string("CL", -1)));
  for (i = 0; i < sizeof prims / sizeof prims[0]; i++) {
    ecl_def_c_function(eclsock_sym(prims[i].name),
                       (cl_objectfn_fixed)prims[i].fn, prims[i].narg);
  }
  eclsock_bsd_init();
  eclsock_stream_init();
  if (Null(context_finalizer)) {
    context_finalizer = ecl_make_cfun((cl_objectfn_fixed)l_ssl_free_context,
                                      eclsock_sym("%SSL-FREE-CONTEXT"), ECL_NIL, 1);
    ecl_register_root(&context_finalizer);
  }
}
