/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * stream.c - the buffered socket stream of ecl-sock.
 *
 * Owns: one real ECL stream per connection.  It is made with ECL's own
 * POSIX fd stream constructor (so element types, external formats,
 * read-line, format, read-sequence all stay ECL's) and then its private
 * copy of the dispatch table gets our buffered operations:
 *
 *  - reads fill a 64 KiB buffer with one recv and serve read-char,
 *    read-byte and read-sequence from it; read-char decodes ASCII (UTF-8)
 *    or Latin-1 octets straight from the buffer and leaves everything else
 *    to ECL's decoder;
 *  - writes collect in a 64 KiB buffer sent on an explicit force-output or
 *    finish-output, when full, before any blocking read on the same stream
 *    (so a program that never calls force-output still gets its answer out
 *    before waiting for the next request), and at the latest HOLD_NS after
 *    they were written (the flusher below); short writes and EINTR are
 *    looped in os.c, so no octet is lost when GC signals interrupt a send;
 *  - the flushes ECL does by itself (terpri, write-line, format's ~%,
 *    print, prin1, fresh-line all call force-output) only hold: they are
 *    joined with what comes next, so that an answer of many lines leaves
 *    in one send and one segment (see "Coalesced flushes" below);
 *  - listen answers from the buffer first; close flushes, closes the
 *    descriptor exactly once and never signals; a stream dropped without
 *    close is closed by its finalizer, which sends what the socket takes
 *    without waiting (held output has long been sent by then: the flusher
 *    keeps a stream reachable while it holds output).
 *
 * Buffers are allocated on first use, so idle connections cost no memory,
 * and start small (BUF_START): a short connection allocates a few hundred
 * octets, not 128 KiB, which keeps the GC quiet under many connect/close
 * cycles.  Each buffer grows (x16, up to 64 KiB): the output buffer before
 * it would overflow (so what is sent when stays as with a full-size
 * buffer), the input buffer after a refill that filled it.
 * One reader thread and one writer thread may use a stream at once: the
 * output buffer has a lock, the input buffer belongs to the reader.
 * Underneath the buffers is the transport (tls.c): the plain descriptor,
 * or a TLS session after make-ssl-client-stream/-server-stream; every
 * send and recv here goes through it (eclsock_tp_*), so the buffering,
 * read-line, bivalence and flush rules are the same over TLS.
 * Must not: use any stream field that ECL's io_file code does not leave to
 * us (we keep our state behind stream.buffer, which ECL leaves unused for
 * these streams and the GC traces).
 */
#include "internal.h"
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

extern ECL_API cl_object ecl_make_file_stream_from_fd(cl_object name, int fd,
                                                      enum ecl_smmode smm,
                                                      cl_fixnum byte_size,
                                                      int flags,
                                                      cl_object external_format);

#define RBUF_SIZE 65536
#define WBUF_SIZE 65536
#define BUF_START 256               /* first size of both buffers, */
#define BUF_GROWTH 16               /* then 4 KiB, then 64 KiB */
#define DIRECT_MIN 16384            /* reads and writes this long skip the buffers */
#define HOLD_NS 2000000L            /* the longest output waits for a flush:
                                       2 ms (the manual says so) */

struct sockbuf {
  struct ecl_file_ops ops;          /* the dispatch table: stream.ops points
                                       here, so ops == buffer tells our
                                       streams apart without a second load */
  cl_object host, port;             /* creation arguments, for -host/-port */
  cl_object charfmt;                /* external format for character mode */
  unsigned char *rbuf, *wbuf;       /* GC atomic blocks, made on first use */
  size_t rpos, rlen, wlen;
  size_t rcap, wcap;                /* current buffer sizes */
  int buffered;                     /* NIL :buffered sends every write */
  int shut_rd, shut_wr;             /* socket-stream-shutdown happened */
  int finalizing;                   /* closed by the GC: do not flush */
  int shared;                       /* another descriptor shares the socket */
  int waiters;                      /* threads in a blocking call on it */
  int read_err;                     /* an error socket-status found (a reset):
                                       the next read signals it, once */
  unsigned fast_limit;              /* octets below this are characters */
  int fast_cr;                      /* CR is special (CRLF/CR endings) */
  int utf8, crlf;                   /* character stream in UTF-8 / CR LF */
  int nl_char;                      /* the last write was write-char #\Newline */
  int listed;                       /* on the flusher's list (fl_lock) */
  cl_object flush_next;             /* next stream on that list */
  int (*orig_read_char)(cl_object);
  ecl_character (*orig_write_char)(cl_object, ecl_character);
  cl_index (*orig_read_vector)(cl_object, cl_object, cl_index, cl_index);
  pthread_mutex_t wlock;            /* guards wbuf and wlen */
  eclsock_tls *tls;                 /* the transport: NULL = plain fd */
  struct eclsock_watch *watch;      /* the poller holding it, or NULL; */
  int wslot;                        /* its slot there; the marks say it is */
  unsigned char in_mark, out_mark;  /* in watch->in / watch->out (under
                                       watch->lock) */
  uint64_t status_token;            /* socket-status's epoll registration */
  int in_sset;                      /* (status.c): counted in sset_count */
};

#define SB(s) ((struct sockbuf *)(s)->stream.buffer)

/* Count the threads blocked in a system call on a stream: close shuts the
   connection down first only when there are some, to wake them (an
   interrupt that unwinds one leaves the count high: close then shuts down
   needlessly, which is harmless). */
#define WAIT_BEGIN(b) ((void)__atomic_add_fetch(&(b)->waiters, 1, __ATOMIC_RELAXED))
#define WAIT_END(b) ((void)__atomic_sub_fetch(&(b)->waiters, 1, __ATOMIC_RELAXED))
#define FD(s) ((int)(s)->stream.file.descriptor)

/* -- The poller's marks (see struct eclsock_watch) --------------------- */

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
  if (!b->in_mark && b->rpos < b->rlen) {
    set_add(&w->in, b->wslot);
    b->in_mark = 1;
  }
  if (!b->out_mark && b->wlen) {
    set_add(&w->out, b->wslot);
    b->out_mark = 1;
  }
}

/* After a read left octets in S's buffer or a write left output pending:
   tell the poller that holds S (if any), so that its next wait looks at
   S.  Costs one load when S is in no poller, a lock when it is marked
   already. */
static void
note(struct sockbuf *b)
{
  struct eclsock_watch *w;
  cl_env_ptr env;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  /* pairs with eclsock_stream_watch */
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

/* ECL's generic_close is static; we take it from a closed template stream. */
static cl_object (*generic_close_fn)(cl_object);
static cl_object finalizer_fn = ECL_NIL;

static void install_ops(cl_object s);

/* Symbols compared against at every stream creation, interned once in
   eclsock_stream_init (by name, each would cost a package lookup). */
static cl_object sym_character, sym_base_char, kw_lf, kw_crlf, kw_utf8,
  kw_us_ascii, kw_latin1, kw_iso_8859_1;

/* -- Output: the flusher ----------------------------------------------- */

/* Output that no explicit flush sends waits in the buffer at most HOLD_NS.
   A stream that buffers output goes on a list (fl_head, linked through
   flush_next, a GC root: a listed stream stays reachable, so it is never
   finalized with output held); one thread for the whole module wakes
   HOLD_NS after the list became non-empty, sends what every listed stream
   holds (without waiting: MSG_DONTWAIT), and takes off the list the streams
   it emptied.  It runs plain C only (no Lisp environment) and never blocks
   on a stream's output lock (trylock: a writer that holds it is sending or
   about to, the stream stays listed for the next round).  close takes the
   stream off the list and marks it closed under fl_lock, so the flusher
   never sends on a descriptor that close has released. */
static pthread_mutex_t fl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fl_cond;
static cl_object fl_head;           /* NULL-terminated */
static int fl_pid;                /* the process whose flusher runs, or 0 */
static int fl_failed;               /* no flusher thread: flush at once */

static void
flush_held(void)
{
  cl_object *pp = &fl_head;
  while (*pp) {
    cl_object s = *pp;
    struct sockbuf *b = SB(s);
    int keep = 0;
    if (pthread_mutex_trylock(&b->wlock) == 0) {
      if (b->wlen && FD(s) >= 0) {
        size_t sent = 0;
        int code = eclsock_tp_send_nowait(b->tls, FD(s), b->wbuf, b->wlen, &sent);
        if (sent) {
          memmove(b->wbuf, b->wbuf + sent, b->wlen - sent);
          b->wlen -= sent;
        }
        /* a full socket: try again next round; an error: the next write
           or force-output meets it */
        keep = !code && b->wlen > 0;
      }
      pthread_mutex_unlock(&b->wlock);
    } else {
      keep = 1;
    }
    if (keep) {
      pp = &b->flush_next;
    } else {
      *pp = b->flush_next;
      b->flush_next = NULL;
      b->listed = 0;
    }
  }
}

static void *
flusher_main(void *arg)
{
  (void)arg;
  pthread_mutex_lock(&fl_lock);
  for (;;) {
    struct timespec until;
    double t;
    while (!fl_head)
      pthread_cond_wait(&fl_cond, &fl_lock);
    t = eclsock_tm_now() + HOLD_NS * 1e-9;     /* CLOCK_MONOTONIC, as fl_cond */
    until.tv_sec = (time_t)t;
    until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
    if (until.tv_nsec >= 1000000000L)
      until.tv_nsec = 999999999L;
    while (pthread_cond_timedwait(&fl_cond, &fl_lock, &until) != ETIMEDOUT)
      ;
    flush_held();
  }
  return NULL;
}

static void
flusher_cond_init(void)
{
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&fl_cond, &a);
  pthread_condattr_destroy(&a);
}

/* fork: the child has no flusher thread; its first held output starts one.
   Its copies of listed streams go off the list (their next write lists
   them again). */
static void fl_prepare(void) { pthread_mutex_lock(&fl_lock); }
static void fl_parent(void) { pthread_mutex_unlock(&fl_lock); }
static void
fl_child(void)
{
  while (fl_head) {
    struct sockbuf *b = SB(fl_head);
    fl_head = b->flush_next;
    b->flush_next = NULL;
    b->listed = 0;
  }
  fl_pid = 0;
  flusher_cond_init();
  pthread_mutex_unlock(&fl_lock);
}

/* Put S on the flusher's list (it holds output), starting the flusher in
   this process if needed.  Returns 0 when output cannot be held (no
   flusher thread): the caller sends at once. */
static int
hold_output(cl_object s)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  int ok = 1;
  if (__atomic_load_n(&b->listed, __ATOMIC_RELAXED))
    return 1;
  ecl_disable_interrupts_env(env);
  pthread_mutex_lock(&fl_lock);
  if (!fl_failed && fl_pid != eclsock_os_pid()) {
    /* the thread runs our code until the process ends: exit must not
       unmap it (ECL dlcloses sock.fas in cl_shutdown) */
    eclsock_os_pin_module((const void *)flusher_main);
    if (eclsock_os_start_thread(flusher_main, NULL) == 0)
      fl_pid = eclsock_os_pid();
    else
      fl_failed = 1;
  }
  if (fl_failed) {
    ok = 0;
  } else if (!b->listed && FD(s) >= 0) {
    if (!fl_head)
      pthread_cond_signal(&fl_cond);
    b->flush_next = fl_head;
    fl_head = s;
    b->listed = 1;
  }
  pthread_mutex_unlock(&fl_lock);
  ecl_enable_interrupts_env(env);
  return ok;
}

/* Take S off the flusher's list; CLOSING also marks the descriptor closed
   (-1) under fl_lock, after which the stream is never listed again.
   Interrupts are disabled by the caller. */
static void
unlist(cl_object s, int closing)
{
  struct sockbuf *b = SB(s);
  pthread_mutex_lock(&fl_lock);
  if (b->listed) {
    cl_object *pp = &fl_head;
    while (*pp && *pp != s)
      pp = &SB(*pp)->flush_next;
    if (*pp)
      *pp = b->flush_next;
    b->flush_next = NULL;
    b->listed = 0;
  }
  if (closing)
    s->stream.file.descriptor = -1;
  pthread_mutex_unlock(&fl_lock);
}

/* -- Output: coalesced flushes ------------------------------------------ */

/* ECL calls force-output after every newline of terpri (write-line,
   format's ~%, print), after prin1/princ/write of any object and after
   fresh-line; on a socket each would be a send and a TCP segment, and with
   Nagle's algorithm the second small segment of an answer waits for the
   peer's delayed acknowledgement (40 ms).  Those flushes are soft: the
   output stays buffered (and held, see above).  A flush is hard, and sends
   at once, when it comes from CL:FORCE-OUTPUT or CL:FINISH-OUTPUT (ECL's
   are one C function each, which call the stream's force_output through a
   tail call of ecl_force_output, so the return address of our
   force_output lies inside them), or from anything we cannot name (C code
   of a host that calls ecl_force_output, for one).  Call sites are named
   once with dladdr and cached.  When ecl_force_output is not a tail call
   (another build of ECL), the site is ecl_force_output itself: then a
   flush right after write-char of a newline is soft, any other hard. */
enum { SITE_HARD = 0, SITE_SOFT = 1, SITE_NEWLINE = 2 };
#define SITE_CACHE 16
static uintptr_t site_cache[SITE_CACHE];   /* (address << 2) | kind */
static unsigned site_next;

static const char *const soft_callers[] = {
  "ecl_terpri", "cl_terpri", "cl_write_line", "cl_fresh_line", "ecl_print",
  "cl_print", "ecl_prin1", "cl_prin1", "ecl_princ", "cl_princ", "cl_pprint",
  "cl_write", "ecl_princ_char", "ecl_write_string", NULL
};

static int
flush_site_kind(const void *ra)
{
  uintptr_t key = (uintptr_t)ra << 2;
  const void *start;
  const char *name;
  int i, kind = SITE_HARD;
  const cl_env_ptr env = ecl_process_env();
  for (i = 0; i < SITE_CACHE; i++) {
    uintptr_t e = __atomic_load_n(&site_cache[i], __ATOMIC_ACQUIRE);
    if ((e & ~(uintptr_t)3) == key)
      return (int)(e & 3);
  }
  ecl_disable_interrupts_env(env);   /* dladdr takes the loader's lock */
  name = eclsock_os_code_name(ra, &start);
  ecl_enable_interrupts_env(env);
  if (name && start == (const void *)ecl_force_output) {
    kind = SITE_NEWLINE;
  } else if (name) {
    for (i = 0; soft_callers[i]; i++)
      if (!strcmp(name, soft_callers[i]))
        kind = SITE_SOFT;
  }
  i = (int)(__atomic_fetch_add(&site_next, 1, __ATOMIC_RELAXED) % SITE_CACHE);
  __atomic_store_n(&site_cache[i], key | (uintptr_t)kind, __ATOMIC_RELEASE);
  return kind;
}

/* write-char: ECL's, then remember whether it wrote a newline. */
static ecl_character
sb_write_char(cl_object s, ecl_character c)
{
  struct sockbuf *b = SB(s);
  b->orig_write_char(s, c);
  b->nl_char = (c == '\n');
  return c;
}

/* Signal the condition for CODE from OP on S.  A TLS session's own
   message (OpenSSL's reason) and verify result go with it. */
static void __attribute__((noreturn))
raise_io(cl_object s, const char *op, int code)
{
  eclsock_tls *t = SB(s)->tls;
  const char *m = (t && code < 0) ? eclsock_tls_message(t) : NULL;
  if (m)
    eclsock_raise_detail(op, code, ecl_make_simple_base_string(m, -1),
                         code == ECLSOCK_ETLSVERIFY
                         ? ecl_make_fixnum(eclsock_tls_verify_result(t)) : ECL_NIL,
                         ECL_NIL, ECL_NIL, s);
  eclsock_raise(op, code, ECL_NIL, ECL_NIL, s);
}

/* -- Output ------------------------------------------------------------- */

/* Send the pending output and then the N octets at C (C may be NULL).
   Small extra octets are buffered after the flush instead.  With TRY_ONLY,
   do nothing when another thread holds the output lock.  Returns 0 or an
   error code; never signals, but a Lisp interrupt may unwind it (the lock
   is released on the way out). */
static int
write_through(cl_object s, const unsigned char *c, size_t n, int try_only)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  volatile int locked = 0;
  volatile int code = 0;
  ECL_UNWIND_PROTECT_BEGIN(env) {
    ecl_disable_interrupts_env(env);
    if (try_only)
      locked = (pthread_mutex_trylock(&b->wlock) == 0);
    else
      locked = (pthread_mutex_lock(&b->wlock) == 0);
    ecl_enable_interrupts_env(env);
    if (locked) {
      WAIT_BEGIN(b);
      if (b->wlen) {
        size_t k = b->wlen;
        b->wlen = 0;
        code = eclsock_tp_send_all(b->tls, FD(s), b->wbuf, k);
      }
      if (!code && n) {
        if (b->buffered && n < DIRECT_MIN && n <= b->wcap) {
          memcpy(b->wbuf, c, n);
          b->wlen = n;
          code = -100;            /* not an error: note it after the lock */
        } else {
          code = eclsock_tp_send_all(b->tls, FD(s), c, n);
        }
      }
      WAIT_END(b);
    }
  } ECL_UNWIND_PROTECT_EXIT {
    if (locked)
      pthread_mutex_unlock(&b->wlock);
  } ECL_UNWIND_PROTECT_END;
  if (code == -100) {
    code = 0;
    note(b);                    /* output pending: the poller pushes it */
  }
  if (!code && b->wlen && !b->listed && !hold_output(s))
    return write_through(s, NULL, 0, try_only);
  return code;
}

static void
check_writable(cl_object s)
{
  if (SB(s)->shut_wr)
    eclsock_raise("write", ESHUTDOWN, ECL_NIL, ECL_NIL, s);
}

/* Make room for NEED octets of pending output: the first buffer is small,
   the second full size (the pending octets move over).  Called with wlock
   held. */
static void
wbuf_reserve(struct sockbuf *b, size_t need)
{
  size_t cap = b->wcap ? b->wcap : BUF_START;
  unsigned char *w;
  while (cap < need && cap < WBUF_SIZE)
    cap *= BUF_GROWTH;
  if (cap <= b->wcap)
    return;
  w = ecl_alloc_atomic(cap);
  if (b->wlen)
    memcpy(w, b->wbuf, b->wlen);
  b->wbuf = w;
  b->wcap = cap;
}

static cl_index
sb_write_byte8(cl_object s, unsigned char *c, cl_index n)
{
  struct sockbuf *b = SB(s);
  int code;
  check_writable(s);
  b->nl_char = 0;
  if (b->buffered && n < DIRECT_MIN) {  /* longer ones are sent, not copied */
    int done = 0;
    const cl_env_ptr env = ecl_process_env();
    ecl_disable_interrupts_env(env);
    pthread_mutex_lock(&b->wlock);
    if (ecl_unlikely(b->wlen + n > b->wcap) && b->wcap < WBUF_SIZE)
      wbuf_reserve(b, b->wlen + n);
    if (b->wlen + n <= b->wcap) {
      done = b->wlen ? 1 : 2;
      memcpy(b->wbuf + b->wlen, c, n);
      b->wlen += n;
    }
    pthread_mutex_unlock(&b->wlock);
    ecl_enable_interrupts_env(env);
    if (done == 2)
      note(b);                  /* output pending: the poller pushes it */
    if (done && (b->listed || hold_output(s)))
      return n;
    if (done) {                         /* cannot hold it: send it now */
      eclsock_stream_flush(s, 0);
      return n;
    }
  }
  code = write_through(s, c, n, 0);
  if (code)
    raise_io(s, "send", code);
  return n;
}

/* Send pending output.  TRY_ONLY: skip when another thread is writing. */
void
eclsock_stream_flush(cl_object s, int try_only)
{
  struct sockbuf *b = SB(s);
  int code;
  if (!b->wlen || FD(s) < 0)
    return;
  code = write_through(s, NULL, 0, try_only);
  if (code)
    raise_io(s, "send", code);
}

/* Send what the socket takes of the pending output of B now, without
   waiting, and keep the rest at the start of the buffer.  Returns 0 or
   the send error.  Called with wlock held (or by close, alone). */
static int
send_some(struct sockbuf *b, int fd)
{
  size_t sent = 0;
  int code = eclsock_tp_send_nowait(b->tls, fd, b->wbuf, b->wlen, &sent);
  if (sent) {
    memmove(b->wbuf, b->wbuf + sent, b->wlen - sent);
    b->wlen -= sent;
  }
  return code;
}

/* Send what the socket takes of the pending output now and keep the rest,
   for socket-status before its wait: a peer that does not read must not
   hold it past its timeout.  Skips when another thread holds the output
   lock.  Never blocks and never signals: a send error stays for the next
   write or force-output to report. */
void
eclsock_stream_flush_some(cl_object s)
{
  struct sockbuf *b = SB(s);
  cl_env_ptr env;
  if (!b->wlen || FD(s) < 0)
    return;
  env = ecl_process_env();
  ecl_disable_interrupts_env(env);
  if (pthread_mutex_trylock(&b->wlock) == 0) {
    (void)send_some(b, FD(s));
    pthread_mutex_unlock(&b->wlock);
  }
  ecl_enable_interrupts_env(env);
}

static void
sb_force_output(cl_object s)
{
  struct sockbuf *b = SB(s);
  int nl = b->nl_char;
  b->nl_char = 0;
  if (b->wlen && b->buffered) {
    int kind = flush_site_kind(__builtin_return_address(0));
    if ((kind == SITE_SOFT || (kind == SITE_NEWLINE && nl)) && hold_output(s))
      return;                   /* soft: held, see "Coalesced flushes" */
  }
  eclsock_stream_flush(s, 0);
}

/* finish-output of ECL's C code (ecl_finish_output): always at once. */
static void
sb_finish_output(cl_object s)
{
  SB(s)->nl_char = 0;
  eclsock_stream_flush(s, 0);
}

static void
sb_clear_output(cl_object s)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  ecl_disable_interrupts_env(env);
  pthread_mutex_lock(&b->wlock);
  if (!eclsock_tp_write_pending(b->tls))  /* a half-sent TLS record stays */
    b->wlen = 0;
  pthread_mutex_unlock(&b->wlock);
  ecl_enable_interrupts_env(env);
}

/* -- Input -------------------------------------------------------------- */

/* Take up to N octets pushed back by unread-char. */
static cl_index
take_byte_stack(cl_object s, unsigned char *c, cl_index n)
{
  cl_index out = 0;
  while (n && s->stream.byte_stack != ECL_NIL) {
    cl_object l = s->stream.byte_stack;
    *c++ = (unsigned char)ecl_fixnum(ECL_CONS_CAR(l));
    s->stream.byte_stack = ECL_CONS_CDR(l);
    n--;
    out++;
  }
  return out;
}

/* Make the input buffer ready for a refill; it is empty (rpos == rlen).
   After a refill that filled it, a buffer 16 times larger (at most 64 KiB)
   replaces it. */
static void
rbuf_ready(struct sockbuf *b)
{
  if (ecl_unlikely(!b->rbuf)) {
    b->rbuf = ecl_alloc_atomic(BUF_START);
    b->rcap = BUF_START;
  } else if (ecl_unlikely(b->rcap < RBUF_SIZE && b->rlen == b->rcap)) {
    b->rcap *= BUF_GROWTH;
    b->rbuf = ecl_alloc_atomic(b->rcap);
  }
}

/* Before a blocking read, get pending output to the peer (it may wait for
   it before answering) without ever blocking in send: a reader stuck in
   send while the peer is stuck sending to it would deadlock.  Push what
   the socket takes; while some is left, wait for input or for room.
   Returns at once when another thread holds the output lock (it is
   sending).  What is left when input comes stays buffered. */
static void
flush_before_read(cl_object s)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  while (b->wlen) {
    struct pollfd p;
    size_t sent = 0;
    int code = 0, busy, n;
    ecl_disable_interrupts_env(env);
    busy = pthread_mutex_trylock(&b->wlock) != 0;
    if (!busy) {
      code = eclsock_tp_send_nowait(b->tls, FD(s), b->wbuf, b->wlen, &sent);
      if (sent) {
        memmove(b->wbuf, b->wbuf + sent, b->wlen - sent);
        b->wlen -= sent;
      }
      pthread_mutex_unlock(&b->wlock);
    }
    ecl_enable_interrupts_env(env);
    if (code)
      raise_io(s, "send", code);
    if (busy || !b->wlen)
      return;
    p.fd = FD(s);
    p.events = POLLIN | POLLOUT;
    p.revents = 0;
    WAIT_BEGIN(b);
    code = eclsock_tm_poll(&p, 1, ECLSOCK_NO_DEADLINE, &n);
    WAIT_END(b);
    if (code)
      eclsock_raise("poll", code, ECL_NIL, ECL_NIL, s);
    if (p.revents & (POLLIN | POLLHUP | POLLERR))
      return;
  }
}

/* Refill the input buffer with one recv.  FLAGS may hold MSG_DONTWAIT.
   Returns the octets read (0 = EOF), or -1 when a non-blocking try found
   nothing.  Signals on errors. */
static ssize_t
fill(cl_object s, int flags)
{
  struct sockbuf *b = SB(s);
  size_t got;
  int code;
  if (b->shut_rd)
    return 0;
  if (b->read_err) {
    code = b->read_err;
    b->read_err = 0;
    raise_io(s, "recv", code);
  }
  rbuf_ready(b);
  if (b->wlen && !(flags & MSG_DONTWAIT))
    flush_before_read(s);
  WAIT_BEGIN(b);
  code = eclsock_tp_recv(b->tls, FD(s), b->rbuf, b->rcap, flags, &got);
  WAIT_END(b);
  if (code == EAGAIN || code == EWOULDBLOCK)
    return -1;
  if (code)
    raise_io(s, "recv", code);
  b->rpos = 0;
  b->rlen = got;
  if (!got && eclsock_tp_take_truncation(b->tls))
    eclsock_signal_truncation(s);     /* EOF all the same, unless handled */
  if (got)
    note(b);                    /* what the reader leaves, the poller sees */
  return (ssize_t)got;
}

/* Read N octets into C.  MODE 0 waits until all N came or EOF (what
   read-sequence needs), 1 never waits (:no-hang), 2 waits for the first
   octet only (:interactive). */
cl_index
eclsock_stream_read_octets(cl_object s, unsigned char *c, cl_index n, int mode)
{
  struct sockbuf *b = SB(s);
  cl_index out = take_byte_stack(s, c, n);
  c += out;
  n -= out;
  while (n) {
    size_t avail = b->rlen - b->rpos;
    ssize_t r;
    if (avail) {
      size_t k = avail < n ? avail : n;
      memcpy(c, b->rbuf + b->rpos, k);
      b->rpos += k;
      c += k;
      n -= k;
      out += k;
      continue;
    }
    if (mode == 1 || (mode == 2 && out > 0)) {
      r = fill(s, MSG_DONTWAIT);
      if (r <= 0)
        break;
      continue;
    }
    if (n >= DIRECT_MIN && !b->shut_rd && !b->read_err) {
      /* large reads go straight into the caller's memory */
      size_t got;
      int code;
      if (b->wlen)
        flush_before_read(s);
      WAIT_BEGIN(b);
      code = eclsock_tp_recv(b->tls, FD(s), c, n, 0, &got);
      WAIT_END(b);
      if (code)
        raise_io(s, "recv", code);
      if (!got) {
        if (eclsock_tp_take_truncation(b->tls))
          eclsock_signal_truncation(s);
        break;
      }
      c += got;
      n -= got;
      out += got;
      continue;
    }
    if (fill(s, 0) == 0)
      break;
  }
  return out;
}

static cl_index
sb_read_byte8(cl_object s, unsigned char *c, cl_index n)
{
  return eclsock_stream_read_octets(s, c, n, 0);
}

/* read-byte and write-byte on an (unsigned-byte 8) stream.  ECL's own
   operations for such a stream go through read_byte8/write_byte8 with a
   count of 1 (a memcpy, the byte stack, the checks of a whole transfer);
   programs that speak a binary protocol octet by octet (cl-postgres) make
   one such call per octet.  These take the octet straight from or into
   the buffer when nothing special is going on, and hand every other case
   (empty buffer, pushed-back octets, first octet of pending output, the
   stream not yet on the flusher's list) to the general path. */
static cl_object
sb_read_byte_u8(cl_object s)
{
  struct sockbuf *b = SB(s);
  unsigned char c;
  if (ecl_likely(b->rpos < b->rlen && s->stream.byte_stack == ECL_NIL))
    return ecl_make_fixnum(b->rbuf[b->rpos++]);
  return eclsock_stream_read_octets(s, &c, 1, 0) ? ecl_make_fixnum(c) : ECL_NIL;
}

static void
sb_write_byte_u8(cl_object byte, cl_object s)
{
  struct sockbuf *b = SB(s);
  unsigned char c = ecl_to_uint8_t(byte);
  /* the short way appends to pending output of a listed stream, so it
     neither notes the poller (done when the output became pending) nor
     lists the stream */
  if (ecl_likely(b->buffered && b->listed && b->wlen && !b->shut_wr)) {
    const cl_env_ptr env = ecl_process_env();
    int done = 0;
    ecl_disable_interrupts_env(env);
    pthread_mutex_lock(&b->wlock);
    if (b->wlen && b->wlen < b->wcap) {
      b->wbuf[b->wlen++] = c;
      done = 1;
    }
    pthread_mutex_unlock(&b->wlock);
    ecl_enable_interrupts_env(env);
    if (done) {
      b->nl_char = 0;
      return;
    }
  }
  (void)sb_write_byte8(s, &c, 1);
}

/* read-char: characters that are one octet come straight from the buffer;
   everything else (multi-octet UTF-8, CR under CRLF, pushed-back octets, an
   empty buffer) goes to ECL's decoder, which reads through sb_read_byte8. */
static int
sb_read_char(cl_object s)
{
  struct sockbuf *b = SB(s);
  if (ecl_likely(b->rpos < b->rlen && s->stream.byte_stack == ECL_NIL)) {
    unsigned c = b->rbuf[b->rpos];
    if (c < b->fast_limit && !(c == '\r' && b->fast_cr)) {
      b->rpos++;
      s->stream.last_char = c;
      s->stream.last_code[0] = c;
      s->stream.last_code[1] = EOF;
      return (int)c;
    }
  }
  return b->orig_read_char(s);
}

/* read-sequence into a string: one read-char at a time, through the fast
   path above; octet vectors go to ECL's own code (and so to read_byte8). */
static cl_index
sb_read_vector(cl_object s, cl_object data, cl_index start, cl_index end)
{
  cl_elttype t = ecl_array_elttype(data);
  if (t == ecl_aet_bc || t == ecl_aet_ch) {
    int (*read_char)(cl_object) = s->stream.ops->read_char;
    for (; start < end; start++) {
      int c = read_char(s);
      if (c == EOF)
        break;
      ecl_char_set(data, start, c);
    }
    return start;
  }
  return SB(s)->orig_read_vector(s, data, start, end);
}

/* How many octets the first character at P (AVAIL of them buffered) needs
   before ECL's decoder returns it without waiting: a UTF-8 sequence takes
   what its first octet says, and under CR LF the decoder also reads the
   character after a CR. */
static size_t
char_octets(const struct sockbuf *b, const unsigned char *p, size_t avail)
{
  size_t n = 0;
  if (b->crlf && p[0] == '\r') {
    if (avail == 1)
      return 2;
    n = 1;
    p++;
  }
  if (b->utf8 && p[0] >= 0xC0)
    n += p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : p[0] < 0xF8 ? 4 : 1;
  else
    n += 1;
  return n;
}

/* listen when the buffer holds only part of a character: append what has
   come since, without waiting. */
static int
listen_rest(cl_object s)
{
  struct sockbuf *b = SB(s);
  size_t have = b->rlen - b->rpos, got;
  int code;
  memmove(b->rbuf, b->rbuf + b->rpos, have);
  b->rpos = 0;
  b->rlen = have;
  code = eclsock_tp_recv(b->tls, FD(s), b->rbuf + have, b->rcap - have,
                         MSG_DONTWAIT, &got);
  if (code == EAGAIN || code == EWOULDBLOCK)
    return ECL_LISTEN_NO_CHAR;
  if (code || got == 0)
    return ECL_LISTEN_AVAILABLE;  /* the read reports the error or EOF */
  b->rlen += got;
  note(b);
  return b->rlen < char_octets(b, b->rbuf, b->rlen) ? ECL_LISTEN_NO_CHAR
    : ECL_LISTEN_AVAILABLE;
}

static int
sb_listen(cl_object s)
{
  struct sockbuf *b = SB(s);
  ssize_t r;
  if (s->stream.byte_stack != ECL_NIL)
    return ECL_LISTEN_AVAILABLE;
  if (b->rpos < b->rlen) {
    if ((b->utf8 || b->crlf)
        && b->rlen - b->rpos < char_octets(b, b->rbuf + b->rpos, b->rlen - b->rpos))
      return listen_rest(s);    /* read-char-no-hang must not wait for the rest */
    return ECL_LISTEN_AVAILABLE;
  }
  if (b->shut_rd)
    return ECL_LISTEN_EOF;
  if (b->read_err)
    return ECL_LISTEN_AVAILABLE;  /* the read will not wait: it signals */
  r = fill(s, MSG_DONTWAIT);
  if (r < 0)
    return ECL_LISTEN_NO_CHAR;
  return r == 0 ? ECL_LISTEN_EOF : ECL_LISTEN_AVAILABLE;
}

/* Input readiness without waiting and without signalling, for
   socket-status: 1 input available, 0 none yet, -1 end of file (also after
   an error such as a reset, which the next read then signals). */
int
eclsock_stream_probe(cl_object s)
{
  struct sockbuf *b = SB(s);
  size_t got;
  int code;
  if (s->stream.byte_stack != ECL_NIL || b->rpos < b->rlen)
    return 1;
  if (b->shut_rd)
    return -1;
  rbuf_ready(b);
  if (b->read_err)
    return -1;
  code = eclsock_tp_recv(b->tls, FD(s), b->rbuf, b->rcap, MSG_DONTWAIT, &got);
  if (code == EAGAIN || code == EWOULDBLOCK)
    return 0;
  if (code) {
    /* As CLISP on Linux: the connection is at its end (a reset, say); the
       error is the next read's, once (then end of file), and writes get
       theirs from the kernel.  EPIPE means the peer had closed first:
       plain end of file. */
    if (code != EPIPE)
      b->read_err = code;
    return -1;
  }
  b->rpos = 0;
  b->rlen = got;
  if (got)
    note(b);
  return got ? 1 : -1;
}

static void
sb_clear_input(cl_object s)
{
  SB(s)->rpos = SB(s)->rlen = 0;
  s->stream.byte_stack = ECL_NIL;
}

/* -- Misc operations ---------------------------------------------------- */

static cl_object sb_nil(cl_object s) { (void)s; return ECL_NIL; }
static cl_object sb_set_position(cl_object s, cl_object p) { (void)s; (void)p; return ECL_NIL; }
static int sb_interactive_p(cl_object s) { (void)s; return 0; }
static int sb_input_p(cl_object s) { return !SB(s)->shut_rd; }
static int sb_output_p(cl_object s) { return !SB(s)->shut_wr; }

/* How long close waits, without progress, for the peer to take pending
   output; then the rest is dropped (a peer that stopped reading must not
   hang close, and ECL's close never passes :abort to the stream). */
#define CLOSE_STALL_SECONDS 5.0

/* Send what is buffered before closing, never blocking in send and never
   signalling: stops at the first error, or after CLOSE_STALL_SECONDS
   without progress. */
static void
flush_for_close(struct sockbuf *b, int fd)
{
  while (b->wlen) {
    if (send_some(b, fd))
      break;
    if (b->wlen
        && eclsock_tm_wait(fd, POLLOUT, eclsock_tm_deadline(CLOSE_STALL_SECONDS)))
      break;
  }
}

/* socket-status's epoll set (status.c registers streams in it, see
   eclsock_stream_status_token): the descriptor, and how many open streams
   were registered in it.  It lives here because a stream's close must
   leave it, and the last close of a registered stream closes it. */
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
    const cl_env_ptr env = ecl_process_env();
    int old = -1;
    ecl_disable_interrupts_env(env);
    if (pthread_mutex_trylock(&sset_lock) == 0) {
      if (__atomic_load_n(&sset_count, __ATOMIC_SEQ_CST) == 0) {
        old = sset_fd;
        __atomic_store_n(&sset_fd, -1, __ATOMIC_SEQ_CST);
      }
      pthread_mutex_unlock(&sset_lock);
    }
    ecl_enable_interrupts_env(env);
    if (old >= 0)
      (void)eclsock_os_close(old);
  }
}

/* A registered stream being closed leaves its poller by itself: out of
   the epoll set before its descriptor closes (a duplicate of it would
   keep the registration alive), and its slot goes to the poller's closed
   set, which the poller frees at its next call. */
static void
drop_watch(struct sockbuf *b, int fd)
{
  struct eclsock_watch *w = b->watch;
  const cl_env_ptr env = ecl_process_env();
  ecl_disable_interrupts_env(env);
  pthread_mutex_lock(&w->lock);
  if (b->watch == w) {
    if (w->epfd >= 0)
      (void)eclsock_os_epoll_ctl(w->epfd, ECLSOCK_EP_DEL, fd, 0, 0);
    if (b->in_mark) set_del(&w->in, b->wslot);
    if (b->out_mark) set_del(&w->out, b->wslot);
    set_add(&w->closed, b->wslot);
    b->in_mark = b->out_mark = 0;
    b->watch = NULL;
  }
  pthread_mutex_unlock(&w->lock);
  ecl_enable_interrupts_env(env);
}

/* close: send pending output (bounded, errors ignored: call finish-output
   to see them), shut the connection down when a thread is blocked reading
   or writing this stream, so that it wakes up (unless another descriptor
   shares the socket), close the descriptor exactly once, then let ECL mark the stream
   closed.  Never signals, so it is safe from finalizers and cleanups; an
   interrupt during the flush still closes the descriptor. */
static cl_object
sb_close(cl_object s)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  int fd = FD(s);
  if (fd >= 0) {
    ECL_UNWIND_PROTECT_BEGIN(env) {
      if (b->wlen && !b->shut_wr) {
        if (b->listed) {        /* the flusher must not send beside us */
          ecl_disable_interrupts_env(env);
          unlist(s, 0);
          ecl_enable_interrupts_env(env);
        }
        if (b->finalizing) {    /* what the socket takes, never waiting */
          size_t sent;
          (void)eclsock_tp_send_nowait(b->tls, fd, b->wbuf, b->wlen, &sent);
        } else {
          flush_for_close(b, fd);
        }
      }
    } ECL_UNWIND_PROTECT_EXIT {
      if (b->watch)
        drop_watch(b, fd);
      if (b->in_sset) {
        b->in_sset = 0;
        sset_leave(fd);
      }
      b->wlen = 0;
      ecl_disable_interrupts_env(env);
      unlist(s, 1);             /* the descriptor is -1 from here on */
      ecl_enable_interrupts_env(env);
      if (b->tls) {             /* close_notify (one try), free the session;
                                   the flusher no longer sees the stream */
        eclsock_tls *t = b->tls;
        b->tls = NULL;
        eclsock_tp_close(t, !b->finalizing && !b->shut_wr);
      }
      if (!b->shared && __atomic_load_n(&b->waiters, __ATOMIC_RELAXED) > 0)
        eclsock_os_shutdown_for_close(fd);
      (void)eclsock_os_close(fd);
    } ECL_UNWIND_PROTECT_END;
    /* nothing left for the finalizer: unregistered, the stream is garbage
       at the next GC instead of waiting for its finalizer to run */
    if (!b->finalizing)
      si_set_finalizer(s, ECL_NIL);
  }
  b->rpos = b->rlen = 0;
  return generic_close_fn(s);
}

/* Another descriptor (the host's, see ecl_sock_wrap_fd) shares the socket:
   close must only close ours, not shut the connection down. */
void
eclsock_stream_set_shared(cl_object s)
{
  SB(s)->shared = 1;
}

/* The GC finalizer: mark the stream so that close does not try to send
   (the peer may not be reading, and a finalizer must not block). */
static cl_object
sb_finalize(cl_object s)
{
  if (eclsock_stream_p(s))
    SB(s)->finalizing = 1;
  ecl_return0(ecl_process_env());
}

void
eclsock_stream_set_finalizing(cl_object s)
{
  SB(s)->finalizing = 1;
}

/* -- Construction ------------------------------------------------------- */

/* Choose the read-char fast path for the stream's external format. */
static void
setup_fast_path(cl_object s)
{
  struct sockbuf *b = SB(s);
  cl_object f = s->stream.format, enc = f, term = kw_lf;
  cl_object elt = s->stream.object0;
  if (ECL_CONSP(f)) {
    enc = ECL_CONS_CAR(f);
    if (ECL_CONSP(ECL_CONS_CDR(f)))
      term = ECL_CONS_CAR(ECL_CONS_CDR(f));
  }
  b->fast_limit = 0;
  b->utf8 = b->crlf = 0;
  if (elt == sym_character || elt == sym_base_char) {
    b->utf8 = (enc == kw_utf8);
    b->crlf = (term == kw_crlf);
    if (enc == kw_utf8 || enc == kw_us_ascii)
      b->fast_limit = 0x80;
    else if (enc == kw_latin1 || enc == kw_iso_8859_1)
      b->fast_limit = 0x100;
  }
  b->fast_cr = (term != kw_lf);
}

/* Put our operations into S's private dispatch table (again after its
   element type or external format changed). */
static void
install_ops(cl_object s)
{
  struct ecl_file_ops *ops = s->stream.ops;
  struct sockbuf *b = SB(s);
  if (ops->read_char != sb_read_char)
    b->orig_read_char = ops->read_char;
  if (ops->read_vector != sb_read_vector)
    b->orig_read_vector = ops->read_vector;
  ops->read_byte8 = sb_read_byte8;
  ops->write_byte8 = sb_write_byte8;
  ops->read_vector = sb_read_vector;
  ops->listen = sb_listen;
  ops->clear_input = sb_clear_input;
  ops->clear_output = sb_clear_output;
  if (ops->write_char != sb_write_char)
    b->orig_write_char = ops->write_char;
  ops->write_char = sb_write_char;
  ops->force_output = sb_force_output;
  ops->finish_output = sb_finish_output;
  ops->get_position = sb_nil;
  ops->set_position = sb_set_position;
  ops->length = sb_nil;
  ops->interactive_p = sb_interactive_p;
  ops->input_p = sb_input_p;
  ops->output_p = sb_output_p;
  ops->close = sb_close;
  setup_fast_path(s);
  if (b->fast_limit)
    ops->read_char = sb_read_char;
  if (s->stream.byte_size == 8
      && (s->stream.flags & ECL_STREAM_FORMAT) == ECL_STREAM_BINARY
      && !(s->stream.flags & ECL_STREAM_SIGNED_BYTES)) {
    ops->read_byte = sb_read_byte_u8;
    ops->write_byte = sb_write_byte_u8;
  }
}

/* ECL's view of ELTTYPE/EXTFMT: byte size, flags and format argument. */
static cl_fixnum
normalize_type(cl_object elttype, cl_object *extfmt, int *flags)
{
  cl_fixnum bs = ecl_normalize_stream_element_type(elttype);
  if (bs == 0) {                /* characters, octets underneath */
    *flags = ECL_STREAM_DEFAULT_FORMAT;
    if (Null(*extfmt))
      *extfmt = ecl_make_keyword("DEFAULT");
    return 8;
  }
  *flags = ECL_STREAM_BINARY;
  *extfmt = ECL_NIL;
  return bs;
}

/* A socket stream over FD, which it then owns.  ELTTYPE is character,
   (unsigned-byte 8) and the like; EXTFMT an ECL external format or NIL;
   HOST and PORT are what socket-stream-host/-port report; NAME is the
   stream's name for printing. */
cl_object
eclsock_stream_make(int fd, cl_object elttype, cl_object extfmt, int buffered,
                    cl_object host, cl_object port, cl_object name)
{
  int flags;
  cl_fixnum bs = normalize_type(elttype, &extfmt, &flags);
  cl_object s = ecl_make_file_stream_from_fd(name, fd, ecl_smm_io, bs, flags,
                                             extfmt);
  struct sockbuf *b = ecl_alloc(sizeof *b);
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->wlock, NULL);
  b->host = host;
  b->port = port;
  b->charfmt = (flags == ECL_STREAM_BINARY) ? ECL_NIL : extfmt;
  b->buffered = buffered;
  s->stream.buffer = (char *)b;
  b->ops = *s->stream.ops;          /* ECL never replaces a file stream's table */
  s->stream.ops = &b->ops;
  install_ops(s);
  si_set_finalizer(s, finalizer_fn);
  return s;
}

/* Give S the element type and external format of FROM: the fields ECL's
   own constructor fills for them (set-element-type and the TLS switch). */
static void
copy_encoding(cl_object s, cl_object from)
{
  s->stream.object0 = from->stream.object0;
  s->stream.format = from->stream.format;
  s->stream.format_table = from->stream.format_table;
  s->stream.encoder = from->stream.encoder;
  s->stream.decoder = from->stream.decoder;
  s->stream.flags = from->stream.flags;
  s->stream.byte_size = from->stream.byte_size;
}

/* Change the element type (and external format) of a live stream, as
   CLISP's (setf stream-element-type) does.  Buffered input stays. */
void
eclsock_stream_set_element_type(cl_object s, cl_object elttype, cl_object extfmt)
{
  int flags;
  cl_fixnum bs;
  cl_object t;
  if (Null(extfmt))
    extfmt = SB(s)->charfmt;          /* back to characters: the old format */
  bs = normalize_type(elttype, &extfmt, &flags);
  t = ecl_make_file_stream_from_fd(s->stream.object1, -1, ecl_smm_io,
                                             bs, flags, extfmt);
  si_set_finalizer(t, ECL_NIL);
  *s->stream.ops = *t->stream.ops;
  copy_encoding(s, t);
  SB(s)->orig_read_char = NULL;
  SB(s)->orig_write_char = NULL;
  if (flags != ECL_STREAM_BINARY)
    SB(s)->charfmt = extfmt;
  install_ops(s);
  t->stream.closed = 1;
}

/* The TLS switch (make-ssl-client-stream and -server-stream, Allegro's
   way): a new stream on OLD's descriptor with OLD's element type, external
   format, buffering, names and dispatch table, whose transport is T.  OLD
   sends its pending output (plaintext, before the handshake) and is then
   closed without closing the descriptor, so using it afterwards is a
   closed-stream error.  Input OLD has read ahead would be lost under TLS:
   the caller checks eclsock_stream_buffered_input first. */
cl_object
eclsock_stream_move_to_tls(cl_object old, eclsock_tls *t)
{
  struct sockbuf *ob = SB(old), *b;
  int fd = FD(old);
  cl_object s;
  eclsock_stream_flush(old, 0);
  s = ecl_make_file_stream_from_fd(old->stream.object1, fd, ecl_smm_io, 8,
                                   ECL_STREAM_BINARY, ECL_NIL);
  si_set_finalizer(s, ECL_NIL);
  b = ecl_alloc(sizeof *b);
  *b = *ob;                         /* settings; ops = OLD's table */
  pthread_mutex_init(&b->wlock, NULL);
  b->watch = NULL;                  /* in no poller, no socket-status set */
  b->in_mark = b->out_mark = 0;
  b->status_token = 0;
  b->in_sset = 0;
  b->rbuf = b->wbuf = NULL;
  b->rpos = b->rlen = b->wlen = b->rcap = b->wcap = 0;
  b->waiters = 0;
  b->listed = 0;                    /* not on the flusher's list yet */
  b->read_err = 0;
  b->flush_next = NULL;
  s->stream.buffer = (char *)b;
  s->stream.ops = &b->ops;
  copy_encoding(s, old);
  install_ops(s);
  b->tls = t;
  si_set_finalizer(s, finalizer_fn);
  /* OLD lets go of the descriptor: closed, without closing it (and off
     the flusher's list first) */
  ecl_disable_interrupts_env(ecl_process_env());
  unlist(old, 1);
  ecl_enable_interrupts_env(ecl_process_env());
  if (ob->watch)                    /* OLD leaves its poller as on close */
    drop_watch(ob, fd);
  if (ob->in_sset) {
    ob->in_sset = 0;
    sset_leave(fd);
  }
  ob->wlen = ob->rpos = ob->rlen = 0;
  si_set_finalizer(old, ECL_NIL);
  generic_close_fn(old);
  return s;
}

eclsock_tls *
eclsock_stream_tls(cl_object x)
{
  return SB(x)->tls;
}

/* -- Queries ------------------------------------------------------------ */

int
eclsock_stream_p(cl_object x)
{
  /* socket-status asks this for every listed object: look at the stream
     object only (any other stream's table is not its buffer) */
  return ECL_ANSI_STREAM_P(x) && (void *)x->stream.ops == (void *)x->stream.buffer;
}

/* The descriptor, or -1 when closed. */
int
eclsock_stream_fd(cl_object x)
{
  return x->stream.closed ? -1 : FD(x);
}

/* True when input is waiting inside the stream (no system call needed). */
int
eclsock_stream_buffered_input(cl_object x)
{
  struct sockbuf *b = SB(x);
  return x->stream.byte_stack != ECL_NIL || b->rpos < b->rlen
    || (b->tls && eclsock_tp_pending(b->tls));
}

/* Octets written but not yet handed to the kernel. */
size_t
eclsock_stream_pending(cl_object x)
{
  return __atomic_load_n(&SB(x)->wlen, __ATOMIC_RELAXED);
}

/* Register S with poller W at SLOT (W's lock held).  Returns 0, or EEXIST
   when S is in a poller already.  What S holds now gets marked. */
int
eclsock_stream_watch(cl_object s, struct eclsock_watch *w, int slot)
{
  struct sockbuf *b = SB(s);
  if (b->watch)
    return EEXIST;
  b->wslot = slot;
  b->in_mark = b->out_mark = 0;
  __atomic_store_n(&b->watch, w, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  /* pairs with note() */
  mark_locked(b);
  return 0;
}

/* Take S out of its poller's sets (its lock held). */
void
eclsock_stream_unwatch(cl_object s)
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
eclsock_stream_watcher(cl_object s, int *slot)
{
  struct sockbuf *b = SB(s);
  *slot = b->wslot;
  return b->watch;
}

/* The poller took S's slot out of its sets (its lock held): clear the
   marks, saying in *IN / *OUT which were set. */
void
eclsock_stream_unmark(cl_object s, int *in, int *out)
{
  struct sockbuf *b = SB(s);
  *in = b->in_mark;
  *out = b->out_mark;
  b->in_mark = b->out_mark = 0;
}

/* Mark S again by what it holds now (the poller, without its lock). */
void
eclsock_stream_note(cl_object s)
{
  note(SB(s));
}

/* socket-status's epoll registration of S: the token it was made with (0:
   none); a nonzero TOKEN sets it (the socket-status set's lock held). */
uint64_t
eclsock_stream_status_token(cl_object s, uint64_t token)
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
eclsock_stream_sset_acquire(int *fresh)
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
eclsock_stream_sset_release(void)
{
  int old = -1;
  if (__atomic_load_n(&sset_count, __ATOMIC_SEQ_CST) == 0) {
    old = sset_fd;
    __atomic_store_n(&sset_fd, -1, __ATOMIC_SEQ_CST);
  }
  pthread_mutex_unlock(&sset_lock);
  return old;
}

/* Close what eclsock_stream_sset_release returned (interrupts enabled). */
void
eclsock_stream_sset_close(int fd)
{
  if (fd >= 0)
    (void)eclsock_os_close(fd);
}

cl_object eclsock_stream_host(cl_object x) { return SB(x)->host; }
cl_object eclsock_stream_port(cl_object x) { return SB(x)->port; }
int eclsock_stream_get_buffered(cl_object x) { return SB(x)->buffered; }

void
eclsock_stream_set_buffered(cl_object x, int buffered)
{
  if (!buffered)
    eclsock_stream_flush(x, 0);
  SB(x)->buffered = buffered;
}

/* shutdown(2) one or both directions.  Pending output is sent first; the
   stream then stops being an input and/or output stream. */
void
eclsock_stream_shutdown(cl_object s, int how)
{
  struct sockbuf *b = SB(s);
  int code;
  if (how != SHUT_RD)
    eclsock_stream_flush(s, 0);
  code = eclsock_tp_shutdown(b->tls, FD(s), how);
  if (code && code != ENOTCONN)
    raise_io(s, "shutdown", code);
  if (how != SHUT_WR) {
    b->shut_rd = 1;
    b->rpos = b->rlen = 0;
  }
  if (how != SHUT_RD)
    b->shut_wr = 1;
}

/* Make a stream for one direction only (SB-BSD-SOCKETS' socket-make-stream
   with :input or :output alone): the other direction is refused as after
   a shutdown, but the connection itself is left alone. */
void
eclsock_stream_restrict(cl_object s, int input, int output)
{
  struct sockbuf *b = SB(s);
  if (!input)
    b->shut_rd = 1;
  if (!output)
    b->shut_wr = 1;
}

/* -- Module setup ------------------------------------------------------- */

void
eclsock_stream_init(void)
{
  cl_object t;
  int fd;
  if (generic_close_fn)
    return;
  sym_character = ecl_make_symbol("CHARACTER", "CL");
  sym_base_char = ecl_make_symbol("BASE-CHAR", "CL");
  kw_lf = ecl_make_keyword("LF");
  kw_crlf = ecl_make_keyword("CRLF");
  kw_utf8 = ecl_make_keyword("UTF-8");
  kw_us_ascii = ecl_make_keyword("US-ASCII");
  kw_latin1 = ecl_make_keyword("LATIN-1");
  kw_iso_8859_1 = ecl_make_keyword("ISO-8859-1");
  /* A template stream on a throwaway descriptor: once closed, its close
     operation is ECL's generic_close, which ours ends with. */
  if (eclsock_os_open_null(&fd))
    FEerror("ecl-sock: cannot open /dev/null", 0);
  t = ecl_make_file_stream_from_fd(ecl_make_constant_base_string("template", -1),
                                   fd, ecl_smm_io, 8, ECL_STREAM_BINARY, ECL_NIL);
  si_set_finalizer(t, ECL_NIL);
  t->stream.ops->close(t);
  generic_close_fn = t->stream.ops->close;
  flusher_cond_init();
  ecl_register_root(&fl_head);
  pthread_atfork(fl_prepare, fl_parent, fl_child);
  finalizer_fn = ecl_make_cfun((cl_objectfn_fixed)sb_finalize,
                               eclsock_sym("%FINALIZE-SOCKET-STREAM"), ECL_NIL, 1);
  ecl_register_root(&finalizer_fn);
}
