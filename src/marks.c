/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * marks.c - the readiness marks that socket-status and the poller read off
 * a socket stream, so that a wait looks only at the streams that hold
 * something, never at every registered one.
 *
 * Owns: a stream's registration with a poller (struct eclsock_watch: its
 * slot, and its marks in the poller's IN and OUT sets, under the watch's
 * lock), and socket-status's epoll set (its descriptor and how many open
 * streams are registered in it), which a stream's close leaves.
 * Must not: send or receive, or touch a stream's buffers other than to
 * read whether they hold something.
 */
#include "stream-private.h"
#include <errno.h>

static void
set_add(struct eclsock_slotset *set, int slot)
{
  set->v[set->n++] = slot;
}

static void
set_del(struct eclsock_slotset *set, int slot)
{
  size_t i;
  for (i = 0; i < set->n; i++)
    if (set->v[i] == slot) {
      set->v[i] = set->v[--set->n];
      return;
    }
}

/* Mark B in its poller's sets by what it holds now.  Called with the
   watch lock held. */
static void
mark_locked(struct sockbuf *b)
{
  struct eclsock_watch *w = b->watch;
  if (!b->in_mark && sb_has_input(b)) {   /* not part of a character */
    set_add(&w->in, b->wslot);
    b->in_mark = 1;
  }
  if (!b->out_mark && PENDING(b)) {
    set_add(&w->out, b->wslot);
    b->out_mark = 1;
  }
}

/* After a read left octets in B's buffer or a write left output pending:
   tell the poller that holds B (if any), so that its next wait looks at
   B.  Costs one load when B is in no poller, a lock when it is marked
   already. */
void
eclsock_marks_note(struct sockbuf *b)
{
  struct eclsock_watch *w;
  cl_env_ptr env;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  /* pairs with eclsock_marks_watch */
  w = __atomic_load_n(&b->watch, __ATOMIC_ACQUIRE);
  if (ecl_likely(w == NULL))
    return;
  env = ecl_process_env();
  ecl_disable_interrupts_env(env);
  pthread_mutex_lock(&w->lock);
  if (b->watch == w)
    mark_locked(b);
  pthread_mutex_unlock(&w->lock);
  ecl_enable_interrupts_env(env);
}

/* -- socket-status's epoll set ------------------------------------------ */

/* status.c registers streams in it (see eclsock_marks_status_token).  It
   lives here because a stream's close must leave it, and the last close
   of a registered stream closes it. */
static pthread_mutex_t sset_lock = PTHREAD_MUTEX_INITIALIZER;
static int sset_fd = -1;
static long sset_count;

/* A stream of socket-status's set closes: out of the set first (a
   duplicate of FD would keep the registration alive); the last one
   closes the set unless a socket-status call has it (its release does). */
static void
sset_leave(int fd)
{
  /* the set stays open while this stream counts, so sset_fd is valid */
  int ep = __atomic_load_n(&sset_fd, __ATOMIC_SEQ_CST);
  if (ep >= 0)
    (void)eclsock_os_epoll_ctl(ep, ECLSOCK_EP_DEL, fd, 0, 0);
  if (__atomic_sub_fetch(&sset_count, 1, __ATOMIC_SEQ_CST) == 0) {
    int old = -1;
    if (pthread_mutex_trylock(&sset_lock) == 0) {
      if (__atomic_load_n(&sset_count, __ATOMIC_SEQ_CST) == 0) {
        old = sset_fd;
        __atomic_store_n(&sset_fd, -1, __ATOMIC_SEQ_CST);
      }
      pthread_mutex_unlock(&sset_lock);
    }
    if (old >= 0)
      (void)eclsock_os_close(old);
  }
}

/* B is closing (or lets go of its descriptor): it leaves its poller (out
   of the epoll set before the descriptor closes, its slot to the poller's
   closed set, which the poller frees at its next call), and a wait in
   progress wakes up to report it (the close's shutdown alone would not
   reach it: the event leaves the epoll set with the descriptor).
   Interrupts disabled by the caller. */
void
eclsock_marks_drop(struct sockbuf *b)
{
  struct eclsock_watch *w = b->watch;
  if (w) {
    pthread_mutex_lock(&w->lock);
    if (b->watch == w) {
      if (w->epfd >= 0)
        (void)eclsock_os_epoll_ctl(w->epfd, ECLSOCK_EP_DEL, b->fd, 0, 0);
      if (b->in_mark) set_del(&w->in, b->wslot);
      if (b->out_mark) set_del(&w->out, b->wslot);
      set_add(&w->closed, b->wslot);
      b->in_mark = b->out_mark = 0;
      b->watch = NULL;
      if (w->wake >= 0)
        eclsock_os_wake(w->wake);
    }
    pthread_mutex_unlock(&w->lock);
  }
}

/* B leaves socket-status's set, right before its descriptor closes (a
   socket-status call waiting on it has left the stream by then: life.c). */
void
eclsock_marks_sset_drop(struct sockbuf *b)
{
  if (b->in_sset) {
    b->in_sset = 0;
    sset_leave(b->fd);
  }
}

/* Whether B is registered with a poller or socket-status's set: a
   thread may be waiting for it there, which close must wake. */
int
eclsock_marks_watched(struct sockbuf *b)
{
  return __atomic_load_n(&b->watch, __ATOMIC_ACQUIRE) != NULL || b->in_sset;
}

/* -- The poller's side (poller.c, with the watch's lock held) ----------- */

/* Register S with poller W at SLOT.  Returns 0, or EEXIST when S is in a
   poller already.  What S holds now gets marked. */
int
eclsock_marks_watch(cl_object s, struct eclsock_watch *w, int slot)
{
  struct sockbuf *b = SB(s);
  if (b->watch)
    return EEXIST;
  b->wslot = slot;
  b->in_mark = b->out_mark = 0;
  __atomic_store_n(&b->watch, w, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  /* pairs with eclsock_marks_note */
  mark_locked(b);
  return 0;
}

/* Take S out of its poller's sets. */
void
eclsock_marks_unwatch(cl_object s)
{
  struct sockbuf *b = SB(s);
  struct eclsock_watch *w = b->watch;
  if (!w)
    return;
  if (b->in_mark) set_del(&w->in, b->wslot);
  if (b->out_mark) set_del(&w->out, b->wslot);
  b->in_mark = b->out_mark = 0;
  b->watch = NULL;
}

/* The poller holding S (and its slot there), or NULL. */
struct eclsock_watch *
eclsock_marks_watcher(cl_object s, int *slot)
{
  struct sockbuf *b = SB(s);
  *slot = b->wslot;
  return b->watch;
}

/* The poller took S's slot out of its sets: clear the marks, saying in
   *IN / *OUT which were set. */
void
eclsock_marks_unmark(cl_object s, int *in, int *out)
{
  struct sockbuf *b = SB(s);
  *in = b->in_mark;
  *out = b->out_mark;
  b->in_mark = b->out_mark = 0;
}

/* Mark S again by what it holds now (the poller, without its lock). */
void
eclsock_marks_renote(cl_object s)
{
  eclsock_marks_note(SB(s));
}

/* -- socket-status's side (status.c) ------------------------------------- */

/* socket-status's epoll registration of S: the token it was made with (0:
   none); a nonzero TOKEN sets it (the set's lock held). */
uint64_t
eclsock_marks_status_token(cl_object s, uint64_t token)
{
  struct sockbuf *b = SB(s);
  if (token) {
    b->status_token = token;
    if (!b->in_sset) {
      b->in_sset = 1;
      __atomic_add_fetch(&sset_count, 1, __ATOMIC_SEQ_CST);
    }
  }
  return b->status_token;
}

/* Take socket-status's epoll set, making it when there is none: its
   descriptor, or -1 when another thread has it or none can be made.
   *FRESH is set when it is new (every token given before is void). */
int
eclsock_marks_sset_acquire(int *fresh)
{
  *fresh = 0;
  if (pthread_mutex_trylock(&sset_lock))
    return -1;
  if (sset_fd < 0) {
    int fd;
    if (eclsock_os_epoll_create(&fd)) {
      pthread_mutex_unlock(&sset_lock);
      return -1;
    }
    __atomic_store_n(&sset_fd, fd, __ATOMIC_SEQ_CST);
    *fresh = 1;
  }
  return sset_fd;
}

/* Give the set back; with no registered stream left open, close it (the
   module holds no descriptor for socket-status after the streams are
   gone).  Returns the descriptor the caller closes, or -1. */
int
eclsock_marks_sset_release(void)
{
  int old = -1;
  if (__atomic_load_n(&sset_count, __ATOMIC_SEQ_CST) == 0) {
    old = sset_fd;
    __atomic_store_n(&sset_fd, -1, __ATOMIC_SEQ_CST);
  }
  pthread_mutex_unlock(&sset_lock);
  return old;
}

/* Close what eclsock_marks_sset_release returned (interrupts enabled). */
void
eclsock_marks_sset_close(int fd)
{
  if (fd >= 0)
    (void)eclsock_os_close(fd);
}
