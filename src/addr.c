/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * addr.c - name resolution and socket addresses for ecl-sock.
 *
 * Owns: getaddrinfo (one call, in lookup()), getnameinfo, getsockname and
 * getpeername, Unix socket addresses (files and abstract names: the one
 * filler of sun_path), internet addresses from their octets, the
 * destination of a datagram sent to a name, the text form of addresses
 * ("127.0.0.1", "::1"), and the sender given to a receive that named
 * none.  Resolver failures come back as ECLSOCK_EAI(code), mapped once
 * here.  getaddrinfo is not async-signal-safe, so it runs with Lisp
 * interrupts deferred.  Must not: allocate Lisp objects or signal.
 */
#include "internal.h"
#include <errno.h>
#include <arpa/inet.h>
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

/* Whether HOST can be a host name or a numeric address at all: letters,
   digits, "-._" (names), ":%" (IPv6 and scopes), and octets above 127
   (internationalised names).  Text that cannot ("[/]=") is an invalid
   argument when it does not resolve, as on CLISP, not an unknown host. */
static int
host_syntax_ok(const char *host)
{
  const unsigned char *p = (const unsigned char *)host;
  if (!*p)
    return 0;
  for (; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
          || (*p >= '0' && *p <= '9') || *p >= 128 || strchr("-._:%", *p)))
      return 0;
  return 1;
}

/* getaddrinfo with Lisp interrupts deferred (it is not async-signal-safe)
   and its failure mapped to our codes.  The one call of getaddrinfo. */
static int
lookup(const char *host, const char *service, const struct addrinfo *hints,
       struct addrinfo **out)
{
  const cl_env_ptr env = ecl_process_env();
  int r;
  *out = NULL;
  ecl_disable_interrupts_env(env);
  errno = 0;
  r = getaddrinfo(host, service, hints, out);
  if (r)
    r = eai_code(r);
  ecl_enable_interrupts_env(env);
  if (r) {
    *out = NULL;
    if (host && ECLSOCK_IS_EAI(r) && !host_syntax_ok(host))
      r = ECLSOCK_EBADARG;
  } else if (!*out)
    r = ECLSOCK_ENOADDR;
  return r;
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
  struct addrinfo hints;
  char service[16];
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
    | (family == AF_INET6 ? AI_V4MAPPED : 0);
  snprintf(service, sizeof service, "%d", port);
  return lookup(host, service, &hints, out);
}

/* The addresses of HOST, without a port, looked up with FLAGS. */
static int
lookup_host(const char *host, int flags, int socktype, struct addrinfo **out)
{
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = flags;
  hints.ai_socktype = socktype;
  return lookup(host, NULL, &hints, out);
}

/* Every address of HOST (stream sockets, no port), the first entry with
   the canonical name in ai_canonname. */
int
eclsock_addr_resolve_canon(const char *host, struct addrinfo **out)
{
  return lookup_host(host, AI_CANONNAME, SOCK_STREAM, out);
}

/* TEXT as a numeric address ("10.0.0.1", "::1", "fe80::1%lo"), never
   asking the resolver: an EAI code when TEXT is not one. */
int
eclsock_addr_parse_numeric(const char *text, struct addrinfo **out)
{
  return lookup_host(text, AI_NUMERICHOST, SOCK_DGRAM, out);
}

/* The port of service NAME ("http") for SOCKTYPE, from the services
   database, in *PORT. */
int
eclsock_addr_service_port(const char *name, int socktype, int *port)
{
  struct addrinfo hints, *res;
  char host[NI_MAXHOST];
  int r;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_flags = AI_PASSIVE;
  hints.ai_socktype = socktype;
  r = lookup(NULL, name, &hints, &res);
  if (!r)
    r = eclsock_addr_numeric(res->ai_addr, res->ai_addrlen, host, sizeof host, port);
  eclsock_addr_free(res);
  return r;
}

/* The Unix socket address of NAME (N octets) in *A: a file name, or with
   ABSTRACT a Linux abstract name (a NUL, then the octets).  The one place
   that fills sun_path; ECLSOCK_ETOOLONG when NAME does not fit. */
int
eclsock_addr_unix_name(const void *name, size_t n, int abstract, eclsock_addr *a)
{
  struct sockaddr_un *su = (struct sockaddr_un *)&a->ss;
  memset(a, 0, sizeof *a);
  su->sun_family = AF_UNIX;
  if (n >= sizeof su->sun_path)
    return ECLSOCK_ETOOLONG;
  memcpy(su->sun_path + (abstract ? 1 : 0), name, n);
  /* a file name's terminating NUL, or an abstract name's leading one */
  a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

/* The address of the Unix socket file PATH in *A; ECLSOCK_ETOOLONG when it
   does not fit in sun_path, ECLSOCK_ENOPATH when it is empty (Linux would
   take an empty name as an unnamed or abstract socket, silently). */
int
eclsock_addr_unix(const char *path, eclsock_addr *a)
{
  size_t n = strlen(path);
  if (n == 0) {
    memset(a, 0, sizeof *a);
    a->ss.ss_family = AF_UNIX;
    return ECLSOCK_ENOPATH;
  }
  return eclsock_addr_unix_name(path, n, 0, a);
}

/* The internet address of FAMILY (AF_INET: 4 octets at ADDR, AF_INET6: 16)
   and PORT in *A. */
void
eclsock_addr_inet(int family, const unsigned char *addr, int port, eclsock_addr *a)
{
  memset(a, 0, sizeof *a);
  if (family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((unsigned short)port);
    memcpy(&s4->sin_addr, addr, 4);
    a->len = sizeof *s4;
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((unsigned short)port);
    memcpy(&s6->sin6_addr, addr, 16);
    a->len = sizeof *s6;
  }
}

/* Where a datagram socket of FAMILY sends to HOST (PORT) in *TO: for a
   Unix socket the file HOST (PORT unused), else the first address of HOST
   and PORT in FAMILY. */
int
eclsock_addr_destination(int family, const char *host, int port, eclsock_addr *to)
{
  struct addrinfo *res = NULL;
  int code;
  if (family == AF_UNIX)
    return eclsock_addr_unix(host, to);
  code = eclsock_addr_resolve_af(host, port, 0, family, SOCK_DGRAM, &res);
  if (!code) {
    memcpy(&to->ss, res->ai_addr, res->ai_addrlen);
    to->len = res->ai_addrlen;
  }
  eclsock_addr_free(res);
  return code;
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
  /* The common cases without getnameinfo (which prints the port into SERV
     for us to parse back): inet_ntop writes the same text.  An IPv6
     address with a scope ("fe80::1%eth0") and a HOST too short for the
     text still go through getnameinfo. */
  if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    if (inet_ntop(AF_INET, &in->sin_addr, host, hostlen)) {
      *port = ntohs(in->sin_port);
      return 0;
    }
  } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (in6->sin6_scope_id == 0 && inet_ntop(AF_INET6, &in6->sin6_addr, host, hostlen)) {
      *port = ntohs(in6->sin6_port);
      return 0;
    }
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

/* The local (getsockname) or peer (getpeername) address of FD in *A; on
   failure *A is the unnamed address (length 0, family AF_UNSPEC), never
   left as it was, and the error code is returned. */
static int
named(int r, int e, eclsock_addr *a)
{
  if (r < 0) {
    memset(a, 0, sizeof *a);
    a->ss.ss_family = AF_UNSPEC;
    return e;
  }
  return 0;
}

int
eclsock_addr_local(int fd, eclsock_addr *a)
{
  int r;
  a->len = sizeof a->ss;
  r = getsockname(fd, (struct sockaddr *)&a->ss, &a->len);
  return named(r, errno, a);
}

int
eclsock_addr_peer(int fd, eclsock_addr *a)
{
  int r;
  a->len = sizeof a->ss;
  r = getpeername(fd, (struct sockaddr *)&a->ss, &a->len);
  return named(r, errno, a);
}

/* *FROM after a receive that named no sender (a stream socket, an unbound
   Unix datagram socket): FD's own family with the zero address of that
   family; AF_UNSPEC (length 0) when FD has no name. */
void
eclsock_addr_unnamed_sender(int fd, eclsock_addr *from)
{
  eclsock_addr self;
  if (from->len >= sizeof(sa_family_t))
    return;
  memset(from, 0, sizeof *from);
  if (eclsock_addr_local(fd, &self) != 0)
    return;
  from->ss.ss_family = self.ss.ss_family;
  switch (self.ss.ss_family) {
  case AF_INET: from->len = sizeof(struct sockaddr_in); break;
  case AF_INET6: from->len = sizeof(struct sockaddr_in6); break;
  case AF_UNIX: from->len = sizeof(sa_family_t); break;
  default: from->ss.ss_family = AF_UNSPEC; break;
  }
}
