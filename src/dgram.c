/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * dgram.c - the datagram primitives of the core faces (the Allegro face's
 * datagram sockets).
 *
 * Owns: ECLSOCK::%DATAGRAM, %DATAGRAM-UNIX, %SEND-TO, %DATAGRAM-CONNECT and
 * %RECEIVE-FROM: UDP and Unix datagram sockets made through
 * eclsock_conn_open, connected to a name; sends (to a name or the
 * connected peer) and receives through lispval.c's one send and one
 * receive (eclsock_dgram_prims, which glue.c registers).
 * Must not: make system calls itself, or convert addresses between Lisp
 * objects and socket addresses (lispval.c does).
 */
#include "internal.h"
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <string.h>
#include <sys/un.h>
#include <netinet/in.h>

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
try_datagram(int fd, const struct addrinfo *a, const struct eclsock_setup *s)
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
  struct eclsock_setup s;
  char *h = eclsock_arg_cstring(host, &keep);
  int p = eclsock_arg_port(port), fam = family_arg(family);
  memset(&s, 0, sizeof s);
  s.try = try_datagram;
  s.reuse = !Null(reuse);
  s.broadcast = !Null(broadcast);
  s.host = host; s.port = port;
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_conn_open("bind", h, p, 1, fam, SOCK_DGRAM, &s));
}

/* (%datagram-unix path) -> descriptor of a Unix datagram socket bound to
   PATH, or unbound (it can send, not be answered) when PATH is NIL. */
static cl_object
l_datagram_unix(cl_object path)
{
  cl_object keep;
  struct eclsock_setup s;
  char *p = Null(path) ? NULL : eclsock_arg_cstring(path, &keep);
  memset(&s, 0, sizeof s);
  s.try = try_datagram;
  s.host = path; s.port = ECL_NIL;
  ECLSOCK_RETURN1(ecl_process_env(),
          eclsock_conn_open("bind", p, 0, 1, AF_UNIX, SOCK_DGRAM, &s));
}

/* (%send-to fd octets start end host port) -> octets sent, as one
   datagram.  HOST is a name or numeric address (PORT its port) for an
   internet socket, a file name for a Unix one, or NIL to send to the
   connected peer. */
static cl_object
l_send_to(cl_object fd, cl_object v, cl_object start, cl_object end,
          cl_object host, cl_object port)
{
  return eclsock_lv_send(eclsock_arg_fd(fd), v, start, end, 0, ECLSOCK_FACE_CORE,
                         ECL_NIL, host, port);
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

/* The primitives of this file, for glue.c's registration. */
const struct eclsock_prim eclsock_dgram_prims[] = {
  { "%DATAGRAM", (void *)l_datagram, 5 },
  { "%DATAGRAM-UNIX", (void *)l_datagram_unix, 1 },
  { "%SEND-TO", (void *)l_send_to, 6 },
  { "%DATAGRAM-CONNECT", (void *)l_datagram_connect, 3 },
  { "%RECEIVE-FROM", (void *)l_receive_from, 4 },
};
const size_t eclsock_dgram_nprims = sizeof eclsock_dgram_prims / sizeof eclsock_dgram_prims[0];
