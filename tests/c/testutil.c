/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * testutil.c - loopback fixtures and the ECL boot for the Check suites.
 * See testutil.h.  Descriptor helpers use plain system calls and abort the
 * test (ck_assert) when the machine cannot give them what they need.
 */
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* -- Descriptors ---------------------------------------------------------- */

socklen_t
tu_loopback(int family, int port, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_loopback;
    s6->sin6_port = htons((unsigned short)port);
    return sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s4->sin_port = htons((unsigned short)port);
    return sizeof *s4;
  }
}

int
tu_listener(int family, int *port)
{
  struct sockaddr_storage ss;
  socklen_t len = tu_loopback(family, 0, &ss);
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
    close(fd);
    return -1;
  }
  len = sizeof ss;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                : ((struct sockaddr_in *)&ss)->sin_port);
  ck_assert_int_gt(*port, 0);
  return fd;
}

int
tu_connect(int family, int port)
{
  struct sockaddr_storage ss;
  socklen_t len = tu_loopback(family, port, &ss);
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_msg(connect(fd, (struct sockaddr *)&ss, len) == 0,
                "connect to loopback port %d: %s", port, strerror(errno));
  return fd;
}

void
tu_socketpair(int sv[2])
{
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

void
tu_tcp_pair(int sv[2])
{
  int port, l = tu_listener(AF_INET, &port);
  ck_assert_int_ge(l, 0);
  sv[0] = tu_connect(AF_INET, port);
  sv[1] = accept(l, NULL, NULL);
  ck_assert_int_ge(sv[1], 0);
  close(l);
}

int
tu_fd_open(int fd)
{
  return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

size_t
tu_read_full(int fd, unsigned char *p, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    ck_assert_msg(r >= 0, "read: %s", strerror(errno));
    if (r == 0)
      break;
    got += (size_t)r;
  }
  return got;
}

int
tu_closed_port(void)
{
  int port, l = tu_listener(AF_INET, &port);
  ck_assert_int_ge(l, 0);
  close(l);
  return port;
}

/* -- ECL ------------------------------------------------------------------ */

void
tu_boot(int argc, char **argv)
{
  cl_boot(argc, argv);
}

void
tu_load_module(void)
{
  const char *fas = getenv("SOCK_FAS");
  cl_object failed = ecl_make_symbol("LOAD-FAILED", "CL-USER");
  cl_object form, r;
  if (!fas || !*fas) {
    fprintf(stderr, "SOCK_FAS is not set (run through make check)\n");
    exit(99);                   /* a hard error for the Automake driver */
  }
  form = cl_list(4, ecl_make_symbol("LOAD", "CL"),
                 ecl_make_simple_base_string(fas, -1),
                 ecl_make_keyword("VERBOSE"), ECL_NIL);
  r = si_safe_eval(3, form, ECL_NIL, failed);
  if (r == failed) {
    fprintf(stderr, "loading %s failed\n", fas);
    exit(99);
  }
  /* The fas carries its own copy of the C layer (hidden symbols, so no
     clash) and registered its primitives; point them at ours. */
  eclsock_init_primitives();
  eclsock_status_set_server_class(
    cl_find_class(1, ecl_make_symbol("SOCKET-SERVER", "ECLSOCK")));
}

cl_object
tu_sym(const char *name, const char *pkg)
{
  return ecl_make_symbol(name, pkg);
}

static void
eval_text(void *arg)
{
  cl_object *io = arg;
  io[1] = cl_eval(io[0]);
}

cl_object
tu_eval(const char *text)
{
  cl_object io[2], c;
  ecl_bds_bind(ecl_process_env(), ecl_make_symbol("*PACKAGE*", "CL"),
               ecl_find_package("ECLSOCK"));
  io[0] = ecl_read_from_cstring(text);
  io[1] = ECL_NIL;
  c = tu_catch(eval_text, io);
  ecl_bds_unwind1(ecl_process_env());
  ck_assert_msg(Null(c), "%s signalled: %s", text, tu_princ(c));
  return io[1];
}

cl_object
tu_catch(void (*fn)(void *), void *arg)
{
  const cl_env_ptr env = ecl_process_env();
  volatile cl_object caught = ECL_NIL;
  ECL_HANDLER_CASE_BEGIN(env, ecl_list1(ecl_make_symbol("ERROR", "CL"))) {
    fn(arg);
  } ECL_HANDLER_CASE(1, c) {
    caught = c;
  } ECL_HANDLER_CASE_END;
  return caught;
}

cl_object tu_value2 = ECL_NIL;

struct call { cl_object fn, args, result; };

static void
apply_call(void *arg)
{
  struct call *c = arg;
  const cl_env_ptr env = ecl_process_env();
  c->result = cl_apply(2, c->fn, c->args);
  tu_value2 = env->nvalues > 1 ? env->values[1] : ECL_NIL;
}

/* Gather N variadic Lisp arguments into a list. */
static cl_object
arg_list(int n, va_list ap)
{
  cl_object head = ECL_NIL, tail = ECL_NIL;
  int i;
  for (i = 0; i < n; i++) {
    cl_object cell = ecl_list1(va_arg(ap, cl_object));
    if (Null(head)) head = cell; else ECL_RPLACD(tail, cell);
    tail = cell;
  }
  return head;
}

cl_object
tu_call(const char *name, const char *pkg, int n, ...)
{
  struct call c;
  cl_object cond;
  va_list ap;
  va_start(ap, n);
  c.args = arg_list(n, ap);
  va_end(ap);
  c.fn = ecl_make_symbol(name, pkg);
  c.result = ECL_NIL;
  cond = tu_catch(apply_call, &c);
  ck_assert_msg(Null(cond), "(%s:%s ...) signalled %s: %s", pkg, name,
                tu_princ(cl_type_of(cond)), tu_princ(cond));
  return c.result;
}

cl_object
tu_call_error(const char *name, const char *pkg, int n, ...)
{
  struct call c;
  cl_object cond;
  va_list ap;
  va_start(ap, n);
  c.args = arg_list(n, ap);
  va_end(ap);
  c.fn = ecl_make_symbol(name, pkg);
  c.result = ECL_NIL;
  cond = tu_catch(apply_call, &c);
  ck_assert_msg(!Null(cond), "(%s:%s ...) returned %s instead of signalling",
                pkg, name, tu_princ(c.result));
  return cond;
}

int
tu_typep(cl_object c, const char *name, const char *pkg)
{
  return !Null(cl_typep(2, c, ecl_make_symbol(name, pkg)));
}

const char *
tu_princ(cl_object x)
{
  static char buf[1024];
  cl_object s = si_coerce_to_base_string(cl_princ_to_string(x));
  size_t n = s->base_string.fillp < sizeof buf - 1 ? s->base_string.fillp
    : sizeof buf - 1;
  memcpy(buf, s->base_string.self, n);
  buf[n] = 0;
  return buf;
}

int
tu_run(Suite *s)
{
  SRunner *sr = srunner_create(s);
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int
tu_open_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  ck_assert_ptr_nonnull(d);
  while ((e = readdir(d)))
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1;                 /* the directory's own */
}
