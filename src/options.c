/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * options.c - the socket option table behind socket-options.
 *
 * Owns: which keyword means which getsockopt/setsockopt level and name, and
 * how its value is shaped (boolean, integer, timeval, linger).  Adding an
 * option is one line.  Must not: allocate Lisp objects or signal.
 */
#include "internal.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

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
