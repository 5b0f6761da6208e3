/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * httpbench.c - a plain C HTTP/1.1 client for `make bench`'s Hunchentoot
 * workloads (bench/run-web-bench), the same client for every server.
 *
 * Owns: httpbench PORT MODE N PATH, against 127.0.0.1:PORT:
 *   keepalive  N GET requests on one connection; prints requests/s
 *   connect    N GET requests, a new connection each (Connection: close);
 *              prints requests/s
 *   latency    N GET requests on one connection; prints the median and
 *              the 99th percentile round trip in microseconds
 * A response is read as a status line, headers up to the blank line and
 * Content-Length octets of body (or up to end of file after close).
 * The client acknowledges every segment at once (TCP_QUICKACK), see next(),
 * unless HTTPBENCH_QUICKACK=0 (then it acknowledges as ab and browsers do).
 * Exits 1 on any failure (a short or non-200 answer).  Must not: talk to
 * anything but 127.0.0.1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];
static size_t have, pos;
static int quickack = 1;        /* $HTTPBENCH_QUICKACK, see next() */

static double
now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int
connect_to(int port)
{
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0)
    return -1;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  have = pos = 0;
  return fd;
}

/* The next octet of FD, or -1 at end of file / error. */
static int
next(int fd)
{
  if (pos == have) {
    ssize_t r;
#ifdef TCP_QUICKACK
    /* acknowledge at once (Linux clears this after each ACK): with the
       delayed ACK, a server that writes headers and body separately without
       TCP_NODELAY (Hunchentoot) waits 40 ms per response for it, and the
       benchmark would measure that timer instead of the socket layer */
    int one = 1;
    if (quickack)
      setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#endif
    r = read(fd, buf, sizeof buf);
    if (r <= 0)
      return -1;
    have = (size_t)r;
    pos = 0;
  }
  return (unsigned char)buf[pos++];
}

/* Read one response; 0 when it is a complete 200. */
static int
response(int fd, int until_eof)
{
  char line[1024];
  size_t n = 0;
  long length = -1;
  int status = 0, c, first = 1;
  for (;;) {                    /* status line and headers */
    c = next(fd);
    if (c < 0)
      return -1;
    if (c != '\n') {
      if (n < sizeof line - 1)
        line[n++] = (char)c;
      continue;
    }
    if (n && line[n - 1] == '\r')
      n--;
    line[n] = 0;
    if (first) {
      if (sscanf(line, "HTTP/%*d.%*d %d", &status) != 1)
        return -1;
      first = 0;
    } else if (n == 0) {
      break;
    } else if (!strncasecmp(line, "Content-Length:", 15)) {
      length = strtol(line + 15, NULL, 10);
    }
    n = 0;
  }
  if (length >= 0) {
    while (length-- > 0)
      if (next(fd) < 0)
        return -1;
  } else if (until_eof) {
    while (next(fd) >= 0)
      ;
  } else {
    return -1;
  }
  return status == 200 ? 0 : -1;
}

static int
send_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int
cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
  int port, n, i, fd;
  const char *mode, *path;
  char req[512];
  double t0, *lat;
  if (argc != 5) {
    fprintf(stderr, "usage: httpbench PORT keepalive|connect|latency N PATH\n");
    return 2;
  }
  port = atoi(argv[1]);
  mode = argv[2];
  n = atoi(argv[3]);
  path = argv[4];
  if (getenv("HTTPBENCH_QUICKACK") && !strcmp(getenv("HTTPBENCH_QUICKACK"), "0"))
    quickack = 0;
  if (!strcmp(mode, "connect")) {
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Connection: close\r\n\r\n", path);
    t0 = now();
    for (i = 0; i < n; i++) {
      if ((fd = connect_to(port)) < 0 || send_all(fd, req, strlen(req))
          || response(fd, 1))
        return 1;
      close(fd);
    }
    printf("%.1f\n", n / (now() - t0));
    return 0;
  }
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  if ((fd = connect_to(port)) < 0)
    return 1;
  lat = malloc(sizeof *lat * (size_t)n);
  if (!lat)
    return 1;
  t0 = now();
  for (i = 0; i < n; i++) {
    double t = now();
    if (send_all(fd, req, strlen(req)) || response(fd, 0))
      return 1;
    lat[i] = now() - t;
  }
  if (!strcmp(mode, "latency")) {
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("%.1f %.1f\n", lat[n / 2] * 1e6, lat[(size_t)n * 99 / 100] * 1e6);
  } else {
    printf("%.1f\n", n / (now() - t0));
  }
  close(fd);
  free(lat);
  return 0;
}
