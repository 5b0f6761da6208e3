/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_conn.c - Check suite "conn" for src/conn.c: making sockets
 * (eclsock_conn_open through the primitives) and the connection
 * primitives, called as Lisp calls them (ECLSOCK::%LISTEN, %CONNECT,
 * %ACCEPT ...).
 *
 * A listener is listening, non-blocking, on the address asked for; a
 * connection carries octets both ways and is named "socket LOCAL -> PEER";
 * an accept with nothing pending returns NIL when its timeout passes; Unix
 * sockets likewise.  Failures are the right conditions (refused, address
 * in use, bad path, bad descriptor) and leave no descriptor behind: the
 * process's open descriptors are counted before and after.  Bad arguments
 * are type errors before any socket exists.  Loads the built sock.fas for
 * the condition classes.
 */
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static cl_object str(const char *s) { return ecl_make_simple_base_string(s, -1); }
static cl_object fx(cl_fixnum n) { return ecl_make_fixnum(n); }
static cl_object kw(const char *n) { return ecl_make_keyword(n); }

static cl_object
octet_type(void)
{
  return cl_list(2, tu_sym("UNSIGNED-BYTE", "CL"), fx(8));
}


static cl_object
code_of(cl_object e)
{
  return cl_funcall(2, tu_sym("SOCKET-ERROR-CODE", "ECLSOCK"), e);
}

static int
fd_of(cl_object stream)
{
  int fd = eclsock_stream_fd(stream);
  ck_assert_int_ge(fd, 0);
  return fd;
}

/* (%listen "127.0.0.1" 0 5): the descriptor and its port. */
static int
listen_loopback(int *port)
{
  cl_object fd = tu_call("%LISTEN", "ECLSOCK", 3, str("127.0.0.1"), fx(0), fx(5));
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  ck_assert(ECL_FIXNUMP(fd));
  ck_assert_int_eq(getsockname(ecl_fixnum(fd), (struct sockaddr *)&sin, &len), 0);
  *port = ntohs(sin.sin_port);
  return (int)ecl_fixnum(fd);
}

static cl_object
connect_to(const char *host, int port, cl_object timeout)
{
  return tu_call("%CONNECT", "ECLSOCK", 6, str(host), fx(port), timeout,
                 octet_type(), ECL_NIL, ECL_T);
}

static cl_object
accept_on(int lfd, cl_object timeout)
{
  return tu_call("%ACCEPT", "ECLSOCK", 7, fx(lfd), timeout, octet_type(), ECL_NIL,
                 ECL_T, ECL_NIL, ECL_NIL);
}

/* Write TEXT to stream S (flushed), read as many octets from R. */
static void
carry(cl_object s, cl_object r, const char *text)
{
  size_t n = strlen(text), i;
  cl_object v = ecl_alloc_simple_vector(n, ecl_aet_b8);
  memcpy(v->vector.self.b8, text, n);
  cl_write_sequence(2, v, s);
  cl_finish_output(1, s);
  v = ecl_alloc_simple_vector(n, ecl_aet_b8);
  ck_assert(ecl_eql(cl_read_sequence(2, v, r), fx(n)));
  for (i = 0; i < n; i++)
    ck_assert_int_eq(v->vector.self.b8[i], (unsigned char)text[i]);
}

/* -- TCP ---------------------------------------------------------------- */

START_TEST(test_listen_connect_accept)
{
  int port, lfd = listen_loopback(&port), on = 0, fl;
  socklen_t len = sizeof on;
  cl_object c, a;
  char want[64];
  /* listening, non-blocking (accept never blocks past its wait) */
  ck_assert_int_eq(getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len), 0);
  ck_assert_int_ne(on, 0);
  fl = fcntl(lfd, F_GETFL);
  ck_assert(fl & O_NONBLOCK);
  c = connect_to("127.0.0.1", port, fx(5));
  a = accept_on(lfd, fx(5));
  ck_assert(eclsock_stream_p(c));
  ck_assert(eclsock_stream_p(a));
  carry(c, a, "from the client");
  carry(a, c, "and back");
  /* names: the accepted end's peer is the client's local end */
  snprintf(want, sizeof want, "-> 127.0.0.1:%d", port);
  ck_assert_msg(strstr(tu_princ(tu_call("%STREAM-NAME", "ECLSOCK", 1, c)), want),
                "name %s", tu_princ(tu_call("%STREAM-NAME", "ECLSOCK", 1, c)));
  snprintf(want, sizeof want, "socket 127.0.0.1:%d -> 127.0.0.1:", port);
  ck_assert_msg(strstr(tu_princ(tu_call("%STREAM-NAME", "ECLSOCK", 1, a)), want),
                "name %s", tu_princ(tu_call("%STREAM-NAME", "ECLSOCK", 1, a)));
  /* host and port as the caller named them */
  ck_assert_str_eq(tu_princ(tu_call("%STREAM-HOST", "ECLSOCK", 1, c)), "127.0.0.1");
  ck_assert(ecl_eql(tu_call("%STREAM-PORT", "ECLSOCK", 1, c), fx(port)));
  cl_close(1, c);
  cl_close(1, a);
  tu_call("%CLOSE-FD", "ECLSOCK", 1, fx(lfd));
  ck_assert(!tu_fd_open(lfd));
}
END_TEST

START_TEST(test_ipv6_name)
{
  int l6, port;
  cl_object c, a;
  char want[64];
  l6 = tu_listener(AF_INET6, &port);
  if (l6 < 0)
    return;                     /* no IPv6 loopback here */
  close(l6);
  l6 = (int)ecl_fixnum(tu_call("%LISTEN", "ECLSOCK", 3, str("::1"), fx(0), fx(5)));
  {
    struct sockaddr_in6 s6;
    socklen_t len = sizeof s6;
    ck_assert_int_eq(getsockname(l6, (struct sockaddr *)&s6, &len), 0);
    ck_assert_int_eq(s6.sin6_family, AF_INET6);
    port = ntohs(s6.sin6_port);
  }
  c = connect_to("::1", port, ECL_NIL);
  a = accept_on(l6, fx(5));
  snprintf(want, sizeof want, "-> [::1]:%d", port);
  ck_assert_msg(strstr(tu_princ(tu_call("%STREAM-NAME", "ECLSOCK", 1, c)), want),
                "name %s", tu_princ(tu_call("%STREAM-NAME", "ECLSOCK", 1, c)));
  carry(c, a, "six");
  cl_close(1, c);
  cl_close(1, a);
  close(l6);
}
END_TEST

START_TEST(test_accept_timeout)
{
  int port, lfd = listen_loopback(&port), before = tu_open_fds();
  /* nothing pending: NIL once the timeout passed, no descriptor made */
  ck_assert(Null(accept_on(lfd, fx(0))));
  ck_assert(Null(accept_on(lfd, ecl_make_double_float(0.05))));
  ck_assert_int_eq(tu_open_fds(), before);
  close(lfd);
}
END_TEST

START_TEST(test_connect_refused_no_leak)
{
  int port = tu_closed_port(), before = tu_open_fds(), i;
  for (i = 0; i < 20; i++) {
    cl_object e = tu_call_error("%CONNECT", "ECLSOCK", 6, str("127.0.0.1"), fx(port),
                                fx(5), octet_type(), ECL_NIL, ECL_T);
    ck_assert(tu_typep(e, "CONNECTION-REFUSED-ERROR", "ECLSOCK"));
    ck_assert_str_eq(tu_princ(cl_funcall(2, tu_sym("SOCKET-ERROR-SYSCALL", "ECLSOCK"), e)),
                     "connect");
    ck_assert(ecl_eql(cl_funcall(2, tu_sym("SOCKET-ERROR-PORT", "ECLSOCK"), e), fx(port)));
  }
  ck_assert_int_eq(tu_open_fds(), before);
}
END_TEST

START_TEST(test_address_in_use_no_leak)
{
  int port, lfd = listen_loopback(&port), before = tu_open_fds();
  cl_object e = tu_call_error("%LISTEN", "ECLSOCK", 3, str("127.0.0.1"), fx(port), fx(5));
  ck_assert(tu_typep(e, "ADDRESS-IN-USE-ERROR", "ECLSOCK"));
  ck_assert_str_eq(tu_princ(cl_funcall(2, tu_sym("SOCKET-ERROR-SYSCALL", "ECLSOCK"), e)),
                   "bind");
  ck_assert_int_eq(tu_open_fds(), before);
  close(lfd);
}
END_TEST

START_TEST(test_connect_from)
{
  int port, lfd = listen_loopback(&port), lport = tu_closed_port();
  cl_object c, a, peer;
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  /* from a chosen local port */
  c = tu_call("%CONNECT-FROM", "ECLSOCK", 8, str("127.0.0.1"), fx(port),
              str("127.0.0.1"), fx(lport), fx(5), octet_type(), ECL_NIL, ECL_T);
  a = accept_on(lfd, fx(5));
  ck_assert_int_eq(getpeername(fd_of(a), (struct sockaddr *)&sin, &len), 0);
  ck_assert_int_eq(ntohs(sin.sin_port), lport);
  peer = tu_call("%STREAM-NAME", "ECLSOCK", 1, a);
  ck_assert(ECL_STRINGP(peer));
  cl_close(1, c);
  cl_close(1, a);
  close(lfd);
}
END_TEST

START_TEST(test_bad_arguments_before_socket)
{
  int before = tu_open_fds();
  cl_object e;
  e = tu_call_error("%CONNECT", "ECLSOCK", 6, str("127.0.0.1"), fx(65536), ECL_NIL,
                    octet_type(), ECL_NIL, ECL_T);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%CONNECT", "ECLSOCK", 6, fx(1), fx(80), ECL_NIL,
                    octet_type(), ECL_NIL, ECL_T);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%CONNECT", "ECLSOCK", 6, str("127.0.0.1"), fx(80), fx(-1),
                    octet_type(), ECL_NIL, ECL_T);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%ACCEPT", "ECLSOCK", 7, fx(-3), ECL_NIL, octet_type(), ECL_NIL,
                    ECL_T, ECL_NIL, ECL_NIL);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%CONNECT-UNIX", "ECLSOCK", 5, kw("PATH"), ECL_NIL,
                    octet_type(), ECL_NIL, ECL_T);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  /* the stream argument check */
  e = tu_call_error("%STREAM-HOST", "ECLSOCK", 1, str("not a stream"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  ck_assert(cl_funcall(2, tu_sym("TYPE-ERROR-EXPECTED-TYPE", "CL"), e)
            == tu_sym("SOCKET-STREAM", "SOCKET"));
  ck_assert_int_eq(tu_open_fds(), before);
}
END_TEST

/* -- Unix sockets, wrap, close, shutdown ------------------------------- */

START_TEST(test_unix)
{
  char dir[] = "/tmp/check-conn.XXXXXX", path[128], longpath[200];
  int before, lfd;
  cl_object c, a, e;
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/l.sock", dir);
  lfd = (int)ecl_fixnum(tu_call("%LISTEN-UNIX", "ECLSOCK", 2, str(path), fx(5)));
  c = tu_call("%CONNECT-UNIX", "ECLSOCK", 5, str(path), fx(5), octet_type(), ECL_NIL,
              ECL_T);
  a = accept_on(lfd, fx(5));
  carry(c, a, "over a file");
  /* a Unix peer is named as the server bound it */
  ck_assert_msg(strstr(tu_princ(tu_call("%STREAM-NAME", "ECLSOCK", 1, c)), path),
                "name %s", tu_princ(tu_call("%STREAM-NAME", "ECLSOCK", 1, c)));
  cl_close(1, c);
  cl_close(1, a);
  close(lfd);
  before = tu_open_fds();
  /* bound already, no such file, too long, empty: conditions, no leak */
  e = tu_call_error("%LISTEN-UNIX", "ECLSOCK", 2, str(path), fx(5));
  ck_assert(tu_typep(e, "ADDRESS-IN-USE-ERROR", "ECLSOCK"));
  unlink(path);
  e = tu_call_error("%CONNECT-UNIX", "ECLSOCK", 5, str(path), ECL_NIL, octet_type(),
                    ECL_NIL, ECL_T);
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("ENOENT"));
  memset(longpath, 'x', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = 0;
  e = tu_call_error("%CONNECT-UNIX", "ECLSOCK", 5, str(longpath), ECL_NIL, octet_type(),
                    ECL_NIL, ECL_T);
  ck_assert(code_of(e) == kw("ENAMETOOLONG"));
  e = tu_call_error("%LISTEN-UNIX", "ECLSOCK", 2, str(""), fx(5));
  ck_assert(code_of(e) == kw("EINVAL"));
  ck_assert_int_eq(tu_open_fds(), before);
  rmdir(dir);
}
END_TEST

START_TEST(test_wrap_close_shutdown)
{
  int sv[2], before;
  cl_object s, e;
  char buf[8];
  tu_socketpair(sv);
  s = tu_call("%WRAP-FD", "ECLSOCK", 6, fx(sv[0]), octet_type(), ECL_NIL, ECL_T,
              ECL_NIL, ECL_NIL);
  ck_assert_int_eq(fd_of(s), sv[0]);
  /* the stream owns the descriptor: closing it closes sv[0] */
  cl_close(1, s);
  ck_assert(!tu_fd_open(sv[0]));
  /* %close-fd of a closed descriptor: EBADF as a condition */
  e = tu_call_error("%CLOSE-FD", "ECLSOCK", 1, fx(sv[0]));
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("EBADF"));
  close(sv[1]);
  /* shutdown of the write side: the peer reads end of file */
  tu_socketpair(sv);
  tu_call("%SHUTDOWN-FD", "ECLSOCK", 2, fx(sv[0]), fx(1));
  ck_assert_int_eq(read(sv[1], buf, sizeof buf), 0);
  close(sv[0]);
  close(sv[1]);
  /* of a socket never connected: nothing to do, no condition (ENOTCONN) */
  before = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert(Null(tu_call("%SHUTDOWN-FD", "ECLSOCK", 2, fx(before), fx(2))));
  close(before);
  /* of a closed descriptor: a condition */
  e = tu_call_error("%SHUTDOWN-FD", "ECLSOCK", 2, fx(before), fx(2));
  ck_assert(code_of(e) == kw("EBADF"));
}
END_TEST

static Suite *
conn_suite(void)
{
  Suite *s = suite_create("conn");
  TCase *tc = tcase_create("tcp");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_listen_connect_accept);
  tcase_add_test(tc, test_ipv6_name);
  tcase_add_test(tc, test_accept_timeout);
  tcase_add_test(tc, test_connect_refused_no_leak);
  tcase_add_test(tc, test_address_in_use_no_leak);
  tcase_add_test(tc, test_connect_from);
  tcase_add_test(tc, test_bad_arguments_before_socket);
  suite_add_tcase(s, tc);
  tc = tcase_create("unix-and-descriptors");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_unix);
  tcase_add_test(tc, test_wrap_close_shutdown);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(conn_suite, 1)
