/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_os.c - Check suite "os" for src/os.c: socket, bind+listen, accept
 * and connect with deadlines, send_all/recv, shutdown, close, on loopback
 * addresses with kernel-chosen ports and on socketpairs.
 */
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>

static int
nonblocking(int fd)
{
  return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

static int
cloexec(int fd)
{
  return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

static int
local_port(int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
               : ((struct sockaddr_in *)&ss)->sin_port);
}

/* -- socket, bind_listen, close ----------------------------------------- */

START_TEST(test_socket)
{
  volatile int fd = -7;
  ck_assert_int_eq(eclsock_os_socket(AF_INET, SOCK_STREAM, &fd), 0);
  ck_assert_int_ge(fd, 0);
  ck_assert(cloexec(fd));
  ck_assert(!nonblocking(fd));
  ck_assert_int_eq(eclsock_os_close(fd), 0);
  ck_assert(!tu_fd_open(fd));
  /* failure: the errno, and no descriptor */
  ck_assert_int_eq(eclsock_os_socket(12345, SOCK_STREAM, &fd), EAFNOSUPPORT);
  ck_assert_int_eq(fd, -1);
  ck_assert_int_eq(eclsock_os_close(fd), EBADF);
}
END_TEST

START_TEST(test_bind_listen)
{
  volatile int fd = -1, fd2 = -1;
  struct sockaddr_storage ss;
  socklen_t len = tu_loopback(AF_INET, 0, &ss);
  int on = 0, port;
  socklen_t ol = sizeof on;
  ck_assert_int_eq(eclsock_os_socket(AF_INET, SOCK_STREAM, &fd), 0);
  ck_assert_int_eq(eclsock_os_bind_listen(fd, (struct sockaddr *)&ss, len, 5), 0);
  port = local_port(fd);
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol), 0);
  ck_assert_int_eq(on, 1);
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, &ol), 0);
  ck_assert_int_eq(on, 1);
  /* the same port again while it listens */
  len = tu_loopback(AF_INET, port, &ss);
  ck_assert_int_eq(eclsock_os_socket(AF_INET, SOCK_STREAM, &fd2), 0);
  ck_assert_int_eq(eclsock_os_bind_listen(fd2, (struct sockaddr *)&ss, len, 5),
                   EADDRINUSE);
  /* an address that is not ours */
  {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    volatile int fd3 = -1;
    s4->sin_addr.s_addr = htonl(0xC0000201);      /* 192.0.2.1, TEST-NET-1 */
    s4->sin_port = 0;
    ck_assert_int_eq(eclsock_os_socket(AF_INET, SOCK_STREAM, &fd3), 0);
    ck_assert_int_eq(eclsock_os_bind_listen(fd3, (struct sockaddr *)&ss, len, 5),
                     EADDRNOTAVAIL);
    close(fd3);
  }
  close(fd);
  close(fd2);
}
END_TEST

/* -- connect and accept --------------------------------------------------- */

static void
connect_accept(int family)
{
  volatile int l = -1, c = -1, a = -1;
  struct sockaddr_storage ss;
  socklen_t len = tu_loopback(family, 0, &ss);
  unsigned char buf[8];
  size_t got = 0;
  int port;
  ck_assert_int_eq(eclsock_os_socket(family, SOCK_STREAM, &l), 0);
  ck_assert_int_eq(eclsock_os_bind_listen(l, (struct sockaddr *)&ss, len, 5), 0);
  port = local_port(l);
  len = tu_loopback(family, port, &ss);
  ck_assert_int_eq(eclsock_os_socket(family, SOCK_STREAM, &c), 0);
  ck_assert_int_eq(eclsock_os_connect(c, (struct sockaddr *)&ss, len,
                                      eclsock_tm_deadline(5.0)), 0);
  ck_assert(!nonblocking(c));             /* left blocking for the stream */
  ck_assert_int_eq(eclsock_os_accept(l, &a, eclsock_tm_deadline(5.0)), 0);
  ck_assert_int_ge(a, 0);
  ck_assert(!nonblocking(a));
  ck_assert(cloexec(a));
  /* they are the two ends of one connection */
  ck_assert_int_eq(eclsock_os_send_all(c, (const unsigned char *)"hi", 2, NULL), 0);
  ck_assert_int_eq(eclsock_os_recv(a, buf, sizeof buf, 0, &got), 0);
  ck_assert_uint_eq(got, 2);
  ck_assert(!memcmp(buf, "hi", 2));
  close(a);
  close(c);
  close(l);
}

START_TEST(test_connect_accept_v4)
{
  connect_accept(AF_INET);
}
END_TEST

START_TEST(test_connect_accept_v6)
{
  int port, probe = tu_listener(AF_INET6, &port);
  if (probe < 0)
    return;                     /* no IPv6 loopback on this machine */
  close(probe);
  connect_accept(AF_INET6);
}
END_TEST

START_TEST(test_connect_unix)
{
  volatile int l = -1, c = -1, a = -1;
  struct sockaddr_un su;
  socklen_t len;
  memset(&su, 0, sizeof su);
  su.sun_family = AF_UNIX;
  snprintf(su.sun_path, sizeof su.sun_path, "/tmp/check_os.%ld.sock", (long)getpid());
  unlink(su.sun_path);
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(su.sun_path) + 1);
  ck_assert_int_eq(eclsock_os_socket(AF_UNIX, SOCK_STREAM, &l), 0);
  ck_assert_int_eq(eclsock_os_bind_listen(l, (struct sockaddr *)&su, len, 5), 0);
  ck_assert_int_eq(eclsock_os_socket(AF_UNIX, SOCK_STREAM, &c), 0);
  ck_assert_int_eq(eclsock_os_connect(c, (struct sockaddr *)&su, len,
                                      eclsock_tm_deadline(5.0)), 0);
  ck_assert_int_eq(eclsock_os_accept(l, &a, eclsock_tm_deadline(5.0)), 0);
  ck_assert_int_ge(a, 0);
  unlink(su.sun_path);
  /* nobody at the path any more: ENOENT */
  close(c);
  c = -1;
  ck_assert_int_eq(eclsock_os_socket(AF_UNIX, SOCK_STREAM, &c), 0);
  ck_assert_int_eq(eclsock_os_connect(c, (struct sockaddr *)&su, len,
                                      eclsock_tm_deadline(5.0)), ENOENT);
  close(a);
  close(c);
  close(l);
}
END_TEST

START_TEST(test_connect_refused)
{
  volatile int c = -1;
  struct sockaddr_storage ss;
  socklen_t len = tu_loopback(AF_INET, tu_closed_port(), &ss);
  double t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_os_socket(AF_INET, SOCK_STREAM, &c), 0);
  ck_assert_int_eq(eclsock_os_connect(c, (struct sockaddr *)&ss, len,
                                      eclsock_tm_deadline(5.0)), ECONNREFUSED);
  ck_assert(eclsock_tm_now() - t0 < 2.0);
  close(c);
}
END_TEST

START_TEST(test_accept_timeout)
{
  int port, l = tu_listener(AF_INET, &port);
  volatile int a = -5;
  double t0, el;
  ck_assert_int_ge(l, 0);
  t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_os_accept(l, &a, eclsock_tm_deadline(0.1)), ECLSOCK_ETIMEOUT);
  el = eclsock_tm_now() - t0;
  ck_assert_msg(el >= 0.09 && el < 2.0, "0.1 s accept took %f s", el);
  /* a zero deadline is a non-blocking try */
  t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_os_accept(l, &a, eclsock_tm_deadline(0.0)), ECLSOCK_ETIMEOUT);
  ck_assert(eclsock_tm_now() - t0 < 0.5);
  close(l);
}
END_TEST

START_TEST(test_accept_not_listening)
{
  volatile int s = -1, a = -1;
  double t0;
  ck_assert_int_eq(eclsock_os_socket(AF_INET, SOCK_STREAM, &s), 0);
  t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_os_accept(s, &a, eclsock_tm_deadline(1.0)), EINVAL);
  ck_assert(eclsock_tm_now() - t0 < 0.9);
  ck_assert_int_lt(a, 0);
  close(s);
}
END_TEST

/* -- send_all and recv ---------------------------------------------------- */

START_TEST(test_send_recv_pair)
{
  int sv[2];
  unsigned char buf[16];
  size_t got = 99;
  tu_socketpair(sv);
  ck_assert_int_eq(eclsock_os_send_all(sv[0], (const unsigned char *)"hello", 5, NULL), 0);
  ck_assert_int_eq(eclsock_os_recv(sv[1], buf, 3, 0, &got), 0);
  ck_assert_uint_eq(got, 3);
  ck_assert(!memcmp(buf, "hel", 3));
  ck_assert_int_eq(eclsock_os_recv(sv[1], buf, sizeof buf, 0, &got), 0);
  ck_assert_uint_eq(got, 2);
  ck_assert(!memcmp(buf, "lo", 2));
  /* nothing there: a non-blocking try says EAGAIN */
  ck_assert_int_eq(eclsock_os_recv(sv[1], buf, sizeof buf, MSG_DONTWAIT, &got), EAGAIN);
  /* zero octets is a no-op */
  ck_assert_int_eq(eclsock_os_send_all(sv[0], buf, 0, NULL), 0);
  /* EOF */
  close(sv[0]);
  got = 99;
  ck_assert_int_eq(eclsock_os_recv(sv[1], buf, sizeof buf, 0, &got), 0);
  ck_assert_uint_eq(got, 0);
  close(sv[1]);
  ck_assert_int_eq(eclsock_os_recv(sv[1], buf, sizeof buf, 0, &got), EBADF);
}
END_TEST

#define BIG (1024 * 1024)

struct reader { int fd; unsigned char *buf; size_t got; };

static void *
read_all(void *arg)
{
  struct reader *r = arg;
  for (;;) {
    ssize_t n = read(r->fd, r->buf + r->got, BIG + 1 - r->got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    r->got += (size_t)n;
  }
  return NULL;
}

/* 1 MiB is several times the socket buffer: send_all must loop on short
   counts while the reader drains. */
START_TEST(test_send_all_big)
{
  int sv[2];
  size_t i;
  unsigned char *out = malloc(BIG);
  struct reader r;
  pthread_t th;
  ck_assert_ptr_nonnull(out);
  tu_socketpair(sv);
  for (i = 0; i < BIG; i++)
    out[i] = (unsigned char)((i * 7 + (i >> 11)) & 0xff);
  r.fd = sv[1];
  r.buf = malloc(BIG + 1);
  r.got = 0;
  ck_assert_ptr_nonnull(r.buf);
  ck_assert_int_eq(pthread_create(&th, NULL, read_all, &r), 0);
  ck_assert_int_eq(eclsock_os_send_all(sv[0], out, BIG, NULL), 0);
  ck_assert_int_eq(eclsock_os_shutdown(sv[0], SHUT_WR), 0);
  pthread_join(th, NULL);
  ck_assert_uint_eq(r.got, BIG);
  ck_assert(!memcmp(out, r.buf, BIG));
  free(out);
  free(r.buf);
}
END_TEST

/* A vanished peer gives EPIPE, not SIGPIPE, even with SIGPIPE at its
   default action (a host that turned off ECL's trap). */
START_TEST(test_send_epipe)
{
  int sv[2];
  signal(SIGPIPE, SIG_DFL);
  tu_socketpair(sv);
  close(sv[1]);
  ck_assert_int_eq(eclsock_os_send_all(sv[0], (const unsigned char *)"x", 1, NULL), EPIPE);
  close(sv[0]);
}
END_TEST

/* The send counter counts every send-family call: one that goes, one that
   finds the socket full (EAGAIN), one to a vanished peer, and sendto. */
START_TEST(test_send_counter)
{
  int sv[2];
  unsigned char buf[65536] = { 0 };
  size_t sent, total = 0;
  unsigned long n0, n;
  signal(SIGPIPE, SIG_DFL);
  tu_socketpair(sv);
  n0 = eclsock_os_send_calls();
  ck_assert_int_eq(eclsock_os_send_all(sv[0], buf, 1, NULL), 0);
  ck_assert_uint_eq(eclsock_os_send_calls() - n0, 1);
  /* fill the socket: the last try finds it full and sends nothing (one
     system call each: send_nowait stops at EAGAIN) */
  do {
    n = eclsock_os_send_calls();
    ck_assert_int_eq(eclsock_os_send_nowait(sv[0], buf, sizeof buf, &sent), 0);
    total += sent;
  } while (sent > 0 && total < 64 * sizeof buf);
  ck_assert_uint_eq(sent, 0);
  ck_assert_uint_eq(eclsock_os_send_calls() - n, 1);
  n = eclsock_os_send_calls();
  ck_assert_int_eq(eclsock_os_sendto(sv[1], buf, 1, 0, NULL, 0, &sent), 0);
  ck_assert_uint_eq(eclsock_os_send_calls() - n, 1);
  close(sv[1]);
  n = eclsock_os_send_calls();
  ck_assert_int_eq(eclsock_os_send_all(sv[0], buf, 1, NULL), EPIPE);
  ck_assert_uint_eq(eclsock_os_send_calls() - n, 1);
  close(sv[0]);
}
END_TEST

/* SO_RCVTIMEO / SO_SNDTIMEO expiry is reported as our timeout code. */
START_TEST(test_kernel_timeouts)
{
  int sv[2];
  struct timeval tv = { 0, 100000 };
  unsigned char buf[4096], *big;
  size_t got;
  double t0, el;
  tu_socketpair(sv);
  ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_os_recv(sv[0], buf, sizeof buf, 0, &got), ECLSOCK_ETIMEOUT);
  el = eclsock_tm_now() - t0;
  ck_assert_msg(el >= 0.09 && el < 2.0, "recv timeout took %f s", el);
  ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  big = calloc(1, 8 * BIG);
  ck_assert_ptr_nonnull(big);
  t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_os_send_all(sv[0], big, 8 * BIG, NULL), ECLSOCK_ETIMEOUT);
  ck_assert(eclsock_tm_now() - t0 < 5.0);
  free(big);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* -- shutdown, nonblock ----------------------------------------------------- */

START_TEST(test_shutdown)
{
  int sv[2];
  volatile int s = -1;
  unsigned char buf[8];
  size_t got = 99;
  tu_tcp_pair(sv);
  ck_assert_int_eq(eclsock_os_send_all(sv[0], (const unsigned char *)"end", 3, NULL), 0);
  ck_assert_int_eq(eclsock_os_shutdown(sv[0], SHUT_WR), 0);
  ck_assert_uint_eq(tu_read_full(sv[1], buf, 3), 3);
  ck_assert_int_eq(eclsock_os_recv(sv[1], buf, sizeof buf, 0, &got), 0);
  ck_assert_uint_eq(got, 0);                    /* EOF after the data */
  /* the other direction still works */
  ck_assert_int_eq(eclsock_os_send_all(sv[1], (const unsigned char *)"ok", 2, NULL), 0);
  ck_assert_int_eq(eclsock_os_recv(sv[0], buf, sizeof buf, 0, &got), 0);
  ck_assert_uint_eq(got, 2);
  /* writing after SHUT_WR */
  ck_assert_int_eq(eclsock_os_send_all(sv[0], (const unsigned char *)"x", 1, NULL), EPIPE);
  close(sv[0]);
  close(sv[1]);
  ck_assert_int_eq(eclsock_os_shutdown(sv[0], SHUT_RDWR), EBADF);
  ck_assert_int_eq(eclsock_os_socket(AF_INET, SOCK_STREAM, &s), 0);
  ck_assert_int_eq(eclsock_os_shutdown(s, SHUT_RDWR), ENOTCONN);
  close(s);
}
END_TEST

START_TEST(test_set_nonblock)
{
  int sv[2];
  tu_socketpair(sv);
  ck_assert_int_eq(eclsock_os_set_nonblock(sv[0], 1), 0);
  ck_assert(nonblocking(sv[0]));
  ck_assert_int_eq(eclsock_os_set_nonblock(sv[0], 0), 0);
  ck_assert(!nonblocking(sv[0]));
  close(sv[0]);
  close(sv[1]);
  ck_assert_int_eq(eclsock_os_set_nonblock(sv[0], 1), EBADF);
}
END_TEST

static Suite *
os_suite(void)
{
  Suite *s = suite_create("os");
  TCase *tc = tcase_create("socket");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_socket);
  tcase_add_test(tc, test_bind_listen);
  tcase_add_test(tc, test_set_nonblock);
  suite_add_tcase(s, tc);
  tc = tcase_create("connect-accept");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_connect_accept_v4);
  tcase_add_test(tc, test_connect_accept_v6);
  tcase_add_test(tc, test_connect_unix);
  tcase_add_test(tc, test_connect_refused);
  tcase_add_test(tc, test_accept_timeout);
  tcase_add_test(tc, test_accept_not_listening);
  suite_add_tcase(s, tc);
  tc = tcase_create("send-recv");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_send_recv_pair);
  tcase_add_test(tc, test_send_all_big);
  tcase_add_test(tc, test_send_epipe);
  tcase_add_test(tc, test_send_counter);
  tcase_add_test(tc, test_kernel_timeouts);
  tcase_add_test(tc, test_shutdown);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(os_suite, 0)
