/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * timeout.c - the clock, deadlines and the one blocking wait of ecl-sock.
 *
 * Owns: CLOCK_MONOTONIC arithmetic and poll(2).  Every wait in the module
 * (accept, connect, socket-status, socket-wait) ends up in eclsock_tm_poll,
 * which retries on EINTR with the remaining time recomputed (Boehm GC's
 * signals interrupt poll hundreds of times a second) and lets deferred Lisp
 * interrupts run between tries.  Must not: allocate Lisp objects or signal.
 */
#include "internal.h"
#include <errno.h>
#include <limits.h>
#include <time.h>

double
eclsock_tm_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* SECONDS from now, or ECLSOCK_NO_DEADLINE when SECONDS is negative. */
eclsock_deadline
eclsock_tm_deadline(double seconds)
{
  if (seconds < 0)
    return ECLSOCK_NO_DEADLINE;
  return eclsock_tm_now() + seconds;
}

/* Milliseconds left until DL for poll(2): -1 for none, rounded up so that a
   wait never ends before its deadline, clamped to INT_MAX. */
static int
remaining_ms(eclsock_deadline dl)
{
  double left;
  if (dl < 0)
    return -1;
  left = (dl - eclsock_tm_now()) * 1000.0;
  if (left <= 0)
    return 0;
  if (left >= (double)INT_MAX)
    return INT_MAX;
  return (int)left + ((double)(int)left < left ? 1 : 0);
}

/* poll FDS until one is ready or DL passes.  Returns 0 with *NREADY > 0,
   ECLSOCK_ETIMEOUT (with *NREADY = 0), or an errno.  Blocks; never signals,
   but deferred Lisp interrupts run between tries (and may unwind). */
int
eclsock_tm_poll(struct pollfd *fds, nfds_t n, eclsock_deadline dl, int *nready)
{
  const cl_env_ptr env = ecl_process_env();
  for (;;) {
    int r, e, ms = remaining_ms(dl);
    ECLSOCK_BLOCKING(env, r, e, poll(fds, n, ms));
    if (r > 0) {
      *nready = r;
      return 0;
    }
    if (r == 0) {
      if (ms != 0 && dl >= 0 && eclsock_tm_now() < dl)
        continue;               /* woke early (rounding): wait the rest */
      *nready = 0;
      return ECLSOCK_ETIMEOUT;
    }
    if (e != EINTR && e != EAGAIN)
      return e;
  }
}

/* Wait until FD has one of EVENTS (or an error/hangup) or DL passes.
   Returns 0, ECLSOCK_ETIMEOUT or an errno. */
int
eclsock_tm_wait(int fd, short events, eclsock_deadline dl)
{
  struct pollfd p;
  int n;
  p.fd = fd;
  p.events = events;
  p.revents = 0;
  return eclsock_tm_poll(&p, 1, dl, &n);
}
