/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * cbench.c - the plain C baseline of `make bench`.
 *
 *   cbench WORKLOAD N
 *
 * Runs both ends of one workload over loopback (the server in a forked
 * child, the client in the parent, which times it) and prints one line:
 * the rate in the workload's unit per second.  The workloads and message
 * sizes are those of bench/bench.lisp:
 *
 *   bulk N    N MiB in 64 KiB send()s, the server reads them in 64 KiB
 *             recv()s and answers one octet at the end       unit: MiB
 *   rtt N     N round trips of a 64-character line (63 + newline); both
 *             ends read lines out of a 64 KiB buffer          unit: trips
 *   text N    the server sends N lines of 80 characters in blocks of 800
 *             lines; the client cuts them into lines (memchr) and copies
 *             each into its own malloc'd string               unit: lines
 *   multi N   N requests on one connection: the client sends a request
 *             line, the server reads it and answers 4 header lines and a
 *             short body line in one send(); the client reads the 5 lines
 *             unit: the median and the 99th percentile of the request
 *             times, in microseconds ("med p99")
 *   octets N  N round trips of cl-postgres's message shape: a request of
 *             65 octets (type, 4-octet length, 60 octets), an answer of
 *             1,005 (type, length, 1,000 octets); each end sends a message
 *             with one send() and reads it with a buffered reader
 *             (memcpy out of a 64 KiB buffer)                 unit: trips
 *   cycles N  N times: connect, the server accepts and closes, the client
 *             reads end of file and closes                    unit: cycles
 *   mux N     $MUX_IDLE (default 1000) idle connections and one active
 *             one; the server polls all of them with poll(2) before every
 *             one of the N round trips                        unit: trips
 *   pmux N    the same with epoll: the connections registered once, one
 *             epoll_wait per round trip (where there is no epoll, poll)
 *                                                             unit: trips
 *   tlsbulk N like bulk, over TLS (OpenSSL, blocking SSL_read/SSL_write,
 *             the client verifying the server's certificate and name;
 *             timed after the handshake)                      unit: MiB
 *   tlshs N   N times: connect, full TLS handshake (no resumption, the
 *             client verifies), the server sends one octet and closes
 *             with close_notify, the client reads it and closes
 *                                                             unit: handshakes
 * The TLS workloads read the certificates from $BENCH_CERTS (made by
 * tests/tls/make-certs.sh): server.pem/server.key, and ca.pem to verify.
 *
 * It is a benchmark, not a test: it asserts nothing about time.  It exits
 * non-zero when a transfer comes out wrong (short, or the wrong length).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
# include <sys/epoll.h>
#endif
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_OPENSSL
#include <openssl/ssl.h>
#include <openssl/err.h>
#endif

#define CHUNK 65536
#define RTT_LINE 64             /* octets per round-trip line, newline included */
#define TEXT_LINE 81            /* 80 characters and a newline */
#define TEXT_BLOCK 800          /* lines per bulk write */
static int mux_idle = 1000;    /* $MUX_IDLE */

static void
die(const char *what)
{
  perror(what);
  exit(2);
}

static double
now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
send_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      die("send");
    }
    p += r;
    n -= (size_t)r;
  }
}

static size_t
recv_some(int fd, char *p, size_t n)
{
  for (;;) {
    ssize_t r = recv(fd, p, n, 0);
    if (r >= 0)
      return (size_t)r;
    if (errno != EINTR)
      die("recv");
  }
}

/* A 64 KiB input buffer with line reading, like a buffered stream. */
struct rbuf {
  int fd;
  size_t pos, len;
  char data[CHUNK];
};

/* The next line (without its newline) copied into LINE (CAP octets);
   returns its length, or -1 at end of file. */
static long
read_line(struct rbuf *b, char *line, size_t cap)
{
  size_t n = 0;
  for (;;) {
    char *nl;
    size_t avail, k;
    if (b->pos == b->len) {
      b->pos = 0;
      b->len = recv_some(b->fd, b->data, CHUNK);
      if (!b->len)
        return n ? (long)n : -1;
    }
    avail = b->len - b->pos;
    nl = memchr(b->data + b->pos, '\n', avail);
    k = nl ? (size_t)(nl - (b->data + b->pos)) : avail;
    if (n + k > cap) {
      fprintf(stderr, "cbench: line too long\n");
      exit(2);
    }
    memcpy(line + n, b->data + b->pos, k);
    n += k;
    b->pos += k;
    if (nl) {
      b->pos++;
      return (long)n;
    }
  }
}

static int
listener(int *port)
{
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    die("socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 1024)
      || getsockname(fd, (struct sockaddr *)&a, &len))
    die("bind/listen");
  *port = ntohs(a.sin_port);
  return fd;
}

static int
accept_one(int lfd)
{
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
      return fd;
    if (errno != EINTR)
      die("accept");
  }
}

static int
connect_to(int port)
{
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    die("socket");
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((unsigned short)port);
  while (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    if (errno != EINTR)
      die("connect");
  }
  return fd;
}

static void
fill_line(char *p, size_t n)
{
  size_t i;
  for (i = 0; i + 1 < n; i++)
    p[i] = (char)('a' + i % 26);
  p[n - 1] = '\n';
}

/* Copy N octets out of B (refilling it); 0 at end of file, else 1. */
static int
read_exact(struct rbuf *b, char *p, size_t n)
{
  while (n) {
    size_t k;
    if (b->pos == b->len) {
      b->pos = 0;
      b->len = recv_some(b->fd, b->data, CHUNK);
      if (!b->len)
        return 0;
    }
    k = b->len - b->pos < n ? b->len - b->pos : n;
    memcpy(p, b->data + b->pos, k);
    b->pos += k;
    p += k;
    n -= k;
  }
  return 1;
}

#define OCTETS_REQUEST 60       /* body octets of a request, */
#define OCTETS_ANSWER 1000      /* of an answer */

/* One message: TYPE, the length (4 + BODY, big-endian), BODY octets. */
static void
make_message(char *m, char type, size_t body)
{
  unsigned long len = 4 + body;
  size_t i;
  m[0] = type;
  for (i = 0; i < 4; i++)
    m[1 + i] = (char)((len >> (24 - 8 * i)) & 255);
  for (i = 0; i < body; i++)
    m[5 + i] = (char)(i & 255);
}

/* Read one message into M (room for 5 + MAX octets); its body length, or
   -1 at end of file. */
static long
read_message(struct rbuf *b, char *m, size_t max)
{
  unsigned long len = 0;
  int i;
  if (!read_exact(b, m, 5))
    return -1;
  for (i = 0; i < 4; i++)
    len = (len << 8) | (unsigned char)m[1 + i];
  if (len < 4 || len - 4 > max || !read_exact(b, m + 5, len - 4)) {
    fprintf(stderr, "cbench: bad message\n");
    exit(1);
  }
  return (long)(len - 4);
}

/* -- Servers (in the child) ------------------------------------------- */

static void
serve_bulk(int lfd, long n)
{
  static char buf[CHUNK];
  int fd = accept_one(lfd);
  long long want = (long long)n << 20, got = 0;
  while (got < want) {
    size_t r = recv_some(fd, buf, CHUNK);
    if (!r)
      break;
    got += (long long)r;
  }
  send_all(fd, "k", 1);
  close(fd);
}

static void
serve_rtt(int lfd, long n)
{
  static struct rbuf b;
  char line[RTT_LINE];
  long len;
  (void)n;
  b.fd = accept_one(lfd);
  while ((len = read_line(&b, line, sizeof line - 1)) >= 0) {
    line[len] = '\n';
    send_all(b.fd, line, (size_t)len + 1);
  }
  close(b.fd);
}

static void
serve_octets(int lfd, long n)
{
  static struct rbuf b;
  static char in[5 + OCTETS_REQUEST], out[5 + OCTETS_ANSWER];
  (void)n;
  make_message(out, 'D', OCTETS_ANSWER);
  b.fd = accept_one(lfd);
  while (read_message(&b, in, OCTETS_REQUEST) >= 0)
    send_all(b.fd, out, sizeof out);
  close(b.fd);
}

static void
serve_text(int lfd, long n)
{
  static char block[TEXT_LINE * TEXT_BLOCK];
  int fd = accept_one(lfd), i;
  for (i = 0; i < TEXT_BLOCK; i++)
    fill_line(block + i * TEXT_LINE, TEXT_LINE);
  while (n > 0) {
    long k = n < TEXT_BLOCK ? n : TEXT_BLOCK;
    send_all(fd, block, (size_t)k * TEXT_LINE);
    n -= k;
  }
  close(fd);
}

#define MULTI_ANSWER "HTTP/1.0 200 OK\nContent-Type: text/plain\n" \
  "Content-Length: 13\n\nhello, world\n"

static void
serve_multi(int lfd, long n)
{
  static struct rbuf b;
  char line[RTT_LINE];
  (void)n;
  b.fd = accept_one(lfd);
  while (read_line(&b, line, sizeof line) >= 0)
    send_all(b.fd, MULTI_ANSWER, sizeof MULTI_ANSWER - 1);
  close(b.fd);
}

static void
serve_cycles(int lfd, long n)
{
  while (n-- > 0)
    close(accept_one(lfd));
}

static void
serve_mux(int lfd, long n)
{
  static struct rbuf b;         /* the one active connection's buffer */
  struct pollfd *pf = malloc((size_t)(mux_idle + 1) * sizeof *pf);
  char line[RTT_LINE];
  int i, running = 1;
  (void)n;
  if (!pf)
    die("malloc");
  for (i = 0; i <= mux_idle; i++) {
    pf[i].fd = accept_one(lfd);
    pf[i].events = POLLIN;
  }
  while (running) {
    int r = poll(pf, (nfds_t)mux_idle + 1, -1);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      die("poll");
    }
    for (i = 0; i <= mux_idle; i++) {
      long len;
      if (!pf[i].revents)
        continue;
      /* the client talks on its last connection only */
      b.fd = pf[i].fd;
      len = read_line(&b, line, sizeof line - 1);
      if (len < 0) {
        running = 0;
        break;
      }
      line[len] = '\n';
      send_all(b.fd, line, (size_t)len + 1);
    }
  }
  for (i = 0; i <= mux_idle; i++)
    close(pf[i].fd);
  free(pf);
}

#ifdef __linux__
static void
serve_pmux(int lfd, long n)
{
  static struct rbuf b;
  struct epoll_event ev[64];
  int *fds = malloc((size_t)(mux_idle + 1) * sizeof *fds);
  char line[RTT_LINE];
  int i, ep = epoll_create1(EPOLL_CLOEXEC), running = 1;
  (void)n;
  if (!fds || ep < 0)
    die("epoll_create1");
  for (i = 0; i <= mux_idle; i++) {
    struct epoll_event e;
    fds[i] = accept_one(lfd);
    e.events = EPOLLIN;
    e.data.u32 = (uint32_t)i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) < 0)
      die("epoll_ctl");
  }
  while (running) {
    int r = epoll_wait(ep, ev, 64, -1), k;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    for (k = 0; k < r; k++) {
      long len;
      b.fd = fds[ev[k].data.u32];
      len = read_line(&b, line, sizeof line - 1);
      if (len < 0) {
        running = 0;
        break;
      }
      line[len] = '\n';
      send_all(b.fd, line, (size_t)len + 1);
    }
  }
  for (i = 0; i <= mux_idle; i++)
    close(fds[i]);
  close(ep);
  free(fds);
}
#else
# define serve_pmux serve_mux
#endif

/* -- Clients (in the parent, timed) ------------------------------------ */

static double
client_bulk(int port, long n)
{
  static char buf[CHUNK];
  int fd = connect_to(port);
  long i, chunks = n * ((1 << 20) / CHUNK);
  double t0;
  memset(buf, 'x', sizeof buf);
  t0 = now();
  for (i = 0; i < chunks; i++)
    send_all(fd, buf, CHUNK);
  if (recv_some(fd, buf, 1) != 1) {
    fprintf(stderr, "cbench: no answer after bulk\n");
    exit(1);
  }
  t0 = now() - t0;
  close(fd);
  return n / t0;
}

static double
client_rtt_on(int fd, long n)
{
  static struct rbuf b;
  char out[RTT_LINE], in[RTT_LINE];
  long i;
  double t0;
  b.fd = fd;
  b.pos = b.len = 0;
  fill_line(out, sizeof out);
  t0 = now();
  for (i = 0; i < n; i++) {
    send_all(fd, out, sizeof out);
    if (read_line(&b, in, sizeof in) != RTT_LINE - 1) {
      fprintf(stderr, "cbench: bad echo\n");
      exit(1);
    }
  }
  return n / (now() - t0);
}

static double
client_octets(int port, long n)
{
  static struct rbuf b;
  static char in[5 + OCTETS_ANSWER], out[5 + OCTETS_REQUEST];
  long i;
  double t0;
  make_message(out, 'Q', OCTETS_REQUEST);
  b.fd = connect_to(port);
  t0 = now();
  for (i = 0; i < n; i++) {
    send_all(b.fd, out, sizeof out);
    if (read_message(&b, in, OCTETS_ANSWER) != OCTETS_ANSWER) {
      fprintf(stderr, "cbench: bad answer\n");
      exit(1);
    }
  }
  t0 = now() - t0;
  close(b.fd);
  return n / t0;
}

static double
client_rtt(int port, long n)
{
  int fd = connect_to(port);
  double r = client_rtt_on(fd, n);
  close(fd);
  return r;
}

static double
client_text(int port, long n)
{
  static struct rbuf b;
  char line[TEXT_LINE];
  long count = 0, len;
  double t0 = now();
  b.fd = connect_to(port);
  while ((len = read_line(&b, line, sizeof line)) >= 0) {
    char *s = malloc((size_t)len + 1);  /* a string per line, like read-line */
    if (!s)
      die("malloc");
    memcpy(s, line, (size_t)len);
    s[len] = 0;
    if (len != TEXT_LINE - 1) {
      fprintf(stderr, "cbench: bad line length %ld\n", len);
      exit(1);
    }
    free(s);
    count++;
  }
  t0 = now() - t0;
  close(b.fd);
  if (count != n) {
    fprintf(stderr, "cbench: %ld lines, expected %ld\n", count, n);
    exit(1);
  }
  return n / t0;
}

static double multi_p99;        /* client_multi's second result */

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double
client_multi(int port, long n)
{
  static struct rbuf b;
  char req[RTT_LINE], line[RTT_LINE];
  double *times = malloc((size_t)n * sizeof *times), med;
  long i;
  int k;
  if (!times)
    die("malloc");
  b.fd = connect_to(port);
  for (i = 0; i < n; i++) {
    double t0 = now();
    int len = snprintf(req, sizeof req, "GET /%ld HTTP/1.0\n", i);
    send_all(b.fd, req, (size_t)len);
    for (k = 0; k < 5; k++) {
      if (read_line(&b, line, sizeof line) < 0) {
        fprintf(stderr, "cbench: multi: early end of file\n");
        exit(1);
      }
    }
    times[i] = now() - t0;
  }
  close(b.fd);
  qsort(times, (size_t)n, sizeof *times, cmp_double);
  med = 1e6 * times[n / 2];
  multi_p99 = 1e6 * times[(n * 99 / 100) < n - 1 ? n * 99 / 100 : n - 1];
  free(times);
  return med;
}

static double
client_cycles(int port, long n)
{
  long i;
  char c;
  double t0 = now();
  for (i = 0; i < n; i++) {
    int fd = connect_to(port);
    if (recv_some(fd, &c, 1) != 0) {
      fprintf(stderr, "cbench: expected end of file\n");
      exit(1);
    }
    close(fd);
  }
  return n / (now() - t0);
}

static double
client_mux(int port, long n)
{
  int *fds = malloc((size_t)(mux_idle + 1) * sizeof *fds), i;
  double r;
  if (!fds)
    die("malloc");
  for (i = 0; i <= mux_idle; i++)
    fds[i] = connect_to(port);
  r = client_rtt_on(fds[mux_idle], n);
  close(fds[mux_idle]);             /* the server stops at this EOF */
  for (i = 0; i < mux_idle; i++)
    close(fds[i]);
  free(fds);
  return r;
}

/* -- TLS (OpenSSL): the same work as the Lisp side ---------------------- */

#ifdef HAVE_OPENSSL
static SSL_CTX *
tls_ctx(int server)
{
  const char *dir = getenv("BENCH_CERTS");
  char cert[1024], key[1024], ca[1024];
  SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!dir || !ctx)
    die("BENCH_CERTS / SSL_CTX_new");
  snprintf(cert, sizeof cert, "%s/server.pem", dir);
  snprintf(key, sizeof key, "%s/server.key", dir);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (server) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
      die("server certificate");
  } else {
    SSL_CTX_set_default_verify_paths(ctx);
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
      die("CA file");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  }
  return ctx;
}

static SSL *
tls_start(SSL_CTX *ctx, int fd, int server)
{
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (!server) {
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
  }
  if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
    ERR_print_errors_fp(stderr);
    die("handshake");
  }
  return ssl;
}

static void
tls_write_all(SSL *ssl, const char *p, size_t n)
{
  while (n) {
    size_t k;
    if (!SSL_write_ex(ssl, p, n, &k))
      die("SSL_write");
    p += k;
    n -= k;
  }
}

static void
serve_tlsbulk(int lfd, long n)
{
  static char buf[CHUNK];
  SSL_CTX *ctx = tls_ctx(1);
  int fd = accept_one(lfd);
  SSL *ssl = tls_start(ctx, fd, 1);
  long long want = (long long)n << 20, got = 0;
  while (got < want) {
    size_t k;
    if (!SSL_read_ex(ssl, buf, CHUNK, &k))
      break;
    got += (long long)k;
  }
  tls_write_all(ssl, "k", 1);
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
}

static double
client_tlsbulk(int port, long n)
{
  static char buf[CHUNK];
  SSL_CTX *ctx = tls_ctx(0);
  int fd = connect_to(port);
  SSL *ssl = tls_start(ctx, fd, 0);
  long i, chunks = n * ((1 << 20) / CHUNK);
  size_t k;
  double t0;
  memset(buf, 'x', sizeof buf);
  t0 = now();
  for (i = 0; i < chunks; i++)
    tls_write_all(ssl, buf, CHUNK);
  if (!SSL_read_ex(ssl, buf, 1, &k) || k != 1) {
    fprintf(stderr, "cbench: no answer after TLS bulk\n");
    exit(1);
  }
  t0 = now() - t0;
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return n / t0;
}

static void
serve_tlshs(int lfd, long n)
{
  SSL_CTX *ctx = tls_ctx(1);
  while (n-- > 0) {
    int fd = accept_one(lfd);
    SSL *ssl = tls_start(ctx, fd, 1);
    tls_write_all(ssl, "k", 1);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
  }
  SSL_CTX_free(ctx);
}

static double
client_tlshs(int port, long n)
{
  SSL_CTX *ctx = tls_ctx(0);
  long i;
  double t0 = now();
  for (i = 0; i < n; i++) {
    int fd = connect_to(port);
    SSL *ssl = tls_start(ctx, fd, 0);
    char c;
    size_t k;
    if (!SSL_read_ex(ssl, &c, 1, &k) || c != 'k')
      die("handshake answer");
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
  }
  t0 = now() - t0;
  SSL_CTX_free(ctx);
  return n / t0;
}
#endif

struct workload {
  const char *name;
  void (*serve)(int, long);
  double (*client)(int, long);
};

static const struct workload workloads[] = {
  {"bulk", serve_bulk, client_bulk},
  {"rtt", serve_rtt, client_rtt},
  {"text", serve_text, client_text},
  {"multi", serve_multi, client_multi},
  {"cycles", serve_cycles, client_cycles},
  {"octets", serve_octets, client_octets},
  {"mux", serve_mux, client_mux},
  {"pmux", serve_pmux, client_mux},
#ifdef HAVE_OPENSSL
  {"tlsbulk", serve_tlsbulk, client_tlsbulk},
  {"tlshs", serve_tlshs, client_tlshs},
#endif
};

int
main(int argc, char **argv)
{
  const struct workload *w = NULL;
  size_t i;
  long n;
  int lfd, port, status;
  pid_t pid;
  double rate;
  if (argc != 3 || (n = atol(argv[2])) <= 0) {
    fprintf(stderr, "usage: cbench bulk|rtt|octets|text|multi|cycles|mux|pmux N\n");
    return 2;
  }
  if (getenv("MUX_IDLE") && atoi(getenv("MUX_IDLE")) > 0)
    mux_idle = atoi(getenv("MUX_IDLE"));
  for (i = 0; i < sizeof workloads / sizeof *workloads; i++)
    if (!strcmp(argv[1], workloads[i].name))
      w = &workloads[i];
  if (!w) {
    fprintf(stderr, "cbench: unknown workload %s\n", argv[1]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  lfd = listener(&port);
  pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {
    alarm(600);                 /* a server that stops by itself */
    w->serve(lfd, n);
    _exit(0);
  }
  close(lfd);
  rate = w->client(port, n);
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      die("waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status)) {
    fprintf(stderr, "cbench: server failed\n");
    return 1;
  }
  if (w->client == client_multi)
    printf("%.1f %.1f\n", rate, multi_p99);
  else
    printf("%.1f\n", rate);
  return 0;
}
