/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * poller.c - the poller: readiness of many objects at a cost that grows
 * with the ready ones, not with the ones held.
 *
 * Owns: a poller's registrations (a slot per object: its descriptor, kind,
 * direction and generation; descriptor -> slot), kept across waits in an
 * epoll instance (one epoll_wait per wait; poll(2) over every slot where
 * the module is built without epoll), a wake-up pipe (a close, or an add
 * under the poll fallback, wakes a waiting thread), and the wait itself:
 * streams whose input is already buffered count as ready and pending
 * output is pushed first, both found through the sets the stream layer
 * keeps (struct eclsock_watch), never by walking every registration.
 * Statuses are socket-status's (status.c).  One lock guards a poller;
 * it is held only around plain C and epoll_ctl, with Lisp interrupts
 * deferred, never across the wait, so other threads add and remove while
 * one thread waits.  Everything lives in GC memory reached from the Lisp
 * poller object (a foreign-data handle), so a dropped poller is collected;
 * its descriptors close with poller-close or the Lisp finalizer.
 * Must not: make system calls other than through os.c and timeout.c,
 * signal while holding the lock, or signal at all (errors go back to the
 * Lisp layer as keywords or error codes; lisp/poller.lisp signals).
 */
#include "internal.h"
#include <errno.h>
#include <string.h>

#define START_CAP 16
#define WAKE_SLOT 0xffffffffu         /* the wake-up pipe's event data */

struct pslot {
  int fd;                             /* -1: free */
  short kind, dir;
  uint32_t gen;                       /* bumped when the slot is freed */
  uint32_t stamp;                     /* the wait that collected it last */
  int pos;                            /* its place in that wait's list */
  int next;                           /* free list */
};

/* An object found ready (or to look at) during a wait. */
struct ready {
  cl_object obj;
  int slot, fd;
  uint32_t gen;
  short revents;
  unsigned char kind, dir, buffered;
};

struct poller {
  struct eclsock_watch w;             /* lock, epfd and the stream sets */
  int wake[2];                        /* wake-up pipe, -1 when closed */
  int closed, waiting;
  size_t count;                       /* registrations */
  int free_head;
  struct pslot *slots;                /* w.cap of them */
  cl_object *objs;                    /* w.cap objects */
  int *fdmap;                         /* descriptor -> slot or -1 */
  size_t fdcap;
  uint32_t stamp;
  struct ready *todo;                 /* 2 * w.cap: the waiter's work */
  struct ready *rd;                   /* w.cap: the waiter's ready list */
  struct pollfd *pfd;                 /* w.cap + 1 (poll fallback) */
  int *pslot;                         /* w.cap + 1 (poll fallback) */
};

#define LOCK(env, p) do { ecl_disable_interrupts_env(env);        \
    pthread_mutex_lock(&(p)->w.lock); } while (0)
#define UNLOCK(env, p) do { pthread_mutex_unlock(&(p)->w.lock);   \
    ecl_enable_interrupts_env(env); } while (0)

static cl_object kw_closed, kw_busy, kw_duplicate, kw_other, kw_unregistered, kw_eof;

static void
intern_keywords(void)
{
  if (ecl_likely(__atomic_load_n(&kw_unregistered, __ATOMIC_ACQUIRE) != NULL))
    return;
  kw_closed = ecl_make_keyword("CLOSED");
  kw_eof = ecl_make_keyword("EOF");
  kw_busy = ecl_make_keyword("BUSY");
  kw_duplicate = ecl_make_keyword("DUPLICATE");
  kw_other = ecl_make_keyword("OTHER-POLLER");
  __atomic_store_n(&kw_unregistered, ecl_make_keyword("NOT-REGISTERED"),
                   __ATOMIC_RELEASE);
}

static struct poller *
handle_poller(cl_object h)
{
  if (!ECL_FOREIGN_DATA_P(h) || h->foreign.size != sizeof(struct poller))
    FEwrong_type_argument(ecl_make_symbol("POLLER", "SOCKET"), h);
  return (struct poller *)h->foreign.data;
}

static uint64_t
slot_data(struct poller *p, int s)
{
  return (uint64_t)(uint32_t)s | ((uint64_t)p->slots[s].gen << 32);
}

/* -- Slots (all with the lock held) -------------------------------------- */

/* Free slot S.  DEREGISTER: take its descriptor out of the epoll set (not
   for a descriptor that was closed: its number may belong to another
   registration by now). */
static void
release(struct poller *p, int s, int deregister)
{
  struct pslot *e = &p->slots[s];
  cl_object o = p->objs[s];
  if (e->fd < 0)
    return;
  if ((size_t)e->fd < p->fdcap && p->fdmap[e->fd] == s)
    p->fdmap[e->fd] = -1;
  if (deregister && p->w.epfd >= 0)
    (void)eclsock_os_epoll_ctl(p->w.epfd, ECLSOCK_EP_DEL, e->fd, 0, 0);
  if (e->kind == ECLSOCK_KIND_STREAM) {
    int sl;
    if (eclsock_marks_watcher(o, &sl) == &p->w && sl == s)
      eclsock_marks_unwatch(o);
  }
  p->objs[s] = ECL_NIL;
  e->fd = -1;
  e->gen++;
  e->next = p->free_head;
  p->free_head = s;
  p->count--;
}

/* Free the slots of streams closed while registered.  With REPORT, the
   list of (stream . :EOF) for them (a wait they were closed during
   reports them, as a read in that wait would see end of file). */
static cl_object
process_closed(struct poller *p, int report)
{
  size_t i;
  cl_object gone = ECL_NIL;
  for (i = 0; i < p->w.closed.n; i++) {
    int s = p->w.closed.v[i];
    if (report && p->slots[s].fd >= 0 && !Null(p->objs[s]))
      gone = ecl_cons(ecl_cons(p->objs[s], kw_eof), gone);
    release(p, s, 0);
  }
  p->w.closed.n = 0;
  return gone;
}

/* A registration whose object no longer owns descriptor FD: a server or
   datagram socket closed behind the poller's back (its first slot is
   the descriptor or NIL). */
static int
stale(struct poller *p, int s)
{
  cl_object o = p->objs[s];
  if (ECL_INSTANCEP(o))
    return o->instance.slots[0] != ecl_make_fixnum(p->slots[s].fd);
  return 0;
}

/* The slot of OBJ in P, -1 when it has none, -2 for a stream held by
   another poller.  FD < 0 (a closed server): look at every slot. */
static int
find(struct poller *p, cl_object obj, int kind, int fd)
{
  size_t i;
  if (kind == ECLSOCK_KIND_STREAM) {
    int sl;
    struct eclsock_watch *w = eclsock_marks_watcher(obj, &sl);
    return w == &p->w ? sl : w ? -2 : -1;
  }
  if (fd >= 0) {
    if ((size_t)fd < p->fdcap && p->fdmap[fd] >= 0 && p->objs[p->fdmap[fd]] == obj)
      return p->fdmap[fd];
    return -1;
  }
  for (i = 0; i < p->w.cap; i++)
    if (p->slots[i].fd >= 0 && p->objs[i] == obj)
      return (int)i;
  return -1;
}

/* -- Growth (allocation outside the lock) ------------------------------- */

static void *
gc_copy(void *old, size_t oldsize, size_t size, int atomic)
{
  void *n = atomic ? ecl_alloc_atomic(size) : ecl_alloc(size);
  memset(n, 0, size);
  if (old && oldsize)
    memcpy(n, old, oldsize);
  return n;
}

/* Make room for one more registration and for descriptor FD. */
static void
grow(cl_env_ptr env, struct poller *p, int fd)
{
  for (;;) {
    size_t cap, fdcap, ncap, nfdcap;
    LOCK(env, p);
    cap = p->w.cap;
    fdcap = p->fdcap;
    ncap = p->count + 1 > cap ? cap * 2 : cap;
    nfdcap = (size_t)fd >= fdcap ? ((size_t)fd + 1 > fdcap * 2 ? (size_t)fd + 1 : fdcap * 2)
      : fdcap;
    UNLOCK(env, p);
    if (ncap == cap && nfdcap == fdcap)
      return;
    if (ncap != cap) {
      struct pslot *slots = gc_copy(NULL, 0, ncap * sizeof *slots, 1);
      cl_object *objs = gc_copy(NULL, 0, ncap * sizeof *objs, 0);
      int *in = gc_copy(NULL, 0, ncap * sizeof(int), 1);
      int *out = gc_copy(NULL, 0, ncap * sizeof(int), 1);
      int *cl = gc_copy(NULL, 0, ncap * sizeof(int), 1);
      struct ready *todo = gc_copy(NULL, 0, 2 * ncap * sizeof *todo, 0);
      struct ready *rd = gc_copy(NULL, 0, ncap * sizeof *rd, 0);
      struct pollfd *pfd = NULL;  /* only the poll fallback needs them */
      int *pslot = NULL;
      if (p->w.epfd < 0) {
        pfd = gc_copy(NULL, 0, (ncap + 1) * sizeof *pfd, 1);
        pslot = gc_copy(NULL, 0, (ncap + 1) * sizeof(int), 1);
      }
      size_t i;
      LOCK(env, p);
      if (p->w.cap == cap) {
        memcpy(slots, p->slots, cap * sizeof *slots);
        memcpy(objs, p->objs, cap * sizeof *objs);
        memcpy(in, p->w.in.v, p->w.in.n * sizeof(int));
        memcpy(out, p->w.out.v, p->w.out.n * sizeof(int));
        memcpy(cl, p->w.closed.v, p->w.closed.n * sizeof(int));
        for (i = ncap; i-- > cap; ) {
          slots[i].fd = -1;
          slots[i].next = p->free_head;
          objs[i] = ECL_NIL;
          p->free_head = (int)i;
        }
        p->slots = slots;
        p->objs = objs;
        p->w.in.v = in;
        p->w.out.v = out;
        p->w.closed.v = cl;
        p->todo = todo;
        p->rd = rd;
        p->pfd = pfd;
        p->pslot = pslot;
        p->w.cap = ncap;
      }
      UNLOCK(env, p);
    }
    if (nfdcap != fdcap) {
      int *map = gc_copy(NULL, 0, nfdcap * sizeof(int), 1);
      LOCK(env, p);
      if (p->fdcap == fdcap) {
        memcpy(map, p->fdmap, fdcap * sizeof(int));
        memset(map + fdcap, 0xff, (nfdcap - fdcap) * sizeof(int));  /* -1 */
        p->fdmap = map;
        p->fdcap = nfdcap;
      }
      UNLOCK(env, p);
    }
  }
}

/* -- Life ---------------------------------------------------------------- */

/* A new poller: a foreign-data handle for the Lisp layer, or an errno
   (fixnum) when no descriptor could be made. */
cl_object
eclsock_poller_make(void)
{
  const cl_env_ptr env = ecl_process_env();
  struct poller *p = ecl_alloc(sizeof *p);
  int code;
  size_t i;
  intern_keywords();
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->w.lock, NULL);
  p->w.epfd = p->wake[0] = p->wake[1] = p->w.wake = -1;
  p->free_head = -1;
  p->w.cap = START_CAP;
  p->slots = gc_copy(NULL, 0, START_CAP * sizeof *p->slots, 1);
  p->objs = gc_copy(NULL, 0, START_CAP * sizeof *p->objs, 0);
  p->w.in.v = gc_copy(NULL, 0, START_CAP * sizeof(int), 1);
  p->w.out.v = gc_copy(NULL, 0, START_CAP * sizeof(int), 1);
  p->w.closed.v = gc_copy(NULL, 0, START_CAP * sizeof(int), 1);
  p->todo = gc_copy(NULL, 0, 2 * START_CAP * sizeof *p->todo, 0);
  p->rd = gc_copy(NULL, 0, START_CAP * sizeof *p->rd, 0);
#ifndef HAVE_EPOLL
  p->pfd = gc_copy(NULL, 0, (START_CAP + 1) * sizeof *p->pfd, 1);
  p->pslot = gc_copy(NULL, 0, (START_CAP + 1) * sizeof(int), 1);
#endif
  for (i = START_CAP; i-- > 0; ) {
    p->slots[i].fd = -1;
    p->slots[i].next = p->free_head;
    p->objs[i] = ECL_NIL;
    p->free_head = (int)i;
  }
  p->fdcap = 64;
  p->fdmap = gc_copy(NULL, 0, p->fdcap * sizeof(int), 1);
  memset(p->fdmap, 0xff, p->fdcap * sizeof(int));
  code = eclsock_os_pipe(p->wake);
#ifdef HAVE_EPOLL
  if (!code)
    code = eclsock_os_epoll_create(&p->w.epfd);
  if (!code)
    code = eclsock_os_epoll_ctl(p->w.epfd, ECLSOCK_EP_ADD, p->wake[0], POLLIN, WAKE_SLOT);
#endif
  if (code) {
    if (p->wake[0] >= 0) { eclsock_os_close(p->wake[0]); eclsock_os_close(p->wake[1]); }
    if (p->w.epfd >= 0) eclsock_os_close(p->w.epfd);
    ecl_return1(env, ecl_make_fixnum(code));
  }
  p->w.wake = p->wake[1];
  ecl_return1(env, ecl_make_foreign_data(ecl_make_keyword("ECLSOCK-POLLER"), sizeof *p, p));
}

/* Take the descriptors out of P (lock held); the caller closes them. */
static void
take_fds(struct poller *p, int fds[3])
{
  fds[0] = p->w.epfd;
  fds[1] = p->wake[0];
  fds[2] = p->wake[1];
  p->w.epfd = p->wake[0] = p->wake[1] = p->w.wake = -1;
}

static void
close_fds(int fds[3])
{
  int i;
  for (i = 0; i < 3; i++)
    if (fds[i] >= 0)
      (void)eclsock_os_close(fds[i]);
}

/* Close P: every registration goes (streams stay open), its descriptors
   close now or, when a thread waits in it, when that wait ends (it is woken
   and reports the close).  T, or NIL when P was closed already. */
cl_object
eclsock_poller_close(cl_object h)
{
  const cl_env_ptr env = ecl_process_env();
  struct poller *p = handle_poller(h);
  int fds[3] = { -1, -1, -1 }, was;
  size_t i;
  LOCK(env, p);
  was = p->closed;
  if (!was) {
    p->closed = 1;
    (void)process_closed(p, 0);
    for (i = 0; i < p->w.cap; i++)
      if (p->slots[i].fd >= 0)
        release(p, (int)i, 0);
    if (p->waiting)
      eclsock_os_wake(p->wake[1]);
    else
      take_fds(p, fds);
  }
  UNLOCK(env, p);
  close_fds(fds);
  ecl_return1(env, was ? ECL_NIL : ECL_T);
}

/* Registrations, and whether P is closed (second value). */
cl_object
eclsock_poller_count(cl_object h)
{
  const cl_env_ptr env = ecl_process_env();
  struct poller *p = handle_poller(h);
  size_t n;
  int closed;
  LOCK(env, p);
  (void)process_closed(p, 0);
  n = p->count;
  closed = p->closed;
  UNLOCK(env, p);
  ecl_return2(env, ecl_make_fixnum(n), closed ? ECL_T : ECL_NIL);
}

/* -- Registrations -------------------------------------------------------- */

/* Add OBJ (of KIND, on descriptor FD, for DIR) to P, or with MODIFY change
   the direction of its registration.  Returns T, or what went wrong: a
   keyword (:CLOSED, :DUPLICATE, :OTHER-POLLER, :NOT-REGISTERED), a cons
   (:DESCRIPTOR . object) when another registered object has descriptor FD,
   or an errno (fixnum) from epoll_ctl. */
cl_object
eclsock_poller_add(cl_object h, cl_object obj, int kind, int fd, int dir, int modify)
{
  const cl_env_ptr env = ecl_process_env();
  struct poller *p = handle_poller(h);
  cl_object res = ECL_T, other = ECL_NIL;
  short ev = (short)(((dir & ECLSOCK_DIR_INPUT) ? POLLIN : 0)
                     | ((dir & ECLSOCK_DIR_OUTPUT) ? POLLOUT : 0));
  int s, code = 0, wake = 0;
  intern_keywords();
  if (!modify)
    grow(env, p, fd);
  LOCK(env, p);
  if (p->closed) {
    res = kw_closed;
    goto out;
  }
  (void)process_closed(p, 0);
  s = find(p, obj, kind, fd);
  if (modify) {
    if (s < 0) {
      res = kw_unregistered;
    } else {
      if (p->w.epfd >= 0)
        code = eclsock_os_epoll_ctl(p->w.epfd, ECLSOCK_EP_MOD, p->slots[s].fd, ev,
                                    slot_data(p, s));
      if (!code)
        p->slots[s].dir = (short)dir;
      wake = 1;
    }
    goto out;
  }
  if (s >= 0) { res = kw_duplicate; goto out; }
  if (s == -2) { res = kw_other; goto out; }
  if ((size_t)fd < p->fdcap && p->fdmap[fd] >= 0) {
    int o = p->fdmap[fd];
    if (stale(p, o)) {
      release(p, o, 0);
    } else if (ECL_FIXNUMP(p->objs[o]) && p->w.epfd >= 0
               && eclsock_os_epoll_ctl(p->w.epfd, ECLSOCK_EP_ADD, fd, ev, 0) == 0) {
      /* a raw descriptor closed behind our back: the kernel had dropped
         it; the number is another socket's now */
      (void)eclsock_os_epoll_ctl(p->w.epfd, ECLSOCK_EP_DEL, fd, 0, 0);
      release(p, o, 0);
    } else {
      other = p->objs[o];
      res = ECL_NIL;
      goto out;
    }
  }
  s = p->free_head;             /* grow() made room */
  p->free_head = p->slots[s].next;
  p->count++;
  p->slots[s].fd = fd;
  p->slots[s].kind = (short)kind;
  p->slots[s].dir = (short)dir;
  p->slots[s].stamp = 0;
  p->objs[s] = obj;
  p->fdmap[fd] = s;
  if (p->w.epfd >= 0)
    code = eclsock_os_epoll_ctl(p->w.epfd, ECLSOCK_EP_ADD, fd, ev, slot_data(p, s));
  if (code) {
    release(p, s, 0);
    goto out;
  }
  if (kind == ECLSOCK_KIND_STREAM && eclsock_marks_watch(obj, &p->w, s)) {
    release(p, s, 1);
    res = kw_other;
    goto out;
  }
  wake = 1;
 out:
  if (wake && p->waiting && p->w.epfd < 0)
    eclsock_os_wake(p->wake[1]);        /* poll fallback: the waiter rebuilds */
  UNLOCK(env, p);
  if (code)
    ecl_return1(env, ecl_make_fixnum(code));
  if (Null(res))
    res = ecl_cons(ecl_make_keyword("DESCRIPTOR"), other);
  ecl_return1(env, res);
}

/* Remove OBJ (KIND, FD: -1 when closed) from P: T, or NIL when it was not
   registered (a closed stream has left by itself), or :CLOSED. */
cl_object
eclsock_poller_remove(cl_object h, cl_object obj, int kind, int fd)
{
  const cl_env_ptr env = ecl_process_env();
  struct poller *p = handle_poller(h);
  cl_object res = ECL_NIL;
  int s;
  intern_keywords();
  LOCK(env, p);
  if (p->closed) {
    res = kw_closed;
  } else {
    (void)process_closed(p, 0);
    s = find(p, obj, kind, fd);
    if (s >= 0) {
      release(p, s, !stale(p, s));
      res = ECL_T;
    }
  }
  UNLOCK(env, p);
  ecl_return1(env, res);
}

/* -- The wait ------------------------------------------------------------- */

/* Take the stream sets (lock held): streams with pending output first
   (their count in *NOUT), then those whose buffer may hold input. */
static size_t
take_sets(struct poller *p, size_t *nout)
{
  size_t i, n = 0;
  int in, out;
  struct eclsock_slotset *sets[2] = { &p->w.out, &p->w.in };
  int k;
  for (k = 0; k < 2; k++) {
    for (i = 0; i < sets[k]->n; i++) {
      int s = sets[k]->v[i];
      struct ready *t = &p->todo[n++];
      t->obj = p->objs[s];
      t->slot = s;
      t->gen = p->slots[s].gen;
      t->dir = (unsigned char)p->slots[s].dir;
      t->fd = p->slots[s].fd;
      eclsock_marks_unmark(t->obj, &in, &out);
    }
    sets[k]->n = 0;
    if (k == 0)
      *nout = n;
  }
  return n;
}

/* The poll fallback's wait: poll(2) over every registration (and the
   wake-up pipe), its ready ones returned as epoll's would be. */
static int
poll_wait(cl_env_ptr env, struct poller *p, uint64_t *data, short *rev,
          eclsock_deadline dl, int *nready)
{
  struct pollfd *pfd;
  int *pslot;
  nfds_t n = 1, i;
  int code, k = 0, r = 0;
  size_t s;
  LOCK(env, p);
  pfd = p->pfd;
  pslot = p->pslot;
  pfd[0].fd = p->wake[0];
  pfd[0].events = POLLIN;
  pslot[0] = -1;
  for (s = 0; s < p->w.cap; s++) {
    if (p->slots[s].fd < 0)
      continue;
    pfd[n].fd = p->slots[s].fd;
    pfd[n].events = (short)(((p->slots[s].dir & ECLSOCK_DIR_INPUT) ? POLLIN : 0)
                            | ((p->slots[s].dir & ECLSOCK_DIR_OUTPUT) ? POLLOUT : 0));
    pslot[n] = (int)s;
    pfd[n].revents = 0;
    n++;
  }
  pfd[0].revents = 0;
  UNLOCK(env, p);
  code = eclsock_tm_poll(pfd, n, dl, &r);
  if (code)
    return code;
  LOCK(env, p);
  for (i = 0; i < n && k < ECLSOCK_EPOLL_MAX; i++) {
    if (!pfd[i].revents)
      continue;
    if (pslot[i] < 0) {
      data[k] = WAKE_SLOT;
    } else {
      int sl = pslot[i];
      if ((size_t)sl >= p->w.cap || p->slots[sl].fd != pfd[i].fd)
        continue;               /* removed while we waited */
      data[k] = slot_data(p, sl);
    }
    rev[k++] = pfd[i].revents;
  }
  UNLOCK(env, p);
  *nready = k;
  return k ? 0 : ECLSOCK_ETIMEOUT;
}

/* One round of a wait.  Returns the list of (object . status), NIL when
   nothing was ready, :CLOSED, or an errno (fixnum). */
static cl_object
wait_round(cl_env_ptr env, struct poller *p, eclsock_deadline dl)
{
  uint64_t data[ECLSOCK_EPOLL_MAX];
  short rev[ECLSOCK_EPOLL_MAX];
  struct ready *todo, *rd;
  size_t ntodo, nout, i, rcap, k = 0;
  uint32_t stamp;
  int code, n = 0, closed;
  cl_object result = ECL_NIL;

  LOCK(env, p);
  (void)process_closed(p, 0);
  stamp = ++p->stamp;
  todo = p->todo;
  rd = p->rd;
  rcap = p->w.cap;
  ntodo = take_sets(p, &nout);
  UNLOCK(env, p);

  /* pending output goes out as socket-status sends it; buffered input
     is ready now */
  for (i = 0; i < ntodo; i++) {
    cl_object o = todo[i].obj;
    todo[i].obj = ECL_NIL;
    if (eclsock_stream_fd(o) < 0)
      continue;
    if (i < nout)
      eclsock_stream_flush_some(o);
    else if ((todo[i].dir & ECLSOCK_DIR_INPUT) && eclsock_stream_buffered_input(o)
             && k < rcap) {
      rd[k] = todo[i];
      rd[k].obj = o;
      rd[k].kind = ECLSOCK_KIND_STREAM;
      rd[k].buffered = 1;
      rd[k].revents = 0;
      k++;
    }
    eclsock_marks_renote(o);     /* still holding some: look again next time */
  }

  if (p->w.epfd >= 0)
    code = eclsock_tm_epoll_wait(p->w.epfd, data, rev, ECLSOCK_EPOLL_MAX,
                                 k ? 0.0 : dl, &n);
  else
    code = poll_wait(env, p, data, rev, k ? 0.0 : dl, &n);
  if (code == ECLSOCK_ETIMEOUT)
    n = 0;
  else if (code)
    return ecl_make_fixnum(code);

  LOCK(env, p);
  result = process_closed(p, 1);        /* closed while we waited */
  /* the buffered ones still registered (same generation) */
  for (i = 0; i < k; i++) {
    struct pslot *e = &p->slots[rd[i].slot];
    if (e->gen != rd[i].gen || e->fd < 0) {
      rd[i].obj = ECL_NIL;
      continue;
    }
    e->stamp = stamp;
    e->pos = (int)i;
  }
  for (i = 0; i < (size_t)n; i++) {
    uint32_t sl = (uint32_t)data[i], gen = (uint32_t)(data[i] >> 32);
    struct pslot *e;
    if (sl == WAKE_SLOT) {
      if (p->wake[0] >= 0)
        eclsock_os_drain(p->wake[0]);
      continue;
    }
    if (sl >= p->w.cap)
      continue;
    e = &p->slots[sl];
    if (e->gen != gen || e->fd < 0)
      continue;                 /* removed while we waited */
    if (e->stamp == stamp) {
      rd[e->pos].revents |= rev[i];
    } else if (k < rcap) {
      rd[k].obj = p->objs[sl];
      rd[k].slot = (int)sl;
      rd[k].gen = gen;
      rd[k].kind = (unsigned char)e->kind;
      rd[k].dir = (unsigned char)e->dir;
      rd[k].fd = e->fd;
      rd[k].buffered = 0;
      rd[k].revents = rev[i];
      e->stamp = stamp;
      e->pos = (int)k;
      k++;
    }
  }
  closed = p->closed;
  UNLOCK(env, p);
  if (closed)
    return kw_closed;

  for (i = k; i-- > 0; ) {
    struct ready *r = &rd[i];
    cl_object st;
    if (Null(r->obj))
      continue;
    if (r->kind == ECLSOCK_KIND_STREAM) {
      if (eclsock_stream_fd(r->obj) < 0) {
        /* being closed by another thread (its close woke us): end of
           file, as a read would see */
        if (!r->buffered)
          result = ecl_cons(ecl_cons(r->obj, kw_eof), result);
        r->obj = ECL_NIL;
        continue;
      }
    } else if (ECL_INSTANCEP(r->obj)
               && r->obj->instance.slots[0] != ecl_make_fixnum(r->fd)) {
      continue;                 /* a server or datagram socket closed */
    }
    st = eclsock_status_of(r->obj, r->kind, r->dir, r->fd, r->buffered, r->revents);
    if (!Null(st))
      result = ecl_cons(ecl_cons(r->obj, st), result);
    r->obj = ECL_NIL;           /* the scratch keeps nothing alive */
  }
  return result;
}

/* Wait until some registered object of P is ready or DL passes: the list
   of (object . status) of the ready ones, NIL when DL passed, :CLOSED
   when P is (or got) closed, :BUSY when another thread waits in it, or an
   errno (fixnum). */
cl_object
eclsock_poller_wait(cl_object h, eclsock_deadline dl)
{
  const cl_env_ptr env = ecl_process_env();
  struct poller *volatile p = handle_poller(h);
  volatile cl_object result = ECL_NIL;
  int busy = 0;
  intern_keywords();
  LOCK(env, p);
  if (p->closed)
    result = kw_closed;
  else if (p->waiting)
    busy = 1;
  else
    p->waiting = 1;
  UNLOCK(env, p);
  if (!Null(result))
    ecl_return1(env, result);
  if (busy)
    ecl_return1(env, kw_busy);
  ECL_UNWIND_PROTECT_BEGIN(env) {
    for (;;) {
      result = wait_round(env, p, dl);
      if (!Null(result) || (dl >= 0 && eclsock_tm_now() >= dl))
        break;
    }
  } ECL_UNWIND_PROTECT_EXIT {
    int fds[3] = { -1, -1, -1 };
    LOCK(env, p);
    p->waiting = 0;
    if (p->closed)
      take_fds(p, fds);
    UNLOCK(env, p);
    close_fds(fds);
  } ECL_UNWIND_PROTECT_END;
  ecl_return1(env, result);
}
