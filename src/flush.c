/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * flush.c - the output flusher: output that no explicit flush sends leaves
 * at the latest HOLD_NS after it was written, and a stream whose peer does
 * not read costs nothing until the peer reads again.
 *
 * Owns: one thread for the whole module (started by the first held output
 * of a process), its two lists and its wait:
 *   - the QUEUE of streams holding output, in the order they were listed,
 *     each due HOLD_NS after; since every hold is the same length, the
 *     queue is its own deadline order and the thread sleeps until the
 *     first is due (on the kernel timer of its alarm: a hold sets the
 *     deadline without waking it, and only when the timer is not armed
 *     already; a send that empties a stream's buffer takes it off the
 *     queue but leaves the timer, which rings at most once per HOLD_NS
 *     for nothing: disarming it cost two system calls per message, 30%
 *     of the line round-trip benchmark);
 *   - the STALLED streams, whose send would block: each is armed for one
 *     writability event in the thread's epoll set (poll(2) over them
 *     without epoll) and is not touched again until the peer reads.
 * Both lists are GC roots over the streams' state (struct sockbuf), not the
 * streams: a listed stream the program dropped is still finalized (its
 * close sends what the socket takes and takes it off the lists; a back
 * pointer to the stream would make a cycle that ECL 24's ordered
 * finalization never collects).  The thread runs plain C (no Lisp
 * environment), takes FL_LOCK only to move streams between lists, and
 * sends outside it, under the stream's output lock, entered in the stream
 * (stream-private.h: close waits for it).  From the module's load the
 * flusher holds two descriptors (epoll set and timer; three with the pipe
 * instead).
 * Must not: block in a send, take a stream's output lock while holding
 * FL_LOCK (the order is WLOCK, then FL_LOCK), or run Lisp code.
 */
#include "stream-private.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOLD_NS 2000000L            /* the manual's bound: 2 ms */
#define BATCH 64                    /* streams sent per turn of the lock */

static pthread_mutex_t fl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sockbuf *q_head, *q_tail;  /* the queue (NULL-terminated) */
static struct sockbuf *st_head;     /* the stalled streams */
static long st_count;
static int fl_started;              /* this process's flusher runs (fork
                                       clears it in the child) */
static int fl_failed;               /* no flusher thread: flush at once */
/* The thread's wait, made when the module loads (so that a process's
   descriptors do not change at its first held output) and kept: the
   epoll set of the stalled streams (-1 without epoll: poll(2) over them)
   and the alarm (os.c), a timer the kernel keeps where it can (a hold
   sets its deadline and wakes nobody; an explicit flush that empties the
   queue disarms it), a wake-up pipe otherwise (the thread then waits with
   the queue head's deadline as its timeout). */
static int fl_epfd = -1;
static struct eclsock_alarm fl_alarm = { -1, -1 };
static double fl_wake_at = ECLSOCK_NO_DEADLINE;  /* the thread wakes at
                                       the latest then (NO_DEADLINE: only
                                       when told or a stalled stream can
                                       send) */

/* -- The lists (FL_LOCK held) ------------------------------------------ */

static void
link_front(struct sockbuf **head, struct sockbuf *b)
{
  b->fl_prev = NULL;
  b->fl_next = *head;
  if (*head)
    (*head)->fl_prev = b;
  *head = b;
}

static void
q_append(struct sockbuf *b)
{
  b->fl_next = NULL;
  b->fl_prev = q_tail;
  if (q_tail)
    q_tail->fl_next = b;
  else
    q_head = b;
  q_tail = b;
}

static void
unlink_from(struct sockbuf *b)
{
  struct sockbuf **head = b->fl_where == FL_QUEUED ? &q_head : &st_head;
  if (b->fl_prev)
    b->fl_prev->fl_next = b->fl_next;
  else
    *head = b->fl_next;
  if (b->fl_next)
    b->fl_next->fl_prev = b->fl_prev;
  else if (b->fl_where == FL_QUEUED)
    q_tail = b->fl_prev;
  if (b->fl_where == FL_STALLED)
    st_count--;
  b->fl_prev = b->fl_next = NULL;
}

/* -- Sending ----------------------------------------------------------- */

/* A send emptied B's pending output before the flusher's turn (WLOCK
   held): a queued stream leaves the queue, so that the thread has nothing
   to do for it.  The alarm stays set: the thread wakes at the old
   deadline, finds nothing due and sleeps; meanwhile holds do not touch
   the timer (one wake-up per HOLD_NS at most, instead of a system call
   to disarm and one to arm again for every message of a program that
   flushes what it writes).  A stream the thread is sending on (FL_BUSY)
   or that stalls stays with it. */
static void
done_early(struct sockbuf *b)
{
  pthread_mutex_lock(&fl_lock);
  if (b->fl_where == FL_QUEUED) {
    unlink_from(b);
    b->fl_where = FL_NONE;
    b->listed = 0;
  }
  pthread_mutex_unlock(&fl_lock);
}

/* Send what the socket takes of B's pending output now, without waiting;
   the rest stays pending, in order (the head moves, nothing is copied).
   WLOCK held, B entered.  Returns 0 or the send's error.  The one
   send-what-fits of the stream layer: writes, flushes before a read,
   close and this thread all send pending output through it. */
int
eclsock_flush_send_pending(struct sockbuf *b)
{
  size_t sent = 0;
  int code = eclsock_tp_send_nowait(b->tls, b->fd, b->wbuf + b->whead,
                                    PENDING(b), &sent);
  b->whead += sent;
  if (b->whead == b->wlen) {
    b->whead = b->wlen = 0;
    if (b->listed)
      done_early(b);
  }
  return code;
}

/* -- The thread --------------------------------------------------------- */

/* The alarm rang (FL_LOCK held): a kernel timer that fired is disarmed
   (the pipe has no deadline of its own). */
static void
alarm_rang(void)
{
  eclsock_os_alarm_clear(&fl_alarm);
  if (eclsock_os_alarm_timed(&fl_alarm))
    fl_wake_at = ECLSOCK_NO_DEADLINE;
}

/* Tell the thread that something is due at AT (FL_LOCK held): unless it
   wakes by then anyway, the alarm is set (the timer's deadline moves, or
   the pipe wakes the thread to take the new deadline). */
static void
due_by(double at)
{
  if (fl_wake_at >= 0 && fl_wake_at <= at)
    return;
  eclsock_os_alarm_set(&fl_alarm, at);
  fl_wake_at = at;
}

/* Send what B holds without waiting, and decide who is responsible for
   the rest: nobody when all went or the send failed (the error is the
   next write's or force-output's: the octets stay, nothing is lost), the
   stalled list when the socket is full.  B was entered by the caller. */
static void
flush_one(struct sockbuf *b)
{
  int code = 0;
  pthread_mutex_lock(&b->wlock);
  if (PENDING(b))
    code = eclsock_flush_send_pending(b);
  pthread_mutex_lock(&fl_lock);
  if (b->fl_where == FL_BUSY) {       /* close did not take it meanwhile */
    if (!code && PENDING(b)) {
      uint64_t data = (uint64_t)(uintptr_t)b;
      if (fl_epfd < 0 || eclsock_os_epoll_arm_out(fl_epfd, b->fd, data, !b->fl_armed) == 0) {
        b->fl_armed = fl_epfd >= 0;
        b->fl_where = FL_STALLED;
        link_front(&st_head, b);
        st_count++;
      } else {                          /* cannot watch it: due again */
        b->fl_where = FL_QUEUED;
        b->fl_due = eclsock_tm_now() + HOLD_NS * 1e-9;
        q_append(b);
        due_by(b->fl_due);
      }
    } else {
      b->fl_where = FL_NONE;
      b->listed = 0;
    }
  }
  pthread_mutex_unlock(&fl_lock);
  pthread_mutex_unlock(&b->wlock);
  eclsock_life_leave(b);
}

/* Take S into the batch (FL_LOCK held): entered, so that close waits for
   the send; a closing stream is dropped from the lists instead. */
static int
take(struct sockbuf *b, struct sockbuf **batch, int *n)
{
  unlink_from(b);
  if (!sb_enter(b)) {
    b->fl_where = FL_NONE;
    return 0;
  }
  b->fl_where = FL_BUSY;
  batch[(*n)++] = b;
  return 1;
}

/* Forget the streams of a finished batch: the collector scans this
   thread's stack, and a stale pointer there would keep a dropped stream
   from its finalizer. */
static void
forget_batch(struct sockbuf **batch, int n, uint64_t *data, int nd)
{
  struct sockbuf *volatile *vb = batch;
  uint64_t volatile *vd = data;
  int i;
  for (i = 0; i < n; i++)
    vb[i] = NULL;
  for (i = 0; i < nd; i++)
    vd[i] = 0;
}

static void *
flusher_main(void *arg)
{
  struct sockbuf *batch[BATCH];
  uint64_t data[ECLSOCK_EPOLL_MAX];
  struct pollfd *pfd = NULL;
  size_t pcap = 0;
  (void)arg;
  for (;;) {
    int n = 0, i, r;
    nfds_t np = 0;
    double now = eclsock_tm_now(), timeout = ECLSOCK_NO_DEADLINE;
    pthread_mutex_lock(&fl_lock);
    while (q_head && q_head->fl_due <= now && n < BATCH)
      take(q_head, batch, &n);
    if (!n) {                           /* wait for the head's deadline */
      double at = q_head ? q_head->fl_due : ECLSOCK_NO_DEADLINE;
      if (eclsock_os_alarm_timed(&fl_alarm)) {
        if (at != fl_wake_at)
          eclsock_os_alarm_set(&fl_alarm, at);
      } else {
        timeout = at;
      }
      fl_wake_at = at;
      if (fl_epfd < 0) {                /* poll(2): the alarm and the stalled */
        struct sockbuf *x;
        if (pcap < (size_t)st_count + 1) {
          free(pfd);
          pcap = (size_t)st_count + 64;
          pfd = malloc(pcap * sizeof *pfd);
        }
        if (pfd) {
          pfd[np].fd = fl_alarm.fd;
          pfd[np++].events = POLLIN;
          for (x = st_head; x; x = x->fl_next) {
            pfd[np].fd = x->fd;
            pfd[np++].events = POLLOUT;
          }
        }
      }
    }
    pthread_mutex_unlock(&fl_lock);
    if (n) {
      for (i = 0; i < n; i++)
        flush_one(batch[i]);
      forget_batch(batch, n, data, 0);
      continue;
    }
    r = eclsock_tm_wait_plain(fl_epfd, pfd, np, data, ECLSOCK_EPOLL_MAX, timeout);
    if (r <= 0)
      continue;                         /* due, interrupted, or an error */
    pthread_mutex_lock(&fl_lock);
    if (fl_epfd >= 0) {
      for (i = 0; i < r; i++) {
        struct sockbuf *b = (struct sockbuf *)(uintptr_t)data[i];
        if (!b)
          alarm_rang();
        else if (b->fl_where == FL_STALLED && n < BATCH)
          take(b, batch, &n);
      }
    } else if (pfd) {
      struct sockbuf *x = st_head, *next;
      if (pfd[0].revents)
        alarm_rang();
      /* the list may have changed since: match by descriptor */
      for (; x && n < BATCH; x = next) {
        nfds_t j;
        next = x->fl_next;
        for (j = 1; j < np; j++)
          if (pfd[j].fd == x->fd && pfd[j].revents) {
            take(x, batch, &n);
            break;
          }
      }
    }
    pthread_mutex_unlock(&fl_lock);
    for (i = 0; i < n; i++)
      flush_one(batch[i]);
    forget_batch(batch, n, data, r);
  }
  return NULL;
}

/* Make the thread's epoll set and alarm (at load, and in a forked child,
   whose inherited ones are the parent's).  Returns 0 or an error code. */
static int
make_wait(void)
{
  int code = eclsock_os_alarm_open(&fl_alarm);
  if (code)
    return code;
  if (eclsock_os_epoll_create(&fl_epfd) == 0
      && eclsock_os_epoll_ctl(fl_epfd, ECLSOCK_EP_ADD, fl_alarm.fd, POLLIN, 0)) {
    (void)eclsock_os_close_plain(fl_epfd);
    fl_epfd = -1;
  }
  fl_wake_at = ECLSOCK_NO_DEADLINE;
  return 0;
}

static void
drop_wait(void)
{
  if (fl_epfd >= 0)
    (void)eclsock_os_close_plain(fl_epfd);
  fl_epfd = -1;
  eclsock_os_alarm_close(&fl_alarm);
  fl_wake_at = ECLSOCK_NO_DEADLINE;
}

/* Start the thread (FL_LOCK held).  Returns 0 or an error code. */
static int
start_flusher(void)
{
  int code;
  if (fl_alarm.fd < 0 && (code = make_wait()))
    return code;
  /* the thread runs our code until the process ends: exit must not
     unmap it (ECL dlcloses sock.fas in cl_shutdown) */
  eclsock_os_pin_module((const void *)flusher_main);
  return eclsock_os_start_thread(flusher_main, NULL);
}

/* -- What the stream layer calls ---------------------------------------- */

/* B holds output no explicit flush has sent: make the flusher responsible
   (WLOCK held, interrupts disabled).  Returns 0 when output cannot be
   held (no flusher thread): the caller sends at once. */
int
eclsock_flush_hold(struct sockbuf *b)
{
  int ok = 1;
  if (b->listed)
    return 1;
  pthread_mutex_lock(&fl_lock);
  if (!fl_failed && !fl_started) {
    if (start_flusher() == 0)
      fl_started = 1;
    else
      fl_failed = 1;
  }
  if (fl_failed) {
    ok = 0;
  } else if (__atomic_load_n(&b->state, __ATOMIC_SEQ_CST) == ST_OPEN) {
    b->fl_where = FL_QUEUED;
    b->fl_due = eclsock_tm_now() + HOLD_NS * 1e-9;
    q_append(b);
    b->listed = 1;
    due_by(b->fl_due);       /* holds are equally long: only when the queue
                                was empty does this set anything */
  }
  pthread_mutex_unlock(&fl_lock);
  return ok;
}

/* Take B off the flusher (WLOCK held, interrupts disabled): close, and
   the TLS switch.  A stream the thread is sending on stays with it until
   it leaves (close waits for that); it then forgets it. */
void
eclsock_flush_unlist(struct sockbuf *b)
{
  pthread_mutex_lock(&fl_lock);
  if (b->fl_where == FL_QUEUED || b->fl_where == FL_STALLED) {
    if (b->fl_where == FL_STALLED && fl_epfd < 0)
      due_by(0);                /* poll(2) holds its descriptor: rebuild */
    unlink_from(b);
  }
  if (b->fl_armed && fl_epfd >= 0 && b->fd >= 0) {
    (void)eclsock_os_epoll_ctl(fl_epfd, ECLSOCK_EP_DEL, b->fd, 0, 0);
    b->fl_armed = 0;
  }
  b->fl_where = FL_NONE;
  b->listed = 0;
  pthread_mutex_unlock(&fl_lock);
}

/* fork: the child has no flusher thread; its first held output starts
   one, with a new pipe and epoll set (the inherited ones are the
   parent's).  Its copies of listed streams go off the lists. */
static void fl_prepare(void) { pthread_mutex_lock(&fl_lock); }
static void fl_parent(void) { pthread_mutex_unlock(&fl_lock); }

static void
forget(struct sockbuf **head)
{
  while (*head) {
    struct sockbuf *b = *head;
    *head = b->fl_next;
    b->fl_prev = b->fl_next = NULL;
    b->fl_where = FL_NONE;
    b->fl_armed = 0;
    b->listed = 0;
  }
}

static void
fl_child(void)
{
  forget(&q_head);
  forget(&st_head);
  q_tail = NULL;
  st_count = 0;
  drop_wait();
  (void)make_wait();                  /* else the first hold tries again */
  fl_started = 0;
  pthread_mutex_unlock(&fl_lock);
}

void
eclsock_flush_init(void)
{
  /* roots: the collector scans them conservatively, so a listed state is
     kept (not its stream: a stream the program dropped is finalized, and
     its close takes it off the lists) */
  ecl_register_root((cl_object *)&q_head);
  ecl_register_root((cl_object *)&q_tail);
  ecl_register_root((cl_object *)&st_head);
  (void)make_wait();                  /* else the first hold tries again */
  pthread_atfork(fl_prepare, fl_parent, fl_child);
}
