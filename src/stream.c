/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * stream.c - the buffered socket stream of ecl-sock: its operations,
 * construction and close.
 *
 * Owns: one real ECL stream per connection.  It is made with ECL's own
 * fd stream constructor (eclcompat.c; so element types, external formats,
 * read-line, format, read-sequence all stay ECL's) and its private copy of
 * the dispatch table gets our buffered operations:
 *
 *  - reads fill an input buffer with one recv and serve read-char,
 *    read-byte and read-sequence from it; read-char decodes ASCII (UTF-8)
 *    or Latin-1 octets straight from the buffer and leaves everything else
 *    to ECL's decoder;
 *  - writes collect in an output buffer sent on an explicit force-output
 *    or finish-output, when full, before any blocking read on the same
 *    stream, and at the latest 2 ms after they were written (flush.c);
 *    the flushes ECL does by itself (terpri, write-line, format's ~%,
 *    print) only hold (eclcompat.c tells them apart);
 *  - a send that times out or fails keeps the octets it did not send,
 *    in order, for the next write, force-output or the flusher: what the
 *    peer receives is always a prefix of what the program wrote;
 *  - every wait (for room to send, for input) is bounded by the socket's
 *    send or receive timeout, and no lock is held across a wait;
 *  - close follows the protocol of stream-private.h (life.c): from any
 *    thread, it wakes the threads blocked on the stream and frees the TLS
 *    session and the descriptor only after the last of them has left.
 *
 * Buffers are allocated on first use, so idle connections cost no memory,
 * and start small (BUF_START), then grow (x16, up to 64 KiB; output kept
 * after a timeout may need more).  Underneath the buffers is the transport
 * (tls.c): the plain descriptor or a TLS session; every send and recv here
 * goes through it (eclsock_tp_*), so the rules are the same over TLS.
 * Must not: use any stream field that ECL's io_file code does not leave to
 * us (we keep our state behind stream.buffer, which ECL leaves unused for
 * these streams and the GC traces), or call ECL internals other than
 * through eclcompat.c.
 */
#include "stream-private.h"
#include <errno.h>
#include <string.h>

#define RBUF_SIZE 65536
#define WBUF_SIZE 65536
#define BUF_START 256               /* first size of both buffers, */
#define BUF_GROWTH 16               /* then 4 KiB, then 64 KiB */
#define DIRECT_MIN 16384            /* reads and writes this long skip the buffers */
/* How long close waits, without progress, for the peer to take pending
   output; then the rest is dropped (a peer that stopped reading must not
   hang close, and ECL's close never passes :abort to the stream). */
#define CLOSE_STALL_SECONDS 5.0

#define FD(s) (SB(s)->fd)

static cl_object finalizer_fn = ECL_NIL;

static void install_ops(cl_object s);

/* Symbols compared against at every stream creation, interned once in
   eclsock_stream_init (by name, each would cost a package lookup). */
static cl_object sym_character, sym_base_char, sym_unsigned_byte,
  sym_signed_byte, kw_lf, kw_crlf, kw_utf8, kw_us_ascii, kw_latin1,
  kw_iso_8859_1;

/* Entered sections (stream-private.h): ENTERED_BEGIN(env, b) { ... }
   ENTERED_ELSE(b) { ... } runs the first block inside B, left also when a
   Lisp interrupt unwinds it, or the second when B is closing.  Locals the first block changes
   must be volatile. */
#define ENTERED_BEGIN(env, b)                           \
  if (sb_enter(b)) {                                    \
    ECL_UNWIND_PROTECT_BEGIN(env)
#define ENTERED_ELSE(b)                                 \
    ECL_UNWIND_PROTECT_EXIT {                           \
      eclsock_life_leave(b);                            \
    } ECL_UNWIND_PROTECT_END;                           \
  } else

/* The output lock, taken with Lisp interrupts held off (nothing under it
   waits, so none is delayed for long). */
#define WLOCK(env, b) do { ecl_disable_interrupts_env(env);     \
    pthread_mutex_lock(&(b)->wlock); } while (0)
#define WUNLOCK(env, b) do { pthread_mutex_unlock(&(b)->wlock); \
    ecl_enable_interrupts_env(env); } while (0)

static int
is_open(struct sockbuf *b)
{
  return __atomic_load_n(&b->state, __ATOMIC_SEQ_CST) == ST_OPEN;
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

/* Make room for NEED more octets of pending output (WLOCK held): the
   pending octets move to the front, and the buffer grows when they do not
   fit (x16 up to WBUF_SIZE; beyond it exactly, for kept octets). */
static void
wbuf_reserve(struct sockbuf *b, size_t need)
{
  size_t have = PENDING(b), cap = b->wcap ? b->wcap : BUF_START;
  unsigned char *w;
  if (b->whead && b->wlen + need > b->wcap) {
    memmove(b->wbuf, b->wbuf + b->whead, have);
    b->whead = 0;
    b->wlen = have;
  }
  if (have + need <= b->wcap)
    return;
  while (cap < have + need && cap < WBUF_SIZE)
    cap *= BUF_GROWTH;
  if (cap < have + need)
    cap = have + need;
  w = ecl_alloc_atomic(cap);
  if (have)
    memcpy(w, b->wbuf + b->whead, have);
  b->wbuf = w;
  b->wcap = cap;
  b->whead = 0;
  b->wlen = have;
}

/* Append N octets at C to the pending output (WLOCK held). */
static void
wbuf_append(struct sockbuf *b, const unsigned char *c, size_t n)
{
  if (b->wlen + n > b->wcap)
    wbuf_reserve(b, n);
  memcpy(b->wbuf + b->wlen, c, n);
  b->wlen += n;
}

/* Output is pending and nobody sends it: the flusher does (WLOCK held).
   0 when it cannot (no flusher thread). */
static int
hold_locked(struct sockbuf *b)
{
  return b->listed || !PENDING(b) || eclsock_flush_hold(b);
}

/* Send pending output under WLOCK without waiting.  *LEFT says whether
   some stays.  Returns 0 or the send's error. */
static int
send_pending(struct sockbuf *b, int *left)
{
  const cl_env_ptr env = ecl_process_env();
  int code = 0;
  WLOCK(env, b);
  if (!is_open(b))
    code = EBADF;
  else if (PENDING(b))
    code = eclsock_flush_send_pending(b);
  *left = PENDING(b) > 0;
  WUNLOCK(env, b);
  return code;
}

/* Keep the N octets at C that a failed or timed-out write did not send
   after the pending output, for the next write, force-output or the
   flusher (no hole in what the peer receives). */
static void
keep_unsent(struct sockbuf *b, const unsigned char *c, size_t n)
{
  const cl_env_ptr env = ecl_process_env();
  WLOCK(env, b);
  if (is_open(b)) {
    if (n)
      wbuf_append(b, c, n);
    (void)hold_locked(b);
  }
  WUNLOCK(env, b);
}

/* Send B's pending output, waiting for room when the socket is full, never
   holding WLOCK while it waits.  For a write (FOR_READ 0) the wait is
   bounded by SO_SNDTIMEO; before a read (FOR_READ 1) by SO_RCVTIMEO, the
   read's own bound, and it also ends when input comes (what is left then
   stays pending and held).  B is entered.  Returns 0, the send's error or
   ECLSOCK_ETIMEOUT. */
static int
push_pending(struct sockbuf *b, int for_read)
{
  eclsock_deadline dl = ECLSOCK_NO_DEADLINE;
  int have_dl = 0;
  for (;;) {
    struct pollfd p;
    int code, left, n;
    if ((code = send_pending(b, &left)) || !left)
      return code;
    if (!have_dl) {
      dl = eclsock_os_sock_deadline(b->fd, for_read ? SO_RCVTIMEO : SO_SNDTIMEO);
      have_dl = 1;
    }
    p.fd = b->fd;
    p.events = for_read ? POLLIN | POLLOUT : POLLOUT;
    p.revents = 0;
    if ((code = eclsock_tm_poll(&p, 1, dl, &n)))
      return code;
    if (for_read && (p.revents & (POLLIN | POLLHUP | POLLERR)))
      return 0;
  }
}

/* Send the pending output, then the N octets at C (C may be NULL; small
   ones are buffered once the pending output is out, on a buffered
   stream).  Waits for room at most the socket's send timeout (SO_SNDTIMEO,
   none by default), never holding WLOCK while it waits.  On a timeout, an
   error or an interrupt that unwinds it, the octets not sent stay pending,
   in order.  Returns 0 or an error code (EBADF: the stream was closed by
   another thread); never signals. */
static int
write_through(cl_object s, const unsigned char *c, size_t n)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  volatile int code = EBADF;
  volatile size_t done = 0;             /* octets of C sent or buffered */
  ENTERED_BEGIN(env, b) {
    code = push_pending(b, 0);
    if (!code && done < n) {
      if (b->buffered && n < DIRECT_MIN) {
        keep_unsent(b, c, n);           /* buffered, and held */
        done = n;
      } else {
        size_t k = 0;
        code = eclsock_tp_send_all(b->tls, b->fd, c, n, &k);
        done = k;
      }
    }
  } ECL_UNWIND_PROTECT_EXIT {
    if (done < n && is_open(b))
      keep_unsent(b, c + done, n - done);
    eclsock_life_leave(b);
  } ECL_UNWIND_PROTECT_END;
  } else {
    return EBADF;
  }
  if (code && !is_open(b))
    code = EBADF;
  return code;
}

static void
check_writable(cl_object s)
{
  if (SB(s)->shut_wr)
    eclsock_raise("write", ESHUTDOWN, ECL_NIL, ECL_NIL, s);
}

static cl_index
sb_write_byte8(cl_object s, unsigned char *c, cl_index n)
{
  struct sockbuf *b = SB(s);
  int code;
  check_writable(s);
  if (b->buffered && n < DIRECT_MIN) {  /* longer ones are sent, not copied */
    int done = 0, fresh = 0, held = 1;
    const cl_env_ptr env = ecl_process_env();
    WLOCK(env, b);
    if (ecl_unlikely(b->wlen + n > b->wcap) && PENDING(b) + n <= WBUF_SIZE)
      wbuf_reserve(b, n);
    if (b->wlen + n <= b->wcap && is_open(b)) {
      fresh = !PENDING(b);
      memcpy(b->wbuf + b->wlen, c, n);
      b->wlen += n;
      held = hold_locked(b);
      done = 1;
    }
    WUNLOCK(env, b);
    if (done) {
      if (fresh)
        eclsock_marks_note(b);          /* output pending: the poller pushes it */
      if (!held)                        /* no flusher: send it now */
        eclsock_stream_flush(s);
      return n;
    }
  }
  code = write_through(s, c, n);
  if (code)
    raise_io(s, "send", code);
  return n;
}

/* Send pending output, waiting for room up to the send timeout. */
void
eclsock_stream_flush(cl_object s)
{
  struct sockbuf *b = SB(s);
  int code;
  if (!__atomic_load_n(&b->wlen, __ATOMIC_RELAXED) || !is_open(b))
    return;
  code = write_through(s, NULL, 0);
  if (code)
    raise_io(s, "send", code);
}

/* Send what the socket takes of the pending output now and keep the rest,
   for socket-status and the poller before their wait.  Never blocks and
   never signals: a send error stays for the next write or force-output. */
void
eclsock_stream_flush_some(cl_object s)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  if (!__atomic_load_n(&b->wlen, __ATOMIC_RELAXED))
    return;
  ecl_disable_interrupts_env(env);      /* nothing here waits */
  if (sb_enter(b)) {
    pthread_mutex_lock(&b->wlock);
    if (PENDING(b))
      (void)eclsock_flush_send_pending(b);
    pthread_mutex_unlock(&b->wlock);
    eclsock_life_leave(b);
  }
  ecl_enable_interrupts_env(env);
}

static void
sb_force_output(cl_object s)
{
  struct sockbuf *b = SB(s);
  if (b->wlen && b->buffered) {
    int kind = eclsock_ecl_flush_site(__builtin_return_address(0));
    if (kind == ECLSOCK_SITE_SOFT) {
      const cl_env_ptr env = ecl_process_env();
      int held;
      WLOCK(env, b);
      held = hold_locked(b);
      WUNLOCK(env, b);
      if (held)
        return;                 /* soft: held, see eclcompat.c */
    }
  }
  eclsock_stream_flush(s);
}

/* finish-output of ECL's C code (ecl_finish_output): always at once. */
static void
sb_finish_output(cl_object s)
{
  eclsock_stream_flush(s);
}

static void
sb_clear_output(cl_object s)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  WLOCK(env, b);
  if (!eclsock_tp_write_pending(b->tls))  /* a half-sent TLS record stays */
    b->whead = b->wlen = 0;
  WUNLOCK(env, b);
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

/* recv into P (N octets) for a read that may block: pending output goes
   first (the peer may wait for it before answering).  B is entered.  0 or
   an error code. */
static int
recv_blocking(struct sockbuf *b, unsigned char *p, size_t n, size_t *got,
              const char **op)
{
  int code = 0;
  *got = 0;
  *op = "send";
  if (PENDING(b))
    code = push_pending(b, 1);
  if (code == ECLSOCK_ETIMEOUT || !code)
    *op = "recv";               /* the read's own timeout */
  if (!code)
    code = eclsock_tp_recv(b->tls, b->fd, p, n, 0, got);
  return code;
}

/* Refill the input buffer with one recv.  FLAGS may hold MSG_DONTWAIT.
   Returns the octets read (0 = EOF, also when another thread closed the
   stream), or -1 when a non-blocking try found nothing.  Signals on
   errors. */
static ssize_t
fill(cl_object s, int flags)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  volatile size_t got = 0;
  volatile int code = 0;
  const char *volatile op = "recv";
  if (b->shut_rd)
    return 0;
  if (b->read_err) {
    code = b->read_err;
    b->read_err = 0;
    raise_io(s, "recv", code);
  }
  rbuf_ready(b);
  ENTERED_BEGIN(env, b) {
    size_t k = 0;
    const char *o = "recv";
    if (flags & MSG_DONTWAIT)
      code = eclsock_tp_recv(b->tls, b->fd, b->rbuf, b->rcap, flags, &k);
    else
      code = recv_blocking(b, b->rbuf, b->rcap, &k, &o);
    got = k;
    op = o;
  } ENTERED_ELSE(b) {
    return 0;                   /* closed by another thread: end of file */
  }
  if (!is_open(b))
    return 0;
  if (code == EAGAIN || code == EWOULDBLOCK)
    return -1;
  if (code)
    raise_io(s, op, code);
  b->rpos = 0;
  b->rlen = got;
  if (!got && eclsock_tp_take_truncation(b->tls))
    eclsock_signal_truncation(s);     /* EOF all the same, unless handled */
  if (got)
    eclsock_marks_note(b);      /* what the reader leaves, the poller sees */
  return (ssize_t)got;
}

/* A large read straight into the caller's memory: the octets read (0 at
   end of file or when the stream was closed by another thread). */
static size_t
read_direct(cl_object s, unsigned char *c, size_t n)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  volatile size_t got = 0;
  volatile int code = 0;
  const char *volatile op = "recv";
  ENTERED_BEGIN(env, b) {
    size_t k = 0;
    const char *o;
    code = recv_blocking(b, c, n, &k, &o);
    got = k;
    op = o;
  } ENTERED_ELSE(b) {
    return 0;
  }
  if (!is_open(b))
    return 0;
  if (code)
    raise_io(s, op, code);
  if (!got && eclsock_tp_take_truncation(b->tls))
    eclsock_signal_truncation(s);
  return got;
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
      size_t got = read_direct(s, c, n);
      if (!got)
        break;
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
    WLOCK(env, b);
    /* pending (so listed and noted already), room at the end, open */
    if (b->listed && PENDING(b) && b->wlen < b->wcap && is_open(b)) {
      b->wbuf[b->wlen++] = c;
      done = 1;
    }
    WUNLOCK(env, b);
    if (done)
      return;
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

/* listen when the buffer holds only part of a character: append what has
   come since, without waiting. */
static int
listen_rest(cl_object s)
{
  struct sockbuf *b = SB(s);
  size_t have = b->rlen - b->rpos, got = 0;
  int code = EBADF;
  const cl_env_ptr env = ecl_process_env();
  memmove(b->rbuf, b->rbuf + b->rpos, have);
  b->rpos = 0;
  b->rlen = have;
  ecl_disable_interrupts_env(env);      /* a non-blocking recv */
  if (sb_enter(b)) {
    code = eclsock_tp_recv(b->tls, b->fd, b->rbuf + have, b->rcap - have,
                           MSG_DONTWAIT, &got);
    eclsock_life_leave(b);
  }
  ecl_enable_interrupts_env(env);
  if (code == EAGAIN || code == EWOULDBLOCK)
    return ECL_LISTEN_NO_CHAR;
  if (code || got == 0)
    return ECL_LISTEN_AVAILABLE;  /* the read reports the error or EOF */
  b->rlen += got;
  eclsock_marks_note(b);
  return sb_partial_char(b) ? ECL_LISTEN_NO_CHAR : ECL_LISTEN_AVAILABLE;
}

/* listen, and so read-char-no-hang: never waits, also when what has come
   (buffered before, or received here) is only part of a character. */
static int
sb_listen(cl_object s)
{
  struct sockbuf *b = SB(s);
  ssize_t r;
  if (s->stream.byte_stack != ECL_NIL)
    return ECL_LISTEN_AVAILABLE;
  if (b->rpos < b->rlen)
    return sb_partial_char(b) ? listen_rest(s) : ECL_LISTEN_AVAILABLE;
  if (b->shut_rd)
    return ECL_LISTEN_EOF;
  if (b->read_err)
    return ECL_LISTEN_AVAILABLE;  /* the read will not wait: it signals */
  r = fill(s, MSG_DONTWAIT);
  if (r < 0)
    return ECL_LISTEN_NO_CHAR;
  if (r == 0)
    return ECL_LISTEN_EOF;
  return sb_partial_char(b) ? ECL_LISTEN_NO_CHAR : ECL_LISTEN_AVAILABLE;
}

/* Input readiness without waiting and without signalling, for
   socket-status: 1 input available, 0 none yet (or only part of a
   character: a read would wait for the rest), -1 end of file (also after
   an error such as a reset, which the next read then signals, and once
   another thread closes the stream). */
int
eclsock_stream_probe(cl_object s)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  size_t got = 0;
  int code = EBADF;
  if (s->stream.byte_stack != ECL_NIL || sb_has_input(b))
    return 1;
  if (b->rpos < b->rlen)        /* part of a character: ready once the rest
                                   is here (or the read would not wait) */
    return listen_rest(s) == ECL_LISTEN_NO_CHAR ? 0 : 1;
  if (b->shut_rd)
    return -1;
  rbuf_ready(b);
  if (b->read_err)
    return -1;
  ecl_disable_interrupts_env(env);      /* a non-blocking recv */
  if (sb_enter(b)) {
    code = eclsock_tp_recv(b->tls, b->fd, b->rbuf, b->rcap, MSG_DONTWAIT, &got);
    eclsock_life_leave(b);
  }
  ecl_enable_interrupts_env(env);
  if (code == EBADF && !is_open(b))
    return -1;
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
    eclsock_marks_note(b);
  return !got ? -1 : sb_partial_char(b) ? 0 : 1;
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

/* -- Close --------------------------------------------------------------- */

/* Send what is pending before closing, never signalling: stops at the
   first error, after CLOSE_STALL_SECONDS without progress, or after one
   try when the GC's finalizer closes (it must not wait) or when other
   threads are inside the stream (a writer blocked on a peer that does not
   read, a reader the close must wake: neither waits for the peer).  The
   closer is inside the stream (life.c), so it may send. */
static void
flush_for_close(struct sockbuf *b)
{
  int once = b->finalizing || eclsock_life_others(b);
  const cl_env_ptr env = ecl_process_env();
  for (;;) {
    int left = 0, code;
    WLOCK(env, b);
    code = PENDING(b) ? eclsock_flush_send_pending(b) : 0;
    left = PENDING(b) > 0;
    WUNLOCK(env, b);
    if (code || !left || once)
      return;
    if (eclsock_tm_wait(b->fd, POLLOUT, eclsock_tm_deadline(CLOSE_STALL_SECONDS)))
      return;
  }
}

/* B lets go of what others hold of it: the flusher's lists (what is
   still pending is dropped) and its poller.  Interrupts disabled. */
static void
detach(struct sockbuf *b)
{
  pthread_mutex_lock(&b->wlock);
  eclsock_flush_unlist(b);
  b->whead = b->wlen = 0;
  pthread_mutex_unlock(&b->wlock);
  eclsock_marks_drop(b);
}

/* close, from any thread (the protocol of stream-private.h): send pending
   output (bounded, errors ignored: call finish-output to see them), take
   the stream off the flusher and out of its poller, wake the threads
   inside or waiting on it (shutdown, unless another descriptor shares the
   socket), release the TLS session and the descriptor once they have
   left, then let ECL mark the stream closed.  Never signals, so it is safe
   from finalizers and cleanups; an interrupt during the flush still
   closes. */
static cl_object
sb_close(cl_object s)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  int closer;
  ecl_disable_interrupts_env(env);
  closer = eclsock_life_begin_close(b);
  ecl_enable_interrupts_env(env);
  if (closer) {
    ECL_UNWIND_PROTECT_BEGIN(env) {
      if (PENDING(b) && !b->shut_wr)
        flush_for_close(b);
    } ECL_UNWIND_PROTECT_EXIT {
      ecl_disable_interrupts_env(env);
      if (!b->shared && b->fd >= 0
          && (eclsock_life_others(b) || eclsock_marks_watched(b))) {
        eclsock_os_shutdown_for_close(b->fd);   /* wake them */
        eclsock_life_woke(b);
      }
      detach(b);
      eclsock_life_end_close(b);
      s->stream.file.descriptor = -1;   /* ECL's field: ours is b->fd */
      ecl_enable_interrupts_env(env);
    } ECL_UNWIND_PROTECT_END;
    /* nothing left for the finalizer: unregistered, the stream is garbage
       at the next GC instead of waiting for its finalizer to run */
    if (!b->finalizing)
      si_set_finalizer(s, ECL_NIL);
    b->rpos = b->rlen = 0;
  }
  return eclsock_ecl_generic_close(s);
}

/* Another descriptor (the host's, see ecl_sock_wrap_fd) shares the socket:
   close must only close ours, not shut the connection down. */
void
eclsock_stream_set_shared(cl_object s)
{
  SB(s)->shared = 1;
}

/* The GC finalizer closes a dropped stream, marked first so that close
   does not wait for the peer (it may not be reading, and a finalizer must
   not block); through eclsock_ecl_finalize, which keeps the interrupted
   thread's values array (ECL's own close of the stream, after ours, finds
   it closed). */
static void
close_dropped(cl_object s)
{
  if (!eclsock_stream_p(s))
    return;
  SB(s)->finalizing = 1;
  (void)cl_close(1, s);
}

static cl_object
sb_finalize(cl_object s)
{
  return eclsock_ecl_finalize(close_dropped, s);
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
  cl_fixnum bs = 0;
  cl_object n = ECL_CONSP(elttype) && ECL_CONSP(ECL_CONS_CDR(elttype))
    && Null(ECL_CONS_CDR(ECL_CONS_CDR(elttype)))
    ? ECL_CONS_CAR(ECL_CONS_CDR(elttype)) : ECL_NIL;
  /* (unsigned-byte N) and (signed-byte N), what nearly every program
     asks for, are read here: ECL's normalization answers the same after
     two SUBTYPEP calls, about 45,000 instructions per stream made */
  if (ECL_FIXNUMP(n) && ecl_fixnum(n) > 0 && ecl_fixnum(n) <= 64
      && (ECL_CONS_CAR(elttype) == sym_unsigned_byte
          || ECL_CONS_CAR(elttype) == sym_signed_byte))
    bs = ECL_CONS_CAR(elttype) == sym_unsigned_byte ? ecl_fixnum(n) : -ecl_fixnum(n);
  else
    bs = ecl_normalize_stream_element_type(elttype);
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

/* Fresh state for a stream over FD (the settings are the caller's). */
static struct sockbuf *
new_sockbuf(int fd)
{
  struct sockbuf *b = ecl_alloc(sizeof *b);
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->wlock, NULL);
  eclsock_life_init(b);
  b->fd = fd;
  return b;
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
  cl_object s = eclsock_ecl_fd_stream(name, fd, bs, flags, extfmt);
  struct sockbuf *b = new_sockbuf(fd);
  b->host = host;
  b->port = port;
  b->charfmt = (flags == ECL_STREAM_BINARY) ? ECL_NIL : extfmt;
  b->buffered = buffered;
  s->stream.buffer = (char *)b;
  eclsock_ecl_own_ops(s, &b->ops);
  install_ops(s);
  si_set_finalizer(s, finalizer_fn);
  return s;
}

/* Change the element type (and external format) of a live stream, as
   CLISP's (setf stream-element-type) does.  Buffered input stays. */
void
eclsock_stream_set_element_type(cl_object s, cl_object elttype, cl_object extfmt)
{
  int flags;
  cl_fixnum bs;
  if (Null(extfmt))
    extfmt = SB(s)->charfmt;          /* back to characters: the old format */
  bs = normalize_type(elttype, &extfmt, &flags);
  eclsock_ecl_retype(s, bs, flags, extfmt);
  SB(s)->orig_read_char = NULL;
  if (flags != ECL_STREAM_BINARY)
    SB(s)->charfmt = extfmt;
  install_ops(s);
}

/* The TLS switch (make-ssl-client-stream and -server-stream, Allegro's
   way): a new stream on OLD's descriptor with OLD's element type, external
   format, buffering, names and dispatch table, whose transport is T.  OLD
   sends its pending output (plaintext, before the handshake) and is then
   closed without closing the descriptor, so using it afterwards is a
   closed-stream error.  Input OLD has read ahead would be lost under TLS:
   the caller checks eclsock_stream_buffered_input first.  The switch is
   the owner's alone: no other thread may use OLD meanwhile. */
cl_object
eclsock_stream_move_to_tls(cl_object old, eclsock_tls *t)
{
  struct sockbuf *ob = SB(old), *b;
  const cl_env_ptr env = ecl_process_env();
  int fd = ob->fd;
  cl_object s;
  eclsock_stream_flush(old);
  s = eclsock_ecl_fd_stream(old->stream.object1, fd, 8, ECL_STREAM_BINARY, ECL_NIL);
  si_set_finalizer(s, ECL_NIL);
  b = new_sockbuf(fd);
  b->host = ob->host;
  b->port = ob->port;
  b->charfmt = ob->charfmt;
  b->buffered = ob->buffered;
  b->shut_rd = ob->shut_rd;
  b->shut_wr = ob->shut_wr;
  b->shared = ob->shared;
  b->ops = ob->ops;                 /* OLD's table */
  b->orig_read_char = ob->orig_read_char;
  b->orig_read_vector = ob->orig_read_vector;
  s->stream.buffer = (char *)b;
  s->stream.ops = &b->ops;
  eclsock_ecl_copy_encoding(s, old);
  install_ops(s);
  b->tls = t;
  si_set_finalizer(s, finalizer_fn);
  /* OLD lets go of the descriptor: closed, without closing it (off the
     flusher's lists and out of its poller first) */
  ecl_disable_interrupts_env(env);
  detach(ob);
  eclsock_marks_sset_drop(ob);
  eclsock_life_abandon(ob);
  old->stream.file.descriptor = -1;
  ecl_enable_interrupts_env(env);
  ob->rpos = ob->rlen = 0;
  si_set_finalizer(old, ECL_NIL);
  eclsock_ecl_generic_close(old);
  return s;
}

eclsock_tls *
eclsock_stream_tls(cl_object x)
{
  return SB(x)->tls;
}

/* -- Queries ------------------------------------------------------------ */

/* socket-status enters the streams it waits on (stream-private.h): 1, or
   0 when S is closing; then a close from another thread wakes the wait
   and frees the descriptor only after the call has left. */
int
eclsock_stream_enter(cl_object s)
{
  return sb_enter(SB(s));
}

void
eclsock_stream_leave(cl_object s)
{
  eclsock_life_leave(SB(s));
}

int
eclsock_stream_p(cl_object x)
{
  /* socket-status asks this for every listed object: look at the stream
     object only (any other stream's table is not its buffer) */
  return ECL_ANSI_STREAM_P(x) && (void *)x->stream.ops == (void *)x->stream.buffer;
}

/* The descriptor, or -1 when closed or closing. */
int
eclsock_stream_fd(cl_object x)
{
  return (x->stream.closed || !is_open(SB(x))) ? -1 : FD(x);
}

/* True when input is waiting inside the stream (no system call needed):
   a whole character, or octets; part of a character is not input yet. */
int
eclsock_stream_buffered_input(cl_object x)
{
  struct sockbuf *b = SB(x);
  int tls_pending = 0;
  if (x->stream.byte_stack != ECL_NIL || sb_has_input(b))
    return 1;
  if (b->tls) {
    const cl_env_ptr env = ecl_process_env();
    ecl_disable_interrupts_env(env);
    if (sb_enter(b)) {
      tls_pending = eclsock_tp_pending(b->tls);
      eclsock_life_leave(b);
    }
    ecl_enable_interrupts_env(env);
  }
  return tls_pending;
}

/* Octets written but not yet handed to the kernel. */
size_t
eclsock_stream_pending(cl_object x)
{
  struct sockbuf *b = SB(x);
  const cl_env_ptr env = ecl_process_env();
  size_t n;
  WLOCK(env, b);
  n = PENDING(b);
  WUNLOCK(env, b);
  return n;
}

cl_object eclsock_stream_host(cl_object x) { return SB(x)->host; }
cl_object eclsock_stream_port(cl_object x) { return SB(x)->port; }
int eclsock_stream_get_buffered(cl_object x) { return SB(x)->buffered; }

void
eclsock_stream_set_buffered(cl_object x, int buffered)
{
  if (!buffered)
    eclsock_stream_flush(x);
  SB(x)->buffered = buffered;
}

/* shutdown(2) one or both directions.  Pending output is sent first; the
   stream then stops being an input and/or output stream. */
void
eclsock_stream_shutdown(cl_object s, int how)
{
  struct sockbuf *b = SB(s);
  const cl_env_ptr env = ecl_process_env();
  volatile int code = 0;
  if (how != SHUT_RD)
    eclsock_stream_flush(s);
  ENTERED_BEGIN(env, b) {
    code = eclsock_tp_shutdown(b->tls, b->fd, how);
  } ENTERED_ELSE(b) {
    code = EBADF;
  }
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
  if (finalizer_fn != ECL_NIL)
    return;
  eclsock_ecl_init();
  sym_character = ecl_make_symbol("CHARACTER", "CL");
  sym_base_char = ecl_make_symbol("BASE-CHAR", "CL");
  sym_unsigned_byte = ecl_make_symbol("UNSIGNED-BYTE", "CL");
  sym_signed_byte = ecl_make_symbol("SIGNED-BYTE", "CL");
  kw_lf = ecl_make_keyword("LF");
  kw_crlf = ecl_make_keyword("CRLF");
  kw_utf8 = ecl_make_keyword("UTF-8");
  kw_us_ascii = ecl_make_keyword("US-ASCII");
  kw_latin1 = ecl_make_keyword("LATIN-1");
  kw_iso_8859_1 = ecl_make_keyword("ISO-8859-1");
  eclsock_flush_init();
  finalizer_fn = ecl_make_cfun((cl_objectfn_fixed)sb_finalize,
                               eclsock_sym("%FINALIZE-SOCKET-STREAM"), ECL_NIL, 1);
  ecl_register_root(&finalizer_fn);
}
