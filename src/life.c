/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * life.c - the lifetime of a socket stream: its states (open, closing,
 * closed), the count of threads inside it, and the release of its TLS
 * session and descriptor after the last of them has left.
 *
 * Owns: the rules written in stream-private.h under "States and the close
 * protocol", as code: leave, begin and end of a close, release.
 * Must not: send, flush or touch the buffers (stream.c and flush.c do),
 * or signal (close is called from finalizers and cleanups).
 */
#include "stream-private.h"
#include <errno.h>
#include <time.h>

/* How long close waits for the threads inside the stream to leave after
   it woke them (shutdown(2) wakes a blocked recv, send or poll at once;
   a thread that runs Lisp code inside, an interrupt handler say, may take
   longer: then the last of them releases). */
#define CLOSE_WAIT_SECONDS 2.0

void
eclsock_life_init(struct sockbuf *b)
{
  pthread_condattr_t a;
  b->state = ST_OPEN;
  b->users = b->released = b->deferred = 0;
  pthread_mutex_init(&b->life_lock, NULL);
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&b->life_cond, &a);
  pthread_condattr_destroy(&a);
}

/* Free the TLS session and close the descriptor, once. */
static void
release(struct sockbuf *b)
{
  int fd;
  eclsock_tls *t;
  if (__atomic_exchange_n(&b->released, 1, __ATOMIC_SEQ_CST))
    return;
  fd = b->fd;
  t = b->tls;
  b->tls = NULL;
  if (fd >= 0)
    eclsock_marks_sset_drop(b); /* out of socket-status's set first */
  if (t)                        /* close_notify (one try) unless shut down */
    eclsock_tp_close(t, !b->finalizing && !b->shut_wr && !b->woke);
  if (fd >= 0)
    (void)eclsock_os_close(fd);
  b->fd = -1;
  pthread_mutex_lock(&b->life_lock);
  __atomic_store_n(&b->state, ST_CLOSED, __ATOMIC_SEQ_CST);
  pthread_cond_broadcast(&b->life_cond);
  pthread_mutex_unlock(&b->life_lock);
}

void
eclsock_life_leave(struct sockbuf *b)
{
  if (__atomic_sub_fetch(&b->users, 1, __ATOMIC_SEQ_CST) != 0
      || __atomic_load_n(&b->state, __ATOMIC_SEQ_CST) == ST_OPEN)
    return;
  if (__atomic_load_n(&b->deferred, __ATOMIC_SEQ_CST) == 1) {
    release(b);                 /* the closer gave up waiting for us */
  } else {
    pthread_mutex_lock(&b->life_lock);
    pthread_cond_broadcast(&b->life_cond);
    pthread_mutex_unlock(&b->life_lock);
  }
}

/* Wait (LIFE_LOCK held) until B's state is at least STATE, or no other
   thread is inside when STATE is 0, or CLOSE_WAIT_SECONDS pass.  Returns
   whether the condition holds. */
static int
wait_for(struct sockbuf *b, int state)
{
  double end = eclsock_tm_now() + CLOSE_WAIT_SECONDS;
  struct timespec until;
  until.tv_sec = (time_t)end;
  until.tv_nsec = (long)((end - (double)until.tv_sec) * 1e9);
  if (until.tv_nsec > 999999999L)
    until.tv_nsec = 999999999L;
  for (;;) {
    int done = state ? __atomic_load_n(&b->state, __ATOMIC_SEQ_CST) >= state
      : __atomic_load_n(&b->users, __ATOMIC_SEQ_CST) == 0;
    if (done || eclsock_tm_now() >= end)
      return done;
    (void)pthread_cond_timedwait(&b->life_cond, &b->life_lock, &until);
  }
}

/* Begin a close: 1 when this thread is the closer (it now counts as a
   thread inside B), 0 when another close came first (this one has waited,
   at most CLOSE_WAIT_SECONDS, for it to finish).  Interrupts disabled by
   the caller. */
int
eclsock_life_begin_close(struct sockbuf *b)
{
  int open = ST_OPEN;
  __atomic_add_fetch(&b->users, 1, __ATOMIC_SEQ_CST);
  if (__atomic_compare_exchange_n(&b->state, &open, ST_CLOSING, 0,
                                  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    return 1;
  eclsock_life_leave(b);
  pthread_mutex_lock(&b->life_lock);
  (void)wait_for(b, ST_CLOSED);
  pthread_mutex_unlock(&b->life_lock);
  return 0;
}

/* Threads inside B other than the closer. */
int
eclsock_life_others(struct sockbuf *b)
{
  return __atomic_load_n(&b->users, __ATOMIC_SEQ_CST) > 1;
}

/* The closer woke the others (shutdown): no close_notify on release. */
void
eclsock_life_woke(struct sockbuf *b)
{
  b->woke = 1;
}

/* End a close: the closer leaves, waits (at most CLOSE_WAIT_SECONDS) until
   no thread is inside, and releases; if one still is, the last to leave
   releases.  Interrupts disabled by the caller. */
void
eclsock_life_end_close(struct sockbuf *b)
{
  __atomic_sub_fetch(&b->users, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&b->life_lock);
  if (!wait_for(b, 0))
    __atomic_store_n(&b->deferred, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&b->life_lock);
  /* a thread that left after the check saw DEFERRED, or sees users 0 */
  if (__atomic_load_n(&b->users, __ATOMIC_SEQ_CST) == 0)
    release(b);
}

/* A stream that lets go of its descriptor without closing it (the TLS
   switch: the new stream owns it): closed, nothing released. */
void
eclsock_life_abandon(struct sockbuf *b)
{
  __atomic_store_n(&b->released, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n(&b->state, ST_CLOSED, __ATOMIC_SEQ_CST);
  b->fd = -1;
  b->tls = NULL;
}
