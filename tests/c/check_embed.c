/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_embed.c - the public C API of ecl-sock (ecl-sock.h), as a host
 * program uses it: linked against libecl-sock, ECL booted once in main,
 * the module loaded with ecl_sock_init() in each (forked) test.
 */
#include <ecl-sock.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* -- Helpers ------------------------------------------------------------- */

static SRunner *runner;

/* Evaluate TEXT (one form, read in CL-USER) through the public API. */
static cl_object
lisp(const char *text)
{
  cl_object form, value = ECL_NIL, str = ecl_make_simple_base_string((char *)text, -1);
  int rc = ecl_sock_call("read-from-string", 1, &str, &form);
  ck_assert_msg(rc == ECL_SOCK_OK, "reading %s: %s", text, ecl_sock_error_message());
  rc = ecl_sock_call("eval", 1, &form, &value);
  ck_assert_msg(rc == ECL_SOCK_OK, "evaluating %s: %s", text, ecl_sock_error_message());
  return value;
}

/* Set CL-USER::*S* (a special variable) to X. */
static void
set_s(cl_object x)
{
  cl_object args[2];
  lisp("(defvar cl-user::*s* nil)");
  args[0] = ecl_make_symbol("*S*", "CL-USER");
  args[1] = x;
  ck_assert_int_eq(ecl_sock_call("set", 2, args, NULL), ECL_SOCK_OK);
}

static int
fd_count(void)
{
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  ck_assert_ptr_nonnull(d);
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

static int
fd_open(int fd)
{
  return fcntl(fd, F_GETFD) >= 0;
}

static void
write_all(int fd, const void *p, size_t n)
{
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR)
      continue;
    ck_assert_msg(w > 0, "write: %s", strerror(errno));
    c += w;
    n -= (size_t)w;
  }
}

/* Read exactly N octets within 10 s. */
static void
read_exact(int fd, void *p, size_t n)
{
  char *c = p;
  while (n) {
    struct pollfd pf = { fd, POLLIN, 0 };
    ssize_t r;
    int k = poll(&pf, 1, 10000);
    if (k < 0 && errno == EINTR)
      continue;
    ck_assert_msg(k == 1, "no data within 10 s");
    r = read(fd, c, n);
    if (r < 0 && errno == EINTR)
      continue;
    ck_assert_msg(r > 0, "read: %s", r ? strerror(errno) : "end of file");
    c += r;
    n -= (size_t)r;
  }
}

/* True when FD has input (or EOF) ready within MS milliseconds. */
static int
readable(int fd, int ms)
{
  struct pollfd pf = { fd, POLLIN, 0 };
  return poll(&pf, 1, ms) == 1;
}

static int
lisp_true(const char *text)
{
  return !Null(lisp(text));
}

static void
setup(void)
{
  ck_assert_int_eq(ecl_sock_init(), ECL_SOCK_OK);
}

/* -- Init ------------------------------------------------------------------ */

START_TEST(test_before_init)
{
  int sv[2], fd = -1;
  cl_object s = ECL_NIL;
  if (srunner_fork_status(runner) == CK_NOFORK)
    return;                     /* an earlier test already loaded the module */
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert(!lisp_true("(find-package \"SOCKET\")"));
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, 0, &s), ECL_SOCK_ENOTINIT);
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "ecl_sock_init"));
  ck_assert_int_eq(ecl_sock_fd(ECL_NIL, &fd), ECL_SOCK_ENOTINIT);
  ck_assert(fd_open(sv[0]));
  close(sv[0]);
  close(sv[1]);
}
END_TEST

START_TEST(test_init_twice)
{
  lisp("(setf *package* (find-package \"CL-USER\"))");
  ck_assert_int_eq(ecl_sock_init(), ECL_SOCK_OK);
  /* The second call loads nothing: the functions are the same objects. */
  lisp("(defparameter cl-user::*accept-fn* #'socket:socket-accept)");
  ck_assert_int_eq(ecl_sock_init(), ECL_SOCK_OK);
  ck_assert(lisp_true("(eq cl-user::*accept-fn* #'socket:socket-accept)"));
  ck_assert_str_eq(ecl_sock_version(), ECL_SOCK_VERSION);
  ck_assert(lisp_true("(and (find-package \"SOCKET\") (find-package \"ACL-SOCKET\")"
                      " (find-package \"PORT\") (fboundp 'socket:socket-connect))"));
  ck_assert(lisp_true("(member \"SOCK\" *modules* :test #'string=)"));
  /* Exactly once in *MODULES*, and REQUIRE has nothing left to do. */
  ck_assert(lisp_true("(= 1 (count \"SOCK\" *modules* :test #'string=))"));
  ck_assert(lisp_true("(let ((ext:*module-provider-functions*"
                      "       (list (lambda (m) (error \"provider asked for ~A\" m)))))"
                      "  (null (require :sock)))"));
  /* The module's (in-package ...) did not change the host's package. */
  ck_assert(lisp_true("(eq *package* (find-package \"CL-USER\"))"));
  /* The Lisp layer is compiled code, not interpreted source. */
  ck_assert(lisp_true("(compiled-function-p #'socket:socket-accept)"));
}
END_TEST

/* Several host threads call ecl_sock_init at once: all succeed, the
   module is loaded once. */
#define NINIT 4
static pthread_barrier_t init_barrier;

static void *
init_thread(void *arg)
{
  int *rc = arg;
  rc[0] = ecl_sock_init();              /* not attached yet: refused */
  if (ecl_sock_thread_attach())
    return NULL;
  pthread_barrier_wait(&init_barrier);
  rc[1] = ecl_sock_init();
  ecl_sock_thread_detach();
  return NULL;
}

START_TEST(test_init_concurrent)
{
  pthread_t th[NINIT];
  int rc[NINIT][2], i;
  if (srunner_fork_status(runner) == CK_NOFORK)
    return;
  ck_assert(!lisp_true("(find-package \"SOCKET\")"));
  pthread_barrier_init(&init_barrier, NULL, NINIT);
  for (i = 0; i < NINIT; i++) {
    rc[i][0] = rc[i][1] = 99;
    ck_assert_int_eq(pthread_create(&th[i], NULL, init_thread, rc[i]), 0);
  }
  for (i = 0; i < NINIT; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&init_barrier);
  for (i = 0; i < NINIT; i++) {
    ck_assert_int_eq(rc[i][0], ECL_SOCK_ENOTHREAD);
    ck_assert_int_eq(rc[i][1], ECL_SOCK_OK);
  }
  ck_assert(lisp_true("(= 1 (count \"SOCK\" *modules* :test #'string=))"));
  lisp("(defparameter cl-user::*accept-fn* #'socket:socket-accept)");
  ck_assert_int_eq(ecl_sock_init(), ECL_SOCK_OK);
  ck_assert(lisp_true("(eq cl-user::*accept-fn* #'socket:socket-accept)"));
}
END_TEST

/* (require :sock) from sock.fas first: ecl_sock_init keeps that copy. */
START_TEST(test_init_after_require)
{
  const char *fas = getenv("SOCK_FAS");
  int sv[2], fd = -1;
  cl_object s = ECL_NIL, line = ECL_NIL;
  if (srunner_fork_status(runner) == CK_NOFORK || !fas)
    return;
  ck_assert_int_eq(ecl_sock_load(fas), ECL_SOCK_OK);
  ck_assert(lisp_true("(member \"SOCK\" *modules* :test #'string=)"));
  lisp("(defparameter cl-user::*accept-fn* #'socket:socket-accept)");
  ck_assert_int_eq(ecl_sock_init(), ECL_SOCK_OK);
  ck_assert(lisp_true("(= 1 (count \"SOCK\" *modules* :test #'string=))"));
  ck_assert(lisp_true("(eq cl-user::*accept-fn* #'socket:socket-accept)"));
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, 0, &s), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_fd(s, &fd), ECL_SOCK_OK);
  ck_assert_int_eq(fd, sv[0]);
  write_all(sv[1], "via fas\n", 8);
  ck_assert_int_eq(ecl_sock_call("read-line", 1, &s, &line), ECL_SOCK_OK);
  set_s(line);
  ck_assert(lisp_true("(string= *s* \"via fas\")"));
  close(sv[1]);
}
END_TEST

/* -- Wrapping: text and octets, both directions -------------------------- */

START_TEST(test_wrap_text_utf8)
{
  int sv[2];
  cl_object s;
  char buf[64];
  const char out[] = "g\xc3\xbc\xc3\x9f" "e\n";
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "character", ":utf-8", 0, &s), ECL_SOCK_OK);
  set_s(s);
  ck_assert(lisp_true("(socket:socket-stream-p *s*)"));
  ck_assert(lisp_true("(and (input-stream-p *s*) (output-stream-p *s*)"
                      " (subtypep (stream-element-type *s*) 'character))"));
  /* C -> Lisp: "héllo" in UTF-8, then a second line. */
  write_all(sv[1], "h\xc3\xa9llo\nsecond\n", 14);
  ck_assert(lisp_true("(let ((a (read-line *s*)) (b (read-line *s*)))"
                      "  (and (= (length a) 5) (char= (char a 1) (code-char 233))"
                      "       (string= b \"second\")))"));
  /* Lisp -> C. */
  lisp("(progn (write-line (coerce (list #\\g (code-char 252) (code-char 223) #\\e) 'string) *s*)"
       "       (finish-output *s*))");
  memset(buf, 0, sizeof buf);
  read_exact(sv[1], buf, sizeof out - 1);
  ck_assert_mem_eq(buf, out, sizeof out - 1);
  lisp("(close *s*)");
  close(sv[1]);
}
END_TEST

START_TEST(test_wrap_text_latin1_crlf)
{
  int sv[2];
  cl_object s;
  char buf[8];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, "(:latin-1 :crlf)", 0, &s), ECL_SOCK_OK);
  set_s(s);
  write_all(sv[1], "\xe9t\xe9\r\n", 5);
  ck_assert(lisp_true("(let ((a (read-line *s*)))"
                      "  (and (= (length a) 3) (char= (char a 0) (code-char 233))))"));
  lisp("(progn (write-line (string (code-char 252)) *s*) (finish-output *s*))");
  read_exact(sv[1], buf, 3);
  ck_assert_mem_eq(buf, "\xfc\r\n", 3);
  lisp("(close *s*)");
  close(sv[1]);
}
END_TEST

START_TEST(test_wrap_octets)
{
  int sv[2], i;
  cl_object s;
  unsigned char data[256], back[256];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "(unsigned-byte 8)", NULL, 0, &s), ECL_SOCK_OK);
  set_s(s);
  ck_assert(lisp_true("(equal (stream-element-type *s*) '(unsigned-byte 8))"));
  for (i = 0; i < 256; i++)
    data[i] = (unsigned char)i;
  write_all(sv[1], data, sizeof data);
  ck_assert(lisp_true("(let ((v (make-array 256 :element-type '(unsigned-byte 8))))"
                      "  (and (= 256 (read-sequence v *s*))"
                      "       (loop for i below 256 always (= (aref v i) i))"
                      "       (progn (write-sequence (reverse v) *s*) (finish-output *s*) t)))"));
  read_exact(sv[1], back, sizeof back);
  for (i = 0; i < 256; i++)
    ck_assert_int_eq(back[i], 255 - i);
  lisp("(close *s*)");
  close(sv[1]);
  /* Unbuffered: every write leaves at once, no finish-output needed. */
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "(unsigned-byte 8)", NULL, ECL_SOCK_UNBUFFERED, &s),
                   ECL_SOCK_OK);
  set_s(s);
  lisp("(write-byte 42 *s*)");
  ck_assert(readable(sv[1], 5000));
  read_exact(sv[1], back, 1);
  ck_assert_int_eq(back[0], 42);
  lisp("(close *s*)");
  close(sv[1]);
}
END_TEST

/* An accepted TCP connection over loopback: the SOCKET API sees its peer. */
START_TEST(test_wrap_tcp_accepted)
{
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int l, c, conn;
  cl_object s, port;
  l = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(l, 1), 0);
  /* The listening socket itself is refused. */
  ck_assert_int_eq(ecl_sock_wrap_fd(l, NULL, NULL, 0, &s), ECL_SOCK_EINVAL);
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "listening"));
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
  c = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  conn = accept(l, NULL, NULL);
  ck_assert_int_ge(conn, 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(conn, NULL, NULL, 0, &s), ECL_SOCK_OK);
  set_s(s);
  ck_assert(lisp_true("(string= (socket:socket-stream-peer *s* t) \"127.0.0.1\")"));
  port = lisp("(nth-value 1 (socket:socket-stream-local *s* t))");
  ck_assert_int_eq(ecl_fixnum(port), ntohs(a.sin_port));
  write_all(c, "ping\n", 5);
  ck_assert(lisp_true("(member (socket:socket-status *s* 5) (quote (:input :io)))"));
  ck_assert(lisp_true("(string= (read-line *s*) \"ping\")"));
  close(c);
  close(l);
  lisp("(close *s*)");
  ck_assert(!fd_open(conn));
}
END_TEST

/* -- TLS over a host's descriptors ------------------------------------------ */

/* A connected TCP pair on loopback: *CLIENT and *SERVER. */
static void
tcp_pair(int *client, int *server)
{
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(l, 1), 0);
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
  *client = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(connect(*client, (struct sockaddr *)&a, sizeof a), 0);
  *server = accept(l, NULL, NULL);
  ck_assert_int_ge(*server, 0);
  close(l);
}

#ifdef HAVE_OPENSSL
/* The test certificates (tests/tls/make-certs.sh), made once, in a
   directory of this suite's own (the Lisp TLS test may run beside it). */
static const char *
certs_dir(void)
{
  static char dir[1024];
  char cmd[2300];
  const char *b = getenv("TEST_BUILDDIR"), *src = getenv("TEST_SRCDIR");
  snprintf(dir, sizeof dir, "%s/tls-certs-embed", b ? b : "/tmp");
  snprintf(cmd, sizeof cmd, "sh '%s/tls/make-certs.sh' '%s'", src ? src : "tests", dir);
  ck_assert_int_eq(system(cmd), 0);
  return dir;
}

/* A Lisp thread that makes *SRV* a TLS server stream and answers a line. */
static void
start_tls_server(const char *dir)
{
  char form[3000];
  snprintf(form, sizeof form,
           "(defparameter cl-user::*srv-thread*"
           "  (mp:process-run-function \"tls server\""
           "    (lambda ()"
           "      (handler-case"
           "          (let ((tls (socket:make-ssl-server-stream cl-user::*srv*"
           "                       :certificate \"%s/server.pem\" :key \"%s/server.key\")))"
           "            (write-line (concatenate 'string \"re: \" (read-line tls)) tls)"
           "            (finish-output tls) (read-line tls nil) (close tls) :ok)"
           "        (error (e) (close cl-user::*srv*) (type-of e))))))", dir, dir);
  lisp(form);
}

#endif /* HAVE_OPENSSL */

START_TEST(test_tls_over_host_fds)
{
#ifndef HAVE_OPENSSL
  /* built --without-openssl: a clear error, the stream left as it was */
  int c, conn;
  cl_object cs, ss, tls;
  tcp_pair(&c, &conn);
  ck_assert_int_eq(ecl_sock_wrap_fd(conn, NULL, NULL, 0, &ss), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_wrap_fd(c, NULL, NULL, 0, &cs), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_tls_client(cs, "localhost", NULL, 0, &tls), ECL_SOCK_ELISP);
  ck_assert_msg(strstr(ecl_sock_error_message(), "without OpenSSL") != NULL,
                "message: %s", ecl_sock_error_message());
#else
  const char *dir = certs_dir();
  char ca[1200];
  int c, conn, c2, conn2;
  cl_object cs, ss, tls, args[2];
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  /* a good handshake: the host's client descriptor, the server in Lisp */
  tcp_pair(&c, &conn);
  ck_assert_int_eq(ecl_sock_wrap_fd(conn, NULL, NULL, 0, &ss), ECL_SOCK_OK);
  lisp("(defvar cl-user::*srv* nil)");
  args[0] = ecl_make_symbol("*SRV*", "CL-USER");
  args[1] = ss;
  ck_assert_int_eq(ecl_sock_call("set", 2, args, NULL), ECL_SOCK_OK);
  start_tls_server(dir);
  ck_assert_int_eq(ecl_sock_wrap_fd(c, NULL, ":utf-8", 0, &cs), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_tls_client(cs, "localhost", NULL, 0x100, &tls),
                   ECL_SOCK_EINVAL);               /* unknown flags */
  ck_assert_int_eq(ecl_sock_tls_client(NULL, "localhost", ca, 0, &tls), ECL_SOCK_EINVAL);
  ck_assert_int_eq(ecl_sock_tls_client(cs, "localhost", ca, 0, &tls), ECL_SOCK_OK);
  set_s(tls);
  ck_assert(lisp_true("(socket:ssl-stream-p *s*)"));
  ck_assert(lisp_true("(progn (write-line \"hello\" *s*) (finish-output *s*)"
                      " (string= (read-line *s*) \"re: hello\"))"));
  lisp("(close *s*)");
  ck_assert(lisp_true("(eq (mp:process-join cl-user::*srv-thread*) :ok)"));
  ck_assert(!fd_open(c));
  ck_assert(!fd_open(conn));
  /* verification fails without the CA: a clear message, the fd closed */
  tcp_pair(&c2, &conn2);
  ck_assert_int_eq(ecl_sock_wrap_fd(conn2, NULL, NULL, 0, &ss), ECL_SOCK_OK);
  args[1] = ss;
  ck_assert_int_eq(ecl_sock_call("set", 2, args, NULL), ECL_SOCK_OK);
  start_tls_server(dir);
  ck_assert_int_eq(ecl_sock_wrap_fd(c2, NULL, NULL, 0, &cs), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_tls_client(cs, "localhost", NULL, 0, &tls), ECL_SOCK_ELISP);
  ck_assert_msg(strstr(ecl_sock_error_message(), "certificate verify failed") != NULL,
                "message: %s", ecl_sock_error_message());
  ck_assert(!fd_open(c2));
  lisp("(mp:process-join cl-user::*srv-thread*)");
  ck_assert(!fd_open(conn2));
#endif
}
END_TEST

/* -- Bad arguments --------------------------------------------------------- */

START_TEST(test_wrap_bad_arguments)
{
  int sv[2], p[2], base;
  cl_object s = ECL_NIL;
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(pipe(p), 0);
  base = fd_count();
  ck_assert_int_eq(ecl_sock_wrap_fd(-1, NULL, NULL, 0, &s), ECL_SOCK_EINVAL);
  ck_assert_int_eq(ecl_sock_wrap_fd(p[0], NULL, NULL, 0, &s), ECL_SOCK_EINVAL);
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "not a socket"));
  {
    int u = socket(AF_INET, SOCK_STREAM, 0);   /* never connected */
    ck_assert_int_eq(ecl_sock_wrap_fd(u, NULL, NULL, 0, &s), ECL_SOCK_EINVAL);
    ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "not connected"));
    ck_assert(fd_open(u));
    close(u);
    u = socket(AF_INET, SOCK_DGRAM, 0);         /* not a stream */
    ck_assert_int_eq(ecl_sock_wrap_fd(u, NULL, NULL, 0, &s), ECL_SOCK_EINVAL);
    ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "stream socket"));
    close(u);
  }
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, 0, NULL), ECL_SOCK_EINVAL);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, 0x100, &s), ECL_SOCK_EINVAL);
  /* Lisp rejects these; the descriptor stays the caller's either way. */
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "(unsigned-byte 7)", NULL, 0, &s), ECL_SOCK_ELISP);
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "TYPE-ERROR"));
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "(unsigned-byte 7)", NULL, ECL_SOCK_HOST_OWNS_FD, &s),
                   ECL_SOCK_ELISP);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "character", ":no-such-format", 0, &s),
                   ECL_SOCK_ELISP);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "character", ":no-such-format",
                                    ECL_SOCK_HOST_OWNS_FD, &s), ECL_SOCK_ELISP);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "#.(error \"read-eval\")", NULL, 0, &s),
                   ECL_SOCK_ELISP);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], "(unterminated", NULL, 0, &s), ECL_SOCK_ELISP);
  ck_assert(Null(s));
  ck_assert_int_eq(fd_count(), base);
  ck_assert(fd_open(sv[0]) && fd_open(p[0]));
  /* ...and still works afterwards. */
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, 0, &s), ECL_SOCK_OK);
  close(p[0]);
  close(p[1]);
  close(sv[1]);
}
END_TEST

/* -- Ownership ------------------------------------------------------------ */

START_TEST(test_lisp_owns_fd)
{
  int sv[2], fd = -1, again;
  char c;
  cl_object s;
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, 0, &s), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_fd(s, &fd), ECL_SOCK_OK);
  ck_assert_int_eq(fd, sv[0]);
  set_s(s);
  lisp("(close *s*)");
  ck_assert(!fd_open(sv[0]));                 /* the stream closed it */
  ck_assert(readable(sv[1], 5000));
  ck_assert_int_eq(read(sv[1], &c, 1), 0);     /* the peer sees EOF */
  ck_assert_int_eq(ecl_sock_fd(s, &fd), ECL_SOCK_ECLOSED);
  /* The number is free again; a new descriptor takes it.  Closing the
     stream again and collecting it must not touch that descriptor. */
  again = open("/dev/null", O_RDONLY);
  ck_assert_int_ge(again, 0);
  lisp("(close *s*)");
  lisp("(setf *s* nil)");
  s = ECL_NIL;
  lisp("(progn (ext:gc t) (ext:gc t) t)");
  ck_assert(fd_open(again));
  close(again);
  close(sv[1]);
}
END_TEST

START_TEST(test_host_owns_fd)
{
  int sv[2], fd = -1, base, i;
  char buf[16];
  cl_object s;
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  base = fd_count();
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, ECL_SOCK_HOST_OWNS_FD, &s), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_fd(s, &fd), ECL_SOCK_OK);
  ck_assert_int_ne(fd, sv[0]);                /* a duplicate */
  ck_assert_int_eq(fd_count(), base + 1);
  set_s(s);
  lisp("(progn (write-line \"from lisp\" *s*) (finish-output *s*))");
  read_exact(sv[1], buf, 10);
  ck_assert_mem_eq(buf, "from lisp\n", 10);
  lisp("(close *s*)");
  ck_assert(!fd_open(fd));                    /* the duplicate is gone */
  ck_assert(fd_open(sv[0]));                  /* the host's is not */
  ck_assert_int_eq(fd_count(), base);
  ck_assert(!readable(sv[1], 50));            /* no EOF: the host still holds it */
  write_all(sv[0], "host\n", 5);
  read_exact(sv[1], buf, 5);
  ck_assert_mem_eq(buf, "host\n", 5);
  close(sv[0]);                               /* the host closes its own */
  ck_assert(readable(sv[1], 5000));
  ck_assert_int_eq(read(sv[1], buf, 1), 0);
  close(sv[1]);

  /* Dropped unclosed, host-owned streams are collected without closing
     the host's descriptor. */
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  for (i = 0; i < 20; i++) {
    ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, ECL_SOCK_HOST_OWNS_FD, &s),
                     ECL_SOCK_OK);
  }
  s = ECL_NIL;
  lisp("(setf *s* nil)");
  lisp("(progn (dotimes (i 3) (ext:gc t)) t)");
  ck_assert(fd_open(sv[0]));
  write_all(sv[0], "x", 1);
  read_exact(sv[1], buf, 1);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

START_TEST(test_fd_of_server_and_others)
{
  cl_object srv, str;
  int fd = -1, acc = 0;
  socklen_t len = sizeof acc;
  srv = lisp("(socket:socket-server 0 :interface \"127.0.0.1\")");
  ck_assert_int_eq(ecl_sock_fd(srv, &fd), ECL_SOCK_OK);
  ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len), 0);
  ck_assert_int_eq(acc, 1);
  set_s(srv);
  lisp("(socket:socket-server-close *s*)");
  ck_assert_int_eq(ecl_sock_fd(srv, &fd), ECL_SOCK_ECLOSED);
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "closed"));
  /* A stream Lisp made itself: its descriptor is the connected socket. */
  {
    cl_object c;
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int cfd = -1;
    srv = lisp("(setf *s* (socket:socket-server 0 :interface \"127.0.0.1\"))");
    c = lisp("(socket:socket-connect (socket:socket-server-port *s*) \"127.0.0.1\")");
    ck_assert_int_eq(ecl_sock_fd(c, &cfd), ECL_SOCK_OK);
    ck_assert_int_eq(getpeername(cfd, (struct sockaddr *)&peer, &plen), 0);
    ck_assert_int_eq(ntohs(peer.sin_port),
                     ecl_fixnum(lisp("(socket:socket-server-port *s*)")));
    set_s(c);
    lisp("(close *s*)");
    ck_assert_int_eq(ecl_sock_fd(c, &cfd), ECL_SOCK_ECLOSED);
    ck_assert_int_eq(ecl_sock_fd(srv, &fd), ECL_SOCK_OK);
    set_s(srv);
    lisp("(socket:socket-server-close *s*)");
  }
  str = ecl_make_simple_base_string("not a socket", -1);
  ck_assert_int_eq(ecl_sock_fd(str, &fd), ECL_SOCK_EINVAL);
  ck_assert_int_eq(ecl_sock_fd(lisp("*standard-output*"), &fd), ECL_SOCK_EINVAL);
  ck_assert_int_eq(ecl_sock_fd(srv, NULL), ECL_SOCK_EINVAL);
}
END_TEST

/* -- Errors in Lisp code reach C as codes -------------------------------- */

START_TEST(test_lisp_errors_reported)
{
  int sv[2];
  cl_object s, v = ECL_NIL;
  lisp("(defun cl-user::bad-handler (s)"
       "  (write-line \"before\" s) (finish-output s)"
       "  (error \"handler failed on purpose: ~D\" 42))");
  lisp("(defun cl-user::echo-handler (s) (write-line (read-line s) s) (finish-output s) :done)");
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, 0, &s), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_call("bad-handler", 1, &s, &v), ECL_SOCK_ELISP);
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "SIMPLE-ERROR"));
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "handler failed on purpose: 42"));
  ck_assert(Null(v));                           /* untouched */
  {
    char buf[8];
    read_exact(sv[1], buf, 7);
    ck_assert_mem_eq(buf, "before\n", 7);
  }
  /* The host and the stream go on. */
  write_all(sv[1], "again\n", 6);
  ck_assert_int_eq(ecl_sock_call("echo-handler", 1, &s, &v), ECL_SOCK_OK);
  ck_assert(v == ecl_make_keyword("DONE"));
  {
    char buf[8];
    read_exact(sv[1], buf, 6);
    ck_assert_mem_eq(buf, "again\n", 6);
  }
  /* The peer goes away in the middle: the condition names itself. */
  close(sv[1]);
  ck_assert_int_eq(ecl_sock_call("echo-handler", 1, &s, &v), ECL_SOCK_ELISP);
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "END-OF-FILE"));
  /* Other ways to fail. */
  ck_assert_int_eq(ecl_sock_call("no-such-function-anywhere", 0, NULL, NULL), ECL_SOCK_ELISP);
  ck_assert_ptr_nonnull(strstr(ecl_sock_error_message(), "does not name a function"));
  ck_assert_int_eq(ecl_sock_call("when", 0, NULL, NULL), ECL_SOCK_ELISP);
  ck_assert_int_eq(ecl_sock_call("no-such-package:f", 0, NULL, NULL), ECL_SOCK_ELISP);
  ck_assert_int_eq(ecl_sock_call("throw", 2, (cl_object[]){ ecl_make_keyword("NOWHERE"), ECL_NIL },
                                 NULL), ECL_SOCK_ELISP);
  ck_assert_int_eq(ecl_sock_call(NULL, 0, NULL, NULL), ECL_SOCK_EINVAL);
  ck_assert_int_eq(ecl_sock_call("list", -1, NULL, NULL), ECL_SOCK_EINVAL);
  ck_assert_int_eq(ecl_sock_call("list", 1, NULL, NULL), ECL_SOCK_EINVAL);
  ck_assert_int_eq(ecl_sock_load("/nonexistent/handler.lisp"), ECL_SOCK_ELISP);
  ck_assert_int_eq(ecl_sock_load(NULL), ECL_SOCK_EINVAL);
  /* Still alive and well. */
  ck_assert_int_eq(ecl_sock_call("+", 2, (cl_object[]){ ecl_make_fixnum(2), ecl_make_fixnum(3) },
                                 &v), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_fixnum(v), 5);
}
END_TEST

START_TEST(test_load_file)
{
  char path[] = "/tmp/check_embed_XXXXXX";
  const char text[] = "(defun cl-user::loaded-fn (x) (* x 7))\n";
  cl_object v = ECL_NIL, a = ecl_make_fixnum(6);
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  write_all(fd, text, sizeof text - 1);
  close(fd);
  ck_assert_int_eq(ecl_sock_load(path), ECL_SOCK_OK);
  unlink(path);
  ck_assert_int_eq(ecl_sock_call("loaded-fn", 1, &a, &v), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_fixnum(v), 42);
}
END_TEST

/* -- Host threads ------------------------------------------------------------ */

#define NTHREADS 4
#define ROUNDS 100

struct worker {
  pthread_t th;
  int ok, rounds, detach_extra, call_unattached;
  char why[256];
};

static pthread_barrier_t start_barrier;

static void *
worker_main(void *arg)
{
  struct worker *w = arg;
  int sv[2], i;
  cl_object s;
  /* Not attached yet: refused, no crash. */
  w->call_unattached = ecl_sock_call("list", 0, NULL, NULL);
  pthread_barrier_wait(&start_barrier);
  if (ecl_sock_thread_attach() || ecl_sock_thread_attach()) {
    snprintf(w->why, sizeof w->why, "attach: %s", ecl_sock_error_message());
    return NULL;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)
      || ecl_sock_wrap_fd(sv[0], NULL, NULL, 0, &s)) {
    snprintf(w->why, sizeof w->why, "wrap: %s", ecl_sock_error_message());
    return NULL;
  }
  for (i = 0; i < ROUNDS; i++) {
    char line[64], back[64];
    cl_object r;
    int n = snprintf(line, sizeof line, "line %d of %p\n", i, (void *)w);
    write_all(sv[1], line, (size_t)n);
    if (ecl_sock_call("echo-upcase", 1, &s, &r)) {
      snprintf(w->why, sizeof w->why, "call: %s", ecl_sock_error_message());
      return NULL;
    }
    read_exact(sv[1], back, (size_t)n);
    for (int k = 0; k < n; k++)
      if (back[k] != (line[k] >= 'a' && line[k] <= 'z' ? line[k] - 32 : line[k])) {
        snprintf(w->why, sizeof w->why, "round %d: wrong echo", i);
        return NULL;
      }
    w->rounds++;
  }
  ecl_sock_call("close", 1, &s, NULL);
  close(sv[1]);
  if (ecl_sock_thread_detach() || ecl_sock_thread_detach()) {
    snprintf(w->why, sizeof w->why, "detach: %s", ecl_sock_error_message());
    return NULL;
  }
  w->detach_extra = ecl_sock_thread_detach();
  w->ok = 1;
  return NULL;
}

START_TEST(test_host_threads)
{
  struct worker w[NTHREADS];
  int i;
  lisp("(defun cl-user::echo-upcase (s)"
       "  (let ((l (read-line s)))"
       "    (make-list 1000)"              /* some garbage, for the collector */
       "    (write-line (string-upcase l) s) (finish-output s) l))");
  memset(w, 0, sizeof w);
  pthread_barrier_init(&start_barrier, NULL, NTHREADS);
  for (i = 0; i < NTHREADS; i++)
    ck_assert_int_eq(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
  for (i = 0; i < NTHREADS; i++)
    pthread_join(w[i].th, NULL);
  pthread_barrier_destroy(&start_barrier);
  for (i = 0; i < NTHREADS; i++) {
    ck_assert_msg(w[i].ok, "thread %d: %s", i, w[i].why);
    ck_assert_int_eq(w[i].rounds, ROUNDS);
    ck_assert_int_eq(w[i].call_unattached, ECL_SOCK_ENOTHREAD);
    ck_assert_int_eq(w[i].detach_extra, ECL_SOCK_EINVAL);
  }
  /* The main thread (ECL's own) attaches and detaches without change. */
  ck_assert_int_eq(ecl_sock_thread_attach(), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_thread_detach(), ECL_SOCK_OK);
  ck_assert_int_eq(ecl_sock_thread_detach(), ECL_SOCK_EINVAL);
  ck_assert(lisp_true("(= 1 1)"));
}
END_TEST

/* A host thread may attach again after detaching. */
static void *
reattach_main(void *arg)
{
  int *ok = arg, i;
  for (i = 0; i < 3; i++) {
    cl_object v;
    if (ecl_sock_thread_attach())
      return NULL;
    if (ecl_sock_call("list", 1, (cl_object[]){ ecl_make_fixnum(i) }, &v) || !ECL_CONSP(v))
      return NULL;
    if (ecl_sock_thread_detach())
      return NULL;
  }
  *ok = ecl_sock_call("list", 0, NULL, NULL) == ECL_SOCK_ENOTHREAD;
  return NULL;
}

START_TEST(test_thread_reattach)
{
  pthread_t th;
  int ok = 0;
  ck_assert_int_eq(pthread_create(&th, NULL, reattach_main, &ok), 0);
  pthread_join(th, NULL);
  ck_assert(ok);
}
END_TEST

int
main(int argc, char **argv)
{
  Suite *su = suite_create("embed");
  TCase *pre = tcase_create("before-init");
  TCase *tc = tcase_create("api");
  SRunner *sr;
  int failed;
  cl_boot(argc, argv);
  tcase_set_timeout(pre, 60);
  tcase_add_test(pre, test_before_init);
  tcase_add_test(pre, test_init_twice);
  tcase_add_test(pre, test_init_after_require);
  tcase_add_test(pre, test_init_concurrent);
  suite_add_tcase(su, pre);
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_wrap_text_utf8);
  tcase_add_test(tc, test_wrap_text_latin1_crlf);
  tcase_add_test(tc, test_wrap_octets);
  tcase_add_test(tc, test_wrap_tcp_accepted);
  tcase_add_test(tc, test_tls_over_host_fds);
  tcase_add_test(tc, test_wrap_bad_arguments);
  tcase_add_test(tc, test_lisp_owns_fd);
  tcase_add_test(tc, test_host_owns_fd);
  tcase_add_test(tc, test_fd_of_server_and_others);
  tcase_add_test(tc, test_lisp_errors_reported);
  tcase_add_test(tc, test_load_file);
  tcase_add_test(tc, test_host_threads);
  tcase_add_test(tc, test_thread_reattach);
  suite_add_tcase(su, tc);
  sr = runner = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  cl_shutdown();
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
