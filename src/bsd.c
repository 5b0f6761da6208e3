/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * bsd.c - the Lisp primitives of the SB-BSD-SOCKETS face (lisp/bsd.lisp).
 *
 * Owns: ECLSOCK::%BSD-... : socket creation, bind, listen, connect and
 * accept as separate steps on a descriptor that the Lisp socket object
 * holds, socket-name/peername as octet vectors, non-blocking mode,
 * getsockopt/setsockopt by level and name, send/receive with flags and
 * addresses (lispval.c's one send and one receive), and the C constants
 * the face needs.  Arguments are checked here (type errors before any
 * system call); the address vectors are already normalised by the Lisp
 * face and become socket addresses in lispval.c (eclsock_lv_sockaddr).  Failures go through
 * eclsock_raise() like everything else; the face picks its own condition
 * classes (ECLSOCK::*ERROR-CLASS-FUNCTION*).
 * Must not: make system calls itself (os.c does), hold a descriptor that
 * no Lisp object knows about across an unwind (accept closes it then).
 */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* (%bsd-socket family type protocol) -> a new descriptor.  TCP sockets
   start with TCP_NODELAY on, as the other faces' (conn.c): the stream
   joins small writes itself, so Nagle's algorithm only ever delays (a
   keep-alive answer written in two pieces waited 40 ms for the peer's
   delayed ACK).  Connections accepted on a listener inherit it (Linux);
   setting the option afterwards overrides it. */
static cl_object
l_bsd_socket(cl_object family, cl_object type, cl_object protocol)
{
  volatile int fd = -1;
  int fam = eclsock_arg_cint(family), typ = eclsock_arg_cint(type), proto = eclsock_arg_cint(protocol);
  int code = eclsock_os_socket_proto(fam, typ, proto, &fd);
  if (code)
    eclsock_raise("socket", code, ECL_NIL, ECL_NIL, ECL_NIL);
  if ((fam == AF_INET || fam == AF_INET6) && typ == SOCK_STREAM
      && (proto == 0 || proto == IPPROTO_TCP))
    (void)eclsock_os_set_nodelay(fd, 1);
  ecl_return1(ecl_process_env(), ecl_make_fixnum(fd));
}

/* (%bsd-bind fd family address port) */
static cl_object
l_bsd_bind(cl_object fd, cl_object family, cl_object address, cl_object port)
{
  eclsock_addr a;
  int f = eclsock_arg_fd(fd), code;
  eclsock_lv_sockaddr(family, address, port, &a);
  code = eclsock_os_bind(f, (struct sockaddr *)&a.ss, a.len, 0);
  if (code)
    eclsock_raise("bind", code, address, port, ECL_NIL);
  ecl_return1(ecl_process_env(), ECL_T);
}

/* (%bsd-connect fd family address port): blocks until connected (a
   non-blocking socket gives EINPROGRESS). */
static cl_object
l_bsd_connect(cl_object fd, cl_object family, cl_object address, cl_object port)
{
  eclsock_addr a;
  int f = eclsock_arg_fd(fd), code;
  eclsock_lv_sockaddr(family, address, port, &a);
  code = eclsock_os_connect(f, (struct sockaddr *)&a.ss, a.len, ECLSOCK_NO_DEADLINE);
  if (code)
    eclsock_raise("connect", code, address, port, ECL_NIL);
  ecl_return1(ecl_process_env(), ECL_T);
}

/* (%bsd-listen fd backlog) */
static cl_object
l_bsd_listen(cl_object fd, cl_object backlog)
{
  int code = eclsock_os_listen(eclsock_arg_fd(fd), eclsock_arg_cint(backlog));
  if (code)
    eclsock_raise("listen", code, ECL_NIL, ECL_NIL, ECL_NIL);
  ecl_return1(ecl_process_env(), ECL_T);
}

/* (%bsd-accept fd) -> the new connection's descriptor (blocking, close on
   exec), or NIL when FD is non-blocking and nothing is pending.  The Lisp
   caller owns the descriptor at once; until this returns, an unwind
   closes it. */
static cl_object
l_bsd_accept(cl_object lfd)
{
  const cl_env_ptr env = ecl_process_env();
  int l = eclsock_arg_fd(lfd), nonblock = 0;
  volatile int fd = -1, code, done = 0;
  code = eclsock_os_get_nonblock(l, &nonblock);
  if (code)
    eclsock_raise("accept", code, ECL_NIL, ECL_NIL, ECL_NIL);
  ECL_UNWIND_PROTECT_BEGIN(env) {
    code = eclsock_os_accept(l, &fd, nonblock ? eclsock_tm_deadline(0.0)
                             : ECLSOCK_NO_DEADLINE);
    done = 1;
  } ECL_UNWIND_PROTECT_EXIT {
    if ((!done || code) && fd >= 0)
      eclsock_os_close(fd);
  } ECL_UNWIND_PROTECT_END;
  if (code == ECLSOCK_ETIMEOUT)
    ecl_return1(env, ECL_NIL);
  if (code)
    eclsock_raise("accept", code, ECL_NIL, ECL_NIL, ECL_NIL);
  ecl_return1(env, ecl_make_fixnum(fd));
}

/* (%bsd-address fd peer-p) -> family, address, port (eclsock_lv_address). */
static cl_object
l_bsd_address(cl_object fd, cl_object peer)
{
  eclsock_addr a;
  cl_object out[3];
  int f = eclsock_arg_fd(fd);
  int code = Null(peer) ? eclsock_addr_local(f, &a) : eclsock_addr_peer(f, &a);
  if (code)
    eclsock_raise(Null(peer) ? "getsockname" : "getpeername", code, ECL_NIL,
                  ECL_NIL, ECL_NIL);
  (void)eclsock_lv_address(&a, ECLSOCK_FACE_BSD, out);
  ecl_return3(ecl_process_env(), out[0], out[1], out[2]);
}

static cl_object
l_bsd_nonblock(cl_object fd)
{
  int on = 0, code = eclsock_os_get_nonblock(eclsock_arg_fd(fd), &on);
  if (code)
    eclsock_raise("fcntl", code, ECL_NIL, ECL_NIL, ECL_NIL);
  ecl_return1(ecl_process_env(), on ? ECL_T : ECL_NIL);
}

static cl_object
l_bsd_set_nonblock(cl_object fd, cl_object flag)
{
  int code = eclsock_os_set_nonblock(eclsock_arg_fd(fd), !Null(flag));
  if (code)
    eclsock_raise("fcntl", code, ECL_NIL, ECL_NIL, ECL_NIL);
  ecl_return1(ecl_process_env(), flag);
}

/* (%bsd-getsockopt fd level name kind) -> the value: an integer, a
   boolean, seconds (a double), linger seconds (0 when off) or a string
   (KIND as lisp/bsd.lisp numbers it; values: lispval.c). */
static cl_object
l_bsd_getsockopt(cl_object fd, cl_object level, cl_object name, cl_object kind)
{
  int f = eclsock_arg_fd(fd), lv = eclsock_arg_cint(level), nm = eclsock_arg_cint(name);
  enum eclsock_optkind k = eclsock_lv_optkind(kind);
  ecl_return1(ecl_process_env(),
              eclsock_lv_getsockopt(f, lv, nm, k, ECLSOCK_FACE_BSD));
}

/* (%bsd-setsockopt fd level name kind value) -> VALUE. */
static cl_object
l_bsd_setsockopt(cl_object fd, cl_object level, cl_object name, cl_object kind,
                 cl_object value)
{
  int f = eclsock_arg_fd(fd), lv = eclsock_arg_cint(level), nm = eclsock_arg_cint(name);
  enum eclsock_optkind k = eclsock_lv_optkind(kind);
  eclsock_lv_setsockopt(f, lv, nm, k, ECLSOCK_FACE_BSD, value);
  ecl_return1(ecl_process_env(), value);
}

/* (%bsd-send fd octets start end flags family address port) -> octets
   sent, or NIL when the socket cannot take them now (EAGAIN).  FAMILY 0:
   to the connected peer. */
static cl_object
l_bsd_send(cl_object fd, cl_object v, cl_object start, cl_object end,
           cl_object flags, cl_object family, cl_object address, cl_object port)
{
  int f = eclsock_arg_fd(fd), fl = eclsock_arg_cint(flags);
  return eclsock_lv_send(f, v, start, end, fl, ECLSOCK_FACE_BSD, family, address, port);
}

/* (%bsd-receive fd octets start end flags) -> count, family, address,
   port; or NIL when nothing is there on a non-blocking socket. */
static cl_object
l_bsd_receive(cl_object fd, cl_object v, cl_object start, cl_object end,
              cl_object flags)
{
  return eclsock_lv_receive(eclsock_arg_fd(fd), v, start, end, eclsock_arg_cint(flags),
                            ECLSOCK_FACE_BSD);
}

/* The C constants the face needs, by name. */
static const struct { const char *name; int value; } constants[] = {
  { "SOL_SOCKET", SOL_SOCKET }, { "IPPROTO_TCP", IPPROTO_TCP },
  { "SO_TYPE", SO_TYPE }, { "SO_RCVBUF", SO_RCVBUF }, { "SO_SNDBUF", SO_SNDBUF },
  { "SO_RCVLOWAT", SO_RCVLOWAT }, { "SO_SNDLOWAT", SO_SNDLOWAT },
  { "SO_REUSEADDR", SO_REUSEADDR }, { "SO_KEEPALIVE", SO_KEEPALIVE },
  { "SO_DONTROUTE", SO_DONTROUTE }, { "SO_BROADCAST", SO_BROADCAST },
  { "SO_DEBUG", SO_DEBUG }, { "SO_OOBINLINE", SO_OOBINLINE },
  { "SO_LINGER", SO_LINGER }, { "SO_RCVTIMEO", SO_RCVTIMEO },
  { "SO_SNDTIMEO", SO_SNDTIMEO }, { "TCP_NODELAY", TCP_NODELAY },
#ifdef SO_BINDTODEVICE
  { "SO_BINDTODEVICE", SO_BINDTODEVICE },
#endif
#ifdef SO_PRIORITY
  { "SO_PRIORITY", SO_PRIORITY },
#endif
#ifdef SO_PASSCRED
  { "SO_PASSCRED", SO_PASSCRED },
#endif
#ifdef SO_BSDCOMPAT
  { "SO_BSDCOMPAT", SO_BSDCOMPAT },
#endif
#ifdef TCP_KEEPIDLE
  { "TCP_KEEPIDLE", TCP_KEEPIDLE }, { "TCP_KEEPINTVL", TCP_KEEPINTVL },
  { "TCP_KEEPCNT", TCP_KEEPCNT },
#endif
#ifdef TCP_USER_TIMEOUT
  { "TCP_USER_TIMEOUT", TCP_USER_TIMEOUT },
#endif
  { "SO_ERROR", SO_ERROR },
  { "MSG_OOB", MSG_OOB }, { "MSG_PEEK", MSG_PEEK }, { "MSG_WAITALL", MSG_WAITALL },
  { "MSG_DONTWAIT", MSG_DONTWAIT }, { "MSG_TRUNC", MSG_TRUNC }, { "MSG_EOR", MSG_EOR },
  { "MSG_DONTROUTE", MSG_DONTROUTE },
#ifdef MSG_CONFIRM
  { "MSG_CONFIRM", MSG_CONFIRM },
#endif
#ifdef MSG_MORE
  { "MSG_MORE", MSG_MORE },
#endif
};

/* (%bsd-constant name) -> the value of C constant NAME, or NIL. */
static cl_object
l_bsd_constant(cl_object name)
{
  cl_object keep;
  char *n = eclsock_arg_cstring(name, &keep);
  size_t i;
  for (i = 0; i < sizeof constants / sizeof constants[0]; i++)
    if (!strcmp(constants[i].name, n))
      ecl_return1(ecl_process_env(), ecl_make_fixnum(constants[i].value));
  ecl_return1(ecl_process_env(), ECL_NIL);
}

/* (%stream-restrict stream input output): a stream that SOCKET-MAKE-STREAM
   made for one direction refuses the other. */
static cl_object
l_stream_restrict(cl_object s, cl_object input, cl_object output)
{
  if (!eclsock_stream_p(s))
    FEwrong_type_argument(ecl_make_symbol("STREAM", "CL"), s);
  eclsock_stream_restrict(s, !Null(input), !Null(output));
  ecl_return1(ecl_process_env(), s);
}

/* The primitives of this file, for glue.c's registration. */
const struct eclsock_prim eclsock_bsd_prims[] = {
  { "%BSD-SOCKET",        (void *)l_bsd_socket,        3 },
  { "%BSD-BIND",          (void *)l_bsd_bind,          4 },
  { "%BSD-CONNECT",       (void *)l_bsd_connect,       4 },
  { "%BSD-LISTEN",        (void *)l_bsd_listen,        2 },
  { "%BSD-ACCEPT",        (void *)l_bsd_accept,        1 },
  { "%BSD-ADDRESS",       (void *)l_bsd_address,       2 },
  { "%BSD-NONBLOCK",      (void *)l_bsd_nonblock,      1 },
  { "%BSD-SET-NONBLOCK",  (void *)l_bsd_set_nonblock,  2 },
  { "%BSD-GETSOCKOPT",    (void *)l_bsd_getsockopt,    4 },
  { "%BSD-SETSOCKOPT",    (void *)l_bsd_setsockopt,    5 },
  { "%BSD-SEND",          (void *)l_bsd_send,          8 },
  { "%BSD-RECEIVE",       (void *)l_bsd_receive,       5 },
  { "%BSD-CONSTANT",      (void *)l_bsd_constant,      1 },
  { "%STREAM-RESTRICT",   (void *)l_stream_restrict,   3 },
};
const size_t eclsock_bsd_nprims = sizeof eclsock_bsd_prims / sizeof eclsock_bsd_prims[0];
