/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_stream.c - Check suite "stream" for src/stream.c and src/status.c.
 *
 * A socket stream is made with eclsock_stream_make over one end of a
 * socketpair (or a loopback TCP pair); Lisp reads and writes it through
 * the ordinary CL functions while C works the other end with plain
 * read/write/recv.  Covers buffering and flushing, read-line and
 * read-sequence, the three read_octets modes, listen and probe, shutdown,
 * close exactly once, element type changes, errors as conditions, and
 * socket-status through ECLSOCK::%STATUS.  Loads the built sock.fas for
 * the condition classes and the socket-server structure.
 */
#include "testutil.h"
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* -- Helpers ------------------------------------------------------------ */

static cl_object kw(const char *n) { return ecl_make_keyword(n); }
static cl_object str(const char *s) { return ecl_make_simple_base_string(s, -1); }

static cl_object
octet_type(void)
{
  return cl_list(2, tu_sym("UNSIGNED-BYTE", "CL"), ecl_make_fixnum(8));
}

/* A socket stream over FD with element type ELT and external format FMT. */
static cl_object
make_stream(int fd, cl_object elt, cl_object fmt, int buffered)
{
  return eclsock_stream_make(fd, elt, fmt, buffered, str("peer.test"),
                             ecl_make_fixnum(4242), str("test stream"));
}

static cl_object
char_stream(int fd)
{
  return make_stream(fd, tu_sym("CHARACTER", "CL"), ECL_NIL, 1);
}

/* Octets waiting on FD right now (no wait), or -1 when none. */
static ssize_t
recv_now(int fd, char *buf, size_t n)
{
  ssize_t r;
  do r = recv(fd, buf, n, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
  return r;
}

static void
send_text(int fd, const char *s)
{
  size_t n = strlen(s);
  ck_assert_int_eq(write(fd, s, n), (ssize_t)n);
}

/* The Lisp string X as C text (X holds only base characters). */
static const char *
text(cl_object x)
{
  ck_assert_msg(ECL_STRINGP(x), "%s is not a string", tu_princ(x));
  return tu_princ(x);
}

static cl_object
octets(size_t n)
{
  return ecl_alloc_simple_vector(n, ecl_aet_b8);
}

static cl_object
read_line(cl_object s)
{
  return tu_call("READ-LINE", "CL", 3, s, ECL_NIL, kw("EOF"));
}

/* A peer thread: sleep, then write octets. */
struct later { int fd; useconds_t delay; const char *data; size_t n; };

static void *
write_later(void *arg)
{
  struct later *l = arg;
  usleep(l->delay);
  if (write(l->fd, l->data, l->n) != (ssize_t)l->n)
    return (void *)1;
  return NULL;
}

static pthread_t
start_later(struct later *l, int fd, useconds_t delay, const char *data, size_t n)
{
  pthread_t th;
  l->fd = fd; l->delay = delay; l->data = data; l->n = n;
  ck_assert_int_eq(pthread_create(&th, NULL, write_later, l), 0);
  return th;
}

/* -- Construction and queries --------------------------------------------- */

START_TEST(test_make_and_query)
{
  int sv[2];
  cl_object s;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  ck_assert(eclsock_stream_p(s));
  ck_assert(!eclsock_stream_p(cl_make_string_output_stream(0)));
  ck_assert(!eclsock_stream_p(ecl_make_fixnum(3)));
  ck_assert(tu_call("%SOCKET-STREAM-P", "ECLSOCK", 1, s) == ECL_T);
  ck_assert_int_eq(eclsock_stream_fd(s), sv[0]);
  ck_assert_str_eq(text(eclsock_stream_host(s)), "peer.test");
  ck_assert(ecl_eql(eclsock_stream_port(s), ecl_make_fixnum(4242)));
  ck_assert(eclsock_stream_get_buffered(s));
  ck_assert(tu_call("INPUT-STREAM-P", "CL", 1, s) == ECL_T);
  ck_assert(tu_call("OUTPUT-STREAM-P", "CL", 1, s) == ECL_T);
  ck_assert(tu_call("OPEN-STREAM-P", "CL", 1, s) == ECL_T);
  ck_assert(Null(tu_call("INTERACTIVE-STREAM-P", "CL", 1, s)));
  ck_assert(tu_call("STREAM-ELEMENT-TYPE", "CL", 1, s) == tu_sym("CHARACTER", "CL"));
  ck_assert(ecl_eql(tu_call("FILE-STREAM-FD", "EXT", 1, s), ecl_make_fixnum(sv[0])));
  /* a binary stream */
  s = make_stream(sv[1], octet_type(), ECL_NIL, 0);
  ck_assert(eclsock_stream_p(s));
  ck_assert(!eclsock_stream_get_buffered(s));
  ck_assert(!Null(tu_call("EQUAL", "CL", 2, tu_call("STREAM-ELEMENT-TYPE", "CL", 1, s),
                          octet_type())));
}
END_TEST

/* -- Writing from Lisp, reading in C ---------------------------------------- */

START_TEST(test_write_buffered)
{
  int sv[2];
  char buf[64];
  cl_object s;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  tu_call("WRITE-STRING", "CL", 2, str("hello "), s);
  tu_call("WRITE-CHAR", "CL", 2, CODE_CHAR('w'), s);
  tu_call("PRINC", "CL", 2, ecl_make_fixnum(42), s);
  tu_call("WRITE-SEQUENCE", "CL", 2, str("orld"), s);
  /* held in one buffer (the flusher may have sent it all by now, never a
     part), and all of it there as soon as FINISH-OUTPUT returns */
  tu_call("FINISH-OUTPUT", "CL", 1, s);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 13);
  ck_assert(!memcmp(buf, "hello w42orld", 13));
  /* force-output too */
  tu_call("WRITE-STRING", "CL", 2, str("more"), s);
  tu_call("FORCE-OUTPUT", "CL", 1, s);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 4);
  /* ECL's write-line and terpri force output themselves: that flush is
     soft (joined with what follows), an explicit one right after sends */
  tu_call("WRITE-LINE", "CL", 2, str("line"), s);
  tu_call("FORCE-OUTPUT", "CL", 1, s);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 5);
  ck_assert(!memcmp(buf, "line\n", 5));
  /* a soft flush alone still gets there, within the hold bound (2 ms) */
  tu_call("WRITE-LINE", "CL", 2, str("soft"), s);
  {
    struct pollfd p = { sv[1], POLLIN, 0 };
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
  }
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 5);
  ck_assert(!memcmp(buf, "soft\n", 5));
  /* clear-output drops what is pending */
  tu_call("WRITE-STRING", "CL", 2, str("dropped"), s);
  tu_call("CLEAR-OUTPUT", "CL", 1, s);
  tu_call("FINISH-OUTPUT", "CL", 1, s);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), -1);
}
END_TEST

START_TEST(test_write_unbuffered)
{
  int sv[2];
  char buf[64];
  cl_object s;
  tu_socketpair(sv);
  s = make_stream(sv[0], tu_sym("CHARACTER", "CL"), ECL_NIL, 0);
  tu_call("WRITE-STRING", "CL", 2, str("now"), s);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 3);
  ck_assert(!memcmp(buf, "now", 3));
  /* switching buffering on and off */
  eclsock_stream_set_buffered(s, 1);
  tu_call("WRITE-STRING", "CL", 2, str("later"), s);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), -1);
  eclsock_stream_set_buffered(s, 0);            /* sends what is pending */
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 5);
  ck_assert(!memcmp(buf, "later", 5));
}
END_TEST

#define BIG (300 * 1024 + 17)

struct drain { int fd; unsigned char *buf; size_t got, cap; };

static void *
drain_all(void *arg)
{
  struct drain *d = arg;
  for (;;) {
    ssize_t n = read(d->fd, d->buf + d->got, d->cap - d->got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || d->got + (size_t)n >= d->cap) {
      if (n > 0) d->got += (size_t)n;
      break;
    }
    d->got += (size_t)n;
  }
  return NULL;
}

/* More than the write buffer and the socket buffer together: write-sequence
   must go through whole while the peer drains, and close sends the rest. */
START_TEST(test_write_sequence_big)
{
  int sv[2];
  size_t i;
  cl_object s, v = octets(BIG);
  struct drain d;
  pthread_t th;
  tu_socketpair(sv);
  for (i = 0; i < BIG; i++)
    v->vector.self.b8[i] = (uint8_t)(i * 13 + (i >> 9));
  s = make_stream(sv[0], octet_type(), ECL_NIL, 1);
  d.fd = sv[1];
  d.cap = BIG + 1;
  d.buf = malloc(d.cap);
  d.got = 0;
  ck_assert_int_eq(pthread_create(&th, NULL, drain_all, &d), 0);
  tu_call("WRITE-BYTE", "CL", 2, ecl_make_fixnum(7), s);
  tu_call("WRITE-SEQUENCE", "CL", 2, v, s);
  tu_call("WRITE-SEQUENCE", "CL", 4, v, s, kw("END"), ecl_make_fixnum(0));
  ck_assert(tu_call("CLOSE", "CL", 1, s) == ECL_T);
  pthread_join(th, NULL);
  ck_assert_uint_eq(d.got, BIG + 1);
  ck_assert_int_eq(d.buf[0], 7);
  ck_assert(!memcmp(d.buf + 1, v->vector.self.b8, BIG));
  free(d.buf);
}
END_TEST

/* -- Writing in C, reading from Lisp ---------------------------------------- */

START_TEST(test_read_line_utf8)
{
  int sv[2];
  cl_object s, l;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  send_text(sv[1], "abc\nxyz\n\xc3\xa9t\xc3\xa9\nlast");
  ck_assert_str_eq(text(read_line(s)), "abc");
  ck_assert_str_eq(text(read_line(s)), "xyz");
  l = read_line(s);
  ck_assert_int_eq(ecl_length(l), 3);
  ck_assert_int_eq(ecl_char(l, 0), 0xe9);
  ck_assert_int_eq(ecl_char(l, 1), 't');
  ck_assert_int_eq(ecl_char(l, 2), 0xe9);
  close(sv[1]);
  ck_assert_str_eq(text(read_line(s)), "last");          /* no newline, then EOF */
  ck_assert(read_line(s) == kw("EOF"));
  /* with eof-error-p, EOF is END-OF-FILE */
  ck_assert(tu_typep(tu_call_error("READ-LINE", "CL", 1, s), "END-OF-FILE", "CL"));
}
END_TEST

START_TEST(test_read_char_peek_unread)
{
  int sv[2];
  cl_object s, v;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  send_text(sv[1], "AB\xc3\xa9Z hello world");
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR('A'));
  ck_assert(tu_call("PEEK-CHAR", "CL", 2, ECL_NIL, s) == CODE_CHAR('B'));
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR('B'));
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR(0xe9));
  tu_call("UNREAD-CHAR", "CL", 2, CODE_CHAR(0xe9), s);
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR(0xe9));
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR('Z'));
  tu_call("UNREAD-CHAR", "CL", 2, CODE_CHAR('Z'), s);
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR('Z'));
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR(' '));
  /* read-sequence into a string */
  v = cl_make_string(1, ecl_make_fixnum(5));
  ck_assert(ecl_eql(tu_call("READ-SEQUENCE", "CL", 2, v, s), ecl_make_fixnum(5)));
  ck_assert_str_eq(text(v), "hello");
  /* the stream is bivalent: an octet next */
  ck_assert(ecl_eql(tu_call("READ-BYTE", "CL", 1, s), ecl_make_fixnum(' ')));
  close(sv[1]);
  v = cl_make_string(1, ecl_make_fixnum(10));
  ck_assert(ecl_eql(tu_call("READ-SEQUENCE", "CL", 2, v, s), ecl_make_fixnum(5)));
}
END_TEST

START_TEST(test_crlf_and_latin1)
{
  int sv[2], tv[2];
  char buf[32];
  cl_object s, crlf = cl_list(2, kw("UTF-8"), kw("CRLF")), l;
  tu_socketpair(sv);
  s = make_stream(sv[0], tu_sym("CHARACTER", "CL"), crlf, 1);
  send_text(sv[1], "one\r\ntwo\r\n");
  ck_assert_str_eq(text(read_line(s)), "one");
  ck_assert_str_eq(text(read_line(s)), "two");
  tu_call("WRITE-LINE", "CL", 2, str("out"), s);
  tu_call("FINISH-OUTPUT", "CL", 1, s);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 5);
  ck_assert(!memcmp(buf, "out\r\n", 5));
  tu_socketpair(tv);
  s = make_stream(tv[0], tu_sym("CHARACTER", "CL"), kw("LATIN-1"), 1);
  send_text(tv[1], "caf\xe9\n");
  l = read_line(s);
  ck_assert_int_eq(ecl_length(l), 4);
  ck_assert_int_eq(ecl_char(l, 3), 0xe9);
}
END_TEST

/* -- read_octets modes -------------------------------------------------------- */

static cl_index
read_octets(cl_object s, unsigned char *p, cl_index n, int mode, double *elapsed)
{
  double t0 = eclsock_tm_now();
  cl_index r = eclsock_stream_read_octets(s, p, n, mode);
  *elapsed = eclsock_tm_now() - t0;
  return r;
}

START_TEST(test_read_octets_no_hang)
{
  int sv[2];
  unsigned char buf[16];
  double el;
  cl_object s;
  tu_socketpair(sv);
  s = make_stream(sv[0], octet_type(), ECL_NIL, 1);
  ck_assert_uint_eq(read_octets(s, buf, 10, 1, &el), 0);    /* nothing: at once */
  ck_assert(el < 0.5);
  send_text(sv[1], "abc");
  ck_assert_uint_eq(read_octets(s, buf, 10, 1, &el), 3);
  ck_assert(!memcmp(buf, "abc", 3));
  ck_assert(el < 0.5);
  close(sv[1]);
  ck_assert_uint_eq(read_octets(s, buf, 10, 1, &el), 0);    /* EOF */
}
END_TEST

START_TEST(test_read_octets_interactive)
{
  int sv[2];
  unsigned char buf[16];
  double el, t0;
  cl_object s;
  struct later l;
  pthread_t th;
  tu_socketpair(sv);
  s = make_stream(sv[0], octet_type(), ECL_NIL, 1);
  /* waits for the first octet only */
  t0 = eclsock_tm_now();
  th = start_later(&l, sv[1], 150000, "wxyz", 4);
  ck_assert_uint_eq(read_octets(s, buf, 10, 2, &el), 4);
  el = eclsock_tm_now() - t0;
  pthread_join(th, NULL);
  ck_assert(!memcmp(buf, "wxyz", 4));
  ck_assert_msg(el >= 0.1 && el < 5.0, "waited %f s", el);
  /* returns what is there, without waiting for more */
  send_text(sv[1], "12");
  th = start_later(&l, sv[1], 1000000, "34", 2);
  ck_assert_uint_eq(read_octets(s, buf, 10, 2, &el), 2);
  ck_assert_msg(el < 0.8, "waited %f s for more", el);
  pthread_join(th, NULL);
  close(sv[1]);
  ck_assert_uint_eq(read_octets(s, buf, 10, 2, &el), 2);
  ck_assert(!memcmp(buf, "34", 2));
  ck_assert_uint_eq(read_octets(s, buf, 10, 2, &el), 0);    /* EOF */
}
END_TEST

START_TEST(test_read_octets_fill)
{
  int sv[2];
  unsigned char buf[16];
  double el, t0;
  cl_object s;
  struct later l;
  pthread_t th;
  tu_socketpair(sv);
  s = make_stream(sv[0], octet_type(), ECL_NIL, 1);
  /* waits until all came */
  send_text(sv[1], "01234");
  t0 = eclsock_tm_now();
  th = start_later(&l, sv[1], 150000, "56789", 5);
  ck_assert_uint_eq(read_octets(s, buf, 10, 0, &el), 10);
  el = eclsock_tm_now() - t0;
  pthread_join(th, NULL);
  ck_assert(!memcmp(buf, "0123456789", 10));
  ck_assert_msg(el >= 0.1 && el < 5.0, "waited %f s", el);
  /* or until EOF */
  send_text(sv[1], "ABCDEF");
  ck_assert(ecl_eql(tu_call("READ-BYTE", "CL", 1, s), ecl_make_fixnum('A')));
  close(sv[1]);
  ck_assert_uint_eq(read_octets(s, buf, 10, 0, &el), 5);
  ck_assert(!memcmp(buf, "BCDEF", 5));
  ck_assert_uint_eq(read_octets(s, buf, 10, 0, &el), 0);
  ck_assert(tu_call("READ-BYTE", "CL", 3, s, ECL_NIL, kw("EOF")) == kw("EOF"));
}
END_TEST

/* Reads of a buffer's size and more go straight into the caller's memory. */
START_TEST(test_read_octets_large)
{
  int sv[2];
  size_t i, n = 200 * 1024;
  unsigned char *out = malloc(n), *in = malloc(n + 1);
  cl_object s, v;
  struct later l;
  pthread_t th;
  double el;
  tu_socketpair(sv);
  for (i = 0; i < n; i++)
    out[i] = (unsigned char)(i ^ (i >> 8));
  s = make_stream(sv[0], octet_type(), ECL_NIL, 1);
  th = start_later(&l, sv[1], 10000, (const char *)out, n);
  ck_assert_uint_eq(read_octets(s, in, n, 0, &el), n);
  pthread_join(th, NULL);
  ck_assert(!memcmp(in, out, n));
  /* the same through read-sequence from Lisp */
  v = octets(n);
  th = start_later(&l, sv[1], 10000, (const char *)out, n);
  ck_assert(ecl_eql(tu_call("READ-SEQUENCE", "CL", 2, v, s), ecl_make_fixnum((cl_fixnum)n)));
  pthread_join(th, NULL);
  ck_assert(!memcmp(v->vector.self.b8, out, n));
  /* and through ECLSOCK::%READ-OCTETS with bounds */
  send_text(sv[1], "xyz");
  ck_assert(ecl_eql(tu_call("%READ-OCTETS", "ECLSOCK", 5, s, v, ecl_make_fixnum(10),
                            ecl_make_fixnum(20), ecl_make_fixnum(1)),
                    ecl_make_fixnum(13)));
  ck_assert(!memcmp(v->vector.self.b8 + 10, "xyz", 3));
  free(out);
  free(in);
}
END_TEST

/* -- listen, probe, clear-input ------------------------------------------------ */

START_TEST(test_listen_and_probe)
{
  int sv[2];
  double t0;
  cl_object s;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  t0 = eclsock_tm_now();
  ck_assert(Null(tu_call("LISTEN", "CL", 1, s)));
  ck_assert_int_eq(eclsock_stream_probe(s), 0);
  ck_assert(eclsock_tm_now() - t0 < 0.5);
  ck_assert(!eclsock_stream_buffered_input(s));
  send_text(sv[1], "ab");
  ck_assert(tu_call("LISTEN", "CL", 1, s) == ECL_T);
  ck_assert(eclsock_stream_buffered_input(s));        /* listen filled the buffer */
  ck_assert_int_eq(eclsock_stream_probe(s), 1);
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR('a'));
  ck_assert_int_eq(eclsock_stream_probe(s), 1);       /* 'b' is buffered */
  /* clear-input drops it */
  tu_call("CLEAR-INPUT", "CL", 1, s);
  ck_assert(!eclsock_stream_buffered_input(s));
  ck_assert(Null(tu_call("LISTEN", "CL", 1, s)));
  /* at EOF: listen is false, probe says -1 */
  close(sv[1]);
  ck_assert(Null(tu_call("LISTEN", "CL", 1, s)));
  ck_assert_int_eq(eclsock_stream_probe(s), -1);
  ck_assert(tu_call("READ-CHAR", "CL", 3, s, ECL_NIL, kw("EOF")) == kw("EOF"));
}
END_TEST

START_TEST(test_probe_error)
{
  int sv[2];
  struct linger lg = { 1, 0 };
  cl_object s;
  tu_tcp_pair(sv);
  s = char_stream(sv[0]);
  /* the peer resets the connection */
  ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(sv[1]);
  ck_assert_int_eq(eclsock_tm_wait(sv[0], POLLIN, eclsock_tm_deadline(5.0)), 0);
  /* as CLISP on Linux: the stream is at its end; the reset is kept for
     the next read, which signals it once, and then reads end of file */
  ck_assert_int_eq(eclsock_stream_probe(s), -1);
  ck_assert_int_eq(eclsock_stream_probe(s), -1);
  {
    cl_object c = tu_call_error("READ-CHAR", "CL", 1, s);
    ck_assert_msg(tu_typep(c, "CONNECTION-RESET-ERROR", "ECLSOCK"), "got %s",
                  tu_princ(cl_type_of(c)));
    ck_assert_str_eq(tu_princ(tu_call("SOCKET-ERROR-CODE", "ECLSOCK", 1, c)),
                     "ECONNRESET");
  }
  ck_assert(tu_call("READ-CHAR", "CL", 3, s, ECL_NIL, kw("EOF")) == kw("EOF"));
  tu_call("CLOSE", "CL", 1, s);
}
END_TEST

START_TEST(test_read_reset_signals)
{
  int sv[2];
  struct linger lg = { 1, 0 };
  cl_object s, c;
  tu_tcp_pair(sv);
  s = char_stream(sv[0]);
  ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(sv[1]);
  c = tu_call_error("READ-LINE", "CL", 1, s);
  ck_assert_msg(tu_typep(c, "CONNECTION-RESET-ERROR", "ECLSOCK"), "got %s",
                tu_princ(cl_type_of(c)));
  ck_assert_str_eq(tu_princ(tu_call("SOCKET-ERROR-CODE", "ECLSOCK", 1, c)), "ECONNRESET");
  ck_assert(tu_call("STREAM-ERROR-STREAM", "CL", 1, c) == s);
  tu_call("CLOSE", "CL", 1, s);
  ck_assert(!tu_fd_open(sv[0]));
}
END_TEST

/* -- Interleaving --------------------------------------------------------------- */

struct pong { int fd; char got[64]; };

static void *
ping_pong(void *arg)
{
  struct pong *p = arg;
  size_t n = 0;
  while (n < sizeof p->got - 1) {
    ssize_t r = read(p->fd, p->got + n, 1);
    if (r <= 0)
      break;
    if (p->got[n++] == '\n')
      break;
  }
  p->got[n] = 0;
  if (write(p->fd, "pong\n", 5) != 5)
    return (void *)1;
  return NULL;
}

/* A request written without force-output still goes out before the stream
   blocks waiting for the answer. */
START_TEST(test_flush_before_read)
{
  int sv[2];
  cl_object s;
  struct pong p;
  pthread_t th;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  p.fd = sv[1];
  ck_assert_int_eq(pthread_create(&th, NULL, ping_pong, &p), 0);
  tu_call("WRITE-LINE", "CL", 2, str("ping"), s);
  ck_assert_str_eq(text(read_line(s)), "pong");
  pthread_join(th, NULL);
  ck_assert_str_eq(p.got, "ping\n");
}
END_TEST

/* A Lisp thread blocked in read-line does not hold up a writer on the same
   stream: the writer's request is what the reader's answer waits for. */
START_TEST(test_reader_and_writer_threads)
{
  int sv[2];
  cl_object s, proc;
  struct pong p;
  pthread_t th;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  cl_set(tu_sym("*TEST-STREAM*", "CL-USER"), s);
  proc = tu_eval("(mp:process-run-function 'reader"
                 " (lambda () (setf (symbol-value 'cl-user::*test-line*)"
                 "   (read-line (symbol-value 'cl-user::*test-stream*)))))");
  usleep(200000);                       /* the reader is now inside recv */
  p.fd = sv[1];
  ck_assert_int_eq(pthread_create(&th, NULL, ping_pong, &p), 0);
  tu_call("WRITE-STRING", "CL", 2, str("ping"), s);
  tu_call("TERPRI", "CL", 1, s);
  tu_call("FINISH-OUTPUT", "CL", 1, s);
  pthread_join(th, NULL);
  ck_assert_str_eq(p.got, "ping\n");
  tu_call("PROCESS-JOIN", "MP", 1, proc);
  ck_assert_str_eq(text(tu_eval("(symbol-value 'cl-user::*test-line*)")), "pong");
}
END_TEST

/* SO_RCVTIMEO (socket-options :so-rcvtimeo) surfaces as a socket timeout
   condition from read-line. */
START_TEST(test_rcvtimeo_condition)
{
  int sv[2];
  struct timeval tv = { 0, 100000 };
  cl_object s, c;
  double t0, el;
  tu_socketpair(sv);
  ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  s = char_stream(sv[0]);
  t0 = eclsock_tm_now();
  c = tu_call_error("READ-LINE", "CL", 1, s);
  el = eclsock_tm_now() - t0;
  ck_assert_msg(tu_typep(c, "SOCKET-TIMEOUT-ERROR", "ECLSOCK"), "got %s",
                tu_princ(cl_type_of(c)));
  ck_assert(tu_typep(c, "STREAM-ERROR", "CL"));
  ck_assert(tu_call("STREAM-ERROR-STREAM", "CL", 1, c) == s);
  ck_assert_msg(el >= 0.09 && el < 2.0, "timed out after %f s", el);
  /* the stream still works afterwards */
  send_text(sv[1], "late\n");
  ck_assert_str_eq(text(read_line(s)), "late");
}
END_TEST

/* -- Shutdown and close ------------------------------------------------------- */

START_TEST(test_shutdown)
{
  int sv[2];
  char buf[32];
  cl_object s, c;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  tu_call("WRITE-STRING", "CL", 2, str("bye"), s);
  eclsock_stream_shutdown(s, SHUT_WR);                  /* sends "bye" first */
  ck_assert_uint_eq(tu_read_full(sv[1], (unsigned char *)buf, sizeof buf), 3);
  ck_assert(!memcmp(buf, "bye", 3));                  /* then EOF */
  ck_assert(Null(tu_call("OUTPUT-STREAM-P", "CL", 1, s)));
  ck_assert(tu_call("INPUT-STREAM-P", "CL", 1, s) == ECL_T);
  c = tu_call_error("WRITE-CHAR", "CL", 2, CODE_CHAR('x'), s);
  ck_assert_msg(tu_typep(c, "SOCKET-ERROR", "ECLSOCK"), "got %s: %s",
                tu_princ(cl_type_of(c)), tu_princ(c));
  ck_assert_str_eq(tu_princ(tu_call("SOCKET-ERROR-CODE", "ECLSOCK", 1, c)), "ESHUTDOWN");
  ck_assert(tu_call("STREAM-ERROR-STREAM", "CL", 1, c) == s);
  /* input still works */
  send_text(sv[1], "back\nunread");
  ck_assert_str_eq(text(read_line(s)), "back");
  eclsock_stream_shutdown(s, SHUT_RD);
  ck_assert(Null(tu_call("INPUT-STREAM-P", "CL", 1, s)));
  ck_assert_int_eq(eclsock_stream_probe(s), -1);
  ck_assert(!eclsock_stream_buffered_input(s));      /* buffered "unread" dropped */
  ck_assert(read_line(s) == kw("EOF"));
  /* ECLSOCK::%STREAM-SHUTDOWN on a closed stream is a socket error */
  tu_call("CLOSE", "CL", 1, s);
  c = tu_call_error("%STREAM-SHUTDOWN", "ECLSOCK", 2, s, ecl_make_fixnum(2));
  ck_assert(tu_typep(c, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert_str_eq(tu_princ(tu_call("SOCKET-ERROR-CODE", "ECLSOCK", 1, c)), "EBADF");
}
END_TEST

START_TEST(test_close_exactly_once)
{
  int sv[2], fd, spare;
  char buf[32];
  cl_object s, c;
  tu_socketpair(sv);
  fd = sv[0];
  s = char_stream(fd);
  tu_call("WRITE-LINE", "CL", 2, str("last"), s);
  ck_assert(tu_call("CLOSE", "CL", 1, s) == ECL_T);
  /* close sent the pending line, then the peer sees EOF */
  ck_assert_uint_eq(tu_read_full(sv[1], (unsigned char *)buf, sizeof buf), 5);
  ck_assert(!memcmp(buf, "last\n", 5));
  errno = 0;
  ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
  ck_assert_int_eq(errno, EBADF);
  ck_assert_int_eq(eclsock_stream_fd(s), -1);
  ck_assert(Null(tu_call("OPEN-STREAM-P", "CL", 1, s)));
  /* the number is reused by someone else; closing again must not touch it */
  spare = dup2(sv[1], fd);
  ck_assert_int_eq(spare, fd);
  tu_call("CLOSE", "CL", 1, s);
  ck_assert(tu_fd_open(fd));
  ck_assert_int_eq(eclsock_stream_fd(s), -1);
  /* using the closed stream is an error, not a read of the new descriptor */
  c = tu_call_error("READ-CHAR", "CL", 1, s);
  ck_assert(tu_typep(c, "ERROR", "CL"));
  c = tu_call_error("%READ-OCTETS", "ECLSOCK", 5, s, octets(4), ecl_make_fixnum(0),
                    ecl_make_fixnum(4), ecl_make_fixnum(0));
  ck_assert(tu_typep(c, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert_str_eq(tu_princ(tu_call("SOCKET-ERROR-CODE", "ECLSOCK", 1, c)), "EBADF");
  close(fd);
}
END_TEST

/* Closing with output pending to a vanished peer does not signal. */
START_TEST(test_close_dead_peer)
{
  int sv[2], fd;
  cl_object s;
  signal(SIGPIPE, SIG_DFL);             /* MSG_NOSIGNAL must protect us */
  tu_socketpair(sv);
  fd = sv[0];
  s = char_stream(fd);
  tu_call("WRITE-LINE", "CL", 2, str("nobody reads this"), s);
  close(sv[1]);
  ck_assert(tu_call("CLOSE", "CL", 1, s) == ECL_T);
  ck_assert(!tu_fd_open(fd));
}
END_TEST

START_TEST(test_write_dead_peer)
{
  int sv[2];
  cl_object s, c;
  signal(SIGPIPE, SIG_DFL);
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  close(sv[1]);
  tu_call("WRITE-STRING", "CL", 2, str("into the void"), s);   /* buffered */
  c = tu_call_error("FINISH-OUTPUT", "CL", 1, s);
  ck_assert_msg(tu_typep(c, "CONNECTION-RESET-ERROR", "ECLSOCK"), "got %s",
                tu_princ(cl_type_of(c)));
  ck_assert_str_eq(tu_princ(tu_call("SOCKET-ERROR-CODE", "ECLSOCK", 1, c)), "EPIPE");
  ck_assert(tu_call("STREAM-ERROR-STREAM", "CL", 1, c) == s);
  ck_assert(tu_call("CLOSE", "CL", 1, s) == ECL_T);
}
END_TEST

/* -- Element type changes ------------------------------------------------------ */

START_TEST(test_set_element_type)
{
  int sv[2];
  cl_object s, fmt;
  tu_socketpair(sv);
  s = make_stream(sv[0], tu_sym("CHARACTER", "CL"), kw("LATIN-1"), 1);
  fmt = tu_call("STREAM-EXTERNAL-FORMAT", "CL", 1, s);
  ck_assert_msg(strstr(tu_princ(fmt), "LATIN-1"), "format %s", tu_princ(fmt));
  send_text(sv[1], "AB\xe9\nC");
  ck_assert(ecl_eql(tu_call("READ-BYTE", "CL", 1, s), ecl_make_fixnum('A')));
  eclsock_stream_set_element_type(s, octet_type(), ECL_NIL);
  ck_assert(!Null(tu_call("EQUAL", "CL", 2, tu_call("STREAM-ELEMENT-TYPE", "CL", 1, s),
                          octet_type())));
  ck_assert(tu_typep(tu_call_error("READ-CHAR", "CL", 1, s), "ERROR", "CL"));
  ck_assert(ecl_eql(tu_call("READ-BYTE", "CL", 1, s), ecl_make_fixnum('B')));
  /* back to characters, with the external format it had (buffered input kept) */
  eclsock_stream_set_element_type(s, tu_sym("CHARACTER", "CL"), ECL_NIL);
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR(0xe9));
  ck_assert(!Null(tu_call("EQUAL", "CL", 2, tu_call("STREAM-EXTERNAL-FORMAT", "CL", 1, s),
                          fmt)));
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR('\n'));
  ck_assert(tu_call("READ-CHAR", "CL", 1, s) == CODE_CHAR('C'));
  /* still a socket stream, and output still goes through our buffer */
  ck_assert(eclsock_stream_p(s));
  tu_call("WRITE-STRING", "CL", 2, str("ok"), s);
  {
    char buf[8];
    ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), -1);
    tu_call("FINISH-OUTPUT", "CL", 1, s);
    ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 2);
  }
}
END_TEST

/* -- Buffer boundaries ---------------------------------------------------------- */

/* A deterministic octet pattern that is not periodic in 64 KiB. */
static unsigned char
pattern(size_t i)
{
  return (unsigned char)((i * 2654435761u) >> 13);
}

/* Writes of many sizes (tiny, half a buffer, more than a buffer) arrive
   complete and in order. */
START_TEST(test_write_sizes_in_order)
{
  static const size_t sizes[] = { 1, 7, 32767, 32768, 1, 65535, 65536, 65537,
                                  100, 200000, 3, 40000, 40000, 1 };
  int sv[2];
  size_t i, k, total = 0, at = 0;
  cl_object s;
  struct drain d;
  pthread_t th;
  tu_socketpair(sv);
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    total += sizes[i];
  s = make_stream(sv[0], octet_type(), ECL_NIL, 1);
  d.fd = sv[1];
  d.cap = total + 1;
  d.buf = malloc(d.cap);
  d.got = 0;
  ck_assert_int_eq(pthread_create(&th, NULL, drain_all, &d), 0);
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    cl_object v = octets(sizes[i]);
    for (k = 0; k < sizes[i]; k++)
      v->vector.self.b8[k] = pattern(at + k);
    if (sizes[i] == 1)
      tu_call("WRITE-BYTE", "CL", 2, ecl_make_fixnum(pattern(at)), s);
    else
      tu_call("WRITE-SEQUENCE", "CL", 2, v, s);
    at += sizes[i];
  }
  tu_call("CLOSE", "CL", 1, s);
  pthread_join(th, NULL);
  ck_assert_uint_eq(d.got, total);
  for (i = 0; i < total; i++)
    ck_assert_msg(d.buf[i] == pattern(i), "octet %zu differs", i);
  free(d.buf);
}
END_TEST

/* Reads of many sizes, some served from the buffer, some straight from the
   socket, some straddling both, return the stream in order. */
START_TEST(test_read_sizes_in_order)
{
  static const size_t sizes[] = { 1, 10, 65536, 3, 65535, 70000, 1, 131072,
                                  5000, 65536, 2 };
  int sv[2];
  size_t i, k, total = 0, at = 0;
  unsigned char *out, *in;
  cl_object s;
  struct later l;
  pthread_t th;
  tu_socketpair(sv);
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    total += sizes[i];
  out = malloc(total);
  in = malloc(131072);
  for (k = 0; k < total; k++)
    out[k] = pattern(k);
  s = make_stream(sv[0], octet_type(), ECL_NIL, 1);
  th = start_later(&l, sv[1], 1000, (const char *)out, total);
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if (sizes[i] == 1) {
      ck_assert(ecl_eql(tu_call("READ-BYTE", "CL", 1, s), ecl_make_fixnum(out[at])));
    } else {
      ck_assert_uint_eq(eclsock_stream_read_octets(s, in, sizes[i], 0), sizes[i]);
      ck_assert_msg(!memcmp(in, out + at, sizes[i]), "read %zu at %zu differs",
                    sizes[i], at);
    }
    at += sizes[i];
  }
  pthread_join(th, NULL);
  close(sv[1]);
  ck_assert_uint_eq(eclsock_stream_read_octets(s, in, 10, 0), 0);
  free(out);
  free(in);
}
END_TEST

/* Lines longer than the buffer, with a two-octet character and a CR LF
   split across the buffer's edge. */
START_TEST(test_long_lines)
{
  int sv[2];
  size_t n = 65535 + 10, i;
  char *data = malloc(2 * n + 16);
  cl_object s, line;
  struct later l;
  pthread_t th;
  tu_socketpair(sv);
  /* line 1: 65535 'a', then e-acute (0xC3 0xA9) across octets 65535/65536 */
  memset(data, 'a', 65535);
  data[65535] = '\xc3';
  data[65536] = '\xa9';
  memcpy(data + 65537, "zz\n", 3);
  /* line 2 ends with CR LF, which CRLF mode must strip across reads */
  for (i = 0; i < 1000; i++)
    data[65540 + i] = 'b';
  memcpy(data + 66540, "\r\n", 2);
  s = make_stream(sv[0], tu_sym("CHARACTER", "CL"),
                  cl_list(2, kw("UTF-8"), kw("CRLF")), 1);
  th = start_later(&l, sv[1], 1000, data, 66542);
  line = read_line(s);
  ck_assert_int_eq(ecl_length(line), 65535 + 3);
  ck_assert_int_eq(ecl_char(line, 0), 'a');
  ck_assert_int_eq(ecl_char(line, 65534), 'a');
  ck_assert_int_eq(ecl_char(line, 65535), 0xe9);
  ck_assert_int_eq(ecl_char(line, 65536), 'z');
  line = read_line(s);
  ck_assert_int_eq(ecl_length(line), 1000);
  ck_assert_int_eq(ecl_char(line, 999), 'b');
  pthread_join(th, NULL);
  /* a CR LF whose halves arrive separately */
  send_text(sv[1], "x\r");
  th = start_later(&l, sv[1], 100000, "\ny\r\n", 4);
  ck_assert_str_eq(text(read_line(s)), "x");
  ck_assert_str_eq(text(read_line(s)), "y");
  pthread_join(th, NULL);
  free(data);
}
END_TEST

/* -- socket-status (status.c) ---------------------------------------------------- */

static cl_object
status(cl_object what, cl_object timeout, int *count)
{
  cl_object r = tu_call("%STATUS", "ECLSOCK", 2, what, timeout);
  ck_assert(ECL_FIXNUMP(tu_value2));
  *count = (int)ecl_fixnum(tu_value2);
  return r;
}

START_TEST(test_status_single)
{
  int sv[2], n;
  double t0, el;
  char buf[8];
  cl_object s, zero = ecl_make_fixnum(0);
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  /* idle: writable only */
  ck_assert(status(s, zero, &n) == kw("OUTPUT"));
  ck_assert_int_eq(n, 1);
  t0 = eclsock_tm_now();
  ck_assert(Null(status(ecl_cons(s, kw("INPUT")), ecl_make_double_float(0.1), &n)));
  el = eclsock_tm_now() - t0;
  ck_assert_int_eq(n, 0);
  ck_assert_msg(el >= 0.09 && el < 2.0, "0.1 s status took %f s", el);
  /* input arrives */
  send_text(sv[1], "ab\ncd\n");
  ck_assert(status(s, zero, &n) == kw("IO"));
  ck_assert(status(ecl_cons(s, kw("INPUT")), ECL_NIL, &n) == kw("INPUT"));
  ck_assert(status(ecl_cons(s, kw("OUTPUT")), zero, &n) == kw("OUTPUT"));
  /* buffered input counts, even with the socket itself empty */
  ck_assert_str_eq(text(read_line(s)), "ab");
  ck_assert_int_eq(recv(sv[0], buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT), -1);
  t0 = eclsock_tm_now();
  ck_assert(status(ecl_cons(s, kw("INPUT")), ECL_NIL, &n) == kw("INPUT"));
  ck_assert(eclsock_tm_now() - t0 < 0.5);
  ck_assert_str_eq(text(read_line(s)), "cd");
  /* pending output is sent by socket-status */
  tu_call("WRITE-STRING", "CL", 2, str("q"), s);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), -1);
  status(ecl_cons(s, kw("OUTPUT")), zero, &n);
  ck_assert_int_eq(recv_now(sv[1], buf, sizeof buf), 1);
  /* the peer left */
  close(sv[1]);
  ck_assert(status(ecl_cons(s, kw("INPUT")), zero, &n) == kw("EOF"));
  ck_assert_int_eq(n, 1);
  ck_assert(status(s, zero, &n) == kw("APPEND"));
}
END_TEST

START_TEST(test_status_lists)
{
  int a[2], b[2], n;
  cl_object s1, s2, r, zero = ecl_make_fixnum(0), l, el;
  tu_socketpair(a);
  tu_socketpair(b);
  s1 = char_stream(a[0]);
  s2 = char_stream(b[0]);
  send_text(b[1], "x");
  /* a list of (stream . direction): a fresh list of statuses */
  l = cl_list(2, ecl_cons(s1, kw("INPUT")), ecl_cons(s2, kw("INPUT")));
  r = status(l, zero, &n);
  ck_assert(r != l);
  ck_assert_int_eq(ecl_length(r), 2);
  ck_assert(Null(ECL_CONS_CAR(r)));
  ck_assert(ECL_CONS_CAR(ECL_CONS_CDR(r)) == kw("INPUT"));
  ck_assert_int_eq(n, 1);
  /* plain streams in a list */
  r = status(cl_list(2, s1, s2), zero, &n);
  ck_assert(ECL_CONS_CAR(r) == kw("OUTPUT"));
  ck_assert(ECL_CONS_CAR(ECL_CONS_CDR(r)) == kw("IO"));
  ck_assert_int_eq(n, 2);
  /* the destructive form (stream direction . x): the status goes into the
     cdr of (direction . x), and the list itself comes back */
  el = cl_list(2, s2, kw("INPUT"));
  l = ecl_list1(el);
  r = status(l, zero, &n);
  ck_assert(r == l);
  ck_assert(ECL_CONS_CDR(ECL_CONS_CDR(el)) == kw("INPUT"));
  ck_assert_int_eq(n, 1);
  /* a raw descriptor (no stream reads it) */
  {
    int c[2];
    tu_socketpair(c);
    ck_assert(Null(status(ecl_cons(ecl_make_fixnum(c[0]), kw("INPUT")), zero, &n)));
    send_text(c[1], "y");
    ck_assert(status(ecl_cons(ecl_make_fixnum(c[0]), kw("INPUT")), zero, &n) == kw("INPUT"));
    close(c[1]);
    recv_now(c[0], (char *)&n, 1);
    ck_assert(status(ecl_cons(ecl_make_fixnum(c[0]), kw("INPUT")), zero, &n) == kw("EOF"));
  }
}
END_TEST

START_TEST(test_status_server)
{
  int port, l = tu_listener(AF_INET, &port), c, n;
  cl_object server, zero = ecl_make_fixnum(0), cell;
  ck_assert_int_ge(l, 0);
  server = tu_call("MAKE-SERVER", "ECLSOCK", 1, ecl_make_fixnum(l));
  ck_assert(Null(status(server, zero, &n)));
  ck_assert_int_eq(n, 0);
  c = tu_connect(AF_INET, port);
  ck_assert(status(server, ecl_make_fixnum(5), &n) == ECL_T);
  ck_assert_int_eq(n, 1);
  /* (server . x) in a list: the status goes into the cdr */
  cell = ecl_cons(server, ECL_NIL);
  status(ecl_list1(cell), zero, &n);
  ck_assert(ECL_CONS_CDR(cell) == ECL_T);
  close(c);
  tu_call("CLOSE-SERVER", "ECLSOCK", 1, server);
  ck_assert(tu_typep(tu_call_error("%STATUS", "ECLSOCK", 2, server, zero), "ERROR", "CL"));
}
END_TEST

/* Raw descriptors: a listening socket reports a waiting connection as
   input, and a descriptor that is not open is an :ERROR at once (never a
   wait that spins forever). */
START_TEST(test_status_raw_fds)
{
  int port, l = tu_listener(AF_INET, &port), c, sv[2], n;
  cl_object zero = ecl_make_fixnum(0), r;
  double t0;
  ck_assert_int_ge(l, 0);
  ck_assert(Null(status(ecl_cons(ecl_make_fixnum(l), kw("INPUT")), zero, &n)));
  c = tu_connect(AF_INET, port);
  ck_assert(status(ecl_cons(ecl_make_fixnum(l), kw("INPUT")), ecl_make_fixnum(5), &n)
            == kw("INPUT"));
  ck_assert_int_eq(n, 1);
  close(c);
  close(l);
  tu_socketpair(sv);
  close(sv[0]);
  close(sv[1]);
  t0 = eclsock_tm_now();
  r = status(ecl_cons(ecl_make_fixnum(sv[0]), kw("INPUT")), ECL_NIL, &n);
  ck_assert_msg(r == kw("ERROR"), "closed descriptor: %s", tu_princ(r));
  ck_assert_int_eq(n, 1);
  ck_assert(status(ecl_make_fixnum(sv[0]), ECL_NIL, &n) == kw("ERROR"));
  ck_assert(eclsock_tm_now() - t0 < 1.0);
}
END_TEST

START_TEST(test_status_bad_arguments)
{
  int sv[2];
  cl_object s, zero = ecl_make_fixnum(0), c;
  tu_socketpair(sv);
  s = char_stream(sv[0]);
  c = tu_call_error("%STATUS", "ECLSOCK", 2, str("not a socket"), zero);
  ck_assert(tu_typep(c, "TYPE-ERROR", "CL"));
  c = tu_call_error("%STATUS", "ECLSOCK", 2, ECL_NIL, zero);
  ck_assert(tu_typep(c, "TYPE-ERROR", "CL"));
  c = tu_call_error("%STATUS", "ECLSOCK", 2, ecl_cons(s, kw("SIDEWAYS")), zero);
  ck_assert(tu_typep(c, "TYPE-ERROR", "CL"));
  c = tu_call_error("%STATUS", "ECLSOCK", 2, s, ecl_make_fixnum(-1));
  ck_assert(tu_typep(c, "TYPE-ERROR", "CL"));
  c = tu_call_error("%STATUS", "ECLSOCK", 2, cl_list(2, s, ecl_make_fixnum(-3)), zero);
  ck_assert(tu_typep(c, "TYPE-ERROR", "CL"));
  tu_call("CLOSE", "CL", 1, s);
  c = tu_call_error("%STATUS", "ECLSOCK", 2, s, zero);
  ck_assert(tu_typep(c, "ERROR", "CL"));
}
END_TEST

static Suite *
stream_suite(void)
{
  Suite *s = suite_create("stream");
  TCase *tc = tcase_create("io");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_make_and_query);
  tcase_add_test(tc, test_write_buffered);
  tcase_add_test(tc, test_write_unbuffered);
  tcase_add_test(tc, test_write_sequence_big);
  tcase_add_test(tc, test_read_line_utf8);
  tcase_add_test(tc, test_read_char_peek_unread);
  tcase_add_test(tc, test_crlf_and_latin1);
  tcase_add_test(tc, test_flush_before_read);
  tcase_add_test(tc, test_reader_and_writer_threads);
  tcase_add_test(tc, test_rcvtimeo_condition);
  tcase_add_test(tc, test_set_element_type);
  suite_add_tcase(s, tc);
  tc = tcase_create("read-octets");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_read_octets_no_hang);
  tcase_add_test(tc, test_read_octets_interactive);
  tcase_add_test(tc, test_read_octets_fill);
  tcase_add_test(tc, test_read_octets_large);
  tcase_add_test(tc, test_listen_and_probe);
  suite_add_tcase(s, tc);
  tc = tcase_create("boundaries");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_write_sizes_in_order);
  tcase_add_test(tc, test_read_sizes_in_order);
  tcase_add_test(tc, test_long_lines);
  suite_add_tcase(s, tc);
  tc = tcase_create("lifecycle");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_probe_error);
  tcase_add_test(tc, test_read_reset_signals);
  tcase_add_test(tc, test_shutdown);
  tcase_add_test(tc, test_close_exactly_once);
  tcase_add_test(tc, test_close_dead_peer);
  tcase_add_test(tc, test_write_dead_peer);
  suite_add_tcase(s, tc);
  tc = tcase_create("status");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_status_single);
  tcase_add_test(tc, test_status_lists);
  tcase_add_test(tc, test_status_server);
  tcase_add_test(tc, test_status_raw_fds);
  tcase_add_test(tc, test_status_bad_arguments);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(stream_suite, 1)
