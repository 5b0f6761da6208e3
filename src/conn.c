/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * conn.c - making sockets and the connection primitives.
 *
 * Owns: eclsock_conn_open, the one way a primitive makes a socket for the
 * first address that works (resolve, socket, finish, hand it to its owner;
 * descriptors closed by an unwind-protect cleanup until a stream or server
 * owns them, one collection when descriptors run out); the socket stream
 * argument check; stream names; and ECLSOCK::%CONNECT, %CONNECT-FROM,
 * %CONNECT-UNIX, %LISTEN, %LISTEN-UNIX, %ACCEPT, %WRAP-FD, %CLOSE-FD and
 * %SHUTDOWN-FD (eclsock_conn_prims, which glue.c registers).
 * Must not: make system calls itself (os.c, addr.c do) or leak a
 * descriptor on an error or an interrupt.
 */
#include "internal.h"
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <string.h>
#include <sys/un.h>
#include <netinet/in.h>

/* S, a socket stream; a type error otherwise. */
cl_object
eclsock_conn_stream_arg(cl_object s)
{
  if (!eclsock_stream_p(s))
    FEwrong_type_argument(ecl_make_symbol("SOCKET-STREAM", "SOCKET"), s);
  return s;
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

/* A socket of SOCKTYPE for the first address on which S->try succeeds,
   the others closed.  The addresses: HOST resolved with PORT (FAMILY,
   PASSIVE for a local address), or, for FAMILY AF_UNIX, the file HOST
   (NULL: no address).  The deadline stops the tries early.  Returns what
   S->own makes of the descriptor; signals as OP on failure.  Neither an
   error nor an interrupt leaks a descriptor. */
cl_object
eclsock_conn_open(const char *op, const char *host, int port, int passive, int family,
            int socktype, const struct eclsock_setup *s)
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
own_stream(int fd, const struct addrinfo *a, const struct eclsock_setup *s)
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
try_connect(int fd, const struct addrinfo *a, const struct eclsock_setup *s)
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
  struct eclsock_setup s;
  char *h = eclsock_arg_cstring(host, &keep);
  int p = eclsock_arg_port(port);
  memset(&s, 0, sizeof s);
  s.try = try_connect;
  s.own = own_stream;
  s.lhost = Null(lhost) ? NULL : eclsock_arg_cstring(lhost, &lkeep);
  s.lport = Null(lport) ? 0 : eclsock_arg_port(lport);
  s.dl = eclsock_arg_deadline(timeout);
  s.host = host; s.port = port;
  s.elttype = elttype; s.extfmt = extfmt; s.buffered = buffered;
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_conn_open("connect", h, p, 0, AF_UNSPEC, SOCK_STREAM, &s));
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
  struct eclsock_setup s;
  char *p = eclsock_arg_cstring(path, &keep);
  memset(&s, 0, sizeof s);
  s.try = try_connect;
  s.own = own_stream;
  s.dl = eclsock_arg_deadline(timeout);
  s.host = path; s.port = ECL_NIL;
  s.elttype = elttype; s.extfmt = extfmt; s.buffered = buffered;
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_conn_open("connect", p, 0, 0, AF_UNIX, SOCK_STREAM, &s));
}

/* Bind, listen, and go non-blocking, so that accept never blocks past its
   wait. */
static int
try_listen(int fd, const struct addrinfo *a, const struct eclsock_setup *s)
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
  struct eclsock_setup s;
  char *h = eclsock_arg_cstring(host, &keep);
  int p = eclsock_arg_port(port);
  memset(&s, 0, sizeof s);
  s.try = try_listen;
  s.backlog = ecl_to_int(backlog);
  s.host = host; s.port = port;
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_conn_open("bind", h, p, 1, AF_UNSPEC, SOCK_STREAM, &s));
}

/* (%listen-unix path backlog) -> descriptor. */
static cl_object
l_listen_unix(cl_object path, cl_object backlog)
{
  cl_object keep;
  struct eclsock_setup s;
  char *p = eclsock_arg_cstring(path, &keep);
  memset(&s, 0, sizeof s);
  s.try = try_listen;
  s.backlog = ecl_to_int(backlog);
  s.host = path; s.port = ECL_NIL;
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_conn_open("bind", p, 0, 1, AF_UNIX, SOCK_STREAM, &s));
}

/* (%accept fd timeout element-type external-format buffered host port)
   -> a socket stream, or NIL when TIMEOUT passed first. */
static cl_object
l_accept(cl_object lfd, cl_object timeout, cl_object elttype,
         cl_object extfmt, cl_object buffered, cl_object host, cl_object port)
{
  const cl_env_ptr env = ecl_process_env();
  int l = eclsock_arg_fd(lfd);
  eclsock_deadline dl = eclsock_arg_deadline(timeout);
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
   socket stream that now owns FD.  HOST T: the stream's host and port
   are FD's peer, its numeric text and port (NIL and NIL when it has none;
   a Unix socket's path and NIL), from the one look-up that also names the
   stream. */
static cl_object
l_wrap_fd(cl_object fd, cl_object elttype, cl_object extfmt,
          cl_object buffered, cl_object host, cl_object port)
{
  int f = eclsock_arg_fd(fd);
  eclsock_addr peer;
  int known = 0;
  if (host == ECL_T) {
    char text[NI_MAXHOST];
    int pt = 0;
    host = port = ECL_NIL;
    if (eclsock_addr_peer(f, &peer) == 0) {
      known = 1;
      if (eclsock_addr_numeric((const struct sockaddr *)&peer.ss, peer.len, text,
                               sizeof text, &pt) == 0 && text[0]) {
        host = ecl_make_simple_base_string(text, -1);
        if (peer.ss.ss_family != AF_UNIX)
          port = ecl_make_fixnum(pt);
      }
    }
  }
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_stream_make(f, elttype, extfmt, !Null(buffered), host,
                              port, stream_name(f, known ? &peer : NULL)));
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

/* The primitives of this file, for glue.c's registration. */
const struct eclsock_prim eclsock_conn_prims[] = {
  { "%CONNECT", (void *)l_connect, 6 },
  { "%CONNECT-FROM", (void *)l_connect_from, 8 },
  { "%CONNECT-UNIX", (void *)l_connect_unix, 5 },
  { "%LISTEN", (void *)l_listen, 3 },
  { "%LISTEN-UNIX", (void *)l_listen_unix, 2 },
  { "%ACCEPT", (void *)l_accept, 7 },
  { "%WRAP-FD", (void *)l_wrap_fd, 6 },
  { "%CLOSE-FD", (void *)l_close_fd, 1 },
  { "%SHUTDOWN-FD", (void *)l_shutdown_fd, 2 },
};
const size_t eclsock_conn_nprims = sizeof eclsock_conn_prims / sizeof eclsock_conn_prims[0];
