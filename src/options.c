/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * options.c - socket options on the C side, for every face.
 *
 * Owns: which keyword means which getsockopt/setsockopt level and name, and
 * how its value is shaped (boolean, integer, timeval, linger, string);
 * reading and writing an option of any kind as a struct eclsock_optval
 * (lispval.c turns those into Lisp objects for each face).  Adding an
 * option is one line.  Must not: allocate Lisp objects or signal.
 */
#include "internal.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/time.h>

static const struct eclsock_option options[] = {
  { "SO-DEBUG",      SOL_SOCKET, SO_DEBUG,      OPT_BOOL },
  { "SO-ACCEPTCONN", SOL_SOCKET, SO_ACCEPTCONN, OPT_BOOL },
  { "SO-BROADCAST",  SOL_SOCKET, SO_BROADCAST,  OPT_BOOL },
  { "SO-REUSEADDR",  SOL_SOCKET, SO_REUSEADDR,  OPT_BOOL },
  { "SO-DONTROUTE",  SOL_SOCKET, SO_DONTROUTE,  OPT_BOOL },
  { "SO-KEEPALIVE",  SOL_SOCKET, SO_KEEPALIVE,  OPT_BOOL },
  { "SO-OOBINLINE",  SOL_SOCKET, SO_OOBINLINE,  OPT_BOOL },
  { "SO-ERROR",      SOL_SOCKET, SO_ERROR,      OPT_BOOL },  /* CLISP reads both */
  { "SO-TYPE",       SOL_SOCKET, SO_TYPE,       OPT_BOOL },  /* as booleans */
  { "SO-RCVBUF",     SOL_SOCKET, SO_RCVBUF,     OPT_INT },
  { "SO-SNDBUF",     SOL_SOCKET, SO_SNDBUF,     OPT_INT },
  { "SO-RCVLOWAT",   SOL_SOCKET, SO_RCVLOWAT,   OPT_INT },
  { "SO-SNDLOWAT",   SOL_SOCKET, SO_SNDLOWAT,   OPT_INT },
  { "SO-RCVTIMEO",   SOL_SOCKET, SO_RCVTIMEO,   OPT_TIMEVAL },
  { "SO-SNDTIMEO",   SOL_SOCKET, SO_SNDTIMEO,   OPT_TIMEVAL },
  { "SO-LINGER",     SOL_SOCKET, SO_LINGER,     OPT_LINGER },
  { "TCP-NODELAY",   IPPROTO_TCP, TCP_NODELAY,  OPT_BOOL },
#ifdef TCP_KEEPIDLE
  { "TCP-KEEPIDLE",  IPPROTO_TCP, TCP_KEEPIDLE, OPT_INT },
  { "TCP-KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, OPT_INT },
  { "TCP-KEEPCNT",   IPPROTO_TCP, TCP_KEEPCNT,  OPT_INT },
#endif
};

/* The entry named NAME (a keyword's name), or NULL. */
const struct eclsock_option *
eclsock_opt_find(const char *name)
{
  size_t i;
  for (i = 0; i < sizeof options / sizeof options[0]; i++)
    if (!strcmp(options[i].name, name))
      return &options[i];
  return NULL;
}

const struct eclsock_option *
eclsock_opt_table(size_t *count)
{
  *count = sizeof options / sizeof options[0];
  return options;
}

/* Read option LEVEL/NAME of FD, of kind K, into *V.  0 or an error code. */
int
eclsock_opt_get(int fd, int level, int name, enum eclsock_optkind k,
                struct eclsock_optval *v)
{
  union { int i; struct timeval tv; struct linger l; char s[sizeof v->s]; } u;
  socklen_t len = sizeof u;
  int code;
  memset(&u, 0, sizeof u);
  memset(v, 0, sizeof *v);
  if ((code = eclsock_os_getsockopt(fd, level, name, &u, &len)))
    return code;
  switch (k) {
  case OPT_BOOL: v->on = u.i != 0; break;
  case OPT_INT: v->i = u.i; break;
  case OPT_TIMEVAL:
    v->secs = (double)u.tv.tv_sec + u.tv.tv_usec * 1e-6;
    v->whole = u.tv.tv_usec == 0;
    break;
  case OPT_LINGER: v->on = u.l.l_onoff != 0; v->i = u.l.l_linger; break;
  case OPT_STRING:
    memcpy(v->s, u.s, sizeof v->s - 1);
    v->s[sizeof v->s - 1] = 0;
    break;
  }
  return 0;
}

/* Write *V as option LEVEL/NAME of FD, of kind K.  A timeval's seconds
   must be from 0 to INT_MAX (the caller checks: lispval.c); a string is
   passed with its NUL.  0 or an error code. */
int
eclsock_opt_set(int fd, int level, int name, enum eclsock_optkind k,
                const struct eclsock_optval *v)
{
  union { int i; struct timeval tv; struct linger l; } u;
  const void *p = &u;
  socklen_t len = sizeof(int);
  memset(&u, 0, sizeof u);
  switch (k) {
  case OPT_BOOL: u.i = v->on != 0; break;
  case OPT_INT: u.i = v->i; break;
  case OPT_TIMEVAL:
    u.tv.tv_sec = (time_t)v->secs;
    u.tv.tv_usec = (suseconds_t)((v->secs - (double)u.tv.tv_sec) * 1e6);
    len = sizeof u.tv;
    break;
  case OPT_LINGER:
    u.l.l_onoff = v->on != 0;
    u.l.l_linger = v->i;
    len = sizeof u.l;
    break;
  case OPT_STRING:
    p = v->str;
    len = (socklen_t)strlen(v->str) + 1;
    break;
  }
  return eclsock_os_setsockopt(fd, level, name, p, len);
}
