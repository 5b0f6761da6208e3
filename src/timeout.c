/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * timeout.c - the clock, deadlines and the one blocking wait of ecl-sock.
 *
 * Owns: CLOCK_MONOTONIC arithmetic, poll(2) and epoll_wait(2).  Every wait
 * in the module (accept, connect, socket-status, socket-wait) ends up in
 * eclsock_tm_poll, the poller's in eclsock_tm_epoll_wait; both
 * retry on EINTR with the remaining time recomputed (Boehm GC's
 * signals interrupt poll hundreds of times a second) and lets deferred Lisp
 * interrupts run between tries.  The flusher thread, which has no Lisp
 * environment, waits in eclsock_tm_wait_plain.  Must not: allocate Lisp
 * objects or signal.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE                    /* ppoll */
#endif
#include "internal.h"
#include <errno.h>
#include <limits.h>
#include <time.h>
#ifdef HAVE_EPOLL
# include <sys/epoll.h>
#endif

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

/* epoll_wait on EPFD for at most MAX events until one comes or DL passes,
   with the discipline of eclsock_tm_poll.  Each event comes back as its
   registration's data in DATA[i] and its poll(2) bits (POLLIN, POLLOUT,
   POLLERR, POLLHUP) in REVENTS[i].  Returns 0 with *NREADY > 0,
   ECLSOCK_ETIMEOUT (*NREADY = 0) or an errno (ENOSYS without epoll). */
int
eclsock_tm_epoll_wait(int epfd, uint64_t *data, short *revents, int max,
                      eclsock_deadline dl, int *nready)
{
#ifdef HAVE_EPOLL
  const cl_env_ptr env = ecl_process_env();
  struct epoll_event ev[ECLSOCK_EPOLL_MAX];
  if (max > ECLSOCK_EPOLL_MAX)
    max = ECLSOCK_EPOLL_MAX;
  for (;;) {
    int r, e, i, ms = remaining_ms(dl);
    ECLSOCK_BLOCKING(env, r, e, epoll_wait(epfd, ev, max, ms));
    if (r > 0) {
      for (i = 0; i < r; i++) {
        uint32_t x = ev[i].events;
        data[i] = ev[i].data.u64;
        revents[i] = (short)(((x & EPOLLIN) ? POLLIN : 0) | ((x & EPOLLOUT) ? POLLOUT : 0)
                             | ((x & EPOLLERR) ? POLLERR : 0) | ((x & EPOLLHUP) ? POLLHUP : 0)
                             | ((x & EPOLLRDHUP) ? POLLIN : 0));
      }
      *nready = r;
      return 0;
    }
    if (r == 0) {
      if (ms != 0 && dl >= 0 && eclsock_tm_now() < dl)
        continue;
      *nready = 0;
      return ECLSOCK_ETIMEOUT;
    }
    if (e != EINTR && e != EAGAIN)
      return e;
  }
#else
  (void)epfd; (void)data; (void)revents; (void)max; (void)dl;
  *nready = 0;
  return ENOSYS;
#endif
}

/* The flusher's wait (a thread without a Lisp environment, so no interrupt
   discipline): for events of the epoll set EPFD (EPFD < 0: poll(2) over
   the N descriptors of FDS instead) until DL, to the nanosecond where the
   system can (epoll_pwait2, ppoll).  With epoll each event's data goes to
   DATA[i] (at most MAX); with poll, FDS[i].revents say.  Returns the
   number of events, 0 at the deadline, or -errno.  EINTR ends the wait
   early with 0 (the caller looks at the clock again). */
int
eclsock_tm_wait_plain(int epfd, struct pollfd *fds, nfds_t n, uint64_t *data,
                      int max, eclsock_deadline dl)
{
  struct timespec ts, *tsp = NULL;
  int r;
  if (dl >= 0) {
    double left = dl - eclsock_tm_now();
    if (left < 0)
      left = 0;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    tsp = &ts;
  }
#ifdef HAVE_EPOLL
  if (epfd >= 0) {
    struct epoll_event ev[ECLSOCK_EPOLL_MAX];
    int i;
    if (max > ECLSOCK_EPOLL_MAX)
      max = ECLSOCK_EPOLL_MAX;
# ifdef HAVE_EPOLL_PWAIT2
    r = epoll_pwait2(epfd, ev, max, tsp, NULL);
    if (r < 0 && errno == ENOSYS)
# endif
      r = epoll_wait(epfd, ev, max, remaining_ms(dl));
    if (r < 0)
      return errno == EINTR ? 0 : -errno;
    for (i = 0; i < r; i++)
      data[i] = ev[i].data.u64;
    return r;
  }
#endif
  (void)epfd; (void)data; (void)max;
  r = ppoll(fds, n, tsp, NULL);
  if (r < 0)
    return errno == EINTR ? 0 : -errno;
  return r;
}
