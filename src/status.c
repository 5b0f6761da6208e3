/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * status.c - socket-status: readiness of many streams and servers at once.
 *
 * Owns: walking every argument form CLISP's socket-status accepts (a
 * stream, a server, (stream . direction), and lists of those, including the
 * destructive (stream direction . x) and (server . x) forms), one poll(2)
 * over all their descriptors (so descriptors above 1023 work), and the
 * statuses :INPUT :OUTPUT :IO :EOF :APPEND :ERROR NIL, and T for servers.
 * Input already buffered inside a stream counts as ready without waiting,
 * and pending output of a listed stream is sent before the wait, as much
 * as the socket takes at once (a peer that does not read never holds the
 * wait past its timeout).  It is in C because it runs once per round trip
 * over possibly thousands of objects.  A list of EPOLL_MIN streams or more
 * waits in an epoll set kept across calls (one per process, for one call
 * at a time, others use poll; stream.c keeps its descriptor, which the
 * last registered stream's close closes): each stream carries a token
 * saying it is registered, so a call only walks its list, registers what
 * is new and drops what left, and the kernel's part costs by the ready
 * streams.  Must not: make system calls other
 * than through os.c and timeout.c, or convert Lisp timeouts (args.c does).
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static cl_object server_class = ECL_NIL;

enum { K_STREAM = ECLSOCK_KIND_STREAM, K_SERVER = ECLSOCK_KIND_SERVER,
       K_FD = ECLSOCK_KIND_FD };
enum { D_INPUT = ECLSOCK_DIR_INPUT, D_OUTPUT = ECLSOCK_DIR_OUTPUT, D_IO = ECLSOCK_DIR_IO };

struct entry {
  cl_object obj;                /* the stream, server or fd */
  cl_object cell;               /* cons whose cdr gets the status, or NIL */
  int kind, dir, fd;
  int ready;                    /* readiness known without poll */
  int entered;                  /* a stream this call is inside of: its
                                   close waits for the call to leave */
};

/* Up to this many objects, the work arrays live on the C stack; more get
   malloc'd (not GC memory: a server calling socket-status over a thousand
   streams per request would otherwise feed the collector 48 KiB a call). */
#define STACK_ENTRIES 64

/* The keywords, interned once: looking a keyword up by its name costs more
   than everything else socket-status does per object.  Keywords live in
   their package, so these need no GC root. */
static cl_object kw_input, kw_output, kw_io, kw_eof, kw_append, kw_error;

static void
intern_keywords(void)
{
  if (ecl_likely(__atomic_load_n(&kw_error, __ATOMIC_ACQUIRE) != NULL))
    return;
  kw_input = ecl_make_keyword("INPUT");
  kw_output = ecl_make_keyword("OUTPUT");
  kw_io = ecl_make_keyword("IO");
  kw_eof = ecl_make_keyword("EOF");
  kw_append = ecl_make_keyword("APPEND");
  __atomic_store_n(&kw_error, ecl_make_keyword("ERROR"), __ATOMIC_RELEASE);
}

void
eclsock_status_set_server_class(cl_object cls)
{
  server_class = cls;
  ecl_register_root(&server_class);
}

static int
server_p(cl_object x)
{
  if (!ECL_INSTANCEP(x) || Null(server_class))
    return 0;
  if (ECL_CLASS_OF(x) == server_class)
    return 1;
  return !Null(cl_funcall(3, ecl_make_symbol("TYPEP", "CL"), x, server_class));
}

/* The descriptor of server X, or -1 when closed. */
int
eclsock_server_fd(cl_object x)
{
  cl_object fd = x->instance.slots[0];
  return ECL_FIXNUMP(fd) ? (int)ecl_fixnum(fd) : -1;
}

static int
direction(cl_object d)
{
  if (d == kw_input) return D_INPUT;
  if (d == kw_output) return D_OUTPUT;
  if (d == kw_io || Null(d)) return D_IO;
  FEwrong_type_argument(cl_list(5, ecl_make_symbol("MEMBER", "CL"), ECL_NIL,
                                ecl_make_keyword("INPUT"), ecl_make_keyword("OUTPUT"),
                                ecl_make_keyword("IO")), d);
}

/* Fill E from object X with direction DIR. */
static void
classify(struct entry *e, cl_object x, int dir)
{
  e->obj = x;
  e->dir = dir;
  e->ready = 0;
  if (eclsock_stream_p(x)) {
    e->kind = K_STREAM;
    e->fd = eclsock_stream_fd(x);
    if (e->fd < 0 || !(e->entered = eclsock_stream_enter(x)))
      eclsock_raise("socket-status", EBADF, ECL_NIL, ECL_NIL, x);
  } else if (server_p(x)) {
    e->kind = K_SERVER;
    e->fd = eclsock_server_fd(x);
    e->dir = D_INPUT;
    if (e->fd < 0)
      eclsock_raise("socket-status", EBADF, ECL_NIL, ECL_NIL, x);
  } else if (ECL_FIXNUMP(x) && ecl_fixnum(x) >= 0 && ecl_fixnum(x) <= 0x7fffffff) {
    e->kind = K_FD;
    e->fd = (int)ecl_fixnum(x);
  } else {
    FEwrong_type_argument(cl_list(4, ecl_make_symbol("OR", "CL"),
                                  ecl_make_symbol("SOCKET-STREAM", "SOCKET"),
                                  ecl_make_symbol("SOCKET-SERVER", "SOCKET"),
                                  ecl_make_symbol("FIXNUM", "CL")), x);
  }
}

/* Parse one list element EL into E; CELL is where a destructive form
   stores its status. */
static void
parse_element(struct entry *e, cl_object el)
{
  e->cell = ECL_NIL;
  if (!ECL_CONSP(el)) {
    classify(e, el, D_IO);
    return;
  }
  {
    cl_object head = ECL_CONS_CAR(el), rest = ECL_CONS_CDR(el);
    if (ECL_CONSP(rest)) {                /* (stream direction . x) */
      classify(e, head, direction(ECL_CONS_CAR(rest)));
      e->cell = rest;
    } else if (ECL_SYMBOLP(rest) && !Null(rest) && !server_p(head)) {
      classify(e, head, direction(rest));  /* (stream . direction) */
    } else {                              /* (server . x), (stream . x) */
      classify(e, head, D_IO);
      e->cell = el;
    }
  }
}

static cl_object
status_of(struct entry *e, short revents)
{
  int in = 0, out = 0, eof = 0, err = 0;
  if (revents & POLLNVAL)               /* not an open descriptor: */
    return kw_error;                    /* report it, never spin on it */
  if (e->kind == K_SERVER)
    return (revents & (POLLIN | POLLERR | POLLHUP)) ? ECL_T : ECL_NIL;
  if (e->dir & D_INPUT) {
    if (e->kind == K_STREAM) {
      if (e->ready || (revents & (POLLIN | POLLHUP | POLLERR))) {
        int p = eclsock_stream_probe(e->obj);
        in = p == 1;
        eof = p == -1;
        err = p == -2;
      }
    } else if (revents & (POLLIN | POLLHUP | POLLERR)) {
      size_t got = 0;
      int en = eclsock_os_peek(e->fd, &got);
      /* not a socket, or a listening socket with a connection waiting */
      in = (!en && got) || en == ENOTSOCK || (en == ENOTCONN && (revents & POLLIN));
      eof = !en && !got;
      err = en && !in && en != EAGAIN && en != EWOULDBLOCK;
    }
  }
  if (e->dir & D_OUTPUT) {
    out = (revents & POLLOUT) != 0;
    /* a stream's pending error (a reset) is its next read's or write's,
       as on CLISP; a raw descriptor reports it here */
    if ((revents & POLLERR) && !(e->dir & D_INPUT) && e->kind != K_STREAM)
      err = 1;
  }
  if (err) return kw_error;
  if (e->dir == D_INPUT)
    return in ? kw_input : eof ? kw_eof : ECL_NIL;
  if (e->dir == D_OUTPUT)
    return out ? kw_output : ECL_NIL;
  if (out)
    return in ? kw_io : eof ? kw_append : kw_output;
  return in ? kw_input : eof ? kw_eof : ECL_NIL;
}

/* The status of one object, as socket-status gives it (for the poller). */
cl_object
eclsock_status_of(cl_object obj, int kind, int dir, int fd, int buffered,
                  short revents)
{
  struct entry e;
  intern_keywords();
  e.obj = obj;
  e.cell = ECL_NIL;
  e.kind = kind;
  e.dir = kind == K_SERVER ? D_INPUT : dir;
  e.fd = fd;
  e.ready = buffered;
  return status_of(&e, revents);
}

int
eclsock_server_p(cl_object x)
{
  return server_p(x);
}

/* -- The epoll set of big lists --------------------------------------- */

#define EPOLL_MIN 32            /* lists this long (of streams) use it */

static struct {                 /* guarded by stream.c's set lock */
  int epfd;                     /* this call's set */
  uint64_t next_token;
  size_t cap;                   /* size of the arrays below, by descriptor: */
  uint64_t *tok;                /*   the registration's token, 0 none */
  short *ev;                    /*   its events */
  int *ent;                     /*   its entry in this call */
  uint32_t *mark;               /*   the call that listed it last */
  int *regs;                    /* the registered descriptors */
  size_t nregs;
  uint32_t stamp;
} epc = { -1, 1, 0, NULL, NULL, NULL, NULL, NULL, 0, 0 };

#define EPC_UNUSABLE (-1000)

static int
epc_grow(size_t need)
{
  size_t cap = epc.cap ? epc.cap : 1024, i;
  uint64_t *tok;
  short *ev;
  int *ent, *regs;
  uint32_t *mark;
  if (need <= epc.cap)
    return 0;
  while (cap < need)
    cap *= 2;
  tok = realloc(epc.tok, cap * sizeof *tok);
  if (tok) epc.tok = tok;
  ev = realloc(epc.ev, cap * sizeof *ev);
  if (ev) epc.ev = ev;
  ent = realloc(epc.ent, cap * sizeof *ent);
  if (ent) epc.ent = ent;
  mark = realloc(epc.mark, cap * sizeof *mark);
  if (mark) epc.mark = mark;
  regs = realloc(epc.regs, cap * sizeof *regs);
  if (regs) epc.regs = regs;
  if (!tok || !ev || !ent || !mark || !regs)
    return ENOMEM;
  for (i = epc.cap; i < cap; i++) {
    tok[i] = 0;
    mark[i] = 0;
  }
  epc.cap = cap;
  return 0;
}

/* Register the N streams of ES in the epoll set (lock held), dropping
   those of earlier calls that are not listed.  Returns 0, or
   EPC_UNUSABLE when this list must use poll (not only streams, a
   descriptor listed twice, epoll refusing one). */
static int
epc_register(struct entry *es, struct pollfd *pf, cl_index n)
{
  cl_index i;
  size_t j;
  int maxfd = 0;
  for (i = 0; i < n; i++) {
    if (es[i].kind != K_STREAM)
      return EPC_UNUSABLE;
    if (pf[i].fd > maxfd)
      maxfd = pf[i].fd;
  }
  if (epc_grow((size_t)maxfd + 1))
    return EPC_UNUSABLE;
  if (++epc.stamp == 0)
    ++epc.stamp;
  for (i = 0; i < n; i++) {
    int fd = pf[i].fd, code;
    uint64_t t = eclsock_marks_status_token(es[i].obj, 0);
    if (epc.mark[fd] == epc.stamp)
      return EPC_UNUSABLE;          /* listed twice */
    epc.mark[fd] = epc.stamp;
    epc.ent[fd] = (int)i;
    if (t && epc.tok[fd] == t) {    /* registered by an earlier call */
      if (epc.ev[fd] != pf[i].events) {
        if (eclsock_os_epoll_ctl(epc.epfd, ECLSOCK_EP_MOD, fd, pf[i].events, (uint64_t)fd))
          return EPC_UNUSABLE;
        epc.ev[fd] = pf[i].events;
      }
      continue;
    }
    t = epc.next_token++;
    code = eclsock_os_epoll_ctl(epc.epfd, ECLSOCK_EP_ADD, fd, pf[i].events, (uint64_t)fd);
    if (code == EEXIST)         /* an earlier stream's, same open socket */
      code = eclsock_os_epoll_ctl(epc.epfd, ECLSOCK_EP_MOD, fd, pf[i].events, (uint64_t)fd);
    if (code)
      return EPC_UNUSABLE;
    if (!epc.tok[fd])
      epc.regs[epc.nregs++] = fd;
    epc.tok[fd] = t;
    epc.ev[fd] = pf[i].events;
    eclsock_marks_status_token(es[i].obj, t);
  }
  /* what earlier calls listed and this one does not */
  for (j = 0; j < epc.nregs; ) {
    int fd = epc.regs[j];
    if (epc.mark[fd] == epc.stamp) {
      j++;
      continue;
    }
    (void)eclsock_os_epoll_ctl(epc.epfd, ECLSOCK_EP_DEL, fd, 0, 0);
    epc.tok[fd] = 0;
    epc.regs[j] = epc.regs[--epc.nregs];
  }
  return 0;
}

/* poll(2)'s work for the N streams of ES/PF through the epoll set:
   PF[i].revents set, *NREADY how many are ready.  Returns what
   eclsock_tm_poll returns, or EPC_UNUSABLE (the caller polls). */
static int
epc_poll(struct entry *es, struct pollfd *pf, cl_index n, eclsock_deadline dl,
         int *nready)
{
  const cl_env_ptr env = ecl_process_env();
  volatile int code = EPC_UNUSABLE;
  int fresh;
  ecl_disable_interrupts_env(env);
  epc.epfd = eclsock_marks_sset_acquire(&fresh);
  ecl_enable_interrupts_env(env);
  if (epc.epfd < 0)
    return EPC_UNUSABLE;        /* another thread has it, or no epoll: poll */
  if (fresh) {                  /* a new set: nothing is registered in it */
    size_t j;
    for (j = 0; j < epc.nregs; j++)
      epc.tok[epc.regs[j]] = 0;
    epc.nregs = 0;
  }
  ECL_UNWIND_PROTECT_BEGIN(env) {
    if (epc_register(es, pf, n) == 0) {
      uint64_t data[ECLSOCK_EPOLL_MAX];
      short rev[ECLSOCK_EPOLL_MAX];
      int k, i, found = 0, before;
      for (;;) {
        code = eclsock_tm_epoll_wait(epc.epfd, data, rev, ECLSOCK_EPOLL_MAX, dl, &k);
        if (code == ECLSOCK_ETIMEOUT)
          k = 0;
        else if (code)
          break;
        before = found;
        for (i = 0; i < k; i++) {
          int fd = (int)data[i];
          if ((size_t)fd < epc.cap && epc.mark[fd] == epc.stamp) {
            if (!pf[epc.ent[fd]].revents)
              found++;
            pf[epc.ent[fd]].revents = rev[i];
          }
        }
        /* a full batch: more may be ready.  The kernel hands the ready
           ones out in turn, so ask again while a batch brings new ones
           (level-triggered, the same ones come back once all were seen) */
        if (k == ECLSOCK_EPOLL_MAX && found > before) {
          dl = 0.0;
          continue;
        }
        if (found || code == ECLSOCK_ETIMEOUT || (dl >= 0 && eclsock_tm_now() >= dl))
          break;
      }
      if (code == ECLSOCK_ETIMEOUT && found)
        code = 0;
      *nready = found;
    }
  } ECL_UNWIND_PROTECT_EXIT {
    int old;
    ecl_disable_interrupts_env(env);
    old = eclsock_marks_sset_release();
    ecl_enable_interrupts_env(env);
    eclsock_marks_sset_close(old);
  } ECL_UNWIND_PROTECT_END;
  return code;
}

/* The work of socket-status over the N objects of WHAT (SINGLE: WHAT is
   one object or (object . direction)), with ES and PF as work arrays of N
   elements.  Returns the status(es) and stores the ready count in *COUNTP. */
static cl_object
status_run(cl_object what, int single, cl_index n, eclsock_deadline dl,
           struct entry *es, struct pollfd *pf, int *countp)
{
  int destructive = 1, any_ready = 0, count, code, nready;
  cl_index i;
  cl_object l, result;

  if (single && ECL_CONSP(what)) {
    es[0].cell = ECL_NIL;
    classify(&es[0], ECL_CONS_CAR(what), direction(ECL_CONS_CDR(what)));
  } else if (single) {
    es[0].cell = ECL_NIL;
    classify(&es[0], what, D_IO);
  } else {
    for (i = 0, l = what; i < n; i++, l = ECL_CONS_CDR(l)) {
      parse_element(&es[i], ECL_CONS_CAR(l));
      if (Null(es[i].cell))
        destructive = 0;
    }
  }
  for (i = 0; i < n; i++) {
    struct entry *e = &es[i];
    pf[i].fd = e->fd;
    pf[i].events = ((e->dir & D_INPUT) ? POLLIN : 0) | ((e->dir & D_OUTPUT) ? POLLOUT : 0);
    pf[i].revents = 0;
    if (e->kind == K_STREAM) {
      eclsock_stream_flush_some(e->obj);
      if ((e->dir & D_INPUT) && eclsock_stream_buffered_input(e->obj))
        e->ready = any_ready = 1;
    }
  }
  for (;;) {
    code = n >= EPOLL_MIN ? epc_poll(es, pf, n, any_ready ? 0.0 : dl, &nready)
      : EPC_UNUSABLE;
    if (code == EPC_UNUSABLE)
      code = eclsock_tm_poll(pf, n, any_ready ? 0.0 : dl, &nready);
    if (code == ECLSOCK_ETIMEOUT) {
      nready = 0;
      for (i = 0; i < n; i++) pf[i].revents = 0;
    } else if (code) {
      eclsock_raise("poll", code, ECL_NIL, ECL_NIL, ECL_NIL);
    }
    count = 0;
    result = ECL_NIL;
    for (i = n; i-- > 0; ) {
      cl_object st = status_of(&es[i], pf[i].revents);
      if (!Null(st)) count++;
      if (single || destructive) {
        if (!Null(es[i].cell)) ECL_RPLACD(es[i].cell, st);
        if (single) result = st;
      } else {
        result = ecl_cons(st, result);
      }
    }
    /* return only when something is ready or the deadline has passed (a
       wakeup can find nothing: data consumed by another thread, or a TLS
       record that held no application data) */
    if (count > 0 || any_ready || (dl >= 0 && eclsock_tm_now() >= dl))
      break;
    for (i = 0; i < n; i++) pf[i].revents = 0;
  }
  if (destructive && !single)
    result = what;
  *countp = count;
  return result;
}

/* socket-status with WHAT in any of CLISP's forms, waiting until DL
   (ECLSOCK_NO_DEADLINE: until something is ready).  Returns the status(es)
   and the number of ready objects. */
cl_object
eclsock_status(cl_object what, eclsock_deadline dl)
{
  const cl_env_ptr env = ecl_process_env();
  int single = 0, count = 0;
  cl_index n = 0;
  cl_object l, result = ECL_NIL;

  intern_keywords();
  if (ECL_CONSP(what) && ECL_SYMBOLP(ECL_CONS_CDR(what)) && !Null(ECL_CONS_CDR(what))
      && !server_p(ECL_CONS_CAR(what))) {
    single = 1;                           /* (stream . direction) */
    n = 1;
  } else if (ECL_CONSP(what)) {
    /* L runs two conses per step of SLOW: if they meet, the list is
       circular (a type error, never an endless count). */
    cl_object slow = what;
    for (l = what; ECL_CONSP(l); l = ECL_CONS_CDR(l)) {
      n++;
      if (!(n & 1))
        slow = ECL_CONS_CDR(slow);
      if (n > 1 && slow == ECL_CONS_CDR(l))   /* (a report that printed */
        cl_error(9, ecl_make_symbol("SIMPLE-TYPE-ERROR", "CL"), /* it would */
                 ecl_make_keyword("DATUM"), what,               /* not end) */
                 ecl_make_keyword("EXPECTED-TYPE"), ecl_make_symbol("PROPER-LIST", "SI"),
                 ecl_make_keyword("FORMAT-CONTROL"),
                 ecl_make_simple_base_string("SOCKET-STATUS: the list of objects "
                                             "to wait on is circular.", -1),
                 ecl_make_keyword("FORMAT-ARGUMENTS"), ECL_NIL);
    }
    if (!Null(l))
      FEwrong_type_argument(ecl_make_symbol("PROPER-LIST", "SI"), what);
  } else if (Null(what)) {
    FEwrong_type_argument(cl_list(3, ecl_make_symbol("OR", "CL"),
                                  ecl_make_symbol("SOCKET-STREAM", "SOCKET"),
                                  ecl_make_symbol("CONS", "CL")), what);
  } else {
    single = 1;
    n = 1;
  }
  {
    struct entry stack_es[STACK_ENTRIES];
    struct pollfd stack_pf[STACK_ENTRIES];
    struct entry *volatile es = n <= STACK_ENTRIES ? stack_es : NULL;
    struct pollfd *volatile pf = n <= STACK_ENTRIES ? stack_pf : NULL;
    volatile cl_index ready_n = 0;      /* entries initialised */
    ECL_UNWIND_PROTECT_BEGIN(env) {
      cl_index i;
      if (!es) {
        es = malloc(n * sizeof *es);
        pf = malloc(n * sizeof *pf);
        if (!es || !pf)
          FEerror("SOCKET-STATUS: no memory for ~D objects.", 1, ecl_make_fixnum(n));
      }
      for (i = 0; i < n; i++)
        es[i].entered = 0;
      ready_n = n;
      result = status_run(what, single, n, dl, es, pf, &count);
    } ECL_UNWIND_PROTECT_EXIT {
      cl_index i;
      for (i = 0; i < ready_n; i++)     /* the streams this call entered */
        if (es[i].entered)
          eclsock_stream_leave(es[i].obj);
      if (es != stack_es) {
        free(es);
        free(pf);
      }
    } ECL_UNWIND_PROTECT_END;
  }
  ecl_return2(env, result, ecl_make_fixnum(count));
}
