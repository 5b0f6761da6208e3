/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_lispval.c - Check suite "lispval" for src/lispval.c: the Lisp
 * objects of option values and socket addresses as each face shows them,
 * and the one datagram send and receive of both faces.
 *
 * Options: every keyword of the table is found (and nothing else), values
 * written through one face read back as that face shows them (booleans,
 * integers, linger, whole and fractional seconds), bad values are type
 * errors before the system call (the option keeps its value).  Addresses:
 * IPv4, IPv6, Unix files, abstract names and unnamed sockets in both
 * faces; SB-BSD-SOCKETS' (family address port) back to the same socket
 * address.  Datagrams over loopback UDP and Unix sockets made with plain
 * system calls: what was sent arrives, the sender is named, a non-blocking
 * receive with nothing there, a timeout, bad destinations.  Loads the
 * built sock.fas for the condition classes.
 */
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
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
octets_of(const void *p, size_t n)
{
  cl_object v = ecl_alloc_simple_vector(n, ecl_aet_b8);
  memcpy(v->vector.self.b8, p, n);
  return v;
}

/* -- Calls that may signal ---------------------------------------------- */

enum which { OPTION, GETOPT, SETOPT, SOCKADDR, SEND, RECEIVE, OPTKIND };
struct call {
  enum which fn;
  int fd, level, name, flags;
  enum eclsock_optkind kind;
  enum eclsock_face face;
  cl_object a, b, c, d, e, value;
  eclsock_addr addr;
  const struct eclsock_option *opt;
  cl_object values[4];
  int nvalues;
};

static void
run(void *arg)
{
  struct call *c = arg;
  const cl_env_ptr env = ecl_process_env();
  int i;
  switch (c->fn) {
  case OPTION: c->opt = eclsock_lv_option(c->a); break;
  case OPTKIND: c->kind = eclsock_lv_optkind(c->a); break;
  case GETOPT:
    c->value = eclsock_lv_getsockopt(c->fd, c->level, c->name, c->kind, c->face);
    break;
  case SETOPT:
    eclsock_lv_setsockopt(c->fd, c->level, c->name, c->kind, c->face, c->value);
    break;
  case SOCKADDR: eclsock_lv_sockaddr(c->a, c->b, c->c, &c->addr); break;
  case SEND:
    /* a = octets, b = family, c = address, d = port */
    c->values[0] = eclsock_lv_send(c->fd, c->a, fx(0), fx(c->a->vector.dim), c->flags,
                                   c->face, c->b, c->c, c->d);
    c->nvalues = env->nvalues;
    break;
  case RECEIVE:
    c->values[0] = eclsock_lv_receive(c->fd, c->a, fx(0), fx(c->a->vector.dim),
                                      c->flags, c->face);
    c->nvalues = env->nvalues;
    for (i = 1; i < c->nvalues && i < 4; i++)
      c->values[i] = env->values[i];
    break;
  }
}

static cl_object
attempt(struct call *c)
{
  return tu_catch(run, c);
}

static void
ok(struct call *c)
{
  cl_object e = attempt(c);
  ck_assert_msg(Null(e), "signalled %s: %s", tu_princ(cl_type_of(e)), tu_princ(e));
}

static cl_object
code_of(cl_object e)
{
  return cl_funcall(2, tu_sym("SOCKET-ERROR-CODE", "ECLSOCK"), e);
}

/* -- Option keywords and kinds ------------------------------------------ */

START_TEST(test_option_names)
{
  size_t n, i;
  const struct eclsock_option *t = eclsock_opt_table(&n);
  cl_object names = eclsock_lv_option_names(), e;
  struct call c = { .fn = OPTION };
  ck_assert_int_eq(ecl_length(names), n);
  ck_assert_int_ge(n, 17);
  for (i = 0; i < n; i++) {
    ck_assert(ecl_nth(i, names) == kw(t[i].name));
    c.a = kw(t[i].name);
    ok(&c);
    ck_assert_ptr_eq(c.opt, &t[i]);
  }
  /* not an option: a type error naming every option */
  c.a = kw("SO-NOTHING");
  e = attempt(&c);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  ck_assert(!Null(cl_equal(cl_funcall(2, tu_sym("TYPE-ERROR-EXPECTED-TYPE", "CL"), e),
                           ecl_cons(tu_sym("MEMBER", "CL"), names))));
  /* the name of an option in another package, or as a string, is none */
  c.a = tu_sym("SO-KEEPALIVE", "CL-USER");
  ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
  c.a = str("SO-KEEPALIVE");
  ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
}
END_TEST

START_TEST(test_optkind)
{
  static const enum eclsock_optkind want[] =
    { OPT_INT, OPT_BOOL, OPT_TIMEVAL, OPT_LINGER, OPT_STRING };
  struct call c = { .fn = OPTKIND };
  int i;
  for (i = 0; i < 5; i++) {
    c.a = fx(i);
    ok(&c);
    ck_assert_int_eq(c.kind, want[i]);
  }
  c.a = fx(5);
  ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
  c.a = fx(-1);
  ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
}
END_TEST

/* -- Option values ------------------------------------------------------ */

static int
tcp_socket(void)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  return fd;
}

/* Set option LEVEL/NAME of FD to VALUE in FACE, then read it back. */
static cl_object
set_get(int fd, int level, int name, enum eclsock_optkind k, enum eclsock_face face,
        cl_object value)
{
  struct call c = { .fn = SETOPT, .fd = fd, .level = level, .name = name,
                    .kind = k, .face = face, .value = value };
  ok(&c);
  c.fn = GETOPT;
  ok(&c);
  return c.value;
}

static cl_object
set_error(int fd, int level, int name, enum eclsock_optkind k, enum eclsock_face face,
          cl_object value)
{
  struct call c = { .fn = SETOPT, .fd = fd, .level = level, .name = name,
                    .kind = k, .face = face, .value = value };
  return attempt(&c);
}

START_TEST(test_bool_options)
{
  int fd = tcp_socket(), on = -1;
  socklen_t len = sizeof on;
  ck_assert(set_get(fd, SOL_SOCKET, SO_KEEPALIVE, OPT_BOOL, ECLSOCK_FACE_CORE, ECL_T)
            == ECL_T);
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len), 0);
  ck_assert_int_ne(on, 0);
  ck_assert(Null(set_get(fd, SOL_SOCKET, SO_KEEPALIVE, OPT_BOOL, ECLSOCK_FACE_CORE,
                         ECL_NIL)));
  /* any non-NIL value is true; in SB-BSD-SOCKETS the integer 0 is false too */
  ck_assert(set_get(fd, IPPROTO_TCP, TCP_NODELAY, OPT_BOOL, ECLSOCK_FACE_CORE, fx(0))
            == ECL_T);
  ck_assert(Null(set_get(fd, IPPROTO_TCP, TCP_NODELAY, OPT_BOOL, ECLSOCK_FACE_BSD,
                         fx(0))));
  ck_assert(set_get(fd, IPPROTO_TCP, TCP_NODELAY, OPT_BOOL, ECLSOCK_FACE_BSD, fx(1))
            == ECL_T);
  close(fd);
}
END_TEST

START_TEST(test_int_options)
{
  int fd = tcp_socket(), v = 0;
  socklen_t len = sizeof v;
  cl_object e;
  ck_assert(ecl_eql(set_get(fd, IPPROTO_TCP, TCP_KEEPCNT, OPT_INT, ECLSOCK_FACE_CORE,
                            fx(7)), fx(7)));
  /* the core faces take 0 to INT_MAX: a negative count never reaches the
     kernel, and the option keeps its value */
  e = set_error(fd, IPPROTO_TCP, TCP_KEEPCNT, OPT_INT, ECLSOCK_FACE_CORE, fx(-1));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = set_error(fd, IPPROTO_TCP, TCP_KEEPCNT, OPT_INT, ECLSOCK_FACE_CORE,
                ecl_make_integer((cl_fixnum)INT_MAX + 1));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = set_error(fd, IPPROTO_TCP, TCP_KEEPCNT, OPT_INT, ECLSOCK_FACE_CORE, ECL_T);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &len), 0);
  ck_assert_int_eq(v, 7);
  /* SB-BSD-SOCKETS passes any C int on: the kernel's refusal is the
     condition, with its errno */
  e = set_error(fd, IPPROTO_TCP, TCP_KEEPCNT, OPT_INT, ECLSOCK_FACE_BSD, fx(-1));
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("EINVAL"));
  close(fd);
}
END_TEST

START_TEST(test_linger_options)
{
  int fd = tcp_socket();
  struct linger l;
  socklen_t len = sizeof l;
  cl_object e;
  /* socket-options: NIL off, T on for 0 seconds, or seconds */
  ck_assert(Null(set_get(fd, SOL_SOCKET, SO_LINGER, OPT_LINGER, ECLSOCK_FACE_CORE,
                         ECL_NIL)));
  ck_assert(ecl_eql(set_get(fd, SOL_SOCKET, SO_LINGER, OPT_LINGER, ECLSOCK_FACE_CORE,
                            ECL_T), fx(0)));
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len), 0);
  ck_assert_int_ne(l.l_onoff, 0);
  ck_assert_int_eq(l.l_linger, 0);
  ck_assert(ecl_eql(set_get(fd, SOL_SOCKET, SO_LINGER, OPT_LINGER, ECLSOCK_FACE_CORE,
                            fx(5)), fx(5)));
  /* SB-BSD-SOCKETS: seconds, 0 being off; off reads as 0 */
  ck_assert(ecl_eql(set_get(fd, SOL_SOCKET, SO_LINGER, OPT_LINGER, ECLSOCK_FACE_BSD,
                            fx(0)), fx(0)));
  len = sizeof l;
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len), 0);
  ck_assert_int_eq(l.l_onoff, 0);
  ck_assert(ecl_eql(set_get(fd, SOL_SOCKET, SO_LINGER, OPT_LINGER, ECLSOCK_FACE_BSD,
                            fx(3)), fx(3)));
  /* neither a boolean nor seconds */
  e = set_error(fd, SOL_SOCKET, SO_LINGER, OPT_LINGER, ECLSOCK_FACE_CORE, fx(-2));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = set_error(fd, SOL_SOCKET, SO_LINGER, OPT_LINGER, ECLSOCK_FACE_CORE, kw("ON"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = set_error(fd, SOL_SOCKET, SO_LINGER, OPT_LINGER, ECLSOCK_FACE_BSD, ECL_T);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  close(fd);
}
END_TEST

START_TEST(test_timeval_options)
{
  int fd = tcp_socket();
  struct timeval tv;
  socklen_t len = sizeof tv;
  cl_object v, e;
  /* whole seconds: an integer in socket-options, a double in SB-BSD-SOCKETS */
  v = set_get(fd, SOL_SOCKET, SO_RCVTIMEO, OPT_TIMEVAL, ECLSOCK_FACE_CORE, fx(2));
  ck_assert(ecl_eql(v, fx(2)));
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
  ck_assert_int_eq(tv.tv_sec, 2);
  ck_assert_int_eq(tv.tv_usec, 0);
  v = set_get(fd, SOL_SOCKET, SO_RCVTIMEO, OPT_TIMEVAL, ECLSOCK_FACE_BSD, fx(2));
  ck_assert(ecl_t_of(v) == t_doublefloat && ecl_to_double(v) == 2.0);
  /* fractions: a double in both faces */
  v = set_get(fd, SOL_SOCKET, SO_SNDTIMEO, OPT_TIMEVAL, ECLSOCK_FACE_CORE,
              tu_eval("3/2"));
  ck_assert(ecl_t_of(v) == t_doublefloat && ecl_to_double(v) == 1.5);
  len = sizeof tv;
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len), 0);
  ck_assert_int_eq(tv.tv_sec, 1);
  ck_assert_int_eq(tv.tv_usec, 500000);
  /* negative, too large, not a real */
  e = set_error(fd, SOL_SOCKET, SO_RCVTIMEO, OPT_TIMEVAL, ECLSOCK_FACE_CORE, fx(-1));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = set_error(fd, SOL_SOCKET, SO_RCVTIMEO, OPT_TIMEVAL, ECLSOCK_FACE_BSD,
                tu_eval("(expt 2 40)"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = set_error(fd, SOL_SOCKET, SO_RCVTIMEO, OPT_TIMEVAL, ECLSOCK_FACE_CORE, ECL_NIL);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  /* the option kept its value through the refusals */
  len = sizeof tv;
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
  ck_assert_int_eq(tv.tv_sec, 2);
  close(fd);
}
END_TEST

START_TEST(test_getsockopt_bad_fd)
{
  struct call c = { .fn = GETOPT, .fd = 1000000, .level = SOL_SOCKET,
                    .name = SO_KEEPALIVE, .kind = OPT_BOOL, .face = ECLSOCK_FACE_CORE };
  cl_object e = attempt(&c);
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("EBADF"));
  ck_assert_str_eq(tu_princ(cl_funcall(2, tu_sym("SOCKET-ERROR-SYSCALL", "ECLSOCK"), e)),
                   "getsockopt");
}
END_TEST

/* -- Addresses ---------------------------------------------------------- */

static void
show(const eclsock_addr *a, enum eclsock_face face, cl_object out[3])
{
  ck_assert_int_eq(eclsock_lv_address(a, face, out), 0);
}

START_TEST(test_address_inet)
{
  eclsock_addr a;
  cl_object out[3];
  static const unsigned char lo4[4] = { 127, 0, 0, 1 };
  a.len = tu_loopback(AF_INET, 8080, &a.ss);
  show(&a, ECLSOCK_FACE_CORE, out);
  ck_assert_str_eq(tu_princ(out[0]), "127.0.0.1");
  ck_assert(ecl_eql(out[1], fx(8080)));
  ck_assert(out[2] == kw("INET"));
  show(&a, ECLSOCK_FACE_BSD, out);
  ck_assert(ecl_eql(out[0], fx(AF_INET)));
  ck_assert(!Null(cl_equalp(out[1], octets_of(lo4, 4))));
  ck_assert(ecl_eql(out[2], fx(8080)));
  a.len = tu_loopback(AF_INET6, 443, &a.ss);
  show(&a, ECLSOCK_FACE_CORE, out);
  ck_assert_str_eq(tu_princ(out[0]), "::1");
  ck_assert(ecl_eql(out[1], fx(443)));
  ck_assert(out[2] == kw("INET6"));
  show(&a, ECLSOCK_FACE_BSD, out);
  ck_assert(ecl_eql(out[0], fx(AF_INET6)));
  ck_assert_int_eq(ecl_length(out[1]), 16);
  ck_assert_int_eq(out[1]->vector.self.b8[15], 1);
  ck_assert(ecl_eql(out[2], fx(443)));
}
END_TEST

START_TEST(test_address_unix)
{
  eclsock_addr a;
  cl_object out[3];
  ck_assert_int_eq(eclsock_addr_unix("/tmp/some.sock", &a), 0);
  show(&a, ECLSOCK_FACE_CORE, out);
  ck_assert_str_eq(tu_princ(out[0]), "/tmp/some.sock");
  ck_assert(ecl_eql(out[1], fx(0)));
  ck_assert(out[2] == kw("UNIX"));
  show(&a, ECLSOCK_FACE_BSD, out);
  ck_assert(ecl_eql(out[0], fx(AF_UNIX)));
  ck_assert(ECL_STRINGP(out[1]));
  ck_assert_str_eq(tu_princ(out[1]), "/tmp/some.sock");
  /* an abstract name: its octets, without the leading NUL */
  ck_assert_int_eq(eclsock_addr_unix_name("a\0b", 3, 1, &a), 0);
  show(&a, ECLSOCK_FACE_BSD, out);
  ck_assert(ecl_eql(out[0], fx(AF_UNIX)));
  ck_assert(!Null(cl_equalp(out[1], octets_of("a\0b", 3))));
  /* unnamed: NIL in SB-BSD-SOCKETS, "" in the core faces */
  memset(&a, 0, sizeof a);
  a.ss.ss_family = AF_UNIX;
  a.len = sizeof(sa_family_t);
  show(&a, ECLSOCK_FACE_BSD, out);
  ck_assert(Null(out[1]));
  show(&a, ECLSOCK_FACE_CORE, out);
  ck_assert_str_eq(tu_princ(out[0]), "");
  ck_assert(out[2] == kw("UNIX"));
  /* a family neither face knows */
  memset(&a, 0, sizeof a);
  a.ss.ss_family = AF_APPLETALK;
  a.len = sizeof(sa_family_t) + 4;
  show(&a, ECLSOCK_FACE_BSD, out);
  ck_assert(ecl_eql(out[0], fx(AF_UNSPEC)));
  ck_assert(Null(out[1]));
}
END_TEST

/* SB-BSD-SOCKETS' (family address port) is the address lv_address shows. */
static void
round_trip(cl_object family, cl_object address, cl_object port)
{
  struct call c = { .fn = SOCKADDR, .a = family, .b = address, .c = port };
  cl_object out[3];
  ok(&c);
  show(&c.addr, ECLSOCK_FACE_BSD, out);
  ck_assert(ecl_eql(out[0], family));
  ck_assert_msg(!Null(cl_equalp(out[1], address)), "%s came back as %s",
                tu_princ(address), tu_princ(out[1]));
  if (ecl_fixnum(family) != AF_UNIX)
    ck_assert(ecl_eql(out[2], port));
}

START_TEST(test_sockaddr)
{
  static const unsigned char v4[4] = { 10, 1, 2, 3 }, v6[16] = { 0xfe, 0x80, [15] = 7 };
  struct call c = { .fn = SOCKADDR };
  cl_object e;
  char longpath[200];
  round_trip(fx(AF_INET), octets_of(v4, 4), fx(53));
  round_trip(fx(AF_INET6), octets_of(v6, 16), fx(65535));
  round_trip(fx(AF_UNIX), str("/run/x.sock"), fx(0));
  round_trip(fx(AF_UNIX), octets_of("abstract", 8), fx(0));
  /* the C side: a real sockaddr_in */
  c.a = fx(AF_INET); c.b = octets_of(v4, 4); c.c = fx(53);
  ok(&c);
  ck_assert_int_eq(c.addr.len, sizeof(struct sockaddr_in));
  ck_assert_int_eq(ntohs(((struct sockaddr_in *)&c.addr.ss)->sin_port), 53);
  ck_assert_int_eq(ntohl(((struct sockaddr_in *)&c.addr.ss)->sin_addr.s_addr), 0x0a010203);
  /* 16 octets for an IPv4 address: an error naming the counts */
  c.b = octets_of(v6, 16);
  e = attempt(&c);
  ck_assert(tu_typep(e, "SIMPLE-ERROR", "CL"));
  ck_assert_msg(strstr(tu_princ(e), "has 4 octets, not 16"), "report: %s", tu_princ(e));
  /* a bad port, a family no face has */
  c.b = octets_of(v4, 4); c.c = fx(65536);
  ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
  c.a = fx(99); c.c = fx(1);
  ck_assert(tu_typep(attempt(&c), "TYPE-ERROR", "CL"));
  /* a path longer than sun_path: ENAMETOOLONG, for strings and abstract
     names alike */
  memset(longpath, 'p', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = 0;
  c.a = fx(AF_UNIX); c.b = str(longpath); c.c = fx(0);
  e = attempt(&c);
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("ENAMETOOLONG"));
  c.b = octets_of(longpath, 108);
  e = attempt(&c);
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("ENAMETOOLONG"));
  c.b = octets_of(longpath, 107);         /* the longest abstract name */
  ok(&c);
}
END_TEST

/* -- Datagrams ---------------------------------------------------------- */

/* A UDP socket bound to the loopback address of FAMILY; its port in *PORT. */
static int
udp_socket(int family, int *port)
{
  struct sockaddr_storage ss;
  socklen_t len = tu_loopback(family, 0, &ss);
  struct timeval tv = { 5, 0 };
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, len), 0);
  len = sizeof ss;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                : ((struct sockaddr_in *)&ss)->sin_port);
  /* no receive in this suite waits longer */
  ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  return fd;
}

static cl_object
send_core(int fd, const char *text, cl_object host, cl_object port)
{
  struct call c = { .fn = SEND, .fd = fd, .face = ECLSOCK_FACE_CORE,
                    .a = octets_of(text, strlen(text)), .b = ECL_NIL, .c = host, .d = port };
  cl_object e = attempt(&c);
  return Null(e) ? c.values[0] : e;
}

static struct call
receive(int fd, enum eclsock_face face, int flags)
{
  struct call c = { .fn = RECEIVE, .fd = fd, .face = face, .flags = flags,
                    .a = ecl_alloc_simple_vector(64, ecl_aet_b8) };
  ok(&c);
  return c;
}

START_TEST(test_send_receive_core)
{
  int pa, pb, a = udp_socket(AF_INET, &pa), b = udp_socket(AF_INET, &pb);
  struct call r;
  ck_assert(ecl_eql(send_core(a, "hello", str("127.0.0.1"), fx(pb)), fx(5)));
  r = receive(b, ECLSOCK_FACE_CORE, 0);
  ck_assert_int_eq(r.nvalues, 4);
  ck_assert(ecl_eql(r.values[0], fx(5)));
  ck_assert(!memcmp(r.a->vector.self.b8, "hello", 5));
  ck_assert_str_eq(tu_princ(r.values[1]), "127.0.0.1");
  ck_assert(ecl_eql(r.values[2], fx(pa)));
  ck_assert(r.values[3] == kw("INET"));
  /* an empty datagram is a datagram */
  ck_assert(ecl_eql(send_core(a, "", str("127.0.0.1"), fx(pb)), fx(0)));
  r = receive(b, ECLSOCK_FACE_CORE, 0);
  ck_assert(ecl_eql(r.values[0], fx(0)));
  /* to the connected peer: no address */
  {
    struct sockaddr_storage ss;
    socklen_t len = tu_loopback(AF_INET, pb, &ss);
    ck_assert_int_eq(connect(a, (struct sockaddr *)&ss, len), 0);
  }
  ck_assert(ecl_eql(send_core(a, "again", ECL_NIL, ECL_NIL), fx(5)));
  r = receive(b, ECLSOCK_FACE_CORE, 0);
  ck_assert(ecl_eql(r.values[0], fx(5)));
  ck_assert(!memcmp(r.a->vector.self.b8, "again", 5));
  close(a);
  close(b);
}
END_TEST

START_TEST(test_send_receive_inet6)
{
  int pa, pb, a, b;
  struct call r;
  int probe = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_storage ss;
  socklen_t len = tu_loopback(AF_INET6, 0, &ss);
  if (probe < 0 || bind(probe, (struct sockaddr *)&ss, len) < 0) {
    if (probe >= 0) close(probe);
    return;                     /* no IPv6 loopback here */
  }
  close(probe);
  a = udp_socket(AF_INET6, &pa);
  b = udp_socket(AF_INET6, &pb);
  ck_assert(ecl_eql(send_core(a, "six", str("::1"), fx(pb)), fx(3)));
  r = receive(b, ECLSOCK_FACE_CORE, 0);
  ck_assert_str_eq(tu_princ(r.values[1]), "::1");
  ck_assert(ecl_eql(r.values[2], fx(pa)));
  ck_assert(r.values[3] == kw("INET6"));
  close(a);
  close(b);
}
END_TEST

START_TEST(test_send_receive_bsd)
{
  int pa, pb, a = udp_socket(AF_INET, &pa), b = udp_socket(AF_INET, &pb), fl;
  static const unsigned char lo4[4] = { 127, 0, 0, 1 };
  struct call s = { .fn = SEND, .fd = a, .face = ECLSOCK_FACE_BSD,
                    .a = octets_of("octets", 6), .b = fx(AF_INET),
                    .c = octets_of(lo4, 4), .d = fx(0) };
  struct call r;
  s.d = fx(pb);
  ok(&s);
  ck_assert(ecl_eql(s.values[0], fx(6)));
  /* MSG_PEEK leaves it there; the sender as SB-BSD-SOCKETS shows it */
  r = receive(b, ECLSOCK_FACE_BSD, MSG_PEEK);
  ck_assert(ecl_eql(r.values[0], fx(6)));
  ck_assert(ecl_eql(r.values[1], fx(AF_INET)));
  ck_assert(!Null(cl_equalp(r.values[2], octets_of(lo4, 4))));
  ck_assert(ecl_eql(r.values[3], fx(pa)));
  r = receive(b, ECLSOCK_FACE_BSD, 0);
  ck_assert(ecl_eql(r.values[0], fx(6)));
  ck_assert(!memcmp(r.a->vector.self.b8, "octets", 6));
  /* nothing there on a non-blocking socket: NIL, one value */
  fl = fcntl(b, F_GETFL);
  ck_assert_int_eq(fcntl(b, F_SETFL, fl | O_NONBLOCK), 0);
  r = receive(b, ECLSOCK_FACE_BSD, 0);
  ck_assert(Null(r.values[0]));
  ck_assert_int_eq(r.nvalues, 1);
  /* the same in the core faces is a timeout, not a silent NIL */
  {
    struct call c = { .fn = RECEIVE, .fd = b, .face = ECLSOCK_FACE_CORE,
                      .a = ecl_alloc_simple_vector(8, ecl_aet_b8) };
    cl_object e = attempt(&c);
    ck_assert(tu_typep(e, "SOCKET-TIMEOUT-ERROR", "ECLSOCK"));
  }
  /* family 0: to the connected peer, here none: the kernel's refusal */
  s.b = fx(0); s.c = ECL_NIL;
  {
    cl_object e = attempt(&s);
    ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
    ck_assert(code_of(e) == kw("EDESTADDRREQ"));
  }
  close(a);
  close(b);
}
END_TEST

START_TEST(test_send_unix)
{
  char dir[] = "/tmp/check-lispval.XXXXXX", path[128];
  struct sockaddr_un su;
  int a, b;
  struct call r;
  struct timeval tv = { 5, 0 };
  cl_object e;
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/b.sock", dir);
  memset(&su, 0, sizeof su);
  su.sun_family = AF_UNIX;
  strcpy(su.sun_path, path);
  b = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(bind(b, (struct sockaddr *)&su, sizeof su), 0);
  ck_assert_int_eq(setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  a = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(a, 0);
  /* a Unix socket's destination is a file; its port is not looked at */
  ck_assert(ecl_eql(send_core(a, "unix", str(path), ECL_NIL), fx(4)));
  r = receive(b, ECLSOCK_FACE_CORE, 0);
  ck_assert(ecl_eql(r.values[0], fx(4)));
  /* the sender is unnamed: "" and port 0 of family :UNIX */
  ck_assert_str_eq(tu_princ(r.values[1]), "");
  ck_assert(ecl_eql(r.values[2], fx(0)));
  ck_assert(r.values[3] == kw("UNIX"));
  /* an empty path is no destination (Linux would take it as unnamed) */
  e = send_core(a, "x", str(""), ECL_NIL);
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("EINVAL"));
  /* nobody there */
  e = send_core(a, "x", str("/nonexistent/dir/sock"), ECL_NIL);
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("ENOENT"));
  close(a);
  close(b);
  unlink(path);
  rmdir(dir);
}
END_TEST

START_TEST(test_send_bad_destination)
{
  int pa, a = udp_socket(AF_INET, &pa);
  unsigned long sends = eclsock_os_send_calls();
  cl_object e;
  /* a bad port or host is refused before any send */
  e = send_core(a, "x", str("127.0.0.1"), fx(70000));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = send_core(a, "x", fx(127), fx(1));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  /* an IPv6 address for an IPv4 socket does not resolve in its family */
  e = send_core(a, "x", str("::1"), fx(9));
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert_str_eq(tu_princ(cl_funcall(2, tu_sym("SOCKET-ERROR-SYSCALL", "ECLSOCK"), e)),
                   "sendto");
  ck_assert_str_eq(tu_princ(cl_funcall(2, tu_sym("SOCKET-ERROR-HOST", "ECLSOCK"), e)),
                   "::1");
  ck_assert_uint_eq(eclsock_os_send_calls(), sends);
  /* a bad descriptor: the send's own error */
  e = send_core(1000000, "x", str("127.0.0.1"), fx(9));
  ck_assert(tu_typep(e, "SOCKET-ERROR", "ECLSOCK"));
  ck_assert(code_of(e) == kw("EBADF"));
  close(a);
}
END_TEST

static Suite *
lispval_suite(void)
{
  Suite *s = suite_create("lispval");
  TCase *tc = tcase_create("options");
  tcase_add_test(tc, test_option_names);
  tcase_add_test(tc, test_optkind);
  tcase_add_test(tc, test_bool_options);
  tcase_add_test(tc, test_int_options);
  tcase_add_test(tc, test_linger_options);
  tcase_add_test(tc, test_timeval_options);
  tcase_add_test(tc, test_getsockopt_bad_fd);
  suite_add_tcase(s, tc);
  tc = tcase_create("addresses");
  tcase_add_test(tc, test_address_inet);
  tcase_add_test(tc, test_address_unix);
  tcase_add_test(tc, test_sockaddr);
  suite_add_tcase(s, tc);
  tc = tcase_create("datagrams");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_send_receive_core);
  tcase_add_test(tc, test_send_receive_inet6);
  tcase_add_test(tc, test_send_receive_bsd);
  tcase_add_test(tc, test_send_unix);
  tcase_add_test(tc, test_send_bad_destination);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(lispval_suite, 1)
