/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * addr.c - name resolution and socket addresses for ecl-sock.
 *
 * Owns: getaddrinfo/getnameinfo and the text form of addresses ("127.0.0.1",
 * "::1").  Resolver failures come back as ECLSOCK_EAI(code), mapped once
 * here.  getaddrinfo is not async-signal-safe, so it runs with Lisp
 * interrupts deferred.  Must not: allocate Lisp objects or signal.
 */
#include "eclsock.h"
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static int
eai_code(int r)
{
  if (r == EAI_SYSTEM)
    return errno ? errno : EIO;
  return ECLSOCK_EAI(r);
}

/* Resolve HOST and PORT for SOCKTYPE.  HOST NULL with PASSIVE gives the
   wildcard address.  Addresses come in the resolver's order (IPv4 and IPv6
   alike).  Returns 0, an errno or ECLSOCK_EAI(code). */
int
eclsock_addr_resolve(const char *host, int port, int passive, int socktype,
                     struct addrinfo **out)
{
  return eclsock_addr_resolve_af(host, port, passive, AF_UNSPEC, socktype, out);
}

/* As eclsock_addr_resolve, for addresses of FAMILY only (AF_UNSPEC: any).
   An AF_INET6 caller also gets IPv4 hosts, as v4-mapped addresses. */
int
eclsock_addr_resolve_af(const char *host, int port, int passive, int family,
                        int socktype, struct addrinfo **out)
{
  const cl_env_ptr env = ecl_process_env();
  struct addrinfo hints;
  char service[16];
  int r;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
    | (family == AF_INET6 ? AI_V4MAPPED : 0);
  snprintf(service, sizeof service, "%d", port);
  ecl_disable_interrupts_env(env);
  errno = 0;
  r = getaddrinfo(host, service, &hints, out);
  if (r)
    r = eai_code(r);
  ecl_enable_interrupts_env(env);
  if (!r && !*out)
    return ECLSOCK_ENOADDR;
  return r;
}

void
eclsock_addr_free(struct addrinfo *ai)
{
  const cl_env_ptr env = ecl_process_env();
  if (!ai)
    return;
  ecl_disable_interrupts_env(env);
  freeaddrinfo(ai);
  ecl_enable_interrupts_env(env);
}

/* The numeric text of SA in HOST and its port in *PORT (0 for Unix
   sockets, whose HOST is the path). */
int
eclsock_addr_numeric(const struct sockaddr *sa, socklen_t len, char *host,
                     size_t hostlen, int *port)
{
  char serv[16];
  int r;
  if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *u = (const struct sockaddr_un *)sa;
    size_t n = len > offsetof(struct sockaddr_un, sun_path)
      ? strnlen(u->sun_path, len - offsetof(struct sockaddr_un, sun_path)) : 0;
    if (n >= hostlen)
      n = hostlen - 1;
    memcpy(host, u->sun_path, n);
    host[n] = 0;
    *port = 0;
    return 0;
  }
  r = getnameinfo(sa, len, host, hostlen, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV);
  if (r)
    return eai_code(r);
  *port = atoi(serv);
  return 0;
}

/* The name of the host at SA, from the resolver; an error when it has none. */
int
eclsock_addr_name(const struct sockaddr *sa, socklen_t len, char *host,
                  size_t hostlen)
{
  const cl_env_ptr env = ecl_process_env();
  int r;
  ecl_disable_interrupts_env(env);
  r = getnameinfo(sa, len, host, hostlen, NULL, 0, NI_NAMEREQD);
  if (r)
    r = eai_code(r);
  ecl_enable_interrupts_env(env);
  return r;
}

int
eclsock_addr_local(int fd, eclsock_addr *a)
{
  a->len = sizeof a->ss;
  return getsockname(fd, (struct sockaddr *)&a->ss, &a->len) < 0 ? errno : 0;
}

int
eclsock_addr_peer(int fd, eclsock_addr *a)
{
  a->len = sizeof a->ss;
  return getpeername(fd, (struct sockaddr *)&a->ss, &a->len) < 0 ? errno : 0;
}
