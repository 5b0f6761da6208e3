/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * stream-private.h - the socket stream's own struct and its lifetime and
 * locking model, shared by the files of the stream layer only (life.c,
 * marks.c, flush.c, stream.c); nothing else includes it.
 *
 * Owns: struct sockbuf, which field each lock guards, the states of a
 * stream and the close protocol (written once, here).
 * Must not: hold code other than the inline enter test.
 *
 * ---- Who may touch what -------------------------------------------------
 *
 * The contract with users: one reader thread and one writer thread may
 * use a stream at once; force-output, finish-output, socket-status, a
 * poller and close may come from any thread; the flusher thread (flush.c)
 * sends held output.
 *
 *   input side   rbuf rpos rlen rcap read_err, ECL's byte_stack: the reader
 *                thread's alone (no lock).
 *   output side  wbuf whead wlen wcap listed werr: under WLOCK.  WLOCK is
 *                only ever held for memcpy and non-blocking sends, never
 *                across a wait, so any thread (the flusher included) may
 *                take it without blocking for long.  Pending output is
 *                wbuf[whead, wlen).
 *   flusher      fl_where fl_due fl_prev fl_next: under flush.c's FL_LOCK.
 *                LISTED (under WLOCK) says the flusher is responsible for
 *                the pending output (queued, being sent, or watched for
 *                writability); it changes only with WLOCK held, so a
 *                writer that appends either sees LISTED or lists the
 *                stream itself.  Lock order: WLOCK before FL_LOCK.
 *   poller marks watch wslot in_mark out_mark: under the watch's lock
 *                (marks.c).
 *   lifetime     state users released deferred: atomics; the closer waits
 *                on LIFE_COND under LIFE_LOCK.
 *   settings     host port charfmt buffered fast_* utf8 crlf shut_rd
 *                shut_wr shared finalizing: set by the owner before the
 *                stream is shared (construction, set-element-type,
 *                shutdown), read by anyone.
 *
 * ---- States and the close protocol --------------------------------------
 *
 *   OPEN     every operation works.  A thread that is about to use the
 *            descriptor or the TLS session ENTERS the stream (users + 1,
 *            then checks the state) and LEAVES it afterwards (users - 1;
 *            also when a Lisp interrupt unwinds it: an unwind-protect).
 *   CLOSING  close has begun (one thread won the OPEN -> CLOSING race).
 *            No thread enters any more: a reader that tries gets end of
 *            file, a writer a SOCKET-ERROR :EBADF.  The closer sends the
 *            pending output (bounded, see flush_for_close), takes the
 *            stream off the flusher and out of its poller and socket-status
 *            set, and if other threads are inside, shuts the connection
 *            down (shutdown(2): a blocked recv, send or poll wakes up at
 *            once) unless another descriptor shares the socket.  Then it
 *            waits (LIFE_COND, at most CLOSE_WAIT_SECONDS) until no thread
 *            is inside.
 *   CLOSED   the TLS session is freed and the descriptor closed, by the
 *            closer after the wait, or, when a thread is still inside after
 *            it (an interrupt handler that runs inside a read and closes
 *            the stream, say), by the last thread to leave.  Exactly one
 *            thread releases (RELEASED).  ECL's own close then makes every
 *            later operation a closed-stream error.
 *
 * A second close (from any thread) waits for the first and returns.  The
 * GC finalizer closes like close, never waiting for the peer.  The
 * flusher's lists hold the state, not the stream (no back pointer: ECL 24's
 * ordered finalization never collects a cycle), so a dropped stream holding
 * output is finalized; its close takes it off the lists and waits for a
 * send the flusher is making.
 */
#ifndef ECLSOCK_STREAM_PRIVATE_H
#define ECLSOCK_STREAM_PRIVATE_H

#include "internal.h"

enum { ST_OPEN = 0, ST_CLOSING = 1, ST_CLOSED = 2 };
/* where the flusher has a stream (fl_where) */
enum { FL_NONE = 0, FL_QUEUED, FL_BUSY, FL_STALLED };

struct sockbuf {
  struct ecl_file_ops ops;          /* the dispatch table: stream.ops points
                                       here, so ops == buffer tells our
                                       streams apart without a second load */
  cl_object host, port;             /* creation arguments, for -host/-port */
  cl_object charfmt;                /* external format for character mode */
  int fd;                           /* the descriptor; -1 once released */
  /* input side (the reader's) */
  unsigned char *rbuf;
  size_t rpos, rlen, rcap;
  int read_err;                     /* an error socket-status found (a reset):
                                       the next read signals it, once */
  /* output side (WLOCK) */
  pthread_mutex_t wlock;
  unsigned char *wbuf;              /* GC atomic block, made on first use */
  size_t whead, wlen, wcap;         /* pending: wbuf[whead, wlen) */
  int listed;                       /* the flusher is responsible */
  /* flusher (FL_LOCK, flush.c) */
  int fl_where;
  int fl_armed;                     /* 1 + the generation of the thread's
                                       epoll set it is in; 0: none */
  double fl_due;                    /* when a queued stream is sent */
  struct sockbuf *fl_prev, *fl_next;  /* its list (the queue or the stalled) */
  /* lifetime (atomics; LIFE_LOCK/LIFE_COND for the closer's wait) */
  int state, users, released, deferred;
  int woke;                         /* close shut the connection down */
  pthread_mutex_t life_lock;
  pthread_cond_t life_cond;
  /* settings */
  int buffered;                     /* NIL :buffered sends every write */
  int shut_rd, shut_wr;             /* socket-stream-shutdown happened */
  int finalizing;                   /* closed by the GC: do not wait */
  int shared;                       /* another descriptor shares the socket */
  unsigned fast_limit;              /* octets below this are characters */
  int fast_cr;                      /* CR is special (CRLF/CR endings) */
  int utf8, crlf;                   /* character stream in UTF-8 / CR LF */
  int (*orig_read_char)(cl_object);
  cl_index (*orig_read_vector)(cl_object, cl_object, cl_index, cl_index);
  eclsock_tls *tls;                 /* the transport: NULL = plain fd */
  /* poller marks (the watch's lock, marks.c) */
  struct eclsock_watch *watch;      /* the poller holding it, or NULL; */
  int wslot;                        /* its slot there; the marks say it is */
  unsigned char in_mark, out_mark;  /* in watch->in / watch->out */
  uint64_t status_token;            /* socket-status's epoll registration */
  int in_sset;                      /* (marks.c): counted in sset_count */
};

#define SB(s) ((struct sockbuf *)(s)->stream.buffer)
#define PENDING(b) ((b)->wlen - (b)->whead)

/* The partial-character rule, written once for the stream layer (listen,
   socket-status's probe, the buffered-input test) and the poller's marks:
   how many octets the first character at P (AVAIL of them buffered) needs
   before ECL's decoder returns it without waiting (a UTF-8 sequence takes
   what its first octet says; under CR LF the decoder also reads the
   character after a CR), and whether B's buffer holds only part of its
   next character, so that a read would wait for the rest. */
static inline size_t
sb_char_octets(const struct sockbuf *b, const unsigned char *p, size_t avail)
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

static inline int
sb_partial_char(const struct sockbuf *b)
{
  return (b->utf8 || b->crlf) && b->rpos < b->rlen
    && b->rlen - b->rpos < sb_char_octets(b, b->rbuf + b->rpos, b->rlen - b->rpos);
}

/* Whether a read of B finds a whole character (or octet) buffered. */
static inline int
sb_has_input(const struct sockbuf *b)
{
  return b->rpos < b->rlen && !sb_partial_char(b);
}

/* Enter B to use its descriptor or TLS session: 1, or 0 when it is
   closing or closed (then nothing was entered).  Pair with
   eclsock_life_leave. */
static inline int
sb_enter(struct sockbuf *b)
{
  __atomic_add_fetch(&b->users, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&b->state, __ATOMIC_SEQ_CST) == ST_OPEN)
    return 1;
  eclsock_life_leave(b);
  return 0;
}

#endif
