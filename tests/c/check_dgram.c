/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_dgram.c - Check suite "dgram" for src/dgram.c: the core faces'
 * datagram primitives as Lisp calls them (ECLSOCK::%DATAGRAM,
 * %DATAGRAM-UNIX, %SEND-TO, %DATAGRAM-CONNECT, %RECEIVE-FROM).
 *
 * Sockets are bound where asked (the kernel's port when 0), with
 * SO_REUSEADDR and SO_BROADCAST when asked; datagrams go to a name or to
 * the connected peer and arrive with their sender; a connected socket
 * hears of a closed port as CONNECTION-REFUSED-ERROR; bad families, ports
 * and destinations are conditions before any send, and failures leave no
 * descriptor behind.  Loads the built sock.fas for the condition classes.
 */
#include "testutil.h"
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static cl_object str(const char *s) { return ecl_make_simple_base_string(s, -1); }
static cl_object fx(cl_fixnum n) { return ecl_make_fixnum(n); }
static cl_object kw(const char *n) { return ecl_make_keyword(n); }


static cl_object
code_of(cl_object e)
{
  return cl_funcall(2, tu_sym("SOCKET-ERROR-CODE", "ECLSOCK"), e);
}

/* No receive of this suite waits longer than 5 s. */
static void
bounded(int fd)
{
  struct timeval tv = { 5, 0 };
  ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
}

/* (%datagram host port family reuse broadcast) -> descriptor */
static int
datagram(const char *host, cl_object family, int reuse, int broadcast, int *port)
{
  cl_object fd = tu_call("%DATAGRAM", "ECLSOCK", 5, host ? str(host) : ECL_NIL, fx(0),
                         family, reuse ? ECL_T : ECL_NIL, broadcast ? ECL_T : ECL_NIL);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int type = 0;
  socklen_t tlen = sizeof type;
  ck_assert(ECL_FIXNUMP(fd));
  ck_assert_int_eq(getsockopt(ecl_fixnum(fd), SOL_SOCKET, SO_TYPE, &type, &tlen), 0);
  ck_assert_int_eq(type, SOCK_DGRAM);
  ck_assert_int_eq(getsockname(ecl_fixnum(fd), (struct sockaddr *)&ss, &len), 0);
  *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                : ((struct sockaddr_in *)&ss)->sin_port);
  bounded((int)ecl_fixnum(fd));
  return (int)ecl_fixnum(fd);
}

static cl_object
octets(const char *text)
{
  size_t n = strlen(text);
  cl_object v = ecl_alloc_simple_vector(n, ecl_aet_b8);
  memcpy(v->vector.self.b8, text, n);
  return v;
}

static cl_object
send_to(int fd, const char *text, cl_object host, cl_object port)
{
  cl_object v = octets(text);
  return tu_call("%SEND-TO", "ECLSOCK", 6, fx(fd), v, fx(0), fx(v->vector.dim), host, port);
}

static cl_object
send_to_error(int fd, const char *text, cl_object host, cl_object port)
{
  cl_object v = octets(text);
  return tu_call_error("%SEND-TO", "ECLSOCK", 6, fx(fd), v, fx(0), fx(v->vector.dim),
                       host, port);
}

/* (%receive-from fd buf 0 64): the four values in OUT, the text received
   in *TEXT (static). */
struct recv_call { int fd; cl_object v, out[4]; };

static void
run_receive(void *arg)
{
  struct recv_call *r = arg;
  const cl_env_ptr env = ecl_process_env();
  int i;
  r->out[0] = cl_funcall(5, tu_sym("%RECEIVE-FROM", "ECLSOCK"), fx(r->fd), r->v, fx(0),
                         fx(64));
  ck_assert_int_eq(env->nvalues, 4);
  for (i = 1; i < 4; i++)
    r->out[i] = env->values[i];
}

static void
receive(int fd, cl_object out[4], const char **text)
{
  static char buf[65];
  struct recv_call r;
  cl_object e;
  int i;
  r.fd = fd;
  r.v = ecl_alloc_simple_vector(64, ecl_aet_b8);
  e = tu_catch(run_receive, &r);
  ck_assert_msg(Null(e), "receive signalled %s", tu_princ(e));
  ck_assert(ECL_FIXNUMP(r.out[0]));
  for (i = 0; i < 4; i++)
    out[i] = r.out[i];
  memcpy(buf, r.v->vector.self.b8, ecl_fixnum(out[0]));
  buf[ecl_fixnum(out[0])] = 0;
  *text = buf;
}

START_TEST(test_datagram_inet)
{
  int pa, pb, a = datagram("127.0.0.1", ECL_NIL, 0, 0, &pa),
    b = datagram("127.0.0.1", kw("INET"), 0, 0, &pb);
  cl_object out[4];
  const char *text;
  ck_assert_int_gt(pa, 0);
  ck_assert_int_ne(pa, pb);
  ck_assert(ecl_eql(send_to(a, "ping", str("127.0.0.1"), fx(pb)), fx(4)));
  receive(b, out, &text);
  ck_assert(ecl_eql(out[0], fx(4)));
  ck_assert_str_eq(text, "ping");
  ck_assert_str_eq(tu_princ(out[1]), "127.0.0.1");
  ck_assert(ecl_eql(out[2], fx(pa)));
  ck_assert(out[3] == kw("INET"));
  /* a name, not only a numeric address */
  ck_assert(ecl_eql(send_to(b, "pong", str("localhost"), fx(pa)), fx(4)));
  receive(a, out, &text);
  ck_assert_str_eq(text, "pong");
  ck_assert(ecl_eql(out[2], fx(pb)));
  close(a);
  close(b);
}
END_TEST

START_TEST(test_datagram_options)
{
  int p, fd = datagram("127.0.0.1", ECL_NIL, 1, 1, &p), on = 0;
  socklen_t len = sizeof on;
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, &len), 0);
  ck_assert_int_ne(on, 0);
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, &len), 0);
  ck_assert_int_ne(on, 0);
  close(fd);
  fd = datagram("127.0.0.1", ECL_NIL, 0, 0, &p);
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, &len), 0);
  ck_assert_int_eq(on, 0);
  close(fd);
}
END_TEST

START_TEST(test_datagram_inet6)
{
  int pa, pb, a, b, probe = tu_listener(AF_INET6, &pa);
  cl_object out[4];
  const char *text;
  if (probe < 0)
    return;                     /* no IPv6 loopback here */
  close(probe);
  a = datagram("::1", kw("INET6"), 0, 0, &pa);
  b = datagram("::1", ECL_NIL, 0, 0, &pb);
  ck_assert(ecl_eql(send_to(a, "six", str("::1"), fx(pb)), fx(3)));
  receive(b, out, &text);
  ck_assert_str_eq(text, "six");
  ck_assert_str_eq(tu_princ(out[1]), "::1");
  ck_assert(out[3] == kw("INET6"));
  close(a);
  close(b);
}
END_TEST

START_TEST(test_datagram_connect)
{
  int pa, pb, a = datagram("127.0.0.1", ECL_NIL, 0, 0, &pa),
    b = datagram("127.0.0.1", ECL_NIL, 0, 0, &pb), closed = tu_closed_port();
  cl_object out[4], e;
  const char *text;
  ck_assert(Null(tu_call("%DATAGRAM-CONNECT", "ECLSOCK", 3, fx(a), str("127.0.0.1"),
                         fx(pb))));
  /* no destination: the connected peer */
  ck_assert(ecl_eql(send_to(a, "connected", ECL_NIL, ECL_NIL), fx(9)));
  receive(b, out, &text);
  ck_assert_str_eq(text, "connected");
  ck_assert(ecl_eql(out[2], fx(pa)));
  /* connected to a port where nobody listens: the ICMP error comes back as
     CONNECTION-REFUSED-ERROR on the next receive */
  tu_call("%DATAGRAM-CONNECT", "ECLSOCK", 3, fx(a), str("127.0.0.1"), fx(closed));
  send_to(a, "nobody", ECL_NIL, ECL_NIL);
  e = tu_call_error("%RECEIVE-FROM", "ECLSOCK", 4, fx(a),
                    ecl_alloc_simple_vector(8, ecl_aet_b8), fx(0), fx(8));
  ck_assert_msg(tu_typep(e, "CONNECTION-REFUSED-ERROR", "ECLSOCK"), "got %s",
                tu_princ(cl_type_of(e)));
  close(a);
  close(b);
}
END_TEST

START_TEST(test_datagram_unix)
{
  char dir[] = "/tmp/check-dgram.XXXXXX", path[128];
  int b, a;
  cl_object out[4], e;
  const char *text;
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/b.sock", dir);
  b = (int)ecl_fixnum(tu_call("%DATAGRAM-UNIX", "ECLSOCK", 1, str(path)));
  bounded(b);
  a = (int)ecl_fixnum(tu_call("%DATAGRAM-UNIX", "ECLSOCK", 1, ECL_NIL));
  /* to a file; an unnamed sender is "" with port 0 */
  ck_assert(ecl_eql(send_to(a, "unix", str(path), ECL_NIL), fx(4)));
  receive(b, out, &text);
  ck_assert_str_eq(text, "unix");
  ck_assert_str_eq(tu_princ(out[1]), "");
  ck_assert(ecl_eql(out[2], fx(0)));
  ck_assert(out[3] == kw("UNIX"));
  /* bound already: a condition, no leak */
  {
    int before = tu_open_fds();
    e = tu_call_error("%DATAGRAM-UNIX", "ECLSOCK", 1, str(path));
    ck_assert(tu_typep(e, "ADDRESS-IN-USE-ERROR", "ECLSOCK"));
    ck_assert_int_eq(tu_open_fds(), before);
  }
  close(a);
  close(b);
  unlink(path);
  rmdir(dir);
}
END_TEST

START_TEST(test_bad_input)
{
  int p, a = datagram("127.0.0.1", ECL_NIL, 0, 0, &p), before = tu_open_fds();
  unsigned long sends;
  cl_object e;
  /* a family that is none: a type error naming the choices */
  e = tu_call_error("%DATAGRAM", "ECLSOCK", 5, str("127.0.0.1"), fx(0), kw("APPLETALK"),
                    ECL_NIL, ECL_NIL);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  /* an address of the other family */
  e = tu_call_error("%DATAGRAM", "ECLSOCK", 5, str("::1"), fx(0), kw("INET"),
                    ECL_NIL, ECL_NIL);
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert_int_eq(tu_open_fds(), before);
  /* a bad port or destination: nothing is sent */
  sends = eclsock_os_send_calls();
  e = send_to_error(a, "x", str("127.0.0.1"), fx(-1));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = send_to_error(a, "x", str("127.0.0.1"), ECL_NIL);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = send_to_error(a, "x", str("host\tname"), fx(9));
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("EINVAL"));
  ck_assert_uint_eq(eclsock_os_send_calls(), sends);
  /* no destination on an unconnected socket: the kernel's refusal */
  e = send_to_error(a, "x", ECL_NIL, ECL_NIL);
  ck_assert(code_of(e) == kw("EDESTADDRREQ"));
  /* bounds outside the vector */
  e = tu_call_error("%SEND-TO", "ECLSOCK", 6, fx(a), octets("abc"), fx(0), fx(4),
                    str("127.0.0.1"), fx(9));
  ck_assert(tu_typep(e, "ERROR", "CL"));
  close(a);
}
END_TEST

static Suite *
dgram_suite(void)
{
  Suite *s = suite_create("dgram");
  TCase *tc = tcase_create("datagrams");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_datagram_inet);
  tcase_add_test(tc, test_datagram_options);
  tcase_add_test(tc, test_datagram_inet6);
  tcase_add_test(tc, test_datagram_connect);
  tcase_add_test(tc, test_datagram_unix);
  tcase_add_test(tc, test_bad_input);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(dgram_suite, 1)
